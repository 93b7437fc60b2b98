"""Shared fixtures: isolated settings (no env leaks), a server, an in-memory MCP client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from server.app import PhotoServer, build_server
from tools.core.settings import Settings

PROVIDER_VARS = (
    "ALUO_API_KEY",
    "ALUO_BASE_URL",
    "YOUCAM_API_KEY",
    "YOUCAM_SECRET_KEY",
    "YOUCAM_BASE_URL",
    "REMOVEDO_API_KEY",
    "REMOVEDO_BASE_URL",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PHOTO_MCP_") or name in PROVIDER_VARS:
            monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory the server may read (its allowed dir), holding the test's input images."""
    d = tmp_path / "work"
    d.mkdir()
    return d


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "allowed_dirs": [tmp_path / "work"],
        "wait_seconds": 20,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path, workdir: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def server(settings: Settings) -> PhotoServer:
    return build_server(settings)


@pytest.fixture
async def client(server: PhotoServer) -> AsyncIterator[Client]:
    async with Client(server) as c:
        yield c
