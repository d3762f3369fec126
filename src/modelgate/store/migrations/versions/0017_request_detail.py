"""Request detail (issue 30): each request-log row also keeps its time to first token
(``ttft_ms``, streams), how many routes were tried (``attempts``) and the upstream model of the
route that answered (``route``). Existing rows get NULL.

PostgreSQL: ``modelgate_ledger_apply``'s static log insert names every column the gateway records
again (rewritten from its current definition, as 0009 does): since 0014 added ``cache`` and
``cache_saved_credits`` its list no longer matched the rows, which all went through its dynamic
insert.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

OLD_COLUMNS = (
    "account_id, audio_tokens, cache_write_1h_tokens, cache_write_5m_tokens, cached_tokens,"
    " client_request_id, completion_tokens, created_at, credits, door, error_message, finish_reason,"
    " http_status, inference_id, key_id, key_prefix, latency_ms, model, origin, overage_credits,"
    " prompt_tokens, provider, reasoning_tokens, status, stream, tier, uses"
)
NEW_COLUMNS = (
    "account_id, attempts, audio_tokens, cache, cache_saved_credits, cache_write_1h_tokens,"
    " cache_write_5m_tokens, cached_tokens, client_request_id, completion_tokens, created_at, credits,"
    " door, error_message, finish_reason, http_status, inference_id, key_id, key_prefix, latency_ms,"
    " model, origin, overage_credits, prompt_tokens, provider, reasoning_tokens, route, status, stream,"
    " tier, ttft_ms, uses"
)


def _rewrite(old: str, new: str) -> None:
    bind = op.get_bind()
    src = bind.execute(sa.text("SELECT pg_get_functiondef('modelgate_ledger_apply'::regproc)")).scalar()
    if not isinstance(src, str) or old not in src:
        raise RuntimeError("modelgate_ledger_apply's static log insert is not the expected one")
    bind.exec_driver_sql(src.replace(old, new))


def upgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.add_column(sa.Column("ttft_ms", sa.Integer, nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=True))
        batch.add_column(sa.Column("route", sa.String(200), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(OLD_COLUMNS, NEW_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(NEW_COLUMNS, OLD_COLUMNS)
    with op.batch_alter_table("request_logs") as batch:
        for name in ("route", "attempts", "ttft_ms"):
            batch.drop_column(name)
