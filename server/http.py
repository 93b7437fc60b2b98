"""The HTTP transports (Streamable HTTP at /mcp, legacy SSE at /sse) as one ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp
from uvicorn import Config

from server.app import PhotoServer
from server.auth import oauth_enabled, oauth_gate
from server.limits import Limits, SessionLimits, connection_cap, guarded_protocol
from server.security import BearerAuth, configured_token, transport_security
from server.upload_url import register_upload_routes
from server.webhooks import register_routes as register_webhook_routes
from tools.core.refs import MAX_DATA_URI_BYTES
from tools.core.settings import Settings

# Remote clients cannot pass paths, so images arrive as data: URIs: one of the documented maximum
# size (base64: 4/3 of it) must fit in a request, not only the SDK's default 4 MiB.
MAX_REQUEST_BYTES = MAX_DATA_URI_BYTES * 4 // 3 + 1024 * 1024


def http_app(
    server: PhotoServer, settings: Settings, transport: Literal["sse", "http"], host: str, port: int
) -> ASGIApp:
    """An ASGI app serving `server` over `transport`, with /healthz and bearer auth when configured.

    Progress notifications need streamed responses: JSON-only response mode is never used.
    """

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "transport": transport})

    register_webhook_routes(server)  # public like /healthz: the per-job secret is the credential
    register_upload_routes(server)  # /uploads/{secret}: pick_image's one-time upload links, public likewise
    security = transport_security(settings, host, port)
    if transport == "http":
        inner = server.streamable_http_app(
            streamable_http_path="/mcp",
            json_response=False,
            transport_security=security,
            host=host,
            max_request_body_size=MAX_REQUEST_BYTES,
            # Ours (SessionLimits) evicts idle sessions first; the SDK's own cap is the backstop.
            max_sessions=settings.max_sessions + 16,
        )
    else:
        inner = server.sse_app(transport_security=security, host=host, max_request_body_size=MAX_REQUEST_BYTES)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # One runtime for every session: jobs outlive connections.
        async with server.running(), inner.router.lifespan_context(inner):
            yield

    app: ASGIApp = Starlette(routes=[Mount("/", app=inner)], lifespan=lifespan)
    app = SessionLimits(
        app,
        max_sessions=settings.max_sessions,
        max_streams=settings.max_streams,
        max_sessions_per_token=settings.max_sessions_per_token,
    )
    token = configured_token(settings)
    if oauth_enabled(settings):  # OAuth access tokens, and the static token too when it is set
        app = oauth_gate(app, settings, transport)
    elif token is not None:
        app = BearerAuth(app, token)
    return app


def uvicorn_config(app: ASGIApp, settings: Settings, host: str, port: int) -> Config:
    """The uvicorn configuration: read deadlines, keep-alive, header size and connection caps.

    uvicorn's own `limit_concurrency` (503 once that many connections or requests are open)
    sits just above our connection cap: the cap evicts idle and slow connections first, so a
    pile of half-open connections never turns /healthz into a 503.
    """
    cap = connection_cap(settings.max_connections)
    limits = Limits(max_connections=cap, header_timeout=settings.header_timeout, body_timeout=settings.body_timeout)
    return Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        http=guarded_protocol(limits),
        timeout_keep_alive=settings.keep_alive_timeout,
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        limit_concurrency=cap + 1,
        backlog=min(2048, cap * 2),
    )
