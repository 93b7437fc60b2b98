"""Signed download links with real HTTP: with PHOTO_MCP_PUBLIC_URL set, a result carries a link
(text and structured_content.images[].url) that downloads the exact bytes without the bearer
token; an expired, altered or unsigned link gets 403, and the MCP endpoint still wants the token.
A second server process sharing the data dir honours the same links (the key lives there)."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp import Client

from server import links
from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import http_process, serve_http
from tests.test_aluo_tools import aluo_settings
from tests.test_tasks import NEVER, TasksClient, until_task

TOKEN = "t0ken-for-the-links-test-0123456789"


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


async def test_a_signed_link_downloads_the_exact_bytes_and_nothing_else_gets_in(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(60, 40, "png"))
    settings = make_settings(tmp_path, transport="http", auth_token=TOKEN, public_url="https://placeholder.invalid")
    server = build_server(settings)
    with anyio.fail_after(60):
        async with serve_http(server, settings) as base, Client(server) as client, httpx2.AsyncClient() as http:
            settings.public_url = base  # loopback in the test; the real setting is the public HTTPS origin
            result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 30})
            (image,) = result.structured_content["images"]
            url = image["url"]
            assert url.startswith(f"{base}/files/{image['id']}?exp=") and url in result.content[0].text
            assert "link valid 1 h" in result.content[0].text

            ok = await http.get(url)  # no Authorization header: the signature is the credential
            assert ok.status_code == 200 and ok.content == Path(image["path"]).read_bytes()
            assert ok.headers["content-type"] == "image/png"

            sig = parse_qs(urlsplit(url).query)["sig"][0]
            tampered = sig[:-1] + ("0" if sig[-1] != "0" else "1")
            expired = links.signed_url(settings, image["id"], ttl=-60)
            later = str(int(parse_qs(urlsplit(url).query)["exp"][0]) + 3600)
            for bad in (
                _with(url, sig=tampered),  # altered signature
                _with(url, exp=later),  # a longer life than was signed
                url.replace(image["id"], "0" * len(image["id"])),  # another id under this signature
                url.split("?")[0],  # unsigned
                expired,  # correctly signed, but expired
            ):
                refused = await http.get(bad)
                assert refused.status_code == 403, bad
                assert refused.content != ok.content

            # Everything else still needs the bearer token.
            assert (await http.post(base + "/mcp", json={})).status_code == 401

        # A second process on the same data dir signs and checks with the same key.
        key = tmp_path / "data" / links.KEY_FILE
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        async with (
            http_process(tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=TOKEN, PHOTO_MCP_PUBLIC_URL="https://x.invalid") as (
                other,
                _pid,
            ),
            httpx2.AsyncClient() as http,
        ):
            again = await http.get(other + urlsplit(url).path + "?" + urlsplit(url).query)
            assert again.status_code == 200 and again.content == ok.content


async def test_without_a_public_url_results_carry_no_link(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(60, 40, "png"))
    result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 30})
    assert result.structured_content["images"][0]["url"] is None
    assert "download" not in result.content[0].text


async def test_a_task_result_carries_the_link_too(tmp_path: Path) -> None:

    fake = FakeAluo(polls_until_done=NEVER)
    async with serve(fake.app) as base:
        settings = aluo_settings(tmp_path, fake, base, public_url="https://photos.example.com", wait_seconds=1)
        ext = TasksClient()
        with anyio.fail_after(60):
            async with Client(build_server(settings), mode="2026-07-28", extensions=[ext]) as client:
                result = await until_task(client, ext, fake)
    (image,) = result.structured_content["images"]
    assert ext.handles and image["url"].startswith(f"https://photos.example.com/files/{image['id']}?exp=")
    assert links.verify(settings, image["id"], *(parse_qs(urlsplit(image["url"]).query)[k][0] for k in ("exp", "sig")))
