"""Only allow-listed decoders ever see input bytes, and a JPEG cannot buy minutes of CPU.

- An EPS (or any format outside PNG, JPEG, WebP, GIF, TIFF, BMP, HEIC/HEIF, AVIF) is refused
  by content, whatever the data: URI's MIME type says, and no external program is started:
  the server runs with a fake `gs` first on its PATH that would leave a mark if it ran.
- A progressive JPEG with thousands of scans is refused before decoding, and other calls
  keep being answered meanwhile.
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult
from PIL import Image

from tests.fakes.images import image_bytes
from tests.support import stdio_params
from tools.core import decoders, images
from tools.core.errors import InvalidInput

MAX = 100_000_000
FORMATS_NAMED = "PNG, JPEG, WebP, GIF, TIFF, BMP, HEIC/HEIF"


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


def _saved(fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (32, 32), "red" if mode == "RGB" else 1).save(buf, fmt)
    return buf.getvalue()


def _data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def scan_bomb(side: int = 2000, extra_scans: int = 3000) -> bytes:
    """A progressive JPEG of a flat image whose smallest scan is repeated `extra_scans` times.

    libjpeg accepts the repeats (a warning only) and makes a full pass per scan: ~50 KB that
    cost seconds of CPU, and a few MB that cost minutes.
    """
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    sos = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    eoi = data.rindex(b"\xff\xd9")
    smallest = min((data[a:b] for a, b in zip(sos[1:], [*sos[2:], eoi], strict=True)), key=len)
    return data[:eoi] + smallest * extra_scans + data[eoi:]


# ------------------------------------------------------------------------------ the allow-list
@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("EPS", "RGB"), ("PDF", "RGB"), ("ICO", "RGB"), ("PCX", "RGB"), ("TGA", "RGB"), ("PPM", "RGB"), ("SGI", "RGB"),
     ("IM", "RGB"), ("DDS", "RGB"), ("QOI", "RGB"), ("JPEG2000", "RGB"), ("XBM", "1"), ("MSP", "1"), ("ICNS", "RGB"),
     ("SPIDER", "L")],
)  # fmt: skip
def test_formats_outside_the_allow_list_are_refused_naming_the_accepted_ones(fmt: str, mode: str) -> None:
    data = _saved(fmt, mode)
    for open_it in (images.probe, images.decode):
        with pytest.raises(InvalidInput) as refused:
            open_it(data, MAX)
        assert FORMATS_NAMED in str(refused.value), str(refused.value)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP", "AVIF"])
def test_the_allow_listed_formats_decode(fmt: str) -> None:
    if fmt not in decoders.accepted_formats():
        pytest.skip(f"this Pillow has no {fmt} decoder")
    img = images.decode(_saved(fmt), MAX)
    assert img.size == (32, 32)


async def test_an_eps_inside_a_png_data_uri_never_reaches_ghostscript(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mark = tmp_path / "gs-ran"
    fake_gs = bin_dir / "gs"
    fake_gs.write_text(f"#!/bin/sh\necho ran >> {mark}\nexit 1\n")
    fake_gs.chmod(0o755)
    params = stdio_params(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    eps = _data_uri(_saved("EPS"), "image/png")
    ok = _data_uri(image_bytes(20, 20, "png"))
    with anyio.fail_after(90):
        async with Client(params, read_timeout_seconds=60) as client:
            for tool, args in (
                ("convert_image", {"image": eps, "format": "png"}),
                ("resize_image", {"image": eps, "width": 10}),
                ("place_on_background", {"image": ok, "background": eps}),
                ("place_on_background", {"image": eps, "background": "white"}),
            ):
                result = await client.call_tool(tool, args)
                assert result.is_error, f"{tool}: {text_of(result)[:300]}"
                assert "not an image in an accepted format" in text_of(result) and FORMATS_NAMED in text_of(result), (
                    text_of(result)
                )
            alive = await client.call_tool("convert_image", {"image": ok, "format": "jpeg"})
            assert not alive.is_error, text_of(alive)
    assert not mark.exists(), "an external program was started to decode input"


# --------------------------------------------------------------------------- scan-count bombs
def test_scans_are_counted_without_decoding() -> None:
    assert decoders.count_jpeg_scans(image_bytes(64, 64, "jpeg")) == 1
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buf, "JPEG", progressive=True)
    assert decoders.count_jpeg_scans(buf.getvalue()) == 10  # libjpeg's standard progression
    assert decoders.count_jpeg_scans(scan_bomb(64, 500)) == 510
    # An EXIF thumbnail (a whole JPEG with its own scans, inside APP1) is not counted.
    exif = Image.Exif()
    exif[0x0112] = 1
    thumb_host = io.BytesIO()
    Image.new("RGB", (64, 64), "navy").save(thumb_host, "JPEG", exif=exif.tobytes() + image_bytes(16, 16, "jpeg"))
    assert decoders.count_jpeg_scans(thumb_host.getvalue()) == 1


def _baseline(mode: str = "RGB", side: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((side, side), 60).convert(mode).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_only_a_sequential_jpeg_whose_first_scan_holds_every_component_skips_the_count() -> None:
    for mode in ("RGB", "L", "CMYK"):
        assert decoders.one_scan_jpeg(_baseline(mode)), mode
    progressive = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(progressive, "JPEG", progressive=True)
    assert not decoders.one_scan_jpeg(progressive.getvalue())
    data = _baseline()
    sos = data.index(b"\xff\xda")
    # A first scan of one component out of three: later scans would each decode again.
    assert not decoders.one_scan_jpeg(data[: sos + 4] + b"\x01" + data[sos + 5 :])
    # More header segments than any encoder writes, or a header cut short: counted instead.
    assert not decoders.one_scan_jpeg(data[:2] + b"\xff\xfe\x00\x02" * 100 + data[2:])
    assert not decoders.one_scan_jpeg(data[: sos + 3])


def test_scans_appended_to_a_baseline_jpeg_stop_the_decoder_at_the_second() -> None:
    """libjpeg expects the end of the image after a sequential frame's only scan: a second one
    is an error at once, so hundreds appended cost nothing, and such a file is never counted."""
    data = _baseline(side=1500)
    sos, eoi = data.index(b"\xff\xda"), data.rindex(b"\xff\xd9")
    bomb = data[:eoi] + data[sos:eoi] * 300 + data[eoi:]
    assert decoders.count_jpeg_scans(bomb) == 301 and decoders.one_scan_jpeg(bomb)
    with pytest.raises(InvalidInput, match="truncated or corrupt"):
        images.decode(bomb, MAX)


def test_a_scan_bomb_is_refused_before_decoding_and_a_normal_progressive_jpeg_is_not() -> None:
    with pytest.raises(InvalidInput, match="3010 scans"):
        images.probe(scan_bomb(), MAX)
    buf = io.BytesIO()
    Image.effect_noise((1200, 900), 50).convert("RGB").save(buf, "JPEG", progressive=True)
    assert images.decode(buf.getvalue(), MAX).size == (1200, 900)


async def test_a_scan_bomb_is_a_clear_error_and_other_calls_keep_being_answered(client: Client, workdir: Path) -> None:
    (workdir / "ok.png").write_bytes(image_bytes(40, 30, "png"))
    bomb = _data_uri(scan_bomb(), "image/jpeg")
    outcomes: dict[str, CallToolResult] = {}

    async def call(name: str, tool: str, args: dict[str, object]) -> None:
        outcomes[name] = await client.call_tool(tool, args)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(2):  # two at once: the report's "two such calls stall everyone"
                tg.start_soon(call, f"bomb{i}", "convert_image", {"image": bomb, "format": "png"})
            tg.start_soon(call, "ok", "resize_image", {"image": str(workdir / "ok.png"), "width": 20})
    for i in range(2):
        assert outcomes[f"bomb{i}"].is_error and "scans" in text_of(outcomes[f"bomb{i}"])
    assert not outcomes["ok"].is_error, text_of(outcomes["ok"])


async def test_a_slow_but_allowed_decode_does_not_hold_up_other_calls(client: Client, workdir: Path) -> None:
    """Decoding runs in worker threads: calls that need no image are answered meanwhile."""
    heavy = scan_bomb(side=4000, extra_scans=85)  # 16 MP × 95 scans: inside the budget, still slow
    assert decoders.count_jpeg_scans(heavy) * 16_000_000 <= decoders.MAX_JPEG_SCAN_PIXELS
    finished: list[str] = []

    async def convert() -> None:
        result = await client.call_tool("convert_image", {"image": _data_uri(heavy, "image/jpeg"), "format": "jpeg"})
        assert not result.is_error, text_of(result)
        finished.append("convert")

    async def light() -> None:
        for _ in range(3):
            assert (await client.list_tools()).tools
        finished.append("light")

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(convert)
            tg.start_soon(light)
    assert finished == ["light", "convert"]
