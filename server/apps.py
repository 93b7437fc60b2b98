"""MCP Apps (`io.modelcontextprotocol/ui`): the result viewer, the picture picker, upload URLs.

    ui://photo-mcp/viewer.html   one self-contained HTML document (server/viewer/: inline CSS and
                                 JS, a strict CSP with hashes, no network), text/html;profile=mcp-app
    image-producing tools        declare it in `_meta.ui.resourceUri` (`ui_meta`, used by the adapter)
    pick_image                   opens the viewer's drop zone; without Apps, over HTTP, it hands out
                                 a one-time upload URL instead
    app-only tools (visibility ["app"], hidden from the model and from clients without Apps):
        upload_image             the drop zone's bytes -> photo://uploads/<id>
        view_result              a result's lineage and the "before" image for the comparison slider
        job_status               a running job's progress (waits for a change), for the progress bar
    /uploads/{secret}            the one-time upload URL (server/upload_url.py)

Tool results are the same for every client: the model gets the short text, resource links and
small previews; full-size bytes reach the view only through the host (resources/read, the
app-only tools), never through the model's context.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.apps import Apps, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from server.auth import caller_identity
from server.icons import icons_for
from server.viewer import viewer_html
from tools import uploads
from tools.core import images, previews
from tools.core.errors import NotFound, PhotoError
from tools.core.principals import EDIT, READ, MissingScope, acting_for
from tools.core.results import UPLOAD_URI_PREFIX
from tools.runtime import Runtime
from tools.toolkit.params import Result

VIEWER_URI = "ui://photo-mcp/viewer.html"
BEFORE_SIDE = 1600  # the comparison's "before" image: plenty for a chat-sized view
APP_ONLY = ["app"]

APP_TOOL = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
UPLOAD_TOOL = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
PICK_TOOL = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


class Picked(BaseModel):
    mode: str = Field(description="picker (the viewer's drop zone opened), upload_url, or none")
    purpose: str = ""
    upload_url: str | None = Field(default=None, description="One-time upload link (HTTP servers without Apps)")
    expires_in_s: int | None = None


class Uploaded(BaseModel):
    id: str
    uri: str = Field(description="photo://uploads/{id}: pass it to any tool as an image")
    name: str
    mime_type: str
    width: int
    height: int
    bytes: int


class ResultView(BaseModel):
    id: str
    uri: str
    operation: str
    provider: str
    inputs: list[str]
    before: dict[str, str] | None = Field(description="The first input, shown as an image block")


class JobProgress(BaseModel):
    job_id: str
    status: str
    progress: float
    message: str
    elapsed_s: float
    changed: bool


def ui_meta(fn: Any) -> dict[str, Any] | None:
    """`_meta` for a catalogue tool: image-producing tools (they return `Result`) open the viewer."""
    returns = inspect.signature(fn, eval_str=True).return_annotation
    return {"ui": {"resourceUri": VIEWER_URI}} if returns == Result else None


def _runtime(ctx: Context) -> Runtime:
    return ctx.request_context.lifespan_context


@contextmanager
def _as_caller(ctx: Context, scope: str) -> Iterator[Runtime]:
    """The runtime, with every look-up inside scoped to the caller (as the adapter does for tools).

    Raises:
        ToolError: the caller's token lacks `scope`.
    """
    rt = _runtime(ctx)
    principal, scopes = caller_identity(rt.settings)  # None, None: stdio / no auth
    if scopes is not None and scope not in scopes:
        raise ToolError(MissingScope(scope).message)
    with acting_for(principal):
        yield rt


def _upload_result(record: Any, text: str) -> CallToolResult:
    structured = {
        "id": record.id,
        "uri": record.uri,
        "name": record.meta.get("name") or record.name,
        "mime_type": record.mime_type,
        "width": record.width,
        "height": record.height,
        "bytes": record.bytes,
    }
    link = ResourceLink(
        type="resource_link", uri=record.uri, name=structured["name"], mime_type=record.mime_type, size=record.bytes
    )
    return CallToolResult(content=[TextContent(type="text", text=text), link], structured_content=structured)


def _tool(apps: Apps, **kwargs: Any) -> Any:
    """`apps.tool(...)` with the docstring, without its source indentation, as the description."""

    def register(fn: Any) -> Any:
        return apps.tool(description=inspect.cleandoc(fn.__doc__ or ""), **kwargs)(fn)

    return register


def build_apps(server: Any) -> Apps:
    """The Apps extension: the viewer resource, pick_image and the app-only tools."""
    apps = Apps()
    apps.add_html_resource(
        VIEWER_URI,
        viewer_html(),
        name="viewer",
        title="photo-mcp viewer",
        description="Shows a tool's images: gallery, before/after slider, variant chooser, download, job "
        "progress with cancel, and a drop zone for your own photo.",
        prefers_border=True,
    )

    @_tool(
        apps,
        resource_uri=VIEWER_URI,
        name="pick_image",
        title="Pick your own photo",
        annotations=PICK_TOOL,
        icons=icons_for("pick_image"),
    )
    async def pick_image(
        ctx: Context,
        purpose: Annotated[
            str, Field(description="What the picture is for, shown to the user (e.g. 'the product to cut out')")
        ] = "",
    ) -> Annotated[CallToolResult, Picked]:
        """Let the user hand over a photo of their own, without typing a path.

        In clients that show MCP Apps this opens a drop zone / file picker in the conversation;
        the user's picture is stored on the server and comes back as a photo://uploads/<id> URI
        (in the user's next message) that every tool accepts as an image. Over HTTP without Apps
        it returns a one-time upload link (15 minutes, one file, up to 15 MB) to give the user.
        Free.
        """
        purpose = purpose.strip()[:200]
        if client_supports_apps(ctx):
            text = (
                "Opened a picture picker in the conversation. When the user drops or chooses a photo, its "
                "photo://uploads/<id> URI arrives in their next message: pass that URI to any tool as the image."
            )
            return CallToolResult(
                content=[TextContent(type="text", text=text)], structured_content={"mode": "picker", "purpose": purpose}
            )
        request = getattr(ctx.request_context, "request", None)
        if not isinstance(request, Request):
            text = (
                "This client cannot show a picture picker. Ask the user for the image's file path (inside the "
                "server's allowed folders), an http(s) URL, or attach it as a data: URI."
            )
            return CallToolResult(content=[TextContent(type="text", text=text)], structured_content={"mode": "none"})
        principal, _scopes = caller_identity(server.photo_settings)
        secret = server.upload_tickets.issue(purpose, principal=principal)  # the upload will be theirs
        base = (server.photo_settings.public_url or str(request.base_url)).rstrip("/")
        url = f"{base}/uploads/{secret}"
        minutes = int(server.upload_tickets.ttl_s // 60)
        text = (
            f"Give the user this one-time upload link: {url} (valid {minutes} minutes, one image up to "
            f"{uploads.MAX_UPLOAD_BYTES // 2**20} MB). After uploading, the page shows a photo://uploads/<id> URI; "
            "the upload is also listed by resources/list. Pass that URI to any tool as the image."
        )
        structured = {"mode": "upload_url", "purpose": purpose, "upload_url": url, "expires_in_s": int(minutes * 60)}
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    @_tool(
        apps,
        resource_uri=VIEWER_URI,
        visibility=APP_ONLY,
        name="upload_image",
        title="Upload a photo (viewer)",
        annotations=UPLOAD_TOOL,
    )
    async def upload_image(
        ctx: Context,
        data: Annotated[str, Field(description="The file's bytes, base64", max_length=21_000_000)],
        name: Annotated[str, Field(description="The file's name on the user's device", max_length=300)] = "",
    ) -> Annotated[CallToolResult, Uploaded]:
        """The viewer's drop zone: store the user's picture as photo://uploads/<id>. For the app only."""
        try:
            raw = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ToolError("The upload is not valid base64.") from None
        try:
            with _as_caller(ctx, EDIT) as rt:
                record = await uploads.store_upload(rt, raw, name)
        except PhotoError as exc:
            raise ToolError(exc.message) from None
        return _upload_result(record, f"Uploaded {uploads.describe(record)}.")

    @_tool(
        apps,
        resource_uri=VIEWER_URI,
        visibility=APP_ONLY,
        name="view_result",
        title="Result details (viewer)",
        annotations=APP_TOOL,
    )
    async def view_result(
        ctx: Context,
        result_id: Annotated[str, Field(description="A result id", max_length=64)],
    ) -> Annotated[CallToolResult, ResultView]:
        """A result's lineage and the image it was made from (for the before/after slider). For the app only."""
        try:
            with _as_caller(ctx, READ) as rt:
                return await _view_result(rt, result_id)
        except PhotoError as exc:
            raise ToolError(exc.message) from None

    @_tool(
        apps,
        resource_uri=VIEWER_URI,
        visibility=APP_ONLY,
        name="job_status",
        title="Job progress (viewer)",
        annotations=APP_TOOL,
    )
    async def job_status(
        ctx: Context,
        job_id: Annotated[str, Field(description="The job id", max_length=64)],
        wait_seconds: Annotated[float, Field(description="Wait up to this long for a change", ge=0, le=10)] = 0,
    ) -> Annotated[CallToolResult, JobProgress]:
        """A job's state and progress, after waiting up to wait_seconds for it to change. For the app only."""
        try:
            with _as_caller(ctx, READ) as rt:
                return await _job_status(rt, job_id, wait_seconds)
        except PhotoError as exc:
            raise ToolError(exc.message) from None

    return apps


async def _view_result(rt: Runtime, result_id: str) -> CallToolResult:
    """Raises:
    PhotoError: unknown result (or another caller's).
    """
    record = await rt.store.get(result_id)
    structured: dict[str, Any] = {
        "id": record.id,
        "uri": record.uri,
        "operation": record.operation,
        "provider": record.provider,
        "inputs": record.inputs,
        "before": None,
    }
    content: list[Any] = [TextContent(type="text", text=f"{record.uri}: {record.operation} on {record.provider}")]
    for label in record.inputs[:1]:
        if label.endswith("…"):  # a shortened reference (a data: URI) cannot be opened again
            break
        try:
            source = await rt.resolver.resolve(label)
            data, mime = await images.in_worker(
                previews.preview, await source.read(), BEFORE_SIDE, rt.settings.max_pixels
            )
        except PhotoError:
            break  # gone, or no longer allowed: no comparison
        structured["before"] = {"label": label, "mime_type": mime}
        content.append(ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime))
    return CallToolResult(content=content, structured_content=structured)


async def _job_status(rt: Runtime, job_id: str, wait_seconds: float) -> CallToolResult:
    """Raises:
    PhotoError: unknown job (or another caller's).
    """
    job = await rt.jobs.get(job_id)
    before = (job.state, job.progress, job.message)
    if wait_seconds and not job.done:
        await rt.jobs.wait_for_change(job, wait_seconds)
    job = await rt.jobs.get(job_id)
    end = job.updated_at if job.done else time.time()
    structured = {
        "job_id": job.id,
        "status": job.state,
        "progress": round(job.progress, 3),
        "message": (job.error or job.message) if job.state in ("failed", "cancelled") else job.message,
        "elapsed_s": round(end - job.created_at, 3),
        "changed": before != (job.state, job.progress, job.message),
    }
    text = f"Job {job.id}: {job.state} ({structured['progress'] * 100:.0f}%) {structured['message']}"
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


class AppOnlyTools(ServerMiddleware[Any]):
    """tools/list for a client without Apps leaves out the app-only tools: nothing could call them."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or ctx.request_id is None or not isinstance(result, dict):
            return result
        try:
            supports = client_supports_apps(ctx)
        except Exception:  # no session capabilities (yet): treat as a client without Apps
            supports = False
        if supports:
            return result
        tools = [t for t in result.get("tools", []) if not _app_only(t)]
        return {**result, "tools": tools}


def _app_only(tool: Any) -> bool:
    ui = ((tool.get("_meta") or {}).get("ui") or {}) if isinstance(tool, dict) else {}
    visibility = ui.get("visibility")
    return isinstance(visibility, list) and "model" not in visibility


def install(app: MCPServer) -> None:
    """Hook the Apps parts that are not the extension itself into `app`: the upload resources, the
    tools/list filter and the upload tickets (the extension goes to MCPServer(extensions=...))."""
    app.upload_tickets = uploads.UploadTickets()  # type: ignore[attr-defined]
    app.middleware.append(AppOnlyTools())

    @app.resource(
        UPLOAD_URI_PREFIX + "{upload_id}",
        name="upload",
        title="Uploaded photo",
        description="A picture the user handed over (viewer drop zone or upload link). Pass the URI to any tool.",
        mime_type="image/png",
    )
    async def upload(upload_id: str) -> bytes:  # pragma: no cover - served by read_upload
        raise ResourceError("served by the photo-mcp reader")


async def read_upload(runtime: Runtime, uri: str) -> list[ReadResourceContents]:
    """The bytes of a photo://uploads/{id} resource.

    Raises:
        ResourceNotFoundError: for an unknown id or a deleted file.
        ResourceError: if the file cannot be read.
    """
    upload_id = uri[len(UPLOAD_URI_PREFIX) :].strip("/")
    principal, _scopes = caller_identity(runtime.settings)  # someone's own photo: theirs only
    try:
        with acting_for(principal):
            record, data = await runtime.store.read(upload_id, kind="upload")
    except NotFound as exc:
        raise ResourceNotFoundError(exc.message) from None
    except (PhotoError, OSError) as exc:
        raise ResourceError(f"Cannot read {uri}: {exc}") from None
    return [ReadResourceContents(content=data, mime_type=record.mime_type)]
