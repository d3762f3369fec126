"""Identity tests: two OpenID providers (tests/fakes/oidc_provider.py, on authlib), the browser of
tests/web, and the two-instance set-up of tests/scale (PostgreSQL + Redis, threads)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.oidc_provider import IdPUser, OpenIDProvider
from tests.scale.conftest import cluster
from tests.web.conftest import browser

__all__ = ["browser", "cluster", "corp_idp", "partner_idp"]


@pytest.fixture
def corp_idp() -> Iterator[OpenIDProvider]:
    """'Corp': the company's own provider (as Okta or Entra ID would be)."""
    idp = OpenIDProvider("Corp Identity").start()
    idp.add_user(IdPUser("alice", "alice-pass", "alice@corp.example", ["ml-platform", "everyone"]))
    idp.add_user(IdPUser("bob", "bob-pass", "Bob@Corp.example", ["gateway-admins", "everyone"]))
    idp.add_user(IdPUser("mallory", "mallory-pass", "ceo@corp.example", [], email_verified=False))
    yield idp
    idp.stop()


@pytest.fixture
def partner_idp() -> Iterator[OpenIDProvider]:
    """'Partner': a second provider beside the first (as a partner's Keycloak would be)."""
    idp = OpenIDProvider("Partner Keycloak").start()
    idp.add_user(IdPUser("carol", "carol-pass", "carol@partner.example", ["contractors"]))
    yield idp
    idp.stop()
