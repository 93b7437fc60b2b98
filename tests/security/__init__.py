"""Security regression tests (issue 13): one module per guarantee the README's security section lists."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@cache
def netns_available() -> bool:
    """Whether private network namespaces can be made here (`unshare -n`: root or user namespaces)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
    return probe.returncode == 0


def run_in_private_netns(module: str, timeout: float) -> dict[str, Any]:
    """Run `python -m module` in a private network namespace and return the JSON it prints last.

    Skips the calling test where namespaces cannot be made; fails it when the module fails.
    """
    if not netns_available():
        pytest.skip("no private network namespaces here (unshare -n needs root or user namespaces)")
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", module], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
