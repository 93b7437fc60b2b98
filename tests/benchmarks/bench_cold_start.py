"""Cold start: spawn → initialize → tools/list over stdio, photo-mcp vs a bare MCPServer.

python -m tests.benchmarks.bench_cold_start [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from tests.support import server_env

BARE = Path(__file__).with_name("bare_server.py")


async def _once(params: StdioServerParameters) -> float:
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - start


async def measure(runs: int) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp())
    ours = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=server_env(tmp), cwd="/")
    bare = StdioServerParameters(command=sys.executable, args=[str(BARE)], env=server_env(tmp), cwd="/")
    times: dict[str, list[float]] = {"photo-mcp": [], "bare MCPServer": []}
    await _once(ours)  # warm the OS page cache for both
    await _once(bare)
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        times["photo-mcp"].append(await _once(ours))
        times["bare MCPServer"].append(await _once(bare))
    return times


def report(times: dict[str, list[float]]) -> list[str]:
    ours = statistics.median(times["photo-mcp"])
    bare = statistics.median(times["bare MCPServer"])
    return [
        "| cold start (spawn → initialize → tools/list) | median | runs |",
        "|---|---|---|",
        f"| photo-mcp | {ours * 1000:.0f} ms | {len(times['photo-mcp'])} |",
        f"| bare MCPServer, one tool | {bare * 1000:.0f} ms | {len(times['bare MCPServer'])} |",
        f"| ratio (target ≤ 1.15×) | {ours / bare:.2f}× | |",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    print("\n".join(report(anyio.run(measure, args.runs))))


if __name__ == "__main__":
    main()
