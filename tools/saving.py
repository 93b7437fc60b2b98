"""Saving provider output as results: sniffed, sized, indexed, with lineage."""

from __future__ import annotations

from typing import Any

from tools.core import images
from tools.core.errors import InvalidInput, ProviderError
from tools.core.jobs import JobContext
from tools.core.results import ResultRecord
from tools.providers.base import ProviderImage
from tools.runtime import Runtime


async def save_images(
    rt: Runtime,
    job: JobContext,
    outputs: list[ProviderImage],
    *,
    operation: str,
    provider: str,
    inputs: list[str],
) -> list[ResultRecord]:
    """Save every provider image as a result (nothing is saved if any is not an image).

    Raises:
        ProviderError: a returned file is not an image (credits may have been charged).
    """
    infos: list[images.ImageInfo] = []
    for out in outputs:
        try:
            infos.append(await images.in_worker(images.probe, out.data, rt.settings.max_pixels))
        except InvalidInput:
            raise ProviderError(
                f"{provider} returned a result that is not an image; it may have charged for the job. "
                "Try again, or use another provider.",
                provider=provider,
                charged=True,
            ) from None
    records = []
    for out, info in zip(outputs, infos, strict=True):
        meta: dict[str, Any] = dict(out.meta)
        records.append(
            await rt.store.save(
                out.data,
                mime_type=info.mime_type,
                width=info.width,
                height=info.height,
                operation=operation,
                provider=provider,
                job_id=job.job.id,
                inputs=inputs,
                meta=meta | ({"provider_ref": out.ref} if out.ref else {}),
            )
        )
    return records
