"""Running a tool call as a job: submit, wait within the budget while streaming
progress, hand off if it takes longer, and shape the output.

This is the bridge between MCP (`Context`) and the job machinery.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from tools.core.errors import PhotoError
from tools.core.jobs import Job, Work
from tools.runtime import Runtime
from tools.toolkit.render import render

HEARTBEAT_S = 4.0  # below the 5 s the clients are promised
P = ParamSpec("P")
R = TypeVar("R")


def runtime_of(ctx: Context) -> Runtime:
    return ctx.request_context.lifespan_context


def photo_tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn our `PhotoError`s into `ToolError`s, so the model reads their message."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except PhotoError as exc:
            raise ToolError(exc.message) from None

    # The docstring is the description the model reads: no source indentation in it.
    wrapper.__doc__ = inspect.cleandoc(fn.__doc__ or "")
    # Resolve string annotations in the tool module, not in this one.
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper


async def run_job(
    ctx: Context,
    operation: str,
    provider: str,
    params: dict[str, Any],
    work: Work,
    *,
    estimate: float = 0.0,
) -> CallToolResult:
    """Submit `work` as a job and wait for it within the configured budget.

    Raises:
        BudgetExceeded: if the estimate breaks a credit cap (nothing is sent).
    """
    rt = runtime_of(ctx)
    job = await rt.jobs.submit(operation, provider, params, work, estimate=estimate)
    return await wait_and_render(ctx, job, rt.settings.wait_seconds, cancel_on_abort=True)


async def wait_and_render(ctx: Context, job: Job, budget: float, *, cancel_on_abort: bool) -> CallToolResult:
    """Wait up to `budget` seconds for `job`, reporting progress at least every 4 s.

    If the client cancels the call and `cancel_on_abort` is set, the job is cancelled
    too; otherwise (get_job) the job keeps running.
    """
    rt = runtime_of(ctx)
    start = time.monotonic()
    sent = -math.inf
    try:
        while not job.done:
            remaining = budget - (time.monotonic() - start)
            if remaining <= 0:
                break
            elapsed = time.monotonic() - start
            # Progress must strictly increase; map job progress into [0, 99].
            value = max(sent + 0.01, min(99.0, job.progress * 100))
            await ctx.report_progress(value, 100, f"{job.message} ({elapsed:.0f} s)")
            sent = value
            await rt.jobs.wait_for_change(job, min(HEARTBEAT_S, remaining))
    except anyio.get_cancelled_exc_class():
        if cancel_on_abort:
            with anyio.CancelScope(shield=True):
                await rt.jobs.cancel(job.id)
        raise
    if job.done:
        await ctx.report_progress(100, 100, job.message if job.state == "succeeded" else job.state)
    records = await rt.store.get_many(job.result_ids) if job.state == "succeeded" else []
    s = rt.settings
    return await render(job, records, preview=s.preview, preview_size=s.preview_size, max_pixels=s.max_pixels)
