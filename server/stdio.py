"""Stdio served from the event loop when stdin and stdout are pipes.

The SDK's transport (`mcp.server.stdio`) reads each line in a worker thread and writes each
message in two more (the write, then the flush): three thread round trips per request, each a
wake-up that waits for a core on a busy machine. MCP clients start a server with pipes, and a
pipe can be waited on by the event loop like a socket, so here the loop reads and writes them
itself; the SDK's `stdio_server` still does the framing and the JSON-RPC parsing, fed by the two
small stream objects below. Anything that is not a pair of pipes (a terminal, a file, a socket,
another OS) keeps the SDK's transport unchanged.

The pipes are reopened through `/proc/self/fd`, which gives this process an open file of its own:
making it non-blocking cannot change the file the client or a shell shares with us. While
serving, fd 0 reads the null device and fd 1 writes to stderr, as the SDK arranges, so a stray
`print` or a child process cannot corrupt the wire; both come back on exit.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from typing import Any

import anyio
from mcp.server.stdio import stdio_server

_CHUNK = 1 << 16


class PipeLines:
    """The client's messages: an async iterator of text lines, each with its newline (the last may
    lack one), read by the event loop from a non-blocking pipe. Undecodable bytes become U+FFFD,
    as in the SDK's transport, so the JSON parser reports the line instead of the reader dying."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._scanned = 0  # no newline before this offset: a long line is searched once, not per chunk
        self._eof = False

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            end = self._buf.find(b"\n", self._scanned)
            if end >= 0:
                return self._take(end + 1)
            self._scanned = len(self._buf)
            if self._eof:
                if self._buf:
                    return self._take(len(self._buf))
                raise StopAsyncIteration
            await self._fill()

    def _take(self, n: int) -> str:
        line = self._buf[:n].decode("utf-8", errors="replace")
        del self._buf[:n]
        self._scanned = 0
        return line

    async def _fill(self) -> None:
        try:
            chunk = os.read(self._fd, _CHUNK)
        except BlockingIOError:
            await anyio.wait_readable(self._fd)
            return
        if chunk:
            self._buf += chunk
        else:
            self._eof = True


class PipeWriter:
    """The server's messages, written by the event loop to a non-blocking pipe. A client that stops
    reading fills the pipe; the writer then waits for room without holding up other work."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            try:
                data = data[os.write(self._fd, data) :]
            except BlockingIOError:
                await anyio.wait_writable(self._fd)

    async def flush(self) -> None:
        """Nothing is buffered: every write reached the pipe."""


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def loop_pipes() -> Iterator[tuple[PipeLines, PipeWriter] | None]:
    """Yield the wire read and written on the event loop, or None where that cannot be done (the
    standard streams are not both pipes, or `/proc/self/fd` cannot reopen them): the caller then
    uses the SDK's own transport. While yielded, fd 0 and 1 are diverted; restored on exit."""
    if sys.platform != "linux" or not (_is_pipe(0) and _is_pipe(1)):
        yield None
        return
    opened: list[int] = []
    try:
        for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY)):
            opened.append(os.open(f"/proc/self/fd/{fd}", mode | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError:
        for fd in opened:
            os.close(fd)
        yield None
        return
    wire_in, wire_out = opened
    saved = [os.dup(0), os.dup(1)]
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        try:
            os.dup2(null, 0)
        finally:
            os.close(null)
        os.dup2(2, 1)
        yield PipeLines(wire_in), PipeWriter(wire_out)
    finally:
        for fd, copy in zip((0, 1), saved, strict=True):
            with contextlib.suppress(OSError):
                os.dup2(copy, fd)
            os.close(copy)
        os.close(wire_in)
        os.close(wire_out)


async def run_stdio(server: Any) -> None:
    """Serve `server` (an `MCPServer`) over stdin and stdout until the client closes stdin.

    Raises:
        RuntimeError: another stdio transport in this process has claimed the standard streams
            (from the SDK's transport, when it is the one used).
    """
    with loop_pipes() as pipes:
        if pipes is None:
            await server.run_stdio_async()
            return
        lowlevel = server._lowlevel_server  # what the SDK's run_stdio_async runs, with our streams
        async with stdio_server(*pipes) as (read_stream, write_stream):  # type: ignore[arg-type]
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
