"""The benchmarks' CI smoke run: `python -m tests.benchmarks --quick` (tiny counts) exits 0 and
prints every table, so the benchmark scripts never rot. No timing is asserted here: the numbers
are for the README, from a full run (`python -m tests.benchmarks`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.benchmarks import (
    bench_breakdown,
    bench_load,
    bench_local_resize,
    bench_memory,
    bench_overhead,
    bench_youcam,
)
from tests.benchmarks.__main__ import BENCHES

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_runs_in_quick_mode_and_prints_its_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{out[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    headers = [b.title for b in BENCHES if b.title] + [
        bench_overhead.TITLE,
        bench_breakdown.TITLE,
        bench_local_resize.TITLE,
        bench_youcam.TITLE,
        bench_memory.TITLE,
        bench_load.TITLE_LOAD,
        bench_load.TITLE_SOAK,
    ]
    for header in headers:
        assert header in out, f"missing {header!r} in:\n{out[-4000:]}"
    # Each table got at least one data row.
    for row in (
        "| photo-mcp |",  # cold start
        "| long side ",  # preprocessing
        "| 64×48 PNG |",  # per-call overhead
        "| **whole call, in-process** |",  # the breakdown
        "| photo-mcp `resize_image` over stdio |",  # the local tool
        "| **ratio (target ≤ 1.2×)** |",  # load vs one at a time
        "| 1 | photo-mcp | 1/1 | 0 | 0 |",  # YouCam: one job, no 429, nothing lost
        "| noise PNG",  # memory
        "| **all** |",  # load
        "| **growth** |",  # soak
    ):
        assert row in out, f"missing {row!r} in:\n{out[-4000:]}"
    assert "FAILED" not in out
