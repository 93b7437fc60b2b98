"""A result's record: where it came from (`Lineage`), its row in the `results` table
(tools/core/db.py) and its `photo://` address. The store that writes and finds them is
tools/core/results.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("photo_mcp.results")

RESULT_URI_PREFIX = "photo://results/"
# Pictures the user handed over (the viewer's drop zone, an upload URL): stored and indexed like
# results, as operation "upload", and addressed as photo://uploads/{id}.
UPLOAD_URI_PREFIX = "photo://uploads/"
UPLOAD_OPERATION = "upload"
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/tiff": "tiff",
}


@dataclass(frozen=True)
class Lineage:
    """Where a result comes from: the job's operation, the provider that actually ran, its inputs."""

    operation: str
    provider: str
    job_id: str | None = None
    inputs: list[str] = field(default_factory=list)
    principal: str | None = None  # whose it is (tools/core/principals.py)


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
    principal: str | None = None

    @property
    def is_upload(self) -> bool:
        return self.operation == UPLOAD_OPERATION

    @property
    def uri(self) -> str:
        return (UPLOAD_URI_PREFIX if self.is_upload else RESULT_URI_PREFIX) + self.id

    @property
    def name(self) -> str:
        return self.path.name


def row_to_record(row: Any) -> ResultRecord:
    """The record of an index row.

    Raises:
        ValueError, TypeError: the row is damaged (bad JSON, a value of the wrong type).
    """
    inputs, meta = json.loads(row["inputs"]), json.loads(row["meta"])
    if not isinstance(inputs, list) or not isinstance(meta, dict):
        raise TypeError("inputs/meta are not a list/an object")
    texts = [row[k] for k in ("id", "path", "mime_type", "operation", "provider")]
    if not all(isinstance(t, str) for t in texts) or not isinstance(row["job_id"], str | None):
        raise TypeError("a text column holds a non-text value")
    return ResultRecord(
        id=row["id"],
        path=Path(row["path"]),
        mime_type=row["mime_type"],
        bytes=int(row["bytes"]),
        width=int(row["width"]),
        height=int(row["height"]),
        operation=row["operation"],
        provider=row["provider"],
        job_id=row["job_id"],
        inputs=inputs,
        meta=meta,
        created_at=float(row["created_at"]),
        principal=row["principal"] if "principal" in row.keys() else None,  # noqa: SIM118 - sqlite3.Row
    )


def readable(rows: list[Any]) -> list[ResultRecord]:
    records = []
    for row in rows:
        try:
            records.append(row_to_record(row))
        except (ValueError, TypeError, KeyError) as exc:  # one damaged row must not hide the others
            log.error("Skipped result %r: its index row cannot be read (%s).", row["id"], exc)
    return records
