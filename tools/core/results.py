"""The result store: image files written atomically in the output dir, indexed in SQLite.

Results are addressed as `photo://results/{id}`. A file only becomes visible under its
final name once it is completely written (temp file + fsync + rename), with owner-only
permissions, so a crash mid-write never leaves a corrupt result behind.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

from tools.core.db import Database
from tools.core.errors import NotFound

RESULT_URI_PREFIX = "photo://results/"
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/tiff": "tiff",
}


@dataclass(frozen=True)
class ResultRecord:
    id: str
    path: Path
    mime_type: str
    bytes: int
    width: int
    height: int
    operation: str
    provider: str
    job_id: str | None = None
    inputs: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def uri(self) -> str:
        return RESULT_URI_PREFIX + self.id

    @property
    def name(self) -> str:
        return self.path.name


def _row_to_record(row: Any) -> ResultRecord:
    return ResultRecord(
        id=row["id"],
        path=Path(row["path"]),
        mime_type=row["mime_type"],
        bytes=row["bytes"],
        width=row["width"],
        height=row["height"],
        operation=row["operation"],
        provider=row["provider"],
        job_id=row["job_id"],
        inputs=json.loads(row["inputs"]),
        meta=json.loads(row["meta"]),
        created_at=row["created_at"],
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either nothing or the whole file.

    Raises:
        OSError: if the directory is not writable or the disk is full.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultStore:
    """Saves and finds result images."""

    def __init__(self, directory: Path, db: Database) -> None:
        self.directory = directory
        self.db = db
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new output dir is owner-only, like its files
        # Leftovers of a crash mid-write are never results: clear them.
        for stale in directory.glob(".tmp-*"):
            stale.unlink(missing_ok=True)

    async def save(
        self,
        data: bytes,
        *,
        mime_type: str,
        width: int,
        height: int,
        operation: str,
        provider: str,
        job_id: str | None = None,
        inputs: list[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> ResultRecord:
        """Write one result file and index it.

        Raises:
            OSError: if the file cannot be written.
        """
        result_id = secrets.token_hex(6)
        ext = EXTENSIONS.get(mime_type, "bin")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.directory / f"{stamp}-{operation}-{result_id}.{ext}"
        record = ResultRecord(
            id=result_id,
            path=path,
            mime_type=mime_type,
            bytes=len(data),
            width=width,
            height=height,
            operation=operation,
            provider=provider,
            job_id=job_id,
            inputs=list(inputs or []),
            meta=dict(meta or {}),
            created_at=time.time(),
        )
        await anyio.to_thread.run_sync(write_atomic, path, data)
        await self.db.run(
            lambda c: c.execute(
                "INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    str(path),
                    mime_type,
                    record.bytes,
                    width,
                    height,
                    operation,
                    provider,
                    job_id,
                    json.dumps(record.inputs),
                    json.dumps(record.meta),
                    record.created_at,
                ),
            )
        )
        return record

    async def get(self, result_id: str) -> ResultRecord:
        """Find a result by id.

        Raises:
            NotFound: if no such result exists (or its file was deleted).
        """
        row = await self.db.run(lambda c: c.execute("SELECT * FROM results WHERE id=?", (result_id,)).fetchone())
        if row is None:
            raise NotFound(
                f"No result with id {result_id!r}. Use a photo://results/<id> URI from an earlier tool result "
                "(resources/list shows recent ones)."
            )
        record = _row_to_record(row)
        if not record.path.exists():
            raise NotFound(f"The file of result {result_id!r} was deleted from {record.path.parent}.")
        return record

    async def get_many(self, ids: list[str]) -> list[ResultRecord]:
        return [await self.get(i) for i in ids]

    async def recent(self, limit: int = 50) -> list[ResultRecord]:
        rows = await self.db.run(
            lambda c: c.execute("SELECT * FROM results ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        )
        return [_row_to_record(r) for r in rows]

    async def read(self, result_id: str) -> tuple[ResultRecord, bytes]:
        """The record and its file's bytes.

        Raises:
            NotFound: if the result is unknown or its file is gone.
        """
        record = await self.get(result_id)
        data = await anyio.Path(record.path).read_bytes()
        return record, data
