"""Organisations, projects, members and budgets (docs/organisations.md).

- New tables: ``organisations`` (id = its pool account's id), ``org_members``, ``projects``,
  ``project_members``, ``budgets``, ``budget_spend``.
- ``accounts.postpaid``; ``api_keys``: ``project_id``, ``member_id``, ``allowed_models``, ``rpm``,
  ``tpm``, ``expires_at``; ``holds.budgets`` (the budget buckets a hold counts against).
- Data: every account becomes a personal organisation (its own pool: balances, ledger, holds, logs
  and stored responses keep their ``account_id``) owned by it, with one default project it owns;
  every key joins its account's default project as the account's key.
- PostgreSQL: ``modelgate_ledger_apply`` is rewritten from its current definition (as 0009 and 0010
  do; each fragment it replaces must be found) to take ``h_budgets`` (each hold's buckets, as in
  ``holds.budgets``): a hold is admitted only if every budget bucket has room (code ``10 + i``:
  refused by the hold's i-th budget), its balance covers it unless the pool is postpaid, and its
  settle moves the buckets' held credits to spent.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_NOW = sa.DateTime(timezone=True)

OLD_ARGS = "p_log_cols text[], p_logs jsonb,"
NEW_ARGS = "p_log_cols text[], p_logs jsonb, h_budgets text[],"
OLD_SIGNATURE = (
    "bigint, boolean, boolean, text[], integer[], bigint[], text[], boolean, text[], integer[], integer[],"
    " text[], bigint[], bigint[], boolean, text[], jsonb"
)
NEW_SIGNATURE = OLD_SIGNATURE + ", text[]"

# (before, after) fragments of the function's body (0006 as changed by 0009 and 0010).
CHANGES = [
    (
        "    a_off boolean[];\n",
        """    a_off boolean[];
    a_post boolean[];
    b_ids integer[] := '{}';
    b_periods text[] := '{}';
    b_used bigint[] := '{}';
    b_limits bigint[] := '{}';
    b_take bigint[] := '{}';
    b_spec text;
    b_room boolean;
    bk integer;
    bj integer;
""",
    ),
    (
        "               coalesce(array_agg(x.off ORDER BY x.id), '{}')\n"
        "        INTO a_ids, a_bal, a_off\n"
        "        FROM (SELECT id, balance_credits AS b, disabled AS off FROM accounts",
        "               coalesce(array_agg(x.off ORDER BY x.id), '{}'),"
        " coalesce(array_agg(x.post ORDER BY x.id), '{}')\n"
        "        INTO a_ids, a_bal, a_off, a_post\n"
        "        FROM (SELECT id, balance_credits AS b, disabled AS off, postpaid AS post FROM accounts",
    ),
    (
        "        codes := array_fill(0::smallint, ARRAY[n]);\n",
        """        IF EXISTS (SELECT 1 FROM unnest(h_budgets) AS hb WHERE hb IS NOT NULL) THEN
            -- The budget buckets of this batch's holds (each budget belongs to the account locked
            -- above, so its rows are only ever changed under that lock).
            INSERT INTO budget_spend (budget_id, period, spent_credits, held_credits)
            SELECT DISTINCT split_part(x, '/', 1)::integer, split_part(x, '/', 2), 0, 0
            FROM unnest(h_budgets) AS hb, unnest(string_to_array(hb, ' ')) AS x
            WHERE hb IS NOT NULL AND EXISTS (SELECT 1 FROM budgets WHERE id = split_part(x, '/', 1)::integer)
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING;
            SELECT coalesce(array_agg(bs.budget_id), '{}'), coalesce(array_agg(bs.period), '{}'),
                   coalesce(array_agg(bs.spent_credits + bs.held_credits), '{}'),
                   coalesce(array_agg(b.limit_credits), '{}')
            INTO b_ids, b_periods, b_used, b_limits
            FROM budget_spend bs JOIN budgets b ON b.id = bs.budget_id
            WHERE (bs.budget_id, bs.period) IN (
                SELECT split_part(x, '/', 1)::integer, split_part(x, '/', 2)
                FROM unnest(h_budgets) AS hb, unnest(string_to_array(hb, ' ')) AS x WHERE hb IS NOT NULL);
            b_take := array_fill(0::bigint, ARRAY[coalesce(array_length(b_ids, 1), 0)]);
        END IF;
        codes := array_fill(0::smallint, ARRAY[n]);
""",
    ),
    (
        """            IF ai IS NULL OR a_bal[ai] < h_credits[i] THEN
                codes[i] := 1;
                CONTINUE;
            END IF;
""",
        """            IF ai IS NULL OR (a_bal[ai] < h_credits[i] AND NOT a_post[ai]) THEN
                codes[i] := 1;
                CONTINUE;
            END IF;
            IF h_budgets IS NOT NULL AND h_budgets[i] IS NOT NULL THEN
                -- Every budget bucket must have room (a budget deleted meanwhile no longer limits).
                b_room := true;
                bk := 0;
                FOREACH b_spec IN ARRAY string_to_array(h_budgets[i], ' ') LOOP
                    FOR bj IN 1..coalesce(array_length(b_ids, 1), 0) LOOP
                        IF b_ids[bj] = split_part(b_spec, '/', 1)::integer
                           AND b_periods[bj] = split_part(b_spec, '/', 2) THEN
                            IF b_used[bj] + h_credits[i] > b_limits[bj] THEN
                                codes[i] := 10 + bk;
                                b_room := false;
                            END IF;
                            EXIT;
                        END IF;
                    END LOOP;
                    EXIT WHEN NOT b_room;
                    bk := bk + 1;
                END LOOP;
                CONTINUE WHEN NOT b_room;
            END IF;
""",
    ),
    (
        """            a_bal[ai] := a_bal[ai] - h_credits[i];
            a_take[ai] := a_take[ai] + h_credits[i];
""",
        """            IF h_budgets IS NOT NULL AND h_budgets[i] IS NOT NULL THEN
                FOREACH b_spec IN ARRAY string_to_array(h_budgets[i], ' ') LOOP
                    FOR bj IN 1..coalesce(array_length(b_ids, 1), 0) LOOP
                        IF b_ids[bj] = split_part(b_spec, '/', 1)::integer
                           AND b_periods[bj] = split_part(b_spec, '/', 2) THEN
                            b_used[bj] := b_used[bj] + h_credits[i];
                            b_take[bj] := b_take[bj] + h_credits[i];
                            EXIT;
                        END IF;
                    END LOOP;
                END LOOP;
            END IF;
            a_bal[ai] := a_bal[ai] - h_credits[i];
            a_take[ai] := a_take[ai] + h_credits[i];
""",
    ),
    (
        """        WITH take AS (
            UPDATE accounts a""",
        """        IF coalesce(array_length(b_ids, 1), 0) > 0 THEN
            UPDATE budget_spend bs SET held_credits = bs.held_credits + t.amount
            FROM unnest(b_ids, b_periods, b_take) AS t(b, p, amount)
            WHERE bs.budget_id = t.b AND bs.period = t.p AND t.amount <> 0;
        END IF;
        WITH take AS (
            UPDATE accounts a""",
    ),
    (
        """        INSERT INTO holds (inference_id, account_id, key_id, period, credits, created_at, owner)
        SELECT t.id, t.a, t.k, t.p, t.c, now(), p_owner
        FROM unnest(h_ids, h_accounts, h_keys, h_periods, h_credits, codes) AS t(id, a, k, p, c, code)
""",
        """        INSERT INTO holds
            (inference_id, account_id, key_id, period, credits, created_at, owner, budgets)
        SELECT t.id, t.a, t.k, t.p, t.c, now(), p_owner, t.b
        FROM unnest(h_ids, h_accounts, h_keys, h_periods, h_credits, codes, h_budgets)
             AS t(id, a, k, p, c, code, b)
""",
    ),
    (
        """                RETURNING h.inference_id, h.account_id, h.key_id, h.period, h.credits,
""",
        """                RETURNING h.inference_id, h.account_id, h.key_id, h.period, h.credits, h.budgets,
""",
    ),
    (
        """            ), refund AS (
                UPDATE accounts a SET balance_credits = a.balance_credits + r.amount
                FROM (SELECT account_id, sum(credits - charge)::bigint AS amount FROM d GROUP BY account_id) r
                WHERE a.id = r.account_id AND r.amount <> 0
            )
            SELECT array_agg(coalesce(d.charge, -1) ORDER BY s.ord) INTO settled
            FROM s LEFT JOIN d ON d.inference_id = s.id;
        ELSE""",
        """            ), bspend AS (
                UPDATE budget_spend bs
                SET held_credits = bs.held_credits - r.held, spent_credits = bs.spent_credits + r.spent
                FROM (SELECT split_part(x, '/', 1)::integer AS b, split_part(x, '/', 2) AS p,
                             sum(d.credits)::bigint AS held, sum(d.charge)::bigint AS spent
                      FROM d, unnest(string_to_array(d.budgets, ' ')) AS x
                      WHERE d.budgets IS NOT NULL GROUP BY 1, 2) r
                WHERE bs.budget_id = r.b AND bs.period = r.p
            ), refund AS (
                UPDATE accounts a SET balance_credits = a.balance_credits + r.amount
                FROM (SELECT account_id, sum(credits - charge)::bigint AS amount FROM d GROUP BY account_id) r
                WHERE a.id = r.account_id AND r.amount <> 0
            )
            SELECT array_agg(coalesce(d.charge, -1) ORDER BY s.ord) INTO settled
            FROM s LEFT JOIN d ON d.inference_id = s.id;
        ELSE""",
    ),
]


def _rewrite(changes: list[tuple[str, str]], drop: str) -> None:
    bind = op.get_bind()
    src = bind.execute(sa.text("SELECT pg_get_functiondef('modelgate_ledger_apply'::regproc)")).scalar()
    if not isinstance(src, str):
        raise RuntimeError("modelgate_ledger_apply is missing (migration 0006)")
    for before, after in changes:
        if src.count(before) != 1:
            raise RuntimeError(f"modelgate_ledger_apply: cannot find the fragment to change: {before[:80]!r}")
        src = src.replace(before, after)
    bind.exec_driver_sql(f"DROP FUNCTION modelgate_ledger_apply({drop})")
    bind.exec_driver_sql(src)


def upgrade() -> None:
    op.add_column("accounts", sa.Column("postpaid", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("personal", sa.Boolean, nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
    )
    op.create_table(
        "org_members",
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
    )
    op.create_index("ix_org_members_account_id", "org_members", ["account_id"])
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("allowed_models", sa.JSON, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("created_at", _NOW, nullable=False),
    )
    op.create_index("ix_projects_org_id", "projects", ["org_id"])
    op.create_table(
        "project_members",
        sa.Column(
            "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _NOW, nullable=False),
    )
    op.create_index("ix_project_members_account_id", "project_members", ["account_id"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("period", sa.String(8), nullable=False),
        sa.Column("limit_credits", sa.BigInteger, nullable=False),
        sa.Column("alert_thresholds", sa.JSON, nullable=True),
        sa.Column("alert_webhook", sa.String(2000), nullable=True),
        sa.Column("created_at", _NOW, nullable=False),
    )
    op.create_index("ix_budgets_org_id", "budgets", ["org_id"])
    op.create_table(
        "budget_spend",
        sa.Column("budget_id", sa.Integer, sa.ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("period", sa.String(32), primary_key=True),
        sa.Column("spent_credits", sa.BigInteger, nullable=False),
        sa.Column("held_credits", sa.BigInteger, nullable=False),
    )
    for name, type_ in (
        ("project_id", sa.Integer),
        ("member_id", sa.Integer),
        ("allowed_models", sa.JSON),
        ("rpm", sa.Integer),
        ("tpm", sa.Integer),
        ("expires_at", _NOW),
    ):
        op.add_column("api_keys", sa.Column(name, type_, nullable=True))
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])
    op.add_column("holds", sa.Column("budgets", sa.Text, nullable=True))
    _personal_organisations()
    if op.get_bind().dialect.name == "postgresql":
        _rewrite([(OLD_ARGS, NEW_ARGS), *CHANGES], OLD_SIGNATURE)


def _personal_organisations() -> None:
    """Each account: a personal organisation (its own pool), owned by it, with a default project."""
    yes = {"yes": True}
    op.execute(
        sa.text(
            "INSERT INTO organisations (id, name, personal, created_at) SELECT id, email, :yes, created_at"
            " FROM accounts"
        ).bindparams(**yes)
    )
    op.execute(
        "INSERT INTO org_members (org_id, account_id, role, created_at)"
        " SELECT id, id, 'owner', created_at FROM accounts"
    )
    op.execute(
        sa.text(
            "INSERT INTO projects (org_id, name, is_default, created_at)"
            " SELECT id, 'Default project', :yes, created_at FROM accounts ORDER BY id"
        ).bindparams(**yes)
    )
    op.execute(
        "INSERT INTO project_members (project_id, account_id, role, created_at)"
        " SELECT id, org_id, 'owner', created_at FROM projects"
    )
    op.execute(
        "UPDATE api_keys SET member_id = account_id,"
        " project_id = (SELECT p.id FROM projects p WHERE p.org_id = api_keys.account_id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rewrite(
            [(after, before) for before, after in reversed([(OLD_ARGS, NEW_ARGS), *CHANGES])], NEW_SIGNATURE
        )
    with op.batch_alter_table("holds") as batch:
        batch.drop_column("budgets")
    op.drop_index("ix_api_keys_project_id", "api_keys")
    with op.batch_alter_table("api_keys") as batch:
        for name in ("project_id", "member_id", "allowed_models", "rpm", "tpm", "expires_at"):
            batch.drop_column(name)
    for table in ("budget_spend", "budgets", "project_members", "projects", "org_members", "organisations"):
        op.drop_table(table)
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("postpaid")
