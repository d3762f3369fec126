"""Request-scoped helpers shared by the routers: the app state, the caller's key, tracing headers."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from modelgate.accounts.keys import KeyAuthenticator
from modelgate.errors import InvalidRequestError
from modelgate.store.keys import KeyIdentity

if TYPE_CHECKING:
    from modelgate.catalog.registry import Catalog
    from modelgate.gateway.core import MeteredCore
    from modelgate.settings import Settings
    from modelgate.store.db import Database

log = logging.getLogger("modelgate.api")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class AppState:
    """Everything the app holds for its lifetime; built by ``app.build_app`` (no globals)."""

    settings: Settings
    db: Database
    catalog: Catalog
    core: MeteredCore
    keys: KeyAuthenticator
    extras: dict[str, Any] = field(default_factory=dict)


# The longest a read endpoint waits for this instance's pending writes before it reads anyway.
FLUSH_WAIT = 5.0


async def pending_writes_flushed(request: Request) -> None:
    """Router dependency of the read endpoints: charges and log rows of requests already answered
    are committed before we read (read-your-writes within an instance).

    A read never depends on a write succeeding: a failing or slow flush is logged and the endpoint
    reads what is committed (after at most ``FLUSH_WAIT`` seconds); the flush itself goes on."""
    core = app_state(request).core

    async def flush() -> None:
        await core.ledger.flush()
        await core.logsink.flush()

    task = asyncio.ensure_future(flush())
    task.add_done_callback(_consume)
    done, _ = await asyncio.wait({task}, timeout=FLUSH_WAIT)
    if not done:
        log.warning("pending writes not committed within %gs; reading what is", FLUSH_WAIT)
    elif task.exception() is not None:
        log.warning("pending writes could not be committed (%s); reading what is", task.exception())


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()


async def text_parameters(request: Request) -> None:
    """Router dependency of the service endpoints: a query or path parameter holding a control
    character (``%00``) is a 400 before anything looks it up (PostgreSQL refuses NUL in text)."""
    params = [*request.query_params.multi_items(), *request.path_params.items()]
    for name, value in params:
        if _CONTROL.search(name) or _CONTROL.search(str(value)):
            raise InvalidRequestError(
                f"The parameter {name[:64]!r} must not contain control characters", param=name[:64]
            )


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.mg
    return state


def bearer_from(authorization: str | None, x_api_key: str | None) -> str | None:
    """The API key a request carries: ``Authorization: Bearer <key>``, else ``x-api-key: <key>``
    (what the Anthropic SDKs send). The one rule for every door and every service endpoint; an
    ``Authorization`` of another scheme (a proxy's ``Basic``) or an empty bearer falls back to
    ``x-api-key``."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return x_api_key or None


def valid_client_request_id(value: str | None) -> str | None:
    """``X-Client-Request-Id`` when valid; an invalid one is silently dropped (documented)."""
    return value if value and _CLIENT_REQUEST_ID.match(value) else None


def bearer_token(request: Request) -> str | None:
    return bearer_from(request.headers.get("authorization"), request.headers.get("x-api-key"))


def client_request_id(request: Request) -> str | None:
    return valid_client_request_id(request.headers.get("x-client-request-id"))


async def current_key(request: Request) -> KeyIdentity:
    """The key of a request that takes no hold. Without Redis, nothing tells this instance of a key
    revoked through another one except the hold's guard (``accounts/keys.py``), so these requests
    (management, stored responses, usage) read the key afresh instead of from the cache."""
    keys = app_state(request).keys
    return await keys.authenticate(bearer_token(request), fresh=keys.fanout is None)


StateDep = Annotated[AppState, Depends(app_state)]
CurrentKey = Annotated[KeyIdentity, Depends(current_key)]
