"""remove_background: one tool, four providers, routed.

`provider="auto"` tries `PHOTO_MCP_BACKGROUND_PROVIDERS` in order (default aluo, youcam,
removedo, local), skipping the ones not set up, and falls through to the next only on auth,
credit or availability failures that cannot have charged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, ImageRef, Result
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, run_provider

BackgroundProvider = Literal["auto", "aluo", "youcam", "removedo", "local"]


@tool(
    title="Remove the background",
    annotations=PAID_REMOTE,
    quote=priced("remove_background", lambda s: s.background_providers, provider="provider"),
)
async def remove_background(
    call: Call,
    image: ImageRef,
    provider: Annotated[
        BackgroundProvider,
        Field(description="auto (first configured of PHOTO_MCP_BACKGROUND_PROVIDERS), aluo, youcam, removedo or local"),
    ] = "auto",
    output_format: Annotated[
        Literal["png", "webp"],
        Field(description="Cut-out format: png or webp (webp on YouCam only; Aluo, Removedo and local return PNG)"),
    ] = "png",
) -> Result:
    """Cut the subject out of a photo: a transparent PNG (WebP for very large offline cut-outs).

    Providers: Aluo (BRIA model, synchronous), YouCam (SOD), Removedo (async job), or local
    (offline U²-Net, free; needs the [local] extra; its edge pixels carry the subject's own
    colour, so no glow of the old background shows on a new one). "auto" tries the configured
    ones in order and falls through on auth, credit or outage failures that cannot have charged;
    the result says which provider ran and why others were skipped. Costs: Removedo 1 credit per
    job (documented; whether failed jobs are refunded is not documented); Aluo and YouCam about 1
    (estimated: their documents give no price for it). Returns a photo://results/<id> link with
    a preview.
    """
    rt = call.runtime
    order = candidates(
        rt.settings, provider, rt.settings.background_providers, "remove_background", "remove backgrounds"
    )
    source = await rt.resolver.resolve(image)

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        if client.name == "youcam":
            return await client.remove_background(source, job, output_format=output_format)
        return await client.remove_background(source, job)

    params = {"provider": provider, "image": source.label, "output_format": output_format}
    return await run_provider(call, "remove_background", order, attempt, params=params, inputs=[source])
