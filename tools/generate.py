"""Text to image: generate_product_photo and generate_background (Aluo), generate_image (YouCam,
in a style from its catalog)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from tools.core.errors import InvalidInput
from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, AspectRatio, GroupId, OutputFormat, Result, StyleId
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, Produced, run_provider

Prompt = Annotated[
    str,
    Field(
        description="What to show, in plain words (Chinese or English)",
        examples=["A red ceramic coffee mug on a wooden table, morning light"],
        min_length=1,
        max_length=4000,
    ),
]


@tool(
    title="Generate product photos",
    annotations=PAID_REMOTE,
    quote=priced("generate_product_photo", ["aluo"], units="variants"),
)
async def generate_product_photo(
    call: Call,
    prompt: Prompt,
    aspect_ratio: Annotated[AspectRatio, Field(description="Output shape")] = "1:1",
    variants: Annotated[Literal[1, 2, 4], Field(description="How many alternatives to generate")] = 1,
    output_format: Annotated[OutputFormat, Field(description="Output encoding")] = "png",
    resolution: Annotated[
        Literal["1K", "2K", "4K"] | None,
        Field(
            description="Output resolution: 1K, 2K or 4K (omitted: Aluo's default, which its documents do not state)"
        ),
    ] = None,
) -> Result:
    """Generate product photos from a description (Aluo photo-generate).

    Costs 40 / 80 / 160 Aluo credits for 1 / 2 / 4 variants on the Free plan, 35 / 70 / 140 on
    PRO (documented, seed 002; set PHOTO_MCP_ALUO_PLAN=pro for PRO keys); nothing is charged if
    the generation fails. Progress is reported while Aluo works.
    Returns each image as a photo://results/<id> resource link with a preview.
    """
    order = candidates(call.runtime.settings, "aluo", ["aluo"], "generate_product_photo", "generate photos")

    async def attempt(client: Any, job: JobContext) -> Produced:
        outputs = await client.generate(
            prompt, job, size=aspect_ratio, variants=variants, output_format=output_format, resolution=resolution
        )
        return outputs, {"aluo_task_id": job.job.provider_ref.get("task_id")}

    params = {
        "prompt": prompt,
        "aspect_ratio": aspect_ratio,
        "variants": variants,
        "output_format": output_format,
        "resolution": resolution,
    }
    return await run_provider(call, "generate_product_photo", order, attempt, params=params, units=variants)


@tool(title="Generate a background", annotations=PAID_REMOTE, quote=priced("generate_background", ["aluo"]))
async def generate_background(call: Call, prompt: Prompt) -> Result:
    """Generate a backdrop image from a description (Aluo AI background), e.g. to put a
    cut-out on with place_on_background.

    Aluo publishes no price for this: estimated at 1 credit and recorded as estimated unless
    Aluo reports the amount. Synchronous, a few
    seconds. Returns the image as a photo://results/<id> resource link with a preview.
    """
    order = candidates(call.runtime.settings, "aluo", ["aluo"], "generate_background", "generate backgrounds")

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        return await client.generate_background(prompt, job)

    return await run_provider(call, "generate_background", order, attempt, params={"prompt": prompt})


@tool(title="Generate an image in a style", annotations=PAID_REMOTE, quote=priced("generate_image", ["youcam"]))
async def generate_image(
    call: Call,
    prompt: Annotated[str, Field(description="What to picture", min_length=1, max_length=2000)],
    style_id: StyleId,
    style_group_id: GroupId = None,
) -> Result:
    """Generate an image from a text prompt in a YouCam style (YouCam AI image generator, 1024 px).

    Pick the style with list_style_groups('image_generator') and list_styles; when
    `style_group_id` is omitted it is looked up in the cached catalog. No photo is needed. Costs
    about 1 YouCam unit (estimated: YouCam's documents give no per-task price), charged only on
    success. Returns a photo://results/<id> link with a preview.
    """
    rt = call.runtime
    order = candidates(rt.settings, "youcam", ["youcam"], "generate_image", "generate images")
    if not prompt.strip():
        raise InvalidInput("The prompt is empty: describe what to picture.")
    group = style_group_id
    if group is None:
        group = await (await rt.client("youcam")).find_style_group("image_generator", style_id)

    async def attempt(client: Any, job: JobContext) -> list[ProviderImage]:
        return await client.text_to_image(prompt, group, style_id, job)

    params = {"prompt": prompt, "style_id": style_id, "style_group_id": group}
    return await run_provider(call, "generate_image", order, attempt, params=params)
