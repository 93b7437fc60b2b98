"""A job's record: its states, its fields, its row in the `jobs` table (tools/core/db.py), and the
`Outcome` its work produces.

Rows name their columns (tables migrated from older releases have them in another order) and
are written only by the server that owns the job (tools/core/lease.py): `UPSERT` changes a row
only while its owner is the writer, `CLAIM` takes a job over from a server that is gone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.core.results import Lineage, ResultRecord

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
COLS = (
    "id", "operation", "provider", "params", "state", "progress", "message", "provider_ref", "result_ids", "error",
    "details", "credits_estimated", "credits_charged", "created_at", "updated_at", "inputs", "principal", "owner",
)  # fmt: skip
MARKS = ",".join("?" * len(COLS))
INSERT = f"INSERT INTO jobs ({','.join(COLS)}) VALUES ({MARKS})"
# A job row is written only by the server that owns it: one that took it over (its owner's lease
# expired) is never overwritten by the old owner, should that one still be limping along.
CLAIM = "UPDATE jobs SET owner=? WHERE id=? AND owner IS ? AND state IN ('queued','running')"
UPSERT = (
    INSERT
    + " ON CONFLICT(id) DO UPDATE SET "
    + ",".join(f"{c}=excluded.{c}" for c in COLS[1:])
    + " WHERE jobs.owner IS excluded.owner"
)


@dataclass
class Job:
    id: str
    operation: str
    provider: str
    params: dict[str, Any]
    state: JobState = "queued"
    progress: float = 0.0
    message: str = "queued"
    provider_ref: dict[str, Any] = field(default_factory=dict)
    result_ids: list[str] = field(default_factory=list)
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    credits_estimated: float = 0.0
    credits_charged: float = 0.0
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    inputs: list[str] = field(default_factory=list)
    principal: str | None = None  # who started it (tools/core/principals.py)
    owner: str | None = None  # the server process running it (tools/core/lease.py)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def lineage(self) -> Lineage:
        """What its results record: this job's operation, the provider that ran, its inputs."""
        return Lineage(self.operation, self.provider, self.id, list(self.inputs), principal=self.principal)

    def row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.operation,
            self.provider,
            json.dumps(self.params),
            self.state,
            self.progress,
            self.message,
            json.dumps(self.provider_ref),
            json.dumps(self.result_ids),
            self.error,
            json.dumps(self.details),
            self.credits_estimated,
            self.credits_charged,
            self.created_at,
            self.updated_at,
            json.dumps(self.inputs),
            self.principal,
            self.owner,
        )

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(
            id=row["id"],
            operation=row["operation"],
            provider=row["provider"],
            params=json.loads(row["params"]),
            state=row["state"],
            progress=row["progress"],
            message=row["message"],
            provider_ref=json.loads(row["provider_ref"]),
            result_ids=json.loads(row["result_ids"]),
            error=row["error"],
            details=json.loads(row["details"]),
            credits_estimated=row["credits_estimated"],
            credits_charged=row["credits_charged"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            inputs=json.loads(row["inputs"]),
            principal=row["principal"] if "principal" in row.keys() else None,  # noqa: SIM118 - sqlite3.Row
            owner=row["owner"] if "owner" in row.keys() else None,  # noqa: SIM118 - sqlite3.Row
        )


@dataclass
class Outcome:
    """What a finished piece of work produced."""

    results: list[ResultRecord]
    details: dict[str, Any] = field(default_factory=dict)
    message: str = ""
