"""One session of the released Python `mcp` 1.x client against photo-mcp, for tests/test_compat_clients.py.

Runs in its own venv (mcp 1.9.x, pydantic<2.12), never in the project's:
    python py_mcp1_client.py '<config JSON>'
    config: {transport: "stdio"|"sse"|"http", command, args, env, cwd, url, headers, image, tool?, arguments?}
Connects, lists tools, calls resize_image on `image` (or `tool` with `arguments`), reads the
result resource, and prints one JSON report on stdout. The report also lists every field of
the raw wire responses that this client version's own schema (its `mcp.types` models) does
not define.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from importlib.metadata import version
from typing import Any

import anyio
import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.message import SessionMessage
from pydantic import BaseModel

config = json.loads(sys.argv[1])
report: dict[str, Any] = {"sdk": version("mcp"), "transport": config["transport"], "unknownFields": []}
pending: dict[Any, str] = {}


def _fields(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def _unknown(obj: Any, model: type[BaseModel], where: str) -> None:
    if isinstance(obj, dict):
        report["unknownFields"].extend(f"{where}.{k}" for k in obj if k not in _fields(model))


CONTENT = {"text": types.TextContent, "image": types.ImageContent, "resource": types.EmbeddedResource}
if hasattr(types, "AudioContent"):
    CONTENT["audio"] = types.AudioContent


def _check(method: str, result: dict[str, Any]) -> None:
    if method == "initialize":
        report["protocolVersion"] = result.get("protocolVersion")
        _unknown(result, types.InitializeResult, "initialize")
        _unknown(result.get("serverInfo"), types.Implementation, "initialize.serverInfo")
        _unknown(result.get("capabilities"), types.ServerCapabilities, "initialize.capabilities")
    elif method == "tools/list":
        _unknown(result, types.ListToolsResult, "tools/list")
        for tool in result.get("tools", []):
            _unknown(tool, types.Tool, f"tools/list.{tool.get('name')}")
            if hasattr(types, "ToolAnnotations"):
                _unknown(tool.get("annotations"), types.ToolAnnotations, f"tools/list.{tool.get('name')}.annotations")
    elif method == "tools/call":
        _unknown(result, types.CallToolResult, "tools/call")
        for block in result.get("content", []):
            model = CONTENT.get(block.get("type"))
            if model is None:
                report["unknownFields"].append(f"tools/call.content[type={block.get('type')}]")
            else:
                _unknown(block, model, f"tools/call.content[{block['type']}]")
    elif method == "resources/read":
        _unknown(result, types.ReadResourceResult, "resources/read")


async def _tap_in(src, dst) -> None:
    async with dst:
        async for item in src:
            if isinstance(item, SessionMessage):
                raw = item.message.model_dump(by_alias=True, exclude_none=True)
                if "result" in raw and raw.get("id") in pending:
                    _check(pending[raw["id"]], raw["result"])
            await dst.send(item)


async def _tap_out(src, dst) -> None:
    async with dst:
        async for item in src:
            raw = item.message.model_dump(by_alias=True, exclude_none=True)
            if "method" in raw and "id" in raw:
                pending[raw["id"]] = raw["method"]
            await dst.send(item)


def _transport():
    if config["transport"] == "stdio":
        params = StdioServerParameters(
            command=config["command"], args=config["args"], env=config["env"], cwd=config["cwd"]
        )
        return stdio_client(params)
    if config["transport"] == "sse":
        return sse_client(config["url"], headers=config.get("headers"))
    return streamablehttp_client(config["url"], headers=config.get("headers"))


async def _session(session: ClientSession) -> None:
    init = await session.initialize()
    report["serverVersion"] = init.serverInfo.model_dump(exclude_none=True)
    report["tools"] = [t.name for t in (await session.list_tools()).tools]
    try:
        arguments = config.get("arguments") or {"image": config["image"], "width": 20}
        result = await session.call_tool(config.get("tool") or "resize_image", arguments)
    except Exception as exc:  # the report says what the client rejected
        report["callError"] = f"{type(exc).__name__}: {exc}"
        return
    text = "\n".join(b.text for b in result.content if b.type == "text")
    report["call"] = {
        "isError": result.isError,
        "types": [b.type for b in result.content],
        "text": text,
        "images": [{"mimeType": b.mimeType, "bytes": len(b.data)} for b in result.content if b.type == "image"],
        "structuredContent": getattr(result, "structuredContent", None),
    }
    if match := re.search(r"photo://results/[A-Za-z0-9_-]+", text):
        read = await session.read_resource(match.group(0))  # type: ignore[arg-type]
        report["read"] = [
            {"uri": str(c.uri), "mimeType": c.mimeType, "blobPrefix": getattr(c, "blob", "")[:12]}
            for c in read.contents
        ]


async def main() -> None:
    async with _transport() as streams:
        read, write = streams[0], streams[1]
        in_send, in_recv = anyio.create_memory_object_stream(100)
        out_send, out_recv = anyio.create_memory_object_stream(100)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_tap_in, read, in_send)
            tg.start_soon(_tap_out, out_recv, write)
            async with ClientSession(in_recv, out_send) as session:
                await _session(session)
            tg.cancel_scope.cancel()


try:
    anyio.run(main)
except Exception:
    report.setdefault("error", traceback.format_exc())
print(json.dumps(report))
