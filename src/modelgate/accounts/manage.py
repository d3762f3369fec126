"""Checked changes to an account's keys (keyword-only, in the caller's transaction); the reads
and writes are ``store/key_rows.py``'s (re-exported here for the callers of before).

After an update or a delete the caller must invalidate the ``KeyAuthenticator`` cache
(``await keys.revoke(key_id=...)``) so that a disabled or deleted key is refused on its very next
request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelgate.accounts.service import check_key_settings
from modelgate.store.db import Conn
from modelgate.store.key_rows import KeyRecord, seed_spend, write_key

UNSET: Any = object()


async def update_key(
    conn: Conn,
    *,
    key_id: int,
    name: str | None = UNSET,
    disabled: bool = UNSET,
    scopes: list[str] | None = UNSET,
    limit: tuple[str, int] | None = UNSET,
    allowed_models: list[str] | None = UNSET,
    rpm: int | None = UNSET,
    tpm: int | None = UNSET,
    expires_at: datetime | None = UNSET,
    cache_mode: str | None = UNSET,
) -> KeyRecord:
    """Change the given fields (leave out a field to keep it). ``limit`` is ``(retention, credits)``
    or None to remove it; ``allowed_models``, ``rpm``, ``tpm``, ``expires_at`` None remove theirs.
    Setting a limit seeds the period's spend from the ledger, so a limit
    added mid-period counts what the key already spent in it."""
    values: dict[str, Any] = {}
    if name is not UNSET:
        values["name"] = name
    if disabled is not UNSET:
        values["disabled"] = bool(disabled)
    if scopes is not UNSET:
        check_key_settings(scopes=scopes, limit_retention=None)
        values["scopes"] = list(dict.fromkeys(scopes)) if scopes is not None else None
    if allowed_models is not UNSET:
        values["allowed_models"] = list(dict.fromkeys(allowed_models)) if allowed_models is not None else None
    for field, value in (("rpm", rpm), ("tpm", tpm), ("expires_at", expires_at), ("cache_mode", cache_mode)):
        if value is not UNSET:
            values[field] = value
    if limit is not UNSET:
        if limit is None:
            values["limit_retention"] = None
            values["limit_credits"] = None
        else:
            retention, credits = limit
            check_key_settings(scopes=None, limit_retention=retention)
            values["limit_retention"] = retention
            values["limit_credits"] = credits
            await seed_spend(conn, key_id=key_id, retention=retention)
    return await write_key(conn, key_id=key_id, values=values)
