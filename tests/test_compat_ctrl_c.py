"""`photo-mcp` started by hand in a terminal: one line on stderr says what it is, Ctrl-C stops it.

A real pseudo-terminal is the server's controlling terminal; typing Ctrl-C there (writing ^C to
the pty) makes the kernel send SIGINT to the foreground process group, as in a shell.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
from pathlib import Path

import anyio

from tests.support import server_env


def _controlling_terminal() -> None:  # runs in the child, after setsid (start_new_session)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's foreground job: SIGINT not ignored
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        try:
            seen += os.read(fd, 4096)
        except BlockingIOError:
            await anyio.sleep(0.02)
    return seen


async def _exit_code(proc: subprocess.Popen[bytes]) -> int:
    return await anyio.to_thread.run_sync(proc.wait, abandon_on_cancel=True)


async def test_ctrl_c_in_a_terminal_stops_the_stdio_server(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    # stdin and stderr on the terminal; stdout apart, to prove nothing is written to the wire.
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=server_env(tmp_path),
        cwd="/",
        start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(slave)
    try:
        with anyio.fail_after(60):
            shown = await _read_until(master, b"Ctrl-C stops it.\r\n")
            os.write(master, b"\x03")  # Ctrl-C
            code = await _exit_code(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert code == 130
    lines = shown.decode().splitlines()
    assert len(lines) == 1
    (line,) = lines
    assert line.startswith("photo-mcp: an MCP server")
    assert "MCP client" in line and "README" in line and "photo-mcp call" in line
    assert proc.stdout is not None and proc.stdout.read() == b""


async def test_sigint_stops_a_piped_stdio_server_without_a_banner(tmp_path: Path) -> None:
    """Started by a host (stdin a pipe): no banner in its log, and SIGINT still stops it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env(tmp_path),
        cwd="/",
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        with anyio.fail_after(60):
            assert proc.stdin and proc.stdout
            proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
            proc.stdin.flush()
            # An answer proves the server is serving (the pre-initialize ping is answered).
            answer = await anyio.to_thread.run_sync(proc.stdout.readline, abandon_on_cancel=True)
            assert b'"id":1' in answer
            os.killpg(proc.pid, signal.SIGINT)
            code = await _exit_code(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130
    assert proc.stderr is not None and b"an MCP server" not in proc.stderr.read()
