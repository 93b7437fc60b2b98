"""Where a plain tool function meets an MCP request.

A tool (`tools.toolkit.declare.tool`) takes a `Call` first and raises our `PhotoError`s. Here it
is registered on the MCP server as a function of its other parameters plus the SDK's `Context`:
the Context becomes a `Call` (the process's runtime, the request's progress channel), and a
`PhotoError` becomes a `ToolError`, whose message is what the model reads.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from tools.core.errors import PhotoError
from tools.runtime import Runtime
from tools.toolkit.declare import spec_of, tools_of
from tools.toolkit.run import Call


def call_of(ctx: Context) -> Call:
    """The `Call` a tool receives for this MCP request."""
    runtime: Runtime = ctx.request_context.lifespan_context
    return Call(runtime, ctx.report_progress)


def as_mcp_tool(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`fn` with its `Call` parameter replaced by the SDK's `Context`, and errors made `ToolError`s."""
    signature = inspect.signature(fn, eval_str=True)
    params = list(signature.parameters.values())[1:]  # the first is the Call

    async def mcp_tool(*args: Any, ctx: Context, **kwargs: Any) -> Any:
        try:
            return await fn(call_of(ctx), *args, **kwargs)
        except PhotoError as exc:
            raise ToolError(exc.message) from None

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    mcp_tool.__signature__ = signature.replace(parameters=[*params, ctx_param])  # type: ignore[attr-defined]
    mcp_tool.__annotations__ = {p.name: p.annotation for p in params} | {
        "ctx": Context,
        "return": signature.return_annotation,
    }
    mcp_tool.__name__ = mcp_tool.__qualname__ = fn.__name__
    mcp_tool.__module__ = fn.__module__
    mcp_tool.__doc__ = spec_of(fn).description
    return mcp_tool


def register_tools(app: MCPServer, catalogue: Iterable[str]) -> None:
    """Register every tool of the catalogue's modules, in order."""
    for module_name in catalogue:
        for fn in tools_of(importlib.import_module(module_name)):
            spec = spec_of(fn)
            app.add_tool(
                as_mcp_tool(fn),
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations,
            )
