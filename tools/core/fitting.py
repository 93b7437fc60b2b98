"""Fitting an image to a provider's input limits: allowed format, long side and byte budget.

`fit` is synchronous and CPU-bound, like the rest of the Pillow pipeline: run it off the event
loop. `fit_source` does, and reads the input only once a worker is free to fit it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.core.images import FORMAT_MIME, MIME_OF, decode, encode_under, in_worker, probe
from tools.core.refs import ImageSource


@dataclass(frozen=True)
class Encoded:
    data: bytes
    mime_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return self.mime_type.split("/")[1].replace("jpeg", "jpg")


@dataclass(frozen=True)
class FitLimits:
    """A provider's input limits. `formats` are the encodings it accepts, best first."""

    max_side: int | None = None
    max_bytes: int | None = None
    formats: tuple[str, ...] = ("jpeg", "png", "webp")


def _pick_format(info_format: str, has_alpha: bool, allowed: tuple[str, ...]) -> str:
    current = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}.get(info_format)
    if current in allowed and (not has_alpha or current != "jpeg"):
        return current
    if has_alpha:
        for fmt in allowed:
            if fmt in ("png", "webp"):
                return fmt
    return allowed[0]


def fit(data: bytes, limits: FitLimits, max_pixels: int) -> Encoded:
    """Make `data` acceptable to a provider: allowed format, long side and byte budget.

    Bytes that already fit are returned untouched (no generation loss, no work).

    Raises:
        InvalidInput: not a usable image, or it cannot be made to fit.
    """
    info = probe(data, max_pixels)
    fmt = _pick_format(info.format, info.has_alpha, limits.formats)
    side_ok = limits.max_side is None or max(info.width, info.height) <= limits.max_side
    bytes_ok = limits.max_bytes is None or info.bytes <= limits.max_bytes
    same_format = FORMAT_MIME.get(info.format) == MIME_OF[fmt]
    if side_ok and bytes_ok and same_format and not info.transposed:
        return Encoded(data, info.mime_type, info.width, info.height)
    img = decode(data, max_pixels, target_side=limits.max_side)
    if fmt == "jpeg" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB") if img.mode != "RGBA" else img
    out = encode_under(img, fmt, limits.max_bytes)
    return Encoded(out, MIME_OF[fmt], img.size[0], img.size[1])


async def fit_source(source: ImageSource, limits: FitLimits, max_pixels: int) -> Encoded:
    """`fit` the bytes of `source` in a worker thread, reading a file there.

    Calls queue for the workers without holding their inputs (the fitted bytes, usually smaller,
    are what the caller keeps until it has sent them).

    Raises:
        InvalidInput: not a usable image, it cannot be made to fit, or (a file) it is no longer
            readable or allowed.
        NotFound: a file is gone since the call started.
    """
    load = await source.reader()
    return await in_worker(lambda: fit(load(), limits, max_pixels))
