"""Inline previews made while a result is still in hand, so rendering it needs no second decode.

A provider's result is probed when it is saved (one decode of its header); an offline edit's
result exists as pixels before it is encoded. Either way the preview at the configured size
costs least right then: `probe_and_preview` makes it in the same worker trip as the probe, and
`of_image` from the edit's own pixels. The `PreviewCache` holds it until the tool result is
rendered (`tools/toolkit/render.py`), which falls back to decoding the file when a preview is
not there (evicted, another size, a later `get_job`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tools.core import images
from tools.core.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

    from tools.core.settings import Settings

# A preview with alpha is a PNG made for one look: zlib's fastest level takes a third less time
# than the results' level 3 (a 512 px cut-out: 17 -> 11 ms) for ~10% more bytes.
PNG_LEVEL = 1
CACHE_ENTRIES = 64  # previews are tens of KB: a few MB at most, for results not yet rendered


def made_at_save(settings: Settings) -> int | None:
    """The side of the preview to make when a result is saved: the configured one in "preview"
    mode; None for "none" (nothing shown) and "full" (the file itself is shown)."""
    return settings.preview_size if settings.preview == "preview" else None


@dataclass(frozen=True)
class Preview:
    """An encoded inline preview whose long side is at most `side`."""

    side: int
    data: bytes
    mime_type: str


def preview(
    data: bytes, max_side: int, max_pixels: int, *, compact: bool = False, info: images.ImageInfo | None = None
) -> tuple[bytes, str]:
    """A small inline preview: PNG when the image has alpha, else JPEG; `compact`: WebP with
    alpha and a lower quality, for a result that must fit a byte budget. A small PNG or JPEG
    that fits `max_side` is its own preview (its pixels are still decoded, to prove they are).
    `info`: `data`'s probe, when the caller has it.

    Raises:
        InvalidInput: if the data is not a decodable image.
    """
    img = images.decode(data, max_pixels, target_side=max_side, fast=True)  # even when shown as is: it decodes
    if not compact and len(data) <= _AS_IS_BYTES:  # only a file that could be shown as is is probed
        info = info or images.probe(data, max_pixels)
        if _shown_as_is(info, max_side):
            return data, info.mime_type
    if img.mode == "RGBA" and compact:
        return images.encode(img, "webp", quality=70), "image/webp"
    if img.mode == "RGBA":
        return images.encode(img, "png", png_level=PNG_LEVEL), "image/png"
    return images.encode(img, "jpeg", quality=70 if compact else 80), "image/jpeg"


# The preview of an ordinary PNG or JPEG that already fits, upright and small, would be the same
# picture encoded again: it is shown as it is. Anything else (CMYK, 16-bit, EXIF-rotated, large)
# is encoded from its decoded pixels.
_AS_IS_MODES = {"PNG": {"RGB", "RGBA", "L", "LA", "P"}, "JPEG": {"RGB", "L"}}
_AS_IS_BYTES = 256 * 1024


def _shown_as_is(info: images.ImageInfo, max_side: int) -> bool:
    return (
        info.mode in _AS_IS_MODES.get(info.format, ())
        and max(info.width, info.height) <= max_side
        and not info.transposed
        and info.bytes <= _AS_IS_BYTES
    )


def of_image(img: Image.Image, side: int, fmt: str) -> Preview:
    """The preview of pixels in memory (an edit's output, to be encoded as `fmt`): PNG with
    alpha, else JPEG, as `preview` makes from the file."""
    small = images.downscale(images.normalize_mode(img), side, fast=True)
    if small.mode == "RGBA" and fmt != "jpeg":  # a JPEG file keeps no alpha
        return Preview(side, images.encode(small, "png", png_level=PNG_LEVEL), "image/png")
    return Preview(side, images.encode(small, "jpeg", quality=80), "image/jpeg")


def probe_and_preview(data: bytes, max_pixels: int, side: int | None) -> tuple[images.ImageInfo, Preview | None]:
    """The header facts of `data` and, when `side` is given, its preview: one worker trip.

    Raises:
        InvalidInput: `data` is not an image.
    """
    info = images.probe(data, max_pixels)
    if side is None:
        return info, None
    try:
        payload, mime = preview(data, side, max_pixels, info=info)
    except InvalidInput:  # a header that probes but pixels that do not decode: render says so
        return info, None
    return info, Preview(side, payload, mime)


class PreviewCache:
    """Previews of results saved but not yet rendered, by result id; the oldest go first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._items: OrderedDict[str, Preview] = OrderedDict()

    def put(self, result_id: str, preview: Preview) -> None:
        self._items[result_id] = preview
        while len(self._items) > self._entries:
            self._items.popitem(last=False)

    def take(self, result_ids: Iterable[str]) -> dict[str, Preview]:
        """The previews of `result_ids` that are here, removed (a result is rendered once)."""
        return {i: p for i in result_ids if (p := self._items.pop(i, None)) is not None}
