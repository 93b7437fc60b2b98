"""The distribution: wheel contents, console script, and the Claude Desktop example."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tools.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_exactly_server_and_tools(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("photo_mcp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"server", "tools"}
    assert {f"server/viewer/viewer.{ext}" for ext in ("html", "css", "js")} <= set(names)  # the MCP Apps view
    assert "photo-mcp = server.__main__:main" in entry_points


def test_tests_are_not_importable_from_an_editable_install() -> None:
    # dev-mode-exact: only the packages themselves are on the path, not the repo root.
    code = (
        "import importlib.util, sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
        "print(importlib.util.find_spec('tests') is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "True"


def test_claude_desktop_example_is_valid_and_matches_the_settings() -> None:
    config = json.loads((ROOT / "claude_desktop_config.example.json").read_text())
    server = config["mcpServers"]["photo"]
    assert shutil.which(server["command"], path=str(Path(sys.executable).parent)) is not None
    known = {f"PHOTO_MCP_{name.upper()}" for name in Settings.model_fields} | {
        str(a) for f in Settings.model_fields.values() if f.validation_alias for a in f.validation_alias.choices
    }
    assert set(server["env"]) <= known, set(server["env"]) - known
