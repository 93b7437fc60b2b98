"""HTTP transport safety: bearer-token auth, allowed hosts, and the bind-address rule."""

from __future__ import annotations

import hmac
import ipaddress
import json

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from tools.core.settings import MIN_TOKEN_LENGTH, Settings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Reachable without the MCP token: the health check, and webhooks (they carry their own secret).
PUBLIC_PATHS = frozenset({"/healthz"})
# /files/ is signed download links: the route itself refuses (403) a link without a valid signature.
PUBLIC_PREFIXES = ("/webhooks/", "/files/", "/uploads/")


class InsecureBind(Exception):
    """Refusing to serve on a non-loopback address without an auth token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings, host: str) -> None:
    """Raises:
    InsecureBind: if `host` is not loopback and neither PHOTO_MCP_AUTH_TOKEN nor OAuth is set.
    """
    oauth = bool(settings.oauth_issuer and settings.oauth_issuer.strip())  # server/auth.py then checks tokens
    if not is_loopback(host) and not configured_token(settings) and not oauth:
        raise InsecureBind(
            f"Refusing to listen on {host} without authentication: set PHOTO_MCP_AUTH_TOKEN "
            "(clients then send 'Authorization: Bearer <token>'), or bind to 127.0.0.1."
        )


def configured_token(settings: Settings) -> str | None:
    """The bearer token, or None when it is unset, empty or only whitespace (never a match-anything)."""
    token = settings.auth_token.get_secret_value().strip() if settings.auth_token is not None else ""
    return token or None


def transport_security(settings: Settings, host: str, port: int) -> TransportSecuritySettings:
    """DNS-rebinding protection: loopback names plus PHOTO_MCP_ALLOWED_HOSTS."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.allowed_hosts]
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in settings.allowed_hosts]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class BearerAuth:
    """Require `Authorization: Bearer <token>` on every HTTP request but the public routes."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if len(token.strip()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"a bearer token needs at least {MIN_TOKEN_LENGTH} characters")
        self.app = app
        self._expected = token.strip().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        # The scheme is case-insensitive (RFC 6750); the token is compared in constant time.
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self._expected):
            await self.app(scope, receive, send)
            return
        body, challenge = unauthorized(sent=scheme.lower() == b"bearer" and bool(given.strip()))
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def unauthorized(*, sent: bool) -> tuple[bytes, bytes]:
    """The 401 body (JSON, its message says what to set) and `WWW-Authenticate` challenge (RFC 6750).

    `sent`: a bearer token came but did not match; otherwise none came.
    """
    if sent:
        error = "invalid_token"
        message = (
            "The bearer token does not match this server's PHOTO_MCP_AUTH_TOKEN. Set the client's "
            "'Authorization' header to 'Bearer <token>' with exactly the value of PHOTO_MCP_AUTH_TOKEN "
            "in the server's environment."
        )
    else:
        error = "missing_token"
        message = (
            "This photo-mcp server requires a bearer token. Set the HTTP header "
            "'Authorization: Bearer <token>' in your MCP client's server entry (headers), where <token> "
            "is the value of PHOTO_MCP_AUTH_TOKEN in the server's environment."
        )
    body = json.dumps({"error": error, "message": message}).encode()
    challenge = 'Bearer realm="photo-mcp"'
    if sent:
        challenge += ', error="invalid_token", error_description="the token does not match PHOTO_MCP_AUTH_TOKEN"'
    return body, challenge.encode()
