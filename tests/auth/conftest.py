"""The parts every OAuth test uses: the authorization server, photo-mcp on loopback, MCP sessions."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from server.app import build_server
from server.http import http_app
from tests.auth.issuer import Issuer
from tests.conftest import make_settings
from tests.fakes.images import image_bytes

STATIC_TOKEN = "static-team-token-5c1e9a7f3b2d"


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer().serve() as running:
        yield running


@dataclass
class Served:
    base: str
    settings: Any

    @property
    def mcp(self) -> str:
        return self.base + "/mcp"


class _Embedded(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@asynccontextmanager
async def photo_mcp(
    tmp_path: Path, issuer: Issuer | None, transport: str = "http", **overrides: Any
) -> AsyncIterator[Served]:
    """photo-mcp's real HTTP app (Streamable HTTP, or SSE) on a loopback port, as the resource server of `issuer`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = {"transport": transport, "public_url": base}
    if issuer is not None:
        values["oauth_issuer"] = issuer.url
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    app = http_app(build_server(settings), settings, transport, "127.0.0.1", port)  # type: ignore[arg-type]
    server = _Embedded(uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(20):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await anyio.sleep(0.01)
        try:
            yield Served(base, settings)
        finally:
            server.should_exit = True
    sock.close()


@asynccontextmanager
async def session(url: str, token: str | None = None, **client: Any) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over Streamable HTTP, sending `token` as the bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30, **client) as http,
        streamable_http_client(url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        yield mcp


def data_uri(width: int = 48, height: int = 32) -> str:
    return "data:image/png;base64," + base64.b64encode(image_bytes(width, height, "png")).decode()


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


def token_for(issuer: Issuer, served: Served, sub: str, scope: str = "photo:read photo:edit photo:spend") -> str:
    """A real access token of `issuer` for `sub`, for this server (RFC 8707 audience)."""
    return issuer.mint(sub=sub, aud=served.mcp, scope=scope)
