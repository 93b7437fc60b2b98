"""Per-call overhead of a local tool: `resize_image(max_side=1024)` on a 24 MP camera JPEG over
stdio, vs a bare Pillow script in its own process doing the same decode/resize/encode/write
(draft-mode decode at the size needed, LANCZOS to 1024 px, JPEG q90, one decode), and vs the
same script without draft mode (a full-size decode).

    python -m tests.benchmarks.bench_local_resize [--calls 10] [--quick]

Blocks of calls alternate between the sides; medians over all calls. photo-mcp's side is all a
user gets: the JSON-RPC round trip, the job, the fsync'd result and its index row, the preview.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from PIL import Image, ImageOps

from tests.benchmarks.bench_preprocess import photo_like_jpeg
from tests.benchmarks.procstats import load
from tests.support import stdio_params

ROOT = Path(__file__).resolve().parents[2]
TITLE = "### Local tool: resize_image of a 24 MP JPEG to 1024 px over stdio vs a bare Pillow script"
TARGET = 1.15


def bare(src: Path, out_dir: Path, side: int, draft: bool, warmup: int, calls: int) -> list[float]:
    """The baseline: what a careful hand-written Pillow script does for one resize (EXIF rotation
    applied after the resize, on the small image)."""
    times = []
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        with Image.open(src) as img:
            if draft:
                scale = side / max(img.size)
                img.draft("RGB", (int(img.size[0] * scale), int(img.size[1] * scale)))
            img = img.convert("RGB")
            scale = side / max(img.size)
            img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)), Image.Resampling.LANCZOS)
            img = ImageOps.exif_transpose(img)  # the camera's rotation, on the small image
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
        (out_dir / f"out-{i}.jpg").write_bytes(buf.getvalue())
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


async def _bare_block(src: Path, out_dir: Path, side: int, draft: bool, warmup: int, calls: int) -> list[float]:
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_local_resize", "--bare-worker"]
    cmd += [json.dumps([str(src), str(out_dir), side, draft, warmup, calls])]
    return json.loads((await anyio.run_process(cmd, cwd=ROOT)).stdout)


async def measure(calls: int, rounds: int, size: tuple[int, int], side: int) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-local-resize-"))
    work, out = tmp / "work", tmp / "bare"
    work.mkdir()
    out.mkdir()
    src = work / "camera.jpg"
    src.write_bytes(photo_like_jpeg(*size))
    times: dict[str, list[float]] = {"ours": [], "draft": [], "full": []}
    async with Client(stdio_params(tmp)) as client:
        args = {"image": str(src), "max_side": side, "output_format": "jpeg"}

        async def ours(n: int) -> list[float]:
            t = []
            for _ in range(n):
                t0 = time.perf_counter()
                result = await client.call_tool("resize_image", args)
                t.append(time.perf_counter() - t0)
                assert not result.is_error, result.content
            return t

        await ours(1)  # warm-up: imports, Pillow, the runtime
        for r in range(rounds):
            sides = ("ours", "draft", "full") if r % 2 == 0 else ("full", "draft", "ours")
            for name in sides:
                if name == "ours":
                    times[name] += await ours(calls)
                else:
                    times[name] += await _bare_block(src, out, side, name == "draft", 1, calls)
    times["src_mb"] = [src.stat().st_size / 2**20]
    return times


def report(t: dict[str, list[float]], size: tuple[int, int], side: int, loads: tuple[str, str]) -> list[str]:
    ours, draft, full = (statistics.median(t[k]) for k in ("ours", "draft", "full"))
    ratio = ours / draft
    return [
        TITLE,
        "",
        f"| resize a {size[0]}×{size[1]} JPEG ({t['src_mb'][0]:.1f} MB) to {side} px | median per call "
        "| vs bare (draft) |",
        "|---|---|---|",
        f"| photo-mcp `resize_image` over stdio | {ours * 1000:.0f} ms | **{ratio:.2f}×** "
        f"{'✓' if ratio <= TARGET else '✗'} (target ≤ {TARGET:.2f}×) |",
        f"| bare Pillow script, draft-mode decode (the baseline) | {draft * 1000:.0f} ms | 1.00× |",
        f"| bare Pillow script, full-size decode | {full * 1000:.0f} ms | {full / draft:.2f}× |",
        "",
        f"{len(t['ours'])} calls per side; load average {loads[0]} before, {loads[1]} after.",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="calls per block")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    parser.add_argument("--bare-worker", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        src, out, side, draft, warmup, calls = json.loads(args.bare_worker)
        print(json.dumps(bare(Path(src), Path(out), side, draft, warmup, calls)))
        return
    size, side = ((1500, 1000), 256) if args.quick else ((6000, 4000), 1024)
    calls, rounds = (2, 1) if args.quick else (args.calls, args.rounds)
    before = load()
    t = anyio.run(measure, calls, rounds, size, side)
    print("\n".join(report(t, size, side, (before, load()))), flush=True)


if __name__ == "__main__":
    main()
