"""Which decoders may see input bytes, and what one decode may cost.

Pillow knows ~40 formats, some of which hand the bytes to an external program (EPS goes to
Ghostscript). Inputs are opened only with the allow-listed decoders (`Image.open(...,
formats=accepted_formats())`), chosen by sniffing the bytes, never by a name or MIME type.

A progressive JPEG makes one pass over the whole coefficient buffer per scan: a 50 KB file
with thousands of tiny scans costs minutes of CPU below any pixel limit. The scans are
counted from the markers before decoding, and absurd counts are refused.
"""

from __future__ import annotations

import re

from tools.core.errors import InvalidInput

# Input decoders (Pillow format ids), sniffed from the bytes: everything else is refused.
# (JPEG's decoder also yields MPO, the multi-picture JPEG of phones.)
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP", "HEIF", "AVIF")
_OTHER_MAGIC = (
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
# Progressive JPEG: every scan is a pass over the whole coefficient buffer, so a small file with
# thousands of tiny scans costs minutes of CPU. Encoders use about 10 scans (libjpeg's script)
# and at most a few dozen; scans × pixels bounds the decode work.
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 3_000_000_000
_JPEG_MARKER = re.compile(rb"\xff+([^\x00\xff])")  # in entropy-coded data: a marker (FF 00 is a stuffed FF)


def accepted_formats() -> tuple[str, ...]:
    """The Pillow decoders an input may use: the allow-list, as far as this Pillow has them
    (AVIF where it was built with libavif; HEIF once pillow-heif is registered)."""
    from PIL import Image  # lazy: start-up stays fast when no image is touched

    Image.init()
    return tuple(f for f in INPUT_FORMATS if f in Image.OPEN)


def accepted_names() -> str:
    """The accepted formats, as the messages name them."""
    from PIL import Image

    Image.init()
    names = ["PNG", "JPEG", "WebP", "GIF", "TIFF", "BMP", "HEIC/HEIF"]
    return ", ".join(names + (["AVIF"] if "AVIF" in Image.OPEN else []))


def refused_format(data: bytes) -> str | None:
    """Name a well-known format we refuse, for a clearer message (nothing is decoded)."""
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return name
    return None


def count_jpeg_scans(data: bytes) -> int:
    """The number of scans (SOS markers) of the first image in a JPEG stream, without decoding.

    Walks the marker segments (skipping their payloads by length, so an EXIF thumbnail or a
    comment is not counted) and the entropy-coded data between scans (where 0xFF is always
    stuffed, so any other 0xFF xx is a marker), up to the first EOI.
    """
    scans = 0
    pos = 2  # after SOI
    size = len(data)
    in_scan = False
    while pos < size:
        if in_scan:
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                break
            pos = match.start(1)
        elif data[pos] != 0xFF:
            break  # garbage between segments: the decoder will complain, nothing more to count
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if pos + 2 > size:
            break
        length = int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:
            scans += 1
            in_scan = True
        pos += length
    return scans


_SEQUENTIAL_SOF = (0xC0, 0xC1)  # baseline and extended sequential, Huffman-coded
_OTHER_SOF = frozenset({0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_HEADER_SEGMENTS = 64  # real headers have a dozen; a file of empty segments goes to the count instead


def one_scan_jpeg(data: bytes) -> bool:
    """Whether the JPEG in `data` can only ever decode one scan: a sequential frame whose first
    scan holds every component. libjpeg then expects the end of the image, and stops with an
    error at any second scan (JERR_EOI_EXPECTED), so no scan count can make it slow. Reads the
    header segments only (by their lengths, up to the first scan); False when unsure.
    """
    pos, size, components = 2, len(data), None
    for _ in range(_HEADER_SEGMENTS):
        while pos < size and data[pos] == 0xFF and pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > size or data[pos] != 0xFF:
            return False
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _OTHER_SOF:
            return False  # progressive, lossless, hierarchical or arithmetic: counted instead
        if marker in _SEQUENTIAL_SOF and pos + 10 <= size:
            components = data[pos + 9]  # length(2) precision(1) height(2) width(2) → Nf
        elif marker == 0xDA:
            return components is not None and pos + 5 <= size and data[pos + 4] == components
        elif length < 2 or marker in (0xD8, 0xD9) or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            return False  # not a header segment here: leave it to the count
        pos += 2 + length
    return False


def check_jpeg_scans(data: bytes, pixels: int) -> None:
    """Refuse a JPEG whose scan count makes decoding absurdly expensive.

    Raises:
        InvalidInput: too many scans, or too many scans for its size.
    """
    scans = count_jpeg_scans(data)
    if scans > MAX_JPEG_SCANS or scans * pixels > MAX_JPEG_SCAN_PIXELS:
        raise InvalidInput(
            f"This progressive JPEG has {scans} scans; decoding it would take minutes of CPU "
            f"(the limit is {MAX_JPEG_SCANS}, fewer for large images). Re-save it as a normal JPEG or PNG."
        )
