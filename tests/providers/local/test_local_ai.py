"""Correctness tests of the offline local-AI backend (tools.providers.local) on generated images.

Skipped as a whole when the ``[local]`` extra is not installed. No speed assertions here: see
tests/benchmarks/bench_local.py for timings.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from tools.providers.local import INSTALL_HINT, LocalAIUnavailable, available, edits, matting, model

W, H = 384, 288


def _background(kind: str, top: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
    top_c = np.asarray(top, dtype=np.float32)
    bg = np.broadcast_to(top_c * (1 - t) + (top_c - 30) * t, (H, W, 3)).copy()
    if kind == "texture":
        blotch = Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).resize((W, H), Image.BICUBIC)
        bg += (np.asarray(blotch, dtype=np.float32)[..., None] - 128.0) * 0.12
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        bg += (np.sin(xx * 1.7) * np.sin(yy * 1.7) * 5.0)[..., None]
    return bg


def make_scene(
    colour: tuple[int, int, int], kind: str, shape: str = "ellipse", seed: int = 0
) -> tuple[Image.Image, np.ndarray]:
    """A product on a light background with a soft contact shadow; returns (RGB image, true mask)."""
    bg = _background(kind, (228, 226, 220), seed)
    box = (W * 0.32, H * 0.2, W * 0.68, H * 0.78)
    shadow = Image.new("L", (W, H), 0)
    ImageDraw.Draw(shadow).ellipse((box[0] + 10, box[3] - 10, box[2] + 30, box[3] + 12), fill=255)
    shadow = shadow.filter(ImageFilter.GaussianBlur(8))
    bg *= 1.0 - 0.4 * np.asarray(shadow, dtype=np.float32)[..., None] / 255.0
    big = Image.new("L", (W * 2, H * 2), 0)
    draw = ImageDraw.Draw(big)
    big_box = tuple(v * 2 for v in box)
    if shape == "ellipse":
        draw.ellipse(big_box, fill=255)
    else:
        draw.rounded_rectangle(big_box, radius=30, fill=255)
    mask = big.resize((W, H), Image.Resampling.BOX)
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    shade = np.linspace(1.05, 0.85, W, dtype=np.float32)[None, :, None]
    product = np.asarray(colour, dtype=np.float32)[None, None, :] * shade
    img = bg * (1 - alpha) + product * alpha
    img += np.random.default_rng(seed + 1).normal(0, 1.5, (H, W, 1)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), np.asarray(mask) >= 128


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


SCENES = [
    ((200, 35, 40), "gradient", "ellipse"),
    ((30, 70, 190), "texture", "box"),
    ((28, 28, 32), "texture", "ellipse"),
    ((235, 200, 40), "gradient", "box"),
    ((248, 247, 243), "gradient", "box"),  # near-white product on a light background
    ((246, 245, 240), "texture", "ellipse"),
]


# --- availability / import cost -----------------------------------------------------------------


def test_available_and_install_hint() -> None:
    assert available() and available(need_model=False)
    err = LocalAIUnavailable("numpy missing")
    assert INSTALL_HINT in str(err) and "[local]" in INSTALL_HINT


def test_import_is_cheap() -> None:
    code = (
        "import sys, tools.providers.local, tools.providers.local.model\n"
        "import tools.providers.local.matting, tools.providers.local.edits, tools.providers.local.models\n"
        "heavy = {'numpy', 'cv2', 'onnxruntime', 'rembg'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert tools.providers.local.available()\n"
        "assert not {'numpy', 'cv2', 'onnxruntime', 'rembg'} & set(sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


# --- model file ----------------------------------------------------------------------------------


def test_locate_model_finds_the_packaged_file() -> None:
    path = model.locate_model()
    assert path.name == "u2netp.onnx" and path.stat().st_size == model.MODEL_SIZE
    assert hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() == model.MODEL_MD5
    assert model.read_verified_model(path)[:4] == path.read_bytes()[:4]


def test_checksum_rejects_a_modified_file(tmp_path: Path) -> None:
    data = bytearray(model.locate_model().read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = tmp_path / "u2netp.onnx"
    bad.write_bytes(bytes(data))
    with pytest.raises(model.ModelChecksumError) as info:
        model.read_verified_model(bad)
    assert isinstance(info.value, LocalAIUnavailable)
    truncated = tmp_path / "short.onnx"
    truncated.write_bytes(bytes(data[:1000]))
    with pytest.raises(model.ModelChecksumError):
        model.read_verified_model(truncated)
    with pytest.raises(LocalAIUnavailable):
        model.read_verified_model(tmp_path / "missing.onnx")


def test_session_is_shared_and_thread_safe() -> None:
    assert model.get_session() is model.get_session()
    img, _ = make_scene((200, 35, 40), "gradient")
    expected = np.asarray(model.predict_mask(img))
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(np.asarray(model.predict_mask(img)))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results:
        assert np.abs(r.astype(int) - expected).max() <= 1


# --- cut-out --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("colour", "kind", "shape"), SCENES)
def test_cut_out_matches_the_true_mask(colour: tuple[int, int, int], kind: str, shape: str) -> None:
    img, truth = make_scene(colour, kind, shape, seed=sum(colour))
    mask = model.predict_mask(img)
    assert mask.mode == "L" and mask.size == img.size
    assert iou(np.asarray(mask) >= 128, truth) >= 0.95
    out = matting.cut_out(img)
    assert out.mode == "RGBA" and out.size == img.size
    assert iou(np.asarray(out.getchannel("A")) >= 128, truth) >= 0.95
    # Opaque pixels keep their colour exactly; only semi-transparent edge pixels get a foreground estimate.
    arr = np.asarray(out)
    opaque = arr[..., 3] == 255
    assert opaque.mean() > 0.1
    assert np.array_equal(arr[..., :3][opaque], np.asarray(img)[opaque])
    plain = matting.cut_out(img, foreground=False, cleanup=False, colour_guide=False)
    assert plain.convert("RGB").tobytes() == img.tobytes()


def test_cut_out_keeps_existing_transparency() -> None:
    img, _ = make_scene((30, 70, 190), "gradient")
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.new("L", img.size, 0).crop((0, 0, W, H)))
    assert np.asarray(matting.cut_out(rgba).getchannel("A")).max() == 0


def test_encode_cutout_small_is_png_and_lossless_where_visible() -> None:
    img, _ = make_scene((40, 150, 70), "texture")
    cut = matting.cut_out(img)
    data, mime = matting.encode_cutout(cut)
    assert mime == "image/png"
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    orig = np.asarray(cut)
    visible = orig[..., 3] > 0
    assert np.array_equal(back[visible], orig[visible])
    assert np.array_equal(back[..., 3], orig[..., 3])
    assert not back[~visible].any()


def test_encode_cutout_falls_back_to_webp_then_downscales(monkeypatch: pytest.MonkeyPatch) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 4), dtype=np.uint8)
    noise[..., 3] = 255
    img = Image.fromarray(noise)
    monkeypatch.setattr(matting, "PNG_MAX_VISIBLE_PIXELS", 0)
    data, mime = matting.encode_cutout(img)
    assert mime == "image/webp"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")), noise)
    monkeypatch.setattr(matting, "MAX_ENCODED_BYTES", 300_000)
    data, mime = matting.encode_cutout(img.resize((1024, 1024)))
    assert mime == "image/webp" and len(data) <= 300_000
    assert Image.open(io.BytesIO(data)).size[0] < 1024


# --- edits ----------------------------------------------------------------------------------------


def test_blur_background_keeps_subject_and_blurs_background() -> None:
    img, truth = make_scene((200, 35, 40), "texture", "box")
    out = edits.blur_background(img, strength=0.6)
    assert out.mode == "RGB" and out.size == img.size
    src = np.asarray(img).astype(int)
    res = np.asarray(out).astype(int)
    core = np.asarray(Image.fromarray(truth.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(9))) > 0
    far = ~np.asarray(Image.fromarray(truth.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(21))).astype(bool)
    assert np.abs(res[core] - src[core]).mean() < 1.0
    assert np.abs(res[far] - src[far]).mean() > 2.0
    # Blurred background has much less fine detail than the textured original.
    assert np.abs(np.diff(res, axis=1))[far[:, 1:]].mean() < 0.5 * np.abs(np.diff(src, axis=1))[far[:, 1:]].mean()
    assert edits.blur_background(img, 0).tobytes() == img.tobytes()
    with pytest.raises(ValueError):
        edits.blur_background(img, 1.5)


@pytest.mark.parametrize("denoise", [False, True])
def test_enhance_doubles_size(denoise: bool) -> None:
    img, _ = make_scene((30, 70, 190), "texture")
    out = edits.enhance(img, scale=2, denoise=denoise)
    assert out.size == (2 * W, 2 * H) and out.mode == "RGB"
    # Same picture: the 2x result shrunk back is close to the input.
    back = np.asarray(out.resize(img.size, Image.Resampling.BOX)).astype(int)
    assert np.abs(back - np.asarray(img).astype(int)).mean() < 4.0


def test_enhance_keeps_alpha_and_validates() -> None:
    rgba = Image.new("RGBA", (40, 30), (10, 200, 30, 128))
    out = edits.enhance(rgba, scale=4)
    assert out.mode == "RGBA" and out.size == (160, 120)
    assert edits.enhance(rgba, scale=1).size == (40, 30)
    with pytest.raises(ValueError):
        edits.enhance(rgba, scale=3)
    with pytest.raises(ValueError):
        edits.enhance(Image.new("RGB", (5000, 4000)), scale=4)


def _neutral_scene() -> Image.Image:
    rng = np.random.default_rng(7)
    gray = np.asarray(Image.fromarray(rng.integers(40, 220, (12, 16), dtype=np.uint8)).resize((W, H), Image.BICUBIC))
    arr = np.repeat(gray[..., None].astype(np.float32), 3, axis=2)
    img = Image.fromarray(arr.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for i in range(8):  # neutral patches of several brightnesses, sharp edges
        v = 30 + 25 * i
        draw.rectangle((20 + 44 * i, 200, 56 + 44 * i, 260), fill=(v, v, v))
    draw.ellipse((150, 40, 230, 120), fill=(180, 60, 60))  # one coloured object
    return img


def test_correct_colors_neutralises_a_cast() -> None:
    img = _neutral_scene()
    arr = np.asarray(img).astype(np.float32)
    cast = Image.fromarray(np.clip(arr * np.array([1.2, 1.0, 0.78], np.float32), 0, 255).astype(np.uint8))
    fixed = np.asarray(edits.correct_colors(cast)).astype(np.float32)
    patch = (slice(205, 255), slice(20, 372))  # the gray patches
    before = np.asarray(cast).astype(np.float32)[patch].reshape(-1, 3).mean(axis=0)
    after = fixed[patch].reshape(-1, 3).mean(axis=0)
    assert before[0] / before[2] > 1.4
    assert abs(after[0] / after[1] - 1) < 0.06 and abs(after[2] / after[1] - 1) < 0.06
    # A neutral image stays (nearly) as it is.
    same = np.asarray(edits.correct_colors(img)).astype(np.float32)
    assert np.abs(same - arr).mean() < 2.0
    rgba = cast.convert("RGBA")
    assert edits.correct_colors(rgba).mode == "RGBA"


@pytest.mark.parametrize("colour", [(200, 35, 40), (235, 200, 40), (246, 245, 240)])
def test_correct_colors_is_not_fooled_by_a_coloured_product(colour: tuple[int, int, int]) -> None:
    img, truth = make_scene(colour, "texture", "box", seed=5)
    src = np.asarray(img).astype(np.float32)
    for cast in ((1.2, 1.0, 0.8), (0.85, 1.0, 1.2)):
        tinted = Image.fromarray(np.clip(src * np.array(cast, np.float32), 0, 255).astype(np.uint8))
        fixed = np.asarray(edits.correct_colors(tinted)).astype(np.float32)
        want, got = src[~truth].mean(axis=0), fixed[~truth].mean(axis=0)
        assert abs(got[0] / got[1] - want[0] / want[1]) < 0.06
        assert abs(got[2] / got[1] - want[2] / want[1]) < 0.06


def test_remove_small_object_erases_a_dot() -> None:
    t = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    bg = np.broadcast_to(
        np.array([90, 140, 200], np.float32) * (1 - t) + np.array([160, 190, 230], np.float32) * t, (H, W, 3)
    )
    base = Image.fromarray(bg.astype(np.uint8))
    img = base.copy()
    ImageDraw.Draw(img).ellipse((180, 130, 196, 146), fill=(20, 20, 20))
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).ellipse((178, 128, 198, 148), fill=255)
    out = edits.remove_small_object(img, mask)
    assert out.size == img.size and out.mode == "RGB"
    res, ref = np.asarray(out).astype(int), np.asarray(base).astype(int)
    spot = (slice(126, 151), slice(176, 201))
    assert np.abs(res[spot] - ref[spot]).max() < 25
    assert np.abs(np.asarray(img).astype(int)[spot] - ref[spot]).max() > 100
    outside = np.asarray(mask.filter(ImageFilter.MaxFilter(9))) == 0
    assert np.array_equal(res[outside], np.asarray(img).astype(int)[outside])
    # A mask at another resolution (same aspect) is scaled; an empty mask changes nothing.
    assert edits.remove_small_object(img, mask.resize((W // 2, H // 2))).size == img.size
    assert edits.remove_small_object(img, Image.new("L", img.size, 0)).tobytes() == img.tobytes()


def test_remove_small_object_refuses_a_large_mask() -> None:
    img = Image.new("RGB", (200, 100), (120, 130, 140))
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 59, 59), fill=255)  # 18 %
    with pytest.raises(edits.MaskTooLarge, match="youcam") as info:
        edits.remove_small_object(img, mask)
    assert isinstance(info.value, ValueError) and info.value.share > edits.MAX_MASK_SHARE
    with pytest.raises(ValueError):
        edits.remove_small_object(img, Image.new("L", (100, 100), 0))
