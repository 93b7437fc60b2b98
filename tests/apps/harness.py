"""A real host for the viewer: headless Chromium, the official AppBridge, the real server.

    Chromium (Debian's package) <- Playwright (driver only: no browser download)
      page: the AppBridge bundle (tests/apps/host.js, built with esbuild from .ci/apps/node_modules)
        iframe sandbox="allow-scripts" srcdoc=<the ui:// resource as photo-mcp serves it>
      the bridge's tools/call and resources/read -> this process -> an MCP client -> photo-mcp

What the view asks of the conversation (ui/message, ui/download-file, ui/update-model-context)
lands in `Host.log`. The browser tests skip when a part is missing locally, and fail instead
when PHOTO_MCP_REQUIRE_BROWSER=1 (set by .ci/run).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".ci" / "apps" / "node_modules"
ESBUILD = NODE_MODULES / ".bin" / "esbuild"
VIEWER_URI = "ui://photo-mcp/viewer.html"
# Quiet, offline Chromium: no sandbox (root in CI), no background fetches of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def apps_client_extension() -> Any:
    """What a host that renders MCP Apps advertises."""
    return advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def chromium_path() -> str | None:
    return os.environ.get("PHOTO_MCP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def missing_parts() -> list[str]:
    missing = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[browser]')")
    if chromium_path() is None:
        missing.append("chromium (apt-get install chromium)")
    if not ESBUILD.exists() or not (NODE_MODULES / "@modelcontextprotocol" / "ext-apps").exists():
        missing.append("the npm packages in .ci/apps (npm ci --prefix .ci/apps)")
    return missing


def require_browser() -> None:
    """Skip (locally) or fail (CI) when a part of the browser setup is missing."""
    missing = missing_parts()
    if not missing:
        return
    message = "browser tests need " + ", ".join(missing)
    if os.environ.get("PHOTO_MCP_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def build_host_bundle(out_dir: Path) -> str:
    """tests/apps/host.js and the AppBridge it imports, bundled into one script by esbuild."""
    out = out_dir / "host.bundle.js"
    subprocess.run(
        [str(ESBUILD), str(Path(__file__).parent / "host.js"), "--bundle", "--format=iife", f"--outfile={out}"],
        check=True,
        capture_output=True,
        cwd=ROOT / ".ci" / "apps",
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        timeout=120,
    )
    return out.read_text()


def dump(model: Any) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True, exclude_none=True))


@dataclass
class Host:
    page: Any
    client: Client
    log: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def _call_tool(self, params: str) -> str:
        p = json.loads(params)
        self.calls.append(p)
        return dump(await self.client.call_tool(p["name"], p.get("arguments") or {}))

    async def _read_resource(self, params: str) -> str:
        return dump(await self.client.read_resource(json.loads(params)["uri"]))

    async def _log(self, entry: str) -> None:
        self.log.append(json.loads(entry))

    async def wait_for(
        self, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda e: True, *, since: int = 0
    ) -> dict[str, Any]:
        """The first entry of `kind` logged from index `since` on that matches (bounded by the caller's fail_after)."""
        while True:
            for entry in self.log[since:]:
                if entry["kind"] == kind and pred(entry):
                    return entry
            await anyio.sleep(0.02)

    async def open(self, tool: str, arguments: dict[str, Any], result: Any) -> Any:
        """Show `result` of `tool` (None: not yet) in the viewer the tool declares; return the view's frame."""
        tools = {t.name: t for t in (await self.client.list_tools()).tools}
        uri = tools[tool].meta["ui"]["resourceUri"]
        html = (await self.client.read_resource(uri)).contents[0].text
        options = {
            "html": html,
            "tool": json.loads(dump(tools[tool])),
            "toolInput": arguments,
            "toolResult": json.loads(dump(result)) if result is not None else None,
        }
        since = len(self.log)
        await self.page.evaluate("(o) => window.photoHost.open(o)", options)
        await self.wait_for("initialized", since=since)  # this view's handshake
        frame = await (await self.page.wait_for_selector("#view")).content_frame()
        await frame.wait_for_selector("html[data-ready='1']", state="attached")
        return frame

    async def send_result(self, result: Any) -> None:
        """The tool call ended: hand its result to the view (hosts show the view as the call starts)."""
        await self.page.evaluate("(r) => window.photoBridge.sendToolResult(r)", json.loads(dump(result)))

    async def pixels(self, element: Any) -> Any:
        """What the element looks like on screen, as a Pillow image (CSS pixels)."""
        from PIL import Image

        box = await element.bounding_box()
        png = await self.page.screenshot(clip=box)
        return Image.open(io.BytesIO(png)).convert("RGB")


@asynccontextmanager
async def browser_host(client: Client, bundle: str) -> AsyncIterator[Host]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 1400}, device_scale_factor=1)
            host = Host(page, client)
            await page.expose_function("hostCallTool", host._call_tool)
            await page.expose_function("hostReadResource", host._read_resource)
            await page.expose_function("hostLog", host._log)
            await page.set_content("<!doctype html><html><body style='margin:0;background:#fff'></body></html>")
            await page.add_script_tag(content=bundle)
            yield host
        finally:
            await browser.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
