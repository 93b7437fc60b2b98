"""Object-removal masks: grayscale PNGs of a photo's exact size, white = remove, black = keep.

Everything here is synchronous Pillow work: run it off the event loop.
"""

from __future__ import annotations

import io

from tools.core import images
from tools.core.errors import InvalidInput


def boxes_mask(size: tuple[int, int], boxes: list[list[int]]) -> bytes:
    """A mask of exactly `size`: white inside the boxes, black elsewhere.

    Raises:
        InvalidInput: a box is empty or lies entirely outside the image.
    """
    from PIL import ImageDraw

    w, h = size
    mask = images.pil().new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for box in boxes:
        x0, y0, x1, y1 = box
        # Clip after ordering the corners: clipping first made a box wholly outside look non-empty.
        cx0, cx1 = max(0, min(x0, x1)), min(w, max(x0, x1))
        cy0, cy1 = max(0, min(y0, y1)), min(h, max(y0, y1))
        if cx1 <= cx0 or cy1 <= cy0:
            raise InvalidInput(
                f"The box {box} is empty or outside the {w}×{h} image: use 0 ≤ x0 < x1 ≤ {w} and 0 ≤ y0 < y1 ≤ {h}."
            )
        draw.rectangle((cx0, cy0, cx1 - 1, cy1 - 1), fill=255)
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    return buf.getvalue()


def fit_mask(data: bytes, size: tuple[int, int], max_pixels: int) -> bytes:
    """A mask image as a grayscale PNG of exactly `size` (it must have the photo's shape).

    Raises:
        InvalidInput: not an image, a different shape than the photo, or no white area.
    """
    mask = images.decode(data, max_pixels).convert("L")
    if mask.size != size:
        mw, mh = mask.size
        if abs(mw / mh - size[0] / size[1]) > 0.01 * size[0] / size[1]:
            raise InvalidInput(
                f"The mask is {mw}×{mh} but the photo is {size[0]}×{size[1]}: the mask must have the photo's shape "
                "(white = remove, black = keep)."
            )
        mask = mask.resize(size, images.pil().Resampling.BILINEAR)
    if mask.getextrema()[1] < 128:
        raise InvalidInput("The mask has no white area: paint the objects to remove white.")
    return images.encode(mask, "png")
