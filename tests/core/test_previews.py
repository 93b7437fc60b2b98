"""Inline previews made when a result is saved: the same picture the file shows, in the chat."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image, ImageChops, ImageStat

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tools.core import images, previews
from tools.core.errors import InvalidInput


def _diff(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0-255."""
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / len(a.getbands())


def test_a_preview_of_pixels_matches_the_preview_of_their_file() -> None:
    img = Image.open(io.BytesIO(image_bytes(1200, 800, "jpeg"))).convert("RGB")
    encoded = images.encode(img, "jpeg", quality=90)
    from_pixels = previews.of_image(img, 512, "jpeg")
    from_file, mime = previews.preview(encoded, 512, 10**8)
    assert (from_pixels.mime_type, mime) == ("image/jpeg", "image/jpeg")
    a, b = Image.open(io.BytesIO(from_pixels.data)), Image.open(io.BytesIO(from_file))
    assert a.size == b.size == (512, 341)
    assert _diff(a.convert("RGB"), b.convert("RGB")) < 3


def test_pixels_with_alpha_saved_as_jpeg_preview_as_the_flat_jpeg_shows() -> None:
    img = Image.open(io.BytesIO(image_bytes(300, 200, "png", transparent=True))).convert("RGBA")
    as_png = previews.of_image(img, 128, "png")
    as_jpeg = previews.of_image(img, 128, "jpeg")
    assert as_png.mime_type == "image/png" and Image.open(io.BytesIO(as_png.data)).mode == "RGBA"
    assert as_jpeg.mime_type == "image/jpeg"
    corner = Image.open(io.BytesIO(as_jpeg.data)).convert("RGB").getpixel((0, 0))
    assert min(corner) > 240  # the transparent corner is white, as in the saved JPEG


def test_a_small_upright_png_or_jpeg_is_its_own_preview_once_its_pixels_decode() -> None:
    for fmt in ("png", "jpeg"):
        small = image_bytes(64, 48, fmt)
        assert previews.preview(small, 512, 10**8) == (small, f"image/{fmt}")
    rotated = Image.open(io.BytesIO(image_bytes(64, 48, "jpeg")))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    rotated.save(buf, "JPEG", exif=exif.tobytes())
    payload, _ = previews.preview(buf.getvalue(), 512, 10**8)
    assert Image.open(io.BytesIO(payload)).size == (48, 64)  # turned upright, so encoded again
    big = image_bytes(600, 400, "png")
    assert Image.open(io.BytesIO(previews.preview(big, 512, 10**8)[0])).size == (512, 341)
    cut = small[: len(small) // 2]  # a header that probes, pixels that do not decode
    with pytest.raises(InvalidInput):
        previews.preview(cut, 512, 10**8)


async def test_a_result_asked_for_again_later_still_shows_its_preview(tmp_path: Path) -> None:
    """The preview made at save is handed to the first result; `get_job` afterwards shows the
    same picture, made from the saved file."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "photo.png").write_bytes(image_bytes(900, 600, "png"))
    async with Client(build_server(make_settings(tmp_path, allowed_dirs=[work]))) as client:
        first = await client.call_tool("resize_image", {"image": str(work / "photo.png"), "max_side": 800})
        again = await client.call_tool("get_job", {"job_id": first.structured_content["job_id"]})
    assert not first.is_error and not again.is_error, (first.content, again.content)
    shown = [
        Image.open(io.BytesIO(base64.b64decode(block.data))).convert("RGB")
        for result in (first, again)
        for block in result.content
        if block.type == "image"
    ]
    assert len(shown) == 2 and shown[0].size == shown[1].size == (512, 341)
    assert _diff(shown[0], shown[1]) < 3


async def test_a_local_edit_shows_the_saved_file_inline(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "photo.jpg").write_bytes(image_bytes(1600, 1200, "jpeg"))
    async with Client(build_server(make_settings(tmp_path, allowed_dirs=[work]))) as client:
        result = await client.call_tool("resize_image", {"image": str(work / "photo.jpg"), "max_side": 1000})
    assert not result.is_error, result.content
    (shown,) = [b for b in result.content if b.type == "image"]
    (saved,) = result.structured_content["images"]
    inline = Image.open(io.BytesIO(base64.b64decode(shown.data))).convert("RGB")
    with Image.open(saved["path"]) as file:
        expected = file.convert("RGB").resize(inline.size, Image.Resampling.BICUBIC)
    assert max(inline.size) == 512 and saved["width"] == 1000
    assert _diff(inline, expected) < 4
