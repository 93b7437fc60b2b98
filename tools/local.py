"""Offline edits, free and keyless: place_on_background, resize_image, crop_image and
convert_image (Pillow, default install); blur_background and correct_colors (the `[local]` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from tools.core import compose
from tools.core.errors import InvalidInput, NotConfigured
from tools.providers import missing
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import LOCAL_EDIT, ImageRef, OutputFormat, Result
from tools.toolkit.run import Call, probe, run_local_edit

if TYPE_CHECKING:
    from PIL import Image

FormatParam = Annotated[OutputFormat | None, Field(description="png, jpeg or webp (default: keep)")]


def _looks_like_image_ref(text: str) -> bool:
    return any(c in text for c in "/\\:.") or text.startswith("~")


@tool(title="Place on a background", annotations=LOCAL_EDIT)
async def place_on_background(
    call: Call,
    image: ImageRef,
    background: Annotated[
        str,
        Field(
            description="A colour ('white', '#f4f4f4', 'transparent') or an image reference for a backdrop",
            examples=["white", "#f5f5f5", "photo://results/3f9a2c1b7d4e"],
        ),
    ] = "white",
    aspect_ratio: Annotated[
        str,
        Field(description="Canvas shape 'W:H' (e.g. '1:1', '4:5', '16:9') or 'original'", examples=["1:1"]),
    ] = "1:1",
    size: Annotated[
        int | None,
        Field(description="Long side of the output in pixels (default: the input image's long side)", ge=16, le=8192),
    ] = None,
    margin: Annotated[
        float, Field(description="Padding on each side, as a fraction of the canvas", ge=0, le=0.45)
    ] = 0.05,
    output_format: FormatParam = None,
    cut_out: Annotated[
        bool | None,
        Field(
            description="Cut the subject out first. Default: automatically when the image has no "
            "transparency and the offline [local] extra is installed; false places the photo as it is"
        ),
    ] = None,
) -> Result:
    """Centre an image on a solid colour or a backdrop picture, padded to an aspect ratio.

    The e-commerce step "white background, square". Transparency in the input is respected; a
    photo without transparency is cut out first, offline (U²-Net), when the [local] extra is
    installed; edge pixels carry the subject's own colour, so no glow of the old background
    shows on the new one. The output's long side is `size`, else the input's. Runs offline;
    costs nothing.
    Returns the new image as a photo://results/<id> resource link with a preview.
    """
    rt = call.runtime
    ratio = compose.parse_ratio(aspect_ratio)
    source = await rt.resolver.resolve(image)
    sources = [source]
    # A colour first: "hsl(120.5, 50%, 50%)" has a dot and a colon but is no image reference.
    color = compose.color_or_none(background)
    if color is None:
        if not _looks_like_image_ref(background):
            compose.parse_color(background)  # raises the "not a colour" advice
        sources.append(await rt.resolver.resolve(background))

    info = await probe(call, source)
    want_cut = (not info.has_alpha) if cut_out is None else cut_out
    problem = missing(rt.settings, "local", "place_on_background")
    if want_cut and cut_out and problem:
        raise NotConfigured(f"cut_out=true needs the offline backend: {problem}.")
    do_cut = want_cut and problem is None
    note = f"Placed as it is (no transparency). To cut it out automatically, {problem}" if want_cut and problem else ""

    # The canvas does not depend on what is installed (a cut-out is smaller than the photo).
    long_side = size or max(info.width, info.height)
    why = "as asked" if size else "the input image's long side; pass size to choose"

    def edit(imgs: list[Image.Image]) -> Image.Image:
        subject = imgs[0]
        if do_cut:
            from tools.providers.local.matting import cut_out as cut

            subject = cut(subject)
        bg = imgs[1] if color is None else color
        return compose.place_on_background(subject, bg, ratio, margin, long_side, rt.settings.max_pixels)

    params = {
        "background": background if color is not None else "image",
        "aspect_ratio": aspect_ratio,
        "size": size,
        "margin": margin,
        "cut_out": do_cut,
    }
    sized = f"Long side {long_side} px ({why})."
    message = " ".join(m for m in (sized, "Cut out offline first." if do_cut else note) if m)
    return await run_local_edit(
        call, "place_on_background", sources, params, edit, fmt=output_format, model=do_cut, message=message
    )


@tool(title="Resize an image", annotations=LOCAL_EDIT)
async def resize_image(
    call: Call,
    image: ImageRef,
    width: Annotated[int | None, Field(description="Target width in pixels", ge=1, le=16384)] = None,
    height: Annotated[int | None, Field(description="Target height in pixels", ge=1, le=16384)] = None,
    max_side: Annotated[
        int | None, Field(description="Fit the long side to this many pixels (aspect kept)", ge=1, le=16384)
    ] = None,
    output_format: FormatParam = None,
) -> Result:
    """Resize an image offline (Pillow, Lanczos). Give width and/or height, or max_side.

    With only one of width/height the aspect ratio is kept. Costs nothing.
    Returns the resized image as a photo://results/<id> resource link with a preview.
    """
    if not (width or height or max_side):
        raise InvalidInput("Give width, height or max_side.")
    rt = call.runtime
    source = await rt.resolver.resolve(image)
    params = {"width": width, "height": height, "max_side": max_side}

    def edit(imgs: list[Image.Image]) -> Image.Image:
        return compose.resize(imgs[0], width, height, max_side, rt.settings.max_pixels)

    side = compose.resize_side(width, height, max_side)
    return await run_local_edit(call, "resize_image", [source], params, edit, fmt=output_format, decode_side=side)


@tool(title="Crop an image", annotations=LOCAL_EDIT)
async def crop_image(
    call: Call,
    image: ImageRef,
    box: Annotated[
        list[int],
        Field(
            description="[x0, y0, x1, y1] in pixels of the (EXIF-oriented) image",
            min_length=4,
            max_length=4,
            examples=[[0, 0, 512, 512]],
        ),
    ],
) -> Result:
    """Crop an image to a pixel box, offline (Pillow). Costs nothing.

    Returns the cropped image as a photo://results/<id> resource link with a preview.
    """
    source = await call.runtime.resolver.resolve(image)
    return await run_local_edit(call, "crop_image", [source], {"box": box}, lambda imgs: compose.crop(imgs[0], box))


@tool(title="Convert or compress an image", annotations=LOCAL_EDIT)
async def convert_image(
    call: Call,
    image: ImageRef,
    format: Annotated[OutputFormat, Field(description="Output encoding")] = "png",
    quality: Annotated[int | None, Field(description="JPEG/WebP quality 1-100 (default 90)", ge=1, le=100)] = None,
    max_bytes: Annotated[
        int | None, Field(description="Largest acceptable file size; quality, then size, is lowered to fit", ge=1024)
    ] = None,
) -> Result:
    """Re-encode an image as PNG, JPEG or WebP, optionally under a byte budget. Offline, free.

    JPEG has no transparency: transparent areas become white.
    Returns the converted image as a photo://results/<id> resource link with a preview.
    """
    source = await call.runtime.resolver.resolve(image)
    params = {"format": format, "quality": quality, "max_bytes": max_bytes}
    return await run_local_edit(
        call, "convert_image", [source], params, lambda imgs: imgs[0], fmt=format, quality=quality, max_bytes=max_bytes
    )


@tool(title="Blur the background", annotations=LOCAL_EDIT)
async def blur_background(
    call: Call,
    image: ImageRef,
    strength: Annotated[
        float, Field(description="0 = no blur, 1 = very strong (blur radius grows with image size)", ge=0, le=1)
    ] = 0.5,
) -> Result:
    """Keep the subject sharp and blur everything behind it (portrait-mode look). Offline and free:
    the subject is found with the bundled U²-Net model (needs the [local] extra). Edge pixels carry
    the subject's own colour, so no glow of the old background shows. Returns the image as a
    photo://results/<id> link with a preview.
    """
    rt = call.runtime
    candidates(rt.settings, "local", ["local"], "blur_background", "blur backgrounds")
    source = await rt.resolver.resolve(image)

    def edit(imgs: list[Image.Image]) -> Image.Image:
        from tools.providers.local.edits import blur_background as blur

        return blur(imgs[0], strength)

    return await run_local_edit(call, "blur_background", [source], {"strength": strength}, edit, model=True)


@tool(title="Correct colours", annotations=LOCAL_EDIT)
async def correct_colors(call: Call, image: ImageRef) -> Result:
    """Fix a colour cast (white balance) offline and free: gray-edge estimation on near-neutral
    edges, computed on a small copy and applied to the full image. Detected faces keep a skin
    colour, and a photo whose estimated cast is under about 3° is returned unchanged (needs the
    [local] extra). Returns the corrected image as a photo://results/<id> link with a preview.
    """
    rt = call.runtime
    candidates(rt.settings, "local", ["local"], "correct_colors", "correct colours")
    source = await rt.resolver.resolve(image)

    def edit(imgs: list[Image.Image]) -> Image.Image:
        from tools.providers.local.edits import correct_colors as balance

        return balance(imgs[0])

    return await run_local_edit(call, "correct_colors", [source], {}, edit, model=True)
