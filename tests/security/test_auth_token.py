"""An empty, whitespace-only or short PHOTO_MCP_AUTH_TOKEN never opens a public bind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.config import ConfigError, load_settings
from server.security import BearerAuth, InsecureBind, check_bind
from tests.support import server_env
from tools.core.settings import Settings


def _serve_public(tmp_path: Path, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
        env=server_env(tmp_path, PHOTO_MCP_AUTH_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


@pytest.mark.parametrize("token", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
def test_an_empty_token_is_no_token_and_a_public_bind_is_refused(tmp_path: Path, token: str) -> None:
    proc = _serve_public(tmp_path, token)
    assert proc.returncode == 2, proc.stderr
    assert "Refusing to listen on 0.0.0.0" in proc.stderr and "PHOTO_MCP_AUTH_TOKEN" in proc.stderr


def test_a_short_token_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    proc = _serve_public(tmp_path, "hunter2")
    assert proc.returncode == 2, proc.stderr
    assert "PHOTO_MCP_AUTH_TOKEN" in proc.stderr and "at least 16" in proc.stderr
    assert "hunter2" not in proc.stderr  # the value itself is never echoed
    with pytest.raises(ConfigError, match=r"PHOTO_MCP_AUTH_TOKEN.*at least 16"):
        load_settings("http", env_file=None, auth_token="x" * 15)


def test_the_token_is_stripped_and_counts_only_when_it_has_content() -> None:
    assert load_settings("http", auth_token="").auth_token is None
    padded = load_settings("http", auth_token="  " + "k" * 20 + "\n").auth_token
    assert padded is not None and padded.get_secret_value() == "k" * 20


def test_the_bind_check_and_the_middleware_do_not_trust_a_blank_token_either() -> None:
    # Settings built without validation (as a caller could): the bind rule still sees no token.
    blank = Settings.model_construct(auth_token=SecretStr("   "), transport="http")
    with pytest.raises(InsecureBind):
        check_bind(blank, "0.0.0.0")
    check_bind(blank, "127.0.0.1")  # loopback needs no token
    with pytest.raises(ValueError, match="at least 16"):
        BearerAuth(lambda *a: None, "")  # type: ignore[arg-type]
