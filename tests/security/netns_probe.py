"""Run inside a private network namespace (`unshare -n`): hostile URLs against `SafeFetcher`.

Started by tests/security/test_ssrf_rebinding.py as `unshare -n python -m tests.security.netns_probe`.
The namespace has only `lo`; this script brings it up and gives it one *public* address
(PUBLIC, which nothing outside the namespace can reach), so the real address policy applies:
PUBLIC counts as the internet, 127.0.0.1 as the server's own machine. An "internal" HTTP
server on 127.0.0.1 records every request it gets; the fetcher's resolver is injected and
changes its answer from PUBLIC to 127.0.0.1 after a given number of lookups (DNS rebinding).
Prints one JSON report on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import SocketStream

from tools.core.errors import InvalidInput
from tools.core.fetch import SafeFetcher

PUBLIC = "93.184.216.34"
PORT = 8080
PNG = b"\x89PNG\r\n\x1a\n" + b"public image" * 10
SECRET = b"INTERNAL-SECRET " * 10


def _network_up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo"], check=True)


def _response(status: str, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\ncontent-type: image/png\r\n"
    head += f"{extra}connection: close\r\n\r\n"
    return head.encode() + body


async def _http_server(host: str, port: int, seen: list[str], answer: Callable[[str], bytes | None]) -> Any:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive()
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode()
            seen.append(path)
            reply = answer(path)
            if reply is None:  # hang: accept, never answer
                await anyio.sleep_forever()
            await stream.send(reply)

    return listener, handle


def _public_answer(path: str) -> bytes | None:
    if path.startswith("/redirect?to="):
        return _response("302 Found", b"", f"location: {path.split('=', 1)[1]}\r\n")
    if path == "/404":
        return _response("404 Not Found", b"nope")
    if path == "/500":
        return _response("500 Internal Server Error", b"oops")
    if path == "/hang":
        return None
    return _response("200 OK", PNG)


def _rebinding(switch_after: int, names: set[str]) -> tuple[Callable[[str, int], Awaitable[list[str]]], list[str]]:
    log: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        if host == PUBLIC or host == "127.0.0.1":
            return [host]
        if host not in names:
            raise OSError("no such host")
        log.append(host)
        return [PUBLIC] if len(log) <= switch_after else ["127.0.0.1"]

    return resolve, log


async def _outcome(fetcher: SafeFetcher, url: str) -> dict[str, Any]:
    try:
        data, _ = await fetcher.fetch(url)
    except InvalidInput as exc:
        return {"error": str(exc)}
    return {"data": "public" if data == PNG else "internal" if data == SECRET else "other"}


async def main() -> None:
    _network_up()
    internal_seen: list[str] = []
    public_seen: list[str] = []
    servers = [
        await _http_server("127.0.0.1", PORT, internal_seen, lambda p: _response("200 OK", SECRET)),
        await _http_server(PUBLIC, PORT, public_seen, _public_answer),
        # An internal port that accepts and hangs, one that answers garbage: all must look alike.
        await _http_server("127.0.0.1", PORT + 2, internal_seen, lambda p: None),
        await _http_server(PUBLIC, PORT + 3, public_seen, lambda p: b"garbage\r\n\r\n"),
    ]
    report: dict[str, Any] = {"rebinding": [], "redirect_rebinding": [], "uniform": {}, "private": {}}
    async with anyio.create_task_group() as tg:
        for listener, handle in servers:
            tg.start_soon(listener.serve, handle)
        for switch_after in range(5):
            resolve, log = _rebinding(switch_after, {"rebind.test"})
            fetcher = SafeFetcher(allow_private=False, max_bytes=1 << 20, timeout=5, resolve=resolve)
            try:
                # The way a tool reads a URL: the resolver's pre-flight check, then the download.
                await fetcher.check(f"http://rebind.test:{PORT}/img.png")
                outcome = await _outcome(fetcher, f"http://rebind.test:{PORT}/img.png")
            except InvalidInput as exc:
                outcome = {"error": str(exc)}
            finally:
                await fetcher.aclose()
            report["rebinding"].append({"switch_after": switch_after, "lookups": len(log), **outcome})
            resolve, log = _rebinding(switch_after, {"rebind.test"})
            fetcher = SafeFetcher(allow_private=False, max_bytes=1 << 20, timeout=5, resolve=resolve)
            hop = f"http://{PUBLIC}:{PORT}/redirect?to=http://rebind.test:{PORT}/img.png"
            outcome = await _outcome(fetcher, hop)
            await fetcher.aclose()
            report["redirect_rebinding"].append({"switch_after": switch_after, **outcome})
        # No port-scan oracle: every failure reads the same, whatever the port did.
        resolve, _ = _rebinding(10**6, {"open.test"})
        fetcher = SafeFetcher(allow_private=False, max_bytes=1 << 20, timeout=1.5, resolve=resolve)
        for name, url in {
            "404": f"http://open.test:{PORT}/404",
            "500": f"http://open.test:{PORT}/500",
            "hang": f"http://open.test:{PORT}/hang",
            "closed": f"http://open.test:{PORT + 1}/a.png",
            "garbage": f"http://open.test:{PORT + 3}/a.png",
        }.items():
            report["uniform"][name] = await _outcome(fetcher, url)
        for name, url in {
            "open": f"http://127.0.0.1:{PORT}/a.png",
            "hanging": f"http://127.0.0.1:{PORT + 2}/a.png",
            "closed": f"http://127.0.0.1:{PORT + 1}/a.png",
            "redirect-to-open": f"http://{PUBLIC}:{PORT}/redirect?to=http://127.0.0.1:{PORT}/a.png",
            "redirect-to-closed": f"http://{PUBLIC}:{PORT}/redirect?to=http://127.0.0.1:{PORT + 1}/a.png",
        }.items():
            report["private"][name] = await _outcome(fetcher, url)
        await fetcher.aclose()
        tg.cancel_scope.cancel()
    report["internal_requests"] = internal_seen
    report["public_requests"] = len(public_seen)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    anyio.run(main)
