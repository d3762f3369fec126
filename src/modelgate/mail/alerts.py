"""Alert mails, checked every ``MODELGATE_ALERT_INTERVAL`` seconds by each instance (off the
request path): a low balance once per top-up, a key's spending limit once per limit period. Each is
claimed in the database before it is sent, so several instances send it once."""

from __future__ import annotations

from datetime import datetime

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.mail import messages
from modelgate.mail.sender import Mail, Mailer
from modelgate.store import alerts
from modelgate.store.db import Engine
from modelgate.store.ledger import period_key

RETENTIONS = ("day", "week", "month", None)


def alert_base_url(mailer: Mailer) -> str:
    s = mailer.settings
    return s.public_url or f"http://{s.host}:{s.port}"


async def send_alerts(engine: Engine, mailer: Mailer, *, now: datetime | None = None) -> int:
    """Send the alerts due now; the number sent."""
    if not mailer.configured:
        return 0
    s = mailer.settings
    base = alert_base_url(mailer)
    due: list[Mail] = []
    async with engine.begin() as conn:
        if s.low_balance_usd > 0:
            threshold = round(s.low_balance_usd * CREDITS_PER_USD)
            for low in await alerts.low_balances(conn, below_credits=threshold):
                if await alerts.claim_alert(
                    conn, account_id=low.account_id, kind=alerts.LOW_BALANCE, ref=low.ref
                ):
                    due.append(
                        messages.low_balance(
                            to=low.email,
                            base_url=base,
                            balance_credits=low.balance_credits,
                            threshold_credits=threshold,
                        )
                    )
        periods = sorted({period_key(r, now) for r in RETENTIONS})
        for key in await alerts.key_budgets(conn, periods=periods, percent=s.budget_alert_percent):
            if await alerts.claim_alert(conn, account_id=key.account_id, kind=alerts.BUDGET, ref=key.ref):
                due.append(
                    messages.key_budget(
                        to=key.email,
                        base_url=base,
                        key_name=key.key_name,
                        spent_credits=key.spent_credits,
                        limit_credits=key.limit_credits,
                        period=key.period,
                    )
                )
    sent = 0
    for mail in due:
        sent += await mailer.send(mail)
    return sent
