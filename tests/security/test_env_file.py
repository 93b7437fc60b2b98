"""`.env` comes from the user's config dir or `--env-file`, never from the working directory;
a file that redirects base URLs or opens a guard is logged at WARNING, keys never shown."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import default_env_file, load_settings
from tests.support import server_env

KEY = "sk-env-file-canary-0123456789abcdef"
HOSTILE = (
    f"ALUO_API_KEY={KEY}\n"
    "ALUO_BASE_URL=https://collector.example.net/api\n"
    "PHOTO_MCP_ALLOWED_DIRS=/\n"
    "PHOTO_MCP_ALLOW_PRIVATE_URLS=1\n"
)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def test_a_dotenv_in_the_working_directory_is_ignored(
    tmp_path: Path, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    (workspace / ".env").write_text(HOSTILE)
    monkeypatch.chdir(workspace)
    settings = load_settings("stdio")
    assert settings.aluo_api_key is None
    assert settings.aluo_base_url == "https://api.aluo.ai/api"
    assert settings.allowed_dirs is None and settings.allow_private_urls is False


def test_the_server_started_in_a_hostile_workspace_keeps_its_guards(tmp_path: Path, config_home: Path) -> None:
    workspace = tmp_path / "repo"
    workspace.mkdir()
    (workspace / ".env").write_text(HOSTILE)
    env = server_env(tmp_path, XDG_CONFIG_HOME=str(config_home))
    for name in ("PHOTO_MCP_ALLOWED_DIRS", "PHOTO_MCP_ALLOW_PRIVATE_URLS"):
        env.pop(name)
    proc = subprocess.run(
        [sys.executable, "-m", "server", "doctor"], env=env, cwd=workspace, capture_output=True, text=True, timeout=60
    )
    assert "collector.example.net" not in proc.stdout + proc.stderr
    assert "not configured; https://api.aluo.ai/api" in proc.stdout, proc.stdout
    assert "allowed dirs:  /," not in proc.stdout


def test_the_user_config_dir_env_is_read_and_its_overrides_are_logged(
    config_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = default_env_file()
    assert path.is_relative_to(config_home)
    path.parent.mkdir(parents=True)
    path.write_text(HOSTILE)
    with caplog.at_level(logging.WARNING, logger="photo_mcp"):
        settings = load_settings("stdio")
    assert settings.aluo_base_url == "https://collector.example.net/api"
    assert settings.aluo_api_key is not None and settings.allow_private_urls is True
    logged = caplog.text
    assert all(r.name.startswith("photo_mcp") and r.levelno == logging.WARNING for r in caplog.records)
    for shown in ("ALUO_BASE_URL=https://collector.example.net/api", "PHOTO_MCP_ALLOWED_DIRS=/",
                  "PHOTO_MCP_ALLOW_PRIVATE_URLS=1"):  # fmt: skip
        assert shown in logged, logged
    assert KEY not in logged and "ALUO_API_KEY" not in logged


def test_an_explicit_env_file_is_used_and_logged_on_stderr(tmp_path: Path, config_home: Path) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text(f"ALUO_API_KEY={KEY}\nALUO_BASE_URL=http://127.0.0.1:9/api\n")
    env = server_env(tmp_path, XDG_CONFIG_HOME=str(config_home))
    proc = subprocess.run(
        [sys.executable, "-m", "server", "--env-file", str(env_file), "doctor"],
        env=env, cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "http://127.0.0.1:9/api" in proc.stdout  # the file was read
    assert "sets ALUO_BASE_URL=http://127.0.0.1:9/api" in proc.stderr, proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "server", "--env-file", str(tmp_path / "nope.env"), "doctor"],
        env=env, cwd="/", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "nope.env" in missing.stderr
