"""The mails modelgate sends, as plain text, and the hook other features call to send them.

Links are absolute: ``base_url`` is ``MODELGATE_PUBLIC_URL`` or the address of the request that
caused the mail. ``send_invitation`` is the invitation hook (organisations call it).
"""

from __future__ import annotations

from datetime import timedelta

from modelgate.billing.amounts import usd_exact
from modelgate.mail.sender import Mail, Mailer

VERIFY_PATH = "/app/verify/"
RESET_PATH = "/app/reset/"


def link(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _hours(ttl: timedelta) -> str:
    hours = max(1, round(ttl.total_seconds() / 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def verification(*, to: str, base_url: str, token: str, ttl: timedelta) -> Mail:
    return Mail(
        to,
        "Confirm your email address",
        f"Welcome to modelgate.\n\nConfirm that {to} is your address by opening this link "
        f"(it works once, for {_hours(ttl)}):\n\n{link(base_url, VERIFY_PATH + token)}\n\n"
        "If you did not sign up, ignore this mail: nothing happens without the link.\n",
    )


def password_reset(*, to: str, base_url: str, token: str, ttl: timedelta) -> Mail:
    return Mail(
        to,
        "Reset your password",
        "Someone (hopefully you) asked to reset the password of the modelgate account "
        f"{to}.\n\nChoose a new password here (the link works once, for {_hours(ttl)}):\n\n"
        f"{link(base_url, RESET_PATH + token)}\n\n"
        "If you did not ask, ignore this mail: your password stays as it is.\n",
    )


def invitation(*, to: str, inviter: str, organisation: str, accept_url: str) -> Mail:
    return Mail(
        to,
        f"{inviter} invited you to {organisation}",
        f"{inviter} invited you to join {organisation} on modelgate.\n\n"
        f"Accept the invitation here:\n\n{accept_url}\n\n"
        "If you do not know them, ignore this mail.\n",
    )


def low_balance(*, to: str, base_url: str, balance_credits: int, threshold_credits: int) -> Mail:
    return Mail(
        to,
        "Your modelgate balance is low",
        f"The balance of {to} is {usd_exact(balance_credits)}, below {usd_exact(threshold_credits)}.\n"
        "Requests are refused once it reaches $0.00.\n\n"
        f"See your balance and how to add credits: {link(base_url, '/app/billing')}\n",
    )


def key_budget(
    *, to: str, base_url: str, key_name: str, spent_credits: int, limit_credits: int, period: str
) -> Mail:
    share = spent_credits * 100 // max(1, limit_credits)
    reached = spent_credits >= limit_credits
    state = "has reached" if reached else f"has used {share}% of"
    return Mail(
        to,
        f"Key {key_name} {'reached' if reached else 'is near'} its spending limit",
        f"The API key {key_name} {state} its spending limit: {usd_exact(spent_credits)} of "
        f"{usd_exact(limit_credits)} ({period}).\n"
        + ("Its requests are refused until the period ends or the limit is raised.\n" if reached else "")
        + f"\nManage your keys: {link(base_url, '/app/keys')}\n",
    )


async def send_invitation(
    mailer: Mailer, *, to: str, inviter: str, organisation: str, accept_url: str
) -> bool:
    """The invitation hook: mail ``to`` an invitation to ``organisation`` from ``inviter``. False
    when no SMTP server is configured or delivery failed (the caller then shows ``accept_url`` to the
    inviter to pass on)."""
    return await mailer.send(
        invitation(to=to, inviter=inviter, organisation=organisation, accept_url=accept_url)
    )
