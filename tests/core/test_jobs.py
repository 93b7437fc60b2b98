"""The job manager on its own (a real database, its own task group): restart, resume, caps, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from tests.conftest import make_settings
from tools.core.budget import Ledger
from tools.core.db import Database
from tools.core.errors import BudgetExceeded, JobFailed
from tools.core.jobs import JobContext, JobManager, Outcome, Work
from tools.runtime import open_runtime


async def _no_resume(job: JobContext) -> Outcome:
    raise JobFailed("not resumable here", provider=job.job.provider)


@asynccontextmanager
async def manager(
    tmp_path: Path, resume: Work = _no_resume, *, per_call: float | None = None, per_day: float | None = None, **kw
) -> AsyncIterator[JobManager]:
    db = Database(tmp_path / "jobs.sqlite3")
    try:
        jobs = JobManager(db, Ledger(db, per_call=per_call, per_day=per_day), **kw)
        async with anyio.create_task_group() as tg:
            await jobs.start(tg, resume)
            yield jobs
            tg.cancel_scope.cancel()
    finally:
        db.close()


async def _wait_done(jobs: JobManager, job_id: str) -> None:
    job = await jobs.get(job_id)
    with anyio.fail_after(10):
        while not job.done:
            await jobs.wait_for_change(job, 1.0)


async def test_unfinished_jobs_go_to_resume_after_a_restart_with_their_lineage(tmp_path: Path) -> None:
    started = anyio.Event()

    async def never_finishes(job: JobContext) -> Outcome:
        await job.remember(task_id="T-1")
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    async with manager(tmp_path) as jobs:
        job = await jobs.submit("op", "prov", {}, never_finishes, estimate=3, inputs=["~/a.png"])
        await started.wait()
    # The server stopped while the job ran: on the next start `resume` gets it, inputs and all.
    resumed: list[tuple[dict, list[str]]] = []

    async def resume(ctx: JobContext) -> Outcome:
        resumed.append((dict(ctx.job.provider_ref), ctx.job.lineage.inputs))
        await ctx.charged(3)
        return Outcome([], message="resumed")

    async with manager(tmp_path, resume) as jobs:
        await _wait_done(jobs, job.id)
        again = await jobs.get(job.id)
        assert again.state == "succeeded" and again.message == "resumed"
        assert resumed == [({"task_id": "T-1"}, ["~/a.png"])]
        assert await jobs.ledger.spent_today() == 3


async def test_an_offline_job_cut_short_by_a_restart_fails_saying_nothing_was_charged(tmp_path: Path) -> None:
    """Through the runtime: the offline provider has no `resume`, so the job says what happened."""
    settings = make_settings(tmp_path)

    async def slow(job: JobContext) -> Outcome:
        await anyio.sleep_forever()
        raise AssertionError

    async with open_runtime(settings) as rt:
        job = await rt.jobs.submit("resize_image", "local", {}, slow)
        await anyio.lowlevel.checkpoint()
    async with open_runtime(settings) as rt:
        await _wait_done(rt.jobs, job.id)
        again = await rt.jobs.get(job.id)
        assert again.state == "failed"
        assert "restarted" in (again.error or "") and "nothing was charged" in (again.error or "")


async def test_credit_caps_refuse_before_anything_runs(tmp_path: Path) -> None:
    ran: list[str] = []

    async def work(job: JobContext) -> Outcome:
        ran.append(job.job.id)
        await job.charged(job.job.credits_estimated)
        return Outcome([])

    async with manager(tmp_path, per_call=50, per_day=100) as jobs:
        with pytest.raises(BudgetExceeded, match="per-call cap of 50"):
            await jobs.submit("op", "p", {}, work, estimate=80)
        first = await jobs.submit("op", "p", {}, work, estimate=40)
        await _wait_done(jobs, first.id)
        second = await jobs.submit("op", "p", {}, work, estimate=40)
        await _wait_done(jobs, second.id)
        with pytest.raises(BudgetExceeded, match="daily cap of 100"):
            await jobs.submit("op", "p", {}, work, estimate=40)
    assert len(ran) == 2


async def test_a_paid_attempt_after_a_free_one_is_checked_against_the_caps(tmp_path: Path) -> None:
    """Routing from a free provider to a paid one reserves again, and a cap refuses it."""
    refused: list[str] = []

    async def work(job: JobContext) -> Outcome:
        try:
            await job.reserve(5)
        except BudgetExceeded as exc:
            refused.append(exc.message)
            raise
        return Outcome([])

    async with manager(tmp_path, per_call=2) as jobs:
        job = await jobs.submit("op", "local", {}, work, estimate=0)
        await _wait_done(jobs, job.id)
        assert job.state == "failed" and "per-call cap of 2" in (job.error or "")
    assert len(refused) == 1


async def test_cancel_of_a_job_that_will_not_stop_returns_instead_of_raising(tmp_path: Path) -> None:
    """Regression: cancel() leaked a bare TimeoutError (an internal error) when work ignored it."""
    entered, release = anyio.Event(), anyio.Event()

    async def stubborn(job: JobContext) -> Outcome:
        with anyio.CancelScope(shield=True):
            entered.set()
            await release.wait()
        await anyio.lowlevel.checkpoint()  # the first checkpoint outside the shield ends it
        return Outcome([])

    async with manager(tmp_path, cancel_grace=0.2) as jobs:
        job = await jobs.submit("op", "p", {}, stubborn)
        await entered.wait()
        returned = await jobs.cancel(job.id)
        assert returned.id == job.id and not returned.done and "cancelling" in returned.message
        release.set()
        await _wait_done(jobs, job.id)
        assert job.state == "cancelled"


async def test_an_internal_error_fails_the_job_and_is_logged_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def buggy(job: JobContext) -> Outcome:
        raise KeyError("a bug")

    async with manager(tmp_path) as jobs:
        job = await jobs.submit("op", "p", {}, buggy)
        await _wait_done(jobs, job.id)
    assert job.state == "failed" and job.error and "Internal error (KeyError)" in job.error
    [record] = [r for r in caplog.records if r.name == "photo_mcp.jobs"]
    assert record.levelname == "ERROR" and record.exc_info and record.exc_info[0] is KeyError


async def test_a_failure_that_may_have_charged_counts_up_to_its_max_charge_never_as_free(tmp_path: Path) -> None:
    from tools.core.errors import ProviderUnavailable

    async def dropped(job: JobContext) -> Outcome:
        await job.reserve(40)
        await job.charged(10)  # what the client already knew it spent
        raise ProviderUnavailable("The connection dropped.", provider="prov", charged=True, max_charge=40)

    async def not_charged(job: JobContext) -> Outcome:
        raise ProviderUnavailable("Unreachable. Nothing was charged.", provider="prov", max_charge=40)

    async with manager(tmp_path, per_day=100) as jobs:
        job = await jobs.submit("op", "prov", {}, dropped, estimate=40)
        await _wait_done(jobs, job.id)
        free = await jobs.submit("op", "prov", {}, not_charged, estimate=40)
        await _wait_done(jobs, free.id)
        failed, clean = await jobs.get(job.id), await jobs.get(free.id)
        assert failed.state == "failed" and failed.credits_charged == 10  # what is known to be charged
        assert failed.details["possibly_charged"] == 30 and failed.details["max_charge"] == 40  # and the rest
        assert clean.state == "failed" and clean.credits_charged == 0 and "possibly_charged" not in clean.details
        assert await jobs.ledger.spent_today() == 40  # the caps count all of it: 10 known + 30 possible
