"""Released clients on older protocol versions against photo-mcp, over stdio, Streamable HTTP and SSE.

TypeScript SDK 1.10.x (negotiates 2024-11-05), 1.12.x (2025-03-26) and 1.17.x (2025-06-18), and
Python `mcp` 1.9.x (2025-03-26) connect, list tools, call resize_image on a Pillow-made PNG and read the result
resource — through their own APIs, which validate every answer with their own schemas. Their
scripts (tests/clients/) also report every wire field their schema does not define.

CI installs the clients (`.ci/run`: npm into .ci/clients, a venv at .ci/clients/py-mcp19) and sets
PHOTO_MCP_REQUIRE_OLD_CLIENTS=1, so there these tests cannot be skipped; locally they run when
the clients are installed. PHOTO_MCP_OLD_CLIENTS_DIR points elsewhere than .ci/clients.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.clients.matrix import END, OLD_CLIENTS, OTHER_CLIENTS, START, Row, table
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import http_subprocess, server_env

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "clients"
CLIENTS_DIR = Path(os.environ.get("PHOTO_MCP_OLD_CLIENTS_DIR") or ROOT / ".ci" / "clients")
REQUIRED = bool(os.environ.get("PHOTO_MCP_REQUIRE_OLD_CLIENTS"))
NODE = shutil.which("node")

# Fields a client's own models lack although the revision it negotiates defines them (the client
# passes them through): mcp 1.9's ServerCapabilities predates the 2025-03-26 `completions`
# capability; TS SDK 1.17's ResourceSchema has no `size`, which 2025-06-18 resource links carry.
CLIENT_SCHEMA_LAG = {
    ("1.9.4", "initialize.capabilities.completions"),
    ("1.17.5", "tools/call.content[resource_link].size"),
}


def _ts_package(row: Row) -> Path:
    return CLIENTS_DIR / "node_modules" / f"sdk-{row.version.rsplit('.', 1)[0]}"


def _command(row: Row) -> list[str] | None:
    """How to run `row`'s client script, or None when that client is not installed."""
    if row.client.startswith("TypeScript"):
        package = _ts_package(row)
        if not NODE or not (package / "package.json").exists():
            return None
        return [NODE, str(SCRIPTS / "ts_client.mjs"), str(package)]
    python = CLIENTS_DIR / "py-mcp19" / "bin" / "python"
    return [str(python), str(SCRIPTS / "py_mcp1_client.py")] if python.exists() else None


def _require(row: Row) -> list[str]:
    command = _command(row)
    if command is None:
        if REQUIRED:
            pytest.fail(f"PHOTO_MCP_REQUIRE_OLD_CLIENTS is set but {row.client} {row.version} is not installed")
        pytest.skip(f"{row.client} {row.version} not installed (.ci/run installs it)")
    return command


async def _run(command: list[str], config: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(120):
        done = await anyio.run_process([*command, json.dumps(config)], check=False, stderr=None)
    assert done.returncode == 0, done.stdout
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _check(report: dict[str, Any], row: Row, tmp_path: Path) -> None:
    assert "error" not in report, report["error"]
    assert "callError" not in report, report["callError"]  # the client accepted the tool result
    assert report["sdk"] == row.version
    assert report["protocolVersion"] == row.protocol
    assert {"resize_image", "remove_background", "get_job"} <= set(report["tools"])
    unknown = {f for f in report["unknownFields"] if (row.version, f) not in CLIENT_SCHEMA_LAG}
    assert not unknown, f"fields {row.client} {row.version} does not know: {sorted(unknown)}"
    call = report["call"]
    assert call["isError"] is not True, call
    (path,) = (tmp_path / "data" / "results").glob("*.png")
    if row.protocol >= "2025-06-18":  # links and structured output exist from this revision on
        assert "resource_link" in call["types"]
        assert call["structuredContent"]["images"][0]["path"] == str(path)
    else:
        assert "resource_link" not in call["types"] and call["structuredContent"] is None
    assert "photo://results/" in call["text"] and str(path) in call["text"]
    assert [i["mimeType"] for i in call["images"]] == ["image/jpeg"]  # the inline preview
    (contents,) = report["read"]
    assert contents["mimeType"] == "image/png" and contents["blobPrefix"].startswith("iVBORw0KGgo")


def _prepare(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir(exist_ok=True)
    image = tmp_path / "work" / "in.png"
    image.write_bytes(image_bytes(40, 30, "png"))
    return image


ROWS = [pytest.param(r, id=f"{r.client.split()[0].lower()}-{r.version}") for r in OLD_CLIENTS]


@pytest.mark.parametrize("row", ROWS)
async def test_old_client_over_stdio(tmp_path: Path, row: Row) -> None:
    command = _require(row)
    image = _prepare(tmp_path)
    config = {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "server"],
        "env": server_env(tmp_path),
        "cwd": "/",
        "image": str(image),
    }
    _check(await _run(command, config), row, tmp_path)


HTTP_TRANSPORTS = ["http", "sse"]


@pytest.mark.parametrize("transport", HTTP_TRANSPORTS)
@pytest.mark.parametrize("row", ROWS)
async def test_old_client_over_http_transports(tmp_path: Path, row: Row, transport: str) -> None:
    """Streamable HTTP (/mcp) and legacy SSE (/sse), with a bearer token."""
    command = _require(row)
    image = _prepare(tmp_path)
    token = "compat-token-0123456789abcdef"
    async with http_subprocess(tmp_path, transport, PHOTO_MCP_AUTH_TOKEN=token) as base:
        config = {
            "transport": transport,
            "url": base + ("/mcp" if transport == "http" else "/sse"),
            "headers": {"Authorization": f"Bearer {token}"},
            "image": str(image),
        }
        report = await _run(command, config)
    _check(report, row, tmp_path)


@pytest.mark.parametrize("row", ROWS)
async def test_old_client_gets_the_paid_result_it_paid_for(tmp_path: Path, row: Row) -> None:
    """The issue's worst case: a paid provider job runs and charges; the client must see its result."""
    command = _require(row)
    image = _prepare(tmp_path)
    fake = FakeAluo(polls_until_done=1)
    async with serve(fake.app) as fake_base:
        env = server_env(
            tmp_path,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(fake_base),
            PHOTO_MCP_ALUO_POLL_INTERVAL="0.05",
        )
        config = {
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-m", "server"],
            "env": env,
            "cwd": "/",
            "image": str(image),
            "tool": "edit_photo",
            "arguments": {"prompt": "make the mug blue", "images": [str(image)]},
        }
        report = await _run(command, config)
    assert "error" not in report and "callError" not in report, report
    call = report["call"]
    assert call["isError"] is not True, call
    assert [c.amount for c in fake.charges] == [40]  # charged once ...
    (path,) = (tmp_path / "data" / "results").glob("*")
    assert "photo://results/" in call["text"] and str(path) in call["text"]  # ... and delivered
    assert report["read"][0]["uri"].startswith("photo://results/")


def test_the_readme_carries_the_compatibility_table() -> None:
    """The README's client section shows exactly the matrix these tests run."""
    document = (ROOT / "README.md").read_text(encoding="utf-8")
    assert START in document and END in document, "README.md has no compatibility table"
    shown = document[document.index(START) : document.index(END) + len(END)]
    assert shown == table(), "the compatibility table is out of date: paste `python -m tests.clients.matrix`"


def test_the_matrix_names_the_versions_installed() -> None:
    """Rows name the versions actually installed, and the transports these tests run."""
    (python_mcp,) = [r for r in OTHER_CLIENTS if r.client == "Python `mcp`"]
    assert python_mcp.version == version("mcp")
    for row in OLD_CLIENTS:
        assert set(row.transports) == {"stdio", *HTTP_TRANSPORTS}
        if row.client.startswith("TypeScript") and (package := _ts_package(row) / "package.json").exists():
            assert json.loads(package.read_text())["version"] == row.version
