"""Fixtures of the MCP Apps tests: the host bundle (built once per session)."""

from __future__ import annotations

import pytest

from tests.apps.harness import build_host_bundle, require_browser


@pytest.fixture(scope="session")
def host_bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_browser()
    return build_host_bundle(tmp_path_factory.mktemp("host"))
