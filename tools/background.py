"""remove_background: one tool, four providers, routed.

`provider="auto"` tries `PHOTO_MCP_BACKGROUND_PROVIDERS` in order (default
aluo, youcam, removedo, local), skipping unconfigured ones, and falls through to the
next only on auth, credit or availability failures that cannot have charged.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core.errors import NotConfigured
from tools.core.jobs import JobContext, Outcome
from tools.core.refs import ImageSource
from tools.providers.base import ProviderImage
from tools.providers.local import INSTALL_HINT
from tools.providers.routing import first_that_works
from tools.runtime import Runtime
from tools.saving import save_images
from tools.toolkit.params import PAID_REMOTE, ImageRef
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, run_job, runtime_of

BackgroundProvider = Literal["auto", "aluo", "youcam", "removedo", "local"]
# Estimated credits per cut-out (Aluo does not document remove-bg's price; 1 is its smallest unit).
COST = {"aluo": 1.0, "youcam": 1.0, "removedo": 1.0, "local": 0.0}
SETUP = {
    "aluo": "set ALUO_API_KEY",
    "youcam": "set YOUCAM_API_KEY and YOUCAM_SECRET_KEY",
    "removedo": "set REMOVEDO_API_KEY",
    "local": f"install the offline extra: {INSTALL_HINT}",
}


def candidates(rt: Runtime, provider: BackgroundProvider) -> list[str]:
    """The providers to try, in order.

    Raises:
        NotConfigured: an explicit provider is not set up, or none is for auto.
    """
    settings = rt.settings
    if provider != "auto":
        if provider != "local" and not settings.configured(provider):
            raise NotConfigured(f"The {provider} provider is not configured: {SETUP[provider]}.")
        return [provider]
    chosen = [p for p in settings.background_providers if p == "local" or settings.configured(p)]
    if not chosen:
        raise NotConfigured(
            "No background-removal provider is available: "
            + "; ".join(f"{p}: {SETUP[p]}" for p in settings.background_providers)
            + "."
        )
    return chosen


async def run_backend(rt: Runtime, name: str, source: ImageSource, job: JobContext) -> list[ProviderImage]:
    """Cut out `source` with one provider."""
    if name == "local":
        from tools.local_ai_tools import local_cut_out

        return await local_cut_out(rt, source, job)
    client = await rt.client(name)
    return await client.remove_background(source, job)


async def route(rt: Runtime, job: JobContext, source: ImageSource, order: list[str]) -> Outcome:
    async def attempt(name: str) -> Outcome:
        await job.set_provider(name)
        await job.progress(f"removing the background with {name}", 0.05)
        outputs = await run_backend(rt, name, source, job)
        records = await save_images(
            rt, job, outputs, operation="remove_background", provider=name, inputs=[source.label]
        )
        return Outcome(records)

    return await first_that_works(order, attempt)


def register(app: MCPServer) -> None:
    @app.tool(title="Remove the background", annotations=PAID_REMOTE)
    @photo_tool
    async def remove_background(
        image: ImageRef,
        ctx: Context,
        provider: Annotated[
            BackgroundProvider,
            Field(
                description="auto (first configured of PHOTO_MCP_BACKGROUND_PROVIDERS), aluo, youcam, removedo or local"
            ),
        ] = "auto",
    ) -> Annotated[CallToolResult, ToolOutput]:
        """Cut the subject out of a photo: a transparent PNG (WebP for very large offline cut-outs).

        Providers: Aluo (BRIA model, synchronous), YouCam (SOD), Removedo (async job, 1 credit),
        or local (offline U²-Net, free; needs the [local] extra). "auto" tries the configured ones
        in order and falls through on auth, credit or outage failures that cannot have charged;
        the result says which provider ran and why others were skipped. Costs about 1 credit on
        a paid provider. Returns a photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        order = candidates(rt, provider)
        source = await rt.resolver.resolve(image)

        async def work(job: JobContext) -> Outcome:
            return await route(rt, job, source, order)

        params = {"provider": provider, "image": source.label}
        return await run_job(ctx, "remove_background", provider, params, work, estimate=COST[order[0]])
