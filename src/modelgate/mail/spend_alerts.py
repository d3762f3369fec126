"""Spend alerts, raised and delivered off the request path (docs/organisations.md "Spend alerts").

Every ``spend_alert_interval`` seconds each instance runs ``SpendAlerts.tick``: the thresholds the
budgets' spend crossed in their current period are raised, each exactly once across every instance
(the first to insert its ``ref`` raises it, in the same transaction as its webhook delivery), mailed
when SMTP is configured, and kept for the consoles; then the webhook deliveries due are posted, each
attempt leased to one instance and recorded (status, latency, error), failures retried with backoff
under the same delivery id. Nothing here runs in a request: a settle never waits on a receiver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx

from modelgate.billing.amounts import usd_exact
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.mail import webhooks
from modelgate.mail.alerts import alert_base_url
from modelgate.mail.sender import Mail, Mailer
from modelgate.settings import Settings
from modelgate.store import key_alerts
from modelgate.store import organisations as orgs
from modelgate.store import spend_alerts as store
from modelgate.store.db import Engine
from modelgate.store.secrets import SEALING_KEY, instance_secret, unseal_with

log = logging.getLogger("modelgate.alerts")
SEAL_PURPOSE = "webhook"
EVENT_TYPE = "spend_alert.threshold_crossed"
MAX_WAIT = 36_000.0  # seconds: the longest pause between two attempts


def retry_delay(settings: Settings, failures: int) -> float:
    return float(min(settings.webhook_retry_base * 6 ** (failures - 1), MAX_WAIT))


def payload(c: store.Crossing, *, alert_id: int, now: datetime) -> dict[str, object]:
    """The JSON a webhook receives (Standard Webhooks' ``type``/``timestamp``/``data`` envelope)."""
    return {
        "type": EVENT_TYPE,
        "timestamp": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "alert_id": f"spendalert_{alert_id}",
            "organisation_id": c.org_id,
            "project_id": c.project_id,
            "member_id": c.member_id,
            "key_prefix": c.key_prefix,
            "level": c.level,
            "period": c.period,
            "threshold_percent": c.threshold_percent,
            "threshold_usd": c.threshold_credits / CREDITS_PER_USD,
            "limit_usd": c.limit_credits / CREDITS_PER_USD if c.limit_credits is not None else None,
            "spent_usd": c.spent_credits / CREDITS_PER_USD,
        },
    }


def alert_mail(c: store.Crossing, *, to: str, base_url: str) -> Mail:
    where = {"organisation": "The organisation", "project": f"Project {c.project_id}"}.get(
        c.level, f"Member {c.member_id} in project {c.project_id}"
    )
    what = (
        f"{c.threshold_percent}% of its {usd_exact(c.limit_credits)} budget"
        if c.threshold_percent is not None and c.limit_credits is not None
        else f"{usd_exact(c.threshold_credits)}"
    )
    subject = f"{where} has spent {what}"
    if c.subject_prefix:
        subject = f"{c.subject_prefix} {subject}"
    return Mail(
        to,
        subject,
        f"{where} has spent {usd_exact(c.spent_credits)} in {c.period}, reaching {what}.\n\n"
        f"See the organisation's budgets: {base_url.rstrip('/')}/app/organisation\n",
    )


class SpendAlerts:
    """The alert loop of one instance (``app.py`` runs ``tick`` periodically)."""

    def __init__(self, engine: Engine, settings: Settings, mailer: Mailer) -> None:
        self.engine, self.settings, self.mailer = engine, settings, mailer
        self.client = httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout)
        self._sealing_key: bytes | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def tick(self, now: datetime | None = None) -> tuple[int, int]:
        """(alerts raised here, deliveries attempted here)."""
        raised = await self.raise_due(now)
        return raised, await self.deliver_due(now)

    async def raise_due(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        mails: list[Mail] = []
        raised = 0
        async with self.engine.begin() as conn:
            pct = self.settings.budget_alert_percent
            keys = await key_alerts.key_crossings(conn, now=now, percents=tuple(sorted({pct, 100})))
            for c in await store.crossings(conn, now=now, more=keys):
                alert_id = await store.claim(conn, c, now=now)
                if alert_id is None:
                    continue  # another instance raised it
                raised += 1
                if c.webhook and c.webhook_secret:
                    body = json.dumps(payload(c, alert_id=alert_id, now=now), separators=(",", ":"))
                    await store.add_delivery(
                        conn,
                        delivery_id=webhooks.new_delivery_id(),
                        event_id=alert_id,
                        url=c.webhook,
                        body=body,
                        secret_sealed=c.webhook_secret,
                        now=now,
                    )
                if self.mailer.configured:
                    to = c.recipients
                    if to is None:
                        members = await orgs.org_members(conn, org_id=c.org_id)
                        to = tuple(email for _, email, role in members if role in orgs.ORG_MANAGERS)
                    base = alert_base_url(self.mailer)
                    mails.extend(alert_mail(c, to=addr, base_url=base) for addr in to if "@" in addr)
        for mail in mails:
            await self.mailer.send(mail)
        return raised

    async def deliver_due(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        until = now + timedelta(seconds=self.settings.webhook_timeout + 30)
        async with self.engine.begin() as conn:
            due = await store.due_deliveries(conn, now=now)
        mine = []
        for d in due:
            async with self.engine.begin() as conn:
                if await store.lease(conn, d, now=now, until=until):
                    mine.append(d)
        if not mine:
            return 0
        if self._sealing_key is None:
            self._sealing_key = await instance_secret(self.engine, SEALING_KEY)
        await asyncio.gather(*(self._attempt(d) for d in mine))
        return len(mine)

    async def _attempt(self, d: store.DueDelivery) -> None:
        attempt = d.attempts + 1
        started = datetime.now(UTC)
        clock = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            if self.settings.webhook_refuse_private and await webhooks.resolves_private(d.url):
                raise _Refused("the webhook's host resolves to a non-public address (webhook_refuse_private)")
            assert self._sealing_key is not None
            secret = unseal_with(self._sealing_key, d.secret_sealed, purpose=SEAL_PURPOSE)
            body = d.body.encode()
            stamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "user-agent": "modelgate-webhooks",
                "webhook-id": d.id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": webhooks.sign(secret, msg_id=d.id, timestamp=stamp, body=body),
            }
            async with asyncio.timeout(self.settings.webhook_timeout):  # the whole exchange
                resp = await self.client.post(d.url, content=body, headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except _Refused as exc:
            error = str(exc)
        except (httpx.TimeoutException, TimeoutError):
            error = f"timed out after {self.settings.webhook_timeout:g} s"
        except (httpx.HTTPError, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        latency = round((time.perf_counter() - clock) * 1000)
        if error is None:
            state, next_at = "delivered", None
        elif attempt >= self.settings.webhook_max_attempts:
            state, next_at = "failed", None
        else:
            state = "pending"
            next_at = datetime.now(UTC) + timedelta(seconds=retry_delay(self.settings, attempt))
        if error is not None:
            log.warning("webhook delivery %s attempt %d: %s", d.id, attempt, error)
        async with self.engine.begin() as conn:
            await store.record_attempt(
                conn,
                delivery_id=d.id,
                attempt=attempt,
                started_at=started,
                status_code=status,
                latency_ms=latency,
                error=error,
                state=state,
                next_attempt_at=next_at,
            )


class _Refused(Exception):
    pass
