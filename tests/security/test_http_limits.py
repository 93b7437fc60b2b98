"""The HTTP transports keep answering under slowloris and connection exhaustion.

`photo-mcp --transport http|sse` runs as a subprocess on 127.0.0.1 with small caps, and real
sockets do what an attacker does: hold half-sent headers, trickle a body, pile up event streams
and sessions. Every check is an outcome (a status, a closed socket), bounded by `fail_after`.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import SocketStream

from server.app import build_server
from tests.conftest import make_settings
from tests.support import INIT, free_port, serve_http, server_env

TOKEN = "limits-token-0123456789abcdef"
MCP = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@asynccontextmanager
async def server(
    tmp_path: Path, transport: str = "http", nofile: int | None = None, **env: str
) -> AsyncIterator[tuple[str, int]]:
    """photo-mcp on a loopback port (optionally under a low file-descriptor limit): (base URL, port)."""
    port = free_port()
    (tmp_path / "work").mkdir(exist_ok=True)

    def limit_fds() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with (tmp_path / f"server-{port}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--transport", transport, "--port", str(port)],
            env=server_env(tmp_path, **env), stdout=subprocess.DEVNULL, stderr=log, cwd="/", preexec_fn=limit_fds,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with anyio.fail_after(30):
            async with httpx2.AsyncClient() as client:
                while True:
                    assert proc.poll() is None, (tmp_path / f"server-{port}.log").read_text()[-2000:]
                    try:
                        if (await client.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        await anyio.sleep(0.05)
        yield base, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _half_open(port: int, stack: AsyncExitStack, data: bytes) -> SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stack.enter_async_context(stream)
    await stream.send(data)
    return stream


async def _read_until_closed(stream: SocketStream) -> bytes:
    data = b""
    try:
        while True:
            data += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
        return data


SLOW_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def test_healthz_answers_while_hundreds_of_connections_hold_half_sent_headers(tmp_path: Path) -> None:
    # 200 slowloris connections against a server allowed 160 descriptors: without a cap it
    # runs out of them and stops accepting; with one, the oldest idle connections give way.
    async with (
        server(tmp_path, nofile=160, PHOTO_MCP_MAX_CONNECTIONS="40", PHOTO_MCP_HEADER_TIMEOUT="600") as (base, port),
        AsyncExitStack() as stack,
    ):
        with anyio.fail_after(60):
            for _ in range(200):
                await _half_open(port, stack, SLOW_HEADERS)
            async with httpx2.AsyncClient(timeout=20) as client:
                for _ in range(3):
                    health = await client.get(base + "/healthz", headers={"connection": "close"})
                    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_unfinished_headers_get_408_and_the_connection_is_closed(tmp_path: Path) -> None:
    async with server(tmp_path, PHOTO_MCP_HEADER_TIMEOUT="1") as (_base, port), AsyncExitStack() as stack:
        stream = await _half_open(port, stack, SLOW_HEADERS)
        with anyio.fail_after(30):
            answer = await _read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_a_stalled_request_body_gets_408_and_the_connection_is_closed(tmp_path: Path) -> None:
    head = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        "accept: application/json, text/event-stream\r\ncontent-length: 5000\r\n\r\n"
    )
    async with server(tmp_path, PHOTO_MCP_BODY_TIMEOUT="1") as (_base, port), AsyncExitStack() as stack:
        stream = await _half_open(port, stack, head.encode() + b'{"jsonrpc": "2.0", ')
        with anyio.fail_after(30):
            answer = await _read_until_closed(stream)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


@pytest.mark.parametrize(("transport", "path"), [("sse", "/sse"), ("http", "/mcp")])
async def test_open_event_streams_are_capped_with_a_clear_503(tmp_path: Path, transport: str, path: str) -> None:
    async with (
        server(tmp_path, transport, PHOTO_MCP_MAX_STREAMS="2") as (base, _port),
        httpx2.AsyncClient(timeout=20) as client,
        AsyncExitStack() as stack,
    ):

        async def stream_headers() -> dict[str, str]:
            headers = {"accept": "text/event-stream"}
            if transport == "http":  # a standalone GET stream belongs to a session (one per session)
                init = await client.post(base + "/mcp", json=INIT, headers=MCP)
                headers["mcp-session-id"] = init.headers["mcp-session-id"]
                headers["mcp-protocol-version"] = "2025-11-25"
            return headers

        with anyio.fail_after(30):
            opened = []
            for _ in range(2):
                headers = await stream_headers()
                response = await stack.enter_async_context(client.stream("GET", base + path, headers=headers))
                opened.append(response.status_code)
            refused = await client.get(base + path, headers=await stream_headers())
            assert refused.status_code == 503 and refused.json()["error"] == "too_many_streams", refused.text
            assert (await client.get(base + "/healthz")).status_code == 200
        assert opened == [200, 200]


async def test_a_pile_of_sessions_evicts_idle_ones_instead_of_locking_everyone_out(tmp_path: Path) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with (
        server(tmp_path, PHOTO_MCP_MAX_SESSIONS="3", PHOTO_MCP_AUTH_TOKEN=TOKEN) as (base, _port),
        httpx2.AsyncClient(timeout=20, headers=auth) as client,
        AsyncExitStack() as stack,
    ):

        async def open_session() -> str:
            response = await client.post(base + "/mcp", json=INIT, headers=MCP)
            assert response.status_code == 200, response.text
            return response.headers["mcp-session-id"]

        async def alive(session: str) -> bool:
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            headers = {**MCP, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
            status = (await client.post(base + "/mcp", json=note, headers=headers)).status_code
            assert status in (202, 404), status
            return status == 202

        with anyio.fail_after(60):
            busy = await open_session()  # holds its event stream open: in use, never evicted
            stream_headers = {
                "accept": "text/event-stream",
                "mcp-session-id": busy,
                "mcp-protocol-version": "2025-11-25",
            }
            await stack.enter_async_context(client.stream("GET", base + "/mcp", headers=stream_headers))
            idle = [await open_session() for _ in range(2)]
            newcomers = [await open_session() for _ in range(20)]  # an abandoned-session flood
            assert await alive(busy)
            assert not any([await alive(s) for s in idle])  # the least recently used idle ones went first
            assert await alive(newcomers[-1]) and await alive(newcomers[-2])
            assert (await client.get(base + "/healthz")).status_code == 200
            # A request without the token is still refused before it can take a session slot.
            async with httpx2.AsyncClient() as stranger:
                assert (await stranger.post(base + "/mcp", json=INIT, headers=MCP)).status_code == 401


async def test_one_credential_cannot_push_out_the_sessions_of_another(tmp_path: Path) -> None:
    """Per-credential caps, on the real HTTP app in-process (no static token: the Authorization
    header only tells the clients apart here, as distinct OAuth tokens would)."""
    settings = make_settings(tmp_path, transport="http", max_sessions=4, max_sessions_per_token=2)
    async with serve_http(build_server(settings), settings) as base, httpx2.AsyncClient(timeout=20) as client:

        async def open_session(who: str) -> str:
            response = await client.post(base + "/mcp", json=INIT, headers={**MCP, "authorization": f"Bearer {who}"})
            assert response.status_code == 200, response.text
            return response.headers["mcp-session-id"]

        async def alive(who: str, session: str) -> bool:
            headers = {**MCP, "authorization": f"Bearer {who}", "mcp-session-id": session}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            return (await client.post(base + "/mcp", json=note, headers=headers)).status_code == 202

        with anyio.fail_after(60):
            mallory = [await open_session("mallory-token-000000") for _ in range(6)]
            alice = [await open_session("alice-token-00000000") for _ in range(2)]
            assert [await alive("mallory-token-000000", s) for s in mallory] == [False] * 4 + [True] * 2
            assert all([await alive("alice-token-00000000", s) for s in alice])
            more = [await open_session("mallory-token-000000") for _ in range(3)]  # at her own cap again
            assert all([await alive("alice-token-00000000", s) for s in alice])
            assert await alive("mallory-token-000000", more[-1])
