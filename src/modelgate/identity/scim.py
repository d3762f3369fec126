"""SCIM 2.0 service provider (RFC 7643/7644) at ``/scim/v2``: Users and Groups.

The protocol (routing, validation, filters, sorting, pagination, PATCH, ETags, errors) is
``scim2-server``'s; the resources live in modelgate's database (``identity/scim_storage.py``),
where a User provisions an account. Every request but ``/ServiceProviderConfig`` needs a bearer
token: the gateway's ``MODELGATE_SCIM_TOKEN`` (compared in constant time), or an organisation's
(``modelgate admin scim-token --org NAME``; only its digest is stored): the Users it provisions
join that organisation, and its Groups grant roles in that organisation alone. Announced: PATCH,
filter (at most 200 results a page), sort and ETags; no bulk and no password changes (accounts
provisioned here sign in through single sign-on).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    Patch,
    Reference,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
)
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.applications.base import BaseApplication
from scim2_server.handler import AsyncScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas

from modelgate.httpkit.deps import AppState
from modelgate.identity.scim_storage import DatabaseScimStorage
from modelgate.store import identity as store
from modelgate.store.outage import bounded, is_unreachable

log = logging.getLogger("modelgate.scim")

MAX_RESULTS = 200
BEARER = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description="The organisation's SCIM token, as 'Authorization: Bearer <token>'",
    spec_uri=Reference[External]("https://datatracker.ietf.org/doc/html/rfc6750"),
    primary=True,
)
GATEWAY_TENANT = ""


def scim_provider() -> ScimProvider:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[BEARER],
    )
    return ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ScimApp(ASGIApplication):
    """The SCIM endpoints, mounted at ``/scim`` by ``app.build_app``; each request gets a storage
    of the tenant its token provisions."""

    def __init__(self, state: Callable[[], AppState]) -> None:
        provider = scim_provider()
        BaseApplication.__init__(self, provider, ScimService(provider))
        self._state = state

    async def tenant_of(self, request: ScimRequest, state: AppState) -> tuple[str, int | None]:
        """(tenant, organisation id) of the request's bearer token: the gateway's
        (``MODELGATE_SCIM_TOKEN``: tenant "", no organisation) or an organisation's; 401 else."""
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            raise UnauthorizedException
        digest = _digest(token)
        configured = state.settings.scim_token
        if configured is not None and secrets.compare_digest(digest, _digest(configured.get_secret_value())):
            return GATEWAY_TENANT, None
        async with bounded(state.settings.database_timeout), state.db.engine.connect() as conn:
            org_id = await store.scim_token_org(conn, digest=digest.hex())
        if org_id is None:
            raise UnauthorizedException
        return f"org:{org_id}", org_id

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        state = self._state()
        tenant, org_id = GATEWAY_TENANT, None
        if self.needs_auth(request):
            tenant, org_id = await self.tenant_of(request, state)

        async def revoke(key_id: int) -> None:
            await state.keys.revoke(key_id=key_id)

        storage = DatabaseScimStorage(
            engine=state.db.engine,
            tenant=tenant,
            org_id=org_id,
            rules=state.settings.group_rules,
            model_for=self.service.get_model,
            revoke=revoke,
        )
        return await AsyncScimHandler(self.service, storage).handle(request)

    def handle_exception(self, request: ScimRequest, exception: Exception) -> ScimResponse:
        if is_unreachable(exception):
            log.warning("SCIM request refused: the database is unreachable (%s)", type(exception).__name__)
            response = ScimResponse(
                status=503,  # type: ignore[arg-type]
                body={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "503",
                    "detail": "The database is unreachable; try again shortly.",
                },
            )
            response.headers["Retry-After"] = "5"
            return response
        return super().handle_exception(request, exception)


def install(app: Any) -> None:
    app.mount("/scim", ScimApp(lambda: app.state.mg))
