"""Offline edits with Pillow (default install, no keys, no credits): place_on_background,
resize_image, crop_image, convert_image."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core import compose, images
from tools.core.errors import InvalidInput, NotConfigured
from tools.core.jobs import JobContext, Outcome
from tools.core.refs import ImageSource
from tools.providers import local as local_ai
from tools.providers.local import LocalAIUnavailable
from tools.toolkit.params import LOCAL_EDIT, ImageRef, OutputFormat
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, run_job, runtime_of

if TYPE_CHECKING:
    from PIL import Image


Result = Annotated[CallToolResult, ToolOutput]
_KEEP = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}


def _model_limiter() -> anyio.CapacityLimiter:
    from tools.local_ai_tools import model_limiter

    return model_limiter()


def _looks_like_image_ref(text: str) -> bool:
    return any(c in text for c in "/\\:.") or text.startswith("~")


async def run_local_edit(
    ctx: Context,
    operation: str,
    sources: list[ImageSource],
    params: dict[str, Any],
    edit: Callable[[list[Image.Image]], Image.Image],
    *,
    fmt: str | None = None,
    quality: int | None = None,
    max_bytes: int | None = None,
    limiter: anyio.CapacityLimiter | None = None,
    message: str = "",
) -> CallToolResult:
    """Run a synchronous Pillow `edit` over the decoded sources as a local job and save its output.

    The output keeps the first input's format (PNG/JPEG/WebP) unless `fmt` is given; an image
    with transparency is never silently flattened into JPEG.
    """
    rt = runtime_of(ctx)
    max_pixels = rt.settings.max_pixels
    datas = [await s.read() for s in sources]

    def render() -> images.Encoded:
        decoded = [images.decode(d, max_pixels) for d in datas]
        out = edit(decoded)
        chosen = fmt or _KEEP.get(images.probe(datas[0], max_pixels).format, "png")
        if chosen == "jpeg" and out.mode == "RGBA" and fmt is None:
            chosen = "png"
        if quality is not None:
            data = images.encode(out, chosen, quality=quality)
            if max_bytes is not None and len(data) > max_bytes:
                data = images.encode_under(out, chosen, max_bytes)
        else:
            data = images.encode_under(out, chosen, max_bytes)
        return images.Encoded(data, images.MIME_OF[chosen], out.size[0], out.size[1])

    async def work(job: JobContext) -> Outcome:
        await job.progress("editing locally", 0.1)
        try:
            encoded = await (anyio.to_thread.run_sync(render, limiter=limiter) if limiter else images.in_worker(render))
        except LocalAIUnavailable as exc:
            raise NotConfigured(str(exc)) from None
        record = await rt.store.save(
            encoded.data,
            mime_type=encoded.mime_type,
            width=encoded.width,
            height=encoded.height,
            operation=operation,
            provider="local",
            job_id=job.job.id,
            inputs=[s.label for s in sources],
        )
        return Outcome([record], message=message)

    return await run_job(ctx, operation, "local", params, work)


def register(app: MCPServer) -> None:
    @app.tool(title="Place on a background", annotations=LOCAL_EDIT)
    @photo_tool
    async def place_on_background(
        image: ImageRef,
        ctx: Context,
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
            Field(
                description="Long side of the output in pixels (default: keep the subject's scale)",
                ge=16,
                le=8192,
            ),
        ] = None,
        margin: Annotated[
            float, Field(description="Padding on each side, as a fraction of the canvas", ge=0, le=0.45)
        ] = 0.05,
        output_format: Annotated[OutputFormat | None, Field(description="png, jpeg or webp (default: keep)")] = None,
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
        installed. Runs offline; costs nothing.
        Returns the new image as a photo://results/<id> resource link with a preview.
        """
        rt = runtime_of(ctx)
        ratio = compose.parse_ratio(aspect_ratio)
        source = await rt.resolver.resolve(image)
        sources = [source]
        if _looks_like_image_ref(background):
            sources.append(await rt.resolver.resolve(background))
            color = None
        else:
            color = compose.parse_color(background)

        info = await anyio.to_thread.run_sync(images.probe, await source.read(), rt.settings.max_pixels)
        has_alpha = info.has_alpha
        want_cut = (not has_alpha) if cut_out is None else cut_out
        can_cut = local_ai.available()
        if want_cut and cut_out and not can_cut:
            raise NotConfigured(f"cut_out=true needs the offline extra: {local_ai.INSTALL_HINT}")
        do_cut = want_cut and can_cut
        note = ""
        if want_cut and not do_cut:
            note = f"Placed as it is (no transparency). To cut it out automatically: {local_ai.INSTALL_HINT}"

        def edit(imgs: list[Image.Image]) -> Image.Image:
            subject = imgs[0]
            if do_cut:
                from tools.providers.local.matting import cut_out as cut

                subject = cut(subject)
            bg = imgs[1] if color is None else color
            return compose.place_on_background(subject, bg, ratio, margin, size, rt.settings.max_pixels)

        params = {
            "background": background if color is not None else "image",
            "aspect_ratio": aspect_ratio,
            "size": size,
            "margin": margin,
            "cut_out": do_cut,
        }
        return await run_local_edit(
            ctx,
            "place_on_background",
            sources,
            params,
            edit,
            fmt=output_format,
            limiter=_model_limiter() if do_cut else None,
            message="Cut out offline first." if do_cut else note,
        )

    @app.tool(title="Resize an image", annotations=LOCAL_EDIT)
    @photo_tool
    async def resize_image(
        image: ImageRef,
        ctx: Context,
        width: Annotated[int | None, Field(description="Target width in pixels", ge=1, le=16384)] = None,
        height: Annotated[int | None, Field(description="Target height in pixels", ge=1, le=16384)] = None,
        max_side: Annotated[
            int | None,
            Field(description="Fit the long side to this many pixels (aspect kept)", ge=1, le=16384),
        ] = None,
        output_format: Annotated[OutputFormat | None, Field(description="png, jpeg or webp (default: keep)")] = None,
    ) -> Result:
        """Resize an image offline (Pillow, Lanczos). Give width and/or height, or max_side.

        With only one of width/height the aspect ratio is kept. Costs nothing.
        Returns the resized image as a photo://results/<id> resource link with a preview.
        """
        if not (width or height or max_side):
            raise InvalidInput("Give width, height or max_side.")
        rt = runtime_of(ctx)
        source = await rt.resolver.resolve(image)
        params = {"width": width, "height": height, "max_side": max_side}
        return await run_local_edit(
            ctx,
            "resize_image",
            [source],
            params,
            lambda imgs: compose.resize(imgs[0], width, height, max_side, rt.settings.max_pixels),
            fmt=output_format,
        )

    @app.tool(title="Crop an image", annotations=LOCAL_EDIT)
    @photo_tool
    async def crop_image(
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
        ctx: Context,
    ) -> Result:
        """Crop an image to a pixel box, offline (Pillow). Costs nothing.

        Returns the cropped image as a photo://results/<id> resource link with a preview.
        """
        rt = runtime_of(ctx)
        source = await rt.resolver.resolve(image)
        return await run_local_edit(ctx, "crop_image", [source], {"box": box}, lambda imgs: compose.crop(imgs[0], box))

    @app.tool(title="Convert or compress an image", annotations=LOCAL_EDIT)
    @photo_tool
    async def convert_image(
        image: ImageRef,
        ctx: Context,
        format: Annotated[OutputFormat, Field(description="Output encoding")] = "png",
        quality: Annotated[int | None, Field(description="JPEG/WebP quality 1-100 (default 90)", ge=1, le=100)] = None,
        max_bytes: Annotated[
            int | None,
            Field(description="Largest acceptable file size; quality, then size, is lowered to fit", ge=1024),
        ] = None,
    ) -> Result:
        """Re-encode an image as PNG, JPEG or WebP, optionally under a byte budget. Offline, free.

        JPEG has no transparency: transparent areas become white.
        Returns the converted image as a photo://results/<id> resource link with a preview.
        """
        rt = runtime_of(ctx)
        source = await rt.resolver.resolve(image)
        params = {"format": format, "quality": quality, "max_bytes": max_bytes}
        return await run_local_edit(
            ctx,
            "convert_image",
            [source],
            params,
            lambda imgs: imgs[0],
            fmt=format,
            quality=quality,
            max_bytes=max_bytes,
        )
