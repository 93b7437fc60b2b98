"""Resuming provider jobs after a restart: poll the remembered task, save its results.

Every provider client implements `resume(provider_ref, hooks)`, continuing from the ids
it stored with `hooks.remember(...)` when it submitted; paid work is never re-submitted.
"""

from __future__ import annotations

from tools.core.jobs import JobContext, Outcome
from tools.providers import CLIENTS
from tools.runtime import Resumer, Runtime
from tools.saving import save_images


async def resume_provider_job(rt: Runtime, job: JobContext) -> Outcome:
    provider = job.job.provider
    client = await rt.client(provider)
    await job.progress(f"resumed after a restart: polling {provider}", job.job.progress)
    outputs = await client.resume(job.job.provider_ref, job)
    records = await save_images(
        rt, job, outputs, operation=job.job.operation, provider=provider, inputs=job.job.params.get("inputs", [])
    )
    return Outcome(records, message="finished after a server restart")


RESUMERS: dict[str, Resumer] = dict.fromkeys(CLIENTS, resume_provider_job)
