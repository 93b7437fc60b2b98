"""`ImageRef`: the one string every tool accepts for an image.

Accepted: an absolute or `~` path, a relative path (resolved against the output dir,
never the process cwd), a `file://` URI, an `http(s)://` URL, a `photo://results/{id}`
URI from an earlier result, a `photo://uploads/{id}` URI of a picture the user handed
over, or a `data:image/...;base64,` URI.
"""

from __future__ import annotations

import base64
import binascii
import copy
import errno
import functools
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import anyio

from tools.core.echo import quoted, shorten
from tools.core.errors import InvalidInput, NotFound
from tools.core.fetch import SafeFetcher
from tools.core.principals import CALLER, STATIC_PRINCIPAL, owner_of
from tools.core.results import RESULT_URI_PREFIX, UPLOAD_URI_PREFIX, ResultRecord, ResultStore

MAX_DATA_URI_BYTES = 15 * 1024 * 1024
MAX_FILE_BYTES = 200 * 1024 * 1024
_WINDOWS_DRIVE = re.compile(r"^/?[A-Za-z]:[\\/]")
_RESULT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # ids are short tokens; anything else is not one

SourceKind = Literal["path", "url", "result", "data"]


@dataclass
class ImageSource:
    """A resolved reference. URLs are not downloaded until `read()` is called, so
    providers that accept URLs can pass them through untouched. A file is not read until its
    work starts (`reader()`): a call queued behind others holds no image bytes."""

    ref: str
    kind: SourceKind
    fetcher: SafeFetcher
    url: str | None = None
    path: Path | None = None
    result: ResultRecord | None = None
    data: bytes | None = None
    # A file's bytes, read through the same checks as at resolve (sandbox, regular file, size),
    # from the descriptor those checks opened. Not kept: each read is the file as it is then.
    load: Callable[[], bytes] | None = field(default=None, repr=False)

    @property
    def public_url(self) -> str | None:
        return self.url if self.kind == "url" else None

    @property
    def label(self) -> str:
        """How lineage records this input (data URIs are shortened)."""
        return shorten(self.ref, 200) if self.kind != "data" else self.ref[:40] + "…"

    async def read(self) -> bytes:
        """The image bytes, downloading a URL on first use (a file is read again each time).

        Raises:
            InvalidInput: if a URL cannot be fetched safely, or a file is no longer readable or
                allowed.
            NotFound: a file is gone since the call started.
        """
        if self.data is None and self.load is not None:
            return await anyio.to_thread.run_sync(self.load)
        if self.data is None:
            assert self.url is not None
            self.data, _ = await self.fetcher.fetch(self.url)
        return self.data

    async def reader(self) -> Callable[[], bytes]:
        """A function that returns the bytes, for the worker thread that uses them to call.

        A file is then read only when that work starts and its bytes go with it: twenty calls
        queued for two workers hold two inputs, not twenty. A URL is downloaded now (first use).

        Raises:
            InvalidInput: a URL cannot be fetched safely (the returned function raises, for a
                file, what `read()` does).
        """
        if self.data is None and self.load is not None:
            return self.load
        data = await self.read()
        return lambda: data


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
        dirs_per_user: dict[str, list[Path]] | None = None,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.allowed_dirs = allowed_dirs
        self.base_dir = base_dir
        self.remote = remote
        # PHOTO_MCP_ALLOWED_DIRS_PER_USER: a person's own folders, by principal or by subject.
        self.dirs_per_user = {k: [Path(d).expanduser().resolve() for d in v] for k, v in (dirs_per_user or {}).items()}

    def sandbox_for(self, who: object) -> ImageResolver:
        """The resolver whose allowed dirs apply to `who` (tools/core/principals.py).

        The local user and the static token keep the configured dirs. An OAuth person over HTTP
        gets their own PHOTO_MCP_ALLOWED_DIRS_PER_USER folders, else the shared
        PHOTO_MCP_ALLOWED_DIRS, and never the output dir by path: it holds everyone's results, and
        theirs are reached as photo://results/<id>, which only they can see.
        """
        if not self.remote or not isinstance(who, str) or who == STATIC_PRINCIPAL:
            return self
        own = self.dirs_per_user.get(who, self.dirs_per_user.get(who.rpartition("#")[2]))
        sandbox = copy.copy(self)
        sandbox.allowed_dirs = own if own is not None else [d for d in self.allowed_dirs if d != self.base_dir]
        return sandbox

    async def resolve(self, ref: str) -> ImageSource:
        """Validate `ref` and load its bytes (except for URLs and files: a file is opened and
        checked now, and read when its work starts).

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
            result_id = ref[len(RESULT_URI_PREFIX) :].strip("/")
            if not _RESULT_ID.fullmatch(result_id):
                raise NotFound(
                    f"No result with id {quoted(result_id)}. Use a photo://results/<id> URI from an earlier tool "
                    "result (resources/list shows recent ones)."
                )
            record, data = await self.store.read(result_id)
            return ImageSource(ref, "result", self.fetcher, result=record, path=record.path, data=data)
        if lower.startswith(UPLOAD_URI_PREFIX):  # a picture the user handed over (viewer, upload URL)
            upload_id = ref[len(UPLOAD_URI_PREFIX) :].strip("/")
            if not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", upload_id):
                raise NotFound("No such upload; uploads look like photo://uploads/<id> (resources/list shows them).")
            record, data = await self.store.read(upload_id, kind="upload")
            return ImageSource(ref, "result", self.fetcher, result=record, path=record.path, data=data)
        if lower.startswith("photo://"):
            raise InvalidInput(f"Unknown photo:// URI {quoted(ref)}; results look like photo://results/<id>.")
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
                f"Unsupported scheme {quoted(scheme)}: use a file path, http(s) URL, photo://results/<id> or data: URI."
            )
        else:
            path_text = ref
        sandbox = self.sandbox_for(owner_of(CALLER))  # the caller's own folders over HTTP
        # Every check runs now, so a bad path fails the call at once; the bytes are read later,
        # through the same checks again (the file may have been swapped meanwhile).
        path, _ = await anyio.to_thread.run_sync(functools.partial(sandbox._open_checked, path_text, read=False))
        return ImageSource(ref, "path", self.fetcher, path=path, load=functools.partial(sandbox._read, path_text))

    def _read(self, text: str) -> bytes:
        _, data = self._open_checked(text, read=True)
        assert data is not None
        return data

    def _open_checked(self, text: str, *, read: bool) -> tuple[Path, bytes | None]:
        """Check `text` against the allowed dirs, then open it once and read from that descriptor
        (`read=False`: only check, and close it).

        The path is resolved and checked, opened without following a final symlink, and the
        opened file itself is checked again (where it really is, that it is a regular file, its
        size): a symlink swapped in between the check and the open cannot escape the sandbox.
        Messages name the path as given (shortened), never what it resolves to.
        """
        shown = quoted(text)  # a 5000-character path must not flood the model's context
        if _WINDOWS_DRIVE.match(text) and os.name != "nt":
            raise InvalidInput(f"{shown} is a Windows path, but this server runs on {os.name}.")
        if self.remote and not self.allowed_dirs_configured:
            raise InvalidInput(
                "Local file paths are disabled on this HTTP server. Pass an http(s) URL, a data: URI or a "
                "photo://results/<id>, or have the operator set PHOTO_MCP_ALLOWED_DIRS."
            )
        try:
            path = Path(text).expanduser()
            relative = not path.is_absolute()
            if relative:
                path = self.base_dir / path
            path = path.resolve()
        except RuntimeError:
            raise InvalidInput(f"Cannot use the path {shown}: Symlink loop.") from None
        except ValueError:
            raise InvalidInput(f"Cannot use the path {shown}: it contains a null byte.") from None
        except OSError as exc:
            raise InvalidInput(f"Cannot use the path {shown}: {exc.strerror or 'OS error'}.") from None
        if not self._allowed(path):
            raise self._outside(shown)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise NotFound(f"No file at {shown}." + (self._relative_hint(text) if relative else "")) from None
        except IsADirectoryError:
            raise InvalidInput(f"{shown} is a directory; pass an image file inside it.") from None
        except PermissionError:
            raise InvalidInput(f"{shown} is not readable by the server.") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # it became a symlink after it was resolved
                raise self._outside(shown) from None
            raise InvalidInput(f"Cannot read {shown}: {exc.strerror or 'OS error'}.") from None
        try:
            st = os.fstat(fd)
            if not self._opened_inside(fd, path, st):
                raise self._outside(shown)
            if stat.S_ISDIR(st.st_mode):
                raise InvalidInput(f"{shown} is a directory; pass an image file inside it.")
            if not stat.S_ISREG(st.st_mode):
                raise InvalidInput(f"{shown} is not a regular file.")
            if st.st_size > MAX_FILE_BYTES:
                raise InvalidInput(f"{shown} is {st.st_size // 2**20} MB; the limit is {MAX_FILE_BYTES // 2**20} MB.")
            if not read:
                return path, None
            with os.fdopen(fd, "rb", buffering=0) as f:
                fd = -1  # the file object owns it now
                # Its size now and a byte more, to see it grow: a read of the limit would make
                # room for 200 MB first (1.2 ms more for a 5 MB photo).
                data = f.read(st.st_size + 1)
                if len(data) > st.st_size:
                    data += f.read(MAX_FILE_BYTES + 1 - len(data))
        except OSError as exc:
            raise InvalidInput(f"Cannot read {shown}: {exc.strerror or 'OS error'}.") from None
        finally:
            if fd >= 0:
                os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            raise InvalidInput(f"{shown} is larger than {MAX_FILE_BYTES // 2**20} MB.")
        return path, data

    def _relative_hint(self, text: str) -> str:
        """Where a relative path was looked up: MCP hosts start servers in /, not in the user's folder."""
        where = "this server's output folder" if self.remote else str(self.base_dir)
        name = Path(text).name or "photo.png"
        return (
            f" Relative paths are looked up in {where}, not in your working directory (MCP hosts start "
            f"servers with cwd=/). Pass an absolute path instead, e.g. ~/Pictures/{name} or /home/you/{name}."
        )

    def _allowed(self, path: Path) -> bool:
        return any(path.is_relative_to(d) for d in self.allowed_dirs)

    def _opened_inside(self, fd: int, checked: Path, st: os.stat_result) -> bool:
        """Whether the open descriptor is a file inside the allowed dirs (not a swapped-in target)."""
        proc = Path(f"/proc/self/fd/{fd}")
        try:
            real = Path(os.readlink(proc))
        except OSError:
            real = None  # no /proc (macOS, Windows): compare with what the checked path is now
        if real is not None and real.is_absolute():
            return self._allowed(real)
        try:
            now = os.stat(checked.resolve())
        except (OSError, RuntimeError):
            return False
        return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) and self._allowed(checked.resolve())

    def _outside(self, shown: str) -> InvalidInput:
        # The allowed dirs are the operator's own layout: a remote client is not shown them.
        allowed = "" if self.remote else f" ({', '.join(str(d) for d in self.allowed_dirs) or 'none'})"
        return InvalidInput(
            f"{shown} is outside the directories this server may read{allowed}. Move the file there or "
            "add its folder to PHOTO_MCP_ALLOWED_DIRS."
        )

    @property
    def allowed_dirs_configured(self) -> bool:
        # The output dir is always allowed; anything beyond it was configured.
        return any(d != self.base_dir.resolve() for d in self.allowed_dirs)


def _file_uri_to_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(f"file:// URIs must be local (got host {quoted(parts.netloc)}).")
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
        raise InvalidInput(f"The data: URI has type {quoted(meta[0] or 'none')}; only image/* is accepted.")
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
