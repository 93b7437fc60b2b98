"""One SQLite file in the data dir.

A single connection guarded by a lock. Several server processes may share the file (two
MCP hosts on one machine): multi-statement writes that must be atomic across them go
through `transact` (`BEGIN IMMEDIATE`), and every statement waits up to `BUSY_TIMEOUT_S`
for another process's write to finish.

Where it runs: a job's rows are keyed statements of ~0.05 ms, far less than handing them to
a worker thread and back (a provider call makes about ten). So `run` and `transact` first
try the statement on the event loop, in a transaction that must begin *at once* (no other
thread holds the connection, no other process the write lock); only if it cannot do they
go to a worker thread and wait there. A commit on the loop never waits for the disk: in WAL
mode with `synchronous=NORMAL` a commit is not fsync'd, and the checkpoint (which is) runs
in a worker every `CHECKPOINT_CHANGES` changed rows instead of inside a commit. A
statement that walks a whole table passes `scan=True` and always runs in a worker.

A file that is not a usable photo-mcp database (corrupt, truncated, random bytes, another
application's schema) never stops the server: it is moved aside as
`<name>.corrupt-<timestamp>` (logged at ERROR on `photo_mcp.db`), a fresh database is
started, and `moved_aside` says where the old one went so the caller can re-index.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")
log = logging.getLogger("photo_mcp.db")

BUSY_TIMEOUT_S = 30.0
APPLICATION_ID = 0x50484D43  # "PHMC": set on every database this server creates
LABEL_LIMIT = 200  # characters kept of any label or parameter string stored for a job or result
CORRUPT_MARK = ".corrupt-"
WAL_LIMIT_BYTES = 4 * 1024 * 1024
CHECKPOINT_CHANGES = 300  # rows changed between checkpoints: a WAL of a few MB (each row touches several pages)

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
    created_at REAL NOT NULL, updated_at REAL NOT NULL, inputs TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS servers (
    id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, started_at REAL NOT NULL, heartbeat REAL NOT NULL
);
-- The bytes of every indexed result, kept by triggers, so the store quota's check before each save
-- reads one row instead of summing the whole index (in every process that writes the file).
-- The triggers come first: a row another process adds meanwhile is then counted exactly once.
CREATE TABLE IF NOT EXISTS store_usage (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS results_usage_add AFTER INSERT ON results
    BEGIN UPDATE store_usage SET bytes = bytes + NEW.bytes; END;
CREATE TRIGGER IF NOT EXISTS results_usage_remove AFTER DELETE ON results
    BEGIN UPDATE store_usage SET bytes = bytes - OLD.bytes; END;
CREATE TRIGGER IF NOT EXISTS results_usage_change AFTER UPDATE OF bytes ON results
    BEGIN UPDATE store_usage SET bytes = bytes - OLD.bytes + NEW.bytes; END;
INSERT OR IGNORE INTO store_usage SELECT 0, COALESCE(SUM(bytes), 0) FROM results;
"""
# The columns our code reads, per table we own: a table by one of these names without them
# belongs to another application.
_COLUMNS = {
    "results": {"id", "path", "mime_type", "bytes", "width", "height", "operation", "provider", "job_id"},
    "jobs": {"id", "operation", "provider", "params", "state", "progress", "message", "provider_ref"},
    "ledger": {"job_id", "provider", "day", "estimated", "charged", "settled"},
}
# SQLite's primary result codes for "this file is damaged / not a database".
_CORRUPT, _NOTADB = 11, 26
# ... and for "another connection holds the lock right now".
_BUSY = {5, 6}
# ... and for "it cannot be written": read-only, I/O error, disk full, cannot open.
_UNWRITABLE = {8: "the database is read-only", 10: "the database hit an I/O error", 13: "the disk is full"}
_UNWRITABLE_OS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "a file size limit was reached",
}


class Unusable(sqlite3.DatabaseError):
    """The file opens but is not a healthy photo-mcp database."""


def bounded(value: Any, limit: int = LABEL_LIMIT) -> Any:
    """`value` with every string longer than `limit` cut to its first `limit` characters + "…"
    (inside lists, tuples and dict values too): labels and parameters are stored and held per
    job, so one 5 MB URL must not cost 5 MB per call."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, dict):
        return {k: bounded(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(bounded(v, limit) for v in value)
    return value


def is_corruption(exc: BaseException) -> bool:
    """Whether `exc` says the file itself is bad (not busy, locked or unreadable by permission)."""
    if isinstance(exc, Unusable):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in (_CORRUPT, _NOTADB)


def storage_failure(exc: BaseException) -> str | None:
    """What went wrong, when `exc` says the disk or database cannot be written (full, quota,
    read-only, size limit); None for any other error."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _UNWRITABLE:
            return _UNWRITABLE[code & 0xFF]
        text = str(exc).lower()
        return "the disk is full" if "disk is full" in text or "database is full" in text else None
    if isinstance(exc, OSError):
        return _UNWRITABLE_OS.get(exc.errno or 0)
    return None


def moved_aside_files(path: Path) -> list[Path]:
    """Databases that were moved aside next to `path`, oldest first."""
    return sorted(
        (p for p in path.parent.glob(path.name + CORRUPT_MARK + "*") if not p.name.endswith(("-wal", "-shm"))),
        key=lambda p: p.name,
    )


def _verify(conn: sqlite3.Connection) -> None:
    first = conn.execute("PRAGMA quick_check").fetchone()
    if first is None or first[0] != "ok":
        raise Unusable(f"integrity check failed: {first[0] if first else 'no answer'}")
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id not in (0, APPLICATION_ID):
        raise Unusable(f"it belongs to another application (application_id {app_id:#x})")
    tables = {
        name: {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    }
    for name, needed in _COLUMNS.items():
        if name in tables and not needed <= tables[name]:
            missing = ", ".join(sorted(needed - tables[name]))
            raise Unusable(f"its table {name!r} is not ours (no column {missing})")
    if tables and not tables.keys() & _COLUMNS.keys():
        raise Unusable(f"it holds another application's tables ({', '.join(sorted(tables)[:5])})")


def _migrate(conn: sqlite3.Connection) -> None:
    # Columns added since the first release, appended (rows are written positionally).
    jobs = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "inputs" not in jobs:
        conn.execute("ALTER TABLE jobs ADD COLUMN inputs TEXT NOT NULL DEFAULT '[]'")
    # Who a job or result belongs to (tools/core/principals.py); rows made before have none.
    if "principal" not in jobs:
        conn.execute("ALTER TABLE jobs ADD COLUMN principal TEXT")
    # The server process that runs a job (tools/core/lease.py); rows made before have none.
    if "owner" not in jobs:
        conn.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
    results = {row[1] for row in conn.execute("PRAGMA table_info(results)")}
    if "principal" not in results:
        conn.execute("ALTER TABLE results ADD COLUMN principal TEXT")


def _connect(path: Path) -> sqlite3.Connection:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        conn.row_factory = sqlite3.Row
        _verify(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")  # the WAL shrinks back after a checkpoint
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a worker (`Database._checkpoint_if_due`)
        if conn.execute("PRAGMA application_id").fetchone()[0] == 0:
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.executescript(_SCHEMA)
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _opening(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the database while it is opened (released on exit or death)."""
    fd = os.open(path.with_name(path.name + ".open-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}{CORRUPT_MARK}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{CORRUPT_MARK}{stamp}-{n}")
    os.replace(path, target)
    # A stale -wal would be replayed into the fresh file: its pages belong to the old one.
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target


def database_report(path: Path) -> list[str]:
    """What `photo-mcp doctor` says about the database at `path`: healthy or not (checked
    read-only: nothing is moved), and every earlier database that was moved aside."""
    lines = []
    if not path.exists():
        lines.append("database:      not created yet (made on the first start)")
    else:
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
            try:
                _verify(conn)
                jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
                results = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            finally:
                conn.close()
            lines.append(f"database:      ok ({results} results, {jobs} jobs indexed); {path}")
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                lines.append(f"database:      UNUSABLE ({exc}); the next start moves it aside and re-indexes; {path}")
            else:
                lines.append(f"database:      cannot be checked ({exc}); {path}")
    for old in moved_aside_files(path):
        lines.append(f"  moved aside:  {old} (an unusable database, replaced by a fresh one)")
    return lines


class Database:
    """A SQLite database used from the event loop: each call runs at once on the loop when
    nothing holds the connection, else in a worker thread (see the module docstring).

    Raises:
        sqlite3.Error: from any query (an unwritable data dir, a lock held past the busy timeout).
    """

    def __init__(self, path: Path) -> None:
        # Owner-only: the index names every input and result. A new data dir is made 0700 and a
        # new database file 0600 (SQLite gives its -wal/-shm files the database file's mode).
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.moved_aside: Path | None = None
        # Servers starting together on one data dir: one at a time creates, checks and migrates the
        # file, so none can take another's half-made schema for a damaged one.
        with _opening(path):
            try:
                self._conn = _connect(path)
            except sqlite3.DatabaseError as exc:
                if not is_corruption(exc):
                    raise
                self.moved_aside = _move_aside(path)
                log.error(
                    "The database %s cannot be used (%s): moved it aside to %s and started a fresh one; "
                    "result files on disk are re-indexed, job history starts empty.",
                    path,
                    exc,
                    self.moved_aside,
                )
                self._conn = _connect(path)
        self._lock = threading.Lock()
        self._checkpointed = self._conn.total_changes
        self._waits = True  # the connection's busy timeout: BUSY_TIMEOUT_S (True) or 0, set as needed

    def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` under the lock, in the calling thread."""
        with self._lock:
            self._wait_when_busy(True)
            out = fn(self._conn)
            self._checkpoint_if_due()
            return out

    def _wait_when_busy(self, wait: bool) -> None:
        """Set the busy timeout (holding the lock): only when it changes, as calls on the loop
        (never waiting) and in workers (waiting) mostly come in runs."""
        if self._waits != wait:
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000) if wait else 0}")
            self._waits = wait

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, scan: bool = False) -> T:
        """Run `fn(connection)`: on the loop if it can begin at once, else in a worker thread.
        `scan`: `fn` walks a whole table, so it always runs in a worker."""
        if not scan:
            done, out = self._now(fn, "BEGIN")
            if done:
                await self._checkpoint_when_due()
                return out
        return await anyio.to_thread.run_sync(self.call, fn)

    def transact_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` in one `BEGIN IMMEDIATE` transaction: no other connection, in
        this process or another, writes between its reads and its writes. Rolled back if `fn` raises."""
        with self._lock:
            self._wait_when_busy(True)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # never leave the shared connection inside a transaction
                    self._conn.execute("ROLLBACK")
                raise
            self._checkpoint_if_due()
            return out

    async def transact(self, fn: Callable[[sqlite3.Connection], T], *, scan: bool = False) -> T:
        """`transact_sync`: on the loop if the write lock is free at once, else in a worker thread."""
        if not scan:
            done, out = self._now(fn, "BEGIN IMMEDIATE")
            if done:
                await self._checkpoint_when_due()
                return out
        return await anyio.to_thread.run_sync(self.transact_sync, fn)

    def _now(self, fn: Callable[[sqlite3.Connection], T], begin: str) -> tuple[bool, Any]:
        """Try `fn` in a transaction on the calling thread without waiting for any lock:
        (True, its result), or (False, None) when the connection or the database is busy
        (then nothing of `fn` was kept and the caller runs it in a worker).

        Raises:
            sqlite3.Error: `fn` failed for another reason (rolled back).
        """
        if not self._lock.acquire(blocking=False):
            return False, None
        conn = self._conn
        try:
            self._wait_when_busy(False)
            conn.execute(begin)
            try:
                out = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in _BUSY:
                raise
            return False, None
        finally:
            self._lock.release()
        return True, out

    def _checkpoint_due(self) -> bool:
        return self._conn.total_changes - self._checkpointed >= CHECKPOINT_CHANGES

    async def _checkpoint_when_due(self) -> None:
        # The checkpoint fsyncs: in a worker, paid by the call that crossed the mark.
        if self._checkpoint_due():
            await anyio.to_thread.run_sync(self._checkpoint_locked)

    def _checkpoint_locked(self) -> None:
        with self._lock:
            self._checkpoint_if_due()

    def _checkpoint_if_due(self) -> None:
        """Copy the WAL back into the database once enough has changed (holding the lock, off the loop)."""
        if self._checkpoint_due():
            self._checkpointed = self._conn.total_changes
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError:  # busy: the next one catches up
                log.debug("WAL checkpoint skipped", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
