"""Remote hosting safety of the HTTP transports (Streamable HTTP and legacy SSE), end to end.

`photo-mcp --transport http|sse` runs as a subprocess on 127.0.0.1 (tests.support.http_subprocess);
requests are made with a plain HTTP client, as an attacker would, and with the MCP SDK's clients.

- a non-loopback bind without PHOTO_MCP_AUTH_TOKEN is refused (SSE, and `::` for HTTP; the HTTP
  `0.0.0.0` case is tests/test_transports.py);
- with a token, every MCP route answers 401 to a missing or wrong bearer token (and to path tricks
  that try to ride on the open /healthz and /webhooks/ prefixes); /healthz stays open;
- DNS-rebinding protection: a Host (or Origin) outside loopback + PHOTO_MCP_ALLOWED_HOSTS is
  refused, one inside is served;
- local paths are refused over HTTP unless PHOTO_MCP_ALLOWED_DIRS is set, and allowed when it is;
- a photo as large as documented (a 15 MB data: URI) fits in one request; a larger body gets 413;
- results are written owner-only (0600) and the data dir, output dir and SQLite index are not
  readable by group or others (the server is started under umask 022 to make that a real check).
"""

from __future__ import annotations

import base64
import io
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from PIL import Image

from server.app import build_server
from server.http import MAX_REQUEST_BYTES
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.support import INIT, http_subprocess, serve_http, server_env

TOKEN = "remote-token-7f3a9c1e5b2d4f6a8c0e"
ALLOWED_HOST = "photos.example.com"
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
TRANSPORTS = ["http", "sse"]


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


@asynccontextmanager
async def mcp_session(transport: str, base: str, token: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over `transport`, with the bearer token when given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if transport == "http":
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(base + "/mcp", http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    else:
        async with sse_client(base + "/sse", headers=headers) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@asynccontextmanager
async def owner_umask() -> AsyncIterator[None]:
    """Spawn under the common umask 022, so owner-only modes come from the server, not the umask."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def status_of(http: httpx2.AsyncClient, method: str, url: str, **kw: Any) -> int:
    """The status of a request, without reading a (possibly endless) event stream."""
    async with http.stream(method, url, **kw) as response:
        return response.status_code


async def raw_status(base: str, path: str, headers: dict[str, str] | None = None) -> int:
    """Send a request line exactly as given (no client-side path normalisation)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            data += await stream.receive()
    return int(data.split(b" ", 2)[1])


# ------------------------------------------------------------------------------ bind address
@pytest.mark.parametrize(("transport", "host"), [("sse", "0.0.0.0"), ("sse", "::"), ("http", "::")])
def test_a_public_bind_without_a_token_is_refused(tmp_path: Path, transport: str, host: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "server", "--transport", transport, "--host", host, "--port", "1"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert proc.returncode == 2, proc.stderr
    assert "PHOTO_MCP_AUTH_TOKEN" in proc.stderr and "Refusing to listen" in proc.stderr


# ------------------------------------------------------------------------------ bearer token
WRONG_CREDENTIALS = {
    "none": {},
    "wrong-token": {"Authorization": "Bearer wrong-token-0000000000000000000"},
    "empty-bearer": {"Authorization": "Bearer"},
    "token-prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "token-suffix": {"Authorization": f"Bearer {TOKEN}x"},
    "token-without-scheme": {"Authorization": TOKEN},
    "basic-auth": {"Authorization": "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()},
    "other-header": {"X-Api-Key": TOKEN},
}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_mcp_route_needs_the_bearer_token(tmp_path: Path, transport: str) -> None:
    (tmp_path / "work").mkdir()
    routes = [
        ("POST", "/mcp", {"json": INIT, "headers": MCP_HEADERS}),
        ("GET", "/mcp", {"headers": {"accept": "text/event-stream"}}),
        ("DELETE", "/mcp", {}),
        ("GET", "/sse", {"headers": {"accept": "text/event-stream"}}),
        ("POST", "/messages/?session_id=0123456789abcdef0123456789abcdef", {"json": INIT}),
        ("GET", "/", {}),
    ]
    with anyio.fail_after(90):
        async with (
            http_subprocess(tmp_path, transport, PHOTO_MCP_AUTH_TOKEN=TOKEN) as base,
            httpx2.AsyncClient(timeout=10) as http,
        ):
            assert (await http.get(base + "/healthz")).status_code == 200  # open, for load balancers
            for method, path, kw in routes:
                for name, headers in WRONG_CREDENTIALS.items():
                    kw_headers = {**kw.get("headers", {}), **headers}
                    response = await http.request(method, base + path, **{**kw, "headers": kw_headers})
                    assert response.status_code == 401, f"{method} {path} with {name}: {response.status_code}"
                    assert response.headers["www-authenticate"].startswith("Bearer")
                    assert TOKEN not in response.text
            # Paths that try to ride on the open prefixes, sent verbatim (no client normalisation).
            for path in ("/healthz/../mcp", "/webhooks/../mcp", "/healthz/../sse", "/healthz%2F..%2Fmcp", "//mcp"):
                assert await raw_status(base, path) in (401, 404, 405), path
            # The right token opens the door: a remote session works (without local paths: data URIs).
            async with mcp_session(transport, base, TOKEN) as session:
                png = "data:image/png;base64," + base64.b64encode(image_bytes(40, 30, "png")).decode()
                result = await session.call_tool("resize_image", {"image": png, "width": 20})
                assert not result.is_error, text_of(result)
                # ... and a right token does not bypass the Host check.
                bad_host = {**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example.com"}
                path = "/mcp" if transport == "http" else "/sse"
                method = "POST" if transport == "http" else "GET"
                body = {"json": INIT} if transport == "http" else {}
                assert await status_of(http, method, base + path, headers=bad_host, **body) == 421


# -------------------------------------------------------------------------------- DNS rebinding
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_dns_rebinding_protection(tmp_path: Path, transport: str) -> None:
    (tmp_path / "work").mkdir()
    with anyio.fail_after(90):
        async with (
            http_subprocess(tmp_path, transport, PHOTO_MCP_ALLOWED_HOSTS=ALLOWED_HOST) as base,
            httpx2.AsyncClient(timeout=10) as http,
        ):
            port = base.rsplit(":", 1)[1]

            async def status(host: str, origin: str | None = None) -> int:
                headers = {**MCP_HEADERS, "Host": host} | ({"Origin": origin} if origin else {})
                if transport == "http":
                    return await status_of(http, "POST", base + "/mcp", headers=headers, json=INIT)
                return await status_of(http, "GET", base + "/sse", headers=headers)

            refused_hosts = [
                "evil.example.com",
                f"evil.example.com:{port}",
                f"{ALLOWED_HOST}.evil.example.com",
                f"127.0.0.1.evil.example.com:{port}",
                f"localhost.evil.example.com:{port}",
            ]
            for host in refused_hosts:
                assert await status(host) == 421, host
            for host in (ALLOWED_HOST, f"127.0.0.1:{port}", f"localhost:{port}"):
                assert await status(host) == 200, host
            # A page on another origin cannot drive the server through the browser either.
            assert await status(f"127.0.0.1:{port}", origin="http://evil.example.com") == 403
            assert await status(f"127.0.0.1:{port}", origin=f"http://127.0.0.1:{port}") == 200
            assert await status(ALLOWED_HOST, origin=f"https://{ALLOWED_HOST}") == 200
            # /healthz answers whatever the Host (it reveals nothing and serves probes).
            assert (await http.get(base + "/healthz", headers={"Host": "evil.example.com"})).status_code == 200


# --------------------------------------------------------------------------- local paths on HTTP
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_local_paths_are_refused_over_http_by_default(tmp_path: Path, transport: str) -> None:
    """The default (PHOTO_MCP_ALLOWED_DIRS unset): no local path is readable, not even the output dir."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(40, 30, "png"))
    settings = make_settings(tmp_path, transport=transport, allowed_dirs=None)
    assert settings.allowed_dirs is None
    server = build_server(settings)
    png = "data:image/png;base64," + base64.b64encode(image_bytes(40, 30, "png")).decode()
    with anyio.fail_after(60):
        async with serve_http(server, settings, transport) as base, mcp_session(transport, base) as session:
            made = await session.call_tool("resize_image", {"image": png, "width": 20})
            assert not made.is_error, text_of(made)
            result = made.structured_content["images"][0]
            for ref in (str(work / "a.png"), f"file://{work}/a.png", "~/a.png", "/etc/passwd", result["path"]):
                refused = await session.call_tool("resize_image", {"image": ref, "width": 10})
                assert refused.is_error, ref
                assert "Local file paths are disabled" in text_of(refused), text_of(refused)
                assert "PHOTO_MCP_ALLOWED_DIRS" in text_of(refused)
            # What a remote client can use instead: its own earlier results, by URI.
            chained = await session.call_tool("resize_image", {"image": result["uri"], "width": 10})
            assert not chained.is_error, text_of(chained)


async def test_an_empty_allowed_dirs_setting_also_refuses_paths(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(40, 30, "png"))
    with anyio.fail_after(60):
        async with (
            http_subprocess(tmp_path, "http", PHOTO_MCP_ALLOWED_DIRS="") as base,
            Client(base + "/mcp") as client,
        ):
            refused = await client.call_tool("resize_image", {"image": str(work / "a.png"), "width": 10})
    assert refused.is_error and "Local file paths are disabled" in text_of(refused)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_configured_dirs_work_over_http_and_everything_written_is_owner_only(
    tmp_path: Path, transport: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(40, 30, "png"))
    (tmp_path / "outside.png").write_bytes(image_bytes(8, 8, "png"))
    data_dir = tmp_path / "data"
    assert not data_dir.exists()  # the server creates it
    with anyio.fail_after(90):
        async with (
            owner_umask(),
            http_subprocess(tmp_path, transport, PHOTO_MCP_AUTH_TOKEN=TOKEN, PHOTO_MCP_ALLOWED_DIRS=str(work)) as base,
        ):
            async with mcp_session(transport, base, TOKEN) as session:
                ok = await session.call_tool("resize_image", {"image": str(work / "a.png"), "width": 20})
                assert not ok.is_error, text_of(ok)
                outside = await session.call_tool("resize_image", {"image": str(tmp_path / "outside.png"), "width": 4})
                assert outside.is_error and "outside the directories" in text_of(outside)
                traversal = await session.call_tool("resize_image", {"image": f"{work}/../outside.png", "width": 4})
                assert traversal.is_error and "outside the directories" in text_of(traversal)
            path = Path(ok.structured_content["images"][0]["path"])
            assert Image.open(path).size == (20, 15)
            assert _mode(path) == 0o600, oct(_mode(path))
            written = [data_dir, path.parent, *data_dir.glob("*.sqlite3*")]
            assert any(p.name.endswith(".sqlite3") for p in written)
            for item in written:
                assert _mode(item) & 0o077 == 0, f"{item} is {oct(_mode(item))}: readable by others"


# ------------------------------------------------------------------------------ request size
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_remote_clients_can_send_a_photo_as_large_as_documented(tmp_path: Path, transport: str) -> None:
    """Over HTTP a photo arrives as a data: URI; the SDK's default 4 MiB body cap refused ~3 MB photos.

    A body above the cap (sized for one 15 MB data URI) is refused with 413 before it is read,
    and the server keeps serving.
    """
    noise = Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=1)
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(uri) > 8 * 2**20  # twice the SDK default
    settings = make_settings(tmp_path, transport=transport, allowed_dirs=None)
    with anyio.fail_after(60):
        async with (
            serve_http(build_server(settings), settings, transport) as base,
            mcp_session(transport, base) as session,
            httpx2.AsyncClient(timeout=30) as http,
        ):
            result = await session.call_tool("resize_image", {"image": uri, "width": 16})
            assert not result.is_error, text_of(result)
            path = "/mcp" if transport == "http" else "/messages/?session_id=0123456789abcdef0123456789abcdef"
            oversize = await http.post(base + path, content=b" " * (MAX_REQUEST_BYTES + 1), headers={**MCP_HEADERS})
            assert oversize.status_code == 413
            chained = {"image": result.structured_content["images"][0]["uri"], "width": 8}
            again = await session.call_tool("resize_image", chained)
            assert not again.is_error, text_of(again)
