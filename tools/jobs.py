"""get_job and cancel_job: jobs that outlive one call."""

from __future__ import annotations

from typing import Annotated

from mcp_types import ToolAnnotations
from pydantic import Field

from tools.toolkit.declare import tool
from tools.toolkit.params import READ_ONLY, Result
from tools.toolkit.run import Call, wait_and_render

JobId = Annotated[
    str, Field(description="The job id from an earlier result (j_...)", examples=["j_1a2b3c4d5e6f"], max_length=64)
]
CANCEL = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


@tool(title="Get a job's result", annotations=READ_ONLY)
async def get_job(
    call: Call,
    job_id: JobId,
    wait_seconds: Annotated[
        float, Field(description="Wait up to this long for the job to finish (0 = just look)", ge=0, le=600)
    ] = 0,
) -> Result:
    """Look up a job started by an earlier tool call, optionally waiting for it to finish.

    Use it when a tool answered with status "running". Free. Returns the same shape as the
    tool that started the job: images as photo://results/<id> links once it has succeeded.
    """
    rt = call.runtime
    job = await rt.jobs.get(job_id)
    return await wait_and_render(call, job, min(wait_seconds, rt.settings.wait_seconds), cancel_on_abort=False)


@tool(title="Cancel a job", annotations=CANCEL)
async def cancel_job(call: Call, job_id: JobId) -> Result:
    """Stop a running job. Finished jobs are left as they are.

    For YouCam, stopping the polls abandons the task, so no credits are consumed. Returns the
    job's final state.
    """
    job = await call.runtime.jobs.cancel(job_id)
    return await wait_and_render(call, job, 0, cancel_on_abort=False)
