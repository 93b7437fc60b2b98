"""Running a YouCam feature as a job: configuration check, the job, saving the results.

Shared by the YouCam tool modules (hair, face, restore, catalog).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from tools.core.errors import NotConfigured
from tools.core.jobs import JobContext, Outcome
from tools.core.refs import ImageSource
from tools.providers.base import ProviderImage
from tools.providers.youcam.spec import FEATURES, SETUP
from tools.runtime import Runtime
from tools.saving import save_images
from tools.toolkit.run import run_job, runtime_of

if TYPE_CHECKING:
    from tools.providers.youcam.client import YouCamClient


# Catalog reads call YouCam (open world) but change nothing and cost nothing.

StyleId = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        description="A style id from list_styles, as an integer (ids exceed 2^53: pass them exactly, never rounded)",
        examples=[22205685004925400],
    ),
]
GroupId = Annotated[
    int | None,
    Field(
        strict=True,
        ge=0,
        description="The style's group id from list_style_groups (optional: found from the catalog when omitted)",
    ),
]

Produced = list[ProviderImage] | tuple[list[ProviderImage], dict[str, Any]]
Call: TypeAlias = "Callable[[YouCamClient, JobContext], Awaitable[Produced]]"


def require_youcam(rt: Runtime) -> None:
    """Raises:
    NotConfigured: the YouCam keys are not set (checked before any job is submitted).
    """
    if not rt.settings.configured("youcam"):
        raise NotConfigured(f"YouCam is not configured: {SETUP}.")


async def youcam_client(rt: Runtime) -> YouCamClient:
    require_youcam(rt)
    return await rt.client("youcam")


def cost(feature: str) -> float:
    """Units per successful task (YouCam charges on success only)."""
    return FEATURES[feature].cost


async def youcam_outcome(
    rt: Runtime, job: JobContext, operation: str, sources: list[ImageSource], call: Call
) -> Outcome:
    """Run `call` on the YouCam client inside a job and save what it produced."""
    await job.set_provider("youcam")
    produced = await call(await rt.client("youcam"), job)
    outputs, details = produced if isinstance(produced, tuple) else (produced, {})
    records = await save_images(
        rt, job, outputs, operation=operation, provider="youcam", inputs=[s.label for s in sources]
    )
    return Outcome(records, details=details)


async def run_youcam(
    ctx: Context,
    operation: str,
    feature: str,
    params: dict[str, Any],
    sources: list[ImageSource],
    call: Call,
) -> CallToolResult:
    """Submit a YouCam feature as a job and wait for it within the call budget."""
    rt = runtime_of(ctx)
    require_youcam(rt)

    async def work(job: JobContext) -> Outcome:
        return await youcam_outcome(rt, job, operation, sources, call)

    return await run_job(ctx, operation, "youcam", params, work, estimate=cost(feature))
