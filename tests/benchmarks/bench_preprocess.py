"""Preprocessing: a 24 MP EXIF-rotated JPEG fitted to a provider's limits (long side 1024 / 4096,
under 10 MB), photo-mcp's `fit` vs a naive full decode + LANCZOS + save.

    python -m tests.benchmarks.bench_preprocess [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time

from PIL import Image, ImageFilter, ImageOps

from tools.core import fitting

TEN_MB = 10 * 2**20


def photo_like_jpeg(width: int, height: int) -> bytes:
    """A camera-like JPEG (texture + gradient, EXIF orientation 6), ~q90."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width // 4, height // 4), 60).resize((width, height)).convert("RGB")
    img = Image.blend(base, noise, 0.35).filter(ImageFilter.SMOOTH)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def naive(data: bytes, side: int) -> bytes:
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    scale = side / max(img.size)
    img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def ours(data: bytes, side: int) -> bytes:
    return fitting.fit(data, fitting.FitLimits(max_side=side, max_bytes=TEN_MB, formats=("jpeg",)), 10**9).data


def _time(fn, data: bytes, side: int, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn(data, side)
        samples.append(time.perf_counter() - start)
    with Image.open(io.BytesIO(out)) as img:
        assert max(img.size) == side and img.size[1] > img.size[0], img.size  # rotated portrait
    assert len(out) <= TEN_MB
    return statistics.median(samples)


def run(runs: int, quick: bool) -> list[str]:
    w, h = (1500, 1000) if quick else (6000, 4000)
    data = photo_like_jpeg(w, h)
    sides = (256, 1000) if quick else (1024, 4096)
    targets = {1024: "≤ 120 ms", 4096: "≤ 700 ms"}
    rows = [
        f"| fit a {w}×{h} EXIF-rotated JPEG ({len(data) / 2**20:.1f} MB) | photo-mcp `fit` | naive | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for side in sides:
        t_ours = _time(ours, data, side, runs)
        t_naive = _time(naive, data, side, runs)
        rows.append(
            f"| long side {side} | {t_ours * 1000:.0f} ms | {t_naive * 1000:.0f} ms | "
            f"{t_ours / t_naive:.2f}× | {targets.get(side, '')} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(f"| peak RSS of this process | {peak:.0f} MB | | | |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI smoke runs")
    args = parser.parse_args(argv)
    print("\n".join(run(1 if args.quick else args.runs, args.quick)))


if __name__ == "__main__":
    main()
