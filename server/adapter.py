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
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import ElicitationResult, Resolve

from server import consent as spend
from server import links, tasks
from server.apps import ui_meta
from server.auth import caller_identity
from server.icons import icons_for
from tools.core.errors import NotConfigured, PhotoError
from tools.core.principals import EDIT, READ, acting_for
from tools.runtime import Runtime
from tools.toolkit.declare import spec_of, tools_of
from tools.toolkit.run import Call


def call_of(ctx: Context) -> Call:
    """The `Call` a tool receives for this MCP request (a Tasks request hands off sooner)."""
    runtime: Runtime = ctx.request_context.lifespan_context
    principal, scopes = caller_identity(runtime.settings)  # None, None: stdio / no auth
    return Call(
        runtime,
        ctx.report_progress,
        wait_seconds=tasks.handoff_budget(runtime.settings),
        principal=principal,
        scopes=scopes,
    )


def as_mcp_tool(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`fn` with its `Call` parameter replaced by the SDK's `Context`, and errors made `ToolError`s.

    A paid tool (one with a quote) also gets a `consent` parameter, resolved before the body runs
    (server.consent); its results carry signed download links when the server has a public URL.
    """
    signature = inspect.signature(fn, eval_str=True)
    params = list(signature.parameters.values())[1:]  # the first is the Call
    spec = spec_of(fn)
    quote = spec.quote
    needed = READ if spec.annotations.read_only_hint else EDIT  # OAuth scopes (tools/core/principals.py)

    async def mcp_tool(*args: Any, ctx: Context, consent: Any = None, **kwargs: Any) -> Any:
        runtime: Runtime = ctx.request_context.lifespan_context
        if quote is not None and not spend.approved(consent):
            return spend.refused_result(quote, runtime.settings, kwargs, consent)
        try:
            call = call_of(ctx)
            call.require(needed)  # photo:spend is checked where a paid provider would be called
            with acting_for(call.principal):  # every id this call looks up must be the caller's
                result = await fn(call, *args, **kwargs)
        except NotConfigured as exc:
            if quote is not None:
                wanted = quote.wanted(runtime.settings, **kwargs)
                await spend.offer_console(ctx, wanted[0], "key")
            raise ToolError(exc.message) from None
        except PhotoError as exc:
            raise ToolError(exc.message) from None
        failed = spend.failed_provider(result)
        if failed is not None:
            await spend.offer_console(ctx, *failed)
        return links.attach(result, runtime.settings)

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    extra = [ctx_param]
    annotations: dict[str, Any] = {"ctx": Context}
    if quote is not None:
        ask = spend.resolver_for(spec.name, spec.title, quote, [p.name for p in params])
        consent_type = Annotated[ElicitationResult[spend.Approve], Resolve(ask)]
        extra.append(inspect.Parameter("consent", inspect.Parameter.KEYWORD_ONLY, annotation=consent_type))
        annotations["consent"] = consent_type
    mcp_tool.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    mcp_tool.__annotations__ = (
        {p.name: p.annotation for p in params} | annotations | {"return": signature.return_annotation}
    )
    mcp_tool.__name__ = mcp_tool.__qualname__ = fn.__name__
    mcp_tool.__module__ = fn.__module__
    mcp_tool.__doc__ = spec_of(fn).description
    return mcp_tool


def register_tools(app: MCPServer, catalogue: Iterable[str]) -> None:
    """Register every tool of the catalogue's modules, in order.

    Image-producing tools declare the viewer (`_meta.ui.resourceUri`, MCP Apps); their results
    are the same for every client.
    """
    for module_name in catalogue:
        for fn in tools_of(importlib.import_module(module_name)):
            spec = spec_of(fn)
            mcp_tool = as_mcp_tool(fn)  # its signature is evaluated once, here: ui_meta reads it too
            app.add_tool(
                mcp_tool,
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=spec.annotations,
                icons=icons_for(spec.name, module_name),
                meta=ui_meta(mcp_tool),
            )
