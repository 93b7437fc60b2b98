"""Results in the shape of the negotiated protocol version, on the wire of a real stdio server.

Raw JSON-RPC (no SDK client, which would itself reshape or reject) to `photo-mcp` as a
subprocess: every field of every answer must be one the negotiated revision's schema defines.
The per-revision field sets below restate the official schemas (schema/<version>/schema.json).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from server.compat import shape_for_version
from tests.fakes.images import image_bytes
from tests.support import server_env

SPEC: dict[str, dict[str, set[str]]] = {
    "2024-11-05": {
        "tool": {"name", "description", "inputSchema"},
        "call": {"content", "isError", "_meta"},
        "blocks": {"text", "image", "resource"},
        "block": {"type", "text", "data", "mimeType", "annotations", "resource"},
        "resource": {"uri", "name", "description", "mimeType", "annotations", "size"},
        "template": {"uriTemplate", "name", "description", "mimeType", "annotations"},
        "serverInfo": {"name", "version"},
        "capabilities": {"experimental", "logging", "prompts", "resources", "tools"},
        "prompt": {"name", "description", "arguments"},
        "argument": {"name", "description", "required"},
    },
    "2025-03-26": {
        "tool": {"name", "description", "inputSchema", "annotations"},
        "call": {"content", "isError", "_meta"},
        "blocks": {"text", "image", "audio", "resource"},
        "block": {"type", "text", "data", "mimeType", "annotations", "resource"},
        "resource": {"uri", "name", "description", "mimeType", "annotations", "size"},
        "template": {"uriTemplate", "name", "description", "mimeType", "annotations"},
        "serverInfo": {"name", "version"},
        "capabilities": {"experimental", "logging", "prompts", "resources", "tools", "completions"},
        "prompt": {"name", "description", "arguments"},
        "argument": {"name", "description", "required"},
    },
    "2025-06-18": {
        "tool": {"name", "title", "description", "inputSchema", "outputSchema", "annotations", "_meta"},
        "call": {"content", "isError", "_meta", "structuredContent"},
        "blocks": {"text", "image", "audio", "resource", "resource_link"},
        "block": {"type", "text", "data", "mimeType", "annotations", "resource", "_meta"}
        | {"uri", "name", "title", "description", "size"},
        "resource": {"uri", "name", "title", "description", "mimeType", "annotations", "size", "_meta"},
        "template": {"uriTemplate", "name", "title", "description", "mimeType", "annotations", "_meta"},
        "serverInfo": {"name", "title", "version"},
        "capabilities": {"experimental", "logging", "prompts", "resources", "tools", "completions"},
        "prompt": {"name", "title", "description", "arguments", "_meta"},
        "argument": {"name", "title", "description", "required"},
    },
}


class RawStdio:
    def __init__(self, proc: anyio.abc.Process) -> None:
        self.proc = proc
        self.buffer = b""
        self.next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin
        await self.proc.stdin.send((json.dumps(message) + "\n").encode())

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            message = json.loads(await self._line())
            if message.get("id") == self.next_id and "method" not in message:
                assert "result" in message, message
                return message["result"]

    async def _line(self) -> bytes:
        assert self.proc.stdout
        while b"\n" not in self.buffer:
            self.buffer += await self.proc.stdout.receive()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def _required(prompt: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: "a red ceramic mug" for a in prompt.get("arguments", []) if a.get("required")}


@pytest.mark.parametrize("version", list(SPEC))
async def test_every_answer_fits_the_negotiated_schema(tmp_path: Path, workdir: Path, version: str) -> None:
    (workdir / "in.png").write_bytes(image_bytes(40, 30, "png"))
    spec = SPEC[version]
    with anyio.fail_after(60):
        async with await anyio.open_process(
            [sys.executable, "-m", "server"], env=server_env(tmp_path), cwd="/", stderr=None
        ) as proc:
            rpc = RawStdio(proc)
            init = await rpc.request(
                "initialize",
                {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
            )
            await rpc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            tools = (await rpc.request("tools/list", {}))["tools"]
            call = await rpc.request(
                "tools/call", {"name": "resize_image", "arguments": {"image": str(workdir / "in.png"), "width": 20}}
            )
            resources = (await rpc.request("resources/list", {}))["resources"]
            templates = (await rpc.request("resources/templates/list", {}))["resourceTemplates"]
            prompts = (await rpc.request("prompts/list", {}))["prompts"]
            messages = [
                (await rpc.request("prompts/get", {"name": p["name"], "arguments": _required(p)}))["messages"]
                for p in prompts
            ]
            assert proc.stdin
            await proc.stdin.aclose()
    assert init["protocolVersion"] == version
    assert set(init["serverInfo"]) <= spec["serverInfo"]
    assert set(init["capabilities"]) <= spec["capabilities"]
    assert {"resize_image", "remove_background"} <= {t["name"] for t in tools}
    for tool in tools:
        assert set(tool) <= spec["tool"], tool["name"]
    assert set(call) <= spec["call"] and not call.get("isError")
    assert {b["type"] for b in call["content"]} <= spec["blocks"]
    for block in call["content"]:
        assert set(block) <= spec["block"]
    text = "\n".join(b["text"] for b in call["content"] if b["type"] == "text")
    (path,) = (tmp_path / "data" / "results").glob("*.png")
    assert "photo://results/" in text and str(path) in text  # the URI and the file, said in words
    assert [b["mimeType"] for b in call["content"] if b["type"] == "image"]  # the preview stays
    for resource in resources:
        assert set(resource) <= spec["resource"]
    for template in templates:
        assert set(template) <= spec["template"]
    for prompt in prompts:
        assert set(prompt) <= spec["prompt"], prompt["name"]
        for argument in prompt.get("arguments", []):
            assert set(argument) <= spec["argument"]
    for message in (m for ms in messages for m in ms):
        assert set(message) == {"role", "content"}
        assert message["content"]["type"] in spec["blocks"] and set(message["content"]) <= spec["block"]
    if version == "2025-03-26":  # the display name moves into the one place 2025-03-26 has for it
        resize = next(t for t in tools if t["name"] == "resize_image")
        assert resize["annotations"]["title"]


def test_a_link_the_text_does_not_name_is_said_in_words() -> None:
    result = {
        "content": [
            {"type": "text", "text": "done."},
            {
                "type": "resource_link",
                "uri": "photo://results/abc",
                "name": "a.png",
                "mimeType": "image/png",
                "size": 9,
            },
            {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png", "_meta": {"x": 1}},
        ],
        "structuredContent": {
            "images": [{"uri": "photo://results/abc", "path": "/data/a.png", "url": "https://h/files/abc?sig=1"}]
        },
        "isError": False,
    }
    shaped = shape_for_version("tools/call", "2024-11-05", result)
    assert set(shaped) == {"content", "isError"}
    assert [b["type"] for b in shaped["content"]] == ["text", "image", "text", "text"]
    assert shaped["content"][1] == {"type": "image", "data": "AAAA", "mimeType": "image/png"}
    line = "- photo://results/abc → /data/a.png (image/png, 9 bytes), download: https://h/files/abc?sig=1"
    assert line in shaped["content"][2]["text"]
    assert "audio content omitted" in shaped["content"][3]["text"]
    # From 2025-11-25 on the SDK's own shape goes out untouched.
    assert shape_for_version("tools/call", "2025-11-25", result) is result


def test_a_prompt_message_holding_a_link_says_it_in_words() -> None:
    result = {
        "messages": [{"role": "user", "content": {"type": "resource_link", "uri": "photo://results/a1", "name": "a"}}]
    }
    (message,) = shape_for_version("prompts/get", "2025-03-26", result)["messages"]
    assert message == {"role": "user", "content": {"type": "text", "text": "- photo://results/a1"}}


def test_structured_only_results_keep_their_data_as_json_text() -> None:
    result = {"content": [], "structuredContent": {"balance": 3}}
    shaped = shape_for_version("tools/call", "2025-03-26", result)
    assert shaped["content"] == [{"type": "text", "text": '{"balance": 3}'}]
