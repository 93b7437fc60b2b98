"""photo-mcp over real transports: stdio subprocess, SSE and Streamable HTTP on loopback."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from PIL import Image

from server.adapter import call_of
from server.app import PhotoServer, build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.support import http_subprocess, serve_http, stdio_params
from tools.core.jobs import JobContext, Outcome
from tools.toolkit.run import run_job


async def test_stdio_subprocess_lists_calls_and_reads_back(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(64, 48, "png"))
    with anyio.fail_after(60):
        async with Client(stdio_params(tmp_path)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"resize_image", "remove_background", "get_job"} <= names
            result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 32})
            assert not result.is_error, result.content
            image = result.structured_content["images"][0]
            read = await client.read_resource(image["uri"])
    data = base64.b64decode(read.contents[0].blob)
    assert data == Path(image["path"]).read_bytes()
    assert read.contents[0].mime_type == "image/png"


def _with_slow_tool(server: PhotoServer) -> PhotoServer:
    """Add a job that takes ~2.5 s and reports steps: real job machinery, a test workload."""

    @server.tool()
    async def slow_job(ctx: Context, seconds: float = 2.5) -> CallToolResult:
        async def work(job: JobContext) -> Outcome:
            steps = 5
            for i in range(steps):
                await job.progress(f"step {i + 1} of {steps}", (i + 1) / steps)
                await anyio.sleep(seconds / steps)
            return Outcome([], message="slow job done")

        return await run_job(call_of(ctx), "slow_job", "test", {}, work)

    return server


@asynccontextmanager
async def _connect(transport: str, base: str) -> AsyncIterator[ClientSession | Client]:
    if transport == "http":
        async with Client(base + "/mcp") as client:
            yield client
    else:
        async with sse_client(base + "/sse") as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_progress_notifications_arrive_during_a_job(tmp_path: Path, workdir: Path, transport: str) -> None:
    settings = make_settings(tmp_path, transport=transport)
    server = _with_slow_tool(build_server(settings))
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with anyio.fail_after(30):
        async with serve_http(server, settings, transport) as base, _connect(transport, base) as client:
            result = await client.call_tool("slow_job", {"seconds": 2.5}, progress_callback=on_progress)
    assert not result.is_error, result.content
    assert result.structured_content["status"] == "succeeded"
    messages = [m for _, _, m in updates]
    assert any(m and m.startswith("step 3 of 5") for m in messages), messages
    values = [p for p, _, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert updates[-1][:2] == (100, 100)


async def test_slow_job_hands_off_and_get_job_finishes_it(tmp_path: Path) -> None:
    server = _with_slow_tool(build_server(make_settings(tmp_path, wait_seconds=0.5)))
    async with Client(server) as client:
        first = await client.call_tool("slow_job", {"seconds": 1.5})
        assert first.structured_content["status"] == "running"
        assert "get_job" in first.content[0].text
        job_id = first.structured_content["job_id"]
        waited = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0.3})
        with anyio.fail_after(10):
            while waited.structured_content["status"] == "running":
                waited = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0.5})
        assert waited.structured_content["status"] == "succeeded"
        assert waited.structured_content["message"] == "slow job done"


async def test_cancel_job_stops_a_running_job(tmp_path: Path) -> None:
    server = _with_slow_tool(build_server(make_settings(tmp_path, wait_seconds=0.2)))
    async with Client(server) as client:
        first = await client.call_tool("slow_job", {"seconds": 30})
        job_id = first.structured_content["job_id"]
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        assert cancelled.structured_content["status"] == "cancelled"
        again = await client.call_tool("get_job", {"job_id": job_id})
        assert again.structured_content["status"] == "cancelled"


async def test_http_subprocess_requires_the_bearer_token(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 40, "png"))
    token = "test-token-0123456789abcdef"
    async with http_subprocess(
        tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=token, PHOTO_MCP_ALLOWED_DIRS=str(workdir)
    ) as base:
        async with httpx2.AsyncClient() as raw:
            assert (await raw.get(base + "/healthz")).status_code == 200
            denied = await raw.post(base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            assert denied.status_code == 401
            wrong = await raw.post(
                base + "/mcp", json={}, headers={"Authorization": "Bearer wrong-token-0000000000000"}
            )
            assert wrong.status_code == 401
            # Only /healthz itself is public, not every path that starts with it.
            assert (await raw.get(base + "/healthzX")).status_code == 401
            # The scheme is case-insensitive (RFC 6750).
            lower = await raw.post(
                base + "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
                headers={"Authorization": f"bearer {token}", "Accept": "application/json, text/event-stream"},
            )
            assert lower.status_code != 401
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as authed:
            from mcp.client.streamable_http import streamable_http_client

            async with (
                streamable_http_client(base + "/mcp", http_client=authed) as (read, write, *_),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                result = await session.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 20})
                assert not result.is_error, result.content
                assert Image.open(result.structured_content["images"][0]["path"]).size == (20, 20)


async def test_http_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import server_env

    proc = subprocess.run(
        [sys.executable, "-m", "server", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "PHOTO_MCP_AUTH_TOKEN" in proc.stderr
