"""Soak: 1,000 local calls through a real MCP client against one `photo-mcp` stdio subprocess;
the server's RSS, open files, threads, asyncio tasks and database size before and after.

    python -m tests.benchmarks.bench_soak [--calls 1000] [--workers 4] [--quick]

Each call is `resize_image` on a small PNG; one call in ten takes the PNG by a ~58,000-character
URL (served on loopback; an 8,000-character query string and a 50,000-character fragment), so
unbounded labels would show up in the database and in memory. Finished jobs must leave memory
(the database keeps them), so every figure but the database should stay flat; the database
grows by a bounded few hundred bytes per call (one job, one ledger and one result row),
whatever the size of the inputs' names.

The server runs as `python -m tests.benchmarks.bench_soak --serve` (photo-mcp's own `main`),
which answers SIGUSR1 by writing its asyncio task count to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.benchmarks.procstats import load, sample
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import server_env

TITLE = "### Soak: 1,000 local calls through one MCP client session, server resources before and after"
STATS_ENV = "PHOTO_MCP_BENCH_STATS"  # where the --serve child writes its pid and task counts
PAD = 8_000  # query string: sent, so it must fit the loopback server's request line (16 KB)
FRAGMENT = 50_000  # not sent over HTTP, but part of the image reference the server stores (httpx: URLs < 64 KB)


def _serve() -> int:
    """The child: photo-mcp over stdio, plus a SIGUSR1 handler reporting its asyncio tasks."""
    stats = Path(os.environ.pop(STATS_ENV))

    def report(signum: int, frame: Any) -> None:
        # Runs in the main thread, which runs the event loop: all_tasks() sees the running loop.
        tasks = len(asyncio.all_tasks())
        tmp = stats.with_suffix(".tmp")
        tmp.write_text(f"{os.getpid()} {tasks} {time.monotonic()}")
        os.replace(tmp, stats)

    signal.signal(signal.SIGUSR1, report)
    stats.write_text(f"{os.getpid()} -1 {time.monotonic()}")
    from server.__main__ import main

    return main([])


@dataclass(frozen=True)
class Figures:
    calls: int
    rss_mb: float
    fds: int
    threads: int
    tasks: int
    db_bytes: int
    wal_bytes: int
    results: int


async def _tasks(stats: Path, pid: int) -> int:
    before = stats.read_text()
    os.kill(pid, signal.SIGUSR1)
    with anyio.fail_after(10):
        while stats.read_text() == before:  # noqa: ASYNC110 - the child answers through a file
            await anyio.sleep(0.01)
    return int(stats.read_text().split()[1])


async def _figures(calls: int, stats: Path, pid: int, data: Path) -> Figures:
    await anyio.sleep(0.2)  # let the last call's session work settle
    s = sample(pid)
    db = data / "photo-mcp.sqlite3"
    wal = data / "photo-mcp.sqlite3-wal"
    # The logical size (pages in the file and in the WAL): the file alone only grows at checkpoints.
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as c:
        pages = c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]
    results = sum(1 for p in (data / "results").glob("*") if p.is_file()) if (data / "results").exists() else 0
    return Figures(
        calls,
        s.rss_mb,
        s.fds,
        s.threads,
        await _tasks(stats, pid),
        pages,
        wal.stat().st_size if wal.exists() else 0,
        results,
    )


async def measure(calls: int, workers: int, warmup: int) -> list[str]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    work = tmp / "work"
    work.mkdir()
    png = image_bytes(64, 48, "png")
    photo = work / "p.png"
    photo.write_bytes(png)
    stats = tmp / "stats"
    data = tmp / "data"
    app = Starlette(routes=[Route("/p.png", lambda request: Response(png, media_type="image/png"))])
    async with serve(app) as base:
        long_url = f"{base}/p.png?pad={'x' * PAD}#{'y' * FRAGMENT}"
        env = server_env(tmp, **{STATS_ENV: str(stats)})
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tests.benchmarks.bench_soak", "--serve"],
            env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        failures: list[str] = []
        done = 0

        async with Client(params) as client:
            pid = int(stats.read_text().split()[0])

            async def one(i: int) -> None:
                nonlocal done
                image = long_url if i % 10 == 0 else str(photo)
                result = await client.call_tool("resize_image", {"image": image, "width": 16 + i % 32})
                if result.is_error:
                    failures.append(result.content[0].text)  # type: ignore[union-attr]
                done += 1

            async def run(n: int) -> None:
                queue = iter(range(n))

                async def worker() -> None:
                    for i in queue:
                        await one(i)

                async with anyio.create_task_group() as tg:
                    for _ in range(workers):
                        tg.start_soon(worker)

            with anyio.fail_after(1800):
                await run(warmup)  # imports, thread pool, caches, allocator arenas
                first = await _figures(0, stats, pid, data)
                start = time.monotonic()
                points = [first]
                step = max(1, calls // 4)
                for k in range(0, calls, step):
                    await run(min(step, calls - k))
                    points.append(await _figures(k + min(step, calls - k), stats, pid, data))
                elapsed = time.monotonic() - start
    if failures:
        raise RuntimeError(f"{len(failures)} calls failed, e.g. {failures[0][:300]}")
    last = points[-1]
    rows = [
        TITLE,
        "",
        f"{calls} `resize_image` calls (64×48 PNG; every tenth by a {len(long_url):,}-character URL) by "
        f"{workers} concurrent workers in one session, after {warmup} warm-up calls: {calls / elapsed:.0f} calls/s, "
        "all succeeded.",
        "",
        "| after | RSS | open fds | threads | asyncio tasks | database (pages) | WAL file | result files |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        rows.append(
            f"| {p.calls} calls | {p.rss_mb:.0f} MB | {p.fds} | {p.threads} | {p.tasks} | "
            f"{p.db_bytes / 1024:.0f} KB | {p.wal_bytes / 1024:.0f} KB | {p.results} |"
        )
    per_call = (last.db_bytes - first.db_bytes) / calls
    rows += [
        f"| **growth** | {last.rss_mb - first.rss_mb:+.1f} MB | {last.fds - first.fds:+d} | "
        f"{last.threads - first.threads:+d} | {last.tasks - first.tasks:+d} | "
        f"{(last.db_bytes - first.db_bytes) / 1024:+.0f} KB ({per_call:.0f} B/call) | "
        f"{(last.wal_bytes - first.wal_bytes) / 1024:+.0f} KB | {last.results - first.results:+d} |",
        "",
        f"Result files are the calls' outputs (kept by design). Load average {load()} at the end.",
    ]
    return rows


def run(quick: bool, calls: int = 1000, workers: int = 4) -> list[str]:
    if quick:
        calls, workers = 40, 2
    return anyio.run(measure, calls, workers, 10 if quick else 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return _serve()
    print("\n".join(run(args.quick, args.calls, args.workers)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
