"""Automatic white balance for the offline backend: gray-edge on near-neutral edges, skin-safe.

`correct_colors` (re-exported by `edits`) estimates the illuminant with gray-edge on near-neutral
edges (`wb_gains`), scales the correction by the estimate's confidence, leaves photos with a cast
below a few degrees alone, and keeps detected faces skin-coloured. No model is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from . import import_optional
from .pixels import join_alpha, linear_to_srgb, split_alpha, srgb_to_linear

if TYPE_CHECKING:
    import numpy as np

__all__ = ["correct_colors", "wb_gains"]

_WB_SIDE = 512
#: `correct_colors` leaves a photo alone when its estimated cast is below this angle (full correction
#: from twice the angle): balanced photos stay as they are.
_MIN_CAST_DEGREES = 3.0
#: Share of the correction applied after 0-3 successful neutral-edge refinement stages.
_STAGE_CONFIDENCE = (0.25, 0.4, 0.7, 1.0)
#: Skin in linear light: R/G and B/G ranges a corrected face must stay within.
_SKIN_RG = (1.35, 3.2)
_SKIN_BG = (0.42, 0.75)
_face_detector: Any = None


def _minkowski(grads: np.ndarray, p: float) -> np.ndarray:
    """Per-channel Minkowski p-norm of N x 3 gradient magnitudes, normalised to mean 1 (float32)."""
    np = import_optional("numpy")
    est = np.power(np.mean(np.power(grads.astype(np.float64), p), axis=0), 1.0 / p)
    return (est / max(float(est.mean()), 1e-12)).astype(np.float32)


def _wb_estimate(rgb: Image.Image, p: float = 6.0) -> tuple[tuple[float, float, float], float, Any]:
    """(gains, confidence in (0, 1], linear-light ≤512 px copy) of the gray-edge estimate; see `wb_gains`.

    Confidence is the share of the refinement stages that found enough near-neutral edges (1.0 when
    all three did); an estimate resting on few neutral edges is likely a scene colour, not a cast.
    """
    np = import_optional("numpy")
    cv2 = import_optional("cv2")
    small = rgb.copy()
    small.thumbnail((_WB_SIDE, _WB_SIDE), Image.Resampling.BOX)
    arr = np.asarray(small, dtype=np.float32)
    usable = (arr.max(axis=2) < 250) & (arr.min(axis=2) > 8)
    usable = cv2.erode(usable.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)  # away from clipping
    lin = cv2.GaussianBlur(srgb_to_linear(arr / 255.0).astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(lin, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lin, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    strength = mag.sum(axis=2)
    if not usable.any() or float(strength[usable].max()) < 1e-4:
        return (1.0, 1.0, 1.0), 0.0, lin
    edges = usable & (strength > np.percentile(strength[usable], 50))
    window = np.ones((11, 11), np.uint8)  # an edge counts only if its whole neighbourhood is near-neutral
    illum: np.ndarray | None = None
    stages = 0
    for limit in (4.0, 2.5, 1.6):
        corrected = lin if illum is None else lin / illum
        ratio = corrected.max(axis=2) / np.maximum(corrected.min(axis=2), 1e-4)
        keep = edges & (cv2.dilate(ratio, window) < limit)
        if keep.sum() < 20:
            break
        illum = _minkowski(mag[keep], p)
        stages += 1
    if illum is None:  # no near-neutral edges at all (extreme cast): plain gray-edge on every edge
        illum = _minkowski(mag[edges], p)
    if float(illum.min()) < 1e-6:
        return (1.0, 1.0, 1.0), 0.0, lin
    gains = np.clip(1.0 / illum, 0.5, 2.0)
    gains /= gains.mean()
    return (float(gains[0]), float(gains[1]), float(gains[2])), _STAGE_CONFIDENCE[stages], lin


def wb_gains(img: Image.Image, p: float = 6.0) -> tuple[float, float, float]:
    """Gray-edge illuminant estimate -> per-channel gains in linear light (mean gain 1, clipped 0.5..2).

    Gray-edge (Minkowski p-norm of per-channel gradients, van de Weijer et al.) computed on a copy whose
    long side is at most 512 px, in linear light, ignoring near-saturated and near-black pixels. To keep
    a large coloured product from being taken for the light, only edges between near-neutral colours
    count: the estimate is refined three times, each time keeping the edges whose colour, corrected
    by the current estimate, is within a shrinking max/min channel ratio (4, 2.5, 1.6); with no
    near-neutral edge at all, every edge counts. A flat image (no usable edges) gives (1, 1, 1).

    Raises:
        LocalAIUnavailable: numpy / OpenCV missing.
    """
    rgb, _ = split_alpha(img)
    return _wb_estimate(rgb, p)[0]


def _angle_degrees(gains: np.ndarray) -> float:
    np = import_optional("numpy")
    cos = float(gains.sum() / (np.sqrt(3.0) * np.linalg.norm(gains)))
    return float(np.degrees(np.arccos(min(1.0, cos))))


def _faces(lin: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces (x, y, w, h) in the ≤512 px linear copy, by OpenCV's bundled Haar cascade."""
    np = import_optional("numpy")
    cv2 = import_optional("cv2")
    global _face_detector
    if _face_detector is None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        detector = cv2.CascadeClassifier(str(path))
        if detector.empty():
            return []
        _face_detector = detector
    gray = np.clip(linear_to_srgb(lin.mean(axis=2)) * 255.0, 0, 255).astype(np.uint8)
    side = max(8, max(gray.shape) // 12)
    found = _face_detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6, minSize=(side, side))
    return [tuple(int(v) for v in f) for f in found]


def _protect_skin(gains: np.ndarray, lin: np.ndarray) -> np.ndarray:
    """Adjust gains so that detected faces keep a skin colour (red > green > blue, not grey).

    For each frontal face the median linear colour of its central part is taken; if the correction
    would move it outside the range skin takes in linear light (R/G 1.35-3.2, B/G 0.42-0.75), the red
    and blue gains are changed just enough to bring it back to the nearest bound.
    """
    np = import_optional("numpy")
    adjusted = gains.astype(np.float64).copy()
    for x, y, w, h in _faces(lin):
        patch = lin[y + int(0.3 * h) : y + int(0.8 * h), x + int(0.25 * w) : x + int(0.75 * w)].reshape(-1, 3)
        ok = (patch.min(axis=1) > 0.004) & (patch.max(axis=1) < 0.95)
        if ok.sum() < 30:
            continue
        skin = np.median(patch[ok], axis=0).astype(np.float64) * adjusted
        if skin[1] <= 1e-6:
            continue
        rg, bg = skin[0] / skin[1], skin[2] / skin[1]
        adjusted[0] *= min(max(rg, _SKIN_RG[0]), _SKIN_RG[1]) / rg
        adjusted[2] *= min(max(bg, _SKIN_BG[0]), _SKIN_BG[1]) / bg
    return adjusted / adjusted.mean()


def correct_colors(
    img: Image.Image, *, protect_skin: bool = True, min_cast_degrees: float = _MIN_CAST_DEGREES
) -> Image.Image:
    """Automatic white balance (gray-edge on neutral edges, gains from a ≤512 px copy; see `wb_gains`).

    The correction is scaled by the estimate's confidence (how many refinement stages found enough
    near-neutral edges) and faded out for small casts: an estimated cast below `min_cast_degrees`
    (angle between the illuminant and neutral) leaves the photo unchanged, the full correction applies
    from twice that angle, linearly between. With `protect_skin`, frontal faces (OpenCV's Haar
    cascade) keep a skin colour: a blue cast cannot turn skin grey. The gains are applied in linear
    light through per-channel lookup tables (one fast `Image.point` at full resolution). An alpha
    channel is kept. No model is used. (The earlier behaviour, for the benchmark:
    ``_correct_colors(img, protect_skin=False, min_cast_degrees=0, damp_uncertain=False)``.)

    Raises:
        LocalAIUnavailable: numpy / OpenCV missing.
    """
    return _correct_colors(img, protect_skin=protect_skin, min_cast_degrees=min_cast_degrees)


def _correct_colors(
    img: Image.Image, *, protect_skin: bool, min_cast_degrees: float, damp_uncertain: bool = True
) -> Image.Image:
    np = import_optional("numpy")
    rgb, alpha = split_alpha(img)
    raw, confidence, lin = _wb_estimate(rgb)
    log_gains = np.log(np.asarray(raw, dtype=np.float64))
    if damp_uncertain:
        log_gains *= confidence
    gains = np.exp(log_gains)
    if protect_skin:
        gains = _protect_skin(gains, lin)
    if min_cast_degrees > 0:
        angle = _angle_degrees(gains)
        fade = min(1.0, max(0.0, (angle - min_cast_degrees) / min_cast_degrees))
        gains = np.exp(np.log(gains) * fade)
    if np.allclose(gains, 1.0, atol=1e-4):
        return join_alpha(rgb.copy(), alpha)
    levels = srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)
    lut: list[int] = []
    for g in gains:
        lut.extend(int(v) for v in np.round(linear_to_srgb(levels * g) * 255.0))
    return join_alpha(rgb.point(lut), alpha)
