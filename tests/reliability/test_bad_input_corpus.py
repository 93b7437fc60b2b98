"""Bad-input corpus through the real `photo-mcp` stdio server.

Every case is one tool call on a long-lived subprocess (started once for the module, so the
corpus also shows that one server survives all of it). A case either must succeed (odd but
valid input: an animated GIF, a CMYK JPEG, a unicode file name...) or must fail with a clear
`is_error` result containing a keyword; after every case the server must still answer
tools/list and a real tool call. Failures name the case (`test_bad_input[path-symlink-chain]`).

Two servers, both stdio subprocesses living for the whole module:

- `strict`: the production URL policy (private/loopback/link-local refused), local paths only
  inside `<tmp>/work`, no Aluo/YouCam keys, Removedo pointed at the fake on loopback (to show
  that a >10 MB photo is fitted before upload and that private URLs are refused before any
  provider call).
- `net`: `PHOTO_MCP_ALLOW_PRIVATE_URLS=1`, so a loopback server can play "the internet" and
  serve endless redirects, huge, compressed and slow bodies. Redirects *to* private addresses
  cannot be shown end to end (every loopback address is private), so they are tested at the
  unit level at the bottom of this file, with a `SafeFetcher` whose address policy treats one
  loopback address as public.

Below the tool level, `test_protocol_garbage_over_stdio` writes raw JSON-RPC lines that no SDK
client would send (invalid JSON, wrong shapes, a lone UTF-16 surrogate, a 2 MB line): the
server must answer what it can and keep serving.

Hardlinks: a path check on the resolved path cannot tell that `work/hard.png` is a hardlink to
a file outside the allowed dirs — it is an ordinary directory entry of the allowed dir. Making
one needs write access to the allowed dir (and, with Linux's `fs.protected_hardlinks`, owning
or being able to write the target), so it grants nothing its maker could not already read; the
case `path-hardlink` documents that it is read like any other file there.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import socket
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp_types import CallToolResult
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.support import stdio_params
from tools.core.errors import InvalidInput
from tools.core.fetch import SafeFetcher, _is_public
from tools.core.results import TEMP_PREFIX

MB = 1024 * 1024
NET_MAX_BYTES = 1 * MB  # the `net` server's PHOTO_MCP_MAX_DOWNLOAD_BYTES
NET_TIMEOUT_S = 2  # the `net` server's PHOTO_MCP_DOWNLOAD_TIMEOUT
UNICODE_NAME = "фото 照片 🌄 é.png"
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ------------------------------------------------------------------------------------ the files
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming `width`×`height` (a pixel bomb, a few bytes on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF header is patched to claim `width`×`height`."""
    data = bytearray(image_bytes(16, 16, "jpeg"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_claiming(width: int, height: int) -> bytes:
    """A 1×1 GIF whose logical screen claims `width`×`height`."""
    buf = io.BytesIO()
    Image.new("P", (1, 1)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def _encoded(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _heic() -> bytes | None:
    try:
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(Image.new("RGB", (32, 24), GREEN)).save(buf, quality=90)
        return buf.getvalue()
    except Exception:  # no HEVC encoder in this build of libheif: the case is skipped, see below
        return None


HEIC = _heic()


def make_files(work: Path, outside: Path) -> None:
    """Everything the cases read, made with Pillow (and a few hand-made headers)."""
    (outside / "secret.png").write_bytes(image_bytes(16, 16, "png"))
    w = work
    (w / "ok.png").write_bytes(image_bytes(8, 8, "png"))
    (w / "a.png").write_bytes(image_bytes(40, 30, "png"))
    (w / "sub").mkdir()
    # paths
    (w / "link-out.png").symlink_to(outside / "secret.png")
    (w / "link-dir").symlink_to(outside, target_is_directory=True)
    (w / "chain-3.png").symlink_to(outside / "secret.png")
    (w / "chain-2.png").symlink_to(w / "chain-3.png")
    (w / "chain-1.png").symlink_to(w / "chain-2.png")
    (w / "loop-1").symlink_to(w / "loop-2")
    (w / "loop-2").symlink_to(w / "loop-1")
    (w / "dangling.png").symlink_to(w / "gone.png")
    (w / "link-in.png").symlink_to(w / "a.png")
    (w / "link-dev.png").symlink_to("/dev/zero")
    (w / "link-environ.png").symlink_to("/proc/self/environ")
    os.link(outside / "secret.png", w / "hard.png")
    os.mkfifo(w / "fifo.png")  # opening it for reading would block forever
    (w / UNICODE_NAME).write_bytes(image_bytes(24, 24, "png"))
    (w / "new\nline.png").write_bytes(image_bytes(24, 24, "png"))
    # files
    (w / "empty.png").write_bytes(b"")
    jpeg = image_bytes(400, 300, "jpeg")
    (w / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    png = image_bytes(400, 300, "png")
    (w / "cut.png").write_bytes(png[: len(png) // 2])
    # Fixed garbage, never random: 64 random bytes form a chunk header (4 word characters) about
    # once in 270 runs, and that file then reads as a truncated PNG instead (a different message).
    (w / "header-only.png").write_bytes(b"\x89PNG\r\n\x1a\n" + hashlib.sha256(b"not a png chunk").digest() * 2)
    (w / "png-named.jpg").write_bytes(image_bytes(30, 20, "png"))
    (w / "jpeg-named.webp").write_bytes(image_bytes(30, 20, "jpeg"))
    (w / "notes.png").write_text("hello, I am a text file")
    (w / "page.png").write_text("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
    (w / "doc.jpg").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.txt", "PK polyglot payload")
    (w / "archive.jpg").write_bytes(archive.getvalue())
    (w / "polyglot.jpg").write_bytes(image_bytes(30, 20, "jpeg") + archive.getvalue())
    (w / "x.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    (w / "prolog.png").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    (w / "anim.gif").write_bytes(
        _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    )
    (w / "grey16.png").write_bytes(_encoded(Image.new("I;16", (12, 12), 40000), "PNG"))
    (w / "cmyk.jpg").write_bytes(_encoded(Image.new("CMYK", (12, 12), (0, 255, 255, 0)), "JPEG"))
    (w / "pages.tiff").write_bytes(_encoded(frames[1], "TIFF", save_all=True, append_images=[frames[0], frames[2]]))
    if HEIC is not None:
        (w / "photo.heic").write_bytes(HEIC)
    (w / "square.png").write_bytes(image_bytes(200, 200, "png", transparent=True))
    (w / "tall.png").write_bytes(_encoded(Image.new("RGB", (1, 3000), RED), "PNG"))
    (w / "thin.png").write_bytes(_encoded(Image.new("L", (60_000, 1), 128), "PNG"))
    (w / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (w / "bomb.jpg").write_bytes(jpeg_claiming(65_000, 65_000))
    (w / "bomb.gif").write_bytes(gif_claiming(65_535, 65_535))
    (w / "zero.png").write_bytes(png_claiming(0, 10))
    noise = Image.frombytes("RGB", (2000, 2000), os.urandom(2000 * 2000 * 3))
    (w / "big.png").write_bytes(_encoded(noise, "PNG", compress_level=1))  # ~12 MB: incompressible
    assert (w / "big.png").stat().st_size > 10 * MB
    with open(w / "sparse.png", "wb") as f:  # 201 MB on paper, nothing on disk
        f.write(image_bytes(8, 8, "png"))
        f.truncate(201 * MB)


# ------------------------------------------------------------------ "the internet" (net server)
def network_app(stop: anyio.Event) -> Starlette:
    png = image_bytes(20, 10, "png")

    async def img(request: Request) -> Response:
        return Response(png, media_type="image/png")

    async def png_as_html(request: Request) -> Response:
        return Response(png, media_type="text/html")

    async def html(request: Request) -> Response:
        return Response("<html><body>Not found, sorry</body></html>", media_type="text/html")

    async def not_found(request: Request) -> Response:
        return Response("nope", status_code=404)

    async def server_error(request: Request) -> Response:
        return Response("boom", status_code=500)

    async def redirect(request: Request) -> Response:
        return RedirectResponse(request.query_params["to"], status_code=302)

    async def no_location(request: Request) -> Response:
        return Response(status_code=302)

    async def loop(request: Request) -> Response:
        return RedirectResponse(f"/loop?n={int(request.query_params.get('n', 0)) + 1}", status_code=302)

    async def huge_declared(request: Request) -> Response:
        return Response(b"\0" * (2 * NET_MAX_BYTES), media_type="image/png")

    async def huge_chunked(request: Request) -> Response:
        async def body() -> Any:
            for _ in range(64):
                yield b"\0" * 65536  # 4 MB, no Content-Length

        return StreamingResponse(body(), media_type="image/png")

    async def gzip_bomb(request: Request) -> Response:
        # ~100 KB on the wire, 100 MB once decoded: the byte cap counts decoded bytes.
        body = gzip.compress(b"\0" * (100 * MB), compresslevel=9)
        return Response(body, media_type="image/png", headers={"content-encoding": "gzip"})

    async def slow_body(request: Request) -> Response:
        async def body() -> Any:
            yield png[:16]
            await stop.wait()  # never finishes while the test runs: the download timeout must fire

        return StreamingResponse(body(), media_type="image/png")

    async def slow_headers(request: Request) -> Response:
        await stop.wait()
        return Response(png, media_type="image/png")

    return Starlette(
        routes=[
            Route("/img.png", img),
            Route("/png-as-html", png_as_html),
            Route("/html", html),
            Route("/404", not_found),
            Route("/500", server_error),
            Route("/redirect", redirect),
            Route("/no-location", no_location),
            Route("/loop", loop),
            Route("/huge-declared", huge_declared),
            Route("/huge-chunked", huge_chunked),
            Route("/gzip-bomb", gzip_bomb),
            Route("/slow-body", slow_body),
            Route("/slow-headers", slow_headers),
        ]
    )


# ------------------------------------------------------------------------------------ the cases
@dataclass
class Corpus:
    portal: BlockingPortal
    clients: dict[str, Client]
    work: Path
    outside: Path
    results: dict[str, Path]
    net: str  # base URL of network_app on loopback
    removedo: FakeRemovedo

    def w(self, name: str) -> str:
        return str(self.work / name)


Args = Callable[[Corpus], dict[str, Any]]
Check = Callable[[Corpus, CallToolResult], None]


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    args: Args
    expect: str | tuple[str, ...] | None  # keyword(s) of the error message, any of them; None: must succeed
    server: str = "strict"
    check: Check | None = None
    skip: str | None = None
    timeout: float = 60


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


def out_image(result: CallToolResult) -> Image.Image:
    return Image.open(result.structured_content["images"][0]["path"])


def first_pixel_is(colour: tuple[int, ...], tolerance: int = 8) -> Check:
    def check(c: Corpus, result: CallToolResult) -> None:
        px = out_image(result).convert("RGB").getpixel((0, 0))
        assert all(abs(a - b) <= tolerance for a, b in zip(px, colour, strict=True)), (px, colour)

    return check


def grey_is(value: int) -> Check:
    def check(c: Corpus, result: CallToolResult) -> None:
        img = out_image(result)
        assert img.mode == "L" and abs(img.getpixel((0, 0)) - value) <= 1, (img.mode, img.getpixel((0, 0)))

    return check


def no_zip_inside(c: Corpus, result: CallToolResult) -> None:
    data = Path(result.structured_content["images"][0]["path"]).read_bytes()
    assert b"PK\x03\x04" not in data and b"polyglot payload" not in data  # re-encoded, nothing carried over


def removedo_got_fitted_upload(c: Corpus, result: CallToolResult) -> None:
    assert result.structured_content["provider"] == "removedo"
    uploads = [r.files["image_file"][2] for r in c.removedo.requests if "image_file" in r.files]
    assert uploads, "Removedo received no upload"
    assert len(uploads[-1]) <= 10 * MB, len(uploads[-1])
    assert max(Image.open(io.BytesIO(uploads[-1])).size) <= 4096


def removedo_not_called(c: Corpus, result: CallToolResult) -> None:
    assert not any(r.method == "POST" and r.form.get("image_url") for r in c.removedo.requests)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def resize(ref: Callable[[Corpus], str], **extra: Any) -> Args:
    return lambda c: {"image": ref(c), "max_side": 8, **extra}


def W(name: str) -> Callable[[Corpus], str]:
    return lambda c: c.w(name)


def S(text: str) -> Callable[[Corpus], str]:
    return lambda c: text


def N(path: str) -> Callable[[Corpus], str]:
    return lambda c: c.net + path


OUTSIDE = "outside the directories"
PRIVATE = "private, loopback or link-local"
UNREACHABLE = "the server was unreachable, too slow or answered with an error (which one is not shown)"
A = W("a.png")
PNG = image_bytes(20, 20, "png")

PATHS = [
    Case("path-missing", "resize_image", resize(W("nope.png")), "No file at"),
    Case("path-directory", "resize_image", resize(W("sub")), "is a directory"),
    Case("path-fifo", "resize_image", resize(W("fifo.png")), "not a regular file"),
    Case("path-device", "resize_image", resize(S("/dev/zero")), OUTSIDE),
    Case("path-proc-environ", "resize_image", resize(S("/proc/self/environ")), OUTSIDE),
    Case("path-proc-root", "resize_image", resize(lambda c: f"/proc/self/root{c.outside}/secret.png"), OUTSIDE),
    Case("path-etc-passwd", "resize_image", resize(S("/etc/passwd")), OUTSIDE),
    Case("path-dotdot", "resize_image", resize(lambda c: f"{c.work}/../{c.outside.name}/secret.png"), OUTSIDE),
    Case("path-dotdot-deep", "resize_image", resize(lambda c: c.w("sub/../../../../../../../etc/passwd")), OUTSIDE),
    Case("path-relative-dotdot", "resize_image", resize(lambda c: f"../../../{c.outside.name}/secret.png"), OUTSIDE),
    Case("path-tilde", "resize_image", resize(S("~/.bashrc")), OUTSIDE),
    Case("path-symlink-out", "resize_image", resize(W("link-out.png")), OUTSIDE),
    Case("path-symlinked-dir", "resize_image", resize(W("link-dir/secret.png")), OUTSIDE),
    Case("path-symlink-chain", "resize_image", resize(W("chain-1.png")), OUTSIDE),
    Case("path-symlink-loop", "resize_image", resize(W("loop-1")), "Symlink loop"),
    Case("path-symlink-dangling", "resize_image", resize(W("dangling.png")), "No file at"),
    Case("path-symlink-device", "resize_image", resize(W("link-dev.png")), OUTSIDE),
    Case("path-symlink-environ", "resize_image", resize(W("link-environ.png")), OUTSIDE),
    Case("path-symlink-inside", "resize_image", resize(W("link-in.png")), None),
    Case("path-hardlink", "resize_image", resize(W("hard.png")), None),  # see the module docstring
    Case("path-file-uri-dotdot", "resize_image", resize(lambda c: f"file://{c.work}/../{c.outside.name}/secret.png"),
         OUTSIDE),
    Case("path-file-uri-remote-host", "resize_image", resize(S("file://fileserver/etc/passwd")), "must be local"),
    Case("path-file-uri-nul", "resize_image", resize(lambda c: f"file://{c.work}/a%00.png"), "null byte"),
    Case("path-windows-drive", "resize_image", resize(S("C:\\Users\\me\\a.png")), "Windows path"),
    Case("path-windows-forward", "resize_image", resize(S("C:/Users/me/a.png")), "Windows path"),
    Case("path-windows-file-uri", "resize_image", resize(S("file:///C:/Users/me/a.png")), "Windows path"),
    Case("path-windows-unc", "resize_image", resize(S("\\\\server\\share\\a.png")), "No file at"),
    Case("path-very-long-name", "resize_image", resize(lambda c: c.w("x" * 5000 + ".png")), "Cannot"),
    Case("path-very-deep", "resize_image", resize(lambda c: c.w("d/" * 3000 + "a.png")), "Cannot"),
    Case("path-nul-byte", "resize_image", resize(lambda c: c.w("a\x00.png")), "NUL byte"),
    Case("path-blank", "resize_image", resize(S("   ")), "empty"),
    Case("path-empty-string", "resize_image", resize(S("")), "at least 1 character"),
    Case("path-unicode-name", "resize_image", resize(W(UNICODE_NAME)), None),
    Case("path-unicode-file-uri", "resize_image",
         resize(lambda c: "file://" + "/".join(map(_quote, str(c.work / UNICODE_NAME).split("/")))), None),
    Case("path-newline-in-name", "resize_image", resize(W("new\nline.png")), None),
    Case("path-unknown-result", "resize_image", resize(S("photo://results/doesnotexist")), "No result with id"),
    Case("path-result-traversal", "resize_image", resize(S("photo://results/../../etc/passwd")), "No result with id"),
    Case("path-unknown-photo-uri", "resize_image", resize(S("photo://jobs/x")), "Unknown photo:// URI"),
    Case("path-outside-as-background", "place_on_background",
         lambda c: {"image": c.w("a.png"), "background": f"{c.outside}/secret.png"}, OUTSIDE),
    Case("path-outside-as-mask", "remove_object",
         lambda c: {"image": c.w("a.png"), "mask": f"{c.outside}/secret.png", "provider": "local"}, OUTSIDE),
]  # fmt: skip

FILES = [
    Case("file-empty", "resize_image", resize(W("empty.png")), "empty"),
    Case("file-truncated-jpeg", "resize_image", resize(W("cut.jpg")), "truncated or corrupt"),
    Case("file-truncated-png", "resize_image", resize(W("cut.png")), "truncated or corrupt"),
    Case("file-garbage-after-png-signature", "resize_image", resize(W("header-only.png")), "not an image"),
    Case("file-png-named-jpg", "resize_image", resize(W("png-named.jpg")), None),
    Case("file-jpeg-named-webp", "resize_image", resize(W("jpeg-named.webp")), None),
    Case("file-text-named-png", "resize_image", resize(W("notes.png")), "not an image"),
    Case("file-html-named-png", "resize_image", resize(W("page.png")), "not an image"),
    Case("file-pdf-named-jpg", "resize_image", resize(W("doc.jpg")), "not an image"),
    Case("file-zip-named-jpg", "resize_image", resize(W("archive.jpg")), "not an image"),
    Case("file-polyglot-jpeg-zip", "resize_image", resize(W("polyglot.jpg")), None, check=no_zip_inside),
    Case("file-svg", "resize_image", resize(W("x.svg")), "SVG"),
    Case("file-svg-xml-prolog", "resize_image", resize(W("prolog.png")), "SVG"),
    Case("file-animated-gif-first-frame", "resize_image", resize(W("anim.gif")), None, check=first_pixel_is(RED)),
    Case("file-multipage-tiff-first-page", "resize_image", resize(W("pages.tiff")), None,
         check=first_pixel_is(GREEN)),
    Case("file-16bit-png", "resize_image", resize(W("grey16.png")), None, check=grey_is(40000 // 256)),
    Case("file-cmyk-jpeg", "resize_image", resize(W("cmyk.jpg")), None, check=first_pixel_is(RED, 12)),
    Case("file-heic", "resize_image", resize(W("photo.heic")), None, check=first_pixel_is(GREEN, 12),
         skip=None if HEIC else "pillow-heif cannot encode HEIC in this build (decoding is still supported)"),
    Case("file-huge-dimensions-thin", "resize_image", resize(W("thin.png")), None),
    Case("file-pixel-bomb-png", "resize_image", resize(W("bomb.png")), "safety limit"),
    Case("file-pixel-bomb-jpeg", "resize_image", resize(W("bomb.jpg")), "safety limit"),
    Case("file-pixel-bomb-gif", "resize_image", resize(W("bomb.gif")), "safety limit"),
    Case("file-zero-width", "resize_image", resize(W("zero.png")), "not an image"),
    Case("file-over-10mb-local", "resize_image", resize(W("big.png")), None),
    Case("file-over-10mb-provider-fitted", "remove_background",
         lambda c: {"image": c.w("big.png"), "provider": "removedo"}, None, check=removedo_got_fitted_upload),
    Case("file-over-200mb", "resize_image", resize(W("sparse.png")), "the limit is 200 MB"),
]  # fmt: skip

URLS = [
    Case("url-ftp", "resize_image", resize(S("ftp://example.com/a.png")), "Unsupported scheme"),
    Case("url-gopher", "resize_image", resize(S("gopher://example.com/a")), "Unsupported scheme"),
    Case("url-s3", "resize_image", resize(S("s3://bucket/a.png")), "Unsupported scheme"),
    Case("url-file-etc", "resize_image", resize(S("file:///etc/passwd")), OUTSIDE),
    Case("url-loopback", "resize_image", resize(S("http://127.0.0.1:9/a.png")), PRIVATE),
    Case("url-loopback-other", "resize_image", resize(S("http://127.8.9.10/a.png")), PRIVATE),
    Case("url-private-10", "resize_image", resize(S("http://10.0.0.1/a.png")), PRIVATE),
    Case("url-private-192-168", "resize_image", resize(S("https://192.168.1.1/a.png")), PRIVATE),
    Case("url-private-172-16", "resize_image", resize(S("http://172.16.5.4/a.png")), PRIVATE),
    Case("url-cgnat-100-64", "resize_image", resize(S("http://100.64.0.1/a.png")), PRIVATE),
    Case("url-unspecified-0000", "resize_image", resize(S("http://0.0.0.0:8000/a.png")), PRIVATE),
    Case("url-link-local-metadata", "resize_image", resize(S("http://169.254.169.254/latest/meta-data/")), PRIVATE),
    Case("url-ipv6-loopback", "resize_image", resize(S("http://[::1]:8080/a.png")), PRIVATE),
    Case("url-ipv6-mapped-loopback", "resize_image", resize(S("http://[::ffff:127.0.0.1]/a.png")), PRIVATE),
    Case("url-ipv6-unique-local", "resize_image", resize(S("http://[fd00::1]/a.png")), PRIVATE),
    Case("url-ipv6-link-local-zone", "resize_image", resize(S("http://[fe80::1%25lo]/a.png")),
         PRIVATE),
    Case("url-multicast", "resize_image", resize(S("http://224.0.0.1/a.png")), PRIVATE),
    Case("url-decimal-ip", "resize_image", resize(S("http://2130706433/a.png")), PRIVATE),
    Case("url-hex-short-ip", "resize_image", resize(S("http://0x7f.1/a.png")), PRIVATE),
    Case("url-name-localhost", "resize_image", resize(S("http://localhost:8080/a.png")), PRIVATE),
    Case("url-name-hostname", "resize_image", resize(lambda c: f"http://{_local_name()}/a.png"), PRIVATE),
    Case("url-userinfo-trick", "resize_image", resize(S("http://example.com@127.0.0.1/a.png")), PRIVATE),
    Case("url-no-host", "resize_image", resize(S("http:///a.png")), "has no host"),
    Case("url-bad-port", "resize_image", resize(S("http://example.com:99999/a.png")), "Malformed URL"),
    Case("url-bad-ipv6", "resize_image", resize(S("http://[::1/a.png")), "Malformed URL"),
    # Unresolvable and private hosts get one message: no oracle for which internal names exist.
    Case("url-unresolvable", "resize_image", resize(S("http://no-such-host.invalid/a.png")), PRIVATE),
    Case("url-private-passed-to-provider", "remove_background",
         lambda c: {"image": "http://169.254.169.254/latest/meta-data/", "provider": "removedo"}, PRIVATE,
         check=removedo_not_called),
    # On the `net` server loopback plays the public internet.
    Case("net-ok", "resize_image", resize(N("/img.png")), None, server="net"),
    Case("net-redirect-ok", "resize_image", resize(N("/redirect?to=/img.png")), None, server="net"),
    Case("net-png-labelled-html", "resize_image", resize(N("/png-as-html")), None, server="net"),
    Case("net-endless-redirects", "resize_image", resize(N("/loop")), "redirected more than 5 times", server="net"),
    # Every network or server failure gets one message (no port-scan oracle): UNREACHABLE.
    Case("net-redirect-no-location", "resize_image", resize(N("/no-location")), UNREACHABLE, server="net"),
    Case("net-redirect-to-file", "resize_image", resize(N("/redirect?to=file:///etc/passwd")), "Only http(s)",
         server="net"),
    Case("net-redirect-to-ftp", "resize_image", resize(N("/redirect?to=ftp://example.com/a.png")), "Only http(s)",
         server="net"),
    Case("net-huge-declared", "resize_image", resize(N("/huge-declared")), "larger than", server="net"),
    Case("net-huge-chunked", "resize_image", resize(N("/huge-chunked")), "larger than", server="net"),
    Case("net-gzip-bomb", "resize_image", resize(N("/gzip-bomb")), "larger than", server="net"),
    Case("net-slow-body", "resize_image", resize(N("/slow-body")), UNREACHABLE, server="net"),
    Case("net-slow-headers", "resize_image", resize(N("/slow-headers")), UNREACHABLE, server="net"),
    Case("net-404", "resize_image", resize(N("/404")), UNREACHABLE, server="net"),
    Case("net-500", "resize_image", resize(N("/500")), UNREACHABLE, server="net"),
    Case("net-html-page", "resize_image", resize(N("/html")), "not an image", server="net"),
    Case("net-refused-port", "resize_image", resize(lambda c: f"http://127.0.0.1:{_closed_port()}/a.png"),
         UNREACHABLE, server="net"),
]  # fmt: skip

DATA = [
    Case("data-ok", "resize_image", resize(S(data_uri(PNG))), None),
    Case("data-wrong-declared-type", "resize_image", resize(S(data_uri(image_bytes(20, 20, "jpeg")))), None),
    Case("data-base64-with-newlines", "resize_image",
         resize(S("data:image/png;base64," + base64.encodebytes(PNG).decode())), None),
    Case("data-bad-base64", "resize_image", resize(S("data:image/png;base64,@@@not-base64@@@")), "not valid base64"),
    Case("data-bad-padding", "resize_image", resize(S("data:image/png;base64,iVBORw0KGgo")), "not valid base64"),
    Case("data-text-plain", "resize_image", resize(S("data:text/plain;base64,aGVsbG8=")), "only image/*"),
    Case("data-html", "resize_image", resize(S(data_uri(b"<html></html>", "text/html"))), "only image/*"),
    Case("data-no-type", "resize_image", resize(S("data:;base64,aGVsbG8=")), "only image/*"),
    Case("data-svg", "resize_image", resize(S(data_uri(b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                                                       "image/svg+xml"))), "SVG"),
    Case("data-not-an-image", "resize_image", resize(S(data_uri(b"just some bytes"))), "not an image"),
    Case("data-empty", "resize_image", resize(S("data:image/png;base64,")), "empty"),
    Case("data-no-comma", "resize_image", resize(S("data:image/png;base64")), "no comma"),
    Case("data-not-base64", "resize_image", resize(S("data:image/png,rawbytes")), "Only base64"),
    Case("data-oversize", "resize_image", resize(lambda c: data_uri(b"\0" * (16 * MB))), "larger than 15 MB"),
    Case("data-over-schema-limit", "resize_image", resize(lambda c: "data:image/png;base64," + "A" * 24_000_100),
         "at most 24000000"),
]  # fmt: skip

PROMPT_UNICODE = "Ein Becher ☕ на столе 桌子上 على الطاولة \u200d👩\u200d👩\u200d👧 \u202eevil"
PARAMS = [
    Case("param-width-zero", "resize_image", lambda c: {"image": c.w("a.png"), "width": 0}, "greater than or equal"),
    Case("param-width-huge", "resize_image", lambda c: {"image": c.w("a.png"), "width": 10**6}, "less than or equal"),
    Case("param-width-string", "resize_image", lambda c: {"image": c.w("a.png"), "width": "ten"}, "valid integer"),
    Case("param-width-float", "resize_image", lambda c: {"image": c.w("a.png"), "width": 4.5}, "fractional part"),
    Case("param-width-object", "resize_image", lambda c: {"image": c.w("a.png"), "width": {"px": 4}},
         "valid integer"),
    Case("param-image-number", "resize_image", lambda c: {"image": 12345, "width": 4}, "valid string"),
    Case("param-image-list", "resize_image", lambda c: {"image": [c.w("a.png")], "width": 4}, "valid string"),
    Case("param-no-size", "resize_image", lambda c: {"image": c.w("a.png")}, "Give width, height or max_side"),
    Case("param-missing-image", "resize_image", lambda c: {"width": 4}, "image is required"),
    Case("param-extra-field-refused", "resize_image", lambda c: {"image": c.w("a.png"), "width": 4, "evil": "x"},
         "has no argument 'evil'"),
    Case("param-crop-three-numbers", "crop_image", lambda c: {"image": c.w("a.png"), "box": [0, 0, 5]}, "at least 4"),
    Case("param-crop-strings", "crop_image", lambda c: {"image": c.w("a.png"), "box": ["a", "b", "c", "d"]},
         "valid integer"),
    Case("param-crop-outside", "crop_image", lambda c: {"image": c.w("a.png"), "box": [0, 0, 500, 500]},
         "does not fit"),
    Case("param-crop-inverted", "crop_image", lambda c: {"image": c.w("a.png"), "box": [10, 10, 5, 5]},
         "does not fit"),
    Case("param-crop-negative", "crop_image", lambda c: {"image": c.w("a.png"), "box": [-10, -10, 5, 5]},
         "does not fit"),
    Case("param-convert-unknown-format", "convert_image", lambda c: {"image": c.w("a.png"), "format": "bmp"},
         "must be one of"),
    Case("param-convert-quality-zero", "convert_image",
         lambda c: {"image": c.w("a.png"), "format": "jpeg", "quality": 0}, "greater than or equal to 1"),
    Case("param-convert-max-bytes-tiny", "convert_image", lambda c: {"image": c.w("a.png"), "max_bytes": 10},
         "greater than or equal to 1024"),
    Case("param-enhance-scale-3", "enhance_photo", lambda c: {"image": c.w("a.png"), "scale": 3}, "must be one of"),
    Case("param-place-margin", "place_on_background", lambda c: {"image": c.w("a.png"), "margin": 0.9},
         "less than or equal to 0.45"),
    Case("param-place-size-small", "place_on_background", lambda c: {"image": c.w("a.png"), "size": 4},
         "greater than or equal to 16"),
    Case("param-place-bad-colour", "place_on_background", lambda c: {"image": c.w("a.png"), "background": "notacolour"},
         "is not a colour"),
    Case("param-place-unicode-colour", "place_on_background", lambda c: {"image": c.w("a.png"), "background": "белый"},
         "is not a colour"),
    Case("param-place-ratio-zero", "place_on_background", lambda c: {"image": c.w("a.png"), "aspect_ratio": "1:0"},
         "is not W:H"),
    Case("param-place-ratio-absurd", "place_on_background",
         lambda c: {"image": c.w("a.png"), "aspect_ratio": "100000:1"}, "is not W:H"),
    Case("param-resize-to-gigapixels", "resize_image", lambda c: {"image": c.w("tall.png"), "width": 16384},
         "MP limit"),
    Case("param-resize-both-sides-max", "resize_image",
         lambda c: {"image": c.w("a.png"), "width": 16384, "height": 16384}, "MP limit"),
    Case("param-place-extreme-ratio", "place_on_background",
         lambda c: {"image": c.w("square.png"), "aspect_ratio": "999:1", "margin": 0.45}, "more extreme than 20:1"),
    Case("param-blur-strength", "blur_background", lambda c: {"image": c.w("a.png"), "strength": 2},
         "less than or equal to 1"),
    Case("param-remove-object-nothing", "remove_object", lambda c: {"image": c.w("a.png")}, "exactly one of mask"),
    Case("param-remove-object-both", "remove_object",
         lambda c: {"image": c.w("a.png"), "mask": c.w("a.png"), "boxes": [[0, 0, 2, 2]]}, "exactly one of mask"),
    Case("param-remove-object-bad-box", "remove_object", lambda c: {"image": c.w("a.png"), "boxes": [[1, 2, 3]]},
         "at least 4"),
    Case("param-remove-object-provider", "remove_object",
         lambda c: {"image": c.w("a.png"), "boxes": [[0, 0, 2, 2]], "provider": "aluo"}, "must be one of"),
    Case("param-background-provider", "remove_background", lambda c: {"image": c.w("a.png"), "provider": "magic"},
         "must be one of"),
    Case("param-job-id-too-long", "get_job", lambda c: {"job_id": "j_" + "0" * 100}, "at most 64"),
    Case("param-job-unknown", "get_job", lambda c: {"job_id": "j_000000000000"}, "No job with id"),
    Case("param-job-wait-negative", "get_job", lambda c: {"job_id": "j_000000000000", "wait_seconds": -1},
         "greater than or equal to 0"),
    Case("param-cancel-unknown", "cancel_job", lambda c: {"job_id": "nope"}, "No job with id"),
    Case("param-styles-unknown-feature", "list_styles", lambda c: {"feature": "tattoo", "style_group_id": 1},
         "must be one of"),
    Case("param-styles-no-key", "list_styles", lambda c: {"feature": "wig", "style_group_id": 1}, "YOUCAM_API_KEY"),
    Case("param-hair-negative-style", "try_hairstyle", lambda c: {"image": c.w("a.png"), "style_id": -1},
         "greater than or equal to 0"),
    Case("param-hair-style-string", "try_hairstyle", lambda c: {"image": c.w("a.png"), "style_id": "abc"},
         "valid integer"),
    Case("param-credits-unknown-provider", "check_credits", lambda c: {"provider": "bogus"}, "must be one of"),
    Case("param-edit-100k-prompt", "edit_photo", lambda c: {"prompt": "x" * 100_000, "images": [c.w("a.png")]},
         "at most 4000 characters"),
    Case("param-edit-no-key", "edit_photo", lambda c: {"prompt": "make it blue", "images": [c.w("a.png")]},
         "ALUO_API_KEY"),
    Case("param-edit-no-images", "edit_photo", lambda c: {"prompt": "make it blue", "images": []}, "at least 1"),
    Case("param-edit-six-images", "edit_photo", lambda c: {"prompt": "combine", "images": [c.w("a.png")] * 6},
         "at most 5"),
    Case("param-edit-num-images", "edit_photo",
         lambda c: {"prompt": "blue", "images": [c.w("a.png")], "num_images": 9}, "less than or equal to 4"),
    Case("param-generate-variants-3", "generate_product_photo", lambda c: {"prompt": "a mug", "variants": 3},
         "must be one of"),
    Case("param-generate-unicode-prompt", "generate_product_photo", lambda c: {"prompt": PROMPT_UNICODE},
         "ALUO_API_KEY"),
    Case("param-image-long-prompt", "generate_image", lambda c: {"prompt": "y" * 2001, "style_id": 1},
         "at most 2000 characters"),
    Case("param-image-huge-style-id", "generate_image", lambda c: {"prompt": "a cat", "style_id": 2**70},
         "YOUCAM_API_KEY"),
    Case("param-unknown-tool", "format_disk", lambda c: {}, "Unknown tool"),
]  # fmt: skip

CASES: list[Case] = [*PATHS, *FILES, *URLS, *DATA, *PARAMS]


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part)


def _local_name() -> str:
    """A name only this machine resolves (from /etc/hosts: this host's name), to a private address."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        return "localhost"
    return name if addresses and not any(_is_public(a) for a in addresses) else "localhost"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return: connecting is refused


# ----------------------------------------------------------------------------------- the servers
@asynccontextmanager
async def _served_removedo(fake: FakeRemovedo) -> Any:
    async with fake, serve(fake.app) as base:
        yield base


async def _call(client: Client, tool: str, args: dict[str, Any], timeout: float) -> CallToolResult:
    with anyio.fail_after(timeout):
        return await client.call_tool(tool, args)


async def _alive(client: Client, ok_image: str) -> CallToolResult:
    with anyio.fail_after(30):
        # (ping is gone in the 2026-07-28 protocol era: tools/list is the cheap liveness probe)
        assert (await client.list_tools()).tools
        return await client.call_tool("resize_image", {"image": ok_image, "width": 4})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus")
    work, outside = root / "work", root / "outside"
    work.mkdir()
    outside.mkdir()
    make_files(work, outside)
    with start_blocking_portal("asyncio") as portal, ExitStack() as stack:
        stop = portal.call(anyio.Event)  # created in the portal's event loop
        net = stack.enter_context(portal.wrap_async_context_manager(serve(network_app(stop))))
        stack.callback(portal.call, stop.set)  # releases the slow handlers before the server stops
        fake = FakeRemovedo(polls_until_done=1)
        removedo = stack.enter_context(portal.wrap_async_context_manager(_served_removedo(fake)))
        strict = stdio_params(
            root / "strict",
            PHOTO_MCP_ALLOWED_DIRS=str(work),
            PHOTO_MCP_ALLOW_PRIVATE_URLS="0",
            REMOVEDO_API_KEY=fake.api_key,
            REMOVEDO_BASE_URL=removedo,
            PHOTO_MCP_REMOVEDO_POLL_INTERVAL="0.05",
        )
        permissive = stdio_params(
            root / "net",
            PHOTO_MCP_ALLOWED_DIRS=str(work),
            PHOTO_MCP_ALLOW_PRIVATE_URLS="1",
            PHOTO_MCP_MAX_DOWNLOAD_BYTES=str(NET_MAX_BYTES),
            PHOTO_MCP_DOWNLOAD_TIMEOUT=str(NET_TIMEOUT_S),
        )
        clients = {
            "strict": stack.enter_context(portal.wrap_async_context_manager(Client(strict, read_timeout_seconds=90))),
            "net": stack.enter_context(portal.wrap_async_context_manager(Client(permissive, read_timeout_seconds=90))),
        }
        results = {"strict": root / "strict" / "data" / "results", "net": root / "net" / "data" / "results"}
        yield Corpus(portal, clients, work, outside, results, net, fake)


# ------------------------------------------------------------------------------------- the tests
def test_the_corpus_is_large_and_covers_every_kind() -> None:
    groups: dict[str, int] = {}
    for case in CASES:
        groups[case.id.split("-", 1)[0]] = groups.get(case.id.split("-", 1)[0], 0) + 1
    assert len(CASES) >= 60, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    assert {"path", "file", "url", "net", "data", "param"} <= set(groups), groups
    must_work = sum(c.expect is None for c in CASES)
    print(f"\nbad-input corpus: {len(CASES)} cases ({must_work} must succeed), by kind: {groups}", file=sys.stderr)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(corpus: Corpus, case: Case) -> None:
    if case.skip:
        pytest.skip(case.skip)
    client = corpus.clients[case.server]
    result = corpus.portal.call(_call, client, case.tool, case.args(corpus), case.timeout)
    text = text_of(result)
    if case.expect is None:
        assert not result.is_error, f"[{case.id}] must succeed, got: {text[:500]}"
    else:
        assert result.is_error, f"[{case.id}] must be an error mentioning {case.expect!r}, got: {text[:500]}"
        keywords = (case.expect,) if isinstance(case.expect, str) else case.expect
        assert any(k.lower() in text.lower() for k in keywords), (
            f"[{case.id}] expected {case.expect!r} in: {text[:500]}"
        )
        assert len(text) < 2000, f"[{case.id}] the error is not short: {len(text)} characters"
    if case.check is not None:
        case.check(corpus, result)
    alive = corpus.portal.call(_alive, client, corpus.w("ok.png"))
    assert not alive.is_error, f"[{case.id}] the server stopped serving: {text_of(alive)}"


def test_failed_cases_left_no_partial_or_corrupt_file(corpus: Corpus) -> None:
    for server, results in corpus.results.items():
        assert results.is_dir(), server
        for path in results.iterdir():
            assert not path.name.startswith(TEMP_PREFIX), f"{server}: partial file {path.name}"
            with Image.open(path) as img:
                img.verify()  # every visible result is a complete image


# ------------------------------------------------- redirects to private addresses (unit level)
def _only(address: str) -> Callable[[str], bool]:
    """An address policy under which `address` counts as public and everything else as usual."""
    return lambda a: a == address or _is_public(a)


def _redirector(seen: list[str]) -> Starlette:
    png = image_bytes(10, 10, "png")

    async def handler(request: Request) -> Response:
        seen.append(request.url.path)
        if request.url.path == "/img.png":
            return Response(png, media_type="image/png")
        if request.url.path == "/hop":
            return RedirectResponse("/to?target=" + request.query_params["target"], status_code=301)
        return RedirectResponse(request.query_params["target"], status_code=302)

    return Starlette(routes=[Route("/{path:path}", handler)])


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_the_policy_seam_makes_one_loopback_address_public() -> None:
    seen: list[str] = []
    async with serve(_redirector(seen)) as base, httpx2.AsyncClient() as http:
        fetcher = SafeFetcher(http, allow_private=False, max_bytes=MB, timeout=5, is_public=_only("127.0.0.1"))
        data, _ = await fetcher.fetch(f"{base}/to?target=/img.png")
    assert data.startswith(b"\x89PNG") and seen == ["/to", "/img.png"]


@pytest.mark.parametrize(
    "target",
    [
        "http://10.1.2.3/a.png",
        "http://192.168.0.10/a.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://127.0.0.2/a.png",
        "http://[::ffff:10.0.0.1]/a.png",
        "http://0x0a000001/a.png",
        "http://[::1]:8080/a.png",
    ],
)
@pytest.mark.parametrize("hops", [1, 2], ids=["direct", "after-a-hop"])
async def test_a_redirect_to_a_private_address_is_refused(target: str, hops: int) -> None:
    seen: list[str] = []
    async with serve(_redirector(seen)) as base, httpx2.AsyncClient() as http:
        fetcher = SafeFetcher(http, allow_private=False, max_bytes=MB, timeout=5, is_public=_only("127.0.0.1"))
        url = f"{base}/hop?target={target}" if hops == 2 else f"{base}/to?target={target}"
        with pytest.raises(InvalidInput, match="private, loopback or link-local"):
            await fetcher.fetch(url)
    assert len(seen) == hops  # only the public host was ever asked


async def test_a_redirect_to_a_private_server_never_reaches_it() -> None:
    """The private target is a real server (on ::1): it must not see a single request."""
    if not _ipv6_loopback_available():
        pytest.skip("no IPv6 loopback here")
    public_seen: list[str] = []
    private_seen: list[str] = []
    async with (
        serve(_redirector(public_seen)) as public,
        serve(_redirector(private_seen), host="::1") as private,
        httpx2.AsyncClient() as http,
    ):
        fetcher = SafeFetcher(http, allow_private=False, max_bytes=MB, timeout=5, is_public=_only("127.0.0.1"))
        with pytest.raises(InvalidInput, match="private, loopback or link-local"):
            await fetcher.fetch(f"{public}/to?target={private}/img.png")
        # Under the real policy the same private server is fine only when private URLs are allowed.
        permissive = SafeFetcher(http, allow_private=True, max_bytes=MB, timeout=5)
        data, _ = await permissive.fetch(f"{public}/to?target={private}/img.png")
    assert data.startswith(b"\x89PNG")
    assert public_seen == ["/to", "/to"] and private_seen == ["/img.png"]  # only the permissive fetch got there


# --------------------------------------------------------------- raw JSON-RPC garbage on stdio
async def test_protocol_garbage_over_stdio(tmp_path: Path) -> None:
    """Lines no SDK client would send. Requests the SDK can parse get a JSON-RPC error or an
    `isError` result; the server keeps serving afterwards.

    Known SDK behaviour (mcp 2.3 stdio transport, not ours): a line it cannot parse at all is
    dropped with no answer, even when it carries an id (`params` that is not an object, a lone
    surrogate escape such as "\\ud800"); a client sending those waits until its own timeout.
    """
    (tmp_path / "work").mkdir()
    params = stdio_params(tmp_path)
    process = await anyio.open_process([params.command, *params.args], env=params.env, cwd=params.cwd)
    buffer = b""

    async def send(line: str | dict[str, Any]) -> None:
        text = line if isinstance(line, str) else json.dumps(line)
        await process.stdin.send(text.encode() + b"\n")

    async def receive() -> dict[str, Any]:
        nonlocal buffer
        while b"\n" not in buffer:
            buffer += await process.stdout.receive()
        line, _, buffer = buffer.partition(b"\n")
        return json.loads(line)

    def call(request_id: int, name: str, arguments: Any) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }

    try:
        with anyio.fail_after(60):
            await send(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25",
                        "capabilities": {},
                        "clientInfo": {"name": "raw", "version": "0"},
                    },
                }
            )
            assert (await receive())["id"] == 1
            await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            garbage: list[str | dict[str, Any]] = [
                "not json at all",
                "{",
                "[]",
                "null",
                "42",
                '{"jsonrpc": "2.0"}',
                '{"jsonrpc": "1.0", "id": 90, "method": "tools/list"}',
                "x" * 2_000_000,
                '{"jsonrpc":"2.0","id":91,"method":"tools/call","params":{"name":"generate_background",'
                '"arguments":{"prompt":"\\ud800"}}}',
                {"jsonrpc": "2.0", "id": 92, "method": "tools/call", "params": "not an object"},
                {"jsonrpc": "2.0", "id": 2, "method": "no/such/method"},
                call(3, "resize_image", "not an object"),
                call(4, "resize_image", {"image": "\u0000", "width": 1}),
                call(5, "resize_image", {"image": ["a", "b"], "width": {"deep": [[[[]]]]}}),
                call(6, "no_such_tool", {}),
                {"jsonrpc": "2.0", "id": 7, "method": "resources/read", "params": {"uri": "photo://results/../../x"}},
                {"jsonrpc": "2.0", "id": 8, "method": "tools/list"},
            ]  # fmt: skip
            for line in garbage:
                await send(line)
            answers: dict[int, dict[str, Any]] = {}
            while not {2, 3, 4, 5, 6, 7, 8} <= answers.keys():  # requests run concurrently: any order
                message = await receive()
                if isinstance(message.get("id"), int):
                    answers[message["id"]] = message
    finally:
        process.terminate()
        await process.aclose()
    assert answers[2]["error"]["code"] == -32601  # method not found
    assert "error" in answers[3] or answers[3]["result"]["isError"]
    for request_id in (4, 5, 6):
        assert answers[request_id]["result"]["isError"], answers[request_id]
    assert "NUL byte" in answers[4]["result"]["content"][0]["text"]
    assert "error" in answers[7]
    assert {t["name"] for t in answers[8]["result"]["tools"]} >= {"resize_image", "remove_background"}
