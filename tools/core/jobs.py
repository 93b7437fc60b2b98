"""Jobs that outlive one tool call.

A tool submits work to the `JobManager`, which runs it in the server's task group and
persists every state change in SQLite. The caller waits up to its budget and, if the
job is not done, hands the job id to the assistant (`get_job`). After a restart,
unfinished jobs are handed to the one `resume` function the runtime gives `start` (it
continues the job through its provider, or fails it with a message that says why).

States: queued -> running -> succeeded | failed | cancelled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

from tools.core.budget import Ledger, amount
from tools.core.db import Database, bounded, storage_failure
from tools.core.echo import quoted
from tools.core.errors import NotFound, PhotoError, ProviderError, StorageFull
from tools.core.jobrecord import CLAIM, INSERT, TERMINAL, UPSERT, Job, JobState, Outcome
from tools.core.lease import Lease
from tools.core.principals import CALLER, Owner, owned, visible_to

_BASIS_RANK = ("reported", "documented", "estimated")
CANCEL_GRACE_S = 10.0  # how long cancel() waits for the work to unwind
ROW_POLL_S = 0.5  # how often a waiter re-reads a job another server runs
log = logging.getLogger("photo_mcp.jobs")


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
        if provider != self.job.provider:  # the first candidate is already in the job's row
            self.job.provider = provider
            await self._manager._changed(self.job, persist=True)

    async def reserve(self, estimate: float) -> None:
        """Check one paid attempt against the caps and reserve its estimate before it is sent.

        Raises:
            BudgetExceeded: the attempt would break a cap (nothing is sent).
        """
        if estimate != self.job.credits_estimated:
            await self._manager.ledger.reserve(self.job.id, self.job.provider, estimate, principal=self.job.principal)
            self.job.credits_estimated = estimate
            await self._manager._changed(self.job, persist=True)

    async def charged(self, credits: float, *, basis: str = "reported") -> None:
        """Record credits the provider consumed for this job.

        `basis` says how the amount is known: "reported" by the provider's answer, "documented"
        in its price list, or "estimated"; the job keeps the least certain one it was told.
        """
        self.job.credits_charged += credits
        known = self.job.details.get("credits_basis", "reported")
        if basis != "reported" or known != "reported":
            self.job.details["credits_basis"] = max(known, basis, key=_BASIS_RANK.index)
        ledger, job = self._manager.ledger, self.job
        # The ledger's charge and the job's row change together (one transaction: never one without the other).
        await self._manager._changed(job, also=lambda c: ledger.charge_in(c, job.id, job.provider, credits))


Work = Callable[[JobContext], Awaitable[Outcome]]


def _charged(credits: float) -> str:
    return f"{amount(credits)} {'was' if credits == 1 else 'were'} already charged."


class JobManager:
    """Runs, tracks, persists and resumes jobs; `start` it in a task group first."""

    def __init__(
        self, db: Database, ledger: Ledger, *, cancel_grace: float = CANCEL_GRACE_S, lease: Lease | None = None
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.cancel_grace = cancel_grace
        # This server's identity and lease (None: alone on its data dir, takes every unfinished job).
        self.lease = lease
        self.owner = lease.id if lease is not None else None
        self._resume: Work | None = None
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, anyio.Event] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._tg: TaskGroup | None = None

    async def start(self, tg: TaskGroup, resume: Work) -> None:
        """Start accepting jobs in `tg`, and hand what a previous run left unfinished to `resume`.

        Every unfinished job goes to `resume`, even one with no remembered provider id: only the
        provider can tell whether a request that was in flight may have been charged.
        """
        self._tg = tg
        self._resume = resume
        await self._take_over()
        if self.lease is not None:
            tg.start_soon(self._keep_lease, self.lease)

    async def _keep_lease(self, lease: Lease) -> None:
        """Renew this server's heartbeat, and take over the jobs of servers that are gone."""
        while True:
            await anyio.sleep(lease.renew_every)
            try:
                await lease.renew()
                await self._take_over()
            except Exception:  # a full disk or a locked database: try again at the next beat
                log.exception("Could not renew this server's lease or look for orphaned jobs.")

    async def _take_over(self) -> None:
        """Resume the unfinished jobs whose owner is gone (each taken over atomically: another
        server looking at the same time cannot take it too)."""
        rows = await self.db.run(
            lambda c: c.execute("SELECT * FROM jobs WHERE state IN ('queued','running')").fetchall()
        )
        for row in rows:
            if row["id"] in self._jobs:
                continue  # running here
            owner = row["owner"] if "owner" in row.keys() else None  # noqa: SIM118 - sqlite3.Row
            if self.lease is not None and await anyio.to_thread.run_sync(self.lease.alive_sync, owner):
                continue  # another server runs it
            try:
                job = Job.from_row(row)
            except (ValueError, TypeError, KeyError) as exc:  # one damaged row must not stop every start
                log.error("Skipped job %r: its database row cannot be read (%s).", row["id"], exc)
                continue
            claim = (self.owner, job.id, owner)
            taken = await self.db.transact(lambda c, claim=claim: c.execute(CLAIM, claim).rowcount)
            if not taken:
                continue  # another server took it first
            job.owner = self.owner
            self._jobs[job.id] = job
            job.message = "resumed after a restart"
            assert self._resume is not None
            self._launch(job, self._resume)
        if self.lease is not None:  # their jobs are taken over: forget the servers that are gone
            await anyio.to_thread.run_sync(self.lease.forget_gone_sync)

    async def submit(
        self,
        operation: str,
        provider: str,
        params: dict[str, Any],
        work: Work,
        *,
        estimate: float = 0.0,
        inputs: list[str] | None = None,
        principal: str | None = None,
    ) -> Job:
        """Persist a new job of `principal` and start `work` for it; `inputs` label the images it works on.

        Raises:
            BudgetExceeded: if `estimate` breaks a configured credit cap (nothing is started).
        """
        job = Job(
            id="j_" + secrets.token_hex(6),
            operation=operation,
            provider=provider,
            params=bounded(params),  # labels and strings are kept short: held per job, stored per job
            credits_estimated=estimate,
            inputs=bounded(list(inputs or [])),
            principal=principal,
            owner=self.owner,
            # It starts at once (`_launch` below), so its first row already says so: one write less.
            state="running",
            message="started",
        )
        row = job.row()
        try:
            # The cap check and the reservation are one atomic step (across processes too).
            await self.ledger.reserve(job.id, provider, estimate, principal=principal)
            await self.db.run(lambda c: c.execute(INSERT, row))
        except sqlite3.Error as exc:
            why = storage_failure(exc)
            if why is None:
                raise
            log.error("job %s (%s) could not be started: %s", job.id, operation, why, exc_info=exc)
            # A reservation without its job must not hold credits against the caps.
            with anyio.CancelScope(shield=True), contextlib.suppress(sqlite3.Error):
                await self.db.run(lambda c: c.execute("DELETE FROM ledger WHERE job_id=?", (job.id,)))
            raise StorageFull(
                f"The server could not start this call: {why}. Nothing was sent or saved; free some disk space "
                "and run the tool again."
            ) from None
        self._jobs[job.id] = job
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
                if job.state != "running":  # a job taken over after a restart
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
                    f" {_charged(job.credits_charged)}" if job.credits_charged else ""
                )
        except PhotoError as exc:
            job.state = "failed"
            job.error = exc.message
            if isinstance(exc, ProviderError):
                job.details["error_kind"] = type(exc).__name__
                await self._possibly_charged(job, exc)
        except Exception as exc:  # a bug, or a full disk, must fail the job, not the server
            job.state = "failed"
            why = storage_failure(exc)
            if why is not None:
                log.error("job %s (%s on %s): %s", job.id, job.operation, job.provider, why, exc_info=exc)
                job.error = (
                    f"The server could not record this job: {why}. Nothing partial was kept; free some disk space "
                    "and run the tool again." + (f" {_charged(job.credits_charged)}" if job.credits_charged else "")
                )
            else:
                log.exception("job %s (%s on %s) failed with an internal error", job.id, job.operation, job.provider)
                job.error = f"Internal error ({type(exc).__name__}); nothing more was sent to the provider."
        finally:
            self._scopes.pop(job.id, None)
            # On server shutdown the job stays "running" in the database, so the next
            # start resumes it; only a finished job settles its ledger entry.
            persisted = False
            with anyio.CancelScope(shield=True):
                try:
                    settle = None
                    if job.done:  # what may have been charged counts too, never as free
                        spent = job.credits_charged + float(job.details.get("possibly_charged", 0))
                        settle = functools.partial(self.ledger.settle_in, job_id=job.id, charged=spent)
                    await self._changed(job, persist=True, also=settle)  # the ledger settles with the job's end
                    persisted = True
                except Exception as exc:  # a full disk must not take the server down with it
                    log.error(
                        "job %s ended %s but could not be recorded (%s)", job.id, job.state,
                        storage_failure(exc) or type(exc).__name__, exc_info=exc,
                    )  # fmt: skip
                    await self._wake(job)  # its waiter still gets the outcome, from memory
            if job.done and persisted:  # a finished job lives on in the database only; `get` reads it there
                self._jobs.pop(job.id, None)

    async def _possibly_charged(self, job: Job, exc: ProviderError) -> None:
        """A failure that may have charged counts as charged, up to its `max_charge`, never as free:
        the rest (above what the provider client already recorded, `credits_charged`, which stays
        what is known) goes into the ledger and the job's details as `possibly_charged`, so the
        caps count it."""
        if not exc.charged or exc.max_charge is None:
            return
        extra = exc.max_charge - job.credits_charged
        if extra <= 0:
            return
        job.details["possibly_charged"] = extra  # settled into the ledger with the job (`_run`)
        job.details["max_charge"] = exc.max_charge
        with anyio.CancelScope(shield=True):
            try:
                await self.ledger.charge(job.id, exc.provider or job.provider, extra)
            except Exception:
                log.exception("job %s: could not record a possible charge of %g", job.id, extra)

    async def _changed(
        self, job: Job, *, persist: bool = False, also: Callable[[sqlite3.Connection], object] | None = None
    ) -> None:
        """Wake the job's waiters; write its row when `persist` (or it is done), in one transaction
        with `also` (a ledger statement that must change with it)."""
        job.updated_at = time.time()
        if persist or job.done or also is not None:
            row = job.row()

            def write(c: sqlite3.Connection) -> None:
                if also is not None:
                    also(c)
                c.execute(UPSERT, row)

            await self.db.transact(write)
        await self._wake(job)

    async def _wake(self, job: Job) -> None:
        event = self._events.pop(job.id, None)
        if event is not None:
            event.set()

    async def get(self, job_id: str, *, principal: Owner = CALLER) -> Job:
        """The job, from memory or the database, if it is `principal`'s (default: the caller's).

        Raises:
            NotFound: for an unknown id, or another principal's job (the same answer).
        """
        unknown = NotFound(f"No job with id {quoted(job_id)}. Job ids look like j_1a2b3c4d5e6f.")
        job = self._jobs.get(job_id)
        if job is not None:
            if not visible_to(job.principal, principal):
                raise unknown
            return job
        mine, who = owned(principal)
        row = await self.db.run(
            lambda c: c.execute(f"SELECT * FROM jobs WHERE id=? AND {mine}", (job_id, *who)).fetchone()
        )
        if row is None:
            raise unknown
        try:
            return Job.from_row(row)
        except (ValueError, TypeError, KeyError) as exc:
            raise NotFound(f"Job {job_id!r} is recorded, but its database row cannot be read ({exc}).") from None

    async def wait_for_change(self, job: Job, timeout: float) -> None:
        """Return when `job` changes or `timeout` seconds pass.

        A `job` read from the database (another server runs it, or this one took it over since)
        is refreshed from its row (or from the job this server now runs) every `ROW_POLL_S`.
        """
        if job.done:
            return
        if self._jobs.get(job.id) is not job:
            with anyio.move_on_after(timeout):
                while not await self._refresh(job):  # noqa: ASYNC110 - another process's row: no event to wait on
                    await anyio.sleep(ROW_POLL_S)
            return
        event = self._events.setdefault(job.id, anyio.Event())
        with anyio.move_on_after(timeout):
            await event.wait()

    async def _refresh(self, job: Job) -> bool:
        """Copy the job's latest state into `job`; whether it changed."""
        latest = self._jobs.get(job.id)
        if latest is None:
            row = await self.db.run(lambda c: c.execute("SELECT * FROM jobs WHERE id=?", (job.id,)).fetchone())
            try:
                latest = Job.from_row(row) if row is not None else None
            except (ValueError, TypeError, KeyError):
                latest = None
        if latest is None or (latest.updated_at, latest.state) == (job.updated_at, job.state):
            return False
        job.__dict__.update({k: v for k, v in latest.__dict__.items() if k not in ("principal", "id")})
        return True

    async def cancel(self, job_id: str, *, principal: Owner = CALLER) -> Job:
        """Stop a running job; a finished job is returned unchanged.

        Waits up to `cancel_grace` seconds for the work to unwind; a job still unwinding then is
        returned as it is (its message says it is being cancelled) and ends on its own.

        Raises:
            NotFound: for an unknown id, or another principal's job.
        """
        job = await self.get(job_id, principal=principal)
        scope = self._scopes.get(job_id)
        if scope is not None:
            scope.cancel()
            with anyio.move_on_after(self.cancel_grace):
                while not job.done:
                    await self.wait_for_change(job, 1.0)
            if not job.done:
                job.message = "cancelling: the provider call is still unwinding"
        return job


__all__ = ["TERMINAL", "Job", "JobContext", "JobManager", "JobState", "Outcome", "Work"]
