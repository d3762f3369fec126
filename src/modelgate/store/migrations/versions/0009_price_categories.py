"""Prices as providers charge them: request-log rows carry the price sheet's categories, and a
charge is the whole real cost (the overdraft rule), no longer capped at its hold.

- ``request_logs``: ``cache_write_5m_tokens``, ``cache_write_1h_tokens``, ``audio_tokens``, ``tier``,
  ``uses`` (JSON of per-use counts and units) and ``overage_credits`` (charged beyond the hold);
  existing rows get 0 / NULL.
- PostgreSQL: ``modelgate_ledger_apply`` (0006) is rewritten from its current definition (so that a
  later change of its hold part by another migration is kept): the static log insert names the new
  columns, and a settle charges ``GREATEST(charge, 0)`` instead of ``LEAST(GREATEST(charge, 0), held)``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_COLUMNS = (
    "account_id, cached_tokens, client_request_id, completion_tokens, created_at, credits, door,"
    " error_message, finish_reason, http_status, inference_id, key_id, key_prefix, latency_ms, model,"
    " origin, prompt_tokens, provider, reasoning_tokens, status, stream"
)
NEW_COLUMNS = (
    "account_id, audio_tokens, cache_write_1h_tokens, cache_write_5m_tokens, cached_tokens,"
    " client_request_id, completion_tokens, created_at, credits, door, error_message, finish_reason,"
    " http_status, inference_id, key_id, key_prefix, latency_ms, model, origin, overage_credits,"
    " prompt_tokens, provider, reasoning_tokens, status, stream, tier, uses"
)
CAPPED = "LEAST(GREATEST(s.charge, 0), h.credits)"
UNCAPPED = "GREATEST(s.charge, 0)"
_INT_COLUMNS = ("cache_write_5m_tokens", "cache_write_1h_tokens", "audio_tokens", "tier")


def _rewrite(old: str, new: str, cap_from: str, cap_to: str) -> None:
    bind = op.get_bind()
    src = bind.execute(sa.text("SELECT pg_get_functiondef('modelgate_ledger_apply'::regproc)")).scalar()
    if not isinstance(src, str):
        raise RuntimeError("modelgate_ledger_apply is missing (migration 0006)")
    bind.exec_driver_sql(src.replace(old, new).replace(cap_from, cap_to))


def upgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        for name in _INT_COLUMNS:
            batch.add_column(sa.Column(name, sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("uses", sa.Text, nullable=True))
        batch.add_column(sa.Column("overage_credits", sa.BigInteger, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(OLD_COLUMNS, NEW_COLUMNS, CAPPED, UNCAPPED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(NEW_COLUMNS, OLD_COLUMNS, UNCAPPED, CAPPED)
    with op.batch_alter_table("request_logs") as batch:
        for name in (*_INT_COLUMNS, "uses", "overage_credits"):
            batch.drop_column(name)
