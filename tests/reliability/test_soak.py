"""What a long-running server keeps per call: finished jobs leave memory (the database has
them), and every stored label is bounded whatever the size of the input's name.

The figures over 1,000 calls come from `python -m tests.benchmarks.bench_soak`.
"""

from __future__ import annotations

import gc
import sqlite3
import weakref
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tools.core.db import LABEL_LIMIT
from tools.core.jobs import JobContext, Outcome
from tools.runtime import open_runtime

PAD = 12_000  # a URL this long fits uvicorn's request line limit (16 KB)


async def test_a_finished_job_is_freed_and_still_found_in_the_database(tmp_path: Path) -> None:
    async def work(job: JobContext) -> Outcome:
        await job.progress("working", 0.5)
        return Outcome([], message="done")

    async with open_runtime(make_settings(tmp_path)) as rt:
        job = await rt.jobs.submit("op", "local", {"image": "x" * 10_000}, work)
        job_id, ref = job.id, weakref.ref(job)
        with anyio.fail_after(10):
            while not job.done:
                await rt.jobs.wait_for_change(job, 1.0)
        del job
        with anyio.fail_after(10):
            while ref() is not None:  # the job's task unwinds, then nothing holds the job
                gc.collect()
                await anyio.sleep(0.01)
        again = await rt.jobs.get(job_id)
        assert again.state == "succeeded" and again.message == "done"
        assert again.params["image"] == "x" * LABEL_LIMIT + "…"


async def test_long_urls_are_stored_as_bounded_labels(tmp_path: Path) -> None:
    png = image_bytes(64, 48, "png")
    app = Starlette(routes=[Route("/p.png", lambda request: Response(png, media_type="image/png"))])
    (tmp_path / "work").mkdir()
    async with serve(app) as base:
        url = f"{base}/p.png?pad={'x' * PAD}"
        settings = make_settings(tmp_path, allow_private_urls=True)
        async with Client(build_server(settings)) as client:
            results: list[Any] = []
            with anyio.fail_after(60):
                for width in range(16, 36):
                    results.append(await client.call_tool("resize_image", {"image": url, "width": width}))
            assert all(not r.is_error for r in results), results[0].content
            job = await client.call_tool("get_job", {"job_id": results[-1].structured_content["job_id"]})
        assert url not in str(job.content) and url not in str(job.structured_content)
    db = tmp_path / "data" / "photo-mcp.sqlite3"
    with sqlite3.connect(db) as c:
        longest_job = c.execute("SELECT MAX(LENGTH(params) + LENGTH(inputs)) FROM jobs").fetchone()[0]
        longest_result = c.execute("SELECT MAX(LENGTH(inputs)) FROM results").fetchone()[0]
        jobs = c.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        size = c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]
    c.close()
    assert jobs == 20
    # Two bounded labels at most per job, however long the URL: 20 calls store kilobytes, not 20 × 12 KB × 3.
    assert longest_job < 2 * (LABEL_LIMIT + 100) and longest_result < LABEL_LIMIT + 100
    assert size < 200 * 1024
