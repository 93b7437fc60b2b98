"""edit_photo: a natural-language edit of 1-5 photos on Aluo's photo-editor (Nano-Banana)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, AspectRatio, ImageRef, OutputFormat, Result
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, Produced, run_provider


@tool(
    title="Edit photos with a prompt", annotations=PAID_REMOTE, quote=priced("edit_photo", ["aluo"], units="num_images")
)
async def edit_photo(
    call: Call,
    prompt: Annotated[
        str,
        Field(
            description="What to change, in plain words (any language)",
            examples=["Change the product color to blue", "Put the shoe on a marble table, soft daylight"],
            min_length=1,
            max_length=4000,
        ),
    ],
    images: Annotated[
        list[ImageRef],
        Field(
            description="1 to 5 images to edit or combine; the first is the main subject", min_length=1, max_length=5
        ),
    ],
    aspect_ratio: Annotated[
        AspectRatio | None,
        Field(description="Output shape (optional; when omitted Aluo chooses, its documents do not say how)"),
    ] = None,
    output_format: Annotated[OutputFormat, Field(description="Output encoding")] = "png",
    num_images: Annotated[
        int,
        Field(
            description="How many edited versions to make (1-4; this server's cap, Aluo documents no maximum)",
            ge=1,
            le=4,
        ),
    ] = 1,
) -> Result:
    """Edit photos by describing the change: recolour a product, swap the scene, add or remove
    things, merge up to 5 images (Aluo photo-editor, Nano-Banana model).

    Costs 40 credits per output image on Aluo's Free plan, 35 on PRO (seed 001 gives the per-edit
    price; per image is an estimate); set PHOTO_MCP_ALUO_PLAN=pro for PRO keys. Nothing is
    charged if the edit fails. Usually takes 10-30 s; progress is reported while Aluo works. http(s) images are
    passed to Aluo as URLs; paths, data: URIs and photo://results/<id> are uploaded.
    Returns each edited image as a photo://results/<id> resource link with a preview.
    """
    rt = call.runtime
    order = candidates(rt.settings, "aluo", ["aluo"], "edit_photo", "edit photos")
    sources = [await rt.resolver.resolve(ref) for ref in images]

    async def attempt(client: Any, job: JobContext) -> Produced:
        outputs = await client.edit(
            prompt, sources, job, aspect_ratio=aspect_ratio, output_format=output_format, num_images=num_images
        )
        return outputs, {"aluo_task_id": job.job.provider_ref.get("task_id")}

    params = {"prompt": prompt, "aspect_ratio": aspect_ratio, "output_format": output_format, "num_images": num_images}
    return await run_provider(call, "edit_photo", order, attempt, params=params, inputs=sources, units=num_images)
