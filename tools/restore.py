"""remove_object, colorize_photo, enhance_photo: photo restoration on YouCam, or offline.

`provider="auto"` runs YouCam when it is configured, else the offline backend; it falls through
from YouCam to local only on auth, credit or outage failures that cannot have charged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from tools.core import images, masks
from tools.core.errors import InvalidInput
from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.providers.routing import candidates
from tools.providers.youcam.spec import FEATURES
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, Box, ImageRef, Result
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, probe, run_provider

Provider = Literal["auto", "youcam", "local"]
ProviderParam = Annotated[Provider, Field(description="auto (YouCam when configured, else local), youcam or local")]
ORDER = ("youcam", "local")
YouCamFormat = Annotated[
    Literal["jpg", "webp"], Field(description="Result format: jpg or webp (YouCam; local keeps the input's)")
]


@tool(title="Remove objects", annotations=PAID_REMOTE, quote=priced("remove_object", ORDER, provider="provider"))
async def remove_object(
    call: Call,
    image: ImageRef,
    mask: Annotated[
        str | None,
        Field(
            description="A mask image (same kinds of reference as image), the photo's shape: white = remove, "
            "black = keep",
            examples=["~/Pictures/mask.png", "photo://results/3f9a2c1b7d4e"],
            max_length=24_000_000,
        ),
    ] = None,
    boxes: Annotated[
        list[Box] | None,
        Field(
            description="Boxes around the objects to remove, [[x0, y0, x1, y1], ...] in the photo's pixels",
            min_length=1,
            max_length=50,
        ),
    ] = None,
    provider: ProviderParam = "auto",
    output_format: YouCamFormat = "jpg",
) -> Result:
    """Erase objects or people from a photo and fill the area naturally (YouCam object removal, or local).

    Give exactly one of `mask` (white = remove) or `boxes` (rendered to such a mask at the
    photo's exact size). YouCam takes photos up to 4096 px and costs about 1 YouCam unit
    (estimated: YouCam's documents give no per-task price), charged only on success; the local
    backend is free but suited to small objects. Returns the cleaned photo as a
    photo://results/<id> link with a preview.
    """
    if (mask is None) == (boxes is None):
        raise InvalidInput("Give exactly one of mask (an image, white = remove) or boxes ([[x0, y0, x1, y1], ...]).")
    rt = call.runtime
    order = candidates(rt.settings, provider, ORDER, "remove_object", "remove objects")
    source = await rt.resolver.resolve(image)
    info = await probe(call, source)
    size = (info.width, info.height)
    if boxes is not None:
        mask_png = await images.in_worker(masks.boxes_mask, size, boxes)
    else:
        assert mask is not None
        mask_data = await (await rt.resolver.resolve(mask)).read()
        mask_png = await images.in_worker(masks.fit_mask, mask_data, size, rt.settings.max_pixels)

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        if client.name == "youcam":
            return await client.remove_object(source, mask_png, job, output_format=output_format)
        return await client.remove_object(source, mask_png, job)

    params = {"image": source.label, "boxes": boxes, "mask": "image" if mask else None, "provider": provider}
    return await run_provider(call, "remove_object", order, attempt, params=params, inputs=[source])


@tool(title="Colorize a photo", annotations=PAID_REMOTE, quote=priced("colorize_photo", ["youcam"]))
async def colorize_photo(call: Call, image: ImageRef, output_format: YouCamFormat = "jpg") -> Result:
    """Turn a black-and-white (or faded) photo into a colour one (YouCam AI colorize).

    Photos up to 4096 px. YouCam may return more than one colourization to choose from. Costs
    about 1 YouCam unit (estimated: YouCam's documents give no per-task price), charged only on
    success. Returns photo://results/<id> links with previews.
    """
    rt = call.runtime
    order = candidates(rt.settings, "youcam", ["youcam"], "colorize_photo", "colorize photos")
    source = await rt.resolver.resolve(image)

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        return await client.colorize(source, job, output_format=output_format)

    return await run_provider(call, "colorize_photo", order, attempt, params={"image": source.label}, inputs=[source])


@tool(title="Enhance a photo", annotations=PAID_REMOTE, quote=priced("enhance_photo", ORDER, provider="provider"))
async def enhance_photo(
    call: Call,
    image: ImageRef,
    scale: Annotated[Literal[1, 2, 4], Field(description="Upscale factor: 1 (sharpen only), 2 or 4")] = 2,
    provider: ProviderParam = "auto",
    output_format: YouCamFormat = "jpg",
) -> Result:
    """Upscale and sharpen a photo: 1× (sharpen only), 2× or 4×, with YouCam's AI photo enhance
    or locally.

    YouCam takes photos up to 4096 px (larger ones are downscaled first) and costs about 1
    YouCam unit (estimated: YouCam's documents give no per-task price), charged only on success.
    Local (free, offline, no AI model): Lanczos upscaling refined by iterative back-projection,
    no denoising; on real photos shrunk ×2 it restores 32.2 dB PSNR / SSIM 0.920 where a plain
    Lanczos upscale gives 31.6 dB / 0.913 — a modest gain, no invented detail. Returns the
    enhanced photo as a photo://results/<id> link with a preview.
    """
    rt = call.runtime
    order = candidates(rt.settings, provider, ORDER, "enhance_photo", "enhance photos")
    source = await rt.resolver.resolve(image)
    info = await probe(call, source)
    limits = FEATURES["enhance"].limits
    assert limits is not None and limits.max_side is not None
    shrink = min(1.0, limits.max_side / max(info.width, info.height))
    out_pixels = (info.width * shrink * scale) * (info.height * shrink * scale)
    if out_pixels > rt.settings.max_pixels:
        raise InvalidInput(
            f"A {scale}× enhance of this {info.width}×{info.height} photo would be {out_pixels / 1e6:.0f} MP, "
            f"above the {rt.settings.max_pixels / 1e6:.0f} MP limit (PHOTO_MCP_MAX_PIXELS): use a smaller scale."
        )

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        if client.name == "youcam":
            return await client.enhance(source, scale, job, output_format=output_format)
        return await client.enhance(source, scale, job)

    params = {"image": source.label, "scale": scale, "provider": provider}
    return await run_provider(call, "enhance_photo", order, attempt, params=params, inputs=[source])
