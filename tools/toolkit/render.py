"""The one output shape of every image-producing tool.

A `CallToolResult` with a short text summary, one `ResourceLink` per image, an inline
preview per image (none | preview | full), and `structured_content` matching
`ToolOutput` (the tools' outputSchema).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from tools.core import images, previews
from tools.core.budget import amount
from tools.core.jobs import Job, JobState
from tools.core.previews import Preview
from tools.core.results import ResultRecord

FULL_INLINE_LIMIT = 4 * 1024 * 1024  # "full" previews above this fall back to a preview


class ImageOut(BaseModel):
    id: str = Field(description="Result id; chain it as photo://results/{id}")
    uri: str = Field(description="photo://results/{id}: pass it to any tool as an image, or read it")
    path: str = Field(description="Where the file is on the server's disk")
    mime_type: str
    width: int
    height: int
    bytes: int
    info: dict[str, Any] = Field(default_factory=dict, description="Per-image facts, e.g. res_age for aging")
    url: str | None = Field(
        default=None, description="Signed HTTPS download link, when the server has a public URL (it expires)"
    )


class Credits(BaseModel):
    estimated: float = Field(description="Credits estimated before the call")
    charged: float = Field(description="Credits the provider charged (0 when nothing was charged)")


class ToolOutput(BaseModel):
    job_id: str
    status: JobState = Field(description="succeeded, failed, cancelled, or running (then call get_job)")
    provider: str
    operation: str
    images: list[ImageOut] = Field(default_factory=list)
    credits: Credits
    elapsed_s: float
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


def _image_out(record: ResultRecord) -> ImageOut:
    return ImageOut(
        id=record.id,
        uri=record.uri,
        path=str(record.path),
        mime_type=record.mime_type,
        width=record.width,
        height=record.height,
        bytes=record.bytes,
        info=record.meta,
    )


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _credits(job: Job) -> str:
    """What was charged, and how that is known when the provider did not report it."""
    if not job.credits_charged:
        return "no credits charged"
    basis = job.details.get("credits_basis", "reported")
    said = {"estimated": ", estimated: the provider did not report it", "documented": ", its documented price"}
    return f"{amount(job.credits_charged)}{said.get(basis, '')}"


def summary(job: Job, records: list[ResultRecord]) -> str:
    elapsed = job.updated_at - job.created_at
    credits = _credits(job)
    if job.state == "succeeded":
        head = f"{job.operation} ran on {job.provider} in {elapsed:.1f} s ({credits})."
        if job.message and job.message != "done":
            head += f" {job.message}"
        lines = [head]
        for r in records:
            lines.append(
                f"- {r.uri} → {r.path} ({r.width}×{r.height} {r.mime_type.split('/')[1].upper()}, {_size(r.bytes)})"
            )
        return "\n".join(lines)
    if job.state in ("queued", "running"):
        return (
            f"Job {job.id} ({job.operation} on {job.provider}) is still running after "
            f"{time.time() - job.created_at:.0f} s: {job.message}. It continues in the background; call "
            f"get_job(job_id='{job.id}', wait_seconds=30) to wait for the result, or cancel_job to stop it."
        )
    return f"{job.operation} on {job.provider} {job.state}: {job.error or job.message}"


def structured(job: Job, records: list[ResultRecord]) -> ToolOutput:
    end = job.updated_at if job.done else time.time()
    return ToolOutput(
        job_id=job.id,
        status=job.state,
        provider=job.provider,
        operation=job.operation,
        images=[_image_out(r) for r in records],
        credits=Credits(estimated=job.credits_estimated, charged=job.credits_charged),
        elapsed_s=round(end - job.created_at, 3),
        message=job.error if job.state in ("failed", "cancelled") and job.error else job.message,
        details=job.details,
    )


# Claude Desktop refuses tool results over 1 MiB and fastmcp caps one SSE event at 1 MiB: every
# inline image of one result, base64 and JSON included, shares this budget by default.
MAX_INLINE_BYTES = 1024 * 1024
_SMALLEST_SIDE = 96  # below this a preview says nothing: leave it out instead
_SLACK = 4096  # the envelope around the result (JSON-RPC, _meta, an older client's longer text)


def _b64_size(n: int) -> int:
    return 4 * ((n + 2) // 3) + 64  # base64 and the block's JSON around it


def _previews(
    records: list[ResultRecord], mode: str, size: int, max_pixels: int, budget: int
) -> tuple[list[ImageContent], str]:
    """Inline images for `records` within `budget` bytes, and a note when they had to shrink.

    Degrades full → preview → smaller WebP/JPEG previews → fewer previews, never over budget.
    """
    datas = [r.path.read_bytes() for r in records]
    full = mode == "full" and all(len(d) <= FULL_INLINE_LIMIT for d in datas)
    if full and sum(_b64_size(len(d)) for d in datas) <= budget:
        return [_block(d, r.mime_type) for d, r in zip(datas, records, strict=True)], ""
    note = "Inline images were reduced to fit a client's 1 MiB limit; the full files are the links above."
    side, compact = size, False
    while True:
        shown = [previews.preview(d, side, max_pixels, compact=compact) for d in datas]
        if sum(_b64_size(len(p)) for p, _ in shown) <= budget:
            reduced = full or compact
            return [_block(p, m) for p, m in shown], note if reduced else ""
        if side <= _SMALLEST_SIDE:
            break
        side, compact = max(_SMALLEST_SIDE, int(side * 0.7)), True
    kept: list[ImageContent] = []
    used = 0
    for payload, mime in shown:
        if used + _b64_size(len(payload)) > budget:
            break
        kept.append(_block(payload, mime))
        used += _b64_size(len(payload))
    left = len(shown) - len(kept)
    return kept, f"{left} of {len(shown)} previews were left out to fit a client's 1 MiB limit; read the links."


def _ready(records: list[ResultRecord], made: Mapping[str, Preview], side: int, budget: int) -> list[Preview] | None:
    """The previews made at save time, when every record has one of `side` and they fit `budget`."""
    ready = [p for r in records if (p := made.get(r.id)) is not None and p.side == side]
    if len(ready) < len(records) or sum(_b64_size(len(p.data)) for p in ready) > budget:
        return None
    return ready


def _block(payload: bytes, mime: str) -> ImageContent:
    return ImageContent(type="image", data=base64.b64encode(payload).decode(), mime_type=mime)


async def render(
    job: Job,
    records: list[ResultRecord],
    *,
    preview: str,
    preview_size: int,
    max_pixels: int,
    max_inline: int = MAX_INLINE_BYTES,
    made: Mapping[str, Preview] | None = None,
) -> CallToolResult:
    """Build the tool result for `job` in whatever state it is, at most `max_inline` bytes of JSON.

    `made`: previews already made when the results were saved (by result id); used as they are
    when every record has one at `preview_size` and they fit, else the files are decoded again.
    """
    content: list[ContentBlock] = [TextContent(type="text", text=summary(job, records))]
    for r in records:
        content.append(
            ResourceLink(
                type="resource_link",
                uri=r.uri,
                name=r.name,
                mime_type=r.mime_type,
                size=r.bytes,
                description=f"{r.operation} result ({r.width}×{r.height}) from {r.provider}",
            )
        )
    shaped = structured(job, records).model_dump(mode="json")
    if preview != "none" and records:
        rest = len(json.dumps(shaped)) + sum(len(b.model_dump_json()) for b in content)
        budget = max(0, max_inline - rest - _SLACK)
        ready = _ready(records, made or {}, preview_size, budget) if preview == "preview" else None
        if ready is not None:
            blocks, note = [_block(p.data, p.mime_type) for p in ready], ""
        else:
            blocks, note = await images.in_worker(_previews, records, preview, preview_size, max_pixels, budget)
        if note:
            first = content[0]
            assert isinstance(first, TextContent)
            content[0] = TextContent(type="text", text=f"{first.text}\n{note}")
        content.extend(blocks)
    return CallToolResult(content=content, structured_content=shaped, is_error=job.state == "failed")
