"""Several server processes on one data directory: the credit caps hold across them.

Real processes on one SQLite file: the ledger gate in two worker processes released at the
same instant, and two `photo-mcp` servers over stdio sending paid calls to the fake Aluo.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import stdio_params

ROOT = Path(__file__).resolve().parents[2]

# One worker: open the shared database, wait for the go file, then try `n` concurrent
# reservations of `estimate` under a daily cap; print how many were accepted.
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import anyio
    from tools.core.budget import Ledger
    from tools.core.db import Database
    from tools.core.errors import BudgetExceeded

    db_path, go, name, n, estimate, cap = sys.argv[1:7]
    db = Database(Path(db_path))
    ledger = Ledger(db, per_call=None, per_day=float(cap))
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
    accepted = []

    async def one(i):
        try:
            await ledger.reserve(f"{name}-{i}", "aluo", float(estimate))
            accepted.append(i)
        except BudgetExceeded:
            pass

    async def main():
        async with anyio.create_task_group() as tg:
            for i in range(int(n)):
                tg.start_soon(one, i)

    anyio.run(main)
    db.close()
    print(json.dumps(len(accepted)), flush=True)
    """
)


def _race(tmp_path: Path, processes: int, n: int, estimate: float, cap: float) -> tuple[list[int], float]:
    """`processes` workers × `n` concurrent reservations, released together; (accepted per worker, spend)."""
    db_path, go = tmp_path / "data" / "photo-mcp.sqlite3", tmp_path / "go"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db_path), str(go), f"p{k}", str(n), str(estimate), str(cap)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(processes)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        outs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs)
    with sqlite3.connect(db_path) as c:
        spend = c.execute("SELECT COALESCE(SUM(estimated), 0) FROM ledger").fetchone()[0]
    c.close()
    return [json.loads(o.strip().splitlines()[-1]) for o in outs], spend


def test_two_processes_racing_for_a_daily_cap_of_two_accept_exactly_two(tmp_path: Path) -> None:
    accepted, spend = _race(tmp_path, processes=2, n=8, estimate=1, cap=2)
    assert sum(accepted) == 2 and spend == 2


def test_two_processes_racing_six_credit_calls_under_a_cap_of_ten_accept_one(tmp_path: Path) -> None:
    accepted, spend = _race(tmp_path, processes=2, n=3, estimate=6, cap=10)
    assert sum(accepted) == 1 and spend == 6


def test_many_reservations_from_two_processes_fill_the_cap_exactly(tmp_path: Path) -> None:
    # A longer race: 2 × 60 one-credit reservations for 50 credits.
    accepted, spend = _race(tmp_path, processes=2, n=60, estimate=1, cap=50)
    assert sum(accepted) == 50 and spend == 50


async def test_two_servers_on_one_data_dir_share_the_daily_cap(tmp_path: Path) -> None:
    """Two photo-mcp processes (two MCP hosts on one machine), four concurrent paid cut-outs each,
    a daily cap of 2: exactly two calls run and are charged, the other six are refused unsent."""
    fake = FakeAluo()
    work = tmp_path / "work"
    work.mkdir()
    photo = work / "p.png"
    photo.write_bytes(image_bytes(64, 48, "png"))
    results: list[Any] = []
    async with serve(fake.app) as base:
        params = stdio_params(
            tmp_path,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(base),
            PHOTO_MCP_BACKGROUND_PROVIDERS="aluo",
            PHOTO_MCP_MAX_CREDITS_PER_DAY="2",
        )
        with anyio.fail_after(90):
            async with Client(params) as first, Client(params) as second:
                # Both servers are up (and past their start-up) before any call is made.
                await first.list_tools()
                await second.list_tools()

                async def cut_out(client: Client) -> None:
                    results.append(await client.call_tool("remove_background", {"image": str(photo)}))

                async with anyio.create_task_group() as tg:
                    for _ in range(4):
                        tg.start_soon(cut_out, first)
                        tg.start_soon(cut_out, second)
    ok = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(ok) == 2 and len(refused) == 6, [r.content[0].text for r in refused]
    assert all("daily cap of 2" in r.content[0].text for r in refused)
    assert len(fake.charges) == 2
    assert sum(1 for r in fake.requests if r.method == "POST") == 2
