"""The offline provider: this machine's CPU, no keys, no network, no credits.

The same shape as the hosted providers (`from_settings`, `async with`, feature methods taking
`hooks` and returning `ProviderImage`s), so routing treats it like any other. Pillow edits need
nothing beyond the default install; background removal and blur need the `[local]` extra's model,
enhancement, white balance and inpainting its numpy and OpenCV (`tools.providers.missing` checks
per operation before a job starts).

Model work runs in a worker thread under one capacity limiter: the shared ONNX session already
uses both cores, so concurrent calls queue instead of multiplying memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from tools.core import images, previews
from tools.core.errors import InvalidInput, NotConfigured
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.providers.base import JobHooks, ProviderImage
from tools.providers.local import LocalAIUnavailable

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


async def offline(fn: Callable[[], T], *, model: bool = True) -> T:
    """Run `fn` in a worker thread (under the model limiter when `model`), mapping the extra's errors.

    Only the errors that are about the caller's input become `InvalidInput`; anything else
    raised inside the offline code is a bug and surfaces as an internal error.

    Raises:
        NotConfigured: the [local] extra is missing (the message has the install command).
        InvalidInput: the input does not suit the operation (e.g. a mask too large to inpaint).
    """
    from tools.providers.local.edits import MaskTooLarge

    try:
        if model:
            return await anyio.to_thread.run_sync(fn, limiter=model_limiter())
        return await images.in_worker(fn)
    except LocalAIUnavailable as exc:
        raise NotConfigured(str(exc)) from None
    except MaskTooLarge as exc:
        raise InvalidInput(str(exc)) from None


class LocalProvider:
    """Offline image work with Pillow and the `[local]` extra; knows nothing of MCP."""

    name = "local"

    def __init__(self, max_pixels: int, *, preview_side: int | None = None) -> None:
        self._max_pixels = max_pixels
        self._preview_side = preview_side  # an edit's inline preview is made from its pixels, at this size

    @classmethod
    def from_settings(cls, settings: Settings, **_: Any) -> LocalProvider:
        return cls(settings.max_pixels, preview_side=previews.made_at_save(settings))

    async def __aenter__(self) -> LocalProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _decode(self, data: bytes, draft_side: int | Callable[[int, int], int | None] | None = None) -> Image.Image:
        return images.decode(data, self._max_pixels, draft_side=draft_side)

    async def edit(
        self,
        sources: Sequence[ImageSource],
        edit: Callable[[list[Image.Image]], Image.Image],
        hooks: JobHooks,
        *,
        fmt: str | None = None,
        quality: int | None = None,
        max_bytes: int | None = None,
        model: bool = False,
        decode_side: Callable[[int, int], int | None] | None = None,
    ) -> list[ProviderImage]:
        """Decode `sources`, apply a synchronous Pillow `edit`, encode like the first input.

        `decode_side(width, height)` (of the first input, as displayed): the long side the
        output needs; a JPEG first input then decodes at the smallest scale that still has it
        (draft mode: one decode, a fraction of the pixels and of the memory).

        Raises:
            InvalidInput: an input is not an image, or the budget `max_bytes` cannot be met.
        """
        loads = [await s.reader() for s in sources]  # files are read once a worker is free
        await hooks.progress("editing locally", 0.1)

        def render() -> ProviderImage:
            datas = [load() for load in loads]
            # The first input decodes at the size the edit needs, read from its header in the same
            # open; sizes are still computed from the full image (same rounding as without draft).
            decoded = [self._decode(d, decode_side if i == 0 else None) for i, d in enumerate(datas)]
            out = edit(decoded)
            chosen = images.format_like(out, datas[0], self._max_pixels, fmt)
            data = images.encode_as(out, chosen, quality=quality, max_bytes=max_bytes)
            shown = self._preview_side
            return ProviderImage(data, preview=previews.of_image(out, shown, chosen) if shown else None)

        # One worker trip: Pillow holds the GIL while it encodes, so the preview gains nothing
        # from a second thread.
        return [await offline(render, model=model)]

    async def remove_background(self, source: ImageSource, hooks: JobHooks) -> list[ProviderImage]:
        """U²-Net cut-out with guided-filter edges: PNG, or lossless WebP when large.

        Raises:
            NotConfigured: the [local] extra or its model is missing.
        """
        load = await source.reader()  # the file is read once the model is free
        await hooks.progress("cutting out offline (U²-Net)", 0.2)

        def work() -> bytes:
            from tools.providers.local.matting import cut_out, encode_cutout

            out, _ = encode_cutout(cut_out(self._decode(load())))
            return out

        return [ProviderImage(await offline(work))]

    async def enhance(self, source: ImageSource, scale: int, hooks: JobHooks) -> list[ProviderImage]:
        """Lanczos upscale ×scale and a mild unsharp mask (no model).

        Raises:
            InvalidInput: the result would be too large.
        """
        from tools.providers.local.edits import MAX_OUTPUT_PIXELS

        data = await source.read()
        info = await images.in_worker(images.probe, data, self._max_pixels)
        if info.width * info.height * scale * scale > MAX_OUTPUT_PIXELS:
            raise InvalidInput(
                f"A {scale}× offline enhance of this {info.width}×{info.height} photo would be over "
                f"{MAX_OUTPUT_PIXELS // 1_000_000} MP: use a smaller scale or image."
            )
        await hooks.progress(f"enhancing offline (×{scale})", 0.2)

        def work() -> bytes:
            from tools.providers.local.edits import enhance

            return images.encode_like(enhance(self._decode(data), scale), data, self._max_pixels)

        return [ProviderImage(await offline(work))]

    async def remove_object(self, source: ImageSource, mask_png: bytes, hooks: JobHooks) -> list[ProviderImage]:
        """Inpaint a small masked object (white = remove); large masks are refused.

        Raises:
            InvalidInput: the mask covers too much of the photo for offline inpainting.
        """
        data = await source.read()
        await hooks.progress("removing the object offline", 0.2)

        def work() -> bytes:
            from tools.providers.local.edits import remove_small_object

            out = remove_small_object(self._decode(data), self._decode(mask_png))
            return images.encode_like(out, data, self._max_pixels)

        return [ProviderImage(await offline(work))]
