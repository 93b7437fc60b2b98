"""try_hairstyle: YouCam's hair features (hairstyle, wig, hair extension, bangs, volume)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.toolkit.params import PAID_REMOTE, ImageRef
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, runtime_of
from tools.youcam_jobs import GroupId, StyleId, run_youcam, youcam_client

if TYPE_CHECKING:
    from tools.providers.youcam.client import YouCamClient


HairKind = Literal["hairstyle", "wig", "hair_extension", "bangs", "hair_volume"]


def register(app: MCPServer) -> None:
    @app.tool(title="Try a hairstyle", annotations=PAID_REMOTE)
    @photo_tool
    async def try_hairstyle(
        image: ImageRef,
        style_id: StyleId,
        ctx: Context,
        kind: Annotated[
            HairKind,
            Field(
                description="Which YouCam hair feature the style belongs to: hairstyle, wig, hair_extension, "
                "bangs or hair_volume"
            ),
        ] = "hairstyle",
        style_group_id: GroupId = None,
    ) -> Annotated[CallToolResult, ToolOutput]:
        """Show the person in a photo with another hairstyle, wig, hair extension, bangs or hair volume (YouCam).

        Pick `style_id` (and its group) with list_style_groups / list_styles for the same `kind`;
        when `style_group_id` is omitted it is looked up in the cached catalog. Use a clear,
        front-facing photo of one person (face at least 128 px wide); it is downscaled to 1024 px
        (JPEG for hairstyle) before upload. A photo://results/<id> from an earlier YouCam result
        is reused without a second upload. Costs 1 YouCam unit, charged only on success.
        Returns the new photo as a photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        client = await youcam_client(rt)
        source = await rt.resolver.resolve(image)
        group = style_group_id if style_group_id is not None else await client.find_style_group(kind, style_id)

        async def call(c: YouCamClient, job: JobContext) -> list[ProviderImage]:
            return await c.hair(kind, source, group, style_id, job)

        params = {"kind": kind, "style_id": style_id, "style_group_id": group, "image": source.label}
        return await run_youcam(ctx, "try_hairstyle", kind, params, [source], call)
