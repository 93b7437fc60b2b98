"""Cold start: spawn → initialize → tools/list over stdio, photo-mcp vs a bare MCPServer with
the same number of tools (tests/benchmarks/bare_server.py: tools shaped like ours, with input
and output schemas).

python -m tests.benchmarks.bench_cold_start [--runs 10]

Two measures per side, runs interleaved: the wall time the client waits (what a user feels; on a
shared machine it moves with the load), and the CPU time the server process has used by the time
tools/list is answered (user + system, read from /proc before it exits: much steadier under load,
since waiting for a core is not counted).

Both sides run with compiled bytecode, as an installed server does (pip compiles at install;
otherwise Python writes `__pycache__` on the first start): a sandbox that sets
PYTHONDONTWRITEBYTECODE would make every photo-mcp start compile its ~65 modules again (~60 ms)
while the bare server's dependencies come precompiled. The cache goes to a temp dir
(PYTHONPYCACHEPREFIX) and is written by the warm-up run of each side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from tests.benchmarks.procstats import children, load
from tests.support import server_env

BARE = Path(__file__).with_name("bare_server.py")
TARGET = 1.10
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


async def _once(params: StdioServerParameters) -> tuple[float, float, int]:
    """(wall seconds, server CPU seconds, tool count)."""
    before = set(children())
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        tools = await client.list_tools()
        wall = time.perf_counter() - start
        new = [p for p in children() if p not in before]
        cpu = _cpu_seconds(new[0]) if len(new) == 1 else float("nan")
        return wall, cpu, len(tools.tools)


async def measure(runs: int) -> dict[str, dict[str, list[float]]]:
    tmp = Path(tempfile.mkdtemp())
    env = {k: v for k, v in server_env(tmp).items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    ours = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd="/")
    _, _, n_tools = await _once(ours)  # also warms the OS page cache and writes the bytecode
    bare = StdioServerParameters(command=sys.executable, args=[str(BARE), str(n_tools)], env=env, cwd="/")
    _, _, n_bare = await _once(bare)
    assert n_bare == n_tools, (n_bare, n_tools)
    times: dict[str, dict[str, list[float]]] = {
        "photo-mcp": {"wall": [], "cpu": []},
        "bare": {"wall": [], "cpu": []},
    }
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        for name, params in (("photo-mcp", ours), ("bare", bare)):
            wall, cpu, _ = await _once(params)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    times["photo-mcp"]["tools"] = [n_tools]
    return times


def report(times: dict[str, dict[str, list[float]]], loads: tuple[str, str]) -> list[str]:
    n = int(times["photo-mcp"]["tools"][0])
    med = {k: {m: statistics.median(v[m]) for m in ("wall", "cpu")} for k, v in times.items()}
    runs = len(times["photo-mcp"]["wall"])
    wall_ratio = med["photo-mcp"]["wall"] / med["bare"]["wall"]
    cpu_ratio = med["photo-mcp"]["cpu"] / med["bare"]["cpu"]
    ok = "✓" if wall_ratio <= TARGET else "✗"
    return [
        "| cold start (spawn → initialize → tools/list) | wall, median | server CPU time, median | runs |",
        "|---|---|---|---|",
        f"| photo-mcp | {med['photo-mcp']['wall'] * 1000:.0f} ms | {med['photo-mcp']['cpu'] * 1000:.0f} ms | {runs} |",
        f"| bare MCPServer, {n} tools shaped like ours | {med['bare']['wall'] * 1000:.0f} ms "
        f"| {med['bare']['cpu'] * 1000:.0f} ms | {runs} |",
        f"| ratio (target ≤ {TARGET:.2f}×) | **{wall_ratio:.2f}×** {ok} | {cpu_ratio:.2f}× | |",
        "",
        f"Load average {loads[0]} before, {loads[1]} after.",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    before = load()
    times = anyio.run(measure, args.runs)
    print("\n".join(report(times, (before, load()))))


if __name__ == "__main__":
    main()
