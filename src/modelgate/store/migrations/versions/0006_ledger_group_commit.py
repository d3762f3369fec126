"""Holds record their owner (the process that made them), and on PostgreSQL one server-side
function applies a whole batch of settles, releases, holds and request-log rows in one statement
(``store/pg_writer.py``: group commit, one round trip and one commit per batch).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The request-log columns the recorder writes, sorted (the writer sends its column names sorted):
# those rows take a static INSERT whose plan is cached; any other set of columns a dynamic one.
LOG_COLUMNS = (
    "account_id, cached_tokens, client_request_id, completion_tokens, created_at, credits, door,"
    " error_message, finish_reason, http_status, inference_id, key_id, key_prefix, latency_ms, model,"
    " origin, prompt_tokens, provider, reasoning_tokens, status, stream"
)

# Request-log rows first, then settles (set-based: their refunds are then available to this batch's
# holds), holds last in submission order (each one's guard sees the balance and key spend left by the
# ones before it). The account's row is locked as late as possible (its refund is the last part of
# the settle statement; PostgreSQL runs a statement's WITH parts in the order written), since a row
# lock is held until the commit and the other lane's holds wait for it. A batch that touches several
# accounts, or settles holds under a key limit (whose key_spend update would otherwise come before
# the account's), locks its accounts first, in id order: a key_spend row belongs to one account and
# is only ever locked after it, so two instances' batches never wait on each other in a cycle.
# ``p_retry``: the batch may have committed in an attempt whose answer was lost with the connection;
# a hold already present is then not applied again (settles are idempotent by construction: only the
# batch that deletes the hold moves money). Statements that would have nothing to do are skipped
# (each costs tens of microseconds), and the writer's connections run with
# ``plan_cache_mode = force_generic_plan`` (no re-planning per call).
APPLY = r"""
CREATE OR REPLACE FUNCTION modelgate_ledger_apply(
    p_owner bigint, p_retry boolean, p_lock_all boolean,
    s_ids text[], s_accounts integer[], s_charges bigint[], s_models text[], s_limited boolean,
    h_ids text[], h_accounts integer[], h_keys integer[], h_periods text[],
    h_credits bigint[], h_limits bigint[], h_limited boolean,
    p_log_cols text[], p_logs jsonb,
    OUT settled bigint[], OUT codes smallint[]
) LANGUAGE plpgsql AS $fn$
DECLARE
    n integer := coalesce(array_length(h_ids, 1), 0);
    existing text[] := '{}';
    a_ids integer[];
    a_bal bigint[];
    a_take bigint[];
    k_keys integer[] := '{}';
    k_periods text[] := '{}';
    k_used bigint[] := '{}';
    k_take bigint[] := '{}';
    i integer;
    j integer;
    ai integer;
    ki integer;
BEGIN
    IF p_lock_all THEN
        PERFORM 1 FROM accounts WHERE id = ANY(s_accounts || h_accounts) ORDER BY id FOR UPDATE;
    END IF;

    IF p_logs IS NOT NULL THEN
        IF p_log_cols = string_to_array('@LOG_COLUMNS@', ', ') THEN
            INSERT INTO request_logs (@LOG_COLUMNS@)
            SELECT @LOG_COLUMNS@ FROM jsonb_populate_recordset(NULL::request_logs, p_logs)
            ON CONFLICT DO NOTHING;
        ELSE
            EXECUTE format(
                'INSERT INTO request_logs (%1$s) SELECT %1$s'
                ' FROM jsonb_populate_recordset(NULL::request_logs, $1) ON CONFLICT DO NOTHING',
                (SELECT string_agg(quote_ident(c), ', ') FROM unnest(p_log_cols) AS c))
            USING p_logs;
        END IF;
    END IF;

    IF coalesce(array_length(s_ids, 1), 0) > 0 THEN
        IF s_limited THEN
            WITH s AS (
                SELECT * FROM unnest(s_ids, s_charges, s_models) WITH ORDINALITY AS t(id, charge, model, ord)
            ), d AS (
                DELETE FROM holds h USING s WHERE h.inference_id = s.id
                RETURNING h.inference_id, h.account_id, h.key_id, h.period, h.credits,
                          LEAST(GREATEST(s.charge, 0), h.credits) AS charge, s.model
            ), charge AS (
                INSERT INTO ledger
                    (account_id, key_id, kind, credits, reference_id, description, model, created_at)
                SELECT account_id, key_id, 'charge', -charge, inference_id, model, model, now()
                FROM d WHERE charge > 0
            ), spend AS (
                UPDATE key_spend k
                SET held_credits = k.held_credits - r.held, spent_credits = k.spent_credits + r.spent
                FROM (SELECT key_id, period, sum(credits)::bigint AS held, sum(charge)::bigint AS spent
                      FROM d WHERE key_id IS NOT NULL AND period IS NOT NULL GROUP BY key_id, period) r
                WHERE k.key_id = r.key_id AND k.period = r.period
            ), refund AS (
                UPDATE accounts a SET balance_credits = a.balance_credits + r.amount
                FROM (SELECT account_id, sum(credits - charge)::bigint AS amount FROM d GROUP BY account_id) r
                WHERE a.id = r.account_id AND r.amount <> 0
            )
            SELECT array_agg(coalesce(d.charge, -1) ORDER BY s.ord) INTO settled
            FROM s LEFT JOIN d ON d.inference_id = s.id;
        ELSE
            WITH s AS (
                SELECT * FROM unnest(s_ids, s_charges, s_models) WITH ORDINALITY AS t(id, charge, model, ord)
            ), d AS (
                DELETE FROM holds h USING s WHERE h.inference_id = s.id
                RETURNING h.inference_id, h.account_id, h.key_id, h.credits,
                          LEAST(GREATEST(s.charge, 0), h.credits) AS charge, s.model
            ), charge AS (
                INSERT INTO ledger
                    (account_id, key_id, kind, credits, reference_id, description, model, created_at)
                SELECT account_id, key_id, 'charge', -charge, inference_id, model, model, now()
                FROM d WHERE charge > 0
            ), refund AS (
                UPDATE accounts a SET balance_credits = a.balance_credits + r.amount
                FROM (SELECT account_id, sum(credits - charge)::bigint AS amount FROM d GROUP BY account_id) r
                WHERE a.id = r.account_id AND r.amount <> 0
            )
            SELECT array_agg(coalesce(d.charge, -1) ORDER BY s.ord) INTO settled
            FROM s LEFT JOIN d ON d.inference_id = s.id;
        END IF;
    END IF;

    IF n > 0 THEN
        IF p_retry THEN
            SELECT coalesce(array_agg(inference_id), '{}') INTO existing
            FROM holds WHERE inference_id = ANY(h_ids);
        END IF;
        SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}'), coalesce(array_agg(x.b ORDER BY x.id), '{}')
        INTO a_ids, a_bal
        FROM (SELECT id, balance_credits AS b FROM accounts WHERE id = ANY(h_accounts)
              ORDER BY id FOR UPDATE) x;
        a_take := array_fill(0::bigint, ARRAY[coalesce(array_length(a_ids, 1), 0)]);
        IF h_limited THEN
            INSERT INTO key_spend (key_id, period, spent_credits, held_credits)
            SELECT DISTINCT t.k, t.p, 0, 0 FROM unnest(h_keys, h_periods, h_limits) AS t(k, p, l)
            WHERE t.l IS NOT NULL ORDER BY 1, 2
            ON CONFLICT DO NOTHING;
            SELECT coalesce(array_agg(ks.key_id), '{}'), coalesce(array_agg(ks.period), '{}'),
                   coalesce(array_agg(ks.spent_credits + ks.held_credits), '{}')
            INTO k_keys, k_periods, k_used
            FROM key_spend ks
            WHERE (ks.key_id, ks.period) IN (
                SELECT t.k, t.p FROM unnest(h_keys, h_periods, h_limits) AS t(k, p, l) WHERE t.l IS NOT NULL);
            k_take := array_fill(0::bigint, ARRAY[coalesce(array_length(k_keys, 1), 0)]);
        END IF;
        codes := array_fill(0::smallint, ARRAY[n]);
        FOR i IN 1..n LOOP
            CONTINUE WHEN h_ids[i] = ANY(existing);
            ai := array_position(a_ids, h_accounts[i]);
            IF ai IS NULL OR a_bal[ai] < h_credits[i] THEN
                codes[i] := 1;
                CONTINUE;
            END IF;
            IF h_limits[i] IS NOT NULL THEN
                ki := NULL;
                FOR j IN 1..coalesce(array_length(k_keys, 1), 0) LOOP
                    IF k_keys[j] = h_keys[i] AND k_periods[j] = h_periods[i] THEN
                        ki := j;
                        EXIT;
                    END IF;
                END LOOP;
                IF ki IS NULL OR k_used[ki] + h_credits[i] > h_limits[i] THEN
                    codes[i] := 2;
                    CONTINUE;
                END IF;
                k_used[ki] := k_used[ki] + h_credits[i];
                k_take[ki] := k_take[ki] + h_credits[i];
            END IF;
            a_bal[ai] := a_bal[ai] - h_credits[i];
            a_take[ai] := a_take[ai] + h_credits[i];
        END LOOP;
        IF h_limited THEN
            UPDATE key_spend ks SET held_credits = ks.held_credits + t.amount
            FROM unnest(k_keys, k_periods, k_take) AS t(k, p, amount)
            WHERE ks.key_id = t.k AND ks.period = t.p AND t.amount <> 0;
        END IF;
        WITH take AS (
            UPDATE accounts a SET balance_credits = a.balance_credits - t.amount
            FROM unnest(a_ids, a_take) AS t(id, amount) WHERE a.id = t.id AND t.amount <> 0
        )
        INSERT INTO holds (inference_id, account_id, key_id, period, credits, created_at, owner)
        SELECT t.id, t.a, t.k, t.p, t.c, now(), p_owner
        FROM unnest(h_ids, h_accounts, h_keys, h_periods, h_credits, codes) AS t(id, a, k, p, c, code)
        WHERE t.code = 0 AND NOT (t.id = ANY(existing));
    END IF;

END
$fn$;
""".replace("@LOG_COLUMNS@", LOG_COLUMNS)


def upgrade() -> None:
    with op.batch_alter_table("holds") as batch:
        batch.add_column(sa.Column("owner", sa.BigInteger, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPLY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS modelgate_ledger_apply(bigint, boolean, boolean, text[], integer[],"
            " bigint[], text[], boolean, text[], integer[], integer[], text[], bigint[], bigint[], boolean,"
            " text[], jsonb)"
        )
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("owner")
