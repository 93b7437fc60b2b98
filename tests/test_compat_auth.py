"""A missing or wrong bearer token: 401 with `WWW-Authenticate` and a JSON message that says what to set.

Checked on the wire of `photo-mcp --transport http` and through a released client (TypeScript SDK
1.12, which shows the body of a failed request in its error), which is what a user sees.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from tests.clients.matrix import OLD_CLIENTS
from tests.support import http_subprocess
from tests.test_compat_clients import _require, _run

TOKEN = "auth-token-0123456789abcdef"


async def test_missing_and_wrong_tokens_say_what_to_set(tmp_path: Path) -> None:
    async with http_subprocess(tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=TOKEN) as base, httpx2.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        missing = await http.post(base + "/mcp", json=body)
        wrong = await http.post(base + "/mcp", json=body, headers={"Authorization": "Bearer not-the-token"})
        basic = await http.post(base + "/mcp", json=body, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    for answer in (missing, wrong, basic):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["www-authenticate"].startswith('Bearer realm="photo-mcp"')
        message = answer.json()["message"]
        assert "Authorization" in message and "Bearer <token>" in message and "PHOTO_MCP_AUTH_TOKEN" in message
        assert TOKEN not in answer.text
    assert missing.json()["error"] == basic.json()["error"] == "missing_token"
    assert "requires a bearer token" in missing.json()["message"]
    assert wrong.json()["error"] == "invalid_token"
    assert "does not match" in wrong.json()["message"]
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "error=" not in missing.headers["www-authenticate"]  # RFC 6750 §3: no error code without a token


@pytest.mark.parametrize("header", [None, "Bearer not-the-token"], ids=["missing", "wrong"])
async def test_a_real_client_shows_what_to_set(tmp_path: Path, header: str | None) -> None:
    (row,) = [r for r in OLD_CLIENTS if r.version.startswith("1.12")]
    command = _require(row)
    async with http_subprocess(tmp_path, "http", PHOTO_MCP_AUTH_TOKEN=TOKEN) as base:
        config = {
            "transport": "http",
            "url": base + "/mcp",
            "headers": {"Authorization": header} if header else {},
            "image": "/nowhere.png",
        }
        report = await _run(command, config)
    assert "401" in report["error"] and "PHOTO_MCP_AUTH_TOKEN" in report["error"]
    assert "Authorization" in report["error"]
