"""Small image helpers shared by the offline edits: alpha split/join, sRGB <-> linear light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from . import import_optional

if TYPE_CHECKING:
    import numpy as np

__all__ = ["join_alpha", "linear_to_srgb", "split_alpha", "srgb_to_linear"]


def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(RGB image, alpha channel or None) for any input mode."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    return (img if img.mode == "RGB" else img.convert("RGB")), None


def join_alpha(rgb: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return rgb
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.LANCZOS)
    out = rgb.copy()
    out.putalpha(alpha)
    return out


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    np = import_optional("numpy")
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    np = import_optional("numpy")
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)
