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


def of_image(img: Image.Image, side: int, fmt: str) -> Preview:
    """The preview of pixels in memory (an edit's output, to be encoded as `fmt`): PNG with
    alpha, else JPEG, as `images.preview` makes from the file."""
    small = images.downscale(images.normalize_mode(img), side, fast=True)
    if small.mode == "RGBA" and fmt != "jpeg":  # a JPEG file keeps no alpha
        return Preview(side, images.encode(small, "png"), "image/png")
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
        payload, mime = images.preview(data, side, max_pixels)
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
