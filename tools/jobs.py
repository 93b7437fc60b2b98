"""get_job and cancel_job: jobs that outlive one call."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from tools.toolkit.params import READ_ONLY
from tools.toolkit.render import ToolOutput
from tools.toolkit.run import photo_tool, runtime_of, wait_and_render

JobId = Annotated[
    str,
    Field(description="The job id from an earlier result (j_...)", examples=["j_1a2b3c4d5e6f"], max_length=64),
]


def register(app: MCPServer) -> None:
    @app.tool(title="Get a job's result", annotations=READ_ONLY)
    @photo_tool
    async def get_job(
        job_id: JobId,
        ctx: Context,
        wait_seconds: Annotated[
            float,
            Field(description="Wait up to this long for the job to finish (0 = just look)", ge=0, le=600),
        ] = 0,
    ) -> Annotated[CallToolResult, ToolOutput]:
        """Look up a job started by an earlier tool call, optionally waiting for it to finish.

        Use it when a tool answered with status "running". Free. Returns the same shape as the
        tool that started the job: images as photo://results/<id> links once it has succeeded.
        """
        rt = runtime_of(ctx)
        job = await rt.jobs.get(job_id)
        budget = min(wait_seconds, rt.settings.wait_seconds)
        return await wait_and_render(ctx, job, budget, cancel_on_abort=False)

    @app.tool(
        title="Cancel a job",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    @photo_tool
    async def cancel_job(job_id: JobId, ctx: Context) -> Annotated[CallToolResult, ToolOutput]:
        """Stop a running job. Finished jobs are left as they are.

        For YouCam, stopping the polls abandons the task, so no credits are consumed. Returns the
        job's final state.
        """
        rt = runtime_of(ctx)
        job = await rt.jobs.cancel(job_id)
        return await wait_and_render(ctx, job, 0, cancel_on_abort=False)
