"""MCP Apps on the wire: the viewer resource, what clients with and without Apps get, uploads,
upload links over HTTP, prompts and their completions, icons. (The view itself: test_viewer_browser.)"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference
from PIL import Image

from server.app import PhotoServer
from tests.apps.harness import VIEWER_URI, apps_client_extension
from tests.support import http_subprocess
from tools.uploads import MAX_UPLOAD_BYTES, UploadTickets

APP_ONLY = {"upload_image", "view_result", "job_status"}


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def _shape(result) -> dict:
    """A tool result with what differs between two runs (ids, paths, times) taken out."""
    out = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    text = re.sub(r"[0-9a-f]{12}|\d+\.\d s|\d{8}-\d{6}", "·", str(out["content"][0]["text"]))
    blocks = [{k: v for k, v in b.items() if k not in ("uri", "name", "data", "text")} for b in out["content"]]
    structured = {k: v for k, v in out["structuredContent"].items() if k not in ("job_id", "elapsed_s", "images")}
    images = [
        {k: v for k, v in i.items() if k not in ("id", "uri", "path")} for i in out["structuredContent"]["images"]
    ]
    return {"text": text, "blocks": blocks, "structured": structured, "images": images, "meta": out.get("_meta")}


async def test_the_viewer_is_one_self_contained_document_with_a_strict_csp(server: PhotoServer) -> None:
    async with Client(server, extensions=[apps_client_extension()]) as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        (content,) = (await client.read_resource(VIEWER_URI)).contents
    assert content.mime_type == "text/html;profile=mcp-app" and listed[VIEWER_URI].mime_type == content.mime_type
    html = content.text
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)[1]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "unsafe" not in csp
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp  # the one inline script, allowed by its hash only
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html) and "@import" not in html
    assert "fetch(" not in script and "XMLHttpRequest" not in script


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])  # both protocol eras
async def test_clients_without_apps_get_exactly_the_same_results(server: PhotoServer, workdir: Path, mode: str) -> None:
    (workdir / "a.png").write_bytes(png())
    args = {"image": str(workdir / "a.png"), "width": 20}
    apps_client = Client(server, mode=mode, extensions=[apps_client_extension()])
    async with Client(server, mode=mode) as plain, apps_client as apps:
        plain_tools = {t.name: t for t in (await plain.list_tools()).tools}
        apps_tools = {t.name: t for t in (await apps.list_tools()).tools}
        without, with_apps = await plain.call_tool("resize_image", args), await apps.call_tool("resize_image", args)
    # The app-only tools are not offered to a client that cannot show the view...
    assert APP_ONLY.isdisjoint(plain_tools) and set(apps_tools) >= APP_ONLY
    assert set(apps_tools) - APP_ONLY == set(plain_tools)
    for name in APP_ONLY:
        assert apps_tools[name].meta["ui"]["visibility"] == ["app"]
    # ...every image tool names the viewer for both (hosts without Apps ignore _meta)...
    assert plain_tools["resize_image"].meta == {"ui": {"resourceUri": VIEWER_URI}}
    assert apps_tools["resize_image"].meta == plain_tools["resize_image"].meta
    # ...and the result is today's: text, resource link, small preview, structured content; no extras.
    assert [b.type for b in without.content] == ["text", "resource_link", "image"]
    assert _shape(without) == _shape(with_apps)
    assert set(without.structured_content) == set(with_apps.structured_content)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_pick_image_opens_the_picker_only_for_apps_clients(server: PhotoServer, mode: str) -> None:
    apps_client = Client(server, mode=mode, extensions=[apps_client_extension()])
    async with Client(server, mode=mode) as plain, apps_client as apps:
        opened = await apps.call_tool("pick_image", {"purpose": "the product"})
        fallback = await plain.call_tool("pick_image", {})
    assert opened.structured_content == {"mode": "picker", "purpose": "the product"}
    assert "photo://uploads/" in opened.content[0].text
    assert fallback.structured_content["mode"] == "none" and "path" in fallback.content[0].text


async def test_app_upload_is_sniffed_capped_stored_owner_only_and_accepted_by_tools(server: PhotoServer) -> None:
    photo = png(64, 48)
    async with Client(server, extensions=[apps_client_extension()]) as client:
        up = await client.call_tool("upload_image", {"data": base64.b64encode(photo).decode(), "name": "../me.png"})
        not_image = await client.call_tool("upload_image", {"data": base64.b64encode(b"<svg></svg>").decode()})
        empty = await client.call_tool("upload_image", {"data": ""})
        huge = base64.b64encode(photo + b"\0" * MAX_UPLOAD_BYTES).decode()
        too_big = await client.call_tool("upload_image", {"data": huge, "name": "huge.png"})
        uri = up.structured_content["uri"]
        resized = await client.call_tool("resize_image", {"image": uri, "max_side": 32})
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource(uri)
        as_result = await client.call_tool("resize_image", {"image": uri.replace("uploads", "results"), "width": 9})
        unknown = await client.call_tool("resize_image", {"image": "photo://uploads/000000000000", "width": 9})
        result_as_upload = await client.call_tool(
            "resize_image", {"image": resized.structured_content["images"][0]["uri"].replace("results", "uploads")}
        )
    assert not up.is_error and re.fullmatch(r"photo://uploads/[0-9a-f]{12}", uri)
    assert up.structured_content["name"] == "me.png"  # no directories from the device
    assert (up.structured_content["width"], up.structured_content["height"]) == (64, 48)
    assert not_image.is_error and empty.is_error
    assert too_big.is_error and "15 MB" in too_big.content[0].text
    assert not resized.is_error and resized.structured_content["images"][0]["width"] == 32
    assert uri in listed and base64.b64decode(read.contents[0].blob) == photo
    assert not as_result.is_error  # the same stored file, named as a result, is still readable
    assert unknown.is_error and "upload" in unknown.content[0].text
    assert result_as_upload.is_error  # a result is not an upload
    path = next(p for p in (server.photo_settings.results_dir).iterdir() if "-upload-" in p.name)
    assert path.stat().st_mode & 0o077 == 0 and path.read_bytes() == photo


async def test_uploads_in_formats_browsers_cannot_show_are_stored_as_png_or_jpeg(server: PhotoServer) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 10)).save(buf, "TIFF")
    async with Client(server, extensions=[apps_client_extension()]) as client:
        up = await client.call_tool("upload_image", {"data": base64.b64encode(buf.getvalue()).decode()})
    assert not up.is_error and up.structured_content["mime_type"] in ("image/png", "image/jpeg")


def test_upload_tickets_are_one_time_and_expire() -> None:
    tickets = UploadTickets(ttl_s=60)
    secret = tickets.issue("x")
    assert tickets.valid(secret) is not None and tickets.valid(secret + "x") is None
    assert tickets.spend(secret) and tickets.spend(secret) is None and tickets.valid(secret) is None
    expired = UploadTickets(ttl_s=0)
    assert expired.valid(expired.issue()) is None


async def test_upload_link_over_http_is_one_time_capped_and_accepted_by_tools(tmp_path: Path) -> None:
    with anyio.fail_after(90):
        async with (
            http_subprocess(tmp_path, "http") as base,
            Client(base + "/mcp") as client,  # a client without Apps
            httpx2.AsyncClient(timeout=30) as browser,  # the user's browser
        ):
            picked = await client.call_tool("pick_image", {"purpose": "your portrait"})
            url = picked.structured_content["upload_url"]
            assert picked.structured_content["mode"] == "upload_url" and url in picked.content[0].text
            assert url.startswith(base + "/uploads/")
            form = await browser.get(url)
            assert form.status_code == 200 and "<form" in form.text and "your portrait" in form.text
            assert "default-src 'none'" in form.headers["content-security-policy"]
            wrong = await browser.post(url, content=b"not an image", headers={"Content-Type": "image/png"})
            assert wrong.status_code == 400  # the link survives a wrong file
            huge = await browser.post(url, content=b"\0" * (MAX_UPLOAD_BYTES + 100 * 1024))
            assert huge.status_code == 413
            done = await browser.post(url, content=png(50, 40), headers={"Content-Type": "image/png"})
            assert done.status_code == 201, done.text
            again = await browser.post(url, content=png(), headers={"Content-Type": "image/png"})
            assert again.status_code == 404 and (await browser.get(url)).status_code == 404
            assert (await browser.post(base + "/uploads/" + "A" * 32, content=png())).status_code == 404

            second = (await client.call_tool("pick_image", {})).structured_content["upload_url"]
            files = {"file": ("holiday.png", png(20, 20), "image/png")}
            by_form = await browser.post(second, files=files, headers={"Accept": "text/html"})
            assert by_form.status_code == 201 and "photo://uploads/" in by_form.text

            uri = done.json()["uri"]
            resized = await client.call_tool("resize_image", {"image": uri, "width": 25})
            listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert not resized.is_error, resized.content
    assert resized.structured_content["images"][0]["height"] == 20
    assert uri in listed


async def test_upload_links_need_no_mcp_token_but_the_mcp_endpoint_does(tmp_path: Path) -> None:
    token = "test-token-0123456789abcdef"
    with anyio.fail_after(90):
        async with (
            http_subprocess(tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=token) as base,
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as authed,
            streamable_http_client(base + "/mcp", http_client=authed) as (read, write, *_),
            ClientSession(read, write) as session,
            httpx2.AsyncClient(timeout=30) as browser,
        ):
            await session.initialize()
            url = (await session.call_tool("pick_image", {})).structured_content["upload_url"]
            form = await browser.get(url)
            stored = await browser.post(url, content=png(), headers={"Content-Type": "image/png"})
            denied = await browser.post(base + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            # The upload is the token holder's, who asked for the link: their tools accept it.
            resized = await session.call_tool("resize_image", {"image": stored.json()["uri"], "width": 10})
    assert form.status_code == 200 and stored.status_code == 201
    assert stored.json()["uri"].startswith("photo://uploads/")
    assert denied.status_code == 401
    assert not resized.is_error, resized.content


async def test_prompts_are_recipes_with_completed_image_and_style_arguments(server: PhotoServer, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(png())
    async with Client(server) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        made = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 10})
        uri = made.structured_content["images"][0]["uri"]
        shot = await client.get_prompt("marketplace_product_shot", {"image": uri})
        ask = await client.get_prompt("portrait_blurred_background", {})
        ref = PromptReference(type="ref/prompt", name="marketplace_product_shot")
        images = await client.complete(ref, {"name": "image", "value": "photo://"})
        hair = PromptReference(type="ref/prompt", name="try_hairstyles")
        features = await client.complete(hair, {"name": "feature", "value": "ha"})
        ratios = await client.complete(PromptReference(type="ref/prompt", name="product_photo_set"), {
            "name": "aspect_ratio", "value": "4"
        })  # fmt: skip
    assert set(prompts) == {
        "marketplace_product_shot", "portrait_blurred_background", "restore_old_photo", "try_hairstyles",
        "product_photo_set",
    }  # fmt: skip
    assert all(p.title and p.description and p.icons for p in prompts.values())
    text = shot.messages[0].content.text
    assert uri in text and "2000" in text and "1000000" in text and "remove_background" in text
    assert "pick_image" in ask.messages[0].content.text  # no image given: ask the user for theirs
    assert uri in images.completion.values
    assert set(features.completion.values) == {"hairstyle", "hair_extension", "hair_volume"}
    assert ratios.completion.values == ["4:3", "4:5"]


async def test_server_and_tools_have_icons_a_website_and_menu_titles(server: PhotoServer) -> None:
    async with Client(server) as client:
        info = client.server_info
        tools = (await client.list_tools()).tools
    for tool in tools:
        assert tool.title and tool.title[0].isupper() and len(tool.title) <= 32, tool.name
        assert tool.icons and tool.icons[0].src.startswith("data:image/svg+xml;base64,"), tool.name
        svg = base64.b64decode(tool.icons[0].src.split(",", 1)[1]).decode()
        assert svg.startswith("<svg") and "script" not in svg and "href" not in svg and len(svg) < 1024
    assert info is not None and info.website_url and info.icons and info.title == "photo-mcp"
