"""simulate_aging and transfer_makeup: YouCam's face features."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.toolkit.params import PAID_REMOTE, ImageRef
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, runtime_of
from tools.youcam_jobs import require_youcam, run_youcam

if TYPE_CHECKING:
    from tools.providers.youcam.client import YouCamClient


Result = Annotated[CallToolResult, ToolOutput]


def register(app: MCPServer) -> None:
    @app.tool(title="Simulate aging", annotations=PAID_REMOTE)
    @photo_tool
    async def simulate_aging(image: ImageRef, ctx: Context) -> Result:
        """Show a person at several ages, from younger to older, from one selfie (YouCam AI aging).

        Use a clear, front-facing photo of one person. Returns several images, sorted by age:
        each image's `info.res_age` is the age it shows, and the input photo (marked
        `info.input_photo`) takes its place in the series; `details` holds YouCam's estimate of
        the person's current age (`age`, `age_min`, `age_max`, `ages`). Costs 1 YouCam unit,
        charged only on success.
        """
        rt = runtime_of(ctx)
        require_youcam(rt)
        source = await rt.resolver.resolve(image)

        async def call(c: YouCamClient, job: JobContext) -> tuple[list[ProviderImage], dict[str, Any]]:
            outputs, info = await c.aging(source, job)
            details: dict[str, Any] = {**info, "ages": [o.meta.get("res_age") for o in outputs]}
            if "age" in info:
                await job.progress(f"estimated current age {info['age']}", None)
            return outputs, details

        return await run_youcam(ctx, "simulate_aging", "aging", {"image": source.label}, [source], call)

    @app.tool(title="Transfer makeup", annotations=PAID_REMOTE)
    @photo_tool
    async def transfer_makeup(
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
        ctx: Context,
    ) -> Result:
        """Copy the makeup look from a reference face onto the face in a photo (YouCam makeup transfer).

        Both photos should show one clear, front-facing face; they are downscaled to 1024 px.
        Costs 1 YouCam unit, charged only on success. Returns the made-up photo as a
        photo://results/<id> link with a preview; `details` may carry YouCam's product
        recommendation for the look.
        """
        rt = runtime_of(ctx)
        require_youcam(rt)
        source = await rt.resolver.resolve(image)
        ref = await rt.resolver.resolve(reference)

        async def call(c: YouCamClient, job: JobContext) -> tuple[list[ProviderImage], dict[str, Any]]:
            return await c.makeup(source, ref, job)

        params = {"image": source.label, "reference": ref.label}
        return await run_youcam(ctx, "transfer_makeup", "makeup", params, [source, ref], call)
