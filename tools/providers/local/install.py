"""The command that installs the ``[local]`` extra for how *this* photo-mcp was installed.

`pip install 'photo-mcp[local]'` only works when photo-mcp came from a package index; installed
from a clone, that command fails. The install record pip leaves (PEP 610 ``direct_url.json`` in
the distribution's metadata) says where it came from, and a pipx venv has ``pipx_metadata.json``:

| installed as                    | command                                                        |
|---------------------------------|----------------------------------------------------------------|
| editable clone (pip install -e) | ``<python> -m pip install -e '<clone>[local]'``                 |
| clone, not editable             | ``<python> -m pip install '<clone>[local]'``                    |
| pipx from a clone               | ``pipx install --force [--editable] '<clone>[local]'``          |
| a URL (git, archive)            | ``… install 'photo-mcp[local] @ <url>'``                        |
| a package index                 | ``<python> -m pip install 'photo-mcp[local]'`` / pipx likewise  |

``<python>`` is this interpreter, so the extra lands in the environment the server runs in
(a bare ``pip`` on PATH may belong to another one).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

DIST_NAME = "photo-mcp"


def _quote(text: str) -> str:
    return f'"{text}"' if os.name == "nt" else shlex.quote(text)


def _origin(dist: Distribution | None) -> tuple[str | None, bool]:
    """(the spec of what it was installed from, editable) — (None, False) for an index install."""
    raw = dist.read_text("direct_url.json") if dist is not None else None
    if not raw:
        return None, False
    try:
        info = json.loads(raw)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return None, False
    editable = bool((info.get("dir_info") or {}).get("editable"))
    parts = urlsplit(url)
    if parts.scheme == "file" and "dir_info" in info:  # a local directory: name it as a path
        return url2pathname(unquote(parts.path)), editable
    vcs = info.get("vcs_info") or {}
    if vcs.get("vcs") and not url.startswith(f"{vcs['vcs']}+"):
        url = f"{vcs['vcs']}+{url}"
    return f"@ {url}", editable


def install_command(
    extra: str = "local",
    *,
    dist: Distribution | None = None,
    prefix: str | Path | None = None,
    executable: str | None = None,
) -> str:
    """The shell command that adds `extra` to this installation (arguments for tests).

    `dist`: photo-mcp's installed distribution (default: looked up); `prefix`: the environment
    (default `sys.prefix`); `executable`: its Python (default `sys.executable`).
    """
    if dist is None:
        try:
            dist = distribution(DIST_NAME)
        except PackageNotFoundError:  # running from a source tree that was never installed
            dist = None
    source, editable = _origin(dist)
    if source is None:
        spec = f"{DIST_NAME}[{extra}]"
    elif source.startswith("@ "):
        spec = f"{DIST_NAME}[{extra}] {source}"
    else:
        spec = f"{source}[{extra}]"
    env = Path(prefix if prefix is not None else sys.prefix)
    if (env / "pipx_metadata.json").exists():
        return f"pipx install --force {'--editable ' if editable else ''}{_quote(spec)}"
    python = executable or sys.executable
    return f"{_quote(python)} -m pip install {'-e ' if editable else ''}{_quote(spec)}"
