"""Run every benchmark and print every table (markdown), side by side in one run.

    python -m tests.benchmarks            # full size (several minutes)
    python -m tests.benchmarks --quick    # tiny counts: the CI smoke run (well under a minute)
    python -m tests.benchmarks --only overhead,youcam

Each benchmark runs in its own process (peak-RSS figures and the per-process YouCam limiter must
not mix), from the repository root. The exit status is non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.procstats import load, machine

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Bench:
    name: str
    title: str  # printed by the runner; "" when the script prints its own
    full: tuple[str, ...]
    quick: tuple[str, ...]
    module: str = ""  # run as `python -m <module>`
    script: str = ""  # or as `python <script>`
    needs: tuple[str, ...] = ()  # importable modules it needs, else skipped
    fence: bool = False  # plain-text output: wrap it in a code block


COLD_START = "### Cold start: spawn → initialize → tools/list over stdio, photo-mcp vs a bare MCPServer"
PREPROCESS = "### Preprocessing: a 24 MP EXIF-rotated JPEG fitted to a provider's limits, vs naive Pillow"
LOCAL_AI = "### Offline AI: local cut-out quality and speed (the [local] extra)"

BENCHES = (
    Bench("cold-start", COLD_START, ("--runs", "10"), ("--runs", "1"), module="tests.benchmarks.bench_cold_start"),
    Bench("preprocess", PREPROCESS, (), ("--quick",), module="tests.benchmarks.bench_preprocess"),
    Bench("overhead", "", (), ("--quick",), module="tests.benchmarks.bench_overhead"),
    Bench("breakdown", "", (), ("--quick",), module="tests.benchmarks.bench_breakdown"),
    Bench("local-resize", "", (), ("--quick",), module="tests.benchmarks.bench_local_resize"),
    Bench("youcam", "", (), ("--quick",), module="tests.benchmarks.bench_youcam"),
    Bench("load", "", (), ("--quick",), module="tests.benchmarks.bench_load"),
    # Memory runs after the load: its 20 concurrent 24 MP decodes leave the machine busy for a while.
    Bench("memory", "", (), ("--quick",), module="tests.benchmarks.bench_memory"),
    Bench("soak", "", (), ("--quick",), module="tests.benchmarks.bench_soak"),
    Bench(
        "local",
        LOCAL_AI,
        (),
        ("--quick",),
        script="tests/benchmarks/bench_local.py",
        needs=("numpy", "onnxruntime", "cv2"),
        fence=True,
    ),
)


def _env() -> dict[str, str]:
    # Benchmarks configure the server themselves: nothing leaks in from the caller's settings.
    return {k: v for k, v in os.environ.items() if not k.startswith(("PHOTO_MCP_", "ALUO_", "YOUCAM_", "REMOVEDO_"))}


def run_one(bench: Bench, quick: bool) -> bool:
    if bench.title:
        print(bench.title + "\n", flush=True)
    missing = [m for m in bench.needs if importlib.util.find_spec(m) is None]
    if missing:
        print(f"skipped: needs {', '.join(missing)} (pip install -e '.[local]')\n", flush=True)
        return True
    target = ["-m", bench.module] if bench.module else [bench.script]
    cmd = [sys.executable, *target, *(bench.quick if quick else bench.full)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True)
    out = proc.stdout.rstrip()
    print(f"```text\n{out}\n```" if bench.fence else out)
    ok = proc.returncode == 0
    if not ok:
        print(f"\n**{bench.name} FAILED** (exit {proc.returncode}):\n```text\n{proc.stderr[-3000:]}\n```")
    command = " ".join(["python", *target, *(bench.quick if quick else bench.full)])
    print(f"\n_`{command}` — {time.monotonic() - start:.0f} s_\n", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(b.name for b in BENCHES)}")
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    print(f"## photo-mcp benchmarks{' (quick smoke run)' if args.quick else ''}\n")
    print(f"Machine: {machine()}. Load average at start: {load()}.\n", flush=True)
    start = time.monotonic()
    failed = [b.name for b in chosen if not run_one(b, args.quick)]
    print(f"All benchmarks: {time.monotonic() - start:.0f} s; load average at end: {load()}.")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
