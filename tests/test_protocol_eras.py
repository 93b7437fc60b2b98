"""Both protocol eras (handshake ≤2025-11-25 via mode="legacy", and 2026-07-28), over stdio and
Streamable HTTP: tools, progress, resources and errors behave the same."""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult

from server.adapter import call_of
from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.support import http_subprocess, stdio_params
from tools.core.jobs import JobContext, Outcome
from tools.toolkit.run import run_job


@asynccontextmanager
async def _client(transport: str, mode: str, tmp_path: Path) -> AsyncIterator[Client]:
    if transport == "stdio":
        async with Client(stdio_params(tmp_path), mode=mode) as client:
            yield client
    else:
        async with http_subprocess(tmp_path, "http") as base, Client(base + "/mcp", mode=mode) as client:
            yield client


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_same_behaviour_in_both_eras(tmp_path: Path, workdir: Path, transport: str, mode: str) -> None:
    (workdir / "a.png").write_bytes(image_bytes(60, 40, "png"))
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with anyio.fail_after(60):
        async with _client(transport, mode, tmp_path) as client:
            expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
            assert client.protocol_version == expected
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"resize_image", "remove_background", "check_credits"} <= names
            ok = await client.call_tool(
                "resize_image", {"image": str(workdir / "a.png"), "width": 30}, progress_callback=on_progress
            )
            assert not ok.is_error and ok.structured_content["images"][0]["height"] == 20
            read = await client.read_resource(ok.structured_content["images"][0]["uri"])
            assert base64.b64decode(read.contents[0].blob)[:8] == b"\x89PNG\r\n\x1a\n"
            bad = await client.call_tool("resize_image", {"image": str(workdir / "missing.png"), "width": 30})
            assert bad.is_error and "No file at" in bad.content[0].text
    assert updates and updates[-1][:2] == (100, 100)


async def test_heartbeat_at_least_every_5_seconds_on_a_silent_job(tmp_path: Path) -> None:
    """A provider that says nothing for 9 s still yields a progress message every ≤5 s."""
    server = build_server(make_settings(tmp_path))

    @server.tool()
    async def silent_job(ctx: Context) -> CallToolResult:
        async def work(job: JobContext) -> Outcome:
            await job.progress("running at the provider")
            await anyio.sleep(9)
            return Outcome([])

        return await run_job(call_of(ctx), "silent_job", "test", {}, work)

    stamps: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        stamps.append((anyio.current_time(), message))

    async with Client(server) as client:
        start = anyio.current_time()
        result = await client.call_tool("silent_job", {}, progress_callback=on_progress)
    assert result.structured_content["status"] == "succeeded"
    times = [start] + [t for t, _ in stamps]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 5.0
    assert any(m and m.startswith("running at the provider (") for _, m in stamps)
