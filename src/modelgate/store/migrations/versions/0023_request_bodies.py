"""Body logging (issue 30): the ``request_bodies`` table, a request's prompt and final answer, kept
while the operator has body logging on and swept once older than the retention period.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_bodies",
        sa.Column("inference_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("response", sa.Text, nullable=True),
        sa.Column("request_truncated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("response_truncated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_request_bodies_created", "request_bodies", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_bodies_created", "request_bodies")
    op.drop_table("request_bodies")
