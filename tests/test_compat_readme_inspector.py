"""The README's Inspector line: the absolute path of the installed command works; the bare name
fails (`spawn photo-mcp ENOENT`) unless the venv is on PATH — which is why the README gives the
absolute form. Runs the MCP Inspector CLI (CI installs it: PHOTO_MCP_INSPECTOR)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INSPECTOR = os.environ.get("PHOTO_MCP_INSPECTOR") or shutil.which("mcp-inspector")
if not INSPECTOR and os.environ.get("PHOTO_MCP_REQUIRE_INSPECTOR"):
    raise RuntimeError("PHOTO_MCP_REQUIRE_INSPECTOR is set but the MCP Inspector is not installed")
pytestmark = pytest.mark.skipif(not INSPECTOR, reason="MCP Inspector not installed (CI installs it)")
COMMAND = Path(sys.executable).parent / "photo-mcp"  # the console script of this venv


def _inspector(tmp_path: Path, target: str, path_env: str) -> subprocess.CompletedProcess[str]:
    assert INSPECTOR
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTO_MCP_") and k != "VIRTUAL_ENV"}
    env.update(PATH=path_env, MCP_CATALOG_PATH=str(tmp_path / "catalog.json"))
    return subprocess.run(
        [INSPECTOR, "--cli", "-e", f"PHOTO_MCP_DATA_DIR={tmp_path / 'data'}", target, "--method", "tools/list"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd="/",
    )


def test_the_absolute_path_form_works_and_the_bare_name_does_not(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node and COMMAND.exists()
    # PATH as a fresh shell has it: node, but not this venv's bin directory.
    path_env = os.pathsep.join(dict.fromkeys([str(Path(node).parent), "/usr/bin", "/bin"]))
    assert str(COMMAND.parent) not in path_env.split(os.pathsep)

    done = _inspector(tmp_path, str(COMMAND), path_env)
    assert done.returncode == 0, done.stderr + done.stdout
    tools = json.loads(done.stdout[done.stdout.index("{") :])["tools"]
    assert {"resize_image", "remove_background"} <= {t["name"] for t in tools}

    bare = _inspector(tmp_path, "photo-mcp", path_env)
    assert bare.returncode != 0
    assert "ENOENT" in bare.stdout + bare.stderr
