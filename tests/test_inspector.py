"""MCP Inspector CLI (a client we did not write) against photo-mcp over stdio and Streamable HTTP.

CI installs the Inspector (`.ci/run`) and sets PHOTO_MCP_REQUIRE_INSPECTOR=1, so there these
tests cannot be skipped; locally they run when `mcp-inspector` is found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.fakes.images import image_bytes
from tests.support import http_subprocess, server_env

INSPECTOR = os.environ.get("PHOTO_MCP_INSPECTOR") or shutil.which("mcp-inspector")
if not INSPECTOR and os.environ.get("PHOTO_MCP_REQUIRE_INSPECTOR"):
    raise RuntimeError("PHOTO_MCP_REQUIRE_INSPECTOR is set but the MCP Inspector is not installed")
pytestmark = pytest.mark.skipif(not INSPECTOR, reason="MCP Inspector not installed (CI installs it)")
TOKEN = "inspector-token-0123456789abcdef"


def _inspect(target: list[str], *args: str, env: dict[str, str] | None = None) -> dict:
    assert INSPECTOR
    env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    proc = subprocess.run(
        [INSPECTOR, "--cli", *env_args, *target, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MCP_CATALOG_PATH": str(Path(env["PHOTO_MCP_DATA_DIR"]) / "catalog.json")} if env else None,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def _check_session(target: list[str], tmp_path: Path, env: dict[str, str] | None) -> None:
    image = tmp_path / "work" / "in.png"
    tools = _inspect(target, "--method", "tools/list", env=env)["tools"]
    assert {"resize_image", "remove_background", "get_job"} <= {t["name"] for t in tools}
    assert all("outputSchema" in t for t in tools)
    templates = _inspect(target, "--method", "resources/templates/list", env=env)["resourceTemplates"]
    assert {t["uriTemplate"] for t in templates} == {
        "photo://results/{result_id}",
        "photo://uploads/{upload_id}",
        "photo://styles/{feature}",
        "photo://styles/{feature}/{style_group_id}",
        "photo://styles/{feature}/{style_group_id}/{style_id}",
    }
    called = _inspect(
        target, "--method", "tools/call", "--tool-name", "resize_image",
        "--tool-arg", f"image={image}", "--tool-arg", "width=20", env=env,
    )  # fmt: skip
    assert called.get("isError") is not True, called
    result = called["structuredContent"]["images"][0]
    assert (result["width"], result["height"]) == (20, 15)
    read = _inspect(target, "--method", "resources/read", "--uri", result["uri"], env=env)
    (contents,) = read["contents"]
    assert contents["mimeType"] == "image/png" and contents["uri"] == result["uri"]


def _prepare(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir(exist_ok=True)
    (tmp_path / "work" / "in.png").write_bytes(image_bytes(40, 30, "png"))


def test_inspector_over_stdio(tmp_path: Path) -> None:
    _prepare(tmp_path)
    env = {k: v for k, v in server_env(tmp_path).items() if k.startswith("PHOTO_MCP_")}
    _check_session([sys.executable, "-m", "server"], tmp_path, env)


async def test_inspector_over_streamable_http_with_a_bearer_token(tmp_path: Path) -> None:
    _prepare(tmp_path)
    async with http_subprocess(tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=TOKEN) as base:
        target = [base + "/mcp", "--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
        await anyio.to_thread.run_sync(
            lambda: _check_session(target, tmp_path, {"PHOTO_MCP_DATA_DIR": str(tmp_path / "data")})
        )
        # Without the token the Inspector cannot even connect.
        assert INSPECTOR
        denied = await anyio.run_process(
            [INSPECTOR, "--cli", base + "/mcp", "--transport", "http", "--method", "tools/list"],
            check=False,
            env={**os.environ, "MCP_CATALOG_PATH": str(tmp_path / "catalog.json")},
        )
        assert denied.returncode != 0
