""" "Install the offline extra" gives the command that works for how photo-mcp was installed.

The install records are real ones: a `*.dist-info` directory with the PEP 610 `direct_url.json`
pip writes, read through `importlib.metadata`, and a pipx venv's `pipx_metadata.json`. The
command for this very environment is run (pip --dry-run, offline) to prove it works.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest

from tools.providers.local import INSTALL_HINT, LocalAIUnavailable, status
from tools.providers.local.install import install_command

ROOT = Path(__file__).resolve().parent.parent
PY = "/home/me/.venvs/photo/bin/python"


def _dist(tmp_path: Path, direct_url: dict | None) -> PathDistribution:
    info = tmp_path / "site" / "photo_mcp-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: photo-mcp\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return PathDistribution(info)


def _venv(tmp_path: Path, *, pipx: bool) -> Path:
    prefix = tmp_path / "venv"
    prefix.mkdir()
    (prefix / "pyvenv.cfg").write_text("home = /usr/bin\n")
    if pipx:
        (prefix / "pipx_metadata.json").write_text(json.dumps({"main_package": {"package": "photo-mcp"}}))
    return prefix


CLONE = "/home/me/src/photo mcp"  # a space: the path must come out quoted
CASES = [
    ("editable clone", {"url": "file:///home/me/src/photo%20mcp", "dir_info": {"editable": True}}, False,
     f"{PY} -m pip install -e '{CLONE}[local]'"),
    ("clone", {"url": "file:///home/me/src/photo%20mcp", "dir_info": {}}, False,
     f"{PY} -m pip install '{CLONE}[local]'"),
    ("pipx from a clone", {"url": "file:///home/me/src/photo%20mcp", "dir_info": {}}, True,
     f"pipx install --force '{CLONE}[local]'"),
    ("pipx editable", {"url": "file:///home/me/src/photo%20mcp", "dir_info": {"editable": True}}, True,
     f"pipx install --force --editable '{CLONE}[local]'"),
    ("git", {"url": "https://example.com/photo-mcp.git", "vcs_info": {"vcs": "git", "commit_id": "ab12"}}, False,
     f"{PY} -m pip install 'photo-mcp[local] @ git+https://example.com/photo-mcp.git'"),
    ("wheel file", {"url": "file:///tmp/photo_mcp-0.1.0-py3-none-any.whl", "archive_info": {}}, False,
     f"{PY} -m pip install 'photo-mcp[local] @ file:///tmp/photo_mcp-0.1.0-py3-none-any.whl'"),
    ("package index", None, False, f"{PY} -m pip install 'photo-mcp[local]'"),
    ("pipx from an index", None, True, "pipx install --force 'photo-mcp[local]'"),
]  # fmt: skip


@pytest.mark.parametrize(("how", "direct_url", "pipx", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_command_matches_the_installation(
    tmp_path: Path, how: str, direct_url: dict | None, pipx: bool, expected: str
) -> None:
    dist = _dist(tmp_path, direct_url)
    assert install_command("local", dist=dist, prefix=_venv(tmp_path, pipx=pipx), executable=PY) == expected


def test_every_message_gives_the_command_for_this_installation() -> None:
    assert install_command("local") == INSTALL_HINT
    assert INSTALL_HINT in str(LocalAIUnavailable("cannot import cv2"))
    assert status().startswith("installed") or INSTALL_HINT in status()  # doctor names it when missing


def test_the_command_for_this_environment_works() -> None:
    """This venv's own command, run by pip in dry-run mode (offline: everything is installed)."""
    words = shlex.split(INSTALL_HINT)
    assert words[:4] == [sys.executable, "-m", "pip", "install"]
    if "-e" in words:  # CI and the README's test setup: an editable install of this clone
        assert words[-1] == f"{ROOT}[local]"
    done = subprocess.run(
        [*words[:4], "--dry-run", "--no-index", "--no-build-isolation", *words[4:]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Would install photo-mcp" in done.stdout
