"""White balance on real and generated photos: skin stays skin, balanced photos stay as they are.

The portrait is scikit-image's astronaut photo (a file in the installed package; scikit-image is in
the ``test`` extra). Pixel assertions only; no timing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("cv2")

import numpy as np
from PIL import Image, ImageDraw

from tools.providers.local import edits, whitebalance


def _astronaut() -> Image.Image:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-image (test extra) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"
    return Image.open(path).convert("RGB")


def _lin(a: np.ndarray) -> np.ndarray:
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def _srgb(a: np.ndarray) -> np.ndarray:
    a = np.clip(a, 0, 1)
    return np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)


def _cast(img: Image.Image, cast: tuple[float, float, float]) -> Image.Image:
    lin = _lin(np.asarray(img, dtype=np.float64) / 255.0) * np.asarray(cast)
    return Image.fromarray(np.round(_srgb(lin) * 255).astype(np.uint8))


FACE = (slice(95, 145), slice(205, 250))  # the astronaut's cheeks and nose (512 x 512 photo)


def _skin(img: Image.Image) -> tuple[float, float]:
    """(hue in degrees, chroma) of the mean face colour in an opponent space of sRGB."""
    m = np.asarray(img.convert("RGB"), np.float64)[FACE].reshape(-1, 3).mean(axis=0)
    o1, o2 = (m[0] - m[1]) / np.sqrt(2), (m[0] + m[1] - 2 * m[2]) / np.sqrt(6)
    return float(np.degrees(np.arctan2(o2, o1))), float(np.hypot(o1, o2))


def test_blue_cast_portrait_keeps_skin_hue() -> None:
    photo = _astronaut()
    hue0, chroma0 = _skin(photo)
    casted = _cast(photo, (0.6, 1.0, 1.6))
    hue_c, chroma_c = _skin(casted)
    assert abs(hue_c - hue0) > 25 or chroma_c < 0.6 * chroma0  # the cast visibly spoils the skin
    hue1, chroma1 = _skin(edits.correct_colors(casted))
    assert abs(hue1 - hue0) < 10
    assert chroma1 > 0.75 * chroma0


def test_skin_protection_rescues_a_face_the_estimate_would_leave_grey(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the illuminant estimate misses a blue cast entirely, the face comes out skin-coloured."""
    photo = _astronaut()
    casted = _cast(photo, (0.6, 1.0, 1.6))
    real = whitebalance._wb_estimate

    def missed(rgb: Image.Image, p: float = 6.0):  # the estimate's linear copy, but neutral gains
        _, _, lin = real(rgb, p)
        return (1.0, 1.0, 1.0), 1.0, lin

    monkeypatch.setattr(whitebalance, "_wb_estimate", missed)
    unprotected = np.asarray(edits.correct_colors(casted, protect_skin=False), np.float64)[FACE].mean(axis=(0, 1))
    protected = np.asarray(edits.correct_colors(casted), np.float64)[FACE].mean(axis=(0, 1))
    assert unprotected[2] >= unprotected[1]  # grey-blue skin
    assert protected[0] > protected[1] > protected[2]  # skin: red > green > blue
    assert protected[0] - protected[2] > 25


def _balanced_scene() -> Image.Image:
    rng = np.random.default_rng(11)
    base = rng.integers(60, 200, (9, 12, 3), dtype=np.uint8)
    base[..., :] = base.mean(axis=2, keepdims=True).astype(np.uint8)  # neutral greys
    img = Image.fromarray(base).resize((384, 288), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 40, 140, 140), fill=(200, 60, 50))
    draw.rectangle((220, 150, 330, 260), fill=(40, 90, 190))
    for i in range(6):
        v = 40 + 30 * i
        draw.rectangle((20 + 50 * i, 230, 60 + 50 * i, 270), fill=(v, v, v))
    return img


def test_balanced_photo_is_left_alone() -> None:
    img = _balanced_scene()
    assert edits.correct_colors(img).tobytes() == img.tobytes()
    slight = _cast(img, (1.02, 1.0, 0.98))  # ~1° off neutral: below the no-op threshold
    assert edits.correct_colors(slight).tobytes() == slight.tobytes()
    rgba = img.convert("RGBA")
    out = edits.correct_colors(rgba)
    assert out.mode == "RGBA" and out.tobytes() == rgba.tobytes()


def test_real_balanced_portrait_barely_moves() -> None:
    photo = _astronaut()
    out = np.asarray(edits.correct_colors(photo), np.float64)
    assert np.abs(out - np.asarray(photo, np.float64)).mean() < 1.5


def test_a_clear_cast_is_still_corrected() -> None:
    img = _balanced_scene()
    warm = _cast(img, (1.3, 1.0, 0.7))
    grey = (slice(232, 268), slice(22, 308))
    before = np.asarray(warm, np.float64)[grey].reshape(-1, 3).mean(axis=0)
    after = np.asarray(edits.correct_colors(warm), np.float64)[grey].reshape(-1, 3).mean(axis=0)
    assert before[0] / before[2] > 1.2
    assert abs(after[0] / after[2] - 1) < 0.08
