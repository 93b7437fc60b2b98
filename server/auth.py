"""The OAuth 2.1 resource server, as the MCP authorization spec describes, and who is calling.

On when PHOTO_MCP_OAUTH_ISSUER is set (server/oauth.py verifies the tokens):

    GET /.well-known/oauth-protected-resource/mcp   Protected Resource Metadata (RFC 9728; the
                                                    SDK's route): our resource URL, the issuer,
                                                    the scopes
    every other route but the public ones           a bearer token: the static PHOTO_MCP_AUTH_TOKEN
                                                    or an OAuth access token for our resource URL;
                                                    none or a bad one -> 401 with
                                                    `WWW-Authenticate: Bearer resource_metadata=…`,
                                                    a token without the required scopes -> 403
                                                    `insufficient_scope`

The SDK's bearer backend and auth-context middleware put the token where `get_access_token()`
finds it inside a request's handlers; `caller_identity` turns it into the principal and scopes
a `Call` carries (tools/core/principals.py).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.config import ConfigError
from server.oauth import (
    IntrospectionVerifier,
    JWTVerifier,
    PhotoTokenVerifier,
    StaticAccessToken,
    metadata_urls,
    refusal,
)
from server.security import PUBLIC_PATHS, PUBLIC_PREFIXES, configured_token, is_loopback
from tools.core.principals import ALL_SCOPES, READ, STATIC_PRINCIPAL, MissingScope, acting_for
from tools.core.settings import Settings

ROOT_METADATA_PATH = "/.well-known/oauth-protected-resource"


class OAuthConfigError(ConfigError):
    """The OAuth settings are incomplete; the message names the variable to set."""


def oauth_enabled(settings: Settings) -> bool:
    return bool(settings.oauth_issuer and settings.oauth_issuer.strip())


def resource_url(settings: Settings, transport: str = "http") -> str:
    """This server's resource identifier (RFC 8707), the audience its tokens must carry.

    Raises:
        OAuthConfigError: neither PHOTO_MCP_OAUTH_AUDIENCE nor PHOTO_MCP_PUBLIC_URL is set.
    """
    if settings.oauth_audience:
        return settings.oauth_audience.strip()
    if settings.public_url:
        return settings.public_url.strip().rstrip("/") + ("/sse" if transport == "sse" else "/mcp")
    raise OAuthConfigError(
        "PHOTO_MCP_OAUTH_ISSUER is set but this server does not know its own URL: set PHOTO_MCP_PUBLIC_URL "
        "(e.g. https://photos.example.com) or PHOTO_MCP_OAUTH_AUDIENCE (e.g. https://photos.example.com/mcp)."
    )


def token_verifier(settings: Settings, resource: str, *, min_refresh_s: float | None = None) -> PhotoTokenVerifier:
    """The verifier for `settings`: the static token, and JWTs (JWKS) or introspection.

    Raises:
        OAuthConfigError: an incomplete OAuth configuration.
    """
    issuer = (settings.oauth_issuer or "").strip()
    for name in ("oauth_issuer", "oauth_jwks_url", "oauth_introspection_url"):
        _require_https(f"PHOTO_MCP_{name.upper()}", getattr(settings, name))
    oauth: JWTVerifier | IntrospectionVerifier
    if settings.oauth_introspection_url:
        secret = settings.oauth_client_secret.get_secret_value() if settings.oauth_client_secret else None
        oauth = IntrospectionVerifier(
            issuer=issuer,
            audience=resource,
            url=settings.oauth_introspection_url,
            client_id=settings.oauth_client_id,
            client_secret=secret,
            leeway=settings.oauth_leeway,
        )
    else:
        extra: dict[str, Any] = {} if min_refresh_s is None else {"min_refresh_s": min_refresh_s}
        try:
            oauth = JWTVerifier(
                issuer=issuer,
                audience=resource,
                jwks_url=settings.oauth_jwks_url,
                algorithms=settings.oauth_algorithms,
                leeway=settings.oauth_leeway,
                **extra,
            )
        except ValueError as exc:
            raise OAuthConfigError(str(exc)) from None
    return PhotoTokenVerifier(static_token=configured_token(settings), oauth=oauth, resource=resource)


def _require_https(variable: str, url: str | None) -> None:
    """Keys and token answers fetched over plain HTTP could be forged on the way: https only,
    except on loopback (a local authorization server, tests).

    Raises:
        OAuthConfigError: `url` is not https and not on loopback.
    """
    if not url:
        return
    parts = urlsplit(url.strip())
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return
    raise OAuthConfigError(f"{variable} must be an https:// URL (got {parts.scheme or 'no'} scheme).")


class RequireToken(RequireAuthMiddleware):
    """The SDK's gate, answering as RFC 6750 and the MCP spec ask: no `error` when no token came,
    `invalid_token` with the reason for a refused one, `insufficient_scope` with the scopes needed."""

    def __init__(
        self, app: ASGIApp, required_scopes: list[str], resource_metadata_url: AnyHttpUrl, issuer: str, static: bool
    ):
        super().__init__(app, required_scopes, resource_metadata_url)
        self.issuer = issuer
        self.static = static  # a static token is configured too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            sent = any(k == b"authorization" and v[:7].lower() == b"bearer " for k, v in scope.get("headers", []))
            if sent:
                reason = refusal.get() or "the token is not valid"
                await self._answer(send, 401, "invalid_token", reason)
            else:
                await self._answer(send, 401, None, "no bearer token")
            return
        missing = [s for s in self.required_scopes if s not in user.scopes]
        if missing:
            await self._answer(send, 403, "insufficient_scope", f"the token lacks the scope {' '.join(missing)}")
            return
        await self.app(scope, receive, send)

    async def _answer(self, send: Send, status: int, error: str | None, description: str) -> None:
        parts = [f'resource_metadata="{self.resource_metadata_url}"']
        if error is not None:
            parts = [f'error="{error}"', f'error_description="{description}"', *parts]
        if error == "insufficient_scope":
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        static = ", or the operator's PHOTO_MCP_AUTH_TOKEN," if self.static else ""
        message = (
            f"This photo-mcp server needs an OAuth access token from {self.issuer} for this server "
            f"(discovery: {self.resource_metadata_url}){static} sent as 'Authorization: Bearer <token>'. "
            f"Refused: {description}."
        )
        if error == "insufficient_scope":
            message = (
                f"The access token lacks the scopes {', '.join(self.required_scopes)}: sign in again granting them."
            )
        body = json.dumps(
            {"error": error or "unauthorized", "error_description": description, "message": message}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class OAuthGate:
    """Serve the protected-resource metadata, let the public routes through, require a token elsewhere."""

    def __init__(self, app: ASGIApp, verifier: PhotoTokenVerifier, *, resource: str, settings: Settings) -> None:
        self.app = app
        self.verifier = verifier
        issuer = (settings.oauth_issuer or "").strip()
        # The SDK's settings keep a path-less issuer as it is (RFC 8414 compares issuers as strings).
        auth = AuthSettings(
            issuer_url=issuer,  # type: ignore[arg-type]  # a string keeps its exact form
            resource_server_url=resource,  # type: ignore[arg-type]
            required_scopes=list(settings.oauth_required_scopes),
            validate_token_resource=True,
        )
        url = auth.resource_server_url
        assert url is not None
        metadata_url = build_resource_metadata_url(url)
        routes = create_protected_resource_routes(
            resource_url=url,
            authorization_servers=[auth.issuer_url],
            scopes_supported=list(ALL_SCOPES),
            resource_name="photo-mcp",
        )
        # Also at the root: clients of older spec revisions look there first.
        routes.append(Route(ROOT_METADATA_PATH, endpoint=routes[0].endpoint, methods=["GET", "OPTIONS"]))
        self.metadata_paths = {r.path for r in routes}
        self.metadata = Starlette(routes=routes)
        gate = RequireToken(
            app, auth.required_scopes or [], metadata_url, issuer, configured_token(settings) is not None
        )
        self.protected = AuthenticationMiddleware(
            AuthContextMiddleware(gate), backend=BearerAuthBackend(verifier, resource_server_url=url)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing(send))
            return
        if scope["type"] != "http":  # no WebSocket routes here: close before anything is served
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and path in self.metadata_paths:
            await self.metadata(scope, receive, send)
        elif scope["type"] == "http" and (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)):
            await self.app(scope, receive, send)
        else:
            await self.protected(scope, receive, send)

    def _closing(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.verifier.aclose()
            await send(message)

        return wrapped


def oauth_gate(app: ASGIApp, settings: Settings, transport: str) -> OAuthGate:
    """`app` behind the OAuth resource server of `settings`.

    Raises:
        OAuthConfigError: an incomplete OAuth configuration.
    """
    resource = resource_url(settings, transport)
    return OAuthGate(app, token_verifier(settings, resource), resource=resource, settings=settings)


def principal_of(token: AccessToken) -> str:
    """The person a token stands for: its issuer and subject (the client app when it has no subject),
    so the same person through two clients is one principal."""
    issuer = (token.claims or {}).get("iss") or ""
    return f"{issuer}#{token.subject or 'client:' + token.client_id}"


def caller_identity(settings: Settings) -> tuple[str | None, frozenset[str] | None]:
    """The principal and scopes of the request being served (None, None: the local user, all rights)."""
    token = get_access_token()
    if token is not None:
        if isinstance(token, StaticAccessToken):
            return STATIC_PRINCIPAL, None
        return principal_of(token), frozenset(token.scopes)
    if settings.is_remote and configured_token(settings) is not None:
        return STATIC_PRINCIPAL, None  # only the static token gets through server.security.BearerAuth
    return None, None


# Requests that read what is already there: the caller needs photo:read (tools check their own).
_READING = ("resources/", "completion/", "prompts/")


class ActingFor:
    """SDK server middleware: every MCP request is served for its caller's principal.

    Everything a handler looks up by id (results, uploads, jobs) and every listing it makes is
    then scoped to that principal (tools.core.principals.caller), jobs started inside included.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        principal, scopes = caller_identity(self.settings)
        if scopes is not None and READ not in scopes and ctx.method.startswith(_READING):
            raise MCPError(INVALID_REQUEST, MissingScope(READ).message)
        with acting_for(principal):
            return await call_next(ctx)


async def oauth_report(settings: Settings) -> list[str]:
    """What `photo-mcp doctor` says about OAuth: off, or the issuer, audience, how tokens are
    checked, and whether the issuer's metadata (or the configured endpoint) answers."""
    if not oauth_enabled(settings):
        return ["oauth:         off (set PHOTO_MCP_OAUTH_ISSUER to accept OAuth access tokens)"]
    issuer = (settings.oauth_issuer or "").strip()
    try:
        audience = resource_url(settings, settings.transport)
        token_verifier(settings, audience)  # the same checks as at start-up
    except OAuthConfigError as exc:
        return [f"oauth:         MISCONFIGURED: {exc}"]
    how = (
        f"introspection at {settings.oauth_introspection_url}"
        if settings.oauth_introspection_url
        else f"JWT signatures ({', '.join(settings.oauth_algorithms)}) against "
        + (settings.oauth_jwks_url or "the JWKS named in the issuer's metadata")
    )
    lines = [
        f"oauth:         issuer {issuer}; audience {audience}",
        f"      tokens:  {how}; required scopes: {' '.join(settings.oauth_required_scopes) or 'none'}",
    ]
    found = "no metadata found"
    async with httpx2.AsyncClient(timeout=4.0) as client:
        for url in metadata_urls(issuer):
            try:
                meta = (await client.get(url)).json()
            except (httpx2.HTTPError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("issuer") == issuer:
                found = f"metadata at {url}" + ("" if meta.get("jwks_uri") else " (no jwks_uri in it)")
                break
    lines.append(f"      issuer:  {found}")
    return lines
