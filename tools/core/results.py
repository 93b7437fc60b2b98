"""The result store: image files written atomically in the output dir, indexed in SQLite.

Results are addressed as `photo://results/{id}`. A file only becomes visible under its
final name once it is completely written (temp file + fsync + rename), with owner-only
permissions, so a crash mid-write never leaves a corrupt result behind.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from tools.core.db import Database, storage_failure
from tools.core.echo import quoted
from tools.core.errors import NotFound, StorageFull
from tools.core.principals import CALLER, Owner, owned, owner_of, visible_to
from tools.core.resultrecord import (
    EXTENSIONS,
    RESULT_URI_PREFIX,
    UPLOAD_OPERATION,
    UPLOAD_URI_PREFIX,
    Lineage,
    ResultRecord,
    readable,
    row_to_record,
)
from tools.core.storage import TEMP_PREFIX, make_room, mb, sweep_temp_files, write_temp

log = logging.getLogger("photo_mcp.results")

# The names `save` gives result files: <YYYYmmdd-HHMMSS>-<operation>-<12 hex id>.<ext>
_RESULT_NAME = re.compile(r"^\d{8}-\d{6}-(?P<operation>[A-Za-z0-9_]+)-(?P<id>[0-9a-f]{12})\.(?P<ext>[a-z]+)$")
_MIME_OF_EXT = {ext: mime for mime, ext in EXTENSIONS.items()}


@dataclass(frozen=True)
class Staged:
    """A result's bytes written and fsync'd under a temp name (`ResultStore.stage`), not yet a result."""

    temp: Path
    bytes: int


class ResultStore:
    """Saves and finds result images.

    `max_bytes` is the store's quota (PHOTO_MCP_MAX_STORE_MB): before a save would pass it, the
    oldest results that no queued or running job made or reads are removed; only files the index
    names, directly in this directory, under the names `save` gives (never a file the server did
    not write). `max_result_bytes` bounds one saved file. A save that cannot be written (disk
    full, quota, read-only) leaves nothing behind (no temp file, no row without its file, no file
    without its row) and raises `StorageFull`.
    """

    def __init__(
        self,
        directory: Path,
        db: Database,
        *,
        max_bytes: int | None = None,
        max_result_bytes: int | None = None,
        server_id: str | None = None,
        alive: Callable[[str | None], bool] | None = None,
    ) -> None:
        self.directory = directory
        self.db = db
        self.max_bytes = max_bytes
        self.max_result_bytes = max_result_bytes
        self.server_id = server_id  # names this server's temp files (tools/core/lease.py)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new output dir is owner-only, like its files
        sweep_temp_files(directory, alive)  # only the temp files of servers that are gone

    async def save(
        self,
        data: bytes,
        *,
        mime_type: str,
        width: int,
        height: int,
        lineage: Lineage,
        meta: dict[str, Any] | None = None,
    ) -> ResultRecord:
        """Write one result file and index it under `lineage` (taken from the job that made it).

        Raises:
            StorageFull: the file or its row cannot be written (nothing is left behind), or it is
                larger than one result or the whole quota may be.
        """
        staged = await self.stage(data)
        return await self.publish(staged, mime_type=mime_type, width=width, height=height, lineage=lineage, meta=meta)

    async def stage(self, data: bytes) -> Staged:
        """Make room for `data` under the quota and write it, fsync'd, to a temp file nobody sees:
        the slow half of `save`, which can run while the caller still looks at the bytes. Each
        staged file is then `publish`ed or `unstage`d.

        Raises:
            StorageFull: as `save`.
        """
        if self.max_result_bytes is not None and len(data) > self.max_result_bytes:
            raise StorageFull(
                f"The result would be {mb(len(data))}, more than the {mb(self.max_result_bytes)} one call may write "
                "(PHOTO_MCP_MAX_RESULT_MB); nothing was saved. Ask for a smaller size, or JPEG/WebP output."
            )
        if self.max_bytes is not None:
            try:
                await make_room(self.db, self.directory, self.max_bytes, len(data), _RESULT_NAME)
            except sqlite3.Error as exc:
                raise self._full(exc, "the quota clean-up") from exc
        try:
            # Shielded: a cancelled caller must still learn the temp file's name, to remove it.
            with anyio.CancelScope(shield=True):
                temp = await anyio.to_thread.run_sync(
                    lambda: write_temp(self.directory, data, server_id=self.server_id)
                )
        except OSError as exc:
            raise self._full(exc, "its file") from exc
        return Staged(temp, len(data))

    async def publish(
        self,
        staged: Staged,
        *,
        mime_type: str,
        width: int,
        height: int,
        lineage: Lineage,
        meta: dict[str, Any] | None = None,
    ) -> ResultRecord:
        """Give a staged file its result name and its index row: the result exists from here on.

        Raises:
            StorageFull: the rename or the row failed (the file is removed again).
        """
        result_id = secrets.token_hex(6)
        ext = EXTENSIONS.get(mime_type, "bin")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.directory / f"{stamp}-{lineage.operation}-{result_id}.{ext}"
        record = ResultRecord(
            id=result_id,
            path=path,
            mime_type=mime_type,
            bytes=staged.bytes,
            width=width,
            height=height,
            operation=lineage.operation,
            provider=lineage.provider,
            job_id=lineage.job_id,
            inputs=list(lineage.inputs),
            meta=dict(meta or {}),
            created_at=time.time(),
            principal=lineage.principal,
        )
        try:
            # A rename within one directory: metadata only, done on the loop like a SQLite commit.
            os.replace(staged.temp, path)
        except OSError as exc:
            await self.unstage([staged])
            raise self._full(exc, "its file") from exc
        try:
            await self._insert(record)
        except BaseException as exc:  # a file without its row is never left behind
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
            if isinstance(exc, sqlite3.Error):
                raise self._full(exc, "its index row") from exc
            raise
        return record

    async def unstage(self, staged: list[Staged]) -> None:
        """Remove staged files that will not be published."""
        with anyio.CancelScope(shield=True):
            for s in staged:
                await anyio.to_thread.run_sync(lambda p=s.temp: p.unlink(missing_ok=True))

    def _full(self, exc: OSError | sqlite3.Error, what: str) -> Exception:
        """`StorageFull` for a disk-full/read-only failure (logged with its traceback), else `exc`."""
        why = storage_failure(exc)
        if why is None:
            return exc
        log.error("Could not save a result (%s) in %s: %s", what, self.directory, why, exc_info=exc)
        return StorageFull(
            f"The result could not be saved: {why} ({self.directory.name}). Nothing partial was kept; free some "
            "disk space (or lower PHOTO_MCP_MAX_STORE_MB so old results are cleaned up) and run the tool again."
        )

    async def discard(self, records: list[ResultRecord]) -> None:
        """Remove `records` (their rows, then their files): the partial output of a call that failed."""
        ids = [(r.id,) for r in records]
        with anyio.CancelScope(shield=True):
            try:
                await self.db.run(lambda c: c.executemany("DELETE FROM results WHERE id=?", ids))
            except sqlite3.Error:
                log.exception("Could not remove the index rows of %d partial result(s).", len(ids))
                return  # rows kept: keep their files too (never a row without its file)
            for r in records:
                await anyio.to_thread.run_sync(lambda p=r.path: p.unlink(missing_ok=True))

    async def _insert(self, record: ResultRecord) -> None:
        path = record.path
        mime_type, width, height = record.mime_type, record.width, record.height
        await self.db.run(
            lambda c: c.execute(
                "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    str(path),
                    mime_type,
                    record.bytes,
                    width,
                    height,
                    record.operation,
                    record.provider,
                    record.job_id,
                    json.dumps(record.inputs),
                    json.dumps(record.meta),
                    record.created_at,
                    record.principal,
                ),
            )
        )

    async def save_upload(
        self, data: bytes, *, mime_type: str, width: int, height: int, name: str, principal: Owner = CALLER
    ) -> ResultRecord:
        """Store a picture the user handed over (already sniffed) as photo://uploads/{id}.

        Raises:
            OSError: if the file cannot be written.
        """
        who = owner_of(principal)
        lineage = Lineage(UPLOAD_OPERATION, "user", principal=who if isinstance(who, str | None) else None)
        meta = {"name": name}
        return await self.save(data, mime_type=mime_type, width=width, height=height, lineage=lineage, meta=meta)

    async def get(self, result_id: str, *, kind: str = "any", principal: Owner = CALLER) -> ResultRecord:
        """Find a result by id (`kind="upload"`: only an upload).

        Raises:
            NotFound: if no such result exists (or its file was deleted).
        """
        row = await self.db.run(lambda c: c.execute("SELECT * FROM results WHERE id=?", (result_id,)).fetchone())
        if row is not None and not visible_to(row["principal"], principal):  # another's: as if unknown
            row = None
        if row is not None and kind == "upload" and row["operation"] != UPLOAD_OPERATION:
            row = None
        if row is None and kind == "upload":
            raise NotFound(
                f"No upload with id {quoted(result_id)}. Use a photo://uploads/<id> URI from the picture picker "
                "(resources/list shows recent ones)."
            )
        if row is None:
            raise NotFound(
                f"No result with id {quoted(result_id)}. Use a photo://results/<id> URI from an earlier tool result "
                "(resources/list shows recent ones)."
            )
        try:
            record = row_to_record(row)
        except (ValueError, TypeError, KeyError) as exc:
            raise NotFound(f"Result {result_id!r} is indexed, but its index row cannot be read ({exc}).") from None
        if not record.path.exists():
            raise NotFound(f"The file of result {result_id!r} was deleted from {record.path.parent}.")
        return record

    async def get_many(self, ids: list[str], *, principal: Owner = CALLER) -> list[ResultRecord]:
        return [await self.get(i, principal=principal) for i in ids]

    async def recent(self, limit: int = 50, *, principal: Owner = CALLER) -> list[ResultRecord]:
        """The newest results of `principal` (default: the caller's)."""
        mine, who = owned(principal)
        rows = await self.db.run(
            lambda c: c.execute(
                f"SELECT * FROM results WHERE {mine} ORDER BY created_at DESC LIMIT ?", (*who, limit)
            ).fetchall()
        )
        return readable(rows)

    async def rebuild_index(self) -> int:
        """Index the result files in the output dir that the index does not know (after a
        damaged database was replaced by a fresh one); returns how many were added.

        The id comes from the file name, so earlier photo://results/<id> URIs keep working; the
        provider and inputs are not in the file and are recorded as unknown.
        """
        from PIL import Image, UnidentifiedImageError  # only on this rare path

        from tools.core.decoders import accepted_formats  # the same decoder allow-list as for inputs

        def scan() -> list[tuple[Any, ...]]:
            rows = []
            for path in sorted(self.directory.iterdir()):
                m = _RESULT_NAME.match(path.name)
                mime = _MIME_OF_EXT.get(m["ext"]) if m else None
                if m is None or mime is None or not path.is_file():
                    continue
                try:
                    st = path.stat()
                    with Image.open(path, formats=accepted_formats()) as img:  # the header only
                        width, height = img.size
                except (OSError, UnidentifiedImageError, ValueError) as exc:
                    log.error("Not re-indexing %s: it cannot be read as an image (%s).", path, exc)
                    continue
                meta = json.dumps({"reindexed": True})
                op, size, made = m["operation"], st.st_size, st.st_mtime
                row = (m["id"], str(path), mime, size, width, height, op, "unknown", None, "[]", meta, made, None)
                rows.append(row)  # whose it was is not in the file: the local user's (no principal)
            return rows

        rows = await anyio.to_thread.run_sync(scan)

        def insert(c: Any) -> int:
            before = c.total_changes
            c.executemany("INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            return c.total_changes - before

        added = await self.db.transact(insert, scan=True)
        log.warning("Re-indexed %d result file(s) from %s.", added, self.directory)
        return added

    async def read(self, result_id: str, *, kind: str = "any", principal: Owner = CALLER) -> tuple[ResultRecord, bytes]:
        """The record and its file's bytes (`kind="upload"`: only an upload).

        Raises:
            NotFound: if the result is unknown or its file is gone.
        """
        record = await self.get(result_id, kind=kind, principal=principal)
        data = await anyio.Path(record.path).read_bytes()
        return record, data


# The record's names stay importable from here, where the store that makes records lives.
__all__ = [
    "EXTENSIONS", "RESULT_URI_PREFIX", "TEMP_PREFIX", "UPLOAD_URI_PREFIX", "Lineage", "ResultRecord", "ResultStore",
    "Staged", "sweep_temp_files",
]  # fmt: skip
