"""YouCam style catalogs (list_style_groups, list_styles, photo://styles/... resources, argument
completion) and generate_image (YouCam text-to-image, which takes a style from the catalog).

Catalog pages are cached by the client for YOUCAM_CATALOG_TTL seconds. Style ids exceed 2^53:
they stay Python ints end to end and are integers in every schema (never floats).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp_types import CallToolResult
from pydantic import BaseModel, Field

from tools.core.errors import InvalidInput, PhotoError
from tools.core.jobs import JobContext
from tools.providers.base import ProviderImage
from tools.providers.youcam.spec import Style, StylePage
from tools.runtime import Runtime
from tools.toolkit.params import PAID_REMOTE, READ_ONLY_REMOTE
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, runtime_of
from tools.youcam_jobs import GroupId, StyleId, run_youcam, youcam_client

if TYPE_CHECKING:
    from tools.providers.youcam.client import YouCamClient


CatalogFeature = Literal["hairstyle", "wig", "hair_extension", "bangs", "hair_volume", "image_generator"]
FEATURE_NAMES: tuple[str, ...] = get_args(CatalogFeature)
FeatureParam = Annotated[
    CatalogFeature,
    Field(
        description="hairstyle, wig, hair_extension, bangs, hair_volume (for try_hairstyle) or image_generator "
        "(for generate_image)"
    ),
]
Cursor = Annotated[
    str | None, Field(description="next_cursor from the previous page (omit for the first page)", max_length=512)
]
COMPLETION_LIMIT = 100


class StyleEntry(BaseModel):
    id: int = Field(description="Pass it as an integer exactly as given (ids exceed 2^53)")
    title: str
    thumbnail: str | None = Field(default=None, description="Preview image URL (styles only)")


class StyleListing(BaseModel):
    feature: str
    style_group_id: int | None = Field(default=None, description="The group listed (None for a list of groups)")
    items: list[StyleEntry]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")


def _entries(items: list[Style]) -> list[StyleEntry]:
    return [StyleEntry(id=s.id, title=s.title, thumbnail=s.thumbnail) for s in items]


def _listing(feature: str, group: int | None, page: StylePage) -> StyleListing:
    return StyleListing(feature=feature, style_group_id=group, items=_entries(page.items), next_cursor=page.next_cursor)


def _feature(value: str) -> str:
    if value not in FEATURE_NAMES:
        raise InvalidInput(f"Unknown style feature {value!r}; use one of {', '.join(FEATURE_NAMES)}.")
    return value


async def styles_document(rt: Runtime, feature: str, group: int | None) -> str:
    """JSON for photo://styles/{feature} (every group with its first page of styles) or
    photo://styles/{feature}/{group} (every style of one group)."""
    client = await youcam_client(rt)
    if group is not None:
        styles = [s.model_dump() for s in _entries(await client.all_styles(feature, group))]
        return json.dumps({"feature": feature, "style_group_id": group, "styles": styles})
    groups = []
    for g in await client.all_style_groups(feature):
        page = await client.styles(feature, g.id)
        groups.append(
            {
                "id": g.id,
                "title": g.title,
                "styles": [s.model_dump() for s in _entries(page.items)],
                "more_styles": f"photo://styles/{feature}/{g.id}" if page.next_cursor else None,
            }
        )
    return json.dumps({"feature": feature, "groups": groups})


async def complete_style_argument(
    rt: Runtime, name: str, value: str, context: dict[str, str] | None
) -> list[str] | None:
    """Completions for the `feature`, `style_group_id` and `style_id` arguments (None: not ours).

    Group and style ids need YouCam: unconfigured or failing, they complete to nothing.
    """
    context = context or {}
    if name == "feature":
        return [f for f in FEATURE_NAMES if f.startswith(value)]
    if name not in ("style_group_id", "style_id"):
        return None
    feature = context.get("feature") or context.get("kind") or "hairstyle"
    if feature not in FEATURE_NAMES or not rt.settings.configured("youcam"):
        return []
    try:
        client = await youcam_client(rt)
        if name == "style_group_id":
            items = await client.all_style_groups(feature)
        else:
            group = context.get("style_group_id", "")
            if not group.isdigit():
                return []
            items = await client.all_styles(feature, int(group))
    except PhotoError:
        return []
    return [str(s.id) for s in items if str(s.id).startswith(value)]


def register(app: MCPServer) -> None:
    @app.tool(title="List YouCam style groups", annotations=READ_ONLY_REMOTE)
    @photo_tool
    async def list_style_groups(feature: FeatureParam, ctx: Context, cursor: Cursor = None) -> StyleListing:
        """List the style groups (e.g. Female, Male, Short) of a YouCam feature, one page at a time. Free.

        Then call list_styles with a group's id to see its styles. Pages hold up to 20 groups;
        pass `next_cursor` back as `cursor` for the next one. Ids are large integers: pass them
        back exactly.
        """
        client = await youcam_client(runtime_of(ctx))
        return _listing(feature, None, await client.style_groups(feature, cursor))

    @app.tool(title="List YouCam styles", annotations=READ_ONLY_REMOTE)
    @photo_tool
    async def list_styles(
        feature: FeatureParam,
        style_group_id: Annotated[int, Field(strict=True, ge=0, description="A group id from list_style_groups")],
        ctx: Context,
        cursor: Cursor = None,
    ) -> StyleListing:
        """List the styles in one YouCam style group: id, title and a thumbnail URL, up to 20 per page. Free.

        Use a style's id with try_hairstyle (hair features) or generate_image (image_generator).
        Pass `next_cursor` back as `cursor` for the next page.
        """
        client = await youcam_client(runtime_of(ctx))
        return _listing(feature, style_group_id, await client.styles(feature, style_group_id, cursor))

    @app.tool(title="Generate an image in a style", annotations=PAID_REMOTE)
    @photo_tool
    async def generate_image(
        prompt: Annotated[str, Field(description="What to picture", min_length=1, max_length=2000)],
        style_id: StyleId,
        ctx: Context,
        style_group_id: GroupId = None,
    ) -> Annotated[CallToolResult, ToolOutput]:
        """Generate an image from a text prompt in a YouCam style (YouCam AI image generator, 1024 px).

        Pick the style with list_style_groups('image_generator') and list_styles; when
        `style_group_id` is omitted it is looked up in the cached catalog. No photo is needed.
        Costs 1 YouCam unit, charged only on success. Returns a photo://results/<id> link with a preview.
        """
        rt = runtime_of(ctx)
        client = await youcam_client(rt)
        if not prompt.strip():
            raise InvalidInput("The prompt is empty: describe what to picture.")
        group = style_group_id
        if group is None:
            group = await client.find_style_group("image_generator", style_id)

        async def call(c: YouCamClient, job: JobContext) -> list[ProviderImage]:
            return await c.text_to_image(prompt, group, style_id, job)

        params = {"prompt": prompt, "style_id": style_id, "style_group_id": group}
        return await run_youcam(ctx, "generate_image", "image_generator", params, [], call)

    @app.resource(
        "photo://styles/{feature}",
        name="styles",
        title="YouCam style catalog",
        description="A YouCam feature's style groups, each with its first styles (JSON). feature: hairstyle, wig, "
        "hair_extension, bangs, hair_volume or image_generator.",
        mime_type="application/json",
    )
    async def styles_resource(feature: str, ctx: Context) -> str:
        try:
            return await styles_document(runtime_of(ctx), _feature(feature), None)
        except PhotoError as exc:
            raise ResourceError(exc.message) from None

    @app.resource(
        "photo://styles/{feature}/{style_group_id}",
        name="style-group",
        title="YouCam styles of one group",
        description="Every style of one YouCam style group (JSON): id, title, thumbnail.",
        mime_type="application/json",
    )
    async def style_group_resource(feature: str, style_group_id: str, ctx: Context) -> str:
        try:
            if not style_group_id.isdigit():
                raise InvalidInput(f"{style_group_id!r} is not a style group id (an integer).")
            return await styles_document(runtime_of(ctx), _feature(feature), int(style_group_id))
        except PhotoError as exc:
            raise ResourceError(exc.message) from None

    @app.resource(
        "photo://styles/{feature}/{style_group_id}/{style_id}",
        name="style",
        title="One YouCam style",
        description="One YouCam style (JSON): id, title, thumbnail, and the tool call that applies it.",
        mime_type="application/json",
    )
    async def style_resource(feature: str, style_group_id: str, style_id: str, ctx: Context) -> str:
        try:
            if not (style_group_id.isdigit() and style_id.isdigit()):
                raise InvalidInput("Style group and style ids are integers.")
            feature = _feature(feature)
            client = await youcam_client(runtime_of(ctx))
            styles = await client.all_styles(feature, int(style_group_id))
            match = next((s for s in styles if s.id == int(style_id)), None)
            if match is None:
                raise InvalidInput(f"No style {style_id} in {feature} style group {style_group_id}.")
        except PhotoError as exc:
            raise ResourceError(exc.message) from None
        arguments: dict[str, object] = {"style_id": match.id, "style_group_id": int(style_group_id)}
        if feature == "image_generator":
            tool = "generate_image"
        else:
            tool = "try_hairstyle"
            arguments["kind"] = feature
        entry = _entries([match])[0].model_dump()
        return json.dumps(
            {
                "feature": feature,
                "style_group_id": int(style_group_id),
                **entry,
                "use": {"tool": tool, "arguments": arguments},
            }
        )
