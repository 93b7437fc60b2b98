"""Errors say what was refused as the caller gave it, shortened; they never resolve it for them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.fakes.images import image_bytes
from tools.core.db import Database
from tools.core.errors import InvalidInput
from tools.core.fetch import SafeFetcher
from tools.core.refs import ImageResolver
from tools.core.results import ResultStore


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


async def _resize(client: Client, image: str) -> str:
    result = await client.call_tool("resize_image", {"image": image, "width": 8})
    assert result.is_error
    return text_of(result)


async def test_the_outside_error_does_not_reveal_where_a_path_leads(
    client: Client, workdir: Path, tmp_path: Path
) -> None:
    hidden = tmp_path / "hidden-target-4f2a"
    hidden.mkdir()
    (hidden / "secret.png").write_bytes(image_bytes(8, 8, "png"))
    (workdir / "innocent.png").symlink_to(hidden / "secret.png")
    text = await _resize(client, str(workdir / "innocent.png"))
    assert "outside the directories" in text and "innocent.png" in text
    assert "hidden-target-4f2a" not in text  # the symlink's target stays unknown to the caller
    exe = await _resize(client, "/proc/self/exe")
    assert "outside the directories" in exe and "/proc/self/exe" in exe
    assert os.path.realpath(sys.executable) not in exe and os.path.realpath("/proc/self/exe") not in exe
    cwd = await _resize(client, "/proc/self/cwd/x.png")
    assert "outside the directories" in cwd and os.getcwd() not in cwd.replace("/proc/self/cwd/x.png", "")
    root = await _resize(client, f"/proc/{os.getpid()}/root/etc/passwd")
    assert "outside the directories" in root


@pytest.mark.parametrize(
    "ref",
    [
        "photo://results/" + "a" * 20_000_000,
        "photo://results/" + "é" * 100_000,
        "photo://" + "x" * 1_000_000,
        "http://" + "h" * 1_000_000 + ".example/a.png",
        "https://" + ".".join(["a" * 60] * 20_000) + "/a.png",
        "/" + "p" * 1_000_000 + ".png",
        "gopher" + "s" * 1_000_000 + "://x",
        "file://" + "n" * 1_000_000 + "/a.png",
        "data:" + "t" * 1_000_000 + ";base64,AAAA",
    ],
    ids=["huge-result-id", "unicode-result-id", "huge-photo-uri", "huge-host", "many-labels", "huge-path",
         "huge-scheme", "huge-file-host", "huge-data-type"],
)  # fmt: skip
async def test_every_echoed_value_is_shortened(client: Client, workdir: Path, ref: str) -> None:
    text = await _resize(client, ref)
    assert len(text) < 1000, f"{len(text)} characters: {text[:300]}"
    (workdir / "ok.png").write_bytes(image_bytes(16, 16, "png"))  # and the server keeps serving
    ok = await client.call_tool("resize_image", {"image": str(workdir / "ok.png"), "width": 8})
    assert not ok.is_error, text_of(ok)


async def test_over_http_the_outside_error_does_not_list_the_servers_directories(tmp_path: Path) -> None:
    work, results = tmp_path / "srv-work-7c1d", tmp_path / "results"
    work.mkdir()
    store = ResultStore(results, Database(tmp_path / "db.sqlite3"))
    async with httpx2.AsyncClient() as http:
        fetcher = SafeFetcher(http, allow_private=False, max_bytes=1 << 20, timeout=5)
        for remote in (True, False):
            resolver = ImageResolver(
                store=store, fetcher=fetcher, allowed_dirs=[work.resolve(), results.resolve()],
                base_dir=results.resolve(), remote=remote,
            )  # fmt: skip
            with pytest.raises(InvalidInput, match="outside the directories") as refused:
                await resolver.resolve("/etc/hostname")
            assert ("srv-work-7c1d" in str(refused.value)) is (not remote), str(refused.value)
