"""Arguments as people type them, through a real MCP client: typos named, aliases taken, one sentence."""

from __future__ import annotations

from pathlib import Path

from mcp import Client
from PIL import Image

from tests.fakes.images import image_bytes


def _text(result) -> str:
    return result.content[0].text


async def test_an_unknown_argument_is_refused_naming_the_closest(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 30))
    result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "maxside": 100})
    assert result.is_error
    assert "no argument 'maxside'" in _text(result) and "Did you mean 'max_side'?" in _text(result)
    assert result.structured_content is None  # refused before any job


async def test_common_aliases_are_taken(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 30))
    result = await client.call_tool("convert_image", {"image": str(workdir / "a.png"), "format": "JPG"})
    assert not result.is_error, result.content
    with Image.open(result.structured_content["images"][0]["path"]) as img:
        assert img.format == "JPEG"


async def test_a_validation_error_is_one_sentence_that_says_what_to_change(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 30))
    result = await client.call_tool(
        "convert_image", {"image": str(workdir / "a.png"), "format": "gif", "quality": "high"}
    )
    text = _text(result)
    assert result.is_error and "\n" not in text and "pydantic" not in text and "validation error" not in text
    assert "format must be one of png, jpeg, webp (got 'gif')" in text and "quality" in text
    missing = await client.call_tool("resize_image", {"width": 10})
    assert missing.is_error and "image is required" in _text(missing)
