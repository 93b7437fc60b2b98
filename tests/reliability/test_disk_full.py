"""A full disk is an error for the call that hit it, never the end of the server.

The disk really fills: the data dir is a 2 MB tmpfs (mounted by the test, which needs root;
skipped otherwise), so the `photo-mcp` stdio subprocess gets ENOSPC from write(2) and
SQLITE_FULL from SQLite. What must hold: the call that hit it answers `isError` with a clear
message, nothing partial is left (no temp file, no index row without its file, no file without
its row), the failure is logged at ERROR with its traceback, and the next call is served.

Also: the result store's quota (oldest results first, never one a running job needs, never a
file the server did not write) and the per-call output bound.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from PIL import Image

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.reliability import temp_files
from tests.support import stdio_params
from tools.core.db import Database
from tools.core.errors import StorageFull
from tools.core.results import Lineage, ResultStore


def noise_png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(buf, "PNG")
    return buf.getvalue()


def text_of(result: Any) -> str:
    return " ".join(b.text for b in result.content if b.type == "text")


def index_rows(db_path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, path FROM results").fetchall()
    finally:
        conn.close()


def assert_index_matches_files(data: Path) -> None:
    """Every indexed result has its file, every file in the results dir has its row, no temp files."""
    results = data / "results"
    rows = index_rows(data / "photo-mcp.sqlite3")
    files = {p for p in results.iterdir() if p.is_file()}
    assert temp_files(results) == []
    assert {Path(path) for _, path in rows} == files


@contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte; returns the filler file."""
    filler = directory / "filler.bin"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


async def test_a_full_disk_fails_that_call_clearly_and_the_server_keeps_serving(tmp_path: Path, workdir: Path) -> None:
    (workdir / "noise.png").write_bytes(noise_png(600, 600))  # ~1 MB; upscaled to ~3 MB, above the tmpfs
    (workdir / "small.png").write_bytes(image_bytes(32, 24))
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    with small_tmpfs(data), log.open("w") as errlog:
        params = stdio_params(tmp_path, PHOTO_MCP_LOG_LEVEL="WARNING")
        async with stdio_client(params, errlog=errlog) as streams, Client(nullcontext(streams)) as client:
            with anyio.fail_after(120):
                big = await client.call_tool("resize_image", {"image": str(workdir / "noise.png"), "width": 1000})
                assert big.is_error, text_of(big)
                assert "could not be saved: the disk is full" in text_of(big)
                assert "Nothing partial was kept" in text_of(big)
                assert_index_matches_files(data)

                ok = await client.call_tool("resize_image", {"image": str(workdir / "small.png"), "width": 16})
                assert not ok.is_error, text_of(ok)

                filler = fill(data)  # now not one more page fits: SQLite and the store both hit ENOSPC
                full = await client.call_tool("resize_image", {"image": str(workdir / "small.png"), "width": 20})
                assert full.is_error, text_of(full)
                assert "the disk is full" in text_of(full), text_of(full)
                listed = await client.list_tools()  # the server is still there, answering
                assert any(t.name == "resize_image" for t in listed.tools)

                filler.unlink()
                again = await client.call_tool("resize_image", {"image": str(workdir / "small.png"), "width": 12})
                assert not again.is_error, text_of(again)
                assert_index_matches_files(data)
    logged = log.read_text()
    assert "ERROR" in logged and "Traceback" in logged and "No space left on device" in logged, logged[-3000:]


async def test_one_call_cannot_write_more_than_max_result_mb(tmp_path: Path, workdir: Path) -> None:
    (workdir / "noise.png").write_bytes(noise_png(400, 400))  # ~0.5 MB in
    settings = make_settings(tmp_path, max_result_mb=1)
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(60):
            out = await client.call_tool("resize_image", {"image": str(workdir / "noise.png"), "width": 1200})
    assert out.is_error and "PHOTO_MCP_MAX_RESULT_MB" in text_of(out), text_of(out)
    assert "nothing was saved" in text_of(out)
    results = settings.results_dir
    assert not results.exists() or [p for p in results.iterdir()] == []
    # The default bounds one call well below the 126 MB a 0.58 MB request once wrote.
    assert make_settings(tmp_path).max_result_mb * 2**20 < 126 * 10**6


async def _store(tmp_path: Path, quota: int) -> tuple[ResultStore, Database]:
    db = await anyio.to_thread.run_sync(Database, tmp_path / "data" / "photo-mcp.sqlite3")
    store = ResultStore(tmp_path / "data" / "results", db, max_bytes=quota)
    return store, db


async def test_the_quota_removes_the_oldest_results_no_running_job_needs(tmp_path: Path) -> None:
    png = image_bytes(40, 40)  # a few hundred bytes each
    store, db = await _store(tmp_path, quota=len(png) * 3)
    try:
        made = [
            await store.save(png, mime_type="image/png", width=40, height=40, lineage=Lineage("resize_image", "local"))
            for _ in range(3)
        ]
        # A running job reads the oldest result: it must survive the clean-up.
        now = time.time()
        inputs = f'["photo://results/{made[0].id}"]'
        await db.run(
            lambda c: c.execute(
                "INSERT INTO jobs (id, operation, provider, params, state, progress, message, provider_ref, result_ids,"
                " error, details, credits_estimated, credits_charged, created_at, updated_at, inputs)"
                " VALUES ('j_1', 'resize_image', 'local', '{}', 'running', 0, '', '{}', '[]', NULL, '{}', 0, 0,"
                " ?, ?, ?)",
                (now, now, inputs),
            )
        )
        # Files the server did not write: a user's picture and a look-alike name, and an index row
        # that points outside the results dir. None of them is ever deleted.
        foreign = store.directory / "holiday.png"
        foreign.write_bytes(png)
        outside = tmp_path / "elsewhere-20260101-000000-resize_image-0123456789ab.png"
        outside.write_bytes(png)
        await db.run(
            lambda c: c.execute(
                "INSERT INTO results VALUES ('0123456789ab', ?, 'image/png', ?, 40, 40, 'resize_image', 'local', NULL,"
                " '[]', '{}', 0, NULL)",
                (str(outside), len(png)),
            )
        )
        newest = await store.save(
            png, mime_type="image/png", width=40, height=40, lineage=Lineage("resize_image", "local")
        )
        left = {r[0] for r in await db.run(lambda c: c.execute("SELECT id FROM results").fetchall())}
        # Over the quota by two files: the oldest unneeded ones (made[1], made[2]) went, made[0] is in use.
        assert left == {made[0].id, newest.id, "0123456789ab"}
        assert made[0].path.exists() and newest.path.exists()
        assert not made[1].path.exists() and not made[2].path.exists()
        assert foreign.exists() and outside.exists()
        # When only results in use (or not ours) are left, the save is refused, nothing written.
        await db.run(lambda c: c.execute("UPDATE jobs SET inputs=? WHERE id='j_1'", (f'["{newest.id}"]',)))
        before = set(store.directory.iterdir())
        with pytest.raises(StorageFull, match="PHOTO_MCP_MAX_STORE_MB"):
            await store.save(
                png * 3, mime_type="image/png", width=40, height=40, lineage=Lineage("resize_image", "local")
            )
        assert set(store.directory.iterdir()) <= before
    finally:
        db.close()


async def test_the_job_runner_survives_a_disk_that_fills_mid_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tools.core.budget import Ledger
    from tools.core.jobs import JobContext, JobManager, Outcome

    with small_tmpfs(tmp_path / "data", "1m") as data:
        db = await anyio.to_thread.run_sync(Database, data / "photo-mcp.sqlite3")
        filler: list[Path] = []

        async def fills_the_disk(job: JobContext) -> Outcome:
            filler.append(fill(data))
            await job.remember(task_id="T-1" * 2000)  # persisting now needs pages the disk does not have
            return Outcome([])

        async def quick(job: JobContext) -> Outcome:
            return Outcome([], message="fine")

        async def no_resume(job: JobContext) -> Outcome:
            raise AssertionError("nothing to resume")

        try:
            jobs = JobManager(db, Ledger(db, per_call=None, per_day=None))
            async with anyio.create_task_group() as tg:
                await jobs.start(tg, no_resume)
                with anyio.fail_after(30):
                    job = await jobs.submit("op", "local", {}, fills_the_disk)
                    while not job.done:
                        await jobs.wait_for_change(job, 1.0)
                    assert job.state == "failed" and "the disk is full" in (job.error or ""), job.error
                    with pytest.raises(StorageFull, match="the disk is full"):  # still full: a clear refusal
                        await jobs.submit("op", "local", {}, quick)
                    filler[0].unlink()
                    ok = await jobs.submit("op", "local", {}, quick)  # and the runner still runs jobs
                    while not ok.done:
                        await jobs.wait_for_change(ok, 1.0)
                    assert ok.state == "succeeded"
                tg.cancel_scope.cancel()
        finally:
            db.close()
    failures = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "photo_mcp.jobs"]
    assert failures and all(r.exc_info for r in failures)


async def test_a_file_size_limit_fails_that_call_clearly_without_root(tmp_path: Path, workdir: Path) -> None:
    # The same guarantee where no tmpfs can be mounted: the server runs under RLIMIT_FSIZE (2 MB), so
    # writing a bigger result gets EFBIG from the kernel (Python ignores SIGXFSZ).
    (workdir / "noise.png").write_bytes(noise_png(600, 600))
    (workdir / "small.png").write_bytes(image_bytes(32, 24))
    params = stdio_params(tmp_path)
    limited = "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20)); "
    limited += "os.execv(sys.executable, [sys.executable, '-m', 'server'])"
    params = params.model_copy(update={"args": ["-c", limited]})
    log = tmp_path / "server.log"
    with log.open("w") as errlog:
        async with stdio_client(params, errlog=errlog) as streams, Client(nullcontext(streams)) as client:
            with anyio.fail_after(120):
                big = await client.call_tool("resize_image", {"image": str(workdir / "noise.png"), "width": 1000})
                assert big.is_error and "a file size limit was reached" in text_of(big), text_of(big)
                ok = await client.call_tool("resize_image", {"image": str(workdir / "small.png"), "width": 16})
                assert not ok.is_error, text_of(ok)
    assert_index_matches_files(tmp_path / "data")
    assert "ERROR" in log.read_text() and "File too large" in log.read_text()
