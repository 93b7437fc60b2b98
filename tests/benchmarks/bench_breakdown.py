"""Where one provider call's time goes: `remove_background` via Aluo (64×48 PNG, the fake on
loopback), each stage timed inside the server, then the same calls over stdio and the bare
httpx2 script, so the stdio framing (JSON-RPC over pipes, the second process) is the difference.

    python -m tests.benchmarks.bench_breakdown [--calls 100] [--quick]

The in-process part wraps the functions each stage runs (a stage's time includes what it awaits,
waits for a worker thread included): argument validation (the SDK's pydantic argument model),
image resolving and sniffing (`ImageResolver.resolve`), preprocessing (fitting the image to
Aluo's limits), the provider's HTTP (upload, answer, result download), SQLite (every
`Database.run`/`transact`: job rows, ledger, result index), the result file write with fsync,
sniffing the result (`probe`), the preview (decode, downscale, encode), output validation on
the server (pydantic, the SDK) and on the client (jsonschema, the SDK). "Rest" is the call's
total minus those: the job runner, progress, routing, the adapter, the in-memory transport.
The file write runs in a worker while the probe and the preview run in another, so their
figures overlap (the call waits for the longer).
Medians per call; every stage's figure is the median of its per-call sums.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from tests.benchmarks import bench_overhead
from tests.benchmarks.bench_cold_start import _cpu_seconds
from tests.benchmarks.procstats import children, load
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import stdio_params

TITLE = "### Where one provider call's time goes: remove_background via Aluo, stage by stage"
_acc: dict[str, float] = defaultdict(float)


def _wrap_async(owner: Any, name: str, stage: str) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            _acc[stage] += time.perf_counter() - start

    setattr(owner, name, timed)


def _wrap_sync(owner: Any, name: str, stage: str, *, classmethod_: bool = False) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _acc[stage] += time.perf_counter() - start

    setattr(owner, name, classmethod(lambda cls, *a, **k: timed(*a, **k)) if classmethod_ else timed)


STAGES = (
    "argument validation (SDK, pydantic)",
    "image resolving and sniffing",
    "preprocessing (fit to Aluo's limits)",
    "provider HTTP (upload, answer, download)",
    "SQLite (job rows, ledger, result index)",
    "result write + fsync (while the probe and preview run)",
    "result sniffing (probe)",
    "preview (decode, downscale, encode)",
    "output validation, server (pydantic)",
    "output validation, client (jsonschema)",
)


def _instrument() -> None:
    from mcp.client.session import ClientSession
    from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata

    from tools.core import db, images, previews, refs, results
    from tools.providers.aluo import client as aluo

    _wrap_sync(FuncMetadata, "validate_arguments", STAGES[0])
    _wrap_async(refs.ImageResolver, "resolve", STAGES[1])
    _wrap_async(aluo.AluoClient, "_fit", STAGES[2])
    _wrap_async(aluo.AluoClient, "_call", STAGES[3])
    _wrap_async(aluo.AluoClient, "_synchronous", STAGES[3])
    _wrap_async(db.Database, "run", STAGES[4])
    _wrap_async(db.Database, "transact", STAGES[4])
    _wrap_sync(results, "write_temp", STAGES[5])
    _wrap_sync(images, "probe", STAGES[6])
    _wrap_sync(previews, "preview", STAGES[7])
    _wrap_sync(FuncMetadata, "convert_result", STAGES[8])
    _wrap_async(ClientSession, "validate_tool_result", STAGES[9])


async def in_process(calls: int, tmp: Path, api: str, key: str) -> tuple[list[float], dict[str, list[float]]]:
    from server.app import build_server
    from tools.core.settings import Settings

    work = tmp / "work-in"
    work.mkdir()
    src = work / "small.png"
    src.write_bytes(image_bytes(64, 48, "png"))
    settings = Settings(
        _env_file=None,
        data_dir=tmp / "data-in",
        allowed_dirs=[work],
        allow_private_urls=True,
        aluo_api_key=key,
        aluo_base_url=api,
        background_providers=["aluo"],
    )
    totals: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    async with Client(build_server(settings)) as client:
        args = {"image": str(src), "provider": "aluo"}
        for _ in range(5):
            assert not (await client.call_tool("remove_background", args)).is_error
        for _ in range(calls):
            _acc.clear()
            start = time.perf_counter()
            result = await client.call_tool("remove_background", args)
            totals.append(time.perf_counter() - start)
            assert not result.is_error
            for stage in STAGES:
                stages[stage].append(_acc.get(stage, 0.0))
    return totals, stages


async def measure(calls: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-breakdown-"))
    fake = FakeAluo(credits=10**9)
    async with serve(fake.app) as served:
        api = FakeAluo.api_base(served)
        # stdio and the bare script first (before this process is instrumented), interleaved
        work, bare_out = tmp / "work", tmp / "bare"
        work.mkdir()
        bare_out.mkdir()
        src = work / "small.png"
        src.write_bytes(image_bytes(64, 48, "png"))
        params = stdio_params(tmp, ALUO_API_KEY=fake.api_key, ALUO_BASE_URL=api, PHOTO_MCP_BACKGROUND_PROVIDERS="aluo")
        stdio: list[float] = []
        bare: list[float] = []
        cpu = {"server": 0.0, "bare": 0.0}
        before = set(children())
        async with Client(params) as client:
            (pid,) = [p for p in children() if p not in before]
            for _ in range(2):
                await bench_overhead._ours(client, src)  # warm
                c0 = _cpu_seconds(pid)
                t, _ = await bench_overhead._ours_block(client, src, 0, calls // 2)
                cpu["server"] += _cpu_seconds(pid) - c0
                stdio += t
                cmd = [sys.executable, "-m", "tests.benchmarks.bench_overhead", "--bare-worker"]
                cmd += [json.dumps([api, fake.api_key, str(src), "image/png", str(bare_out), 3, calls // 2])]
                out = json.loads((await anyio.run_process(cmd, cwd=bench_overhead.ROOT)).stdout)
                bare += out["times"]
                cpu["bare"] += out["cpu"]
        _instrument()
        totals, stages = await in_process(calls, tmp, api, fake.api_key)
    n = 2 * (calls // 2)
    return {
        "stdio": stdio,
        "bare": bare,
        "in_process": totals,
        "stages": stages,
        "cpu_server": cpu["server"] / n,
        "cpu_bare": cpu["bare"] / n,
    }


def report(m: dict[str, Any], loads: tuple[str, str]) -> list[str]:
    med: Callable[[list[float]], float] = statistics.median
    total = med(m["in_process"])
    stdio, bare = med(m["stdio"]), med(m["bare"])
    out = [
        TITLE,
        "",
        "| stage (inside the server, in-process MCP) | median per call | share of the in-process call |",
        "|---|---|---|",
    ]
    known = 0.0
    for stage in STAGES:
        v = med(m["stages"][stage])
        known += v
        out.append(f"| {stage} | {v * 1000:.2f} ms | {v / total:.0%} |")
    out += [
        f"| rest: job runner, routing, progress, adapter, in-memory transport | {(total - known) * 1000:.2f} ms "
        f"| {(total - known) / total:.0%} |",
        f"| **whole call, in-process** | **{total * 1000:.2f} ms** | 100% |",
        f"| whole call over stdio (its own process) | {stdio * 1000:.2f} ms | |",
        f"| → stdio framing and the second process (stdio − in-process) | {(stdio - total) * 1000:+.2f} ms | |",
        f"| bare httpx2 script, same HTTP sequence (its own process) | {bare * 1000:.2f} ms | |",
        f"| **overhead over the bare script** | **{(stdio - bare) * 1000:+.2f} ms ({stdio / bare:.2f}×)** | |",
        f"| CPU time per call: photo-mcp's process over stdio | {m['cpu_server'] * 1000:.2f} ms | |",
        f"| CPU time per call: the bare script's process | {m['cpu_bare'] * 1000:.2f} ms | |",
        "",
        f"{len(m['in_process'])} in-process calls, {len(m['stdio'])} over stdio, {len(m['bare'])} bare; "
        "stages overlap where one awaits another (the provider HTTP includes the result download; "
        f"resolving includes one probe). Load average {loads[0]} before, {loads[1]} after.",
    ]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    args = parser.parse_args(argv)
    calls = 6 if args.quick else args.calls
    before = load()
    m = anyio.run(measure, calls)
    print("\n".join(report(m, (before, load()))), flush=True)


if __name__ == "__main__":
    sys.exit(main())
