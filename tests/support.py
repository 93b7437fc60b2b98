"""End-to-end helpers: photo-mcp as a subprocess (stdio, HTTP) or served in-process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import StdioServerParameters

from server.app import PhotoServer
from server.http import http_app
from tests.fakes.loopback import serve
from tools.core.settings import Settings

# The first message of a raw JSON-RPC session (tests that speak the wire without an MCP client).
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}},
}


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a photo-mcp subprocess: isolated dirs, nothing inherited from PHOTO_MCP_/keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTO_MCP_", "ALUO_", "YOUCAM_", "REMOVEDO_"))}
    env.update(
        PHOTO_MCP_DATA_DIR=str(tmp_path / "data"),
        PHOTO_MCP_ALLOWED_DIRS=str(tmp_path / "work"),
        PHOTO_MCP_ALLOW_PRIVATE_URLS="1",
        PHOTO_MCP_RETRY_BASE_DELAY="0.01",
    )
    env.update(extra)
    return env


def stdio_params(tmp_path: Path, **extra: str) -> StdioServerParameters:
    """Launch `photo-mcp` (via `python -m server`, the console script's target) over stdio."""
    return StdioServerParameters(
        command=sys.executable, args=["-m", "server"], env=server_env(tmp_path, **extra), cwd="/"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def http_process(
    tmp_path: Path, transport: str = "http", extra_args: tuple[str, ...] = (), **extra: str
) -> AsyncIterator[tuple[str, int]]:
    """Run `photo-mcp --transport {transport}` on a loopback port; yield (base URL, pid).

    Its stderr goes to `tmp_path/server-<port>.log`: a pipe nobody reads would block the server
    once full.
    """
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--transport", transport, "--port", str(port), *extra_args],
            env=server_env(tmp_path, **extra),
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
        )
    base = f"http://127.0.0.1:{port}"
    try:
        with anyio.fail_after(30):
            async with httpx2.AsyncClient() as client:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"photo-mcp exited: {log_path.read_text()[-2000:]}")
                    try:
                        if (await client.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@asynccontextmanager
async def http_subprocess(
    tmp_path: Path, transport: str = "http", extra_args: tuple[str, ...] = (), **extra: str
) -> AsyncIterator[str]:
    """`http_process` when only the base URL is needed."""
    async with http_process(tmp_path, transport, extra_args, **extra) as (base, _pid):
        yield base


@asynccontextmanager
async def serve_http(server: PhotoServer, settings: Settings, transport: str = "http") -> AsyncIterator[str]:
    """Serve `server` in-process over sse/http on loopback, with its real HTTP app and lifespan."""
    app = http_app(server, settings, transport, "127.0.0.1", 0)  # type: ignore[arg-type]
    async with serve_with_lifespan(app) as base:
        yield base


@asynccontextmanager
async def serve_with_lifespan(app) -> AsyncIterator[str]:
    # tests.fakes.loopback.serve runs without lifespan (fakes have none); the MCP apps need theirs.
    async with _lifespan(app), serve(app) as base:
        yield base


@asynccontextmanager
async def _lifespan(app) -> AsyncIterator[None]:
    inner = app
    while not hasattr(inner, "router"):
        inner = inner.app  # unwrap BearerAuth
    async with inner.router.lifespan_context(inner):
        yield
