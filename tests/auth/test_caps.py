"""The per-person daily cap across processes: two real processes on one SQLite file, released at
the same instant, each reserving many estimates for two people at once. Each person ends exactly
at their own cap (the check and the reservation are one BEGIN IMMEDIATE transaction), and one
person's spend never uses up the other's."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import anyio
    from tools.core.budget import Ledger
    from tools.core.db import Database
    from tools.core.errors import BudgetExceeded

    db_path, go, name, n, cap = sys.argv[1:6]
    db = Database(Path(db_path))
    ledger = Ledger(db, per_call=None, per_day=None, per_user=float(cap))
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.001)
    accepted = {"alice": 0, "bob": 0}

    async def one(i, who):
        try:
            await ledger.reserve(f"{name}-{who}-{i}", "aluo", 1.0, principal=who)
            accepted[who] += 1
        except BudgetExceeded as exc:
            assert "PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER" in exc.message

    async def main():
        async with anyio.create_task_group() as tg:
            for i in range(int(n)):
                tg.start_soon(one, i, "alice")
                tg.start_soon(one, i, "bob")

    anyio.run(main)
    db.close()
    print(json.dumps(accepted), flush=True)
    """
)


def test_each_persons_cap_holds_across_two_processes(tmp_path: Path) -> None:
    db_path, go, cap = tmp_path / "photo-mcp.sqlite3", tmp_path / "go", 7
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db_path), str(go), f"p{k}", "10", str(cap)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        results = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for who in ("alice", "bob"):
        assert sum(r[who] for r in results) == cap, results
    with sqlite3.connect(db_path) as c:
        rows = dict(c.execute("SELECT principal, SUM(estimated) FROM ledger GROUP BY principal").fetchall())
    c.close()
    assert rows == {"alice": cap, "bob": cap}
