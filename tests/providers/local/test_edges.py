"""Edge quality of the offline cut-out: foreground colour at semi-transparent pixels, matte cleanup.

Pixel assertions on generated images (Pillow/numpy only); no timing.
"""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime")

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tools.providers.local import edits, matting

W, H = 384, 288


def _soft_disc(sigma: float = 2.5) -> np.ndarray:
    """A product-like silhouette (rounded box + ellipse) with a soft edge, alpha in [0, 1]."""
    big = Image.new("L", (W * 4, H * 4), 0)
    draw = ImageDraw.Draw(big)
    draw.rounded_rectangle((4 * 130, 4 * 70, 4 * 254, 4 * 250), radius=4 * 30, fill=255)
    draw.ellipse((4 * 150, 4 * 30, 4 * 234, 4 * 110), fill=255)
    small = big.resize((W, H), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(small, dtype=np.float32) / 255.0


def _textured(base: tuple[int, int, int], seed: int, amount: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blotch = Image.fromarray(rng.integers(0, 256, (10, 12), dtype=np.uint8)).resize((W, H), Image.Resampling.BICUBIC)
    tex = (np.asarray(blotch, dtype=np.float32)[..., None] - 128.0) * amount
    return np.clip(np.asarray(base, np.float32) + tex + rng.normal(0, 2.0, (H, W, 1)), 0, 255) / 255.0


def _composite() -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """A dark textured subject with a soft edge on a bright textured backdrop: (image, true F, true alpha)."""
    alpha = _soft_disc()
    fg = _textured((45, 50, 70), 1, 0.25)
    bg = _textured((236, 232, 222), 2, 0.08)
    comp = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    return Image.fromarray(np.round(comp * 255).astype(np.uint8)), fg, alpha


def _band(alpha: np.ndarray) -> np.ndarray:
    return (alpha > 0.05) & (alpha < 0.95)


def test_estimate_foreground_recovers_the_subject_colour_with_a_true_alpha() -> None:
    img, fg, alpha = _composite()
    rgb = np.asarray(img)
    colour, new_alpha = matting.estimate_foreground(rgb, alpha, colour_alpha=0.0)
    band = _band(alpha)
    a = alpha[..., None]
    before = (a * np.abs(rgb / 255.0 - fg))[band].mean() * 255  # visible colour error
    after = (a * np.abs(colour / 255.0 - fg))[band].mean() * 255
    assert before > 25  # the raw pixels carry the bright backdrop
    assert after < 6 and after < 0.2 * before
    assert np.array_equal(new_alpha, alpha)
    opaque = alpha >= 254.5 / 255
    assert np.array_equal(colour[opaque], rgb[opaque])


def _halo_on_black(cut: Image.Image, fg: np.ndarray, alpha: np.ndarray) -> float:
    arr = np.asarray(cut, dtype=np.float32) / 255.0
    pa, pf = arr[..., 3:], arr[..., :3]
    band = np.asarray(Image.fromarray(_band(alpha).astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))) > 0
    return float(np.abs(pf * pa - fg * alpha[..., None])[band].mean() * 255)


def test_cut_out_shows_no_light_halo_on_black() -> None:
    img, fg, alpha = _composite()
    old = matting.cut_out(img, foreground=False, cleanup=False, colour_guide=False)
    new = matting.cut_out(img)
    truth = alpha >= 0.5
    for cut in (old, new):
        pred = np.asarray(cut.getchannel("A")) >= 128
        assert (pred & truth).sum() / (pred | truth).sum() > 0.95
    halo_old, halo_new = _halo_on_black(old, fg, alpha), _halo_on_black(new, fg, alpha)
    assert halo_new < 0.75 * halo_old
    assert halo_new < 16
    # Where the cut-out is semi-transparent, its colour is the dark subject's, not the bright backdrop's.
    arr = np.asarray(new).astype(np.float32)
    rim = (arr[..., 3] > 20) & (arr[..., 3] < 200)
    assert rim.sum() > 200
    assert arr[..., :3][rim].mean() < 110
    old_arr = np.asarray(old).astype(np.float32)
    old_rim = (old_arr[..., 3] > 20) & (old_arr[..., 3] < 200)
    assert old_arr[..., :3][old_rim].mean() > 120


def test_blur_background_edge_has_no_sharp_backdrop_left() -> None:
    img, _, alpha = _composite()
    out = edits.blur_background(img, strength=0.8)
    assert out.size == img.size and out.mode == "RGB"
    core = alpha > 0.999
    core = np.asarray(Image.fromarray(core.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(9))) > 0
    src, res = np.asarray(img).astype(int), np.asarray(out).astype(int)
    assert np.abs(res[core] - src[core]).mean() < 1.5


def test_clean_matte_drops_ghosts_and_specks_keeps_the_subject_and_its_rim() -> None:
    a = np.zeros((320, 320), np.float32)
    yy, xx = np.mgrid[0:320, 0:320].astype(np.float32)
    subject = np.hypot(yy - 170, xx - 140) < 70
    a[subject] = 1.0
    rim = (np.hypot(yy - 170, xx - 140) >= 70) & (np.hypot(yy - 170, xx - 140) < 76)
    a[rim] = 0.3  # soft edge touching the subject: kept
    ghost = np.hypot(yy - 40, xx - 270) < 30
    a[ghost] = 0.35  # half-transparent, disconnected: removed
    speck = (np.abs(yy - 290) < 6) & (np.abs(xx - 290) < 6)
    a[speck] = 0.95  # small confident blob far away: removed
    second = np.hypot(yy - 60, xx - 60) < 35
    a[second] = 0.97  # a second, large confident subject: kept
    out = matting.clean_matte(a)
    assert out.dtype == np.float32 and out.shape == a.shape
    assert np.array_equal(out[subject | rim | second], a[subject | rim | second])
    assert not out[ghost].any() and not out[speck].any()
    assert np.array_equal(matting.clean_matte(np.zeros((8, 8), np.float32)), np.zeros((8, 8), np.float32))
