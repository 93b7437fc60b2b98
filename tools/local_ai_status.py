"""Whether the optional offline AI extra is installed (checked without importing it)."""

from __future__ import annotations

from tools.providers.local import INSTALL_HINT, available


def local_status() -> str:
    if available():
        return "installed (offline background removal, blur, colour correction, inpainting)"
    if available(need_model=False):
        return f"partly installed: the model package is missing ({INSTALL_HINT})"
    return f"not installed (offline background removal needs: {INSTALL_HINT})"
