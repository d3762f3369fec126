"""Settings an operator changes at run time on ``/admin/settings``, kept in the ``settings`` table.

Each has its default in the environment (``MODELGATE_SIGNUP_CREDITS_USD``, ``MODELGATE_CREDITS_HELP``,
``MODELGATE_BODY_LOGGING``, ``MODELGATE_BODY_RETENTION_DAYS``); a value saved by an operator overrides
it until it is reset. Body logging is read on the request path from memory: every instance polls it
(``gateway/bodies.py``), so a change is live everywhere within seconds, without a restart.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.settings import Settings
from modelgate.store.db import dialect_insert
from modelgate.store.schema import Setting

SIGNUP_CREDITS = "signup_credits_usd"
CREDITS_HELP = "credits_help"
BODY_LOGGING = "body_logging"  # "1" or "0"
BODY_RETENTION = "body_retention_days"
MAX_BODY_RETENTION_DAYS = 3650.0
MAX_SIGNUP_CREDITS_USD = 1_000_000.0
MAX_HELP_LENGTH = 4000
DEFAULT_CREDITS_HELP = (
    "Credits are added by the operator of this gateway. Ask them for a top-up, and tell them the "
    "email address of your account."
)


@dataclass(frozen=True, slots=True)
class SiteSettings:
    signup_credits_usd: float
    credits_help: str
    overridden: frozenset[str]
    body_logging: bool = False
    body_retention_days: float = 7.0


async def load_site_settings(conn: AsyncConnection, defaults: Settings) -> SiteSettings:
    rows = dict((await conn.execute(select(Setting.key, Setting.value).where(Setting.key.in_(_KEYS)))).all())
    credits = defaults.signup_credits_usd
    if SIGNUP_CREDITS in rows:
        with contextlib.suppress(ValueError):
            credits = min(MAX_SIGNUP_CREDITS_USD, max(0.0, float(rows[SIGNUP_CREDITS])))
    help_text = rows.get(CREDITS_HELP) or defaults.credits_help or DEFAULT_CREDITS_HELP
    logging_on = defaults.body_logging if BODY_LOGGING not in rows else rows[BODY_LOGGING] == "1"
    retention = defaults.body_retention_days
    if BODY_RETENTION in rows:
        with contextlib.suppress(ValueError):
            retention = min(MAX_BODY_RETENTION_DAYS, max(0.0, float(rows[BODY_RETENTION])))
    return SiteSettings(credits, help_text, frozenset(rows), logging_on, retention)


async def save_site_setting(conn: AsyncConnection, *, key: str, value: str | None) -> None:
    """Store ``value`` for ``key`` (one of this module's keys); None goes back to the default."""
    if key not in _KEYS:
        raise ValueError(f"unknown setting {key!r}")
    await conn.execute(delete(Setting).where(Setting.key == key))
    if value is not None:
        await conn.execute(dialect_insert(conn.dialect.name, Setting).values(key=key, value=value))


_KEYS = (SIGNUP_CREDITS, CREDITS_HELP, BODY_LOGGING, BODY_RETENTION)
