"""The credit caps under concurrency: the check and the reservation are one atomic step.

Concurrent calls in one process here; across processes in tests/reliability/test_multi_process.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tools.core.budget import Ledger
from tools.core.db import Database
from tools.core.errors import BudgetExceeded
from tools.core.jobs import JobContext, Outcome
from tools.runtime import open_runtime


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "ledger.sqlite3")
    yield database
    database.close()


async def _reserve_all(ledger: Ledger, n: int, estimate: float) -> tuple[list[str], list[str]]:
    """`n` concurrent reservations; returns (accepted job ids, refusal messages)."""
    accepted: list[str] = []
    refused: list[str] = []

    async def one(i: int) -> None:
        try:
            await ledger.reserve(f"j_{i}", "aluo", estimate)
            accepted.append(f"j_{i}")
        except BudgetExceeded as exc:
            refused.append(exc.message)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return accepted, refused


def _rows(db: Database) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.call(lambda c: c.execute("SELECT job_id, estimated FROM ledger").fetchall())]


async def test_eight_concurrent_one_credit_reservations_under_a_daily_cap_of_two(db: Database) -> None:
    ledger = Ledger(db, per_call=None, per_day=2)
    accepted, refused = await _reserve_all(ledger, 8, 1.0)
    assert len(accepted) == 2 and len(refused) == 6
    assert all("daily cap of 2" in m and "Nothing was sent" in m for m in refused)
    assert sorted(j for j, _ in _rows(db)) == sorted(accepted)  # a refusal records nothing
    assert await ledger.spent_today() == 2


async def test_three_concurrent_six_credit_reservations_under_a_daily_cap_of_ten(db: Database) -> None:
    ledger = Ledger(db, per_call=None, per_day=10)
    accepted, refused = await _reserve_all(ledger, 3, 6.0)
    assert len(accepted) == 1 and len(refused) == 2
    assert await ledger.spent_today() == 6


async def test_the_per_call_cap_refuses_without_recording(db: Database) -> None:
    ledger = Ledger(db, per_call=5, per_day=None)
    with pytest.raises(BudgetExceeded, match="per-call cap of 5"):
        await ledger.reserve("j_big", "aluo", 6)
    await ledger.reserve("j_ok", "aluo", 5)
    assert _rows(db) == [("j_ok", 5.0)]


async def test_charges_and_settled_jobs_count_towards_the_day(db: Database) -> None:
    ledger = Ledger(db, per_call=None, per_day=10)
    await ledger.reserve("j_1", "aluo", 4)
    await ledger.charge("j_1", "aluo", 7)  # charged more than estimated: the charge counts
    assert await ledger.spent_today() == 7
    await ledger.settle("j_1", 7)
    await ledger.reserve("j_2", "youcam", 3)
    with pytest.raises(BudgetExceeded, match="today's spend to 11"):
        await ledger.reserve("j_3", "aluo", 1)
    assert await ledger.spent_today("aluo") == 7 and await ledger.spent_today("youcam") == 3


async def test_reserving_again_for_one_job_replaces_its_estimate(db: Database) -> None:
    # A routed call that moves from a free provider to a paid one reserves again for the same job.
    ledger = Ledger(db, per_call=None, per_day=3)
    await ledger.reserve("j_routed", "local", 0)
    await ledger.reserve("j_other", "aluo", 1)
    await ledger.reserve("j_routed", "aluo", 2)  # 1 + 2 = 3: within the cap, counted once
    assert await ledger.spent_today() == 3
    with pytest.raises(BudgetExceeded):
        await ledger.reserve("j_routed", "removedo", 3)  # 1 + 3 > 3
    assert await ledger.spent_today() == 3  # the refused re-reservation left the old one in place


async def test_free_calls_are_never_refused_by_the_daily_cap(db: Database) -> None:
    ledger = Ledger(db, per_call=0, per_day=0)
    accepted, refused = await _reserve_all(ledger, 5, 0.0)
    assert len(accepted) == 5 and not refused


async def test_a_ledger_from_before_principals_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as c:
        c.execute(
            "CREATE TABLE ledger (job_id TEXT PRIMARY KEY, provider TEXT NOT NULL, day TEXT NOT NULL, "
            "estimated REAL NOT NULL, charged REAL NOT NULL, settled INTEGER NOT NULL)"
        )
        c.execute("INSERT INTO ledger VALUES ('j_old', 'aluo', strftime('%Y-%m-%d', 'now', 'localtime'), 1, 1, 1)")
    c.close()
    db = Database(path)
    try:
        assert db.moved_aside is None
        ledger = Ledger(db, per_call=None, per_day=2)
        await ledger.reserve("j_new", "aluo", 1, principal="alice")
        with pytest.raises(BudgetExceeded):
            await ledger.reserve("j_more", "aluo", 1)
        rows = db.call(lambda c: c.execute("SELECT job_id, principal FROM ledger ORDER BY job_id").fetchall())
        assert [tuple(r) for r in rows] == [("j_new", "alice"), ("j_old", None)]
    finally:
        db.close()


async def test_concurrent_submits_start_only_the_jobs_within_the_cap(tmp_path: Path) -> None:
    ran: list[str] = []

    async def work(job: JobContext) -> Outcome:
        ran.append(job.job.id)
        await job.charged(job.job.credits_estimated)
        return Outcome([])

    async with open_runtime(make_settings(tmp_path, max_credits_per_day=10)) as rt:
        accepted: list[str] = []
        refused = 0

        async def submit() -> None:
            nonlocal refused
            try:
                accepted.append((await rt.jobs.submit("op", "aluo", {}, work, estimate=6)).id)
            except BudgetExceeded:
                refused += 1

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(submit)
            for job_id in accepted:
                job = await rt.jobs.get(job_id)
                while not job.done:
                    await rt.jobs.wait_for_change(job, 1.0)
        assert len(accepted) == 1 and refused == 2
        assert ran == accepted
        assert await rt.ledger.spent_today() == 6
        # A refused call leaves no job behind.
        count = await rt.db.run(lambda c: c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        assert count == 1


async def test_eight_concurrent_paid_tool_calls_under_a_daily_cap_of_two(tmp_path: Path, workdir: Path) -> None:
    """Through MCP against the fake Aluo: two cut-outs run and are charged, six are refused unsent."""
    fake = FakeAluo()
    photo = workdir / "p.png"
    photo.write_bytes(image_bytes(64, 48, "png"))
    async with serve(fake.app) as base:
        settings = make_settings(
            tmp_path,
            aluo_api_key=fake.api_key,
            aluo_base_url=FakeAluo.api_base(base),
            allow_private_urls=True,
            retry_base_delay=0.01,
            background_providers=["aluo"],
            max_credits_per_day=2,
        )
        async with Client(build_server(settings)) as client:
            results: list[Any] = []

            async def cut_out() -> None:
                results.append(await client.call_tool("remove_background", {"image": str(photo)}))

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for _ in range(8):
                        tg.start_soon(cut_out)
    ok = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(ok) == 2 and len(refused) == 6
    assert all("daily cap of 2" in r.content[0].text for r in refused)
    assert len(fake.charges) == 2
    assert sum(1 for r in fake.requests if r.method == "POST") == 2  # nothing was sent for the refused six
