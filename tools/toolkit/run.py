"""Running a tool call: as a job, within the wait budget, streaming progress, then rendered.

    run_provider  a provider call: routed over candidates, caps checked per paid attempt,
                  outputs saved with the job's lineage (the one path every provider call takes)
    run_local_edit  a Pillow edit of the inputs, run by the offline provider through run_provider
    run_job       any work as a job; waits, or hands the job id over when the budget runs out
    wait_and_render  wait for a job (get_job) and render whatever state it is in

A tool receives a `Call`: the runtime and the caller's progress channel. The server adapter
builds it from the MCP request; a test builds its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from mcp_types import CallToolResult

from tools import providers
from tools.core import images
from tools.core.jobs import Job, JobContext, Outcome, Work
from tools.core.principals import SPEND, MissingScope
from tools.core.refs import ImageSource
from tools.providers.base import ProviderImage
from tools.providers.routing import first_that_works
from tools.runtime import Runtime
from tools.toolkit.render import render

if TYPE_CHECKING:
    from PIL import Image

HEARTBEAT_S = 4.0  # below the 5 s the clients are promised
Progress = Callable[[float, float | None, str | None], Awaitable[None]]
# What a provider feature returns: its images, optionally with details for the whole result.
Produced = list[ProviderImage] | tuple[list[ProviderImage], dict[str, Any]]
# One provider call inside a job: the opened client, the job's hooks -> images (and details).
Attempt = Callable[[Any, JobContext], Awaitable[Produced]]


def split_produced(produced: Produced) -> tuple[list[ProviderImage], dict[str, Any]]:
    return produced if isinstance(produced, tuple) else (produced, {})


@dataclass
class Call:
    """What a tool receives: the runtime, and how to tell the caller about progress."""

    runtime: Runtime
    report: Progress | None = None
    # Overrides PHOTO_MCP_WAIT_SECONDS for this call (a Tasks-extension request hands off sooner).
    wait_seconds: float | None = None
    # Who is calling (tools/core/principals.py): None on stdio / without auth. `scopes`: the OAuth
    # scopes of the caller's token; None means unrestricted (stdio, the static token).
    principal: str | None = None
    scopes: frozenset[str] | None = None

    async def progress(self, value: float, total: float | None, message: str | None) -> None:
        if self.report is not None:
            await self.report(value, total, message)

    def may(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    def require(self, scope: str, hint: str = "") -> None:
        """Raises:
        MissingScope: the caller's token does not grant `scope`.
        """
        if not self.may(scope):
            raise MissingScope(scope, hint)


async def run_provider(
    call: Call,
    operation: str,
    order: Sequence[str],
    attempt: Attempt,
    *,
    params: dict[str, Any],
    inputs: Sequence[ImageSource] = (),
    units: int = 1,
    message: str = "",
) -> CallToolResult:
    """Run `attempt` on the first provider of `order` that works, as one job.

    `order` comes from `routing.candidates` (checked before anything starts). Each paid attempt
    is checked against the credit caps and reserved before it is sent; the results record the
    provider that actually ran and the job's inputs.

    Raises:
        BudgetExceeded: the first provider's estimate breaks a cap (nothing is sent).
    """
    rt = call.runtime
    if not call.may(SPEND):  # no spending rights: only the free providers of the order remain
        order = [name for name in order if not providers.info(name).paid]
        if not order:
            raise MissingScope(SPEND, f"{operation} runs on a paid provider.")

    async def work(job: JobContext) -> Outcome:
        async def one(name: str) -> Outcome:
            await job.set_provider(name)
            await job.reserve(providers.estimate(rt.settings, name, operation, units))
            await job.progress(f"{operation} on {name}", 0.05)
            outputs, details = split_produced(await attempt(await rt.client(name), job))
            return Outcome(await rt.save_outputs(job, outputs), details=details, message=message)

        outcome, skipped = await first_that_works(order, one)
        if skipped:
            outcome.details["skipped"] = skipped
            outcome.message = " ".join(m for m in (outcome.message, f"Skipped {'; '.join(skipped)}.") if m)
        return outcome

    estimate = providers.estimate(rt.settings, order[0], operation, units)
    return await run_job(call, operation, order[0], params, work, estimate=estimate, inputs=inputs)


async def run_local_edit(
    call: Call,
    operation: str,
    sources: Sequence[ImageSource],
    params: dict[str, Any],
    edit: Callable[[list[Image.Image]], Image.Image],
    *,
    fmt: str | None = None,
    quality: int | None = None,
    max_bytes: int | None = None,
    model: bool = False,
    decode_side: Callable[[int, int], int | None] | None = None,
    message: str = "",
) -> CallToolResult:
    """Run a synchronous Pillow `edit` over the decoded sources on the offline provider.

    The output keeps the first input's format (PNG/JPEG/WebP) unless `fmt` is given; an image
    with transparency is never silently flattened into JPEG. `model`: the edit runs the
    segmentation model (it then queues behind other model work). `decode_side(width, height)`:
    the long side the edit needs of the first input, so a JPEG decodes at that size (draft mode).
    """
    side = decode_side

    async def attempt(local: Any, job: JobContext) -> list[ProviderImage]:
        return await local.edit(
            sources, edit, job, fmt=fmt, quality=quality, max_bytes=max_bytes, model=model, decode_side=side
        )

    return await run_provider(call, operation, ["local"], attempt, params=params, inputs=sources, message=message)


async def run_job(
    call: Call,
    operation: str,
    provider: str,
    params: dict[str, Any],
    work: Work,
    *,
    estimate: float = 0.0,
    inputs: Sequence[ImageSource] = (),
) -> CallToolResult:
    """Submit `work` as a job and wait for it within the configured budget.

    Raises:
        BudgetExceeded: if the estimate breaks a credit cap (nothing is sent).
    """
    rt = call.runtime
    labels = [s.label for s in inputs]
    job = await rt.jobs.submit(
        operation, provider, params, work, estimate=estimate, inputs=labels, principal=call.principal
    )
    budget = rt.settings.wait_seconds if call.wait_seconds is None else call.wait_seconds
    return await wait_and_render(call, job, budget, cancel_on_abort=True)


async def wait_and_render(call: Call, job: Job, budget: float, *, cancel_on_abort: bool) -> CallToolResult:
    """Wait up to `budget` seconds for `job`, reporting progress at least every 4 s.

    If the client cancels the call and `cancel_on_abort` is set, the job is cancelled
    too; otherwise (get_job) the job keeps running.
    """
    rt = call.runtime
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
            await call.progress(value, 100, f"{job.message} ({elapsed:.0f} s)")
            sent = value
            await rt.jobs.wait_for_change(job, min(HEARTBEAT_S, remaining))
    except anyio.get_cancelled_exc_class():
        if cancel_on_abort:
            with anyio.CancelScope(shield=True):
                await rt.jobs.cancel(job.id)
        raise
    if job.done:
        await call.progress(100, 100, job.message if job.state == "succeeded" else job.state)
    records = await rt.store.get_many(job.result_ids, principal=job.principal) if job.state == "succeeded" else []
    s = rt.settings
    return await render(
        job,
        records,
        preview=s.preview,
        preview_size=s.preview_size,
        max_pixels=s.max_pixels,
        max_inline=s.max_inline_bytes,
        made=rt.previews.take(job.result_ids),
    )


async def probe(call: Call, source: ImageSource) -> images.ImageInfo:
    """The header facts of `source` (size, format, alpha), read off the event loop.

    Raises:
        InvalidInput: not an image, or over the pixel limit.
    """
    return await images.in_worker(images.probe, await source.read(), call.runtime.settings.max_pixels)
