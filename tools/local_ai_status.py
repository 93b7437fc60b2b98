"""Whether the optional offline AI extra is installed (checked without importing it)."""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'photo-mcp[local]'"


def local_status() -> str:
    if importlib.util.find_spec("onnxruntime") is None:
        return f"not installed (offline background removal needs: {INSTALL_HINT})"
    return "installed"
