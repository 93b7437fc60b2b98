"""The stdio wire read and written by the event loop (server/stdio.py), seen from the client's
side of real pipes: whole messages however long, a bad line answered without stopping the
server, stray output kept off the wire, the client's own pipe left as it was, and the SDK's
transport where stdin is not a pipe."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from PIL import Image

from tests.support import INIT, server_env

ROOT = Path(__file__).resolve().parents[1]
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _noise_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((side, side), 80).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


class Wire:
    """A `photo-mcp` subprocess on two pipes, spoken to line by line."""

    def __init__(self, proc: anyio.abc.Process) -> None:
        self.proc = proc
        self._buf = b""

    async def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send(data)

    async def answer(self, request_id: int) -> dict:
        """The next message with `request_id`, skipping notifications and logs."""
        assert self.proc.stdout is not None
        while True:
            while b"\n" not in self._buf:
                self._buf += await self.proc.stdout.receive(1 << 20)
            line, self._buf = self._buf.split(b"\n", 1)
            message = json.loads(line)
            if message.get("id") == request_id:
                return message


async def _open(tmp_path: Path) -> tuple[anyio.abc.Process, Wire]:
    env = server_env(tmp_path)
    (tmp_path / "work").mkdir(exist_ok=True)
    proc = await anyio.open_process([sys.executable, "-m", "server"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    wire = Wire(proc)
    await wire.send(_line(INIT))
    assert "result" in await wire.answer(1)
    await wire.send(_line(INITIALIZED))
    return proc, wire


async def test_messages_longer_than_the_pipe_arrive_whole_both_ways(tmp_path: Path) -> None:
    png = _noise_png(700)  # ~1.4 MB: a 2 MB line in, far beyond a pipe's 64 KB
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    with anyio.fail_after(120):
        proc, wire = await _open(tmp_path)
        async with proc:
            call = {"name": "resize_image", "arguments": {"image": uri, "width": 600, "output_format": "png"}}
            await wire.send(_line({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}))
            result = (await wire.answer(2))["result"]
            assert not result["isError"], result["content"]
            image = result["structuredContent"]["images"][0]
            with Image.open(image["path"]) as out:
                assert out.size == (600, 600)
            await wire.send(_line({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
            listed = await wire.answer(3)  # the longest answer the server gives unasked
            assert len(json.dumps(listed)) > 1 << 16
            assert {"resize_image", "remove_background"} <= {t["name"] for t in listed["result"]["tools"]}
            assert proc.stdin is not None
            await proc.stdin.aclose()  # EOF: the server leaves cleanly
            assert await proc.wait() == 0


async def test_a_garbled_line_does_not_stop_the_server(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        proc, wire = await _open(tmp_path)
        async with proc:
            await wire.send(b'{"jsonrpc": "2.0", "id": 7, \xff\xfe not json\n')
            await wire.send(b'\x00\x01{"half a message"\n')
            await wire.send(_line({"jsonrpc": "2.0", "id": 8, "method": "ping"}))
            assert (await wire.answer(8))["result"] == {}
            # A message split across writes, and two in one write, are framed by newlines alone.
            ping = _line({"jsonrpc": "2.0", "id": 9, "method": "ping"})
            await wire.send(ping[:10])
            await wire.send(ping[10:] + _line({"jsonrpc": "2.0", "id": 10, "method": "ping"}))
            assert (await wire.answer(9))["result"] == {}
            assert (await wire.answer(10))["result"] == {}
            proc.terminate()


PROBE = """
import anyio, os, sys
from server.stdio import loop_pipes

async def main():
    with loop_pipes() as pipes:
        assert pipes is not None, "pipes expected"
        lines, writer = pipes
        print("stray print", flush=True)          # fd 1 is stderr while serving
        os.write(1, b"stray write\\n")
        os.system("echo stray child")
        await writer.write("ready\\n")
        async for line in lines:                   # wait for the parent's go
            await writer.write("echo " + line)
            break
    print("restored", flush=True)                  # fd 1 is the wire again

anyio.run(main)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the pipes are reopened through Linux's /proc/self/fd")
async def test_stray_output_misses_the_wire_and_the_clients_pipe_stays_blocking(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()  # the child's stdin; this process keeps a copy of its read end
    err = tmp_path / "stderr.txt"
    try:
        with err.open("wb") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-c", PROBE], stdin=read_end, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT
            )
        assert child.stdout is not None
        with anyio.fail_after(60):
            first = await anyio.to_thread.run_sync(child.stdout.readline)
            assert first == b"ready\n"
            # The child reads its stdin without blocking, yet the file this process shares is untouched.
            assert os.get_blocking(read_end)
            os.write(write_end, b"go\n")
            rest = await anyio.to_thread.run_sync(child.stdout.read)
            assert await anyio.to_thread.run_sync(child.wait) == 0
    finally:
        os.close(read_end)
        os.close(write_end)
    assert rest == b"echo go\nrestored\n"
    assert err.read_text().split("\n")[:3] == ["stray print", "stray write", "stray child"]


async def test_stdin_that_is_not_a_pipe_gets_the_sdks_transport(tmp_path: Path) -> None:
    """A socket for stdin (as a supervisor might pass): the SDK's own transport serves it."""
    (tmp_path / "work").mkdir()
    ours, theirs = socket.socketpair()
    try:
        proc = await anyio.open_process(
            [sys.executable, "-m", "server"], stdin=theirs.fileno(), stderr=subprocess.DEVNULL,
            env=server_env(tmp_path), cwd=ROOT,
        )  # fmt: skip
        theirs.close()
        async with proc:
            wire = Wire(proc)
            with anyio.fail_after(60):
                ours.sendall(_line(INIT))
                assert "result" in await wire.answer(1)
                ours.sendall(_line(INITIALIZED) + _line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
                listed = await wire.answer(2)
                assert "resize_image" in {t["name"] for t in listed["result"]["tools"]}
                ours.shutdown(socket.SHUT_WR)  # EOF: the server leaves cleanly
                assert await proc.wait() == 0
    finally:
        ours.close()
