"""Render the viewer to a PNG (for the README): a real result in the real view, in headless Chromium.

    .venv/bin/python -m tests.apps.render_viewer docs/viewer.png [--tool blur_background]

Needs what the browser tests need (chromium, `pip install -e '.[browser]'`, `npm ci --prefix
.ci/apps`). It starts photo-mcp over stdio in a temporary data dir, takes a real portrait shipped
with scikit-image (or draws a product photo with Pillow), runs an offline tool on it, opens the
result in the viewer through the official AppBridge and screenshots the view. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio
from mcp import Client
from PIL import Image, ImageDraw, ImageFilter

from tests.apps.harness import apps_client_extension, browser_host, build_host_bundle, missing_parts
from tests.support import stdio_params


def real_photo(path: Path) -> Path | None:
    """A real portrait shipped inside scikit-image (the test extra), when it is installed."""
    try:
        from skimage import data
    except ImportError:
        return None
    Image.fromarray(data.astronaut()).save(path, "JPEG", quality=92)
    return path


def product_photo(path: Path) -> Path:
    """A made-up product shot: a teal mug with a handle on a warm, uneven table."""
    w, h = 960, 640
    img = Image.new("RGB", (w, h), (214, 196, 170))
    d = ImageDraw.Draw(img)
    for y in range(h):  # a lit wall fading into the table
        shade = int(40 * y / h)
        d.line([(0, y), (w, y)], fill=(226 - shade, 208 - shade, 182 - shade))
    d.rectangle([0, 450, w, h], fill=(150, 108, 74))
    d.ellipse([300, 520, 660, 580], fill=(110, 80, 56))  # shadow
    d.rounded_rectangle([340, 220, 600, 550], radius=40, fill=(28, 128, 138))
    d.ellipse([340, 200, 600, 250], fill=(20, 96, 104))
    d.arc([560, 290, 690, 460], start=-80, end=80, fill=(28, 128, 138), width=26)
    d.rounded_rectangle([370, 260, 400, 500], radius=12, fill=(70, 170, 178))  # highlight
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    img.save(path, "JPEG", quality=92)
    return path


async def render(out: Path, tool: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "work").mkdir()
        photo = real_photo(tmp_path / "work" / "portrait.jpg") or product_photo(tmp_path / "work" / "mug.jpg")
        args: dict = {"image": str(photo)}
        if tool == "place_on_background":
            args |= {"background": "white", "aspect_ratio": "1:1", "margin": 0.08}
        elif tool == "blur_background":
            args |= {"strength": 0.8}
        bundle = build_host_bundle(tmp_path)
        async with Client(stdio_params(tmp_path), extensions=[apps_client_extension()]) as client:
            result = await client.call_tool(tool, args)
            if result.is_error:
                sys.exit(f"{tool} failed: {result.content}")
            async with browser_host(client, bundle) as host:
                view = await host.open(tool, args, result)
                await view.wait_for_selector(".card img[data-full='1']")
                await view.wait_for_selector("#compare:not([hidden])")
                frame = view.locator("#frame")
                box = await frame.bounding_box()
                await host.page.mouse.click(box["x"] + box["width"] * 0.42, box["y"] + box["height"] / 2)
                iframe = await host.page.query_selector("#view")
                await iframe.screenshot(path=str(out))
    shrink(out)


def shrink(path: Path, max_bytes: int = 190 * 1024) -> None:
    """Keep the README's screenshot small: a 256-colour PNG when the full-colour one is too big."""
    if path.stat().st_size <= max_bytes:
        return
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--tool", default="blur_background", help="an offline tool taking one image")
    a = parser.parse_args()
    if missing := missing_parts():
        sys.exit("render_viewer needs " + ", ".join(missing))
    anyio.run(render, a.out, a.tool)
    print(f"{a.out} ({a.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
