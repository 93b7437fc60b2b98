"""The one output shape of every image-producing tool.

A `CallToolResult` with a short text summary, one `ResourceLink` per image, an inline
preview per image (none | preview | full), and `structured_content` matching
`ToolOutput` (the tools' outputSchema).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from mcp_types import CallToolResult, ContentBlock, ImageContent, ResourceLink, TextContent
from pydantic import BaseModel, Field

from tools.core import images
from tools.core.jobs import Job, JobState
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
    return f"{job.credits_charged:g} credits{said.get(basis, '')}"


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


def _previews(records: list[ResultRecord], mode: str, size: int, max_pixels: int) -> list[ImageContent]:
    blocks = []
    for r in records:
        data = r.path.read_bytes()
        if mode == "full" and len(data) <= FULL_INLINE_LIMIT:
            payload, mime = data, r.mime_type
        else:
            payload, mime = images.preview(data, size, max_pixels)
        blocks.append(ImageContent(type="image", data=base64.b64encode(payload).decode(), mime_type=mime))
    return blocks


async def render(
    job: Job, records: list[ResultRecord], *, preview: str, preview_size: int, max_pixels: int
) -> CallToolResult:
    """Build the tool result for `job` in whatever state it is."""
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
    if preview != "none" and records:
        content.extend(await images.in_worker(_previews, records, preview, preview_size, max_pixels))
    return CallToolResult(
        content=content,
        structured_content=structured(job, records).model_dump(mode="json"),
        is_error=job.state == "failed",
    )
