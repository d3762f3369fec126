"""Holds: drop the secondary indexes (the table only holds requests in flight; each index cost
two B-tree writes per request on the hot path).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_holds_account", "holds")
    op.drop_index("ix_holds_created", "holds")


def downgrade() -> None:
    op.create_index("ix_holds_created", "holds", ["created_at"])
    op.create_index("ix_holds_account", "holds", ["account_id"])
