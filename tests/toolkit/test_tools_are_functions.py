"""Every tool is a plain module-level function: importable, callable with a `Call`, registered once."""

from __future__ import annotations

import importlib
from pathlib import Path

from mcp import Client
from PIL import Image

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tools import CATALOGUE
from tools.local import resize_image
from tools.runtime import open_runtime
from tools.toolkit.declare import spec_of, tools_of
from tools.toolkit.run import Call


async def test_the_catalogue_is_exactly_what_the_server_lists(tmp_path: Path) -> None:
    declared = [spec_of(fn).name for name in CATALOGUE for fn in tools_of(importlib.import_module(name))]
    async with Client(build_server(make_settings(tmp_path))) as client:
        listed = [t.name for t in (await client.list_tools()).tools]
    # The catalogue's tools, in its order; beyond them only the viewer extension's own tools.
    assert [n for n in listed if n in declared] == declared and len(set(declared)) == len(declared)
    assert set(listed) - set(declared) <= {"pick_image"}
    for name in CATALOGUE:
        for fn in tools_of(importlib.import_module(name)):
            assert fn.__qualname__ == fn.__name__, f"{fn.__name__} is not module-level"


async def test_a_tool_called_directly_with_a_call_of_its_own(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(200, 100))
    seen: list[tuple[float, str | None]] = []

    async def report(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, message))

    async with open_runtime(make_settings(tmp_path)) as rt:
        result = await resize_image(Call(rt, report), image=str(work / "a.png"), max_side=50)
    assert not result.is_error, result.content
    (image,) = result.structured_content["images"]
    with Image.open(image["path"]) as img:
        assert img.size == (50, 25)
    assert result.structured_content["provider"] == "local" and seen and seen[-1][0] == 100
