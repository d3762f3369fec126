"""Two-factor credentials: an account's TOTP secret (sealed, ``store/secrets.py``), the last time
step accepted (a code works once), its recovery codes (SHA-256 digests, deleted when used), and the
operator's "every account must use two-factor sign-in" setting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Setting
from modelgate.store.schema_self_service import RecoveryCode, TotpCredential
from modelgate.store.secrets import seal, unseal

PURPOSE = "totp"
REQUIRE_SETTING = "require_two_factor"


@dataclass(frozen=True, slots=True)
class TotpState:
    secret: str
    enabled: bool
    last_step: int


async def load_totp(conn: AsyncConnection, *, account_id: int) -> TotpState | None:
    row = (
        await conn.execute(
            select(TotpCredential.secret_sealed, TotpCredential.enabled_at, TotpCredential.last_step).where(
                TotpCredential.account_id == account_id
            )
        )
    ).first()
    if row is None:
        return None
    secret = await unseal(conn, row.secret_sealed, purpose=PURPOSE)
    return TotpState(secret, row.enabled_at is not None, int(row.last_step))


async def two_factor_enabled(conn: AsyncConnection, *, account_id: int) -> bool:
    query = select(TotpCredential.account_id).where(
        TotpCredential.account_id == account_id, TotpCredential.enabled_at.is_not(None)
    )
    return (await conn.execute(query)).first() is not None


async def start_enrolment(conn: AsyncConnection, *, account_id: int, secret: str) -> None:
    """A pending secret (replacing any pending one; an enabled credential is left alone)."""
    sealed = await seal(conn, secret, purpose=PURPOSE)
    await conn.execute(
        delete(TotpCredential).where(
            TotpCredential.account_id == account_id, TotpCredential.enabled_at.is_(None)
        )
    )
    ins = dialect_insert(conn.dialect.name, TotpCredential)
    await conn.execute(
        ins.values(account_id=account_id, secret_sealed=sealed, last_step=0).on_conflict_do_nothing()
    )


async def accept_step(conn: AsyncConnection, *, account_id: int, step: int) -> bool:
    """Record ``step`` as used; False when it (or a later one) was used already (a replay, or a
    concurrent use of the same code)."""
    result = await conn.execute(
        update(TotpCredential)
        .where(TotpCredential.account_id == account_id, TotpCredential.last_step < step)
        .values(last_step=step)
    )
    return result.rowcount == 1


async def enable(conn: AsyncConnection, *, account_id: int, recovery_digests: list[str]) -> None:
    await conn.execute(
        update(TotpCredential)
        .where(TotpCredential.account_id == account_id)
        .values(enabled_at=datetime.now(UTC))
    )
    await replace_recovery_codes(conn, account_id=account_id, digests=recovery_digests)


async def disable(conn: AsyncConnection, *, account_id: int) -> None:
    await conn.execute(delete(TotpCredential).where(TotpCredential.account_id == account_id))
    await conn.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))


async def replace_recovery_codes(conn: AsyncConnection, *, account_id: int, digests: list[str]) -> None:
    await conn.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    if digests:
        await conn.execute(insert(RecoveryCode), [{"digest": d, "account_id": account_id} for d in digests])


async def use_recovery_code(conn: AsyncConnection, *, account_id: int, digest: str) -> bool:
    """Delete the code: True when it existed (so it works once)."""
    result = await conn.execute(
        delete(RecoveryCode).where(RecoveryCode.account_id == account_id, RecoveryCode.digest == digest)
    )
    return result.rowcount == 1


async def recovery_codes_left(conn: AsyncConnection, *, account_id: int) -> int:
    query = select(func.count()).select_from(RecoveryCode).where(RecoveryCode.account_id == account_id)
    return int((await conn.execute(query)).scalar_one())


async def two_factor_required(conn: AsyncConnection) -> bool:
    value = (await conn.execute(select(Setting.value).where(Setting.key == REQUIRE_SETTING))).scalar()
    return value == "1"


async def set_two_factor_required(conn: AsyncConnection, *, required: bool) -> None:
    await conn.execute(delete(Setting).where(Setting.key == REQUIRE_SETTING))
    if required:
        await conn.execute(insert(Setting).values(key=REQUIRE_SETTING, value="1"))
