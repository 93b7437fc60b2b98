"""try_hairstyle: YouCam's hair features (hairstyle, wig, hair extension, bangs, volume)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, GroupId, ImageRef, Result, StyleId
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, run_provider

HairKind = Literal["hairstyle", "wig", "hair_extension", "bangs", "hair_volume"]


@tool(title="Try a hairstyle", annotations=PAID_REMOTE, quote=priced("try_hairstyle", ["youcam"]))
async def try_hairstyle(
    call: Call,
    image: ImageRef,
    style_id: StyleId,
    kind: Annotated[
        HairKind,
        Field(
            description="Which YouCam hair feature the style belongs to: hairstyle, wig, hair_extension, "
            "bangs or hair_volume"
        ),
    ] = "hairstyle",
    style_group_id: GroupId = None,
) -> Result:
    """Show the person in a photo with another hairstyle, wig, hair extension, bangs or hair volume (YouCam).

    Pick `style_id` (and its group) with list_style_groups / list_styles for the same `kind`;
    when `style_group_id` is omitted it is looked up in the cached catalog. Use a clear, front-
    facing photo of one person: the face must be at least 128 px wide after the photo is fitted
    to 1024 px (pose within pitch ±10°, yaw ±45°, roll ±15°); photos too narrow for that are
    refused before upload. A photo://results/<id> from an earlier YouCam result is reused
    without a second upload. Costs about 1 YouCam unit (estimated: YouCam's documents give no
    per-task price), charged only on success. Returns the new photo as a photo://results/<id>
    link with a preview.
    """
    rt = call.runtime
    order = candidates(rt.settings, "youcam", ["youcam"], "try_hairstyle", "try hairstyles")
    source = await rt.resolver.resolve(image)
    group = style_group_id
    if group is None:
        group = await (await rt.client("youcam")).find_style_group(kind, style_id)

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        return await client.hair(kind, source, group, style_id, job)

    params = {"kind": kind, "style_id": style_id, "style_group_id": group, "image": source.label}
    return await run_provider(call, "try_hairstyle", order, attempt, params=params, inputs=[source])
