"""The credit ledger: estimates reserved before a call, charges recorded after.

Caps (`PHOTO_MCP_MAX_CREDITS_PER_CALL`, `..._PER_DAY`, and `..._PER_DAY_PER_USER` for each
principal's own spend) refuse a call before anything is sent. Today's spend counts charges of
finished jobs and estimates of running ones; every row records whose job it is.

`reserve` is the gate: it sums today's spend, checks the caps and records the
reservation in one `BEGIN IMMEDIATE` transaction, so concurrent calls in one server and
servers in other processes sharing the data dir cannot all slip under a cap at once.
"""

from __future__ import annotations

import sqlite3
import time

from tools.core.db import Database
from tools.core.errors import BudgetExceeded
from tools.core.principals import ANYONE, Owner, owned

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    job_id TEXT PRIMARY KEY, provider TEXT NOT NULL, day TEXT NOT NULL,
    estimated REAL NOT NULL, charged REAL NOT NULL, settled INTEGER NOT NULL,
    principal TEXT
);
CREATE INDEX IF NOT EXISTS ledger_day ON ledger(day);
"""
# What a row adds to today's spend: its charge once settled, else the larger of estimate and charge.
_SPEND = "COALESCE(SUM(CASE WHEN settled THEN charged ELSE MAX(estimated, charged) END), 0)"


def amount(n: float, unit: str = "credit") -> str:
    """`n` of `unit` as a person writes it: "1 credit", "0.5 credits", "3 credits"."""
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def _today() -> str:
    return time.strftime("%Y-%m-%d")


def _migrate(c: sqlite3.Connection) -> None:
    c.executescript(_SCHEMA)
    columns = {row[1] for row in c.execute("PRAGMA table_info(ledger)")}
    if "principal" not in columns:  # a ledger made before per-principal caps were planned
        c.execute("ALTER TABLE ledger ADD COLUMN principal TEXT")


class Ledger:
    def __init__(
        self, db: Database, *, per_call: float | None, per_day: float | None, per_user: float | None = None
    ) -> None:
        self.db = db
        self.per_call = per_call
        self.per_day = per_day
        self.per_user = per_user  # the daily cap of each principal (PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER)
        db.call(_migrate)

    async def spent_today(self, provider: str | None = None, *, principal: Owner = ANYONE) -> float:
        """Charged credits today (estimates for jobs still running), by `principal` if given."""
        mine, who = owned(principal)
        where = "day=?" + (" AND provider=?" if provider else "") + f" AND {mine}"
        args = ((_today(), provider) if provider else (_today(),)) + who
        row = await self.db.run(lambda c: c.execute(f"SELECT {_SPEND} FROM ledger WHERE {where}", args).fetchone())
        return float(row[0])

    def _refuse(self, estimate: float, spent: float) -> None:
        if self.per_call is not None and estimate > self.per_call:
            raise BudgetExceeded(
                f"This call is estimated at {amount(estimate)}, above the per-call cap of {self.per_call:g} "
                "(PHOTO_MCP_MAX_CREDITS_PER_CALL). Ask for fewer images/variants, or raise the cap."
            )
        if self.per_day is not None and estimate > 0 and spent + estimate > self.per_day:
            raise BudgetExceeded(
                f"This call (~{amount(estimate)}) would bring today's spend to {spent + estimate:g}, above "
                f"the daily cap of {self.per_day:g} (PHOTO_MCP_MAX_CREDITS_PER_DAY). Nothing was sent."
            )

    async def check(self, estimate: float) -> None:
        """Refuse `estimate` if it breaks a cap now. Advisory only: it reserves nothing, so the
        gate before sending paid work is `reserve`.

        Raises:
            BudgetExceeded: with the cap, the estimate and what to change.
        """
        self._refuse(estimate, await self.spent_today() if self.per_day is not None and estimate > 0 else 0.0)

    async def reserve(self, job_id: str, provider: str, estimate: float, *, principal: str | None = None) -> None:
        """Check the caps and reserve `estimate` for `job_id`, as one atomic step.

        Reserving again for the same job (a routed call moving on to a paid provider) replaces
        its estimate: the caps then count the job once, at the larger of the new estimate and
        what it was already charged.

        Raises:
            BudgetExceeded: with the cap, the estimate and what to change; nothing is recorded.
        """
        day = _today()

        def gate(c: sqlite3.Connection) -> None:
            spent = 0.0
            if self.per_day is not None and estimate > 0:
                spent = float(
                    c.execute(f"SELECT {_SPEND} FROM ledger WHERE day=? AND job_id<>?", (day, job_id)).fetchone()[0]
                )
                own = c.execute("SELECT charged FROM ledger WHERE job_id=?", (job_id,)).fetchone()
                spent += max(0.0, float(own[0]) - estimate) if own is not None else 0.0
            self._refuse(estimate, spent)
            if self.per_user is not None and estimate > 0:
                self._refuse_for_user(c, day, job_id, estimate, principal)
            c.execute(
                "INSERT INTO ledger (job_id, provider, day, estimated, charged, settled, principal) "
                "VALUES (?,?,?,?,0,0,?) ON CONFLICT(job_id) DO UPDATE SET "
                "provider=excluded.provider, estimated=excluded.estimated, settled=0, "
                "principal=COALESCE(excluded.principal, principal)",
                (job_id, provider, day, estimate, principal),
            )

        await self.db.transact(gate)

    def _refuse_for_user(
        self, c: sqlite3.Connection, day: str, job_id: str, estimate: float, principal: str | None
    ) -> None:
        """Refuse `estimate` if it would bring `principal`'s spend today above the per-user cap."""
        assert self.per_user is not None
        mine = "principal IS ?"
        spent = float(
            c.execute(
                f"SELECT {_SPEND} FROM ledger WHERE day=? AND job_id<>? AND {mine}", (day, job_id, principal)
            ).fetchone()[0]
        )
        own = c.execute("SELECT charged FROM ledger WHERE job_id=?", (job_id,)).fetchone()
        spent += max(0.0, float(own[0]) - estimate) if own is not None else 0.0
        if spent + estimate > self.per_user:
            raise BudgetExceeded(
                f"This call (~{amount(estimate)}) would bring your spend today to {spent + estimate:g}, above "
                f"the daily cap of {self.per_user:g} per person (PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER). "
                "Nothing was sent; check_credits shows your spend."
            )

    async def charge(self, job_id: str, provider: str, credits: float) -> None:
        """Add `credits` to what `job_id` was charged."""
        await self.db.run(lambda c: self.charge_in(c, job_id, provider, credits))

    async def settle(self, job_id: str, charged: float) -> None:
        """Record what `job_id` cost in the end (its estimate no longer counts)."""
        await self.db.run(lambda c: self.settle_in(c, job_id=job_id, charged=charged))

    # The same statements on a connection inside the caller's transaction (the job's row changes with them).
    @staticmethod
    def charge_in(c: sqlite3.Connection, job_id: str, provider: str, credits: float) -> None:
        c.execute("UPDATE ledger SET charged=charged+?, provider=? WHERE job_id=?", (credits, provider, job_id))

    @staticmethod
    def settle_in(c: sqlite3.Connection, *, job_id: str, charged: float) -> None:
        c.execute("UPDATE ledger SET charged=?, settled=1 WHERE job_id=?", (charged, job_id))
