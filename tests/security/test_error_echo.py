"""Errors say what was refused as the caller gave it, shortened; they never resolve it for them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.fakes.images import image_bytes


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
