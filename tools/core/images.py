"""The Pillow pipeline: sniff, decode safely, fit to a provider's limits, encode.

Everything here is synchronous and CPU-bound: callers run it with
`anyio.to_thread.run_sync`. Images are identified by content, never by extension.
"""

from __future__ import annotations

import functools
import io
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from tools.core.decoders import (
    MAX_JPEG_SCAN_PIXELS,
    MAX_JPEG_SCANS,
    accepted_formats,
    accepted_names,
    check_jpeg_scans,
    one_scan_jpeg,
    refused_format,
)
from tools.core.echo import shorten
from tools.core.errors import InvalidInput

FORMAT_MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # phone JPEGs with a depth map: the first frame is the photo
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}
SAVE_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
MIME_OF = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")
_heif_registered = False
if TYPE_CHECKING:
    from PIL import Image
_PARALLEL_PIXELS = 4_000_000  # below this, threads cost more than they save
_TRANSPOSE = {  # EXIF orientation -> PIL.Image.Transpose member
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}
_pil_module = None
_work_limiter: anyio.CapacityLimiter | None = None
# Large decodes share a memory budget, whatever thread runs them: a 24 MP photo holds ~72 MB of
# pixels plus its resized copy while it is decoded, so two at once would double the peak.
DECODE_BUDGET_BYTES = 160 * 2**20
_LARGE_DECODE_BYTES = 32 * 2**20  # smaller decodes never wait
_budget = threading.Condition()
_budget_held = 0
T = TypeVar("T")


def pil() -> ModuleType:
    """PIL.Image, imported on first use (start-up stays fast when no image is touched)."""
    global _pil_module
    if _pil_module is None:
        from PIL import Image

        # Our own limit (PHOTO_MCP_MAX_PIXELS) is checked right after the header is read, with a
        # message that says what to do; Pillow's global bomb check would mask it as "not an image".
        Image.MAX_IMAGE_PIXELS = None
        _pil_module = Image
    return _pil_module


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, with width/height as displayed (EXIF orientation applied)."""

    format: str
    mime_type: str
    width: int
    height: int
    has_alpha: bool
    transposed: bool  # EXIF orientation other than "normal"
    bytes: int
    mode: str  # Pillow's pixel mode, as stored


def _register_heif_if_needed(data: bytes) -> None:
    global _heif_registered
    if not _heif_registered and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        import pillow_heif  # lazy: only HEIC input pays for it

        pillow_heif.register_heif_opener()
        _heif_registered = True


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise InvalidInput("The image is empty (0 bytes).")
    head = data[:256].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype svg")):
        raise InvalidInput("SVG is a vector format; convert it to PNG or JPEG first.")
    other = refused_format(data)
    if other is not None:
        raise InvalidInput(f"This is not an image in an accepted format ({other} is refused): use {accepted_names()}.")
    _register_heif_if_needed(data)
    try:
        # Only the allow-listed decoders ever see the bytes, whatever the extension or data: MIME
        # type claims: no EPS (Ghostscript), no PSD, no exotic plugin, no external program.
        img = pil().open(io.BytesIO(data), formats=accepted_formats())
    except pil().UnidentifiedImageError:
        raise InvalidInput(f"This is not an image in an accepted format ({accepted_names()}).") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput(f"The image header is corrupt ({shorten(exc, 100)}).") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise InvalidInput("The image has no pixels.")
    if w * h > max_pixels:
        raise InvalidInput(
            f"The image is {w}×{h} = {w * h / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP safety limit "
            "(PHOTO_MCP_MAX_PIXELS). Downscale it first."
        )
    if img.format in ("JPEG", "MPO") and not (img.format == "JPEG" and one_scan_jpeg(data)):
        # Every scan starts with the bytes FF DA, so their count (at C speed, ~1 ms per MB) bounds
        # the scan count from above: only a JPEG that might be refused walks its markers (the walk
        # costs 20-150 ms on a 24 MP photo, and a call opens its input several times). A camera's
        # baseline JPEG needs neither: its header shows it cannot decode a second scan.
        bound = data.count(b"\xff\xda")
        if bound > MAX_JPEG_SCANS or bound * w * h > MAX_JPEG_SCAN_PIXELS:
            check_jpeg_scans(data, w * h)
    return img


def _orientation(img: Image.Image) -> int:
    try:
        if img.format == "PNG":
            # getexif() on a PNG decodes every pixel to look for an eXIf chunk after the image
            # data; an orientation tag there is vanishingly rare, so use only the header's.
            exif = pil().Exif()
            if "exif" in img.info:
                exif.load(img.info["exif"])
            return int(exif.get(0x0112, 1) or 1)
        return int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block must not make a good image unusable
        return 1


async def in_worker(fn: Callable[..., T], *args: Any) -> T:
    """Run Pillow work in a worker thread, at most one per core at a time.

    It is CPU-bound, so more threads would not finish sooner, and a 24 MP photo holds a few
    hundred MB while it is worked on: 20 concurrent calls must queue, not multiply memory.
    """
    global _work_limiter
    if _work_limiter is None:
        _work_limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))
    return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=_work_limiter)


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Read the header only: format, displayed size, alpha.

    Raises:
        InvalidInput: not an image, SVG, empty, corrupt header, or above the pixel limit.
    """
    img = _open(data, max_pixels)
    orientation = _orientation(img)
    w, h = img.size
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    fmt = img.format or "UNKNOWN"
    return ImageInfo(
        format=fmt,
        mime_type=FORMAT_MIME.get(fmt, "application/octet-stream"),
        width=w,
        height=h,
        has_alpha=has_alpha,
        transposed=orientation != 1,
        bytes=len(data),
        mode=img.mode,
    )


def normalize_mode(img: Image.Image) -> Image.Image:
    """RGB, RGBA or L: what every operation and encoder here handles."""
    if img.mode in ("RGB", "RGBA", "L"):
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits instead of clipping to white.
        return img.point(lambda v: v / 256).convert("L")
    if img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    return img.convert("RGB")  # CMYK, YCbCr, P, 1, F ...


def decode(
    data: bytes,
    max_pixels: int,
    *,
    target_side: int | None = None,
    fast: bool = False,
    draft_side: int | Callable[[int, int], int | None] | None = None,
) -> Image.Image:
    """Decode the first frame, EXIF-oriented, in RGB/RGBA/L.

    With `target_side`, the image is also shrunk to that long side: JPEG decodes at a
    reduced scale (draft mode), and the EXIF rotation is applied after shrinking, on
    fewer pixels. With `draft_side` alone, a JPEG only decodes at the smallest scale whose
    long side is still at least `draft_side` (the caller resamples it itself). A callable
    `draft_side(width, height)` gets the displayed size first (from the same open of the
    header: no second probe), and the size is kept as `info["source_size"]`.

    Raises:
        InvalidInput: not an image, corrupt or truncated data, or above the pixel limit.
    """
    img = _open(data, max_pixels)
    orientation = _orientation(img)
    source_size = None
    if callable(draft_side):
        source_size = img.size[::-1] if orientation in (5, 6, 7, 8) else img.size
        draft_side = draft_side(*source_size)
    side = target_side or draft_side
    if side and img.format in ("JPEG", "MPO") and max(img.size) > side:
        scale = side / max(img.size)
        img.draft("RGB", (max(1, int(img.size[0] * scale)), max(1, int(img.size[1] * scale))))
    # The decoded pixels (4 bytes each at most) and, while it is shrunk or turned, one more copy.
    with _decode_budget(img.size[0] * img.size[1] * 4 * (2 if target_side or orientation in _TRANSPOSE else 1)):
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidInput(f"The image data is truncated or corrupt ({exc}).") from None
        img = normalize_mode(img)
        if target_side:
            img = downscale(img, target_side, fast=fast)
        if orientation in _TRANSPOSE:
            img = img.transpose(getattr(pil().Transpose, _TRANSPOSE[orientation]))
    if source_size is not None:  # sizes are then computed from the full image (compose.resize)
        img.info["source_size"] = source_size
    return img


@contextmanager
def _decode_budget(nbytes: int) -> Iterator[None]:
    """Hold `nbytes` of the decode budget while a large decode runs (one always goes ahead alone)."""
    global _budget_held
    if nbytes < _LARGE_DECODE_BYTES:
        yield
        return
    nbytes = min(nbytes, DECODE_BUDGET_BYTES)
    with _budget:
        while _budget_held and _budget_held + nbytes > DECODE_BUDGET_BYTES:
            _budget.wait()
        _budget_held += nbytes
    try:
        yield
    finally:
        with _budget:
            _budget_held -= nbytes
            _budget.notify_all()


def _strip_rows(height: int, parts: int) -> list[int]:
    return [round(height * i / parts) for i in range(parts + 1)]


def downscale(img: Image.Image, max_side: int, *, fast: bool = False) -> Image.Image:
    """Shrink so the long side is at most `max_side` (never enlarges).

    Large images are resized in horizontal strips on all cores: Pillow releases the GIL
    while resampling, and `box` makes each strip sample the same source pixels as a
    whole-image resize would, so the result is seamless.
    """
    if max(img.size) <= max_side:
        return img
    scale = max_side / max(img.size)
    size = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
    if fast:  # previews: an integer box reduction as far as it goes, then a cheap filter (4x less work)
        return img.resize(size, pil().Resampling.BICUBIC, reducing_gap=1.0)
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or img.size[0] * img.size[1] < _PARALLEL_PIXELS or size[1] < 2 * workers:
        return img.resize(size, pil().Resampling.LANCZOS)
    rows = _strip_rows(size[1], workers)
    src_h = img.size[1]

    def strip(i: int) -> tuple[int, Image.Image]:
        top, bottom = rows[i], rows[i + 1]
        box = (0, top * src_h / size[1], img.size[0], bottom * src_h / size[1])
        return top, img.resize((size[0], bottom - top), pil().Resampling.LANCZOS, box=box)

    # The output is made once the first strip is done, and each strip is dropped once pasted:
    # a 6000×4000 photo shrunk to 4096 px then peaks ~40 MB lower (the strips run meanwhile).
    out: Image.Image | None = None
    with ThreadPoolExecutor(workers) as pool:
        for top, part in pool.map(strip, range(workers)):
            if out is None:
                out = pil().new(img.mode, size)
            out.paste(part, (0, top))
            del part
    assert out is not None
    return out


def encode(img: Image.Image, fmt: str, *, quality: int | None = None, png_level: int = 3) -> bytes:
    """Encode as png/jpeg/webp. JPEG drops alpha onto white. `png_level`: zlib's effort, 0-9."""
    fmt = fmt.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in SAVE_FORMAT:
        raise InvalidInput(f"Unsupported output format {fmt!r}; use png, jpeg or webp.")
    if fmt == "jpeg" and img.mode == "RGBA":
        flat = pil().new("RGB", img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality or 90, optimize=False, subsampling="4:2:0")
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality or 90, method=4)
    else:
        img.save(buf, "PNG", compress_level=png_level)
    return buf.getvalue()


def encode_under(img: Image.Image, fmt: str, max_bytes: int | None) -> bytes:
    """Encode, lowering quality and then size until the bytes fit `max_bytes`.

    Raises:
        InvalidInput: if even a small version does not fit (an absurd budget).
    """
    data = encode(img, fmt)
    if max_bytes is None or len(data) <= max_bytes:
        return data
    if fmt in ("jpeg", "webp"):
        for quality in (82, 72, 60):
            data = encode(img, fmt, quality=quality)
            if len(data) <= max_bytes:
                return data
    while max(img.size) > 64:
        img = downscale(img, int(max(img.size) * 0.75))
        data = encode(img, fmt, quality=72 if fmt != "png" else None)
        if len(data) <= max_bytes:
            return data
    raise InvalidInput(f"Cannot encode the image under {max_bytes} bytes.")


# Input formats whose encoding an edit keeps; anything else comes out as PNG.
_KEEP_FORMAT = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}


def format_like(img: Image.Image, original: bytes, max_pixels: int, fmt: str | None = None) -> str:
    """The encoding `encode_like` gives an edit of `original`: `fmt`, else the original's
    (PNG/JPEG/WebP, anything else PNG), except that transparency is never flattened into JPEG."""
    chosen = fmt or _KEEP_FORMAT.get(probe(original, max_pixels).format, "png")
    return "png" if chosen == "jpeg" and img.mode == "RGBA" and fmt is None else chosen


def encode_like(
    img: Image.Image,
    original: bytes,
    max_pixels: int,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """Encode an edit of `original` in the original's format (PNG/JPEG/WebP), or in `fmt`.

    An image with transparency is never silently flattened into JPEG when the format was kept.

    Raises:
        InvalidInput: `max_bytes` cannot be met.
    """
    return encode_as(img, format_like(img, original, max_pixels, fmt), quality=quality, max_bytes=max_bytes)


def encode_as(img: Image.Image, fmt: str, *, quality: int | None = None, max_bytes: int | None = None) -> bytes:
    """Encode `img` as `fmt`, at `quality` unless that passes `max_bytes` (then as `encode_under`).

    Raises:
        InvalidInput: `max_bytes` cannot be met.
    """
    if quality is None:
        return encode_under(img, fmt, max_bytes)
    data = encode(img, fmt, quality=quality)
    return encode_under(img, fmt, max_bytes) if max_bytes is not None and len(data) > max_bytes else data
