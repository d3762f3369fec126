"""OpenID Connect relying party: the authorization code flow with PKCE (S256), a nonce and a state,
for each provider of ``MODELGATE_OIDC_PROVIDERS`` (docs/identity.md).

- Discovery: ``{issuer}/.well-known/openid-configuration``, whose ``issuer`` must be the configured
  one; kept for an hour. The JWKS is kept too, and read again (at most every ten seconds) when a token
  names a key it does not hold (key rotation).
- The ID token: signature by the provider's key (asymmetric algorithms only: RS*, PS*, ES*,
  EdDSA), ``iss``, ``aud`` (and ``azp``), ``exp``/``iat`` with a minute of leeway, and the nonce
  of this sign-in. Email and groups come from it, else from the userinfo endpoint (same ``sub``).
- The provider's answers are untrusted: sizes bounded, shapes checked, every failure an
  ``SSOError`` whose message a person can act on (never a stack trace or a secret).

Nothing here knows HTTP frameworks; ``web/sso.py`` holds the routes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt

from modelgate.settings import OIDCProvider

ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_TTL = 3600.0
JWKS_REFRESH_MIN = 10.0
HTTP_TIMEOUT = 10.0
MAX_BODY = 1 << 20


class SSOError(Exception):
    """A sign-in that cannot complete; the message is shown to the person signing in."""


@dataclass(frozen=True, slots=True)
class Start:
    url: str
    state: str
    code_verifier: str
    nonce: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    issuer: str
    subject: str
    email: str
    name: str
    groups: list[str]


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _fetch(url: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
    """GET (or POST a form to) ``url`` and parse its JSON answer (blocking: run in a thread)."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise SSOError("The identity provider's configuration names an endpoint that is not HTTP(S).")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:  # the scheme is checked above
            raw = resp.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        raw = exc.read(MAX_BODY + 1)
        detail = ""
        try:
            answer = json.loads(raw)
            detail = str(answer.get("error_description") or answer.get("error") or "")[:200]
        except (ValueError, AttributeError):
            pass
        suffix = f": {detail}" if detail else ""
        raise SSOError(f"The identity provider refused the sign-in ({exc.code}{suffix}).") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SSOError("The identity provider could not be reached; try again shortly.") from exc
    if len(raw) > MAX_BODY:
        raise SSOError("The identity provider's answer is too large.")
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise SSOError("The identity provider's answer is not JSON.") from exc
    if not isinstance(parsed, dict):
        raise SSOError("The identity provider's answer is not a JSON object.")
    return parsed


async def _fetch_async(url: str, **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = await asyncio.to_thread(_fetch, url, **kw)
    return result


class RelyingParty:
    """One configured provider: its discovery document and keys, kept between sign-ins."""

    def __init__(self, provider: OIDCProvider) -> None:
        self.provider = provider
        self.issuer = provider.issuer.rstrip("/")
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: dict[str, Any] = {}
        self._keys_at = 0.0
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        if self._meta is not None and time.monotonic() - self._meta_at < DISCOVERY_TTL:
            return self._meta
        meta = await _fetch_async(f"{self.issuer}/.well-known/openid-configuration")
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            raise SSOError("The identity provider's discovery document names another issuer.")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(field), str):
                raise SSOError(f"The identity provider's discovery document has no {field}.")
        self._meta, self._meta_at = meta, time.monotonic()
        return meta

    async def begin(self, *, redirect_uri: str) -> Start:
        meta = await self.metadata()
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(dict.fromkeys(["openid", *self.provider.scopes])),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        endpoint = meta["authorization_endpoint"]
        url = endpoint + ("&" if "?" in endpoint else "?") + urllib.parse.urlencode(params)
        return Start(url=url, state=state, code_verifier=verifier, nonce=nonce)

    async def finish(self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str) -> SignedIn:
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers: dict[str, str] = {}
        secret = self.provider.client_secret
        if secret is not None:
            pair = f"{urllib.parse.quote(self.provider.client_id, safe='')}:"
            pair += urllib.parse.quote(secret.get_secret_value(), safe="")
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.provider.client_id
        tokens = await _fetch_async(meta["token_endpoint"], data=form, headers=headers)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SSOError("The identity provider sent no ID token.")
        claims = await self._verify(id_token, nonce)
        access = tokens.get("access_token")
        groups_claim = self.provider.groups_claim
        if ("email" not in claims or groups_claim not in claims) and isinstance(access, str):
            claims = {**(await self._userinfo(meta, access, claims["sub"])), **claims}
        return SignedIn(
            issuer=self.issuer,
            subject=str(claims["sub"])[:255],
            email=self._email(claims),
            name=str(claims.get("name") or "")[:200],
            groups=_groups(claims.get(groups_claim)),
        )

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise SSOError("The identity provider sent an ID token that cannot be read.") from exc
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGS:
            raise SSOError("The ID token is not signed with an algorithm this gateway accepts.")
        key = await self._key(str(header.get("kid") or ""))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[alg],
                audience=self.provider.client_id,
                issuer=self.issuer,
                leeway=60,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise SSOError(f"The ID token was refused ({type(exc).__name__}).") from exc
        if not secrets.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise SSOError("The ID token does not belong to this sign-in (its nonce differs).")
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.provider.client_id:
            raise SSOError("The ID token was issued to another client.")
        return claims

    async def _key(self, kid: str) -> Any:
        async with self._lock:
            if kid not in self._keys and (
                not self._keys or time.monotonic() - self._keys_at > JWKS_REFRESH_MIN
            ):
                meta = await self.metadata()
                try:
                    keyset = jwt.PyJWKSet.from_dict(await _fetch_async(meta["jwks_uri"]))
                except jwt.PyJWTError as exc:
                    raise SSOError("The identity provider's keys (JWKS) cannot be read.") from exc
                self._keys = {str(k.key_id or ""): k.key for k in keyset.keys}
                self._keys_at = time.monotonic()
            if kid in self._keys:
                return self._keys[kid]
            if not kid and len(self._keys) == 1:
                return next(iter(self._keys.values()))
        raise SSOError("The ID token is signed with a key the identity provider does not publish.")

    async def _userinfo(self, meta: dict[str, Any], access_token: str, sub: Any) -> dict[str, Any]:
        endpoint = meta.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        info = await _fetch_async(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if str(info.get("sub")) != str(sub):
            raise SSOError("The identity provider's userinfo answer is about someone else.")
        return info

    def _email(self, claims: dict[str, Any]) -> str:
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email or len(email) > 320:
            raise SSOError("The identity provider did not send an email address (ask for the email scope).")
        verified = claims.get("email_verified")
        if verified is None and self.provider.trust_unverified_email:
            verified = True
        if verified not in (True, "true"):
            raise SSOError("The identity provider has not verified this email address.")
        return email.strip().lower()


def _groups(value: Any) -> list[str]:
    """A groups claim as a list of names (a list, or one string), bounded."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(g)[:256] for g in value if isinstance(g, str | int)][:1000]
