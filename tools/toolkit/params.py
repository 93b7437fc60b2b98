"""Parameter types shared by the tools: what the model reads in each schema."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from tools.toolkit.render import ToolOutput

ImageRef = Annotated[
    str,
    Field(
        description=(
            "The image: an absolute or ~ path, a file:// URI, an http(s) URL, a photo://results/<id> URI "
            "from an earlier result, a photo://uploads/<id> URI of the user's own photo (pick_image), or a "
            "data:image/...;base64, URI."
        ),
        examples=["~/Pictures/shoe.jpg", "photo://results/3f9a2c1b7d4e", "https://example.com/photo.png"],
        min_length=1,
        max_length=24_000_000,  # ~18 MB decoded: the resolver gives the clearer 15 MB message
    ),
]
OutputFormat = Literal["png", "jpeg", "webp"]
AspectRatio = Literal["1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4", "4:5", "5:4", "21:9"]

LOCAL_EDIT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
PAID_REMOTE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
# Reads provider state over the network (balances, catalogs): read-only, but open-world.
READ_ONLY_REMOTE = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)

# YouCam style ids exceed 2^53: integers in every schema, never floats.
StyleId = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        description="A style id from list_styles, as an integer (ids exceed 2^53: pass them exactly, never rounded)",
        examples=[22205685004925400],
    ),
]
GroupId = Annotated[
    int | None,
    Field(
        strict=True,
        ge=0,
        description="The style's group id from list_style_groups (optional: found from the catalog when omitted)",
    ),
]
Box = Annotated[list[int], Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in source pixels")]
# The output of every image-producing tool (its outputSchema is ToolOutput).
Result = Annotated[CallToolResult, ToolOutput]
