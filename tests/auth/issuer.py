"""A real OAuth 2.1 authorization server on loopback, built on Authlib (Flask integration).

What photo-mcp's tests need from an identity provider, done by Authlib's own grants and endpoints:

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata
    GET  /jwks                                     the public signing keys (RFC 7517)
    POST /register                                 dynamic client registration (RFC 7591)
    GET  /authorize                                authorization code + PKCE (S256 required); the
                                                   person "at the browser" is `login_as`, who
                                                   approves at once
    POST /token                                    authorization_code, client_credentials
    POST /introspect                               token introspection (RFC 7662)

Access tokens are JWTs (RFC 9068, RS256) whose `aud` is the RFC 8707 `resource` the client asked
for, or opaque strings (`opaque=True`) that only introspection can explain. Scopes granted are
what was asked (everything when nothing was), cut to what the person (or client) is allowed.
`mint` signs a token directly, for the negative cases (another audience, another issuer,
expired, a key of nobody's).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import flask
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, grants
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server

ALL = ("photo:read", "photo:edit", "photo:spend")
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log on the test's stderr
RS_CLIENT, RS_SECRET = "photo-mcp-resource-server", secrets.token_urlsafe(24)


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str | None
    redirect_uris: list[str] = field(default_factory=list)
    grant_types: list[str] = field(default_factory=lambda: ["authorization_code"])
    response_types: list[str] = field(default_factory=lambda: ["code"])
    scope: str = " ".join(ALL)
    auth_method: str = "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client_secret is not None and hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class User:
    subject: str

    def get_user_id(self) -> str:
        return self.subject


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    code_challenge: str | None
    code_challenge_method: str | None
    resource: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_auth_time(self) -> int:
        return int(self.expires_at - 300)

    def get_nonce(self) -> None:
        return None


class TokenRecord(dict):
    """What introspection knows of an issued token (Authlib asks it these two questions)."""

    def is_expired(self) -> bool:
        return self["exp"] <= time.time()

    def is_revoked(self) -> bool:
        return False


class Issuer:
    """The authorization server's state; `serve()` runs it on 127.0.0.1."""

    def __init__(self, *, opaque: bool = False, token_ttl: int = 600) -> None:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # http on loopback, for the tests only
        self.opaque = opaque
        self.token_ttl = token_ttl
        self.url = ""
        self.login_as = "alice"  # the person who signs in at /authorize
        self.grants: dict[str, set[str]] = {}  # subject -> scopes they may have (default: all)
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"}, private=True)]
        self.clients: dict[str, Client] = {
            RS_CLIENT: Client(RS_CLIENT, RS_SECRET, grant_types=[], auth_method="client_secret_basic")
        }
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.jwks_fetches = 0
        self.introspections = 0

    # --- what tests call -----------------------------------------------------------------------

    def add_client(self, *, scope: str = " ".join(ALL)) -> tuple[str, str]:
        """A confidential client for the client-credentials grant; returns (client_id, secret)."""
        client_id, secret = "svc-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        self.clients[client_id] = Client(
            client_id, secret, grant_types=["client_credentials"], scope=scope, auth_method="client_secret_basic"
        )
        return client_id, secret

    def rotate_key(self) -> None:
        """Sign from now on with a new key (published beside the old one)."""
        kid = f"k{len(self.keys) + 1}"
        self.keys.insert(0, RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}))

    def mint(
        self,
        *,
        sub: str,
        aud: str,
        scope: str = " ".join(ALL),
        iss: str | None = None,
        expires_in: int = 600,
        key: RSAKey | None = None,
        kid: str | None = None,
    ) -> str:
        """A JWT access token signed directly (the AS's current key unless `key` is given)."""
        now = int(time.time())
        claims = {
            "iss": iss or self.url,
            "sub": sub,
            "aud": aud,
            "scope": scope,
            "client_id": "test-client",
            "iat": now,
            "exp": now + expires_in,
            "jti": secrets.token_hex(8),
        }
        signing = key or self.keys[0]
        header = {"alg": "RS256", "typ": "at+jwt", "kid": kid or signing.kid}
        return jwt.encode(header, claims, signing)

    @contextmanager
    def serve(self) -> Iterator[Issuer]:
        """Run on an ephemeral 127.0.0.1 port (a real HTTP server in a thread)."""
        app: list[flask.Flask] = []  # made once the port (and so the issuer URL) is known
        server = make_server("127.0.0.1", 0, lambda env, start: app[0](env, start), threaded=True)
        self.url = f"http://127.0.0.1:{server.server_port}"
        app.append(self.app())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            thread.join()

    # --- the server ----------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        base = self.url
        return {
            "issuer": base,
            "authorization_endpoint": base + "/authorize",
            "token_endpoint": base + "/token",
            "registration_endpoint": base + "/register",
            "jwks_uri": base + "/jwks",
            "introspection_endpoint": base + "/introspect",
            "scopes_supported": list(ALL),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        }

    def app(self) -> flask.Flask:
        issuer = self
        app = flask.Flask("test-issuer")
        grant_types = ("authorization_code", "client_credentials")
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = dict.fromkeys(grant_types, self.token_ttl)
        server = AuthorizationServer(app, query_client=self.clients.get, save_token=self._save_token)

        class AuthorizationCode(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none", "client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                user: User = request.user
                allowed = issuer.grants.get(user.subject, set(ALL))
                asked = request.payload.scope or " ".join(ALL)  # no scope asked: the default, everything
                scope = " ".join(s for s in asked.split() if s in allowed)
                issuer.codes[code] = Code(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=request.payload.redirect_uri,
                    scope=scope,
                    user=user,
                    code_challenge=request.payload.data.get("code_challenge"),
                    code_challenge_method=request.payload.data.get("code_challenge_method"),
                    resource=request.payload.data.get("resource"),
                    expires_at=time.time() + 300,
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = issuer.codes.get(code)
                if found and found.client_id == client.get_client_id() and found.expires_at > time.time():
                    return found
                return None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                issuer.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class ClientCredentials(grants.ClientCredentialsGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

        class Registration(ClientRegistrationEndpoint):
            def authenticate_token(self, request: Any) -> str:
                return "open-registration"

            def generate_client_info(self, request: Any) -> dict[str, Any]:
                info = super().generate_client_info(request)
                if request.payload.data.get("token_endpoint_auth_method") == "none":  # a public client: no secret
                    info.pop("client_secret", None)
                    info.pop("client_secret_expires_at", None)
                return info

            def resolve_public_key(self, request: Any) -> None:
                return None

            def get_server_metadata(self) -> dict[str, Any]:
                return issuer.metadata()

            def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: Any) -> Client:
                method = client_metadata.get("token_endpoint_auth_method", "client_secret_basic")
                client = Client(
                    client_info["client_id"],
                    client_info.get("client_secret") if method != "none" else None,
                    redirect_uris=list(client_metadata.get("redirect_uris", [])),
                    grant_types=list(client_metadata.get("grant_types", ["authorization_code"])),
                    response_types=list(client_metadata.get("response_types", ["code"])),
                    auth_method=method,
                )
                issuer.clients[client.client_id] = client
                return client

        class Introspection(IntrospectionEndpoint):
            def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
                issuer.introspections += 1
                return issuer.tokens.get(token_string)

            def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
                return {"active": True, **token}

            def check_permission(self, token: dict[str, Any], client: Client, request: Any) -> bool:
                return client.get_client_id() == RS_CLIENT

        class Tokens(JWTBearerTokenGenerator):
            def get_jwks(self) -> KeySet:
                return KeySet(issuer.keys[:1])

            def get_audiences(self, client: Client, user: User | None, scope: str) -> str:
                # RFC 8707: the audience is the resource the client asked for (on /token or /authorize).
                code = issuer.codes.get(flask.request.form.get("code", ""))
                return flask.request.form.get("resource") or (code.resource if code else None) or client.client_id

        server.register_grant(AuthorizationCode, [CodeChallenge(required=True)])
        server.register_grant(ClientCredentials)
        server.register_endpoint(Registration)
        server.register_endpoint(Introspection)
        if not self.opaque:
            ttl = self.token_ttl
            server.register_token_generator(
                "default", Tokens(issuer=self.url, alg="RS256", expires_generator=lambda client, grant: ttl)
            )

        @app.get("/.well-known/oauth-authorization-server")
        def metadata() -> Any:
            return flask.jsonify(issuer.metadata())

        @app.get("/jwks")
        def jwks() -> Any:
            issuer.jwks_fetches += 1
            return flask.jsonify({"keys": [k.as_dict(private=False) for k in issuer.keys]})

        @app.post("/register")
        def register() -> Any:
            return server.create_endpoint_response("client_registration")

        @app.get("/authorize")
        def authorize() -> Any:
            user = User(issuer.login_as)  # signed in, and approves at once
            grant = server.get_consent_grant(end_user=user)
            return server.create_authorization_response(grant=grant, grant_user=user)

        @app.post("/token")
        def token() -> Any:
            return server.create_token_response()

        @app.post("/introspect")
        def introspect() -> Any:
            return server.create_endpoint_response("introspection")

        return app

    def _save_token(self, token: dict[str, Any], request: Any) -> None:
        user = getattr(request, "user", None)
        client = request.client
        resource = flask.request.form.get("resource")
        code = self.codes.get(flask.request.form.get("code", ""))
        self.tokens[token["access_token"]] = TokenRecord(
            {
                "client_id": client.get_client_id(),
                "scope": token.get("scope", ""),
                "sub": user.subject if user else client.get_client_id(),
                "aud": resource or (code.resource if code else None) or client.get_client_id(),
                "iss": self.url,
                "exp": int(time.time()) + int(token.get("expires_in", self.token_ttl)),
                "token_type": "Bearer",
            }
        )
