"""Serve an ASGI app with uvicorn on a loopback port, for tests and benchmarks.

Sockets get TCP_NODELAY: without it keep-alive replies on loopback can stall
~40 ms each (Nagle + delayed ACK), which would hide real overhead.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from starlette.types import ASGIApp


class _EmbeddedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process owns its signals
        pass


def _nodelay_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def serve(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Run `app` on an ephemeral loopback port; yield its base URL ("http://127.0.0.1:PORT").

    Raises:
        ValueError: if `host` is not a loopback address (tests only ever bind loopback).
        TimeoutError: if the server does not start within 10 s.
    """
    if host not in ("127.0.0.1", "::1"):
        raise ValueError("test servers bind loopback only")
    sock = _nodelay_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = _EmbeddedServer(config)
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
                await anyio.sleep(0.005)
        # Accepted connections inherit TCP_NODELAY from the listener on Linux, and
        # asyncio transports set it on every TCP connection anyway.
        try:
            yield base
        finally:
            server.should_exit = True
    sock.close()
