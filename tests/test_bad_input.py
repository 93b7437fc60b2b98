"""Bad input: each case is a clear is_error result, and the server keeps serving."""

from __future__ import annotations

import base64
import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client
from PIL import Image

from tests.fakes.images import image_bytes


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming huge dimensions: a pixel bomb, cheap to make."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


Case = Callable[[Path], tuple[str, dict, str]]


def missing(d: Path):
    return "resize_image", {"image": str(d / "nope.png"), "width": 10}, "No file at"


def directory(d: Path):
    return "resize_image", {"image": str(d), "width": 10}, "is a directory"


def outside(d: Path):
    return "resize_image", {"image": "/etc/hostname", "width": 10}, "outside the directories"


def dotdot(d: Path):
    return "resize_image", {"image": str(d / ".." / ".." / "etc" / "hostname"), "width": 10}, "outside the directories"


def symlink(d: Path):
    (d / "link.png").symlink_to("/etc/hostname")
    return "resize_image", {"image": str(d / "link.png"), "width": 10}, "outside the directories"


def not_an_image(d: Path):
    (d / "notes.png").write_text("hello, I am text")
    return "resize_image", {"image": str(d / "notes.png"), "width": 10}, "not an image"


def truncated_jpeg(d: Path):
    data = image_bytes(400, 300, "jpeg")
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    return "resize_image", {"image": str(d / "cut.jpg"), "width": 10}, "truncated or corrupt"


def pixel_bomb(d: Path):
    (d / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    return "resize_image", {"image": str(d / "bomb.png"), "width": 10}, "safety limit"


def empty_file(d: Path):
    (d / "empty.png").write_bytes(b"")
    return "resize_image", {"image": str(d / "empty.png"), "width": 10}, "empty"


def svg(d: Path):
    (d / "x.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    return "resize_image", {"image": str(d / "x.svg"), "width": 10}, "SVG"


def loopback_url(d: Path):
    return "resize_image", {"image": "http://127.0.0.1:9/x.png", "width": 10}, "private, loopback"


def link_local_url(d: Path):
    return "resize_image", {"image": "http://169.254.169.254/latest/meta-data", "width": 10}, "private, loopback"


def ipv6_loopback_url(d: Path):
    return "resize_image", {"image": "http://[::1]:8080/x.png", "width": 10}, "private, loopback"


def localhost_name(d: Path):
    return "resize_image", {"image": "http://localhost/x.png", "width": 10}, "private, loopback"


def ftp_scheme(d: Path):
    return "resize_image", {"image": "ftp://example.com/x.png", "width": 10}, "Unsupported scheme"


def oversized_data_uri(d: Path):
    payload = base64.b64encode(b"\0" * (16 * 1024 * 1024)).decode()
    return "resize_image", {"image": "data:image/png;base64," + payload, "width": 10}, "larger than 15 MB"


def bad_base64(d: Path):
    return "resize_image", {"image": "data:image/png;base64,@@@not-base64@@@", "width": 10}, "not valid base64"


def wrong_data_mime(d: Path):
    return "resize_image", {"image": "data:text/plain;base64,aGVsbG8=", "width": 10}, "only image/*"


def unknown_result(d: Path):
    return "resize_image", {"image": "photo://results/doesnotexist", "width": 10}, "No result with id"


def unknown_job(d: Path):
    return "get_job", {"job_id": "j_000000000000"}, "No job with id"


def bad_colour(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "place_on_background", {"image": str(d / "a.png"), "background": "notacolour"}, "is not a colour"


def bad_box(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "crop_image", {"image": str(d / "a.png"), "box": [0, 0, 50, 50]}, "does not fit the 20×20 image"


def inverted_box(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "crop_image", {"image": str(d / "a.png"), "box": [10, 10, 5, 5]}, "does not fit"


def bad_ratio(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "place_on_background", {"image": str(d / "a.png"), "aspect_ratio": "wide"}, "is not W:H"


def no_size(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "resize_image", {"image": str(d / "a.png")}, "Give width, height or max_side"


def unknown_enum(d: Path):
    (d / "a.png").write_bytes(image_bytes(20, 20, "png"))
    return "convert_image", {"image": str(d / "a.png"), "format": "bmp"}, "format"


def wrong_type(d: Path):
    return "resize_image", {"image": 12345, "width": "ten"}, "cannot use these arguments: image"


def nul_byte(d: Path):
    return "resize_image", {"image": str(d / "a\x00.png"), "width": 10}, "NUL byte"


def windows_path(d: Path):
    return "resize_image", {"image": "C:\\Users\\me\\a.png", "width": 10}, "Windows path"


def device(d: Path):
    return "resize_image", {"image": "/dev/null", "width": 10}, "outside the directories"


def long_path(d: Path):
    return "resize_image", {"image": str(d / ("x" * 5000 + ".png")), "width": 10}, "Cannot"


CASES: list[Case] = [
    missing, directory, outside, dotdot, symlink, not_an_image, truncated_jpeg, pixel_bomb, empty_file, svg,
    loopback_url, link_local_url, ipv6_loopback_url, localhost_name, ftp_scheme, oversized_data_uri, bad_base64,
    wrong_data_mime, unknown_result, unknown_job, bad_colour, bad_box, inverted_box, bad_ratio, no_size,
    unknown_enum, wrong_type, nul_byte, windows_path, device, long_path,
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
async def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(
    client: Client, workdir: Path, case: Case
) -> None:
    if os.name == "nt" and case is windows_path:
        pytest.skip("a Windows path is valid on Windows")
    tool, arguments, expected = case(workdir)
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text
    assert expected.lower() in text.lower(), text
    # Still serving, and no partial file was written.
    (workdir / "ok.png").write_bytes(image_bytes(8, 8, "png"))
    ok = await client.call_tool("resize_image", {"image": str(workdir / "ok.png"), "width": 4})
    assert not ok.is_error, ok.content


async def test_reading_an_unknown_result_resource_is_an_error(client: Client) -> None:
    from mcp import MCPError

    with pytest.raises(MCPError, match="No result with id"):
        await client.read_resource("photo://results/nothere")


async def test_failed_jobs_leave_no_file(client: Client, workdir: Path, settings) -> None:
    data = image_bytes(400, 300, "jpeg")
    (workdir / "cut.jpg").write_bytes(data[: len(data) // 2])
    await client.call_tool("resize_image", {"image": str(workdir / "cut.jpg"), "width": 10})
    assert [p for p in settings.results_dir.iterdir()] == []


def test_cmyk_and_16bit_inputs_decode(tmp_path: Path) -> None:
    from tools.core import images

    buf = io.BytesIO()
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(buf, "JPEG")
    assert images.decode(buf.getvalue(), 10**8).mode == "RGB"
    buf = io.BytesIO()
    Image.new("I;16", (10, 10), 40000).save(buf, "PNG")
    grey = images.decode(buf.getvalue(), 10**8)
    assert grey.mode == "L" and grey.getpixel((0, 0)) == 40000 // 256
