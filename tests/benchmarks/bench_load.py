"""Load and soak over Streamable HTTP: `photo-mcp --transport http` as a subprocess, the fake Aluo
and fake YouCam (limits relaxed) on loopback.

    python -m tests.benchmarks.bench_load [--clients 20] [--calls 10] [--soak 75] [--quick]

Load: `--clients` concurrent MCP clients, each running `--calls` mixed tool calls in sequence —
resize_image, remove_background (Aluo), place_on_background (on that cut-out), convert_image,
enhance_photo (YouCam), repeated with other parameters. Every call must succeed (the script
fails otherwise); prints p50/p95 latency per tool and overall, and the server's peak RSS (VmHWM).

Soak: a "10-minute-equivalent" run scaled down with the fakes' speed knobs (zero latency, 10 ms
polling): `--soak` seconds of continuous mixed calls by `--soak-workers` workers, each opening a
fresh MCP session for every round of 5 calls (so sessions are created and torn down all the time).
The server's open file descriptors, threads and RSS are sampled after a warm-up (a tenth of the soak),
periodically, and at the end; growth should be ~none.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from tests.benchmarks.procstats import Sample, load, sample
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.youcam import FakeYouCam
from tests.support import http_process

TITLE_LOAD = "### Load: concurrent MCP clients over Streamable HTTP, mixed local and provider calls"
TITLE_SOAK = "### Soak: continuous mixed calls, server resources at start and end"
USER_PACE_S = 2.0  # a user's pace against real providers: one call every 2 s (provider jobs take seconds)


@asynccontextmanager
async def environment() -> AsyncIterator[dict[str, Any]]:
    """The fakes on loopback and photo-mcp over HTTP wired to them."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (tmp / "work").mkdir()
    aluo = FakeAluo(credits=10**9)
    youcam = FakeYouCam(credits=10**9, polls_until_done=2, polling_interval_ms=10, rate_limits=None)
    async with serve(aluo.app) as aluo_base, serve(youcam.app) as youcam_base:
        env = {
            "ALUO_API_KEY": aluo.api_key,
            "ALUO_BASE_URL": FakeAluo.api_base(aluo_base),
            "YOUCAM_API_KEY": youcam.client_id,
            "YOUCAM_SECRET_KEY": youcam.secret_key,
            "YOUCAM_BASE_URL": youcam_base,
            "YOUCAM_RATE_LIMITS": "off",  # the fake's limits are relaxed too
            "PHOTO_MCP_ALUO_POLL_INTERVAL": "0.01",
            "PHOTO_MCP_BACKGROUND_PROVIDERS": "aluo",
        }
        async with http_process(tmp, **env) as (base, pid):
            yield {"url": base + "/mcp", "pid": pid, "aluo": aluo, "youcam": youcam, "work": tmp / "work"}


class Calls:
    """Latency per tool and failures, over every call made."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.failures: list[str] = []

    async def call(self, client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        result = await client.call_tool(tool, args)
        self.latency[tool].append(time.perf_counter() - start)
        out = result.structured_content or {}
        if result.is_error or out.get("status") != "succeeded":
            text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
            self.failures.append(f"{tool}: {text[:200]}")
            raise RuntimeError(f"{tool} failed: {text[:300]}")
        return out

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.latency.values())


ROUNDS: list[list[tuple[str, dict[str, Any]]]] = [
    [
        ("resize_image", {"max_side": 512}),
        ("remove_background", {"provider": "aluo"}),
        ("place_on_background", {"background": "white", "aspect_ratio": "1:1"}),  # on the cut-out
        ("convert_image", {"format": "jpeg"}),  # of the placed image
        ("enhance_photo", {"scale": 2, "provider": "youcam"}),
    ],
    [
        ("resize_image", {"width": 300, "output_format": "webp"}),
        ("remove_background", {"provider": "aluo"}),
        ("place_on_background", {"background": "#f4f4f4", "aspect_ratio": "4:5", "size": 800}),
        ("convert_image", {"format": "webp", "quality": 80}),
        ("enhance_photo", {"scale": 1, "provider": "youcam"}),
    ],
]


async def workflow(calls: Calls, client: Client, photo: str, round_no: int, n: int = 5) -> None:
    """One round of up to 5 mixed calls: local edits chained on a provider's cut-out."""
    last = photo
    for tool, args in ROUNDS[round_no % len(ROUNDS)][:n]:
        image = last if tool in ("place_on_background", "convert_image") else photo
        out = await calls.call(client, tool, {"image": image, **args})
        last = out["images"][0]["uri"]


def _photos(work: Path, n: int) -> list[str]:
    paths = []
    for i in range(n):
        p = work / f"photo-{i}.jpg"
        p.write_bytes(image_bytes(640 + i, 480, "jpeg"))
        paths.append(str(p))
    return paths


_SPIN = (
    "import time; from PIL import Image; im = Image.effect_noise((1600, 1600), 40); t = time.perf_counter()\n"
    "for _ in range(6): im.resize((1200, 1200), Image.Resampling.LANCZOS)\n"
    "print(time.perf_counter() - t)"
)


async def parallel_speedup(workers: int) -> float:
    """How much parallelism the machine gives right now: the same CPU-bound Pillow work in one
    process, then in `workers` processes at once (median of 3 tries each way). On an idle machine
    this is about the core count; on a shared one, less."""

    async def one() -> float:
        return float((await anyio.run_process([sys.executable, "-c", _SPIN])).stdout)

    alone, together = [], []
    for _ in range(3):
        alone.append(await one())
        times: list[float] = []

        async def add(into: list[float]) -> None:
            into.append(await one())

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(add, times)
        together.append(statistics.mean(times))
    return workers * statistics.median(alone) / statistics.median(together)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


async def run_load(env: dict[str, Any], clients: int, calls_per_client: int) -> list[str]:
    photos = _photos(env["work"], clients)
    before = load()
    idle = sample(env["pid"])
    aluo, youcam = env["aluo"], env["youcam"]
    expected = clients * calls_per_client

    async def client_run(calls: Calls, i: int) -> None:
        async with Client(env["url"]) as client:
            done, r = 0, 0
            while done < calls_per_client:
                n = min(5, calls_per_client - done)
                await workflow(calls, client, photos[i], r, n)
                done, r = done + n, r + 1

    # The baseline: the same calls, the same sessions, one at a time (after a warm-up round).
    await client_run(Calls(), 0)
    serial = Calls()
    start = time.monotonic()
    with anyio.fail_after(900):
        for i in range(clients):
            await client_run(serial, i)
    serial_wall = time.monotonic() - start
    charges = (len(aluo.charges), len(youcam.charges))
    calls = Calls()
    start = time.monotonic()
    with anyio.fail_after(600):
        async with anyio.create_task_group() as tg:
            for i in range(clients):
                tg.start_soon(client_run, calls, i)
    wall = time.monotonic() - start
    end = sample(env["pid"])
    assert calls.count == serial.count == expected and not calls.failures, calls.failures[:3]
    removed = sum(len(v) for k, v in calls.latency.items() if k == "remove_background")
    enhanced = len(calls.latency.get("enhance_photo", []))
    assert len(aluo.charges) - charges[0] == removed and len(youcam.charges) - charges[1] == enhanced
    assert youcam.lost_tasks == 0
    every = [t for v in calls.latency.values() for t in v]
    every_serial = [t for v in serial.latency.values() for t in v]
    cores = os.cpu_count() or 1
    ideal = serial_wall / cores
    speedup = await parallel_speedup(cores)
    ideal_now = serial_wall / max(1.0, speedup)
    rows = [
        TITLE_LOAD,
        "",
        f"{clients} clients × {calls_per_client} calls = {expected} calls, {expected}/{expected} succeeded "
        f"in {wall:.1f} s ({expected / wall:.1f} calls/s); Aluo charged {len(aluo.charges) - charges[0]}× "
        f"for {removed} cut-outs, YouCam {len(youcam.charges) - charges[1]}× for {enhanced} enhances, 0 lost tasks.",
        "",
        "| tool | calls | p50 | p95 |",
        "|---|---|---|---|",
    ]
    for tool in ("resize_image", "remove_background", "place_on_background", "convert_image", "enhance_photo"):
        v = calls.latency.get(tool)
        if v:
            rows.append(f"| {tool} | {len(v)} | {_pct(v, 0.5) * 1000:.0f} ms | {_pct(v, 0.95) * 1000:.0f} ms |")
    rows += [
        f"| **all** | {len(every)} | {_pct(every, 0.5) * 1000:.0f} ms | {_pct(every, 0.95) * 1000:.0f} ms |",
        f"| all, the same calls one at a time | {len(every_serial)} | {_pct(every_serial, 0.5) * 1000:.0f} ms "
        f"| {_pct(every_serial, 0.95) * 1000:.0f} ms |",
        "",
        f"| {clients} clients at once vs one at a time | wall |",
        "|---|---|",
        f"| the same {expected} calls one at a time | {serial_wall:.1f} s |",
        f"| ÷ the concurrency the machine allows ({cores} cores: the calls are CPU-bound here) | {ideal:.1f} s |",
        f"| {clients} clients at once | {wall:.1f} s |",
        f"| **ratio (target ≤ 1.2×)** | **{wall / ideal:.2f}×** {'✓' if wall / ideal <= 1.2 else '✗'} |",
        f"| ÷ the parallelism measured right now ({speedup:.2f}× for {cores} CPU-bound processes) | "
        f"{ideal_now:.1f} s |",
        f"| ratio against that | {wall / ideal_now:.2f}× {'✓' if wall / ideal_now <= 1.2 else '✗'} |",
        "",
        "| server (photo-mcp --transport http) | RSS | peak RSS (VmHWM) | threads | open fds |",
        "|---|---|---|---|---|",
        f"| idle, before | {idle.rss_mb:.0f} MB | {idle.hwm_mb:.0f} MB | {idle.threads} | {idle.fds} |",
        f"| after the load | {end.rss_mb:.0f} MB | {end.hwm_mb:.0f} MB | {end.threads} | {end.fds} |",
        "",
        f"Load average {before} before, {load()} after.",
    ]
    return rows


async def run_soak(env: dict[str, Any], seconds: float, workers: int) -> list[str]:
    photos = _photos(env["work"], workers)
    calls = Calls()
    before = load()
    samples: list[tuple[float, Sample]] = []
    pid = env["pid"]

    async def one_round(i: int, r: int) -> None:
        async with Client(env["url"]) as client:  # a fresh session per round
            await workflow(calls, client, photos[i], r)

    # Warm-up: the workers run for a tenth of the soak first (imports, provider clients, caches, the
    # thread pool, allocator arenas), then the start sample; growth is measured from there to the end.
    warm = max(1.0, seconds / 10)
    start = time.monotonic() + warm
    deadline = start + seconds
    warm_calls = 0

    async def worker(i: int) -> None:
        r = 0
        while time.monotonic() < deadline:
            await one_round(i, r)
            r += 1

    async def sampler() -> None:
        nonlocal warm_calls
        await anyio.sleep(warm)
        warm_calls = calls.count
        samples.append((time.monotonic() - start, sample(pid)))
        while True:
            await anyio.sleep(max(1.0, seconds / 6))
            samples.append((time.monotonic() - start, sample(pid)))

    with anyio.fail_after(warm + seconds + 300):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sampler)
            async with anyio.create_task_group() as inner:
                for i in range(workers):
                    inner.start_soon(worker, i)
            tg.cancel_scope.cancel()
    elapsed = time.monotonic() - start
    await anyio.sleep(0.5)  # let closed sessions finish tearing down
    samples.append((time.monotonic() - start, sample(pid)))
    youcam = env["youcam"]
    soak_calls = calls.count - warm_calls
    assert not calls.failures, calls.failures[:3]
    assert youcam.lost_tasks == 0
    first, last = samples[0][1], samples[-1][1]
    rows = [
        TITLE_SOAK,
        "",
        f"{soak_calls} calls in {elapsed:.0f} s by {workers} workers ({soak_calls / elapsed:.1f} calls/s, "
        f"{calls.count // 5} MCP client connections opened and closed), all succeeded. Real "
        f"providers take seconds per call; at one call every {USER_PACE_S:g} s per user, that is the traffic of "
        f"{workers} users for {soak_calls * USER_PACE_S / workers / 60:.1f} minutes.",
        "",
        "| sample | time | RSS | threads | open fds |",
        "|---|---|---|---|---|",
    ]
    for t, s in samples:
        rows.append(f"| | {t:.0f} s | {s.rss_mb:.0f} MB | {s.threads} | {s.fds} |")
    rows[-len(samples)] = rows[-len(samples)].replace("| |", f"| start (after {warm:.0f} s of warm-up) |", 1)
    rows[-1] = rows[-1].replace("| |", "| end |", 1)
    rows += [
        f"| **growth** | | {last.rss_mb - first.rss_mb:+.0f} MB | {last.threads - first.threads:+d} "
        f"| {last.fds - first.fds:+d} |",
        "",
        f"Peak RSS (VmHWM) {last.hwm_mb:.0f} MB. Load average {before} before, {load()} after.",
    ]
    return rows


async def measure(quick: bool, clients: int, calls: int, soak: float, workers: int) -> list[str]:
    if quick:  # one server for both parts
        async with environment() as env:
            return [*await run_load(env, clients, calls), "", *await run_soak(env, soak, workers)]
    async with environment() as env:  # a fresh server each, so the soak starts from a clean one
        rows = await run_load(env, clients, calls)
    async with environment() as env:
        return [*rows, "", *await run_soak(env, soak, workers)]


def run(quick: bool, clients: int = 20, calls: int = 10, soak: float = 75.0, workers: int = 4) -> list[str]:
    if quick:
        clients, calls, soak, workers = 3, 5, 2.0, 2
    return anyio.run(measure, quick, clients, calls, soak, workers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="calls per client")
    parser.add_argument("--soak", type=float, default=75.0, help="soak duration in seconds")
    parser.add_argument("--soak-workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    args = parser.parse_args(argv)
    print("\n".join(run(args.quick, args.clients, args.calls, args.soak, args.soak_workers)), flush=True)


if __name__ == "__main__":
    main()
