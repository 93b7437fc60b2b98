"""Which server process is alive: an identity and a lease per running server on one data dir.

Several servers may share one data directory (Claude Desktop and an IDE agent start one each).
Each registers itself in the `servers` table (id, pid, host, heartbeat) and renews its heartbeat
every `ttl / 4` seconds; every job row names its `owner`. A server counts as gone when its
heartbeat is older than `ttl`, or at once when its lock file is free: each server holds an
exclusive `flock` on `<data dir>/servers/<id>.lock` for as long as it lives, and the kernel drops
it when the process dies, SIGKILL included. Only a gone server's unfinished jobs are taken over
(`JobManager`), and only a gone server's temp files are swept (`ResultStore`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sqlite3
import time
from pathlib import Path

from tools.core.db import Database

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: heartbeats only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("photo_mcp.lease")

LEASE_TTL_S = 30.0


def new_server_id() -> str:
    return "s" + secrets.token_hex(5)


def lock_free(lock_dir: Path | None, server_id: str) -> bool:
    """Whether `server_id`'s lock file exists and nobody holds it (its process is gone)."""
    if lock_dir is None or fcntl is None:
        return False
    try:
        fd = os.open(lock_dir / f"{server_id}.lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: that server is alive
    finally:
        os.close(fd)
    return True


def still_running(lock_dir: Path | None, server_id: str, heartbeat: float | None, ttl: float) -> bool:
    """Whether a server with this last `heartbeat` runs: its heartbeat is fresh and its lock file
    is not free to take (a held lock, or no lock to check)."""
    return heartbeat is not None and heartbeat >= time.time() - ttl and not lock_free(lock_dir, server_id)


class Lease:
    """This process's identity and lease; `alive(other)` tells whether another server still runs."""

    def __init__(self, db: Database, lock_dir: Path | None, *, ttl: float = LEASE_TTL_S) -> None:
        self.db = db
        self.id = new_server_id()
        self.ttl = ttl
        self.lock_dir = lock_dir
        self._lock_fd: int | None = None

    @property
    def renew_every(self) -> float:
        return self.ttl / 4

    def register(self) -> None:
        """Take the lock file and insert this server's row (in the calling thread).

        Raises:
            sqlite3.Error, OSError: the database or the data dir cannot be written.
        """
        if self.lock_dir is not None and fcntl is not None:
            self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_dir / f"{self.id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._lock_fd = fd
        now = time.time()
        row = (self.id, os.getpid(), socket.gethostname(), now, now)

        self.db.call(lambda c: c.execute("INSERT INTO servers VALUES (?,?,?,?,?)", row))  # table: tools/core/db.py

    async def renew(self) -> None:
        """Refresh the heartbeat (the row is re-made if another server removed it as stale)."""
        now = time.time()
        row = (self.id, os.getpid(), socket.gethostname(), now, now)
        await self.db.run(
            lambda c: c.execute(
                "INSERT INTO servers VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET heartbeat=excluded.heartbeat",
                row,
            )
        )

    def alive_sync(self, server_id: str | None) -> bool:
        """Whether the server `server_id` still runs (this one always does; None: an owner from
        before leases, counted as gone)."""
        if server_id == self.id:
            return True
        if not server_id:
            return False
        row = self.db.call(lambda c: c.execute("SELECT heartbeat FROM servers WHERE id=?", (server_id,)).fetchone())
        return still_running(self.lock_dir, server_id, row[0] if row is not None else None, self.ttl)

    def forget_gone_sync(self) -> None:
        """Remove the rows and lock files of every other server that is gone."""
        ids = [
            r[0] for r in self.db.call(lambda c: c.execute("SELECT id FROM servers WHERE id<>?", (self.id,)).fetchall())
        ]
        for server_id in ids:
            if not self.alive_sync(server_id):
                self.forget_sync(server_id)

    def forget_sync(self, server_id: str) -> None:
        """Remove a gone server's row and lock file."""
        self.db.call(lambda c: c.execute("DELETE FROM servers WHERE id=?", (server_id,)))
        if self.lock_dir is not None:
            (self.lock_dir / f"{server_id}.lock").unlink(missing_ok=True)

    def release(self) -> None:
        """On a clean exit: drop this server's row and lock, so others may take its jobs at once."""
        try:
            self.db.call(lambda c: c.execute("DELETE FROM servers WHERE id=?", (self.id,)))
        except sqlite3.Error:
            log.warning("Could not remove this server's lease row.", exc_info=True)
        if self._lock_fd is not None:
            if self.lock_dir is not None:
                (self.lock_dir / f"{self.id}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def servers_report(db_path: Path, lock_dir: Path, *, ttl: float = LEASE_TTL_S) -> list[str]:
    """What `photo-mcp doctor` says about the servers on a data dir: each one's pid, host, last
    heartbeat and unfinished jobs, and whether it still runs (checked read-only: nothing is taken over)."""
    if not db_path.exists():
        return []
    try:
        conn = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            servers = conn.execute("SELECT id, pid, host, heartbeat FROM servers ORDER BY started_at").fetchall()
            jobs = dict(
                conn.execute("SELECT owner, COUNT(*) FROM jobs WHERE state IN ('queued','running') GROUP BY owner")
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [f"servers:       cannot be read ({exc})"]
    lines = [f"servers:       {len(servers)} running on this data dir" if servers else "servers:       none running"]
    now = time.time()
    for server_id, pid, host, beat in servers:
        gone = "gone (its jobs are taken over by the next server that starts)"
        state = "alive" if still_running(lock_dir, server_id, beat, ttl) else gone
        count = jobs.get(server_id, 0)
        lines.append(
            f"  {server_id}: pid {pid} on {host}, heartbeat {now - beat:.0f} s ago, {count} unfinished job(s); {state}"
        )
    return lines
