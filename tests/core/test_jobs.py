"""The job manager across a restart, and the credit caps."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from tests.conftest import make_settings
from tools.core.errors import BudgetExceeded
from tools.core.jobs import JobContext, Outcome
from tools.runtime import Runtime, open_runtime


async def _wait_done(rt: Runtime, job_id: str) -> None:
    job = await rt.jobs.get(job_id)
    with anyio.fail_after(10):
        while not job.done:
            await rt.jobs.wait_for_change(job, 1.0)


async def test_unfinished_jobs_resume_after_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    started = anyio.Event()

    async def never_finishes(job: JobContext) -> Outcome:
        await job.remember(task_id="T-1")
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    async with open_runtime(settings) as rt:
        job = await rt.jobs.submit("op", "prov", {}, never_finishes, estimate=3)
        await started.wait()
    # The server stopped while the job ran: on the next start the provider's resume hook gets it.
    resumed_with: list[dict] = []

    async def resume(rt: Runtime, ctx: JobContext) -> Outcome:
        resumed_with.append(dict(ctx.job.provider_ref))
        await ctx.charged(3)
        return Outcome([], message="resumed")

    async with open_runtime(settings, resumers={"prov": resume}) as rt:
        await _wait_done(rt, job.id)
        again = await rt.jobs.get(job.id)
        assert again.state == "succeeded" and again.message == "resumed"
        assert resumed_with == [{"task_id": "T-1"}]
        assert await rt.ledger.spent_today() == 3


async def test_a_job_without_a_resume_hook_fails_clearly_after_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    async def slow(job: JobContext) -> Outcome:
        await anyio.sleep_forever()
        raise AssertionError

    async with open_runtime(settings) as rt:
        job = await rt.jobs.submit("op", "local", {}, slow)
        await anyio.lowlevel.checkpoint()
    async with open_runtime(settings) as rt:
        again = await rt.jobs.get(job.id)
        assert again.state == "failed" and "restarted" in (again.error or "")


async def test_credit_caps_refuse_before_anything_runs(tmp_path: Path) -> None:
    ran: list[str] = []

    async def work(job: JobContext) -> Outcome:
        ran.append(job.job.id)
        await job.charged(job.job.credits_estimated)
        return Outcome([])

    async with open_runtime(make_settings(tmp_path, max_credits_per_call=50, max_credits_per_day=100)) as rt:
        with pytest.raises(BudgetExceeded, match="per-call cap of 50"):
            await rt.jobs.submit("op", "p", {}, work, estimate=80)
        first = await rt.jobs.submit("op", "p", {}, work, estimate=40)
        await _wait_done(rt, first.id)
        second = await rt.jobs.submit("op", "p", {}, work, estimate=40)
        await _wait_done(rt, second.id)
        with pytest.raises(BudgetExceeded, match="daily cap of 100"):
            await rt.jobs.submit("op", "p", {}, work, estimate=40)
    assert len(ran) == 2
