"""A real OpenID provider for the tests, built on authlib's server components (Flask):

- discovery (``/.well-known/openid-configuration``) and a JWKS (``/jwks``) with its own RSA key,
- the authorization code flow with **PKCE required** (S256, authlib's ``CodeChallenge``) and nonces,
- a sign-in form (username + password) the browser fills in,
- ID tokens signed RS256 (kid in the header) carrying ``email``, ``email_verified``, ``name`` and a
  ``groups`` claim; a userinfo endpoint; client authentication by ``client_secret_basic`` or
  ``client_secret_post`` against the registered secret.

Each instance keeps its own users, clients and codes (no globals), so two providers run side by
side on two ports. ``codes_issued`` and ``tokens_issued`` count what it did.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import flask
import werkzeug.serving
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import RSAKey

FORM = """<!doctype html><html lang="en"><head><title>{title} sign-in</title></head><body>
<h1>{title}</h1><form method="post">
<label for="username">Username</label><input id="username" name="username" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password">
<button type="submit" id="sign-in">Sign in</button></form>{error}</body></html>"""


@dataclass
class IdPUser:
    username: str
    password: str
    email: str
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True
    name: str = ""

    @property
    def sub(self) -> str:
        return f"sub-{self.username}"


class StrictPKCE(CodeChallenge):
    """PKCE for every client, confidential ones included, and S256 only (authlib's own requires it
    of public clients alone)."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required: code_challenge with code_challenge_method S256")
        super().validate_code_challenge(grant, redirect_uri)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile", "groups"))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: IdPUser
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token:
    access_token: str
    scope: str
    user: IdPUser
    expires_at: float

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() > self.expires_at

    def is_revoked(self) -> bool:
        return False


class OpenIDProvider:
    def __init__(self, title: str = "Test IdP") -> None:
        self.title = title
        self.users: dict[str, IdPUser] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, Token] = {}
        self.codes_issued = 0
        self.tokens_issued = 0
        self.key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig"})
        self._server: werkzeug.serving.BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.issuer = ""
        self.app = self._build()

    def add_user(self, user: IdPUser) -> IdPUser:
        self.users[user.username] = user
        return user

    def add_client(self, client_id: str, client_secret: str, redirect_uri: str) -> Client:
        client = Client(client_id, client_secret, [redirect_uri])
        self.clients[client_id] = client
        return client

    # -- the server ----------------------------------------------------------------------------

    def start(self) -> OpenIDProvider:
        self._server = werkzeug.serving.make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def _build(self) -> flask.Flask:
        provider = self
        app = flask.Flask(f"oidc-{id(self)}")
        app.secret_key = secrets.token_bytes(16)
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": 3600}

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                provider.codes[code] = Code(
                    code=code,
                    client_id=request.client.client_id,
                    redirect_uri=request.payload.redirect_uri,
                    scope=request.scope,
                    user=request.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                )
                provider.codes_issued += 1

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                return found if found is not None and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> IdPUser:
                return authorization_code.user

        class IDToken(OpenIDCode):
            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client: Client) -> Any:
                return provider.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.client_id], "exp": int(time.time()) + 600}

            def get_encode_header(self, client: Client) -> dict[str, Any]:
                return {"alg": "RS256", "kid": provider.key.kid}

            def generate_user_info(self, user: IdPUser, scope: str) -> UserInfo:
                return provider.claims(user, scope)

        def save_token(token: dict[str, Any], request: Any) -> None:
            provider.tokens[token["access_token"]] = Token(
                token["access_token"], token.get("scope", ""), request.user, time.time() + 3600
            )
            provider.tokens_issued += 1

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)
        server.register_grant(CodeGrant, [IDToken(require_nonce=True), StrictPKCE(required=True)])

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string: str) -> Token | None:
                return provider.tokens.get(token_string)

        protector = ResourceProtector()
        protector.register_token_validator(Validator())

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Any:
            base = provider.issuer
            return flask.jsonify(
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "userinfo_endpoint": f"{base}/userinfo",
                    "jwks_uri": f"{base}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "email", "profile", "groups"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "code_challenge_methods_supported": ["S256"],
                    "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
                }
            )

        @app.get("/jwks")
        def jwks() -> Any:
            return flask.jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize() -> Any:
            try:
                grant = server.get_consent_grant()  # validates client, redirect URI, PKCE and nonce
            except Exception as exc:  # an invalid request is shown, never redirected
                return flask.Response(f"invalid authorization request: {exc}", status=400)
            if flask.request.method == "GET":
                return FORM.format(title=provider.title, error="")
            user = provider.users.get(flask.request.form.get("username", ""))
            if user is None or not secrets.compare_digest(
                user.password.encode(), flask.request.form.get("password", "").encode()
            ):
                return FORM.format(title=provider.title, error='<p id="error">Wrong username or password</p>')
            return server.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.route("/userinfo", methods=["GET", "POST"])
        @protector()
        def userinfo() -> Any:
            return flask.jsonify(dict(provider.claims(current_token.user, current_token.scope)))

        return app

    def claims(self, user: IdPUser, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub)
        scopes = scope.split()
        if "email" in scopes:
            info["email"] = user.email
            info["email_verified"] = user.email_verified
        if "profile" in scopes:
            info["name"] = user.name or user.username
        if "groups" in scopes:
            info["groups"] = list(user.groups)
        return info
