"""Jobs that outlive one tool call.

A tool submits work to the `JobManager`, which runs it in the server's task group and
persists every state change in SQLite. The caller waits up to its budget and, if the
job is not done, hands the job id to the assistant (`get_job`). After a restart,
unfinished jobs are handed to the resume hook of their provider; a job with no hook is
marked failed with a message saying so.

States: queued -> running -> succeeded | failed | cancelled.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from tools.core.budget import Ledger
from tools.core.db import Database
from tools.core.errors import NotFound, PhotoError, ProviderError
from tools.core.results import ResultRecord, ResultStore

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
_MARKS = ",".join("?" * 15)


@dataclass
class Job:
    id: str
    operation: str
    provider: str
    params: dict[str, Any]
    state: JobState = "queued"
    progress: float = 0.0
    message: str = "queued"
    provider_ref: dict[str, Any] = field(default_factory=dict)
    result_ids: list[str] = field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    credits_estimated: float = 0.0
    credits_charged: float = 0.0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.operation,
            self.provider,
            json.dumps(self.params),
            self.state,
            self.progress,
            self.message,
            json.dumps(self.provider_ref),
            json.dumps(self.result_ids),
            self.error,
            json.dumps(self.details),
            self.credits_estimated,
            self.credits_charged,
            self.created_at,
            self.updated_at,
        )

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            id=row["id"],
            operation=row["operation"],
            provider=row["provider"],
            params=json.loads(row["params"]),
            state=row["state"],
            progress=row["progress"],
            message=row["message"],
            provider_ref=json.loads(row["provider_ref"]),
            result_ids=json.loads(row["result_ids"]),
            error=row["error"],
            details=json.loads(row["details"]),
            credits_estimated=row["credits_estimated"],
            credits_charged=row["credits_charged"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass
class Outcome:
    """What a finished piece of work produced."""

    results: list[ResultRecord]
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class JobContext:
    """Handed to work functions: report progress, remember provider ids, record charges."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self._manager = manager
        self.job = job

    async def progress(self, message: str, fraction: float | None = None) -> None:
        if fraction is not None:
            self.job.progress = max(self.job.progress, min(1.0, fraction))
        self.job.message = message
        await self._manager._changed(self.job)

    async def remember(self, **provider_ref: Any) -> None:
        """Persist provider-side ids (task id, request id, ...) so a restart can resume."""
        self.job.provider_ref.update(provider_ref)
        await self._manager._changed(self.job, persist=True)

    async def set_provider(self, provider: str) -> None:
        """For routed work (`provider="auto"`): record which provider actually runs."""
        self.job.provider = provider
        await self._manager._changed(self.job, persist=True)

    async def charged(self, credits: float) -> None:
        """Record credits the provider consumed for this job."""
        self.job.credits_charged += credits
        await self._manager.ledger.charge(self.job.id, self.job.provider, credits)
        await self._manager._changed(self.job, persist=True)


Work = Callable[[JobContext], Awaitable[Outcome]]
Resumer = Callable[[JobContext], Awaitable[Outcome]]


class JobManager:
    """Runs, tracks, persists and resumes jobs. Open it with `async with manager.running():`."""

    def __init__(self, db: Database, store: ResultStore, ledger: Ledger) -> None:
        self.db = db
        self.store = store
        self.ledger = ledger
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, anyio.Event] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._resumers: dict[str, Resumer] = {}
        self._tg: TaskGroup | None = None

    def add_resumer(self, provider: str, resumer: Resumer) -> None:
        """Register how to continue `provider`'s unfinished jobs after a restart."""
        self._resumers[provider] = resumer

    async def start(self, tg: TaskGroup) -> None:
        """Start accepting jobs in `tg`, and resume what a previous run left unfinished."""
        self._tg = tg
        rows = await self.db.run(
            lambda c: c.execute("SELECT * FROM jobs WHERE state IN ('queued','running')").fetchall()
        )
        for row in rows:
            job = Job.from_row(row)
            self._jobs[job.id] = job
            resumer = self._resumers.get(job.provider)
            # Even with no remembered id: only the provider can tell whether a request that was in
            # flight may have been charged (Aluo and Removedo charge on receipt, YouCam on success).
            if resumer is not None:
                job.message = "resumed after a restart"
                self._launch(job, resumer)
            else:
                job.state = "failed"
                job.error = (
                    "The server restarted before this job was sent to a provider; nothing was charged. "
                    "Run the tool again."
                )
                await self._changed(job, persist=True)

    async def submit(
        self, operation: str, provider: str, params: dict[str, Any], work: Work, *, estimate: float = 0.0
    ) -> Job:
        """Persist a new job and start `work` for it.

        Raises:
            BudgetExceeded: if `estimate` breaks a configured credit cap (nothing is started).
        """
        await self.ledger.check(estimate)
        job = Job(
            id="j_" + secrets.token_hex(6),
            operation=operation,
            provider=provider,
            params=params,
            credits_estimated=estimate,
        )
        self._jobs[job.id] = job
        row = job.row()
        await self.db.run(lambda c: c.execute(f"INSERT INTO jobs VALUES ({_MARKS})", row))
        await self.ledger.reserve(job.id, provider, estimate)
        self._launch(job, work)
        return job

    def _launch(self, job: Job, work: Work) -> None:
        if self._tg is None:
            raise RuntimeError("JobManager is not started")
        scope = anyio.CancelScope()
        self._scopes[job.id] = scope
        self._tg.start_soon(self._run, job, work, scope)

    async def _run(self, job: Job, work: Work, scope: anyio.CancelScope) -> None:
        ctx = JobContext(self, job)
        try:
            with scope:
                job.state = "running"
                await self._changed(job, persist=True)
                outcome = await work(ctx)
                job.result_ids = [r.id for r in outcome.results]
                job.details.update(outcome.details)
                job.message = outcome.message or "done"
                job.progress = 1.0
                job.state = "succeeded"
            if scope.cancelled_caught:
                job.state = "cancelled"
                job.message = "cancelled"
                # Whether the provider still charges depends on the provider (YouCam abandons the
                # task; Aluo has no cancel endpoint), so state only what we know.
                job.error = "The job was cancelled; nothing more will be downloaded." + (
                    f" {job.credits_charged:g} credits were already charged." if job.credits_charged else ""
                )
        except PhotoError as exc:
            job.state = "failed"
            job.error = exc.message
            if isinstance(exc, ProviderError):
                job.details["error_kind"] = type(exc).__name__
        except Exception as exc:  # a bug must fail the job, not the server
            job.state = "failed"
            job.error = f"Internal error ({type(exc).__name__}); nothing more was sent to the provider."
        finally:
            self._scopes.pop(job.id, None)
            # On server shutdown the job stays "running" in the database, so the next
            # start resumes it; only a finished job settles its ledger entry.
            with anyio.CancelScope(shield=True):
                if job.done:
                    await self.ledger.settle(job.id, job.credits_charged)
                await self._changed(job, persist=True)

    async def _changed(self, job: Job, *, persist: bool = False) -> None:
        job.updated_at = time.time()
        if persist or job.done:
            row = job.row()
            await self.db.run(lambda c: c.execute(f"INSERT OR REPLACE INTO jobs VALUES ({_MARKS})", row))
        event = self._events.pop(job.id, None)
        if event is not None:
            event.set()

    async def get(self, job_id: str) -> Job:
        """The job, from memory or the database.

        Raises:
            NotFound: for an unknown id.
        """
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        row = await self.db.run(lambda c: c.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())
        if row is None:
            raise NotFound(f"No job with id {job_id!r}. Job ids look like j_1a2b3c4d5e6f.")
        return Job.from_row(row)

    async def wait_for_change(self, job: Job, timeout: float) -> None:
        """Return when `job` changes or `timeout` seconds pass."""
        if job.done:
            return
        event = self._events.setdefault(job.id, anyio.Event())
        with anyio.move_on_after(timeout):
            await event.wait()

    async def cancel(self, job_id: str) -> Job:
        """Stop a running job; a finished job is returned unchanged.

        Raises:
            NotFound: for an unknown id.
        """
        job = await self.get(job_id)
        scope = self._scopes.get(job_id)
        if scope is not None:
            scope.cancel()
            with anyio.fail_after(10):
                while not job.done:
                    await self.wait_for_change(job, 1.0)
        return job
