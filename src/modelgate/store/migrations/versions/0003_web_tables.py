"""Web UI: browser sessions and the internal playground key of each account.

Databases that ran the web UI before this revision may already have the tables (created on the fly),
so each one is created only when missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "web_sessions" not in existing:
        op.create_table(
            "web_sessions",
            sa.Column("digest", sa.String(64), primary_key=True),
            sa.Column(
                "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("csrf_token", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_web_sessions_account_id", "web_sessions", ["account_id"])
    if "web_playground_keys" not in existing:
        op.create_table(
            "web_playground_keys",
            sa.Column(
                "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
            ),
            sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("web_playground_keys")
    op.drop_index("ix_web_sessions_account_id", "web_sessions")
    op.drop_table("web_sessions")
