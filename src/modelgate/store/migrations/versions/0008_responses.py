"""Responses API state: stored responses and their input/output items (``store``: true).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("native", sa.Boolean, nullable=False),
        sa.Column("previous_response_id", sa.String(128), nullable=True),
        sa.Column("thread_id", sa.String(128), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_responses_account_thread", "responses", ["account_id", "thread_id"])
    op.create_index("ix_responses_expires", "responses", ["expires_at"])
    op.create_table(
        "response_items",
        sa.Column(
            "response_id", sa.String(128), sa.ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("ix_response_items_account_item", "response_items", ["account_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_response_items_account_item", "response_items")
    op.drop_table("response_items")
    op.drop_index("ix_responses_expires", "responses")
    op.drop_index("ix_responses_account_thread", "responses")
    op.drop_table("responses")
