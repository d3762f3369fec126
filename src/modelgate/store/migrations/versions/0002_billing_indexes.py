"""Service endpoints: ledger.model, and an index for every query the endpoints run.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))
    op.create_index("ix_ledger_account_id", "ledger", ["account_id", "id"])
    op.create_index("ix_ledger_key_created", "ledger", ["key_id", "created_at"])
    op.create_index("ix_holds_created", "holds", ["created_at"])
    op.create_index("ix_holds_account", "holds", ["account_id"])
    op.create_index("ix_request_logs_key_client_request", "request_logs", ["key_id", "client_request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_logs_key_client_request", "request_logs")
    op.drop_index("ix_holds_account", "holds")
    op.drop_index("ix_holds_created", "holds")
    op.drop_index("ix_ledger_key_created", "ledger")
    op.drop_index("ix_ledger_account_id", "ledger")
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("model")
