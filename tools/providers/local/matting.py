"""Background removal: u2netp mask refined at full resolution with a guided filter, and its encoding.

`cut_out` costs one model run (fixed 320×320 input: 0.25-0.5 s on 2 cores) plus work linear in the
pixel count (resize, guided filter, compositing: ~0.03 s at 1024 px, ~0.3 s at 4096 px). Peak extra
memory is about 45 bytes per pixel (4096×3072: +550 MB), so a capacity limiter of 1 (at most 2)
concurrent calls suits a 2-core / 24 GB machine: the model already uses both cores.

Encoding (`encode_cutout`), measured on a 4096×3072 noisy product cut-out (subject ~20 % of the frame;
PNG level 6 is ~4x slower than level 1): PNG level 1: 28.2 MB / 2.1 s; fastest lossless WebP: 22.9 MB
/ 0.9 s. Zeroing the colour of fully transparent pixels first: PNG-1 4.5 MB / 0.57 s, WebP 6.8 MB /
0.5 s, WebP method 1: 2.9 MB / 2.0 s. Hence: zero hidden pixels, PNG-1 while few pixels are visible,
fastest lossless WebP for dense images, and a downscale as the last resort (a fully opaque noisy
4096² photo ends as a 2177² WebP of 6.9 MB in 2.1 s).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image

from . import import_optional
from .model import predict_alpha

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_ENCODED_BYTES", "PNG_MAX_VISIBLE_PIXELS", "cut_out", "encode_cutout", "guided_filter", "refine_alpha"]

#: Encoded cut-outs stay below this (the MCP answer carries them base64-encoded).
MAX_ENCODED_BYTES = 10 * 1024 * 1024
#: Up to this many visible (alpha > 0) pixels a cut-out is PNG (compress_level=1); above, lossless WebP.
PNG_MAX_VISIBLE_PIXELS = 4_000_000
#: Working resolution (long side) of the guided filter's coefficients; the output is full resolution.
_GUIDE_WORK_SIDE = 1024
_EPS = 1e-4
# Alpha below/above these snaps to 0/1: removes the faint haze the filter leaves in textured backgrounds.
_SNAP_LO, _SNAP_HI = 0.03, 0.97


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float = _EPS, subsample: int = 1) -> np.ndarray:
    """He et al.'s guided filter (the "fast" variant when ``subsample > 1``), float32 in and out.

    `guide` and `src` are HxW float32 arrays (guide in [0, 1]). The linear coefficients are computed on
    a copy shrunk by `subsample`, with box filters of radius ``radius / subsample`` (rounded, >= 1),
    then upsampled and applied to the full-resolution guide, so edges follow the full-resolution image.

    Raises:
        ValueError: shapes differ or radius < 1.
        LocalAIUnavailable: numpy / OpenCV missing.
    """
    np = import_optional("numpy")
    cv2 = import_optional("cv2")
    if guide.shape != src.shape or guide.ndim != 2:
        raise ValueError(f"guide {guide.shape} and src {src.shape} must be equal 2-D shapes")
    if radius < 1:
        raise ValueError("radius must be >= 1")
    h, w = guide.shape
    if subsample > 1:
        size = (max(1, round(w / subsample)), max(1, round(h / subsample)))
        guide_s = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
        src_s = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
        r = max(1, round(radius / subsample))
    else:
        guide_s, src_s, r = guide, src, radius
    ksize = (2 * r + 1, 2 * r + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, normalize=True, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide_s)
    mean_p = box(src_s)
    var_i = box(guide_s * guide_s) - mean_i * mean_i
    cov_ip = box(guide_s * src_s) - mean_i * mean_p
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    mean_a, mean_b = box(a), box(b)
    if subsample > 1:
        mean_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
    out = mean_a * guide
    out += mean_b
    return out


def refine_alpha(img: Image.Image, alpha_small: np.ndarray) -> np.ndarray:
    """Upsample a low-resolution alpha to `img`'s size and snap its edges to the image (guided filter).

    Returns an HxW float32 alpha in [0, 1].

    Raises:
        LocalAIUnavailable: numpy / OpenCV missing.
    """
    np = import_optional("numpy")
    cv2 = import_optional("cv2")
    w, h = img.size
    long_side = max(w, h)
    coarse = cv2.resize(alpha_small.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    guide = np.asarray(img.convert("L"), dtype=np.float32)
    guide *= np.float32(1.0 / 255.0)
    # The upsampled mask edge is ~long_side/320 px wide; the filter radius must cover it.
    radius = max(2, round(1.5 * long_side / 320))
    subsample = max(1, long_side // _GUIDE_WORK_SIDE)
    alpha = guided_filter(guide, coarse, radius, _EPS, subsample)
    alpha -= np.float32(_SNAP_LO)
    alpha *= np.float32(1.0 / (_SNAP_HI - _SNAP_LO))
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha


def cut_out(img: Image.Image) -> Image.Image:
    """The subject on a transparent background: RGBA, same size as `img`.

    An existing alpha channel is kept where it is more transparent than the predicted matte.

    Raises:
        LocalAIUnavailable: the extra or the model file is missing.
        ModelChecksumError: the model file failed verification.
    """
    np = import_optional("numpy")
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    alpha = refine_alpha(rgb, predict_alpha(rgb))
    alpha *= np.float32(255.0)
    alpha += np.float32(0.5)
    matte = alpha.astype(np.uint8)
    if "A" in img.getbands():
        matte = np.minimum(matte, np.asarray(img.getchannel("A")))
    out = rgb.copy()
    out.putalpha(Image.fromarray(matte))
    return out


def _clear_hidden(img: Image.Image) -> tuple[Image.Image, int]:
    """Zero the colour of fully transparent pixels (invisible, but costly to compress); count the rest."""
    np = import_optional("numpy")
    arr = np.array(img.convert("RGBA"))
    hidden = arr[..., 3] == 0
    arr[hidden] = 0
    return Image.fromarray(arr), int(hidden.size - np.count_nonzero(hidden))


def _save(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "WEBP", lossless=True, quality=0, method=0, exact=False)
    return buf.getvalue()


def encode_cutout(img: Image.Image) -> tuple[bytes, str]:
    """Encode an RGBA cut-out losslessly and fast, below `MAX_ENCODED_BYTES`: (data, mime type).

    Fully transparent pixels get colour 0 first (5-6x smaller files for a typical product shot).
    With at most `PNG_MAX_VISIBLE_PIXELS` visible pixels the result is PNG at compress_level=1
    (4-10x faster than level 6, ~20 % larger). Denser images, or a PNG over the limit, use lossless
    WebP at its fastest effort (about half PNG-1's time, ~20 % smaller on dense noisy content). If
    even that exceeds the limit, the image is downscaled (Lanczos) to the estimated fitting size and
    encoded again, so huge opaque photos lose resolution rather than blow the limit.

    Raises:
        LocalAIUnavailable: numpy missing.
    """
    current, visible = _clear_hidden(img)
    if visible <= PNG_MAX_VISIBLE_PIXELS:
        data = _save(current, "PNG")
        if len(data) <= MAX_ENCODED_BYTES:
            return data, "image/png"
    while True:
        data = _save(current, "WEBP")
        w, h = current.size
        if len(data) <= MAX_ENCODED_BYTES or max(w, h) <= 256:
            return data, "image/webp"
        factor = min(0.9, (0.85 * MAX_ENCODED_BYTES / len(data)) ** 0.5)
        current = current.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.LANCZOS)
