"""Resources and completions: photo://results/{id} (image bytes with their own mime type), the
recent results list, the YouCam style catalogs as photo://styles/... JSON, and the completion of
result ids and style arguments."""

from __future__ import annotations

from urllib.parse import parse_qs

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    Resource,
    ResourceTemplateReference,
)

from server import prompts
from tools import styles
from tools.core import images, previews
from tools.core.echo import shorten
from tools.core.errors import InvalidInput, NotFound, PhotoError
from tools.core.results import RESULT_URI_PREFIX
from tools.runtime import Runtime

RECENT_LIMIT = 100
COMPLETION_LIMIT = 100


def register(app: MCPServer) -> None:
    # Registered for resources/templates/list and completions; reads of this template are
    # answered by `read_result` (a template cannot vary its mime type per result).
    @app.resource(
        "photo://results/{result_id}",
        name="result",
        title="Result image",
        description="An image produced by a tool (PNG, JPEG or WebP bytes). Pass the URI to any tool as an image.",
        mime_type="image/png",
    )
    async def result(result_id: str) -> bytes:  # pragma: no cover - served by read_result
        raise ResourceError("served by the photo-mcp reader")

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
            return await styles.styles_document(ctx.request_context.lifespan_context, feature, None)
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
            group = _integer(style_group_id, "style group id")
            return await styles.styles_document(ctx.request_context.lifespan_context, feature, group)
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
            group, style = _integer(style_group_id, "style group id"), _integer(style_id, "style id")
            return await styles.style_document(ctx.request_context.lifespan_context, feature, group, style)
        except PhotoError as exc:
            raise ResourceError(exc.message) from None

    @app.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        runtime = getattr(app, "runtime", None)
        if runtime is None:
            return None
        if isinstance(ref, ResourceTemplateReference) and ref.uri.startswith(RESULT_URI_PREFIX):
            values: list[str] | None = await complete_result_id(runtime, argument.value)
        elif isinstance(ref, PromptReference):
            args = context.arguments if context and context.arguments else None
            values = await prompts.complete_argument(runtime, ref.name, argument.name, argument.value, args)
        else:
            args = context.arguments if context and context.arguments else None
            values = await styles.complete_style_argument(runtime, argument.name, argument.value, args)
        if values is None:
            return None
        return Completion(values=values[:COMPLETION_LIMIT], total=len(values), has_more=len(values) > COMPLETION_LIMIT)


def _integer(text: str, what: str) -> int:
    """Raises:
    InvalidInput: `text` is not a non-negative integer.
    """
    if not text.isdigit():
        raise InvalidInput(f"{text[:40]!r} is not a {what} (an integer).")
    return int(text)


async def read_result(runtime: Runtime, uri: str) -> list[ReadResourceContents]:
    """The bytes of a photo://results/{id} resource; `?max_side=N` gives a copy at most N px on its
    long side (JPEG, or PNG with transparency), for clients that cannot take the full file in one
    message.

    Raises:
        ResourceNotFoundError: for an unknown id or a deleted file.
        ResourceError: if the file cannot be read, or `max_side` is not a size.
    """
    path, _, query = uri[len(RESULT_URI_PREFIX) :].partition("?")
    max_side = _max_side(query)
    try:
        record, data = await runtime.store.read(path.strip("/"))
        if max_side is not None:
            small, mime = await images.in_worker(previews.preview, data, max_side, runtime.settings.max_pixels)
            return [ReadResourceContents(content=small, mime_type=mime)]
    except NotFound as exc:
        raise ResourceNotFoundError(exc.message) from None
    except (PhotoError, OSError) as exc:
        raise ResourceError(f"Cannot read {shorten(uri, 60)}: {exc}") from None
    return [ReadResourceContents(content=data, mime_type=record.mime_type)]


def _max_side(query: str) -> int | None:
    """Raises:
    ResourceError: a `max_side` that is not a whole number of pixels from 16 to 8192.
    """
    values = parse_qs(query).get("max_side")
    if not values:
        return None
    if not values[0].isdigit() or not 16 <= int(values[0]) <= 8192:
        raise ResourceError(f"max_side={shorten(values[0], 20)!r}: use a whole number of pixels from 16 to 8192.")
    return int(values[0])


async def recent_resources(runtime: Runtime) -> list[Resource]:
    records = await runtime.store.recent(RECENT_LIMIT)
    return [
        Resource(
            uri=r.uri,
            name=r.name,
            title=f"{r.operation} ({r.provider})",
            description=f"{r.width}×{r.height} from {r.operation} on {r.provider}",
            mime_type=r.mime_type,
            size=r.bytes,
        )
        for r in records
    ]


async def complete_result_id(runtime: Runtime, prefix: str) -> list[str]:
    return [r.id for r in await runtime.store.recent(RECENT_LIMIT) if r.id.startswith(prefix)]
