"""One audit log for organisations (issue 24, OpenAI's ``GET /organization/audit_logs``): the
console's ``audit_log`` rows gain the organisation they belong to, the project, the resource changed,
the key an API caller used and its address; ``action`` holds OpenAI's event type where one fits.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("resource_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("actor_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("actor_ip", sa.String(64), nullable=True))
    op.create_index("ix_audit_log_org", "audit_log", ["org_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_org", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        for column in ("actor_ip", "actor_key", "resource_id", "project_id", "org_id"):
            batch.drop_column(column)
