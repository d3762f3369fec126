"""The tables of spend alerts (issues 23 and 24, docs/organisations.md "Spend alerts"): OpenAI's
amount thresholds on a budget, every alert raised (once per level, threshold and period: the unique
``ref`` is the claim shared by every instance), and its webhook deliveries with every attempt; part
of ``store/schema.py``'s metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class SpendAlertRule(Base):
    """A spend alert of OpenAI's Admin API: an amount (credits) of its budget's period spend, mailed
    to ``recipients`` (and posted to the budget's webhook, as its percentage thresholds are)."""

    __tablename__ = "spend_alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id", ondelete="CASCADE"), index=True)
    threshold_credits: Mapped[int] = mapped_column(BigInteger)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject_prefix: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SpendAlertEvent(Base):
    """An alert raised: a level's spend crossed a threshold in one period. ``ref`` (unique) names
    the level, the threshold and the period bucket: the first instance to insert it raises it."""

    __tablename__ = "spend_alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(160), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(Integer, default=None)
    member_id: Mapped[int | None] = mapped_column(Integer, default=None)
    budget_id: Mapped[int | None] = mapped_column(Integer, default=None)  # kept when the budget goes
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)  # level key: its own limit
    level: Mapped[str] = mapped_column(String(16))  # organisation | project | member | key
    period: Mapped[str] = mapped_column(String(32))  # the bucket: month:2026-12, day:2026-12-03, all
    threshold_percent: Mapped[int | None] = mapped_column(Integer, default=None)
    threshold_credits: Mapped[int] = mapped_column(BigInteger)
    limit_credits: Mapped[int | None] = mapped_column(BigInteger, default=None)
    spent_credits: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class WebhookDelivery(Base):
    """One alert to one webhook: the exact body and (sealed) secret it is signed with, kept so
    every retry sends the same bytes under the same id (``msg_...``: receivers deduplicate on it)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("spend_alert_events.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    body: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class WebhookAttempt(Base):
    """One try of a delivery: when, the receiver's status (or the error), how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
