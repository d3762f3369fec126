"""Spend alerts at the key level (issue 24): an alert raised by a key's own spending limit names its key.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spend_alert_events") as batch:
        batch.add_column(sa.Column("key_id", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spend_alert_events") as batch:
        batch.drop_column("key_id")
