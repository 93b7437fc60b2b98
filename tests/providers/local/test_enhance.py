"""`edits.enhance`: back-projected upscale beats plain Lanczos on a generated, detailed image; fallbacks.

Pixel assertions only; no timing.
"""

from __future__ import annotations

import pytest

pytest.importorskip("numpy")

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tools.providers.local import edits


def _detailed(w: int = 320, h: int = 240) -> Image.Image:
    """Edges, thin lines, text-like strokes and texture: what a ×2 shrink loses."""
    rng = np.random.default_rng(5)
    base = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(base)
    for i in range(14):
        x = 10 + 22 * i
        draw.line((x, 20, x + 40, h - 20), fill=(240, 240, 240) if i % 2 else (15, 15, 25), width=1 + i % 3)
    draw.ellipse((60, 60, 180, 180), outline=(200, 40, 40), width=3)
    draw.rectangle((200, 40, 300, 120), fill=(30, 90, 200))
    noise = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    arr = np.clip(np.asarray(base, np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.SMOOTH)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("kernel", [Image.Resampling.LANCZOS, Image.Resampling.BOX])
def test_enhance_beats_lanczos_on_a_shrunk_image(kernel: Image.Resampling) -> None:
    ref = _detailed()
    small = ref.resize((ref.width // 2, ref.height // 2), kernel)
    lanczos = small.resize(ref.size, Image.Resampling.LANCZOS)
    ours = edits.enhance(small, 2)
    assert ours.size == ref.size and ours.mode == "RGB"
    assert _psnr(ref, ours) > _psnr(ref, lanczos) + 0.15
    # The old path (Lanczos + unsharp mask) is still there by name, and differs.
    assert edits.enhance(small, 2, method="unsharp").tobytes() != ours.tobytes()


def test_enhance_result_shrinks_back_to_its_input() -> None:
    small = _detailed(160, 120)
    ours = edits.enhance(small, 4)
    assert ours.size == (640, 480)
    back = np.asarray(ours.resize(small.size, Image.Resampling.LANCZOS), np.float64)
    plain = np.asarray(small.resize((640, 480), Image.Resampling.LANCZOS).resize(small.size, Image.Resampling.LANCZOS))
    src = np.asarray(small, np.float64)
    assert np.abs(back - src).mean() < 0.6 * np.abs(plain - src).mean()


def test_enhance_large_output_and_alpha_use_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    small = _detailed(80, 60)
    monkeypatch.setattr(edits, "BACKPROJECT_MAX_PIXELS", 100)
    assert edits.enhance(small, 2).tobytes() == edits.enhance(small, 2, method="unsharp").tobytes()
    monkeypatch.undo()
    rgba = small.convert("RGBA")
    rgba.putalpha(128)
    out = edits.enhance(rgba, 2)
    assert out.mode == "RGBA" and out.size == (160, 120)
    assert np.asarray(out.getchannel("A")).min() >= 127
    with pytest.raises(ValueError, match="method"):
        edits.enhance(small, 2, method="magic")
