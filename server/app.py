"""build_server(settings) -> the MCP server, with the runtime opened by its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import InputRequiredResult, Resource
from pydantic import ValidationError
from pydantic.networks import AnyUrl

from server import apps, compat, consent, links, prompts, resources, tasks
from server import arguments as args
from server.adapter import register_tools
from server.auth import ActingFor
from server.icons import SERVER_ICONS
from tools import CATALOGUE
from tools.core.results import RESULT_URI_PREFIX, UPLOAD_URI_PREFIX
from tools.core.settings import Settings
from tools.runtime import Runtime, open_runtime

INSTRUCTIONS = """\
photo-mcp edits and generates images. Pass images as paths, URLs, data: URIs or
photo://results/<id> URIs from earlier results, so edits chain ("remove the background,
put it on white, make it square"). Paid provider tools state their credit cost. Long jobs
report progress; if a tool answers with status "running", call get_job with its job_id.
To work on the user's own photo without a path, call pick_image: the user's picture comes
back as a photo://uploads/<id> URI that every tool accepts. The prompts are ready recipes.
"""
WEBSITE_URL = "https://pypi.org/project/photo-mcp/"


class PhotoServer(MCPServer[Runtime]):
    """MCPServer whose runtime is shared by every connection of the process.

    Streamable HTTP enters the lifespan once, but stdio, SSE and in-memory clients enter it
    per connection: the runtime (and its running jobs) must outlive any one of them.
    """

    def __init__(self, settings: Settings, *, http_transport: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(
            name="photo-mcp",
            title="photo-mcp",
            description="Edit and generate images: Aluo AI, YouCam, Removedo and offline local edits.",
            instructions=INSTRUCTIONS,
            website_url=WEBSITE_URL,
            icons=SERVER_ICONS,
            # MCP Apps (the viewer, pick_image, app-only tools); Tasks (io.modelcontextprotocol/tasks).
            extensions=[apps.build_apps(self), tasks.Tasks(self)],
            version="0.1.0",
            log_level=settings.log_level,
            lifespan=lambda _app: self._lifespan(),
            request_state_security=consent.request_state_security(settings),  # shared keys, when set
            middleware=[ActingFor(settings)],  # each request sees only its caller's results and jobs
        )
        self.photo_settings = settings
        logging.getLogger("photo_mcp").setLevel(settings.log_level)
        self.http_transport = http_transport
        self.runtime: Runtime | None = None

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[Runtime]:
        if self.runtime is not None:
            yield self.runtime
            return
        async with self.running() as runtime:
            yield runtime

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Runtime]:
        """Open the runtime for the whole process (HTTP apps call this from their lifespan)."""
        async with open_runtime(self.photo_settings, transport=self.http_transport) as runtime:
            self.runtime = runtime
            try:
                yield runtime
            finally:
                self.runtime = None

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        """Arguments checked as a person types them (see `server.arguments`) before the SDK validates."""
        schema = self._tool_input_schema(name)
        if schema is None:
            return await super().call_tool(name, arguments, context)
        try:
            checked = args.check(name, arguments, schema)
            return await super().call_tool(name, checked, context)
        except args.ArgumentProblem as exc:
            raise ToolError(str(exc)) from None
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(args.explain(name, exc.__cause__, schema)) from exc.__cause__
            raise

    async def list_resources(self) -> list[Resource]:
        static = await super().list_resources()
        if self.runtime is None:
            return static
        return static + await resources.recent_resources(self.runtime)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Runtime, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        if str(uri).startswith(RESULT_URI_PREFIX) and self.runtime is not None:
            return await resources.read_result(self.runtime, str(uri))
        if str(uri).startswith(UPLOAD_URI_PREFIX) and self.runtime is not None:
            return await apps.read_upload(self.runtime, str(uri))
        return await super().read_resource(uri, context)


def build_server(settings: Settings, *, http_transport: httpx2.AsyncBaseTransport | None = None) -> PhotoServer:
    """The photo-mcp server with every tool, resource and completion registered.

    `http_transport` replaces the network for outgoing HTTP (tests, benchmarks).
    """
    app = PhotoServer(settings, http_transport=http_transport)
    compat.install(app)  # results shaped for clients on older protocol versions
    register_tools(app, CATALOGUE)
    resources.register(app)
    apps.install(app)  # photo://uploads/, upload tickets, app-only tools hidden from clients without Apps
    prompts.register(app)
    links.register_routes(app)  # /files/{id}: signed download links (HTTP transports)
    app.middleware.append(consent.ConsoleOffers())  # provider console offers on 2026-07-28
    return app
