"""Provider-supplied result URLs go through the SSRF guard, https-only, on the provider's hosts.

A provider's answer names the URL its result is downloaded from; a hostile or compromised
provider (or a man in the middle of a plain-http base URL) must not be able to make the server
fetch from its own machine or private network. Runs this file as a script inside a private
network namespace (`unshare -n`, as tests/security/test_ssrf_rebinding.py does): there a fake
Removedo and a fake Aluo serve on a *public* address (PUBLIC on the namespace's `lo`), an
"internal" server on 127.0.0.1 records every request it gets, and a second public address
(OTHER) plays a host that is not Aluo's. The photo-mcp server runs in the script's process
(a real MCP client session) with PHOTO_MCP_ALLOW_PRIVATE_URLS off.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.security import run_in_private_netns

PUBLIC, OTHER = "93.184.216.34", "93.184.216.35"
INTERNAL_PORT = 8080
SAFELY = "could not be fetched safely"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_in_private_netns("tests.security.test_provider_urls", timeout=300)


def test_a_result_url_on_the_providers_public_host_is_downloaded(report: dict[str, Any]) -> None:
    # The control: the set-up works, so the refusals below are the guard's doing.
    assert report["removedo"]["control"].get("ok") is True, report["removedo"]["control"]
    # Another public host (Removedo documents none): fetched through the guarded connection.
    assert report["removedo"]["other-public-host"].get("ok") is True, report["removedo"]["other-public-host"]
    assert report["aluo"]["control"].get("ok") is True, report["aluo"]["control"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("loopback-ip", "does not resolve to a public address"),
        ("loopback-name", "does not resolve to a public address"),
        ("loopback-https", "does not resolve to a public address"),
        ("redirect-to-loopback", "does not resolve to a public address"),
        ("redirect-to-file", "is not https"),
        ("plain-http", "is not https"),
    ],
)
def test_removedo_result_urls_that_are_not_safe_fail_the_job(report: dict[str, Any], case: str, reason: str) -> None:
    outcome = report["removedo"][case]
    assert outcome["is_error"], outcome
    assert SAFELY in outcome["text"] and reason in outcome["text"], outcome
    assert "may have been charged" in outcome["text"], outcome  # the credit went at submit
    assert outcome["fake_charges"] == 1  # one job, charged once, never re-submitted


@pytest.mark.parametrize(("case", "reason"), [("other-host", "is not one of aluo's result hosts")])
def test_aluo_result_urls_off_its_hosts_fail_the_job(report: dict[str, Any], case: str, reason: str) -> None:
    outcome = report["aluo"][case]
    assert outcome["is_error"], outcome
    assert SAFELY in outcome["text"] and reason in outcome["text"], outcome
    assert "may have been charged" in outcome["text"], outcome


def test_the_internal_server_and_the_other_host_see_no_request(report: dict[str, Any]) -> None:
    assert report["internal_requests"] == []
    assert "/aluo.png" not in report["other_requests"]  # refused before any connection
    assert "/removedo.png" in report["other_requests"]


# ------------------------------------------------------------------ the script, inside `unshare -n`


async def _main() -> None:
    import anyio
    import uvicorn
    from mcp import Client
    from starlette.responses import Response

    from server.app import build_server
    from tests.conftest import make_settings
    from tests.fakes.aluo import FakeAluo
    from tests.fakes.images import image_bytes
    from tests.fakes.removedo import FakeRemovedo
    from tests.security.netns_probe import _http_server, _response

    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo"]):
        subprocess.run(cmd, check=True)
    subprocess.run(["ip", "addr", "add", f"{OTHER}/32", "dev", "lo"], check=True)
    internal_url = f"http://127.0.0.1:{INTERNAL_PORT}/secret.png"
    hostile: dict[str, str | None] = {"url": None}

    class HostileRemovedo(FakeRemovedo):
        async def _finish(self, job: Any) -> None:
            await super()._finish(job)
            if hostile["url"] is not None and job.status == "completed":
                job.output_url = hostile["url"].replace("{self}", job.base_url.rstrip("/"))

    class HostileAluo(FakeAluo):
        def _store(self, request: Any, name: str, data: bytes, content_type: str) -> str:
            url = super()._store(request, name, data, content_type)
            return hostile["url"] or url

    def with_redirects(app: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/redirect/"):
                target = {"loopback": internal_url, "file": "file:///etc/passwd"}[scope["path"].rsplit("/", 1)[1]]
                await Response(status_code=302, headers={"location": target})(scope, receive, send)
                return
            await app(scope, receive, send)

        return wrapped

    @asynccontextmanager
    async def serve_on(app: Any, host: str) -> AsyncIterator[str]:
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        sock.listen(64)
        sock.setblocking(False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag
                    await anyio.sleep(0.01)
            try:
                yield f"http://{host}:{sock.getsockname()[1]}"
            finally:
                server.should_exit = True

    internal_seen: list[str] = []
    other_seen: list[str] = []
    listeners = [
        await _http_server("127.0.0.1", INTERNAL_PORT, internal_seen, lambda p: _response("200 OK", b"SECRET")),
        await _http_server(OTHER, INTERNAL_PORT, other_seen, lambda p: _response("200 OK", image_bytes(8, 8))),
    ]
    report: dict[str, Any] = {"removedo": {}, "aluo": {}}
    tmp = Path(tempfile.mkdtemp())
    (tmp / "work").mkdir()
    (tmp / "work" / "a.png").write_bytes(image_bytes(40, 40))

    async def run(name: str, provider: str, **settings: Any) -> dict[str, Any]:
        values = {"allow_private_urls": False, "retry_base_delay": 0.01, "wait_seconds": 30, **settings}
        cfg = make_settings(tmp / name, allowed_dirs=[tmp / "work"], **values)
        async with Client(build_server(cfg)) as client:
            with anyio.fail_after(60):
                result = await client.call_tool(
                    "remove_background", {"image": str(tmp / "work" / "a.png"), "provider": provider}
                )
        text = " ".join(b.text for b in result.content if b.type == "text")
        if not result.is_error:
            return {"ok": True}
        return {"is_error": True, "text": text}

    async with anyio.create_task_group() as tg:
        for listener, handle in listeners:
            tg.start_soon(listener.serve, handle)
        fake = HostileRemovedo(polls_until_done=0)
        async with fake, serve_on(with_redirects(fake.app), PUBLIC) as base:
            rd = {"REMOVEDO_API_KEY": fake.api_key, "REMOVEDO_BASE_URL": base, "removedo_poll_interval": 0.02}
            cases = {
                "control": (None, True),
                "other-public-host": (f"http://{OTHER}:{INTERNAL_PORT}/removedo.png", True),
                "loopback-ip": (internal_url, True),
                "loopback-name": (f"http://localhost:{INTERNAL_PORT}/secret.png", True),
                "loopback-https": (f"https://127.0.0.1:{INTERNAL_PORT}/secret.png", True),
                "redirect-to-loopback": ("{self}/redirect/loopback", True),
                "redirect-to-file": ("{self}/redirect/file", True),
                "plain-http": (None, False),  # the fake's own http URL, with http not allowed
            }
            for case, (url, http_ok) in cases.items():
                hostile["url"] = url
                before = len(fake.charges)
                outcome = await run(f"rd-{case}", "removedo", provider_download_http=http_ok, **rd)
                outcome["fake_charges"] = len(fake.charges) - before
                report["removedo"][case] = outcome
        aluo = HostileAluo()
        async with serve_on(aluo.app, PUBLIC) as base:
            al = {
                "aluo_api_key": aluo.api_key,
                "aluo_base_url": FakeAluo.api_base(base),
                "provider_download_http": True,
            }
            for case, url in {"control": None, "other-host": f"http://{OTHER}:{INTERNAL_PORT}/aluo.png"}.items():
                hostile["url"] = url
                report["aluo"][case] = await run(f"al-{case}", "aluo", **al)
        tg.cancel_scope.cancel()
    report["internal_requests"] = internal_seen
    report["other_requests"] = other_seen
    print(json.dumps(report))


if __name__ == "__main__":
    import anyio

    anyio.run(_main)
