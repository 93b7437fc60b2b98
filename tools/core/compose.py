"""Offline Pillow edits behind the local tools. Synchronous: run them in a thread.

Each function takes decoded images and returns a decoded image; encoding and
saving is the caller's job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tools.core.images import pil

if TYPE_CHECKING:
    from PIL import Image

from tools.core.errors import InvalidInput

_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")


def parse_color(text: str) -> tuple[int, int, int, int]:
    """A CSS-like colour name, `#rgb`/`#rrggbb`/`#rrggbbaa`, or "transparent".

    Raises:
        InvalidInput: with examples of what is accepted.
    """
    if text.strip().lower() == "transparent":
        return (0, 0, 0, 0)
    try:
        from PIL import ImageColor

        rgb = ImageColor.getrgb(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{text[:60]!r} is not a colour. Use a name like 'white' or 'lightgray', '#rrggbb', "
            "'transparent', or an image reference for a background picture."
        ) from None
    return (*rgb[:3], rgb[3] if len(rgb) == 4 else 255)


def color_or_none(text: str) -> tuple[int, int, int, int] | None:
    """`parse_color(text)`, or None when `text` is not a colour (then it may name an image)."""
    try:
        return parse_color(text)
    except InvalidInput:
        return None


MAX_RATIO = 20  # a canvas 20 times wider than high (or the reverse) is already a banner


def parse_ratio(text: str) -> tuple[int, int] | None:
    """ "W:H" -> (W, H); "original" -> None.

    Raises:
        InvalidInput: for anything else.
    """
    if text.strip().lower() == "original":
        return None
    m = _RATIO.match(text)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise InvalidInput(f"Aspect ratio {text[:20]!r} is not W:H like '1:1', '4:5' or '16:9' (or 'original').")
    w, h = int(m.group(1)), int(m.group(2))
    if max(w, h) > MAX_RATIO * min(w, h):
        raise InvalidInput(
            f"Aspect ratio {text[:20]!r} is more extreme than {MAX_RATIO}:1: the subject would be a sliver. "
            "Use a ratio like '1:1', '4:5', '16:9' or '21:9'."
        )
    return w, h


def canvas_size(subject: tuple[int, int], ratio: tuple[int, int] | None, margin: float) -> tuple[int, int]:
    """The smallest canvas of `ratio` that holds the subject with `margin` on each side."""
    w, h = subject
    need_w, need_h = w / (1 - 2 * margin), h / (1 - 2 * margin)
    if ratio is None:
        return max(1, round(need_w)), max(1, round(need_h))
    rw, rh = ratio
    if need_w / need_h > rw / rh:
        return max(1, round(need_w)), max(1, round(need_w * rh / rw))
    return max(1, round(need_h * rw / rh)), max(1, round(need_h))


def check_output_size(size: tuple[int, int], max_pixels: int | None) -> None:
    """Refuse an output too large to allocate, before allocating it.

    Raises:
        InvalidInput: if `size` has more than `max_pixels` pixels (PHOTO_MCP_MAX_PIXELS).
    """
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise InvalidInput(
            f"The result would be {size[0]}×{size[1]} = {size[0] * size[1] / 1e6:.0f} MP, above the "
            f"{max_pixels / 1e6:.0f} MP limit (PHOTO_MCP_MAX_PIXELS): ask for a smaller size, ratio or margin."
        )


def _trim_to_alpha(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA":
        bbox = img.getchannel("A").getbbox()
        if bbox:
            return img.crop(bbox)
    return img


def place_on_background(
    subject: Image.Image,
    background: tuple[int, int, int, int] | Image.Image,
    ratio: tuple[int, int] | None,
    margin: float,
    long_side: int | None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Centre `subject` (alpha respected, trimmed to its visible part) on a colour or
    picture padded to `ratio`, with `margin` (a fraction of the canvas) on each side.

    Raises:
        InvalidInput: if the canvas would have more than `max_pixels` pixels.
    """
    subject = _trim_to_alpha(subject.convert("RGBA"))
    size = canvas_size(subject.size, ratio, margin)
    if long_side:
        scale = long_side / max(size)
        size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        target = (max(1, round(subject.size[0] * scale)), max(1, round(subject.size[1] * scale)))
        check_output_size(size, max_pixels)
        subject = subject.resize(target, pil().Resampling.LANCZOS)
    check_output_size(size, max_pixels)
    if not isinstance(background, tuple):  # a backdrop picture, not an RGBA colour
        canvas = _cover(background.convert("RGBA"), size)
    else:
        canvas = pil().new("RGBA", size, background)
    offset = ((size[0] - subject.size[0]) // 2, (size[1] - subject.size[1]) // 2)
    canvas.alpha_composite(subject, offset)
    if canvas.getchannel("A").getextrema() == (255, 255):
        return canvas.convert("RGB")
    return canvas


def _cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop `img` to fill `size` (like CSS background-size: cover)."""
    scale = max(size[0] / img.size[0], size[1] / img.size[1])
    resized = img.resize(
        (max(size[0], round(img.size[0] * scale)), max(size[1], round(img.size[1] * scale))),
        pil().Resampling.LANCZOS,
    )
    left = (resized.size[0] - size[0]) // 2
    top = (resized.size[1] - size[1]) // 2
    return resized.crop((left, top, left + size[0], top + size[1]))


def resize(
    img: Image.Image, width: int | None, height: int | None, max_side: int | None, max_pixels: int | None = None
) -> Image.Image:
    """Resize to a width and/or height (aspect kept when only one is given), or fit a long side.

    Raises:
        InvalidInput: when no size is given, or the result would exceed `max_pixels`.
    """
    w, h = img.info.get("source_size", img.size)  # decoded at a reduced scale: the full size decides
    if max_side:
        scale = max_side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
    elif width and height:
        size = (width, height)
    elif width:
        size = (width, max(1, round(h * width / w)))
    elif height:
        size = (max(1, round(w * height / h)), height)
    else:
        raise InvalidInput("Give width, height or max_side.")
    check_output_size(size, max_pixels)  # a 1×3000 strip resized to width 16384 would need 150 GB
    return img.resize(size, pil().Resampling.LANCZOS)


def resize_side(width: int | None, height: int | None, max_side: int | None) -> Callable[[int, int], int | None]:
    """For `resize`: the long side its output needs from an input of (w, h), so a JPEG can be
    decoded at that size instead of in full (None: no bound)."""

    def side(w: int, h: int) -> int | None:
        if max_side:
            return int(max_side)
        scales = [s for s in (width and width / w, height and height / h) if s]
        # With both, the axis scaled least decides (the other is squeezed from more pixels).
        return math.ceil(max(w, h) * max(scales)) if scales else None

    return side


def crop(img: Image.Image, box: list[int]) -> Image.Image:
    """Crop to [x0, y0, x1, y1] in pixels.

    Raises:
        InvalidInput: if the box is not inside the image or is empty.
    """
    w, h = img.size
    if len(box) != 4:
        raise InvalidInput("box must be [x0, y0, x1, y1].")
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise InvalidInput(f"box {box} does not fit the {w}×{h} image: use 0 ≤ x0 < x1 ≤ {w} and 0 ≤ y0 < y1 ≤ {h}.")
    return img.crop((x0, y0, x1, y1))
