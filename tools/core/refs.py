"""`ImageRef`: the one string every tool accepts for an image.

Accepted: an absolute or `~` path, a relative path (resolved against the output dir,
never the process cwd), a `file://` URI, an `http(s)://` URL, a `photo://results/{id}`
URI from an earlier result, or a `data:image/...;base64,` URI.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import anyio

from tools.core.errors import InvalidInput, NotFound
from tools.core.fetch import SafeFetcher
from tools.core.results import RESULT_URI_PREFIX, ResultRecord, ResultStore

MAX_DATA_URI_BYTES = 15 * 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024
_WINDOWS_DRIVE = re.compile(r"^/?[A-Za-z]:[\\/]")

SourceKind = Literal["path", "url", "result", "data"]


@dataclass
class ImageSource:
    """A resolved reference. URLs are not downloaded until `read()` is called, so
    providers that accept URLs can pass them through untouched."""

    ref: str
    kind: SourceKind
    fetcher: SafeFetcher
    url: str | None = None
    path: Path | None = None
    result: ResultRecord | None = None
    data: bytes | None = None

    @property
    def public_url(self) -> str | None:
        return self.url if self.kind == "url" else None

    @property
    def label(self) -> str:
        """How lineage records this input (data URIs are shortened)."""
        return self.ref if self.kind != "data" else self.ref[:40] + "…"

    async def read(self) -> bytes:
        """The image bytes, downloading a URL on first use.

        Raises:
            InvalidInput: if a URL cannot be fetched safely.
        """
        if self.data is None:
            assert self.url is not None
            self.data, _ = await self.fetcher.fetch(self.url)
        return self.data


class ImageResolver:
    """Turns ImageRef strings into `ImageSource`s, enforcing where files may be read."""

    def __init__(
        self,
        *,
        store: ResultStore,
        fetcher: SafeFetcher,
        allowed_dirs: list[Path],
        base_dir: Path,
        remote: bool,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.allowed_dirs = allowed_dirs
        self.base_dir = base_dir
        self.remote = remote

    async def resolve(self, ref: str) -> ImageSource:
        """Validate `ref` and load its bytes (except for URLs).

        Raises:
            InvalidInput: malformed reference, forbidden path or URL, oversize data.
            NotFound: missing file or unknown result id.
        """
        ref = ref.strip()
        if not ref:
            raise InvalidInput("The image reference is empty: pass a path, URL, photo://results/<id> or data: URI.")
        if "\x00" in ref:
            raise InvalidInput("The image reference contains a NUL byte.")
        lower = ref[:16].lower()
        if lower.startswith(RESULT_URI_PREFIX):
            record, data = await self.store.read(ref[len(RESULT_URI_PREFIX) :].strip("/"))
            return ImageSource(ref, "result", self.fetcher, result=record, path=record.path, data=data)
        if lower.startswith("photo://"):
            raise InvalidInput(f"Unknown photo:// URI {ref[:200]!r}; results look like photo://results/<id>.")
        if lower.startswith("data:"):
            return ImageSource(ref, "data", self.fetcher, data=_decode_data_uri(ref))
        if lower.startswith(("http://", "https://")):
            await self.fetcher.check(ref)
            return ImageSource(ref, "url", self.fetcher, url=ref)
        if lower.startswith("file:"):
            path_text = _file_uri_to_path(ref)
        elif re.match(r"^[a-z][a-z0-9+.-]*://", lower):
            scheme = ref.split(":", 1)[0]
            raise InvalidInput(
                f"Unsupported scheme {scheme!r}: use a file path, http(s) URL, photo://results/<id> or data: URI."
            )
        else:
            path_text = ref
        path = await anyio.to_thread.run_sync(self._check_path, path_text)
        data = await anyio.Path(path).read_bytes()
        return ImageSource(ref, "path", self.fetcher, path=path, data=data)

    def _check_path(self, text: str) -> Path:
        if _WINDOWS_DRIVE.match(text) and os.name != "nt":
            raise InvalidInput(f"{text[:200]!r} is a Windows path, but this server runs on {os.name}.")
        if self.remote and not self.allowed_dirs_configured:
            raise InvalidInput(
                "Local file paths are disabled on this HTTP server. Pass an http(s) URL, a data: URI or a "
                "photo://results/<id>, or have the operator set PHOTO_MCP_ALLOWED_DIRS."
            )
        try:
            path = Path(text).expanduser()
            if not path.is_absolute():
                path = self.base_dir / path
            path = path.resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise InvalidInput(f"Cannot use the path {text[:200]!r}: {exc}.") from None
        shown = _shorten(str(path))  # a 5000-character path must not flood the model's context
        if not any(path.is_relative_to(d) for d in self.allowed_dirs):
            allowed = ", ".join(str(d) for d in self.allowed_dirs) or "none"
            raise InvalidInput(
                f"{shown} is outside the directories this server may read ({allowed}). Move the file there or "
                "add its folder to PHOTO_MCP_ALLOWED_DIRS."
            )
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(f"No file at {shown}.") from None
        except OSError as exc:
            raise InvalidInput(f"Cannot read {shown}: {exc.strerror or exc}.") from None
        if path.is_dir():
            raise InvalidInput(f"{shown} is a directory; pass an image file inside it.")
        if not path.is_file():
            raise InvalidInput(f"{shown} is not a regular file.")
        if st.st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{shown} is {st.st_size // 2**20} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
        if not os.access(path, os.R_OK):
            raise InvalidInput(f"{shown} is not readable by the server.")
        return path

    @property
    def allowed_dirs_configured(self) -> bool:
        # The output dir is always allowed; anything beyond it was configured.
        return any(d != self.base_dir.resolve() for d in self.allowed_dirs)


def _shorten(text: str, keep: int = 120) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-keep:]}"


def _file_uri_to_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(f"file:// URIs must be local (got host {parts.netloc!r}).")
    raw = unquote(parts.path)
    if _WINDOWS_DRIVE.match(raw):
        return raw.lstrip("/") if os.name == "nt" else raw
    return url2pathname(parts.path)


def _decode_data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise InvalidInput("Malformed data: URI (no comma); use data:image/png;base64,<data>.")
    meta = header[5:].lower().split(";")
    if not meta[0].startswith("image/"):
        raise InvalidInput(f"The data: URI has type {meta[0] or 'none'!r}; only image/* is accepted.")
    if "base64" not in meta[1:]:
        raise InvalidInput("Only base64 data: URIs are accepted (data:image/...;base64,...).")
    if len(payload) * 3 // 4 > MAX_DATA_URI_BYTES:
        raise InvalidInput(
            f"The data: URI is larger than {MAX_DATA_URI_BYTES // 2**20} MB; save the image to a file or URL."
        )
    try:
        return base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("The data: URI is not valid base64.") from None
