"""Results shaped for the protocol version a client negotiated.

The SDK validates every handshake-era result against the 2025-11-25 schema, so a client that
negotiated 2024-11-05 or 2025-03-26 receives fields and content blocks its own schema does not
have. Unknown fields are mostly ignored by clients, but an unknown content block is not:
TypeScript SDK 1.10/1.12 and Python `mcp` 1.9 reject a whole tool result that holds a
`resource_link` (2025-06-18+) — after a paid job has already run.

`shape_for_version` rewrites a wire result down to what the negotiated revision defines:

| added in   | what                                                                     |
|------------|--------------------------------------------------------------------------|
| 2025-03-26 | tool `annotations`, audio content, `completions` capability              |
| 2025-06-18 | `resource_link`, `structuredContent`, `outputSchema`, `title`, `_meta` on |
|            | tools/prompts/content/resources, `annotations.lastModified`               |
| 2025-11-25 | `icons`, tool `execution`, serverInfo `description`/`websiteUrl`, `tasks`  |

A dropped `resource_link` is not lost: its `photo://` URI and file path are said in the text
(the inline preview image stays). `OlderProtocolShaping` is the server middleware that applies
it to every response; newer connections pass through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext

V2024_11 = "2024-11-05"
V2025_03 = "2025-03-26"
V2025_06 = "2025-06-18"
SHAPED_VERSIONS = (V2024_11, V2025_03, V2025_06)
"""Older revisions whose results are rewritten; 2025-11-25 and later are the SDK's own shape."""

_ORDER = {v: i for i, v in enumerate(SHAPED_VERSIONS)}


def _since(version: str, added: str) -> bool:
    return _ORDER[version] >= _ORDER[added]


def _tool_fields(v: str) -> set[str]:
    fields = {"name", "description", "inputSchema"}
    if _since(v, V2025_03):
        fields.add("annotations")
    if _since(v, V2025_06):
        fields |= {"title", "outputSchema", "_meta"}
    return fields


_TOOL_ANNOTATION_FIELDS = {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
_CONTENT_FIELDS = {
    "text": {"type", "text", "annotations"},
    "image": {"type", "data", "mimeType", "annotations"},
    "audio": {"type", "data", "mimeType", "annotations"},
    "resource": {"type", "resource", "annotations"},
    "resource_link": {"type", "uri", "name", "title", "description", "mimeType", "size", "annotations"},
}
_CONTENT_SINCE = {"audio": V2025_03, "resource_link": V2025_06}


def _meta_since(v: str) -> set[str]:
    return {"_meta"} if _since(v, V2025_06) else set()


def _pick(obj: Mapping[str, Any], fields: set[str]) -> dict[str, Any]:
    return {k: value for k, value in obj.items() if k in fields}


def _annotations(obj: Mapping[str, Any], v: str) -> dict[str, Any]:
    fields = {"audience", "priority"} | ({"lastModified"} if _since(v, V2025_06) else set())
    return _pick(obj, fields)


def _resource_contents(obj: Mapping[str, Any], v: str) -> dict[str, Any]:
    return _pick(obj, {"uri", "mimeType", "text", "blob"} | _meta_since(v))


def _block(block: Mapping[str, Any], v: str) -> dict[str, Any] | None:
    """One content block in `v`'s shape, or None when `v` has no such block."""
    kind = block.get("type")
    if kind not in _CONTENT_FIELDS or not _since(v, _CONTENT_SINCE.get(kind, V2024_11)):
        return None
    out = _pick(block, _CONTENT_FIELDS[kind] | _meta_since(v))
    if isinstance(out.get("annotations"), Mapping):
        out["annotations"] = _annotations(out["annotations"], v)
    if kind == "resource" and isinstance(out.get("resource"), Mapping):
        out["resource"] = _resource_contents(out["resource"], v)
    return out


def _link_line(link: Mapping[str, Any], image: Mapping[str, Any]) -> str:
    facts = [str(link["mimeType"])] if link.get("mimeType") else []
    if link.get("size") is not None:
        facts.append(f"{link['size']} bytes")
    line = f"- {link['uri']}" + (f" → {image['path']}" if image.get("path") else "")
    line += f" ({', '.join(facts)})" if facts else ""
    return line + (f", download: {image['url']}" if image.get("url") else "")


def _call_tool_result(result: dict[str, Any], v: str) -> dict[str, Any]:
    structured = result.get("structuredContent")
    keep_structured = _since(v, V2025_06)
    images = structured.get("images") if isinstance(structured, Mapping) else None
    by_uri = {str(i["uri"]): i for i in images or [] if isinstance(i, Mapping) and "uri" in i}
    content: list[dict[str, Any]] = []
    links: list[Mapping[str, Any]] = []
    dropped: list[str] = []
    for block in result.get("content") or []:
        shaped = _block(block, v)
        if shaped is not None:
            content.append(shaped)
        elif block.get("type") == "resource_link" and block.get("uri"):
            links.append(block)
        else:
            dropped.append(str(block.get("type")))
    said = "\n".join(b["text"] for b in content if b["type"] == "text")
    missing = []
    for link in links:  # said already when the text names its URI, file path and download link
        image = by_uri.get(str(link["uri"]), {})
        facts = [str(link["uri"]), *(str(image[k]) for k in ("path", "url") if image.get(k))]
        if not all(fact in said for fact in facts):
            missing.append(_link_line(link, image))
    notes: list[str] = []
    if missing:
        notes.append("Results (pass the URI to any tool, or read it as a resource):\n" + "\n".join(missing))
    if dropped:
        notes.append(f"({', '.join(dropped)} content omitted: protocol {v} cannot carry it)")
    if structured is not None and not keep_structured and not said and not notes:
        notes.append(json.dumps(structured, ensure_ascii=False))  # the spec's fallback for structured output
    content.extend({"type": "text", "text": n} for n in notes)
    fields = {"content", "isError", "_meta"} | ({"structuredContent"} if keep_structured else set())
    out = _pick(result, fields)
    out["content"] = content
    return out


def _tool(tool: Mapping[str, Any], v: str) -> dict[str, Any]:
    out = _pick(tool, _tool_fields(v))
    if "annotations" in out:
        annotations = _pick(out["annotations"], _TOOL_ANNOTATION_FIELDS)
        if not _since(v, V2025_06) and tool.get("title") and "title" not in annotations:
            annotations["title"] = tool["title"]  # 2025-03-26 names a tool for display only here
        out["annotations"] = annotations
    return out


def _resource(res: Mapping[str, Any], v: str, key: str) -> dict[str, Any]:
    fields = {key, "name", "description", "mimeType", "annotations"}
    if key == "uri":
        fields.add("size")
    if _since(v, V2025_06):
        fields |= {"title", "_meta"}
    out = _pick(res, fields)
    if isinstance(out.get("annotations"), Mapping):
        out["annotations"] = _annotations(out["annotations"], v)
    return out


def _prompt(prompt: Mapping[str, Any], v: str) -> dict[str, Any]:
    extra = {"title", "_meta"} if _since(v, V2025_06) else set()
    out = _pick(prompt, {"name", "description", "arguments"} | extra)
    if isinstance(out.get("arguments"), list):
        arg_fields = {"name", "description", "required"} | ({"title"} if _since(v, V2025_06) else set())
        out["arguments"] = [_pick(a, arg_fields) for a in out["arguments"]]
    return out


def _prompt_message(message: Mapping[str, Any], v: str) -> dict[str, Any]:
    content = message.get("content") or {}
    shaped = _block(content, v)
    if shaped is None:  # one block per message: say a link in words, name anything else
        text = _link_line(content, {}) if content.get("uri") else f"({content.get('type')} content omitted)"
        shaped = {"type": "text", "text": text}
    return {"role": message.get("role"), "content": shaped}


def _initialize(result: dict[str, Any]) -> dict[str, Any]:
    v = result.get("protocolVersion")
    if v not in SHAPED_VERSIONS:
        return result
    out = dict(result)
    if isinstance(info := result.get("serverInfo"), Mapping):
        out["serverInfo"] = _pick(info, {"name", "version"} | ({"title"} if _since(v, V2025_06) else set()))
    if isinstance(caps := result.get("capabilities"), Mapping):
        fields = {"experimental", "logging", "prompts", "resources", "tools"}
        if _since(v, V2025_03):
            fields.add("completions")
        out["capabilities"] = _pick(caps, fields)
    return out


def shape_for_version(method: str, version: str, result: dict[str, Any]) -> dict[str, Any]:
    """`result` (a wire dict for `method`) as the protocol revision `version` defines it.

    Revisions from 2025-11-25 on, and methods this module does not know, pass through.
    """
    if method == "initialize":
        return _initialize(result)
    if version not in SHAPED_VERSIONS:
        return result
    out = dict(result)
    if method == "tools/call" and "content" in result:
        return _call_tool_result(result, version)
    if method == "tools/list":
        out["tools"] = [_tool(t, version) for t in result.get("tools", [])]
    elif method == "resources/list":
        out["resources"] = [_resource(r, version, "uri") for r in result.get("resources", [])]
    elif method == "resources/templates/list":
        out["resourceTemplates"] = [_resource(r, version, "uriTemplate") for r in result.get("resourceTemplates", [])]
    elif method == "prompts/list":
        out["prompts"] = [_prompt(p, version) for p in result.get("prompts", [])]
    elif method == "prompts/get":
        out["messages"] = [_prompt_message(m, version) for m in result.get("messages", [])]
    elif method == "resources/read":
        out["contents"] = [_resource_contents(c, version) for c in result.get("contents", [])]
    return out


class OlderProtocolShaping(ServerMiddleware[Any]):
    """Server middleware: every response in the shape of the connection's protocol version."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.request_id is None or not isinstance(result, dict):
            return result
        return shape_for_version(ctx.method, ctx.protocol_version, result)


def install(server: Any) -> None:
    """Add the shaping to `server` (an MCPServer): its one hook into the server."""
    server.middleware.append(OlderProtocolShaping())
