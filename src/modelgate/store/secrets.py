"""Instance secrets kept in the ``settings`` table, created on first use and shared by every
worker and instance that uses the same database (e.g. the key that signs pagination cursors).

Values that must stay readable but not in clear text in the database (TOTP secrets, provider keys
entered in the console) are *sealed*: AES-256-GCM under the instance secret ``sealing_key``, with a
random 96-bit nonce and the purpose as associated data (a sealed TOTP secret does not open as
anything else). Sealed text: ``v1:`` + urlsafe base64 of nonce || ciphertext+tag.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Setting

SEALING_KEY = "sealing_key"
_VERSION = "v1:"


class SealError(ValueError):
    """Sealed text that does not open (altered, another instance's key, another purpose)."""


async def instance_secret(engine: AsyncEngine, name: str) -> bytes:
    """The secret called ``name``: read it, or create it (the first writer wins a race)."""
    async with engine.begin() as conn:
        return await instance_secret_in(conn, name)


async def instance_secret_in(conn: AsyncConnection, name: str) -> bytes:
    """``instance_secret`` in the caller's transaction."""
    ins = dialect_insert(conn.dialect.name, Setting)
    await conn.execute(ins.values(key=name, value=secrets.token_hex(32)).on_conflict_do_nothing())
    value = (await conn.execute(select(Setting.value).where(Setting.key == name))).scalar_one()
    return bytes.fromhex(value)


def seal_with(key: bytes, plaintext: str, *, purpose: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal_with(key: bytes, sealed: str, *, purpose: str) -> str:
    if not sealed.startswith(_VERSION):
        raise SealError("unknown sealed format")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_VERSION) :].encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed text does not open") from exc


async def seal(conn: AsyncConnection, plaintext: str, *, purpose: str) -> str:
    """``plaintext`` sealed under this instance's sealing key (created on first use)."""
    return seal_with(await instance_secret_in(conn, SEALING_KEY), plaintext, purpose=purpose)


async def unseal(conn: AsyncConnection, sealed: str, *, purpose: str) -> str:
    """The plaintext of ``seal(...)``; SealError when it does not open."""
    return unseal_with(await instance_secret_in(conn, SEALING_KEY), sealed, purpose=purpose)
