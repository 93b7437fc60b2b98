"""The offline AI backend behind provider="local", and the blur_background and
correct_colors tools (optional extra photo-mcp[local]).

Model work runs off the event loop under one capacity limiter: the shared ONNX session
already uses both cores, so concurrent calls queue instead of multiplying memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core import images
from tools.core.errors import InvalidInput, NotConfigured
from tools.core.jobs import JobContext
from tools.core.refs import ImageSource
from tools.providers.base import ProviderImage
from tools.providers.local import INSTALL_HINT, LocalAIUnavailable, available
from tools.runtime import Runtime
from tools.toolkit.params import LOCAL_EDIT, ImageRef
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, runtime_of

if TYPE_CHECKING:
    from PIL import Image


T = TypeVar("T")
_limiter: anyio.CapacityLimiter | None = None


def model_limiter() -> anyio.CapacityLimiter:
    """The one limiter for model-bound work (created in the event loop on first use)."""
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(1)
    return _limiter


async def run_local_ai(fn: Callable[[], T]) -> T:
    """Run `fn` in a worker thread under the model limiter, mapping the extra's errors.

    Raises:
        NotConfigured: the [local] extra is missing (the message has the pip command).
        InvalidInput: the input does not suit the operation (e.g. a mask too large).
    """
    try:
        return await anyio.to_thread.run_sync(fn, limiter=model_limiter())
    except LocalAIUnavailable as exc:
        raise NotConfigured(str(exc)) from None
    except ValueError as exc:  # MaskTooLarge, size limits, mask shape: advice for the caller
        raise InvalidInput(str(exc)) from None


def cut_out_image(img: Image.Image) -> Image.Image:
    from tools.providers.local.matting import cut_out

    return cut_out(img)


async def local_cut_out(rt: Runtime, source: ImageSource, job: JobContext) -> list[ProviderImage]:
    """Background removal offline (U²-Net + guided-filter edges); PNG, or lossless WebP when large.

    Raises:
        NotConfigured: the [local] extra is missing.
    """
    if not available():
        raise NotConfigured(f"The offline local provider is not installed: {INSTALL_HINT}")
    data = await source.read()
    await job.progress("cutting out offline (U²-Net)", 0.2)

    def work() -> bytes:
        from tools.providers.local.matting import encode_cutout

        out, _ = encode_cutout(cut_out_image(images.decode(data, rt.settings.max_pixels)))
        return out

    return [ProviderImage(await run_local_ai(work))]


def _encode_like(img: Image.Image, original: bytes, max_pixels: int) -> bytes:
    fmt = {"JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}.get(images.probe(original, max_pixels).format, "png")
    if fmt == "jpeg" and img.mode == "RGBA":
        fmt = "png"
    return images.encode(img, fmt)


async def local_enhance(rt: Runtime, source: ImageSource, job: JobContext, scale: int) -> list[ProviderImage]:
    """Lanczos upscale ×scale with a mild unsharp mask and a light denoise. No model needed.

    Raises:
        InvalidInput: the result would be too large.
    """
    data = await source.read()
    await job.progress(f"enhancing offline (×{scale})", 0.2)

    def work() -> bytes:
        from tools.providers.local.edits import enhance

        img = images.decode(data, rt.settings.max_pixels)
        return _encode_like(enhance(img, scale, denoise=True), data, rt.settings.max_pixels)

    return [ProviderImage(await run_local_ai(work))]


async def local_remove_object(
    rt: Runtime, source: ImageSource, mask_png: bytes, job: JobContext
) -> list[ProviderImage]:
    """Inpaint a small masked object (white = remove) offline; large masks are refused.

    Raises:
        NotConfigured: the [local] extra is missing.
        InvalidInput: the mask covers too much of the image (use provider "youcam").
    """
    data = await source.read()
    await job.progress("removing the object offline (inpainting)", 0.2)

    def work() -> bytes:
        from tools.providers.local.edits import remove_small_object

        img = images.decode(data, rt.settings.max_pixels)
        mask = images.decode(mask_png, rt.settings.max_pixels).convert("L")
        return _encode_like(remove_small_object(img, mask), data, rt.settings.max_pixels)

    return [ProviderImage(await run_local_ai(work))]


def register(app: MCPServer) -> None:
    from tools.local import run_local_edit

    @app.tool(title="Blur the background", annotations=LOCAL_EDIT)
    @photo_tool
    async def blur_background(
        image: ImageRef,
        ctx: Context,
        strength: Annotated[
            float, Field(description="0 = no blur, 1 = very strong (blur radius grows with image size)", ge=0, le=1)
        ] = 0.5,
    ) -> Annotated[CallToolResult, ToolOutput]:
        """Keep the subject sharp and blur everything behind it (portrait-mode look). Offline and free:
        the subject is found with the bundled U²-Net model (needs the [local] extra).
        Returns the image as a photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        if not available():
            raise NotConfigured(f"blur_background needs the offline extra: {INSTALL_HINT}")
        source = await rt.resolver.resolve(image)

        def edit(imgs: list[Image.Image]) -> Image.Image:
            from tools.providers.local.edits import blur_background as blur

            return blur(imgs[0], strength)

        return await run_local_edit(
            ctx, "blur_background", [source], {"strength": strength}, edit, limiter=model_limiter()
        )

    @app.tool(title="Correct colours", annotations=LOCAL_EDIT)
    @photo_tool
    async def correct_colors(image: ImageRef, ctx: Context) -> Annotated[CallToolResult, ToolOutput]:
        """Fix a colour cast (white balance) offline and free: gray-edge estimation on near-neutral
        edges, computed on a small copy and applied to the full image (needs the [local] extra).
        Returns the corrected image as a photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        if not available(need_model=False):
            raise NotConfigured(f"correct_colors needs the offline extra: {INSTALL_HINT}")
        source = await rt.resolver.resolve(image)

        def edit(imgs: list[Image.Image]) -> Image.Image:
            from tools.providers.local.edits import correct_colors as balance

            return balance(imgs[0])

        return await run_local_edit(ctx, "correct_colors", [source], {}, edit, limiter=model_limiter())
