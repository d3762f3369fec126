"""Holds require a live key: ``modelgate_ledger_apply`` (migration 0006) refuses a hold whose key is
deleted or disabled, or whose account is disabled, with a code of its own (3: key deleted, 4: account
disabled, 5: key disabled), read in the same statement as the balance. Without Redis, a key revoked
through one instance is then refused by every instance on its next request (``accounts/keys.py``).

The function is rewritten from its current definition (as 0009 does), so that the changes other
migrations made to its settle and log parts are kept; only the hold part changes, and each fragment
it replaces must be found. The signature is unchanged.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SELECT_ACCOUNTS = (
    "        SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}'),"
    " coalesce(array_agg(x.b ORDER BY x.id), '{}')"
)
# (before, after) fragments of the function's body.
CHANGES = [
    (
        """    a_take bigint[];
""",
        """    a_take bigint[];
    a_off boolean[];
    r_keys integer[];
    r_state smallint[];
    ri integer;
""",
    ),
    (
        _SELECT_ACCOUNTS
        + """
        INTO a_ids, a_bal
        FROM (SELECT id, balance_credits AS b FROM accounts WHERE id = ANY(h_accounts)
              ORDER BY id FOR UPDATE) x;
""",
        _SELECT_ACCOUNTS
        + """,
               coalesce(array_agg(x.off ORDER BY x.id), '{}')
        INTO a_ids, a_bal, a_off
        FROM (SELECT id, balance_credits AS b, disabled AS off FROM accounts WHERE id = ANY(h_accounts)
              ORDER BY id FOR UPDATE) x;
        -- The keys' state now (3: deleted, 5: disabled, 0: live); a key missing counts as deleted.
        SELECT coalesce(array_agg(id), '{}'),
               coalesce(array_agg((CASE WHEN deleted_at IS NOT NULL THEN 3 WHEN disabled THEN 5 ELSE 0 END)
                                  ::smallint), '{}')
        INTO r_keys, r_state
        FROM api_keys WHERE id = ANY(h_keys);
""",
    ),
    (
        """            ai := array_position(a_ids, h_accounts[i]);
            IF ai IS NULL OR a_bal[ai] < h_credits[i] THEN
""",
        """            ai := array_position(a_ids, h_accounts[i]);
            ri := NULL;
            IF h_keys[i] IS NOT NULL THEN
                ri := array_position(r_keys, h_keys[i]);
                IF ri IS NULL OR r_state[ri] = 3 THEN
                    codes[i] := 3;
                    CONTINUE;
                END IF;
            END IF;
            IF ai IS NOT NULL AND a_off[ai] THEN
                codes[i] := 4;
                CONTINUE;
            END IF;
            IF ri IS NOT NULL AND r_state[ri] = 5 THEN
                codes[i] := 5;
                CONTINUE;
            END IF;
            IF ai IS NULL OR a_bal[ai] < h_credits[i] THEN
""",
    ),
]


def _rewrite(changes: list[tuple[str, str]]) -> None:
    bind = op.get_bind()
    src = bind.execute(sa.text("SELECT pg_get_functiondef('modelgate_ledger_apply'::regproc)")).scalar()
    if not isinstance(src, str):
        raise RuntimeError("modelgate_ledger_apply is missing (migration 0006)")
    for before, after in changes:
        if src.count(before) != 1:
            raise RuntimeError(f"modelgate_ledger_apply: cannot find the fragment to change: {before[:80]!r}")
        src = src.replace(before, after)
    bind.exec_driver_sql(src)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(CHANGES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite([(after, before) for before, after in CHANGES])
