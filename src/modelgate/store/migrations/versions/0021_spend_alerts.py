"""Spend alerts delivered (issues 23 and 24): a budget's webhook secret, OpenAI's amount alerts on a
budget, the alerts raised (one per level, threshold and period), webhook deliveries and attempts.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("budgets") as batch:
        batch.add_column(sa.Column("alert_webhook_secret", sa.Text, nullable=True))
    op.create_table(
        "spend_alert_rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("budget_id", sa.Integer, sa.ForeignKey("budgets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("threshold_credits", sa.BigInteger, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject_prefix", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_spend_alert_rules_budget_id", "spend_alert_rules", ["budget_id"])
    op.create_table(
        "spend_alert_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ref", sa.String(160), nullable=False, unique=True),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("organisations.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("project_id", sa.Integer, nullable=True),
        sa.Column("member_id", sa.Integer, nullable=True),
        sa.Column("budget_id", sa.Integer, nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("threshold_percent", sa.Integer, nullable=True),
        sa.Column("threshold_credits", sa.BigInteger, nullable=False),
        sa.Column("limit_credits", sa.BigInteger, nullable=True),
        sa.Column("spent_credits", sa.BigInteger, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_spend_alert_events_org_id", "spend_alert_events", ["org_id"])
    op.create_index("ix_spend_alert_events_created_at", "spend_alert_events", ["created_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("spend_alert_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("secret_sealed", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])
    op.create_index("ix_webhook_deliveries_next_attempt_at", "webhook_deliveries", ["next_attempt_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.String(40),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("spend_alert_events")
    op.drop_table("spend_alert_rules")
    with op.batch_alter_table("budgets") as batch:
        batch.drop_column("alert_webhook_secret")
