"""The offline Pillow tools through a real MCP client: files, resources and output shape."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from PIL import Image, ImageColor

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes


def _open(path: str) -> Image.Image:
    return Image.open(path)


async def test_place_on_background_makes_a_white_square(client: Client, workdir: Path) -> None:
    src = workdir / "cutout.png"
    src.write_bytes(image_bytes(120, 80, "png", transparent=True))
    result = await client.call_tool("place_on_background", {"image": str(src), "size": 300})

    assert not result.is_error, result.content
    out = result.structured_content
    assert out["status"] == "succeeded" and out["provider"] == "local" and out["credits"]["charged"] == 0
    (image,) = out["images"]
    assert (image["width"], image["height"]) == (300, 300)
    with _open(image["path"]) as img:
        assert img.size == (300, 300)
        assert img.convert("RGB").getpixel((2, 2)) == (255, 255, 255)  # the padding is white
        assert img.convert("RGB").getpixel((150, 150))[0] > 150  # the red subject is centred
    # Content: summary text, a resource link, an inline preview.
    kinds = [b.type for b in result.content]
    assert kinds == ["text", "resource_link", "image"]
    assert result.content[1].uri == image["uri"]
    assert result.content[2].mime_type == "image/jpeg"


async def test_place_on_background_on_a_backdrop_image_with_a_ratio(client: Client, workdir: Path) -> None:
    (workdir / "cut.png").write_bytes(image_bytes(40, 40, "png", transparent=True))
    (workdir / "bg.jpg").write_bytes(image_bytes(200, 200, "jpeg"))
    result = await client.call_tool(
        "place_on_background",
        {"image": str(workdir / "cut.png"), "background": str(workdir / "bg.jpg"), "aspect_ratio": "16:9"},
    )
    assert not result.is_error, result.content
    image = result.structured_content["images"][0]
    assert abs(image["width"] / image["height"] - 16 / 9) < 0.05


async def test_transparent_background_keeps_alpha(client: Client, workdir: Path) -> None:
    (workdir / "cut.png").write_bytes(image_bytes(40, 40, "png", transparent=True))
    result = await client.call_tool(
        "place_on_background", {"image": str(workdir / "cut.png"), "background": "transparent", "margin": 0.2}
    )
    image = result.structured_content["images"][0]
    assert image["mime_type"] == "image/png"
    with _open(image["path"]) as img:
        assert img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0


async def test_resize_keeps_aspect_and_format(client: Client, workdir: Path) -> None:
    (workdir / "a.jpg").write_bytes(image_bytes(200, 100, "jpeg"))
    result = await client.call_tool("resize_image", {"image": str(workdir / "a.jpg"), "width": 50})
    image = result.structured_content["images"][0]
    assert (image["width"], image["height"], image["mime_type"]) == (50, 25, "image/jpeg")


async def test_crop_and_chain_by_result_uri(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(100, 80, "png"))
    first = await client.call_tool("crop_image", {"image": str(workdir / "a.png"), "box": [10, 10, 60, 50]})
    uri = first.structured_content["images"][0]["uri"]
    second = await client.call_tool("resize_image", {"image": uri, "max_side": 25})
    image = second.structured_content["images"][0]
    assert (image["width"], image["height"]) == (25, 20)


async def test_convert_under_a_byte_budget(client: Client, workdir: Path) -> None:
    noisy = Image.effect_noise((600, 600), 80).convert("RGB")
    buf = io.BytesIO()
    noisy.save(buf, "PNG")
    (workdir / "noise.png").write_bytes(buf.getvalue())
    result = await client.call_tool(
        "convert_image", {"image": str(workdir / "noise.png"), "format": "jpeg", "max_bytes": 40_000}
    )
    image = result.structured_content["images"][0]
    assert image["mime_type"] == "image/jpeg"
    assert image["bytes"] <= 40_000
    assert Path(image["path"]).stat().st_size == image["bytes"]


async def test_data_uri_input_and_resource_read_back(client: Client) -> None:
    data = image_bytes(30, 20, "png")
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    result = await client.call_tool("convert_image", {"image": uri, "format": "webp"})
    image = result.structured_content["images"][0]
    read = await client.read_resource(image["uri"])
    (contents,) = read.contents
    assert contents.mime_type == "image/webp"
    with Image.open(io.BytesIO(base64.b64decode(contents.blob))) as img:
        assert img.format == "WEBP" and img.size == (30, 20)
    listed = await client.list_resources()
    assert image["uri"] in [str(r.uri) for r in listed.resources]


async def test_results_are_owner_only_and_no_temp_files_remain(client: Client, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(20, 20, "png"))
    result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 10})
    path = Path(result.structured_content["images"][0]["path"])
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(path.parent.glob(".photo-mcp-tmp-*"))


async def test_preview_none_sends_no_inline_image(tmp_path: Path, workdir: Path) -> None:
    from server.app import build_server
    from tests.conftest import make_settings

    (workdir / "a.png").write_bytes(image_bytes(20, 20, "png"))
    async with Client(build_server(make_settings(tmp_path, preview="none"))) as c:
        result = await c.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 10})
    assert [b.type for b in result.content] == ["text", "resource_link"]


async def test_every_tool_publishes_an_output_schema_and_annotations(client: Client) -> None:
    tools = (await client.list_tools()).tools
    for tool in tools:
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None, tool.name
        assert tool.description and len(tool.description) > 40, tool.name
    names = {t.name for t in tools}
    assert {"place_on_background", "resize_image", "crop_image", "convert_image", "get_job", "cancel_job"} <= names


async def test_result_ids_complete_from_recent_results(client: Client, workdir: Path) -> None:
    from mcp_types import ResourceTemplateReference

    (workdir / "a.png").write_bytes(image_bytes(20, 20, "png"))
    result = await client.call_tool("resize_image", {"image": str(workdir / "a.png"), "width": 10})
    result_id = result.structured_content["images"][0]["id"]
    ref = ResourceTemplateReference(type="ref/resource", uri="photo://results/{result_id}")
    completed = await client.complete(ref, {"name": "result_id", "value": result_id[:3]})
    assert result_id in completed.completion.values
    none = await client.complete(ref, {"name": "result_id", "value": "zzzz"})
    assert none.completion.values == []


async def test_a_css_colour_with_dots_is_a_colour_not_a_path(client: Client, workdir: Path) -> None:
    """Regression: 'hsl(120.5, …)' has a dot, so it was resolved as a file path and refused."""
    src = workdir / "cutout.png"
    src.write_bytes(image_bytes(40, 40, "png", transparent=True))
    result = await client.call_tool(
        "place_on_background", {"image": str(src), "background": "hsl(120.5, 100%, 25%)", "size": 100}
    )
    assert not result.is_error, result.content
    with _open(result.structured_content["images"][0]["path"]) as img:
        assert img.convert("RGB").getpixel((1, 1)) == ImageColor.getrgb("hsl(120.5, 100%, 25%)")


async def test_place_on_background_size_does_not_depend_on_the_cut_out(client: Client, workdir: Path) -> None:
    """A 1200×900 photo on a square: 1200×1200 whether it was cut out first or placed as it is."""
    src = workdir / "photo.jpg"
    src.write_bytes(image_bytes(1200, 900, "jpeg"))
    sizes = set()
    for cut in (False, None):  # None: cut out automatically when the offline extra is installed
        result = await client.call_tool("place_on_background", {"image": str(src), "cut_out": cut})
        assert not result.is_error, result.content
        (image,) = result.structured_content["images"]
        sizes.add((image["width"], image["height"]))
        assert "Long side 1200 px (the input image's long side" in result.structured_content["message"]
    assert sizes == {(1200, 1200)}


async def test_inline_images_of_one_result_fit_the_budget(tmp_path: Path, workdir: Path) -> None:
    """A noisy image, PHOTO_MCP_PREVIEW=full and a small budget: the result still fits, and says so."""
    noise = Image.frombytes("RGB", (900, 700), os.urandom(900 * 700 * 3))
    noise.save(workdir / "noise.png")
    settings = make_settings(tmp_path, preview="full", max_inline_bytes=64 * 1024)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("convert_image", {"image": str(workdir / "noise.png"), "format": "png"})
    assert not result.is_error, result.content
    assert len(result.model_dump_json(by_alias=True, exclude_none=True)) <= 64 * 1024
    (preview,) = [b for b in result.content if b.type == "image"]
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as img:
        assert max(img.size) >= 96 and img.getbbox() is not None  # a real, smaller picture
    assert "reduced to fit a client's 1 MiB limit" in result.content[0].text
    assert Path(result.structured_content["images"][0]["path"]).stat().st_size > 1024 * 1024  # the file is whole


async def test_a_size_bounded_copy_of_any_result_can_be_read(client: Client, workdir: Path) -> None:
    (workdir / "big.png").write_bytes(image_bytes(1600, 1000))
    result = await client.call_tool("convert_image", {"image": str(workdir / "big.png"), "format": "jpeg"})
    uri = result.structured_content["images"][0]["uri"]
    small = await client.read_resource(uri + "?max_side=400")
    with Image.open(io.BytesIO(base64.b64decode(small.contents[0].blob))) as img:
        assert img.size == (400, 250) and small.contents[0].mime_type == "image/jpeg"
    with pytest.raises(MCPError, match="max_side='huge': use a whole number of pixels"):
        await client.read_resource(uri + "?max_side=huge")


async def test_a_box_that_misses_the_image_is_an_error(client: Client, workdir: Path) -> None:
    """Regression: a box wholly outside the photo 'succeeded' and changed nothing."""
    (workdir / "a.png").write_bytes(image_bytes(40, 30))
    result = await client.call_tool(
        "remove_object", {"image": str(workdir / "a.png"), "boxes": [[100, 100, 200, 200]], "provider": "local"}
    )
    assert result.is_error and result.structured_content is None
    assert "outside the 40×30 image" in result.content[0].text
