"""Reliability tests: a fault matrix against the fakes and crash recovery of `photo-mcp`.

Two helpers shared by both suites live here:

- `FaultProxy`: an HTTP/1.1 proxy on 127.0.0.1 in front of a fake provider. It relays every
  request and, on command, produces the transport failures a client meets in the wild: the
  connection reset before the request reaches the provider (it is never forwarded), or after
  the provider has processed it (the answer is lost), an answer held past the client's read
  timeout, an answer replaced after processing (malformed JSON, an HTML page), or a body
  trickled out slowly. The failures are real TCP resets and timeouts seen by httpx2, not
  exceptions raised inside our code.
- `killable_stdio`: `photo-mcp` as a stdio subprocess whose pid the test holds, so it can be
  SIGKILLed mid-job; an MCP `Client` runs over its pipes like over the SDK's stdio transport.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import h11
import httpx2
import mcp_types as types
from anyio.abc import ByteStream, Process, SocketAttribute
from anyio.streams.text import TextReceiveStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage

from tests.support import server_env

Action = Literal["drop_before", "drop_after", "hold", "replace", "relabel", "throttle"]
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade", "proxy-connection"}


@dataclass
class Rule:
    method: str
    path_prefix: str
    action: Action
    times: int = 1
    seconds: float = 0.0  # hold: how long; throttle: pause between chunks
    status: int = 200  # replace
    body: bytes = b""  # replace
    content_type: str = "application/json"  # replace, relabel
    chunk: int = 4096  # throttle
    skip: int = 0  # let this many matching requests through first
    fired: int = 0
    seen: int = 0


@dataclass
class FaultProxy:
    """Relays HTTP/1.1 to `upstream`, keeping the Host header (the fakes build result URLs from
    it, so downloads come back through the proxy too). `inject` arms a fault for the next
    matching request(s); `fired` says whether it happened; `log` lists (method, path, action)."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)  # "METHOD path-prefix" of throttled bodies begun

    def inject(self, method: str, path_prefix: str, action: Action, **kw: object) -> Rule:
        rule = Rule(method.upper(), path_prefix, action, **kw)  # type: ignore[arg-type]
        self.rules.append(rule)
        return rule

    def fired(self, rule: Rule) -> bool:
        return rule.fired > 0

    def _take(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.fired < rule.times and rule.method == method and path.startswith(rule.path_prefix):
                rule.seen += 1
                if rule.seen > rule.skip:
                    rule.fired += 1
                    return rule
        return None

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Listen on an ephemeral loopback port; yield the proxy's base URL."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(SocketAttribute.local_port)
        async with (
            listener,
            # verify=False: plain HTTP to loopback only, and no CA bundle to load (~80 ms per proxy).
            httpx2.AsyncClient(base_url=self.upstream, timeout=None, verify=False) as upstream,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(listener.serve, lambda stream: self._connection(stream, upstream))
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                tg.cancel_scope.cancel()

    async def _connection(self, stream: ByteStream, upstream: httpx2.AsyncClient) -> None:
        stream.extra(SocketAttribute.raw_socket).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await _read_request(stream, conn)
                if request is None:
                    return
                method, target, headers, body = request
                path = target.split("?", 1)[0]
                rule = self._take(method, path)
                self.log.append((method, path, rule.action if rule else "relay"))
                if rule is not None and rule.action == "drop_before":
                    await _reset(stream)  # the provider never sees this request
                    return
                forward = [(k, v) for k, v in headers if k.lower() not in _HOP]
                response = await upstream.request(method, target, headers=forward, content=body)
                status, out_headers, out_body = response.status_code, list(response.headers.items()), response.content
                if rule is not None and rule.action == "drop_after":
                    await _reset(stream)  # processed by the provider; its answer is lost on the way back
                    return
                if rule is not None and rule.action == "hold":
                    await anyio.sleep(rule.seconds)
                if rule is not None and rule.action == "replace":
                    status, out_headers, out_body = rule.status, [("content-type", rule.content_type)], rule.body
                if rule is not None and rule.action == "relabel":  # same body, another Content-Type
                    out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-type"]
                    out_headers.append(("content-type", rule.content_type))
                kept = [(k, v) for k, v in out_headers if k.lower() not in _HOP | {"content-encoding"}]
                kept.append(("content-length", str(len(out_body))))
                await stream.send(conn.send(h11.Response(status_code=status, headers=kept)))
                if rule is not None and rule.action == "throttle":
                    self.started.add(f"{method} {rule.path_prefix}")
                    for i in range(0, len(out_body), rule.chunk):
                        await stream.send(conn.send(h11.Data(data=out_body[i : i + rule.chunk])))
                        await anyio.sleep(rule.seconds)
                elif out_body:
                    await stream.send(conn.send(h11.Data(data=out_body)))
                await stream.send(conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError, h11.ProtocolError):
            return  # the client went away (e.g. after its read timeout)
        finally:
            with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.aclose()


async def _read_request(stream: ByteStream, conn: h11.Connection) -> tuple[str, str, list, bytes] | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(65536)
            except anyio.EndOfStream:
                data = b""
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            headers = [(k.decode(), v.decode()) for k, v in head.headers]
            return head.method.decode(), head.target.decode(), headers, bytes(body)
        else:  # ConnectionClosed / PAUSED: the client is done with this connection
            return None


async def _reset(stream: ByteStream) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST (ECONNRESET), not an orderly FIN."""
    raw = stream.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ killable stdio


@dataclass
class ServerProcess:
    proc: Process

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def kill(self) -> int:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill. Returns the exit code."""
        self.proc.kill()
        with anyio.fail_after(10):
            return await self.proc.wait()


@asynccontextmanager
async def killable_stdio(tmp_path: Path, **env: str) -> AsyncIterator[tuple[ServerProcess, TransportStreams]]:
    """Spawn `python -m server` (what the `photo-mcp` script runs) on stdio and bridge its pipes
    to MCP session streams, newline-delimited JSON-RPC as the SDK's stdio transport does.

    Yields the process (so the test can SIGKILL it) and the streams for `mcp.Client`.
    """
    proc = await anyio.open_process(
        [sys.executable, "-m", "server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env(tmp_path, **env),
        cwd="/",
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        buffer = ""
        async with read_writer:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                async for chunk in TextReceiveStream(stdout):
                    *lines, buffer = (buffer + chunk).split("\n")
                    for line in lines:
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError as exc:
                            await read_writer.send(exc)
                            continue
                        await read_writer.send(SessionMessage(message))

    async def writer() -> None:
        async with write_reader:
            with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                async for item in write_reader:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await stdin.send(data.encode())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield ServerProcess(proc), (read_stream, write_stream)
        finally:
            with anyio.CancelScope(shield=True):
                with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stdin.aclose()  # a live server exits on stdin EOF
                with anyio.move_on_after(5):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            tg.cancel_scope.cancel()
    await proc.aclose()


def result_files(results_dir: Path) -> list[Path]:
    """Every file in the output dir, temp files included (sorted)."""
    return sorted(p for p in results_dir.iterdir() if p.is_file()) if results_dir.exists() else []


def temp_files(results_dir: Path) -> list[Path]:
    from tools.core.results import TEMP_PREFIX

    return [p for p in result_files(results_dir) if p.name.startswith(TEMP_PREFIX)]
