"""How database calls run: at once on the event loop when nothing holds the file, else in a
worker that waits; never a half-kept call; and the store's byte count kept by the file itself.

Real SQLite files; the "other process" is a second connection holding the write lock, which is
what another photo-mcp server on the same data dir looks like to this one.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from tools.core.db import Database


def _insert_result(c: sqlite3.Connection, rid: str, size: int) -> None:
    c.execute(
        "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (rid, f"/r/{rid}.png", "image/png", size, 1, 1, "op", "local", None, "[]", "{}", 0.0, None),
    )


def _usage(c: sqlite3.Connection) -> tuple[int, int]:
    counted = c.execute("SELECT bytes FROM store_usage WHERE id=0").fetchone()[0]
    summed = c.execute("SELECT COALESCE(SUM(bytes), 0) FROM results").fetchone()[0]
    return counted, summed


async def test_a_call_made_while_another_process_writes_waits_for_it_and_then_lands(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.sqlite3")
    other = sqlite3.connect(tmp_path / "d.sqlite3", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another server in the middle of its own write
    released = threading.Event()

    def release_soon() -> None:
        released.wait()
        other.execute("COMMIT")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, release_soon)

            async def write() -> None:
                await db.run(lambda c: _insert_result(c, "a", 10))

            tg.start_soon(write)
            await anyio.lowlevel.checkpoint()  # the call found the lock taken and went to a worker
            released.set()
    assert db.call(_usage) == (10, 10)
    other.close()
    db.close()


async def test_a_failing_call_keeps_none_of_its_statements(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.sqlite3")

    def half(c: sqlite3.Connection) -> None:
        _insert_result(c, "a", 10)
        _insert_result(c, "a", 10)  # the same id again: an error after the first statement

    with pytest.raises(sqlite3.IntegrityError):
        await db.run(half)
    assert db.call(lambda c: c.execute("SELECT COUNT(*) FROM results").fetchone()[0]) == 0
    await db.run(lambda c: _insert_result(c, "b", 5))  # the connection is not left in a transaction
    assert db.call(_usage) == (5, 5)
    db.close()


async def test_the_store_byte_count_follows_every_insert_change_and_delete(tmp_path: Path) -> None:
    db = Database(tmp_path / "d.sqlite3")
    for i, size in enumerate((100, 250, 7)):
        await db.run(lambda c, i=i, size=size: _insert_result(c, f"r{i}", size))
    await db.run(lambda c: c.execute("UPDATE results SET bytes=50 WHERE id='r1'"))
    await db.transact(lambda c: c.execute("DELETE FROM results WHERE id='r0'"))
    assert db.call(_usage) == (57, 57)
    db.close()


def test_a_database_made_before_the_byte_count_starts_counting_from_its_results(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite3"
    db = Database(path)
    db.call(lambda c: _insert_result(c, "old", 1234))
    db.call(lambda c: c.executescript("DROP TRIGGER results_usage_add; DROP TABLE store_usage;"))
    db.close()  # the file as an earlier release left it: results, no count
    db = Database(path)
    assert db.call(_usage) == (1234, 1234)
    db.call(lambda c: _insert_result(c, "new", 6))
    assert db.call(_usage) == (1240, 1240)
    db.close()
