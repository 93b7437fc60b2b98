"""Real image bytes made with Pillow, for the fakes and the tests (nothing is downloaded)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def scene(width: int = 64, height: int = 48, mode: str = "RGB") -> Image.Image:
    """A small product-like scene: a coloured disc on a light gradient."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    img = Image.eval(img, lambda v: 200 + v // 5)
    draw = ImageDraw.Draw(img)
    r = min(width, height) // 3
    cx, cy = width // 2, height // 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(200, 40, 40))
    return img.convert(mode) if mode != "RGB" else img


def image_bytes(width: int = 64, height: int = 48, fmt: str = "png", *, transparent: bool = False) -> bytes:
    """Encode `scene()` as png/jpeg/webp; `transparent=True` gives an RGBA cut-out (png/webp)."""
    img = scene(width, height)
    if transparent:
        alpha = Image.new("L", img.size, 0)
        r = min(width, height) // 3
        ImageDraw.Draw(alpha).ellipse((width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r), fill=255)
        img.putalpha(alpha)
    buf = io.BytesIO()
    img.save(buf, _FORMATS[fmt.lower()])
    return buf.getvalue()


def aspect_size(ratio: str, long_side: int = 96) -> tuple[int, int]:
    """Pixel size for an aspect ratio string such as "16:9" with the given long side."""
    w, h = (int(x) for x in ratio.split(":"))
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side
