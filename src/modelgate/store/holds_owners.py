"""Who made a hold, and whether that process is still alive.

Every serving process draws a random owner id at start and writes it into each hold it makes. It
also holds a lock that the operating system or the database drops the moment the process dies:

- PostgreSQL: a session advisory lock on the id, taken by the process's ledger connection
  (``store/pg_writer.py``); a kill -9 closes the connection and PostgreSQL drops the lock;
- SQLite (every process on one machine): an exclusive ``flock`` on ``<db>-owners/<id>.lock``; the
  kernel drops it when the process dies.

Another process that can take that lock knows the owner is gone for good (ids are never reused),
so its holds belong to requests that will never settle: ``select_stale`` picks them, with any hold
older than the request deadline, and the ledger releases them. No clock is involved in telling a
dead process from a slow one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("modelgate.billing")


def new_owner_id() -> int:
    """A random positive 63-bit id (a PostgreSQL bigint, an advisory-lock key)."""
    return secrets.randbits(62) + 1


class Owners(Protocol):
    me: int

    async def gone(self, owners: set[int]) -> set[int]:
        """The owners among ``owners`` whose process has ended."""

    def forget(self, owners: Iterable[int]) -> None:
        """Their holds are released: drop what tracked them."""


class PGOwners:
    """Liveness through the advisory lock each live process's ledger connection holds on its id."""

    def __init__(self, engine: AsyncEngine, me: int) -> None:
        self._engine = engine
        self.me = me

    async def gone(self, owners: set[int]) -> set[int]:
        if not owners:
            return set()
        # Taken and released within one transaction: a lock that can be taken has no live session.
        async with self._engine.begin() as conn:
            rows = await conn.execute(
                text(
                    "SELECT o FROM unnest(CAST(:owners AS bigint[])) AS o WHERE pg_try_advisory_xact_lock(o)"
                ),
                {"owners": sorted(owners)},
            )
            return {int(r[0]) for r in rows}

    def forget(self, owners: Iterable[int]) -> None:
        return None


class FileOwners:
    """Liveness through an exclusive ``flock`` per process on a file beside the SQLite database."""

    def __init__(self, folder: Path, me: int) -> None:
        self._folder = folder
        self.me = me
        self._fd: int | None = None

    def start(self) -> None:
        import fcntl

        self._folder.mkdir(parents=True, exist_ok=True)
        self._sweep_files()
        path = self._path(self.me)
        while True:
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # another process's sweep may hold it for a moment
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # that sweep removed the file before we locked it: make it again
        self._fd = fd

    def _sweep_files(self) -> None:
        """Remove the lock files of ended processes, each while holding its lock (a process that is
        just starting on that file then finds it unlinked and makes it again)."""
        import fcntl

        for path in self._folder.glob("*.lock"):
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
            except OSError:
                pass
            finally:
                os.close(fd)

    def _path(self, owner: int) -> Path:
        return self._folder / f"{owner}.lock"

    async def gone(self, owners: set[int]) -> set[int]:
        return await asyncio.to_thread(self._gone, owners)

    def _gone(self, owners: set[int]) -> set[int]:
        import fcntl

        out: set[int] = set()
        for owner in owners:
            try:
                fd = os.open(self._path(owner), os.O_RDWR)
            except FileNotFoundError:
                out.add(owner)  # never started, or already swept
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # locked: alive
            else:
                out.add(owner)
            finally:
                os.close(fd)  # also drops our lock, if taken
        return out

    def forget(self, owners: Iterable[int]) -> None:
        for owner in owners:
            with contextlib.suppress(OSError):
                self._path(owner).unlink()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._path(self.me).unlink()
            os.close(self._fd)
            self._fd = None


def select_stale(rows: Sequence[Sequence[Any]], *, me: int | None, gone: set[int]) -> list[Sequence[Any]]:
    """Holds to release among ``rows`` of (inference_id, account_id, key_id, period, credits, owner,
    expired): those of a gone owner, and any past every request's deadline (``expired``: also how
    holds without an owner are recovered)."""
    return [r for r in rows if r[6] or (r[5] is not None and r[5] != me and r[5] in gone)]


def owners_of(rows: Sequence[Sequence[Any]], me: int | None) -> set[int]:
    return {int(r[5]) for r in rows if r[5] is not None and r[5] != me}
