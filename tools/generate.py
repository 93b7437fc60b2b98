"""Text to image on Aluo: generate_product_photo (photo-generate) and generate_background."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core.jobs import JobContext, Outcome
from tools.providers.aluo.spec import GENERATE_PRICE
from tools.saving import save_images
from tools.toolkit.params import PAID_REMOTE, AspectRatio, OutputFormat
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, run_job, runtime_of

if TYPE_CHECKING:
    from tools.providers.aluo.client import AluoClient


Result = Annotated[CallToolResult, ToolOutput]
# Aluo does not document ai-generate-background's price: 1 credit is the estimate the caps see;
# the ledger records what Aluo reports it deducted.
BACKGROUND_ESTIMATE = 1.0
Prompt = Annotated[
    str,
    Field(
        description="What to show, in plain words (Chinese or English)",
        examples=["A red ceramic coffee mug on a wooden table, morning light"],
        min_length=1,
        max_length=4000,
    ),
]


def register(app: MCPServer) -> None:
    @app.tool(title="Generate product photos", annotations=PAID_REMOTE)
    @photo_tool
    async def generate_product_photo(
        prompt: Prompt,
        ctx: Context,
        aspect_ratio: Annotated[AspectRatio, Field(description="Output shape")] = "1:1",
        variants: Annotated[Literal[1, 2, 4], Field(description="How many alternatives to generate")] = 1,
        output_format: Annotated[OutputFormat, Field(description="Output encoding")] = "png",
        resolution: Annotated[
            Literal["1K", "2K", "4K"] | None, Field(description="Output resolution (default: Aluo's, about 1K)")
        ] = None,
    ) -> Result:
        """Generate product photos from a description (Aluo photo-generate).

        Costs 40 / 80 / 160 Aluo credits for 1 / 2 / 4 variants on the Free plan (35 / 70 / 140 on
        PRO); nothing is charged if the generation fails. Progress is reported while Aluo works.
        Returns each image as a photo://results/<id> resource link with a preview.
        """
        rt = runtime_of(ctx)
        client: AluoClient = await rt.client("aluo")  # NotConfigured (ALUO_API_KEY) before anything runs

        async def work(job: JobContext) -> Outcome:
            outputs = await client.generate(
                prompt, job, size=aspect_ratio, variants=variants, output_format=output_format, resolution=resolution
            )
            records = await save_images(
                rt, job, outputs, operation="generate_product_photo", provider="aluo", inputs=[]
            )
            return Outcome(records, details={"aluo_task_id": job.job.provider_ref.get("task_id")})

        params = {
            "prompt": prompt,
            "inputs": [],
            "aspect_ratio": aspect_ratio,
            "variants": variants,
            "output_format": output_format,
            "resolution": resolution,
        }
        estimate = GENERATE_PRICE[variants]
        return await run_job(ctx, "generate_product_photo", "aluo", params, work, estimate=estimate)

    @app.tool(title="Generate a background", annotations=PAID_REMOTE)
    @photo_tool
    async def generate_background(prompt: Prompt, ctx: Context) -> Result:
        """Generate a backdrop image from a description (Aluo AI background), e.g. to put a
        cut-out on with place_on_background.

        Aluo does not publish this endpoint's price: the call is estimated at 1 credit for the
        credit caps, and the ledger records what Aluo reports it deducted. Synchronous, a few
        seconds. Returns the image as a photo://results/<id> resource link with a preview.
        """
        rt = runtime_of(ctx)
        client: AluoClient = await rt.client("aluo")  # NotConfigured (ALUO_API_KEY) before anything runs

        async def work(job: JobContext) -> Outcome:
            outputs = await client.generate_background(prompt, job)
            records = await save_images(rt, job, outputs, operation="generate_background", provider="aluo", inputs=[])
            return Outcome(records)

        params = {"prompt": prompt, "inputs": []}
        return await run_job(ctx, "generate_background", "aluo", params, work, estimate=BACKGROUND_ESTIMATE)
