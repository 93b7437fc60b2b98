"""remove_object, colorize_photo, enhance_photo: YouCam photo restoration, with a local fallback.

`provider="auto"` runs YouCam when it is configured, else the offline local backend; it falls
through from YouCam to local only on auth, credit or outage failures that cannot have charged.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core import images
from tools.core.errors import InvalidInput, NotConfigured
from tools.core.jobs import JobContext, Outcome
from tools.core.refs import ImageSource
from tools.providers.base import ProviderImage
from tools.providers.local import INSTALL_HINT
from tools.providers.routing import first_that_works
from tools.providers.youcam.spec import FEATURES
from tools.runtime import Runtime
from tools.saving import save_images
from tools.toolkit.params import PAID_REMOTE, ImageRef
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, run_job, runtime_of
from tools.youcam_jobs import SETUP, cost, require_youcam, run_youcam, youcam_outcome

if TYPE_CHECKING:
    from tools.providers.youcam.client import YouCamClient


Result = Annotated[CallToolResult, ToolOutput]
Provider = Literal["auto", "youcam", "local"]
Box = Annotated[list[int], Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in source pixels")]
LocalCall = Callable[[JobContext], Awaitable[list[ProviderImage]]]


def _local_fn(name: str) -> Callable[..., Awaitable[list[ProviderImage]]] | None:
    import tools.local_ai_tools as local_ai

    return getattr(local_ai, name, None)


def _order(rt: Runtime, provider: Provider, local_name: str, what: str) -> list[str]:
    """Providers to try, in order (checked before any job is submitted).

    Raises:
        NotConfigured: the chosen provider (or, for auto, every one) is unavailable.
    """
    if provider == "youcam":
        require_youcam(rt)
        return ["youcam"]
    has_local = _local_fn(local_name) is not None
    if provider == "local":
        if not has_local:
            raise NotConfigured(f"The offline local provider cannot {what} in this install: {INSTALL_HINT}")
        return ["local"]
    order = (["youcam"] if rt.settings.configured("youcam") else []) + (["local"] if has_local else [])
    if not order:
        raise NotConfigured(f"Nothing can {what} here: for YouCam {SETUP}; for offline work {INSTALL_HINT}.")
    return order


async def _routed(
    ctx: Context,
    operation: str,
    feature: str,
    provider: Provider,
    order: list[str],
    params: dict,
    source: ImageSource,
    youcam_call: Callable[[YouCamClient, JobContext], Awaitable[list[ProviderImage]]],
    local_call: LocalCall,
) -> CallToolResult:
    rt = runtime_of(ctx)

    async def work(job: JobContext) -> Outcome:
        async def attempt(name: str) -> Outcome:
            if name == "youcam":
                return await youcam_outcome(rt, job, operation, [source], youcam_call)
            await job.set_provider("local")
            await job.progress(f"running {operation} locally", 0.05)
            outputs = await local_call(job)
            records = await save_images(rt, job, outputs, operation=operation, provider="local", inputs=[source.label])
            return Outcome(records)

        return await first_that_works(order, attempt)

    estimate = cost(feature) if order[0] == "youcam" else 0.0
    return await run_job(ctx, operation, order[0] if provider == "auto" else provider, params, work, estimate=estimate)


def boxes_mask(size: tuple[int, int], boxes: list[list[int]]) -> bytes:
    """A grayscale PNG of exactly `size`: white inside the boxes (to remove), black elsewhere.

    Raises:
        InvalidInput: a box is empty or entirely outside the image.
    """
    w, h = size
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for x0, y0, x1, y1 in boxes:
        x0, x1 = sorted((max(0, x0), min(w, x1)))
        y0, y1 = sorted((max(0, y0), min(h, y1)))
        if x1 <= x0 or y1 <= y0:
            raise InvalidInput(f"The box {[x0, y0, x1, y1]} is empty or outside the {w}×{h} image.")
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    return buf.getvalue()


def mask_to_size(data: bytes, size: tuple[int, int], max_pixels: int) -> bytes:
    """A user's mask as a grayscale PNG of exactly `size` (same aspect ratio required).

    Raises:
        InvalidInput: not an image, or a different shape than the photo.
    """
    mask = images.decode(data, max_pixels).convert("L")
    if mask.size != size:
        mw, mh = mask.size
        if abs(mw / mh - size[0] / size[1]) > 0.01 * size[0] / size[1]:
            raise InvalidInput(
                f"The mask is {mw}×{mh} but the photo is {size[0]}×{size[1]}: the mask must have the photo's shape "
                "(white = remove, black = keep)."
            )
        mask = mask.resize(size, images.pil().Resampling.BILINEAR)
    if mask.getextrema()[1] < 128:
        raise InvalidInput("The mask has no white area: paint the objects to remove white.")
    return images.encode(mask, "png")


def register(app: MCPServer) -> None:
    @app.tool(title="Remove objects", annotations=PAID_REMOTE)
    @photo_tool
    async def remove_object(
        image: ImageRef,
        ctx: Context,
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
        provider: Annotated[
            Provider, Field(description="auto (YouCam when configured, else local), youcam or local")
        ] = "auto",
    ) -> Result:
        """Erase objects or people from a photo and fill the area naturally (YouCam object removal, or local).

        Give exactly one of `mask` (white = remove) or `boxes` (rendered to such a mask at the photo's
        exact size). YouCam takes photos up to 4096 px and costs 1 unit, charged only on success;
        the local backend is free but suited to small objects. Returns the cleaned photo as a
        photo://results/<id> link with a preview.
        """
        if (mask is None) == (boxes is None):
            raise InvalidInput(
                "Give exactly one of mask (an image, white = remove) or boxes ([[x0, y0, x1, y1], ...])."
            )
        rt = runtime_of(ctx)
        order = _order(rt, provider, "local_remove_object", "remove objects")
        source = await rt.resolver.resolve(image)
        data = await source.read()
        info = await anyio.to_thread.run_sync(images.probe, data, rt.settings.max_pixels)
        size = (info.width, info.height)
        if boxes is not None:
            mask_png = await anyio.to_thread.run_sync(boxes_mask, size, boxes)
        else:
            assert mask is not None
            mask_data = await (await rt.resolver.resolve(mask)).read()
            mask_png = await anyio.to_thread.run_sync(mask_to_size, mask_data, size, rt.settings.max_pixels)

        async def on_youcam(c: YouCamClient, job: JobContext) -> list[ProviderImage]:
            return await c.remove_object(source, mask_png, job)

        async def on_local(job: JobContext) -> list[ProviderImage]:
            fn = _local_fn("local_remove_object")
            assert fn is not None
            return await fn(rt, source, mask_png, job)

        params = {"image": source.label, "boxes": boxes, "mask": "image" if mask else None, "provider": provider}
        return await _routed(
            ctx, "remove_object", "object_removal", provider, order, params, source, on_youcam, on_local
        )

    @app.tool(title="Colorize a photo", annotations=PAID_REMOTE)
    @photo_tool
    async def colorize_photo(image: ImageRef, ctx: Context) -> Result:
        """Turn a black-and-white (or faded) photo into a colour one (YouCam AI colorize).

        Photos up to 4096 px. YouCam may return more than one colourization to choose from.
        Costs 1 YouCam unit, charged only on success. Returns photo://results/<id> links with previews.
        """
        rt = runtime_of(ctx)
        require_youcam(rt)
        source = await rt.resolver.resolve(image)

        async def call(c: YouCamClient, job: JobContext) -> list[ProviderImage]:
            return await c.colorize(source, job)

        return await run_youcam(ctx, "colorize_photo", "colorize", {"image": source.label}, [source], call)

    @app.tool(title="Enhance a photo", annotations=PAID_REMOTE)
    @photo_tool
    async def enhance_photo(
        image: ImageRef,
        ctx: Context,
        scale: Annotated[Literal[1, 2, 4], Field(description="Upscale factor: 1 (sharpen only), 2 or 4")] = 2,
        provider: Annotated[
            Provider, Field(description="auto (YouCam when configured, else local), youcam or local")
        ] = "auto",
    ) -> Result:
        """Sharpen and upscale a photo (YouCam AI photo enhance, or local): 1× (clean up), 2× or 4×.

        YouCam takes photos up to 4096 px (larger ones are downscaled first) and costs 1 unit,
        charged only on success; local is free. Returns the enhanced photo as a
        photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        order = _order(rt, provider, "local_enhance", "enhance photos")
        source = await rt.resolver.resolve(image)
        info = await anyio.to_thread.run_sync(images.probe, await source.read(), rt.settings.max_pixels)
        limits = FEATURES["enhance"].limits
        assert limits is not None and limits.max_side is not None
        shrink = min(1.0, limits.max_side / max(info.width, info.height))
        out_pixels = (info.width * shrink * scale) * (info.height * shrink * scale)
        if out_pixels > rt.settings.max_pixels:
            raise InvalidInput(
                f"A {scale}× enhance of this {info.width}×{info.height} photo would be {out_pixels / 1e6:.0f} MP, "
                f"above the {rt.settings.max_pixels / 1e6:.0f} MP limit (PHOTO_MCP_MAX_PIXELS): use a smaller scale."
            )

        async def on_youcam(c: YouCamClient, job: JobContext) -> list[ProviderImage]:
            return await c.enhance(source, scale, job)

        async def on_local(job: JobContext) -> list[ProviderImage]:
            fn = _local_fn("local_enhance")
            assert fn is not None
            return await fn(rt, source, job, scale)

        params = {"image": source.label, "scale": scale, "provider": provider}
        return await _routed(ctx, "enhance_photo", "enhance", provider, order, params, source, on_youcam, on_local)
