"""Resources: photo://results/{id} (image bytes with their own mime type), the recent
results list, and completion of result ids."""

from __future__ import annotations

from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import Resource

from tools.core.errors import NotFound, PhotoError
from tools.core.results import RESULT_URI_PREFIX
from tools.runtime import Runtime

RECENT_LIMIT = 100


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


async def read_result(runtime: Runtime, uri: str) -> list[ReadResourceContents]:
    """The bytes of a photo://results/{id} resource.

    Raises:
        ResourceNotFoundError: for an unknown id or a deleted file.
        ResourceError: if the file cannot be read.
    """
    result_id = uri[len(RESULT_URI_PREFIX) :].strip("/")
    try:
        record, data = await runtime.store.read(result_id)
    except NotFound as exc:
        raise ResourceNotFoundError(exc.message) from None
    except (PhotoError, OSError) as exc:
        raise ResourceError(f"Cannot read {uri}: {exc}") from None
    return [ReadResourceContents(content=data, mime_type=record.mime_type)]


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
