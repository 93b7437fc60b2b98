"""One SQLite file in the data dir, used off the event loop.

A single connection guarded by a lock: writes are tiny and rare compared with the
provider calls around them, and one connection keeps WAL checkpoints simple.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, mime_type TEXT NOT NULL, bytes INTEGER NOT NULL,
    width INTEGER NOT NULL, height INTEGER NOT NULL, operation TEXT NOT NULL, provider TEXT NOT NULL,
    job_id TEXT, inputs TEXT NOT NULL, meta TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_created ON results(created_at);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, operation TEXT NOT NULL, provider TEXT NOT NULL, params TEXT NOT NULL,
    state TEXT NOT NULL, progress REAL NOT NULL, message TEXT NOT NULL, provider_ref TEXT NOT NULL,
    result_ids TEXT NOT NULL, error TEXT, details TEXT NOT NULL,
    credits_estimated REAL NOT NULL, credits_charged REAL NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
"""


class Database:
    """A SQLite database whose calls run in a worker thread.

    Raises:
        sqlite3.Error: from any query (a corrupt or unwritable data dir).
    """

    def __init__(self, path: Path) -> None:
        # Owner-only: the index names every input and result. A new data dir is made 0700 and a
        # new database file 0600 (SQLite gives its -wal/-shm files the database file's mode).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` under the lock, in the calling thread."""
        with self._lock:
            return fn(self._conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in a worker thread."""
        return await anyio.to_thread.run_sync(self.call, fn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
