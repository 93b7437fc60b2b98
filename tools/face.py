"""simulate_aging and transfer_makeup: YouCam's face features."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.routing import candidates
from tools.toolkit.declare import tool
from tools.toolkit.params import PAID_REMOTE, ImageRef, Result
from tools.toolkit.quote import priced
from tools.toolkit.run import Call, Produced, run_provider


@tool(title="Simulate aging", annotations=PAID_REMOTE, quote=priced("simulate_aging", ["youcam"]))
async def simulate_aging(call: Call, image: ImageRef) -> Result:
    """Show a person at several ages, from younger to older, from one selfie (YouCam AI aging).

    Use a clear, front-facing photo of one person. Returns several images, sorted by age:
    each image's `info.res_age` is the age it shows, and the input photo (marked
    `info.input_photo`) takes its place in the series; `details` holds YouCam's estimate of the
    person's current age (`age`), the youngest and oldest ages of the returned series
    (`age_min`, `age_max`) and every image's age in order (`ages`). Costs about 1 YouCam unit
    (estimated: YouCam's documents give no per-task price), charged only on success.
    """
    rt = call.runtime
    order = candidates(rt.settings, "youcam", ["youcam"], "simulate_aging", "simulate aging")
    source = await rt.resolver.resolve(image)

    async def attempt(client: Any, job: JobContext) -> Produced:
        outputs, info = await client.aging(source, job)
        details: dict[str, Any] = {**info, "ages": [o.meta.get("res_age") for o in outputs]}
        if "age" in info:
            await job.progress(f"estimated current age {info['age']}", None)
        return outputs, details

    return await run_provider(call, "simulate_aging", order, attempt, params={"image": source.label}, inputs=[source])


@tool(title="Transfer makeup", annotations=PAID_REMOTE, quote=priced("transfer_makeup", ["youcam"]))
async def transfer_makeup(
    call: Call,
    image: ImageRef,
    reference: Annotated[
        str,
        Field(
            description="A photo of a face wearing the makeup look to copy (same kinds of reference as image)",
            examples=["~/Pictures/look.jpg", "https://example.com/makeup-look.jpg"],
            min_length=1,
            max_length=24_000_000,
        ),
    ],
) -> Result:
    """Copy the makeup look from a reference face onto the face in a photo (YouCam makeup transfer).

    Both photos should show one clear, front-facing face; they are downscaled to 1024 px. Costs
    about 1 YouCam unit (estimated: YouCam's documents give no per-task price), charged only on
    success. Returns the made-up photo as a photo://results/<id> link with a preview; `details`
    may carry YouCam's product recommendation for the look.
    """
    rt = call.runtime
    order = candidates(rt.settings, "youcam", ["youcam"], "transfer_makeup", "transfer makeup")
    source = await rt.resolver.resolve(image)
    ref = await rt.resolver.resolve(reference)

    async def attempt(client: Any, job: JobContext) -> Produced:
        return await client.makeup(source, ref, job)

    params = {"image": source.label, "reference": ref.label}
    return await run_provider(call, "transfer_makeup", order, attempt, params=params, inputs=[source, ref])
