"""Benchmark of the offline cut-out (tools.providers.local) on synthetic product scenes with known masks.

Not a test. Run:  python tests/benchmarks/bench_local.py [--quick]

Scenes: products (ellipse / rounded box / bottle) in several colours, near-white included, on light
gradients and textured backgrounds, with a soft contact shadow (part of the background) and sensor
noise. Prints IoU mean/min against the true mask and seconds per image at each size, the encoded
cut-out size, and the peak RSS. Targets on 2 cores: mean IoU >= 0.98, <= 0.5 s at 1024 px,
<= 2 s at 4096 px. ``--quick`` (CI smoke mode) runs a few small images in a few seconds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.providers.local import matting, model

COLOURS = {
    "red": (200, 35, 40),
    "blue": (30, 70, 190),
    "green": (40, 150, 70),
    "black": (28, 28, 32),
    "yellow": (235, 200, 40),
    "near-white": (246, 245, 240),
}
SHAPES = ("ellipse", "box", "bottle")
BACKGROUNDS = ("gradient", "texture")


def _background(w: int, h: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Light gradient (optionally with a low-contrast texture), HxWx3 float32 in 0..255."""
    top = rng.uniform(205, 235, 3).astype(np.float32)
    bottom = top - rng.uniform(15, 40)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    bg = top * (1 - t) + bottom * t
    bg = np.broadcast_to(bg, (h, w, 3)).copy()
    if kind == "texture":
        blotch = Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        bg += (np.asarray(blotch, dtype=np.float32)[..., None] - 128.0) * 0.12
        period = max(3.0, w / 160)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        weave = np.sin(xx * (2 * np.pi / period)) * np.sin(yy * (2 * np.pi / period))
        bg += (weave * 6.0)[..., None]
    return bg


def _product_mask(w: int, h: int, shape: str, rng: np.random.Generator) -> tuple[Image.Image, tuple]:
    """Anti-aliased product mask ("L") and its bounding box."""
    pw = int(w * rng.uniform(0.28, 0.45))
    ph = int(h * rng.uniform(0.4, 0.6))
    cx = w // 2 + int(w * rng.uniform(-0.08, 0.08))
    cy = h // 2 + int(h * rng.uniform(-0.06, 0.04))
    box = (cx - pw // 2, cy - ph // 2, cx + pw // 2, cy + ph // 2)
    ss = 2 if max(w, h) <= 2048 else 1
    mask = Image.new("L", (w * ss, h * ss), 0)
    draw = ImageDraw.Draw(mask)
    sb = tuple(v * ss for v in box)
    if shape == "ellipse":
        draw.ellipse(sb, fill=255)
    elif shape == "box":
        draw.rounded_rectangle(sb, radius=pw * ss // 8, fill=255)
    else:
        x0, y0, x1, y1 = sb
        neck = (x1 - x0) // 3
        shoulder = y0 + (y1 - y0) // 3
        draw.rounded_rectangle((x0, shoulder, x1, y1), radius=(x1 - x0) // 6, fill=255)
        draw.rectangle((x0 + neck, y0, x1 - neck, shoulder + 2 * ss), fill=255)
        draw.polygon(
            [
                (x0, shoulder + (x1 - x0) // 6),
                (x0 + neck, y0 + (y1 - y0) // 6),
                (x1 - neck, y0 + (y1 - y0) // 6),
                (x1, shoulder + (x1 - x0) // 6),
            ],
            fill=255,
        )
    # Anti-aliasing: 2x supersampling when affordable, else a sub-pixel blur.
    smooth = mask.resize((w, h), Image.Resampling.BOX) if ss > 1 else mask.filter(ImageFilter.GaussianBlur(0.7))
    return smooth, box


def make_scene(size: int, colour: str, background: str, shape: str, seed: int) -> tuple[Image.Image, np.ndarray]:
    """A synthetic product photo (RGB, size × 3/4·size) and its true foreground mask (bool)."""
    rng = np.random.default_rng(seed)
    w, h = size, size * 3 // 4
    bg = _background(w, h, background, rng)
    mask_img, (x0, y0, x1, y1) = _product_mask(w, h, shape, rng)
    shadow = Image.new("L", (w, h), 0)
    sw, sh = (x1 - x0) * 0.65, max(4, (y1 - y0) * 0.06)
    ImageDraw.Draw(shadow).ellipse((x0 + (x1 - x0) * 0.1, y1 - sh, x0 + (x1 - x0) * 0.1 + sw * 1.2, y1 + sh), fill=255)
    shadow = shadow.filter(ImageFilter.GaussianBlur(max(2, size / 60)))
    bg *= 1.0 - 0.4 * np.asarray(shadow, dtype=np.float32)[..., None] / 255.0
    alpha = np.asarray(mask_img, dtype=np.float32)[..., None] / 255.0
    # Product: base colour with left-to-right shading and a soft highlight stripe.
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)
    rel = np.clip((xs - x0 / w) / max((x1 - x0) / w, 1e-3), 0, 1)
    shade = 1.06 - 0.22 * rel + 0.1 * np.exp(-(((rel - 0.3) / 0.06) ** 2))
    prod = np.asarray(COLOURS[colour], dtype=np.float32)[None, None, :] * shade[None, :, None]
    img = bg * (1 - alpha) + prod * alpha
    img += rng.normal(0.0, 2.0, img.shape[:2]).astype(np.float32)[..., None]
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return out, np.asarray(mask_img) >= 128


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    inter = np.logical_and(pred, truth).sum()
    union = np.logical_or(pred, truth).sum()
    return float(inter / union) if union else 1.0


def scenes(count: int, size: int):
    colours = list(COLOURS)
    for i in range(count):  # every colour in each run of 6; backgrounds and shapes rotate across runs
        colour = colours[i % len(colours)]
        bg = BACKGROUNDS[(i + i // 6) % len(BACKGROUNDS)]
        shape = SHAPES[(i + i // 12) % len(SHAPES)]
        yield f"{colour}/{bg}/{shape}", *make_scene(size, colour, bg, shape, seed=1000 + i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts and sizes (CI smoke mode)")
    parser.add_argument("--verbose", action="store_true", help="one line per image")
    args = parser.parse_args()
    plan = [(256, 6), (512, 2)] if args.quick else [(1024, 36), (4096, 6)]
    t0 = time.perf_counter()
    model.get_session()  # load once; not part of the per-image time
    print(f"model load + verify {time.perf_counter() - t0:.2f} s; load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'size':>11} {'n':>3} {'IoU mean':>9} {'IoU min':>8} {'raw min':>8} {'s mean':>7} {'s med':>6} "
        f"{'s max':>6} {'model':>6} {'enc s':>6} {'enc MB':>7} enc"
    )
    for size, count in plan:
        ious, raws, secs, model_secs, enc_secs, enc_sizes, mimes = [], [], [], [], [], [], set()
        for name, img, truth in scenes(count, size):
            t0 = time.perf_counter()
            out = matting.cut_out(img)
            secs.append(time.perf_counter() - t0)
            ious.append(iou(np.asarray(out.getchannel("A")) >= 128, truth))
            t0 = time.perf_counter()
            raw = model.predict_mask(img)
            model_secs.append(time.perf_counter() - t0)
            raws.append(iou(np.asarray(raw) >= 128, truth))
            t0 = time.perf_counter()
            data, mime = matting.encode_cutout(out)
            enc_secs.append(time.perf_counter() - t0)
            enc_sizes.append(len(data) / 1e6)
            mimes.add(mime.split("/")[1])
            if args.verbose:
                print(f"  {name:28} IoU {ious[-1]:.4f} raw {raws[-1]:.4f} {secs[-1]:.3f}s")
        label = f"{size}x{size * 3 // 4}"
        print(
            f"{label:>11} {count:>3} {np.mean(ious):>9.4f} {min(ious):>8.4f} {min(raws):>8.4f} "
            f"{np.mean(secs):>7.3f} {np.median(secs):>6.3f} {max(secs):>6.3f} {np.median(model_secs):>6.3f} "
            f"{np.mean(enc_secs):>6.3f} {max(enc_sizes):>7.2f} {','.join(sorted(mimes))}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB; load average {os.getloadavg()[0]:.2f}")
    print("IoU: cut-out alpha >= 128 vs true mask; raw: u2netp mask alone (no guided filter);")
    print("s: cut_out seconds per image; model: predict_mask median; enc: encode_cutout seconds / largest MB")


if __name__ == "__main__":
    main()
