"""YouCam style catalogs: list_style_groups and list_styles, the JSON behind the photo://styles/...
resources, and the completion of `feature`, `style_group_id` and `style_id` arguments.

Catalog pages are cached by the client for YOUCAM_CATALOG_TTL seconds. Style ids exceed 2^53:
they stay Python ints end to end and are integers in every schema (never floats).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field

from tools.core.errors import InvalidInput, PhotoError
from tools.providers import configured
from tools.providers.routing import candidates
from tools.providers.youcam.spec import Style, StylePage
from tools.runtime import Runtime
from tools.toolkit.declare import tool
from tools.toolkit.params import READ_ONLY_REMOTE
from tools.toolkit.run import Call

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


def check_feature(value: str) -> str:
    """Raises:
    InvalidInput: `value` is not a catalog feature.
    """
    if value not in FEATURE_NAMES:
        raise InvalidInput(f"Unknown style feature {value[:40]!r}; use one of {', '.join(FEATURE_NAMES)}.")
    return value


async def _youcam(rt: Runtime) -> Any:
    candidates(rt.settings, "youcam", ["youcam"], "list_styles", "list styles")
    return await rt.client("youcam")


@tool(title="List YouCam style groups", annotations=READ_ONLY_REMOTE)
async def list_style_groups(call: Call, feature: FeatureParam, cursor: Cursor = None) -> StyleListing:
    """List the style groups (e.g. Female, Male, Short) of a YouCam feature, one page at a time. Free.

    Then call list_styles with a group's id to see its styles. Pages hold up to 20 groups;
    pass `next_cursor` back as `cursor` for the next one. Ids are large integers: pass them
    back exactly.
    """
    client = await _youcam(call.runtime)
    return _listing(feature, None, await client.style_groups(feature, cursor))


@tool(title="List YouCam styles", annotations=READ_ONLY_REMOTE)
async def list_styles(
    call: Call,
    feature: FeatureParam,
    style_group_id: Annotated[int, Field(strict=True, ge=0, description="A group id from list_style_groups")],
    cursor: Cursor = None,
) -> StyleListing:
    """List the styles in one YouCam style group: id, title and a thumbnail URL, up to 20 per page. Free.

    Use a style's id with try_hairstyle (hair features) or generate_image (image_generator).
    Pass `next_cursor` back as `cursor` for the next page.
    """
    client = await _youcam(call.runtime)
    return _listing(feature, style_group_id, await client.styles(feature, style_group_id, cursor))


async def styles_document(rt: Runtime, feature: str, group: int | None) -> str:
    """JSON for photo://styles/{feature} (every group with its first page of styles) or
    photo://styles/{feature}/{group} (every style of one group).

    Raises:
        PhotoError: YouCam is not configured or failed.
    """
    client = await _youcam(rt)
    feature = check_feature(feature)
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


async def style_document(rt: Runtime, feature: str, group: int, style_id: int) -> str:
    """JSON for photo://styles/{feature}/{group}/{style}: the style and the tool call that applies it.

    Raises:
        PhotoError: unknown style, or YouCam is not configured or failed.
    """
    feature = check_feature(feature)
    client = await _youcam(rt)
    match = next((s for s in await client.all_styles(feature, group) if s.id == style_id), None)
    if match is None:
        raise InvalidInput(f"No style {style_id} in {feature} style group {group}.")
    arguments: dict[str, object] = {"style_id": match.id, "style_group_id": group}
    if feature == "image_generator":
        use = "generate_image"
    else:
        use = "try_hairstyle"
        arguments["kind"] = feature
    entry = _entries([match])[0].model_dump()
    return json.dumps(
        {"feature": feature, "style_group_id": group, **entry, "use": {"tool": use, "arguments": arguments}}
    )


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
    if feature not in FEATURE_NAMES or not configured(rt.settings, "youcam"):
        return []
    try:
        client = await rt.client("youcam")
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
