"""A damaged database never stops the server: real files that are truncated, random bytes or
another application's, and single rows that cannot be read.

The database is moved aside (`photo-mcp.sqlite3.corrupt-<timestamp>`, logged at ERROR), a fresh
one is started with the results re-indexed from the files on disk, and `photo-mcp doctor` says
where the old one went. End to end: `photo-mcp` as a subprocess over stdio.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tests.fakes.images import image_bytes
from tests.support import server_env, stdio_params
from tools.core.db import Database, bounded, database_report, moved_aside_files

DB_NAME = "photo-mcp.sqlite3"


def _sqlite_error(path: Path) -> str | None:
    """What SQLite itself says about `path` (None: it reads fine)."""
    try:
        with sqlite3.connect(path) as c:
            first = c.execute("PRAGMA quick_check").fetchone()[0]
        c.close()
        return None if first == "ok" else first
    except sqlite3.DatabaseError as exc:
        return str(exc)


def _filled_database(path: Path, rows: int = 500) -> None:
    db = Database(path)
    db.call(
        lambda c: c.executemany(
            "INSERT INTO jobs (id, operation, provider, params, state, progress, message, provider_ref, "
            "result_ids, error, details, credits_estimated, credits_charged, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    f"j_{i:012x}",
                    "resize_image",
                    "local",
                    "{}",
                    "succeeded",
                    1,
                    "done",
                    "{}",
                    "[]",
                    None,
                    "{}",
                    0,
                    0,
                    0,
                    0,
                )
                for i in range(rows)
            ],
        )
    )
    db.close()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 100])


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _foreign(path: Path) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE contacts (name TEXT, email TEXT)")
        c.execute("INSERT INTO contacts VALUES ('Ada', 'ada@example.com')")
    c.close()


def _foreign_jobs_table(path: Path) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, cron TEXT)")  # another tool's "jobs"
    c.close()


DAMAGE = {
    "truncated": _truncate,
    "random-bytes": _random_bytes,
    "foreign": _foreign,
    "foreign-jobs": _foreign_jobs_table,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_file_is_moved_aside_and_a_fresh_database_starts(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / DB_NAME
    _filled_database(path)
    DAMAGE[damage](path)
    original = path.read_bytes()
    if damage in ("truncated", "random-bytes"):
        assert _sqlite_error(path) is not None  # the damage is real: SQLite itself says so
    with caplog.at_level(logging.ERROR, logger="photo_mcp.db"):
        db = Database(path)
    try:
        aside = db.moved_aside
        assert aside is not None and aside.parent == tmp_path
        assert aside.name.startswith(DB_NAME + ".corrupt-")
        assert aside.read_bytes() == original  # kept, byte for byte, for whoever wants it back
        assert [r.levelno for r in caplog.records] == [logging.ERROR]
        assert str(aside) in caplog.records[0].getMessage()
        assert moved_aside_files(path) == [aside]
        # The fresh database works.
        assert db.call(lambda c: c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]) == 0
    finally:
        db.close()
    assert _sqlite_error(path) is None


def test_a_stale_wal_never_reaches_the_fresh_database(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    _random_bytes(path)
    wal = tmp_path / (DB_NAME + "-wal")
    wal.write_bytes(b"old wal pages")
    db = Database(path)
    try:
        assert db.moved_aside is not None
        # SQLite discards a WAL it cannot use, or it is moved aside with its database.
        assert not (wal.exists() and wal.read_bytes() == b"old wal pages")
        assert db.call(lambda c: c.execute("SELECT COUNT(*) FROM results").fetchone()[0]) == 0
    finally:
        db.close()
    assert _sqlite_error(path) is None


def test_two_damaged_files_in_one_second_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    kept = []
    for _ in range(2):
        Database(path).close()
        _random_bytes(path)
        db = Database(path)
        kept.append(db.moved_aside)
        db.close()
    assert kept[0] != kept[1] and all(p is not None and p.exists() for p in kept)


def test_healthy_and_empty_files_are_kept(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    path.touch()  # zero bytes: a database that was never written, not a damaged one
    db = Database(path)
    assert db.moved_aside is None
    db.close()
    _filled_database(path, rows=3)
    db = Database(path)
    try:
        assert db.moved_aside is None
        assert db.call(lambda c: c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]) == 3
    finally:
        db.close()
    assert moved_aside_files(path) == []


def test_a_database_of_the_first_release_is_migrated_not_moved(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with sqlite3.connect(path) as c:  # jobs without the columns added since
        c.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, operation TEXT NOT NULL, provider TEXT NOT NULL, "
            "params TEXT NOT NULL, state TEXT NOT NULL, progress REAL NOT NULL, message TEXT NOT NULL, "
            "provider_ref TEXT NOT NULL, result_ids TEXT NOT NULL, error TEXT, details TEXT NOT NULL, "
            "credits_estimated REAL NOT NULL, credits_charged REAL NOT NULL, created_at REAL NOT NULL, "
            "updated_at REAL NOT NULL)"
        )
        c.execute("INSERT INTO jobs VALUES ('j_1','op','p','{}','succeeded',1,'done','{}','[]',NULL,'{}',0,0,0,0)")
    c.close()
    db = Database(path)
    try:
        assert db.moved_aside is None
        row = db.call(lambda c: c.execute("SELECT inputs FROM jobs WHERE id='j_1'").fetchone())
        assert row[0] == "[]"
    finally:
        db.close()


def test_the_doctor_report_says_what_is_wrong_and_what_was_moved(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    assert "not created yet" in database_report(path)[0]
    _filled_database(path, rows=2)
    assert "ok (0 results, 2 jobs" in database_report(path)[0]
    _random_bytes(path)
    report = database_report(path)
    assert "UNUSABLE" in report[0] and "moves it aside" in report[0]
    assert path.read_bytes() and Database(path).moved_aside is not None  # the report itself moved nothing
    report = database_report(path)
    assert "ok (0 results, 0 jobs" in report[0]
    assert len(report) == 2 and "moved aside" in report[1] and ".corrupt-" in report[1]


def test_bounded_shortens_every_long_string() -> None:
    long = "https://example.com/?" + "q" * 10_000
    out = bounded({"image": long, "images": [long, "short"], "n": 3, "nested": {"u": (long,)}})
    assert out["image"] == long[:200] + "…"
    assert out["images"] == [long[:200] + "…", "short"]
    assert out["n"] == 3 and out["nested"]["u"] == (long[:200] + "…",)


# --- end to end: photo-mcp over stdio on a damaged data dir ------------------------------------


@pytest.fixture(scope="module")
def used_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir after two resize_image calls by a real server (a database and two result files)."""
    base = tmp_path_factory.mktemp("used")
    (base / "work").mkdir()
    photo = base / "work" / "a.png"
    photo.write_bytes(image_bytes(64, 48, "png"))

    async def use() -> None:
        with anyio.fail_after(60):
            async with Client(stdio_params(base)) as client:
                for width in (32, 16):
                    result = await client.call_tool("resize_image", {"image": str(photo), "width": width})
                    assert not result.is_error, result.content

    anyio.run(use)
    return base


def _copy(used: Path, tmp_path: Path) -> Path:
    shutil.copytree(used / "data", tmp_path / "data")
    shutil.copytree(used / "work", tmp_path / "work")
    return tmp_path / "data" / DB_NAME


def _bad_job_row(path: Path) -> None:
    with sqlite3.connect(path) as c:
        cols = [r[1] for r in c.execute("PRAGMA table_info(jobs)")]
        values: dict[str, Any] = {name: "" for name in cols}
        values.update(
            id="j_badbadbadbad",
            operation="remove_background",
            provider="aluo",
            params="{not json",
            state="running",
            progress=0,
            message="running",
            provider_ref="{}",
            result_ids="[]",
            error=None,
            details="{}",
            credits_estimated=1,
            credits_charged=0,
            created_at=time.time(),
            updated_at=time.time(),
            principal=None,  # the local user's (a stdio client is asking)
        )
        c.execute(
            f"INSERT INTO jobs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", [values[k] for k in cols]
        )
    c.close()


def _bad_result_row(path: Path) -> None:
    with sqlite3.connect(path) as c:
        c.execute(
            "INSERT INTO results VALUES ('0badbadbad00', '/nowhere.png', 'image/png', 'many', 1, 1, 'x', 'y', NULL, "
            "'{not json', '{}', ?, NULL)",
            (time.time() + 60,),  # the newest: first in resources/list
        )
    c.close()


E2E = {
    "truncated": _truncate,
    "random-bytes": _random_bytes,
    "foreign": _foreign,
    "bad-job-row": _bad_job_row,
    "bad-result-row": _bad_result_row,
}


async def _start_and_list(tmp_path: Path) -> tuple[set[str], list[Any], str, Any]:
    log_path = tmp_path / "server.log"
    with log_path.open("w") as errlog, anyio.fail_after(60):
        async with Client(stdio_client(stdio_params(tmp_path), errlog=errlog)) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            resources = list((await client.list_resources()).resources)
            job = await client.call_tool("get_job", {"job_id": "j_badbadbadbad"})
    return tools, resources, log_path.read_text(), job


@pytest.mark.parametrize("damage", sorted(E2E))
async def test_the_server_starts_on_a_damaged_data_dir(tmp_path: Path, used_data_dir: Path, damage: str) -> None:
    path = _copy(used_data_dir, tmp_path)
    result_files = sorted(p.name for p in (tmp_path / "data").rglob("*.png"))
    assert len(result_files) == 2
    E2E[damage](path)

    tools, resources, log, job = await _start_and_list(tmp_path)

    assert {"resize_image", "get_job", "check_credits"} <= tools
    listed = sorted(r.name for r in resources if str(r.uri).startswith("photo://results/"))
    assert listed == result_files  # re-indexed from the files, or listed around the bad row
    assert "Traceback" not in log
    aside = moved_aside_files(path)
    if damage in ("truncated", "random-bytes", "foreign"):
        assert len(aside) == 1 and str(aside[0]) in log
    else:
        assert aside == []  # one bad row is skipped, the database is kept
        what = "job" if damage == "bad-job-row" else "result"
        assert f"Skipped {what}" in log
    if damage == "bad-job-row":
        assert job.is_error and "cannot be read" in job.content[0].text


async def test_a_result_keeps_its_uri_across_a_rebuilt_index(tmp_path: Path, used_data_dir: Path) -> None:
    path = _copy(used_data_dir, tmp_path)
    _random_bytes(path)
    with anyio.fail_after(60), open(os.devnull, "w") as errlog:
        async with Client(stdio_client(stdio_params(tmp_path), errlog=errlog)) as client:
            (first, *_) = [r for r in (await client.list_resources()).resources if "results" in str(r.uri)]
            read = await client.read_resource(str(first.uri))
            again = await client.call_tool("resize_image", {"image": str(first.uri), "width": 8})
    assert read.contents[0].mime_type == "image/png"
    assert not again.is_error and again.structured_content["images"][0]["width"] == 8


def test_doctor_says_where_the_database_went(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / DB_NAME).write_bytes(os.urandom(4096))
    Database(data / DB_NAME).close()  # what a start does: moved aside, fresh one made
    out = subprocess.run(
        [sys.executable, "-m", "server", "doctor"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert "database:      ok" in out.stdout
    assert "moved aside" in out.stdout and str(data / DB_NAME) + ".corrupt-" in out.stdout
