"""Telling "the database is unreachable" from "the database refused this statement".

An outage (PostgreSQL down, cut or frozen; a SQLite file locked by another process, unreadable, on
a full or failing disk) is not the request's fault and not a bug: the request is answered 503 with
``Retry-After`` in its door's envelope (``DatabaseUnavailableError``), never 500. Anything else a
database raises (a constraint, a syntax error, a missing table) stays an unexpected error.

``bounded(seconds)`` is the wait every request-path database call accepts
(``MODELGATE_DATABASE_TIMEOUT``): past it, or on any connection-level failure, it raises
``DatabaseUnavailableError``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelgate.errors import DatabaseUnavailableError

RETRY_AFTER = 5  # seconds a client is asked to wait before retrying

# SQLSTATE classes of a lost or refused connection: 08 (connection exception), 57P (operator
# intervention: shutdown, crash, cannot connect now), 53 (insufficient resources: too many clients).
_PG_UNREACHABLE = ("08", "57P", "53")
_SQLITE_UNREACHABLE = (
    "locked",
    "busy",
    "unable to open",
    "disk i/o",
    "readonly",
    "read-only",
    "database or disk is full",
    "no space",
)


def unavailable(what: str = "The database") -> DatabaseUnavailableError:
    return DatabaseUnavailableError(
        f"{what} is unreachable right now; please retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER)},
    )


def is_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the database could not be reached."""
    seen = 0
    while exc is not None and seen < 8:
        if _unreachable_here(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _unreachable_here(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseUnavailableError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return True  # refused, reset, no route: OSError subclasses raised by the driver's socket
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy: a disconnect it recognised
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(marker in text for marker in _SQLITE_UNREACHABLE)
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(_PG_UNREACHABLE):
        return True
    module = type(exc).__module__
    if module.startswith("asyncpg"):
        # The driver's own connection errors (closed mid-query, cannot connect): no SQLSTATE.
        return type(exc).__name__ in {
            "ConnectionDoesNotExistError",
            "ConnectionFailureError",
            "InterfaceError",
            "InternalClientError",
            "PostgresConnectionError",
            "CannotConnectNowError",
        }
    return False


def start_failure(exc: BaseException) -> str | None:
    """Why a command could not use its database, in one line (the innermost cause), or None when
    ``exc`` is not about reaching the database (a bug keeps its traceback)."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if not any(is_unreachable(e) or _refused_at_connect(e) for e in chain):
        return None
    root = [e for e in chain if not isinstance(e, asyncio.CancelledError)][-1]  # timeouts cancel
    if isinstance(root, TimeoutError) and not str(root):
        return "TimeoutError: no answer (the server or the network may be down)"
    text = " ".join(str(root).split())
    return f"{type(root).__name__}: {text}" if text else type(root).__name__


def _refused_at_connect(exc: BaseException) -> bool:
    """Refusals that only happen while connecting: wrong password, unknown database or role."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state.startswith(("28", "3D")):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc)


def redacted(url: str) -> str:
    """A database URL as it can be printed: without its password."""
    from sqlalchemy.engine import URL, make_url

    try:
        u = make_url(url)
        bare = URL.create(u.drivername, u.username, None, u.host, u.port, u.database, u.query)
        return bare.render_as_string(hide_password=False)
    except Exception:
        return url.split("@")[-1] if "@" in url else url


@asynccontextmanager
async def bounded(seconds: float, what: str = "The database") -> AsyncIterator[None]:
    """Run the block within ``seconds``; an outage (or the time running out) becomes a 503."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except DatabaseUnavailableError:
        raise
    except Exception as exc:
        if is_unreachable(exc):
            raise unavailable(what) from exc
        raise
