"""The console's catalogue entries and the catalogue version: every edit bumps the version in the
same transaction, and each instance polls it (one indexed read) to reload the entries when it moved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Setting
from modelgate.store.schema_self_service import CatalogEntry
from modelgate.store.secrets import seal, unseal

VERSION_KEY = "catalog_version"
SECRET_PURPOSE = "catalog-provider"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    name: str
    body: str
    secret: str | None  # unsealed
    updated_by: str
    updated_at: datetime


async def catalog_version(conn: AsyncConnection) -> int:
    value = (await conn.execute(select(Setting.value).where(Setting.key == VERSION_KEY))).scalar()
    return int(value) if value and value.isdigit() else 0


async def _bump(conn: AsyncConnection) -> None:
    ins = dialect_insert(conn.dialect.name, Setting)
    await conn.execute(ins.values(key=VERSION_KEY, value="0").on_conflict_do_nothing())
    current = await catalog_version(conn)
    await conn.execute(update(Setting).where(Setting.key == VERSION_KEY).values(value=str(current + 1)))


async def list_entries(conn: AsyncConnection) -> list[Entry]:
    rows = (
        await conn.execute(select(CatalogEntry).order_by(CatalogEntry.kind.desc(), CatalogEntry.name))
    ).all()
    out = []
    for r in rows:
        secret = await unseal(conn, r.secret_sealed, purpose=SECRET_PURPOSE) if r.secret_sealed else None
        out.append(Entry(r.kind, r.name, r.body, secret, r.updated_by, r.updated_at))
    return out


async def save_entry(
    conn: AsyncConnection, *, kind: str, name: str, body: str, secret: str | None, actor: str
) -> None:
    """Add or replace an entry (``secret`` None keeps a provider's stored key) and bump the version."""
    sealed = await seal(conn, secret, purpose=SECRET_PURPOSE) if secret else None
    now = datetime.now(UTC)
    existing = (
        await conn.execute(
            select(CatalogEntry.secret_sealed).where(CatalogEntry.kind == kind, CatalogEntry.name == name)
        )
    ).first()
    if existing is None:
        ins = dialect_insert(conn.dialect.name, CatalogEntry)
        await conn.execute(
            ins.values(
                kind=kind, name=name, body=body, secret_sealed=sealed, updated_by=actor, updated_at=now
            )
        )
    else:
        values = {"body": body, "updated_by": actor, "updated_at": now}
        if sealed is not None:
            values["secret_sealed"] = sealed
        await conn.execute(
            update(CatalogEntry).where(CatalogEntry.kind == kind, CatalogEntry.name == name).values(**values)
        )
    await _bump(conn)


async def delete_entry(conn: AsyncConnection, *, kind: str, name: str) -> bool:
    result = await conn.execute(
        delete(CatalogEntry).where(CatalogEntry.kind == kind, CatalogEntry.name == name)
    )
    if result.rowcount:
        await _bump(conn)
    return bool(result.rowcount)
