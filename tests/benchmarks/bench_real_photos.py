"""Benchmark of the offline backend (tools.providers.local) on real photographs, with exact ground truth.

Not a test. Run:  python -m tests.benchmarks.bench_real_photos [--quick] [--skip-timing]
Needs the ``[local,bench]`` extras (scikit-image, matplotlib and imgaug's data files; nothing is downloaded).

Cut-out: real foregrounds — a motorcycle (scikit-image's Middlebury stereo pair: the mask comes from its
disparity map), a quokka (imgaug's photo with its annotated outline), a gift box (matplotlib's RGBA
sample), the scikit-image logo (RGBA) and a horse silhouette filled with a real cat-fur photo — each
with a softened edge (the true alpha), composited over real backgrounds (rocket launch, brick wall,
coffee table, grass, a light studio sweep). The composite ``F·α + B·(1-α)`` is exact, so every figure
is against ground truth:

* IoU of the matte at α >= 0.5, alpha MAE (×100) and MSE (×1000), boundary F (tolerance 0.8 % of the
  diagonal);
* edge contamination ("halo"): mean absolute colour error (0-255) of the cut-out composited on black
  and on white versus the true foreground composited the same way, in the band around the true edge;
* time per cut-out at 1024 and 4096 px (long side; real photos upscaled) and the peak RSS of a fresh
  process doing one 4096 px cut-out.

Enhancement: each real photo is shrunk ×2 (Lanczos, antialiased) and brought back ×2; PSNR and SSIM
against the original, for plain Lanczos and the local enhance variants.

Colour: each real photo gets casts in linear light (warm, blue, green, magenta, strong blue); the
angular error (degrees) between the true cast and each method's illuminant estimate (1/gains), wins
against gray-world, the shift applied to the unmodified (balanced) photos, and on the two portraits
(astronaut, Grace Hopper) with a blue cast the skin's hue error and chroma kept (skin pixels found on
the original by a YCrCb rule).

Methods are switched by keyword arguments of the public functions, so "before" and "after" are
measured side by side in one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.providers.local import edits, matting, whitebalance  # noqa: E402

# --- data: files shipped inside installed packages (located, not imported) ----------------------------


def _pkg_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed: pip install -e '.[local,bench]'")
    return Path(next(iter(spec.submodule_search_locations)))


def _skimage(name: str) -> Image.Image:
    return Image.open(_pkg_dir("skimage") / "data" / name)


def _mpl(name: str) -> Image.Image:
    return Image.open(_pkg_dir("matplotlib") / "mpl-data" / "sample_data" / name)


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def real_photos() -> dict[str, Image.Image]:
    """Real photographs (RGB) shipped by scikit-image, matplotlib and imgaug."""
    return {
        "astronaut": _skimage("astronaut.png").convert("RGB"),
        "coffee": _skimage("coffee.png").convert("RGB"),
        "chelsea": _skimage("chelsea.png").convert("RGB"),
        "rocket": _skimage("rocket.jpg").convert("RGB"),
        "motorcycle": _skimage("motorcycle_left.png").convert("RGB"),
        "grace_hopper": _mpl("grace_hopper.jpg").convert("RGB"),
        "hubble": _skimage("hubble_deep_field.jpg").convert("RGB"),
    } | ({"quokka": Image.open(_pkg_dir("imgaug") / "quokka.jpg").convert("RGB")} if _has("imgaug") else {})


def _has(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


PORTRAITS = ("astronaut", "grace_hopper")


def _soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return np.clip(cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigma), 0.0, 1.0)


def _motorcycle() -> tuple[np.ndarray, np.ndarray]:
    import cv2

    disp = np.load(_pkg_dir("skimage") / "data" / "motorcycle_disp.npz")["arr_0"]
    disp = np.where(np.isfinite(disp), disp, 0).astype(np.float32)
    rows = np.arange(disp.shape[0], dtype=np.float32)[:, None]
    floor = 22.9 + (rows - 300) * 0.18  # the floor's disparity grows linearly towards the camera
    mask = ((disp > floor + 3.5) & (disp > 38)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    mask = (labels == 1 + int(np.argmax(stats[1:, 4]))).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    return _rgb(_skimage("motorcycle_left.png")), _soften(mask, 1.0)


def _quokka() -> tuple[np.ndarray, np.ndarray]:
    base = _pkg_dir("imgaug")
    img = Image.open(base / "quokka.jpg").convert("RGB")
    poly = json.loads((base / "quokka_annotations.json").read_text())["polygons"][0]["keypoints"]
    big = Image.new("L", (img.width * 4, img.height * 4), 0)
    ImageDraw.Draw(big).polygon([(4 * p["x"], 4 * p["y"]) for p in poly], fill=255)
    alpha = np.asarray(big.resize(img.size, Image.Resampling.BOX), dtype=np.float32) / 255.0
    return _rgb(img), _soften(alpha, 2.0)  # fur: a wider soft edge


def _rgba(img: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray]:
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    premult = rgba[..., :3] * rgba[..., 3:]
    scale = size / max(img.size)
    wh = (round(img.width * scale), round(img.height * scale))
    import cv2

    a = cv2.resize(rgba[..., 3], wh, interpolation=cv2.INTER_CUBIC)
    p = cv2.resize(premult, wh, interpolation=cv2.INTER_CUBIC)
    a = np.clip(a, 0, 1)
    f = np.clip(p / np.maximum(a[..., None], 1e-3), 0, 1)
    return f, a


def _horse() -> tuple[np.ndarray, np.ndarray]:
    sil = np.asarray(_skimage("horse.png").convert("L"), dtype=np.float32) / 255.0
    alpha = 1.0 - sil
    h, w = alpha.shape
    fur = _skimage("chelsea.png").convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    return _rgb(fur), _soften(alpha, 1.0)


def foregrounds() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real foregrounds: name -> (F in [0,1] HxWx3, alpha in [0,1] HxW), cropped to the subject."""
    out = {
        "motorcycle": _motorcycle(),
        **({"quokka": _quokka()} if _has("imgaug") else {}),  # pip install --no-deps imgaug
        "gift": _rgba(_mpl("Minduka_Present_Blue_Pack.png"), 384),
        "logo": _rgba(_skimage("logo.png"), 500),
        "horse": _horse(),
    }
    cropped = {}
    for name, (f, a) in out.items():
        ys, xs = np.nonzero(a > 0.01)
        pad = 4
        y0, y1 = max(0, ys.min() - pad), min(a.shape[0], ys.max() + pad + 1)
        x0, x1 = max(0, xs.min() - pad), min(a.shape[1], xs.max() + pad + 1)
        cropped[name] = (f[y0:y1, x0:x1], a[y0:y1, x0:x1])
    return cropped


def _studio(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = np.array([0.95, 0.94, 0.92], np.float32) * (1 - t) + np.array([0.80, 0.79, 0.77], np.float32) * t
    bg = np.broadcast_to(bg, (h, w, 3)) + rng.normal(0, 0.006, (h, w, 1)).astype(np.float32)
    return np.clip(bg, 0, 1)


def backgrounds(w: int, h: int) -> dict[str, np.ndarray]:
    def fit(img: Image.Image, tint: tuple[float, float, float] = (1, 1, 1)) -> np.ndarray:
        rgb = img.convert("RGB")
        scale = max(w / rgb.width, h / rgb.height)
        rgb = rgb.resize((round(rgb.width * scale) + 1, round(rgb.height * scale) + 1), Image.Resampling.LANCZOS)
        x0, y0 = (rgb.width - w) // 2, (rgb.height - h) // 2
        arr = _rgb(rgb.crop((x0, y0, x0 + w, y0 + h)))
        return np.clip(arr * np.asarray(tint, np.float32), 0, 1)

    return {
        "rocket": fit(_skimage("rocket.jpg")),
        "brick": fit(_skimage("brick.png"), (1.05, 0.9, 0.75)),
        "coffee": fit(_skimage("coffee.png")),
        "grass": fit(_skimage("grass.png"), (0.75, 1.0, 0.6)),
        "studio": _studio(w, h),
    }


@dataclass
class Composite:
    name: str
    image: Image.Image
    fg: np.ndarray  # HxWx3 in [0,1]: the true foreground colour (defined everywhere)
    alpha: np.ndarray  # HxW in [0,1]


def composites(w: int = 768, h: int = 576) -> list[Composite]:
    import cv2

    out = []
    bgs = backgrounds(w, h)
    for fname, (f, a) in foregrounds().items():
        scale = min(0.72 * h / a.shape[0], 0.8 * w / a.shape[1])
        fw, fh = round(a.shape[1] * scale), round(a.shape[0] * scale)
        fs = np.clip(cv2.resize(f, (fw, fh), interpolation=cv2.INTER_AREA), 0, 1)
        as_ = np.clip(cv2.resize(a, (fw, fh), interpolation=cv2.INTER_AREA), 0, 1)
        x0, y0 = (w - fw) // 2, h - fh - int(0.06 * h)
        alpha = np.zeros((h, w), np.float32)
        fg = np.zeros((h, w, 3), np.float32)
        alpha[y0 : y0 + fh, x0 : x0 + fw] = as_
        fg[y0 : y0 + fh, x0 : x0 + fw] = fs
        for bname, bg in bgs.items():
            comp = fg * alpha[..., None] + bg * (1 - alpha[..., None])
            img = Image.fromarray(np.round(comp * 255).astype(np.uint8))
            out.append(Composite(f"{fname}/{bname}", img, fg, alpha))
    return out


# --- matting metrics ------------------------------------------------------------------------------


def _boundary(mask: np.ndarray) -> np.ndarray:
    import cv2

    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8))).astype(bool)


def boundary_f(pred: np.ndarray, truth: np.ndarray) -> float:
    import cv2

    tol = max(1, round(0.008 * float(np.hypot(*truth.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    bp, bt = _boundary(pred), _boundary(truth)
    if not bp.any() or not bt.any():
        return 0.0
    near_t = cv2.dilate(bt.astype(np.uint8), kernel).astype(bool)
    near_p = cv2.dilate(bp.astype(np.uint8), kernel).astype(bool)
    precision = float((bp & near_t).sum() / bp.sum())
    recall = float((bt & near_p).sum() / bt.sum())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def edge_band(alpha: np.ndarray) -> np.ndarray:
    import cv2

    soft = (alpha > 0.02) & (alpha < 0.98)
    r = max(2, round(max(alpha.shape) / 200))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate((soft | _boundary(alpha >= 0.5)).astype(np.uint8), kernel).astype(bool)


def matting_scores(cut: Image.Image, c: Composite) -> dict[str, float]:
    arr = np.asarray(cut, dtype=np.float32) / 255.0
    pa, pf = arr[..., 3], arr[..., :3]
    truth, pred = c.alpha >= 0.5, pa >= 0.5
    union = np.logical_or(truth, pred).sum()
    band = edge_band(c.alpha)
    scores = {
        "iou": float(np.logical_and(truth, pred).sum() / union) if union else 1.0,
        "mae": float(np.abs(pa - c.alpha).mean() * 100),
        "mse": float(((pa - c.alpha) ** 2).mean() * 1000),
        "bf": boundary_f(pred, truth),
    }
    for name, bg in (("black", 0.0), ("white", 1.0)):
        got = pf * pa[..., None] + bg * (1 - pa[..., None])
        want = c.fg * c.alpha[..., None] + bg * (1 - c.alpha[..., None])
        scores[name] = float(np.abs(got - want)[band].mean() * 255)
    inside = band & (c.alpha > 0.02)  # where the true foreground colour is defined
    scores["colour"] = float((pa[..., None] * np.abs(pf - c.fg))[inside].mean() * 255)
    return scores


# --- methods --------------------------------------------------------------------------------------

CUT_METHODS: dict[str, dict[str, bool]] = {
    "u2netp before (grey guided filter)": {"foreground": False, "cleanup": False, "colour_guide": False},
    "+ matte cleanup": {"foreground": False, "cleanup": True, "colour_guide": False},
    "+ colour guided filter": {"foreground": False, "cleanup": True, "colour_guide": True},
    "+ foreground colour (grey guide)": {"foreground": True, "cleanup": True, "colour_guide": False},
    "all: new default": {"foreground": True, "cleanup": True, "colour_guide": True},
}


def _fetched_model_methods() -> dict[str, dict[str, bool]]:
    """Rows for the stronger models already in the cache (`python -m tools.providers.local.models fetch`)."""
    from tools.providers.local import models

    return {
        f"{name} (all steps)": {"model": name}  # type: ignore[dict-item]
        for name, spec in models.MODELS.items()
        if not spec.shipped and models.verify(spec, models.model_path(spec))
    }


def _cut(img: Image.Image, opts: dict[str, bool]) -> Image.Image:
    from tools.providers.local import model, models

    opts = dict(opts)
    want = str(opts.pop("model", models.DEFAULT_MODEL))
    if models.chosen_name() != want:
        os.environ[models.ENV_MODEL] = want
        model.reset_session()
    return matting.cut_out(img, **opts)


def bench_matting(comps: list[Composite], methods: dict[str, dict[str, bool]]) -> list[str]:
    rows = []
    per_image: dict[str, list[float]] = {}
    for label, opts in methods.items():
        acc: dict[str, list[float]] = {}
        for c in comps:
            s = matting_scores(_cut(c.image, opts), c)
            for k, v in s.items():
                acc.setdefault(k, []).append(v)
            per_image.setdefault(c.name, []).append(s["iou"])
        m = {k: float(np.mean(v)) for k, v in acc.items()}
        md = {k: float(np.median(v)) for k, v in acc.items()}
        rows.append(
            f"| {label} | {m['iou']:.3f} (min {min(acc['iou']):.2f}) | {m['mae']:.2f} | {m['mse']:.1f} "
            f"| {m['bf']:.3f} | {m['black']:.1f} / {md['black']:.1f} | {m['white']:.1f} / {md['white']:.1f} "
            f"| {m['colour']:.1f} / {md['colour']:.1f} |"
        )
    head = [
        f"Cut-out on {len(comps)} real-foreground composites (768×576; "
        f"{len({c.name.split('/')[0] for c in comps})} foregrounds × {len({c.name.split('/')[1] for c in comps})}"
        " backgrounds). Halo = mean absolute colour error (0-255) in the edge band of the cut-out composited on"
        " black / on white against the truth composited the same way; edge colour = the cut-out's visible"
        " colour error (alpha × |F - F_true|) where the truth is semi-transparent or opaque. Means (mean / median"
        " in the last three columns):",
        "",
        "| method | IoU | alpha MAE ×100 | alpha MSE ×1000 | boundary F | halo on black | halo on white "
        "| edge colour error |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    detail = ["", "IoU per composite (" + ", ".join(methods) + "):", ""]
    detail += [f"- {name}: " + " / ".join(f"{v:.3f}" for v in vals) for name, vals in per_image.items()]
    return head + rows + detail


def _rss_child(opts: dict[str, bool], side: int) -> float:
    code = (
        "import json, resource, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from PIL import Image\n"
        "from tools.providers.local import matting\n"
        "from tests.benchmarks.bench_real_photos import real_photos\n"
        f"img = real_photos()['astronaut'].resize(({side}, {side * 3 // 4}), Image.Resampling.LANCZOS)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"matting.cut_out(img, **json.loads({json.dumps(json.dumps(opts))}))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def bench_timing(methods: dict[str, dict[str, bool]], quick: bool) -> list[str]:
    photo = real_photos()["astronaut"]
    rows = [
        "",
        "Cut-out time (real photo, 4:3, best of 3; 2 cores) and peak RSS of a fresh process doing one 4096 px cut-out:",
        "",
        "| method | 1024 px | 4096 px | peak RSS (4096 px) |",
        "| --- | --- | --- | --- |",
    ]
    matting.cut_out(photo)  # load the model once
    for label, opts in methods.items():
        times = []
        for side in (1024, 4096):
            img = photo.resize((side, side * 3 // 4), Image.Resampling.LANCZOS)
            best = float("inf")
            for _ in range(1 if quick or side > 2000 else 3):
                t0 = time.perf_counter()
                _cut(img, opts)
                best = min(best, time.perf_counter() - t0)
            times.append(best)
        rss = _rss_child(opts, 4096)
        rows.append(f"| {label} | {times[0]:.2f} s | {times[1]:.2f} s | {rss:.0f} MB |")
    return rows


# --- enhancement ----------------------------------------------------------------------------------


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


ENHANCE_METHODS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "Lanczos": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.LANCZOS),
    "bicubic": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
    "enhance before (denoise on, as the tool called it)": lambda im: edits.enhance(
        im, 2, denoise=True, method="unsharp"
    ),
    "enhance, denoise off, unsharp": lambda im: edits.enhance(im, 2, denoise=False, method="unsharp"),
    "enhance new default (denoise off)": lambda im: edits.enhance(im, 2),
}


def bench_enhance(photos: dict[str, Image.Image]) -> list[str]:
    shrinks = {"Lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
    rows = [
        "",
        f"Enhancement ×2 on {len(photos)} real photos shrunk ×2 (Lanczos, as enhance assumes; box, a mismatched"
        " camera-like kernel) and brought back ×2, against the originals (means):",
        "",
        "| method | PSNR dB (Lanczos-shrunk) | SSIM | PSNR dB (box-shrunk) | SSIM | time per output MP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, fn in ENHANCE_METHODS.items():
        cells, ts = [], []
        for kernel in shrinks.values():
            ps, ss = [], []
            for photo in photos.values():
                w, h = photo.width // 2 * 2, photo.height // 2 * 2
                ref = photo.crop((0, 0, w, h))
                small = ref.resize((w // 2, h // 2), kernel)
                t0 = time.perf_counter()
                up = fn(small).convert("RGB")
                ts.append((time.perf_counter() - t0) / (w * h / 1e6))
                a, b = np.asarray(ref), np.asarray(up)
                ps.append(_psnr(a, b))
                ss.append(_ssim(a, b))
            cells.append(f"{np.mean(ps):.2f} | {np.mean(ss):.4f}")
        rows.append(f"| {label} | {' | '.join(cells)} | {np.median(ts) * 1000:.0f} ms |")
    return rows


# --- colour ---------------------------------------------------------------------------------------

CASTS = {
    "warm": (1.35, 1.0, 0.65),
    "blue": (0.75, 1.0, 1.35),
    "green": (0.85, 1.2, 0.85),
    "magenta": (1.2, 0.8, 1.15),
    "strong blue": (0.6, 1.0, 1.6),
}


def _lin(a: np.ndarray) -> np.ndarray:
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def _srgb(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, 1)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)


def apply_cast(img: Image.Image, cast: tuple[float, float, float]) -> Image.Image:
    lin = _lin(np.asarray(img, dtype=np.float64) / 255.0) * np.asarray(cast)
    return Image.fromarray(np.round(_srgb(lin) * 255).astype(np.uint8))


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def _effective_gains(src: Image.Image, out: Image.Image) -> np.ndarray:
    """Per-channel linear gains a correction applied (median ratio over mid-tone pixels)."""
    a = _lin(np.asarray(src, dtype=np.float64) / 255.0).reshape(-1, 3)
    b = _lin(np.asarray(out.convert("RGB"), dtype=np.float64) / 255.0).reshape(-1, 3)
    ok = (a.min(axis=1) > 0.02) & (a.max(axis=1) < 0.9) & (b.max(axis=1) < 0.99)
    return np.median(b[ok] / a[ok], axis=0)


def gray_world(img: Image.Image) -> Image.Image:
    lin = _lin(np.asarray(img, dtype=np.float64) / 255.0)
    mean = lin.reshape(-1, 3).mean(axis=0)
    return Image.fromarray(np.round(_srgb(lin * (mean.mean() / mean)) * 255).astype(np.uint8))


COLOUR_METHODS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "gray-world": gray_world,
    "correct_colors before": lambda im: whitebalance._correct_colors(
        im, protect_skin=False, min_cast_degrees=0.0, damp_uncertain=False
    ),
    "+ skin protection": lambda im: whitebalance._correct_colors(
        im, protect_skin=True, min_cast_degrees=0.0, damp_uncertain=False
    ),
    "+ confidence damping": lambda im: whitebalance._correct_colors(
        im, protect_skin=True, min_cast_degrees=0.0, damp_uncertain=True
    ),
    "correct_colors new default (+ no-op below 3°)": lambda im: edits.correct_colors(im),
}


def _skin_mask(img: Image.Image) -> np.ndarray:
    ycc = np.asarray(img.convert("YCbCr"), dtype=np.float32)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    return (y > 70) & (cr > 138) & (cr < 175) & (cb > 85) & (cb < 125)


def _hue_chroma(rgb: np.ndarray) -> tuple[float, float]:
    """Mean skin colour's hue (degrees) and chroma in a simple opponent space of sRGB."""
    m = rgb.reshape(-1, 3).mean(axis=0)
    o1, o2 = (m[0] - m[1]) / np.sqrt(2), (m[0] + m[1] - 2 * m[2]) / np.sqrt(6)
    return float(np.degrees(np.arctan2(o2, o1))), float(np.hypot(o1, o2))


def bench_colour(photos: dict[str, Image.Image]) -> list[str]:
    rows = [
        "",
        f"Colour on {len(photos)} real photos × {len(CASTS)} casts (linear light); angular error of the applied "
        "correction against the true cast, degrees; shift = correction applied to the unmodified photos;"
        " skin on the two portraits under the blue casts (hue error, chroma kept):",
        "",
        "| method | mean error | median | worst | beats gray-world | shift on balanced (mean / max) "
        "| skin hue error | skin chroma kept |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    errors: dict[str, list[float]] = {}
    for label, fn in COLOUR_METHODS.items():
        errs, shifts, hue_err, chroma = [], [], [], []
        for name, photo in photos.items():
            shifts.append(_angle(_effective_gains(photo, fn(photo)), np.ones(3)))
            for cast_name, cast in CASTS.items():
                casted = apply_cast(photo, cast)
                out = fn(casted)
                total = _effective_gains(photo, out)  # cast then correction, relative to the original
                errs.append(_angle(total, np.ones(3)))
                if name in PORTRAITS and "blue" in cast_name:
                    skin = _skin_mask(photo)
                    h0, c0 = _hue_chroma(np.asarray(photo, np.float32)[skin])
                    h1, c1 = _hue_chroma(np.asarray(out.convert("RGB"), np.float32)[skin])
                    hue_err.append(abs((h1 - h0 + 180) % 360 - 180))
                    chroma.append(c1 / max(c0, 1e-6))
        errors[label] = errs
        wins = "—"
        if label != "gray-world":
            gw = errors["gray-world"]
            wins = f"{sum(e < g for e, g in zip(errs, gw, strict=True))}/{len(errs)}"
        rows.append(
            f"| {label} | {np.mean(errs):.2f}° | {np.median(errs):.2f}° | {max(errs):.1f}° | {wins} "
            f"| {np.mean(shifts):.2f}° / {max(shifts):.1f}° | {np.mean(hue_err):.1f}° | {np.mean(chroma):.0%} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer composites, one timing round")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--only", choices=("matting", "enhance", "colour"), action="append")
    args = parser.parse_args(argv)
    only = set(args.only or ("matting", "enhance", "colour"))
    from tests.benchmarks.procstats import load, machine

    out: list[str] = [f"# Offline backend on real photos ({machine()}; load average {load()})", ""]
    photos = real_photos()
    if "matting" in only:
        comps = composites()
        if args.quick:
            comps = comps[::4]
        out += bench_matting(comps, CUT_METHODS | _fetched_model_methods())
        if not args.skip_timing:
            out += bench_timing(CUT_METHODS, args.quick)
    if "enhance" in only:
        out += bench_enhance(photos)
    if "colour" in only:
        out += bench_colour(photos)
    out += ["", f"load average at the end: {load()}"]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
