"""The command line: `photo-mcp call` and `photo-mcp doctor`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes.images import image_bytes
from tests.support import server_env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=server_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def test_call_runs_a_tool_and_prints_the_result_path(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.png").write_bytes(image_bytes(40, 20, "png"))
    proc = _run(tmp_path, "call", "resize_image", f"image={work / 'a.png'}", "width=20")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.exists() and path.parent == tmp_path / "data" / "results"


def test_call_exits_1_on_an_error_result(tmp_path: Path) -> None:
    proc = _run(tmp_path, "call", "resize_image", "image=/nope.png", "width=20")
    assert proc.returncode == 1
    assert "outside the directories" in proc.stdout


def test_doctor_masks_keys_and_reports_providers(tmp_path: Path) -> None:
    key = "sk-test-secret-key-0123456789"
    proc = _run(tmp_path, "doctor", ALUO_API_KEY=key, ALUO_BASE_URL="http://127.0.0.1:9/api")
    assert proc.returncode == 0, proc.stderr
    assert key not in proc.stdout + proc.stderr
    assert "aluo           configured" in proc.stdout
    assert "removedo       not configured" in proc.stdout
    assert str(tmp_path / "data" / "results") in proc.stdout


def test_invalid_configuration_names_the_variable(tmp_path: Path) -> None:
    proc = _run(tmp_path, "doctor", PHOTO_MCP_WAIT_SECONDS="soon")
    assert proc.returncode == 2
    assert "WAIT_SECONDS" in proc.stderr


def test_models_lists_the_offline_models_and_which_is_present(tmp_path: Path) -> None:
    proc = _run(tmp_path, "models", "list", PHOTO_MCP_MODEL_DIR=str(tmp_path / "models"))
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "isnet-general-use" in lines and "not fetched" in lines["isnet-general-use"]
    assert "u2netp" in lines and lines["u2netp"].startswith("*")  # the shipped default, chosen
