"""Signed download links, for remote clients that cannot read MCP resources.

With PHOTO_MCP_PUBLIC_URL set, every result image also carries

    {public_url}/files/{result_id}?exp={unix seconds}&sig={HMAC-SHA256(key, "{id}:{exp}")}

in the text and in `structured_content.images[].url`. The HTTP transports serve `/files/`
without the bearer token: the signature is the credential, so an expired, altered or unsigned
link gets 403 (an unknown id with a valid signature, 404). The key is PHOTO_MCP_LINK_KEY, or one
generated on first use and kept in the data dir (owner-only), so every process sharing the
data dir signs and checks alike. Links live PHOTO_MCP_LINK_TTL seconds (default 1 h).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mcp_types import CallToolResult, TextContent
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from tools.core.errors import NotFound
from tools.core.settings import Settings

log = logging.getLogger("photo_mcp.links")
ROUTE_PREFIX = "/files/"
KEY_FILE = "link-key"
_keys: dict[tuple[str, str | None], bytes] = {}


def _load_or_create(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temp file, then linked in: a racing process either wins or reads ours.
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def signing_key(settings: Settings) -> bytes:
    configured = settings.link_key.get_secret_value() if settings.link_key is not None else None
    cache_key = (str(settings.data_dir.expanduser()), configured)
    key = _keys.get(cache_key)
    if key is None:
        if configured and configured.strip():
            key = configured.strip().encode()
        else:
            key = _load_or_create(settings.data_dir.expanduser() / KEY_FILE)
        _keys[cache_key] = key
    return key


def _sign(key: bytes, result_id: str, expires: int) -> str:
    return hmac.new(key, f"{result_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(settings: Settings, result_id: str, *, now: float | None = None, ttl: float | None = None) -> str:
    """The download link of `result_id`, valid `ttl` seconds (default PHOTO_MCP_LINK_TTL)."""
    assert settings.public_url is not None
    expires = int((time.time() if now is None else now) + (settings.link_ttl if ttl is None else ttl))
    sig = _sign(signing_key(settings), result_id, expires)
    base = settings.public_url.rstrip("/")
    return f"{base}{ROUTE_PREFIX}{quote(result_id, safe='')}?exp={expires}&sig={sig}"


def verify(settings: Settings, result_id: str, exp: str, sig: str) -> bool:
    """True for an unexpired link this server (or one sharing its key) signed."""
    try:
        expires = int(exp)
    except ValueError:
        return False
    expected = _sign(signing_key(settings), result_id, expires)
    return hmac.compare_digest(expected, sig) and expires >= time.time()


def _ttl_words(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def attach(result: Any, settings: Settings) -> Any:
    """`result` with a signed link per image (text and structured content), when a public URL is set."""
    if settings.public_url is None or not isinstance(result, CallToolResult):
        return result
    sc = result.structured_content
    images = sc.get("images") if isinstance(sc, dict) else None
    if not images:
        return result
    lines = []
    for image in images:
        if isinstance(image, dict) and image.get("id"):
            image["url"] = signed_url(settings, image["id"])
            lines.append(f"- download (link valid {_ttl_words(settings.link_ttl)}): {image['url']}")
    if lines and result.content and isinstance(result.content[0], TextContent):
        first = result.content[0]
        result.content[0] = TextContent(type="text", text=first.text + "\n" + "\n".join(lines))
    return result


def check_public_url(settings: Settings) -> None:
    """Warn when links would travel in clear text: PHOTO_MCP_PUBLIC_URL should be https:// off loopback."""
    url = settings.public_url
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("PHOTO_MCP_PUBLIC_URL is not https://: download links (bearer capabilities) travel unencrypted.")


def register_routes(server: Any) -> None:
    """Serve `/files/{result_id}` on `server`'s HTTP apps (PhotoServer: its runtime opens with them)."""

    check_public_url(server.photo_settings)

    @server.custom_route(ROUTE_PREFIX + "{result_id}", methods=["GET"])
    async def download(request: Request) -> Response:
        settings: Settings = server.photo_settings
        result_id = request.path_params["result_id"]
        exp, sig = request.query_params.get("exp", ""), request.query_params.get("sig", "")
        if settings.public_url is None or not verify(settings, result_id, exp, sig):
            return JSONResponse({"error": "forbidden", "message": "This link is invalid or has expired."}, 403)
        runtime = server.runtime
        if runtime is None:
            return JSONResponse({"error": "unavailable"}, 503)
        try:
            record = await runtime.store.get(result_id)
        except NotFound:
            return JSONResponse({"error": "not_found", "message": "This result no longer exists."}, 404)
        remaining = max(0, int(exp) - int(time.time()))
        return FileResponse(
            record.path,
            media_type=record.mime_type,
            filename=record.name,
            headers={"Cache-Control": f"private, max-age={remaining}"},
        )
