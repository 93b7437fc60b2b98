"""The Pillow pipeline: sniffing, EXIF orientation, fitting to provider limits."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fakes.images import image_bytes
from tools.core import fitting, images, previews
from tools.core.errors import InvalidInput

MAX = 100_000_000


def _jpeg_rotated(width: int, height: int, orientation: int = 6) -> bytes:
    img = Image.new("RGB", (width, height), "navy")
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_bytes_that_already_fit_pass_through_untouched() -> None:
    data = image_bytes(300, 200, "jpeg")
    out = fitting.fit(data, fitting.FitLimits(max_side=1024, max_bytes=10 * 2**20), MAX)
    assert out.data is data and (out.width, out.height, out.mime_type) == (300, 200, "image/jpeg")


def test_exif_rotation_is_applied_and_the_long_side_fitted() -> None:
    data = _jpeg_rotated(2000, 1000)  # displayed as 1000×2000
    info = images.probe(data, MAX)
    assert (info.width, info.height, info.transposed) == (1000, 2000, True)
    out = fitting.fit(data, fitting.FitLimits(max_side=1024), MAX)
    assert (out.width, out.height) == (512, 1024)
    with Image.open(io.BytesIO(out.data)) as img:
        assert img.size == (512, 1024) and img.getexif().get(0x0112, 1) == 1


def test_alpha_is_kept_in_png_and_format_follows_the_allowed_list() -> None:
    data = image_bytes(100, 100, "png", transparent=True)
    out = fitting.fit(data, fitting.FitLimits(formats=("jpeg", "png")), MAX)
    assert out.mime_type == "image/png" and out.data is data
    webp = fitting.fit(image_bytes(50, 50, "webp"), fitting.FitLimits(formats=("jpeg",)), MAX)
    assert webp.mime_type == "image/jpeg"


def test_byte_budget_is_met() -> None:
    noisy = Image.effect_noise((1500, 1500), 90).convert("RGB")
    buf = io.BytesIO()
    noisy.save(buf, "PNG")
    out = fitting.fit(buf.getvalue(), fitting.FitLimits(max_bytes=150_000, formats=("jpeg",)), MAX)
    assert len(out.data) <= 150_000


def test_pixel_limit_and_garbage_are_refused() -> None:
    with pytest.raises(InvalidInput, match="safety limit"):
        images.probe(image_bytes(100, 100, "png"), 5_000)
    with pytest.raises(InvalidInput, match="not an image"):
        images.probe(b"GIF89a-but-not-really" * 3, MAX)


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = images.decode(buf.getvalue(), MAX)
    assert img.size == (20, 20) and img.convert("RGB").getpixel((0, 0))[0] > 200


def test_preview_is_small() -> None:
    data, mime = previews.preview(image_bytes(2000, 1000, "jpeg"), 512, MAX)
    with Image.open(io.BytesIO(data)) as img:
        assert max(img.size) == 512 and mime == "image/jpeg"
