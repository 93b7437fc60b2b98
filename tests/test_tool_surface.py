"""The tool surface the model sees: titles, honest annotations, schemas, descriptions — and a
snapshot, so any change to it is visible in review.

Regenerate the snapshot after an intended change: UPDATE_SNAPSHOTS=1 pytest tests/test_tool_surface.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcp import Client

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools.json"
READ_ONLY = {"check_credits", "list_style_groups", "list_styles", "get_job"}
LOCAL_EDITS = {
    "place_on_background", "resize_image", "crop_image", "convert_image", "blur_background", "correct_colors",
}  # fmt: skip
PAID = {
    "remove_background", "edit_photo", "generate_product_photo", "generate_background", "try_hairstyle",
    "simulate_aging", "transfer_makeup", "remove_object", "colorize_photo", "enhance_photo", "generate_image",
}  # fmt: skip


async def _tools(client: Client) -> list[dict]:
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in (await client.list_tools()).tools]


async def test_every_tool_is_described_and_honestly_annotated(client: Client) -> None:
    tools = {t["name"]: t for t in await _tools(client)}
    assert set(tools) == READ_ONLY | LOCAL_EDITS | PAID | {"cancel_job", "pick_image"}
    for name, tool in tools.items():
        assert tool.get("title"), name
        assert len(tool["description"]) > 60 and "\n    " not in tool["description"], name
        assert "outputSchema" in tool, name
        for param, schema in tool["inputSchema"].get("properties", {}).items():
            assert schema.get("description"), f"{name}.{param} has no description"
            if param in ("image", "reference", "mask"):
                assert schema.get("examples") or any(a.get("examples") for a in schema.get("anyOf", [])), param
        hints = tool["annotations"]
        if name in READ_ONLY:
            assert hints["readOnlyHint"] is True and hints["idempotentHint"] is True, name
        elif name in LOCAL_EDITS:
            assert hints == {
                "readOnlyHint": False, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False,
            }, name  # fmt: skip
        elif name in PAID:
            assert hints["openWorldHint"] is True and hints["idempotentHint"] is False, name
            assert "credit" in tool["description"].lower() or "unit" in tool["description"].lower(), name


async def test_tool_list_matches_the_snapshot(client: Client) -> None:
    current = json.dumps(await _tools(client), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.read_text() == current, (
        "The tool surface changed. If intended, regenerate: UPDATE_SNAPSHOTS=1 pytest tests/test_tool_surface.py"
    )
