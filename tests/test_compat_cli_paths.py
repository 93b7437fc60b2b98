"""Relative image paths: the CLI reads them where the user typed the command; an MCP host (which
starts the server with cwd=/) is told where they are looked up and to pass an absolute path."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp import Client

from server.__main__ import _paths_from_cwd
from tests.fakes.images import image_bytes
from tests.support import server_env, stdio_params


async def _cli(tmp_path: Path, cwd: Path, *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "server", "call", *args], cwd=cwd, env=server_env(tmp_path), check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_the_cli_reads_a_relative_path_in_the_callers_directory(tmp_path: Path, workdir: Path) -> None:
    pictures = workdir / "Pictures"
    pictures.mkdir()
    (pictures / "mug.png").write_bytes(image_bytes(40, 30, "png"))
    code, out, err = await _cli(tmp_path, pictures, "resize_image", "image=mug.png", "width=20")
    assert code == 0, out + err
    assert "20×15" in out
    (saved,) = (tmp_path / "data" / "results").glob("*.png")
    assert str(saved) in out

    code, out, err = await _cli(tmp_path, pictures, "resize_image", "image=other.png", "width=20")
    assert code == 1
    assert f"No file at '{pictures / 'other.png'}'" in out  # looked up here, not in the results folder


async def test_an_mcp_host_is_told_where_relative_paths_are_looked_up(tmp_path: Path, workdir: Path) -> None:
    (workdir / "mug.png").write_bytes(image_bytes(40, 30, "png"))
    with anyio.fail_after(60):
        async with Client(stdio_params(tmp_path)) as client:  # cwd=/ as hosts start it
            result = await client.call_tool("resize_image", {"image": "mug.png", "width": 20})
    assert result.is_error
    text = result.content[0].text
    assert "No file at 'mug.png'." in text
    assert f"Relative paths are looked up in {tmp_path / 'data'}" in text
    assert "not in your working directory" in text and "cwd=/" in text
    assert "absolute path" in text and "~/Pictures/mug.png" in text


def test_only_path_like_values_of_image_parameters_are_made_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = {
        "image": "mug.png",
        "background": "white",
        "images": ["a.jpg", "photo://results/abc", "~/b.png", "/abs/c.png", "data:image/png;base64,AA"],
        "prompt": "mug.png",
    }
    made = _paths_from_cwd(arguments, {"image", "background", "images"})
    assert made["image"] == str(tmp_path / "mug.png")
    assert made["background"] == "white"
    assert made["images"] == [str(tmp_path / "a.jpg"), *arguments["images"][1:]]
    assert made["prompt"] == "mug.png"  # not an image parameter
