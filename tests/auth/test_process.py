"""`photo-mcp --transport http` configured for OAuth by its environment, as an operator runs it.

- every OAuth setting comes from PHOTO_MCP_OAUTH_* variables; the process serves the metadata,
  refuses without a token, and works with one (and with the static token beside it);
- it binds a non-loopback address with OAuth alone (no static token needed);
- without a URL for itself it stops at once, exit 2, naming the variable to set;
- no token and no key appears in its log, even at DEBUG.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from server.auth import OAuthConfigError, oauth_gate
from server.security import check_bind
from tests.auth.conftest import STATIC_TOKEN, data_uri, session, text_of
from tests.auth.issuer import Issuer
from tests.conftest import make_settings
from tests.support import free_port, server_env


@asynccontextmanager
async def serving(tmp_path: Path, port: int, env: dict[str, str]) -> AsyncIterator[None]:
    """`photo-mcp --transport http --port PORT` with `env`, until /healthz answers; stderr to server.log."""
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--transport", "http", "--port", str(port)],
            env=server_env(tmp_path, **env),
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd="/",
        )
    try:
        async with httpx2.AsyncClient() as http:
            while True:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def test_the_process_is_a_resource_server_from_its_environment(tmp_path: Path, issuer: Issuer) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "PHOTO_MCP_PUBLIC_URL": base,
        "PHOTO_MCP_OAUTH_ISSUER": issuer.url,
        "PHOTO_MCP_OAUTH_REQUIRED_SCOPES": "photo:read",
        "PHOTO_MCP_AUTH_TOKEN": STATIC_TOKEN,
        "PHOTO_MCP_LOG_LEVEL": "DEBUG",
    }
    with anyio.fail_after(90):
        async with serving(tmp_path, port, env):
            served_base = base
            token = issuer.mint(sub="ann", aud=served_base + "/mcp")
            async with httpx2.AsyncClient() as http:
                refused = await http.post(served_base + "/mcp", json={})
                assert refused.status_code == 401
                assert "resource_metadata=" in refused.headers["www-authenticate"]
            async with session(served_base + "/mcp", token) as mcp:
                made = await mcp.call_tool("resize_image", {"image": data_uri(), "width": 16})
                assert not made.is_error, text_of(made)
            async with session(served_base + "/mcp", STATIC_TOKEN) as mcp:
                assert not [r for r in (await mcp.list_resources()).resources if "results/" in str(r.uri)]
        log = (tmp_path / "server.log").read_text()
    assert token not in log and STATIC_TOKEN not in log
    assert token.split(".")[2] not in log  # not even the signature part


def test_oauth_alone_allows_a_non_loopback_bind(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, transport="http", oauth_issuer="https://id.example.com")
    check_bind(settings, "0.0.0.0")  # no InsecureBind: OAuth tokens are required there


def test_without_its_own_url_it_stops_and_names_the_variable(tmp_path: Path) -> None:
    env = server_env(tmp_path, PHOTO_MCP_OAUTH_ISSUER="https://id.example.com")
    done = subprocess.run(
        [sys.executable, "-m", "server", "--transport", "http", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 2, done.stderr
    assert "PHOTO_MCP_PUBLIC_URL" in done.stderr and "PHOTO_MCP_OAUTH_AUDIENCE" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_issuers_endpoints_must_be_https_off_loopback(tmp_path: Path) -> None:
    for setting in ("oauth_issuer", "oauth_jwks_url", "oauth_introspection_url"):
        values = {"oauth_issuer": "https://id.example.com", setting: "http://id.example.com/x"}
        settings = make_settings(tmp_path, transport="http", public_url="https://photos.example.com", **values)
        with pytest.raises(OAuthConfigError, match=f"PHOTO_MCP_{setting.upper()} must be an https"):
            oauth_gate(lambda *_: None, settings, "http")  # type: ignore[arg-type]


def test_doctor_reports_the_oauth_setup(tmp_path: Path, issuer: Issuer) -> None:
    def doctor(**env: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "server", "doctor"],
            env=server_env(tmp_path, **env),
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        return done.stdout

    assert "oauth:         off" in doctor()
    report = doctor(
        PHOTO_MCP_OAUTH_ISSUER=issuer.url,
        PHOTO_MCP_PUBLIC_URL="https://photos.example.com",
        PHOTO_MCP_MAX_CREDITS_PER_DAY_PER_USER="5",
    )
    assert f"issuer {issuer.url}; audience https://photos.example.com/mcp" in report
    assert "JWT signatures" in report and f"metadata at {issuer.url}/.well-known/oauth-authorization-server" in report
    assert "per person per day 5.0" in report
    assert "MISCONFIGURED" in doctor(PHOTO_MCP_OAUTH_ISSUER=issuer.url)  # no URL of its own
