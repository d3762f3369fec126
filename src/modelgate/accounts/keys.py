"""API keys: generation, digests, and authentication with a small invalidating cache.

A key is 32 random hex characters (128 bits) shown once; the database keeps its SHA-256 digest and
its first 8 characters (the public ``prefix``). Lookups go by digest, then the digest is compared
in constant time. Authentications are cached for ``ttl`` seconds; disabling or deleting a key
invalidates the cache at once: ``await revoke(key_id=...)`` returns once every instance dropped it
(with Redis, each instance acknowledges; ``limits/redis.py``), so the very next request anywhere is
refused. A lookup that started before an invalidation is neither cached nor joined by later requests.

Without Redis, other instances (and workers) on the same database learn of a revocation through
the ledger instead: every hold's conditional update also requires the key to be live (not disabled,
not deleted) and its account enabled, so the next request that reaches a hold anywhere is refused
with ``KeyRevokedError`` — the same 401 a fresh lookup would give — and that instance forgets the
key (``store/ledger_sqlite.py``; on PostgreSQL ``store/pg_batch.py`` and migration 0010).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import get_args

from modelgate.errors import AuthenticationError, DatabaseUnavailableError
from modelgate.store.budgets import key_scope
from modelgate.store.db import Engine
from modelgate.store.keys import (
    ACCOUNT_DISABLED_MESSAGE,
    DISABLED_KEY_MESSAGE,
    INVALID_KEY_MESSAGE,
    key_row_by_digest,
    set_last_used,
)

# Re-exported for gateway/core.py and gateway/admission.py only, until they import it from
# store/keys.py like every other caller (their owners were busy when the rest moved).
from modelgate.store.keys import KeyIdentity as KeyIdentity
from modelgate.store.outage import bounded
from modelgate.wire.service import Scope

KEY_SCOPES: tuple[str, ...] = get_args(Scope)  # the public enum of wire/service.py
EXPIRED_KEY_MESSAGE = "This API key has expired. Extend it on the Keys page or use another key."

UNKNOWN_KEY_TTL = 2.0


class UnknownKeyError(AuthenticationError):
    """No live key has this digest (as opposed to a disabled one)."""


def generate_key() -> str:
    return secrets.token_hex(16)


def key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class KeyAuthenticator:
    def __init__(
        self, engine: Engine, *, ttl: float = 30.0, timeout: float = 5.0, stale_on_outage: bool = False
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        # With leases (docs/deploy.md): a cached key whose TTL ran out is still trusted while the
        # database is unreachable, so requests go on being admitted on their leases.
        self._stale_on_outage = stale_on_outage
        self._timeout = timeout  # an unreachable database: 503 after this many seconds
        self._cache: dict[str, tuple[float, KeyIdentity]] = {}
        self._last_used: dict[int, float] = {}  # key id -> time.time() of its latest request
        # Bumped by every invalidation: a lookup that raced with one is not cached (it may be stale).
        self._generation = 0
        # Lookups in flight (with the generation they started in), so that a burst of requests with
        # an uncached key costs one query.
        self._loading: dict[str, tuple[int, asyncio.Future[KeyIdentity]]] = {}
        # Set by ``limits.share_invalidations``: tells every instance and waits for them all.
        self.fanout: Callable[..., Awaitable[None]] | None = None
        self._fanouts: set[asyncio.Future[None]] = set()
        # On a SQLite file: last-used times go through the ledger's group-commit writer
        # (``store.keys.last_used_through``), never a pooled connection's write transaction.
        self.write_last_used: Callable[[dict[int, datetime]], Awaitable[None]] | None = None
        # Digests that matched no key, remembered briefly so a flood of bad keys spares the database.
        self._unknown: dict[str, float] = {}

    async def authenticate(self, raw: str | None, *, fresh: bool = False) -> KeyIdentity:
        """The caller's identity. ``fresh``: read the key from the database even when cached (the
        requests that take no hold, when revocations are not shared through Redis)."""
        if not raw:
            raise AuthenticationError(INVALID_KEY_MESSAGE)
        digest = key_digest(raw)
        now = time.monotonic()
        hit = None if fresh else self._cache.get(digest)
        if hit is not None and hit[0] > now:
            ident = hit[1]
        elif self._unknown.get(digest, 0.0) > now:
            raise AuthenticationError(INVALID_KEY_MESSAGE)
        else:
            try:
                ident = await self._load_once(digest, now)
            except DatabaseUnavailableError:
                # The database unreachable: a key this instance knew is trusted as it was (a key
                # revoked during the outage is the stated window, docs/deploy.md), for another TTL.
                stale = self._cache.get(digest) if self._stale_on_outage else None
                if stale is None:
                    raise
                ident = stale[1]
                self._cache[digest] = (now + self._ttl, ident)
        if not secrets.compare_digest(ident.digest, digest):
            raise AuthenticationError(INVALID_KEY_MESSAGE)
        if ident.expires_at is not None and ident.expires_at <= datetime.now(UTC):
            raise AuthenticationError(EXPIRED_KEY_MESSAGE)
        self._last_used[ident.key_id] = time.time()
        return ident

    def touch(self, key_id: int) -> None:
        """Count a request made with a key that needed no bearer lookup (the playground's internal
        key): its ``last_used_at`` is written with the others by ``flush_last_used``."""
        self._last_used[key_id] = time.time()

    async def _load_once(self, digest: str, now: float) -> KeyIdentity:
        generation = self._generation
        pending = self._loading.get(digest)
        if pending is not None and pending[0] == generation:  # never join a lookup older than a revoke
            return await asyncio.shield(pending[1])
        fut = asyncio.ensure_future(self._load(digest))
        self._loading[digest] = (generation, fut)
        try:
            ident = await asyncio.shield(fut)
        except UnknownKeyError:
            if len(self._unknown) > 100_000:
                self._unknown.clear()
            if generation == self._generation:
                self._unknown[digest] = now + UNKNOWN_KEY_TTL
            raise
        finally:
            if self._loading.get(digest, (None, None))[1] is fut:
                self._loading.pop(digest, None)
        if len(self._cache) > 100_000:
            self._cache.clear()
        if generation == self._generation:
            self._cache[digest] = (now + self._ttl, ident)
        return ident

    async def _load(self, digest: str) -> KeyIdentity:
        async with bounded(self._timeout), self._engine.connect() as conn:
            k = await key_row_by_digest(conn, digest=digest)
            if k is not None:
                scope = await key_scope(
                    conn, org_id=k["account_id"], project_id=k["project_id"], member_id=k["member_id"]
                )
        if k is None:
            raise UnknownKeyError(INVALID_KEY_MESSAGE)
        if k["account_disabled"]:
            raise AuthenticationError(ACCOUNT_DISABLED_MESSAGE)
        if k["disabled"]:
            raise AuthenticationError(DISABLED_KEY_MESSAGE)
        return KeyIdentity(
            key_id=k["id"],
            account_id=k["account_id"],
            prefix=k["prefix"],
            digest=k["digest"],
            is_management=k["is_management"],
            scopes=tuple(k["scopes"]) if k["scopes"] is not None else None,
            limit_retention=k["limit_retention"],
            limit_credits=k["limit_credits"],
            project_id=k["project_id"],
            member_id=k["member_id"],
            budgets=scope.budgets,
            allowed_models=_allowed(k["allowed_models"], scope.project_models),
            rpm=k["rpm"],
            tpm=k["tpm"],
            project_rpm=scope.project_rpm,
            project_tpm=scope.project_tpm,
            expires_at=_aware(k["expires_at"]),
            org_role=scope.org_role,
            cache_mode=k["cache_mode"],
        )

    def invalidate(self, *, digest: str | None = None, key_id: int | None = None) -> None:
        """Drop a key here at once and on the other instances in the background; prefer
        ``await revoke(...)``, which returns only once every instance has dropped it."""
        self.forget(digest=digest, key_id=key_id)
        if self.fanout is not None:
            task: asyncio.Future[None] = asyncio.ensure_future(self.fanout(digest=digest, key_id=key_id))
            self._fanouts.add(task)
            task.add_done_callback(self._fanouts.discard)

    def forget(self, *, digest: str | None = None, key_id: int | None = None) -> None:
        """Drop a key from this instance's cache only."""
        self._generation += 1
        if digest is not None:
            self._cache.pop(digest, None)
            self._unknown.pop(digest, None)
        if key_id is not None:
            for d, (_, ident) in list(self._cache.items()):
                if ident.key_id == key_id:
                    self._cache.pop(d, None)

    def clear(self) -> None:
        """Forget every cached lookup (an instance that may have missed invalidations)."""
        self._generation += 1
        self._cache.clear()
        self._unknown.clear()

    async def revoke(self, *, digest: str | None = None, key_id: int | None = None) -> None:
        """After a key was disabled, deleted or changed: drop it here and on every instance, and
        return once they all have (call it after the change is committed)."""
        self.forget(digest=digest, key_id=key_id)
        if self.fanout is not None:
            await self.fanout(digest=digest, key_id=key_id)

    async def flush_last_used(self) -> None:
        """Persist last-used times collected on the hot path (called periodically)."""
        if not self._last_used:
            return
        pending, self._last_used = self._last_used, {}
        used = {key_id: _utc(when) for key_id, when in pending.items()}
        if self.write_last_used is not None:
            await self.write_last_used(used)
            return
        async with self._engine.begin() as conn:
            await set_last_used(conn, used)


def _allowed(own: list[str] | None, project: tuple[str, ...] | None) -> frozenset[str] | None:
    """The models a key may call: in its own list and its project's (None: any model)."""
    if own is None and project is None:
        return None
    if own is None:
        return frozenset(project or ())
    if project is None:
        return frozenset(own)
    return frozenset(own) & frozenset(project)


def _aware(when: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (stored as UTC)."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


def _utc(timestamp: float) -> datetime:
    """A ``time.time()`` reading as the aware UTC datetime ``store.schema.utcnow`` gives."""
    return datetime.fromtimestamp(timestamp, UTC)
