"""The credit ledger: estimates reserved before a call, charges recorded after.

Caps (`PHOTO_MCP_MAX_CREDITS_PER_CALL`, `..._PER_DAY`) refuse a call before anything is
sent. Today's spend counts charges of finished jobs and estimates of running ones.
"""

from __future__ import annotations

import time

from tools.core.db import Database
from tools.core.errors import BudgetExceeded

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    job_id TEXT PRIMARY KEY, provider TEXT NOT NULL, day TEXT NOT NULL,
    estimated REAL NOT NULL, charged REAL NOT NULL, settled INTEGER NOT NULL
);
"""


def _today() -> str:
    return time.strftime("%Y-%m-%d")


class Ledger:
    def __init__(self, db: Database, *, per_call: float | None, per_day: float | None) -> None:
        self.db = db
        self.per_call = per_call
        self.per_day = per_day
        db.call(lambda c: c.executescript(_SCHEMA))

    async def spent_today(self, provider: str | None = None) -> float:
        """Charged credits today (estimates for jobs still running)."""
        where = "day=?" + (" AND provider=?" if provider else "")
        args = (_today(), provider) if provider else (_today(),)
        row = await self.db.run(
            lambda c: c.execute(
                f"SELECT COALESCE(SUM(CASE WHEN settled THEN charged ELSE MAX(estimated, charged) END), 0) "
                f"FROM ledger WHERE {where}",
                args,
            ).fetchone()
        )
        return float(row[0])

    async def check(self, estimate: float) -> None:
        """Refuse `estimate` if it breaks a cap.

        Raises:
            BudgetExceeded: with the cap, the estimate and what to change.
        """
        if self.per_call is not None and estimate > self.per_call:
            raise BudgetExceeded(
                f"This call is estimated at {estimate:g} credits, above the per-call cap of {self.per_call:g} "
                "(PHOTO_MCP_MAX_CREDITS_PER_CALL). Ask for fewer images/variants, or raise the cap."
            )
        if self.per_day is not None and estimate > 0:
            spent = await self.spent_today()
            if spent + estimate > self.per_day:
                raise BudgetExceeded(
                    f"This call (~{estimate:g} credits) would bring today's spend to {spent + estimate:g}, above "
                    f"the daily cap of {self.per_day:g} (PHOTO_MCP_MAX_CREDITS_PER_DAY). Nothing was sent."
                )

    async def reserve(self, job_id: str, provider: str, estimate: float) -> None:
        await self.db.run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO ledger VALUES (?,?,?,?,0,0)", (job_id, provider, _today(), estimate)
            )
        )

    async def charge(self, job_id: str, provider: str, credits: float) -> None:
        await self.db.run(
            lambda c: c.execute(
                "UPDATE ledger SET charged=charged+?, provider=? WHERE job_id=?", (credits, provider, job_id)
            )
        )

    async def settle(self, job_id: str, charged: float) -> None:
        await self.db.run(
            lambda c: c.execute("UPDATE ledger SET charged=?, settled=1 WHERE job_id=?", (charged, job_id))
        )
