"""The response cache (docs/cache.md): the ``response_cache`` table, and the request log's cache
outcome and savings.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_cache",
        sa.Column("namespace", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("door", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(64), nullable=True),
        sa.Column("guard", sa.String(200), nullable=True),
        sa.Column("vector", sa.LargeBinary, nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_response_cache_prefix", "response_cache", ["namespace", "prefix"])
    op.create_index("ix_response_cache_expires", "response_cache", ["expires_at"])
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("cache", sa.String(16), nullable=True))
        batch.add_column(sa.Column("cache_saved_credits", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("cache_saved_credits")
        batch.drop_column("cache")
    op.drop_index("ix_response_cache_expires", "response_cache")
    op.drop_index("ix_response_cache_prefix", "response_cache")
    op.drop_table("response_cache")
