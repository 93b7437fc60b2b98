"""Result files on disk: atomic writes, the sweep of temp files a crash left, the size quota.

Temp files carry a prefix no other program uses and the id of the server writing them, so a
start-up sweep deletes only what a server that is gone left behind (tools/core/lease.py). The
quota removes the oldest results no queued or running job made or reads, and only files the
index names, directly in the results dir, under the names `ResultStore.save` gives.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread

from tools.core.db import Database
from tools.core.errors import StorageFull

log = logging.getLogger("photo_mcp.results")

# Temp files of `write_atomic`: a prefix no other program uses, so the start-up sweep can never
# delete a file this server did not write (the output dir may be a shared one like ~/Pictures).
TEMP_PREFIX = ".photo-mcp-tmp-"
MB = 1024 * 1024


def mb(n: float) -> str:
    return f"{n / MB:.1f} MB" if n < 10 * MB else f"{n / MB:.0f} MB"


# A temp file's name carries the id of the server writing it: TEMP_PREFIX + "<server id>-" + random.
_TEMP_OWNER = re.compile(r"^(?P<server>s[0-9a-f]{10})-")


def write_atomic(path: Path, data: bytes, *, server_id: str | None = None) -> None:
    """Write `data` to `path` so that readers see either nothing or the whole file.

    The temp file is named after `server_id`, so another server's start-up sweep leaves it alone.

    Raises:
        OSError: if the directory is not writable or the disk is full.
    """
    tmp = write_temp(path.parent, data, server_id=server_id, suffix=path.suffix)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_temp(directory: Path, data: bytes, *, server_id: str | None = None, suffix: str = "") -> Path:
    """Write `data` to a new owner-only temp file in `directory`, fsync'd: renaming it then
    publishes the whole file at once. Nothing is left behind if it fails.

    Raises:
        OSError: if the directory is not writable or the disk is full.
    """
    prefix = TEMP_PREFIX + (f"{server_id}-" if server_id else "")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def sweep_temp_files(directory: Path, alive: Callable[[str | None], bool] | None = None) -> None:
    """Delete leftovers of a crash mid-write: only our own temp files (TEMP_PREFIX), only regular
    files owned by this user, only directly in `directory` (never a `.tmp-*` someone else made),
    and never one a server that is still `alive` is writing (the name carries its id)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    for stale in directory.glob(TEMP_PREFIX + "*"):
        owner = _TEMP_OWNER.match(stale.name[len(TEMP_PREFIX) :])
        if alive is not None and alive(owner["server"] if owner else None):
            continue
        try:
            st = stale.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (uid is None or st.st_uid == uid):
            stale.unlink(missing_ok=True)


async def usage(db: Database) -> int:
    """Bytes of every indexed result (kept by the database's triggers, tools/core/db.py)."""
    row = await db.run(lambda c: c.execute("SELECT bytes FROM store_usage WHERE id=0").fetchone())
    return int(row[0]) if row is not None else 0


def _ours(row: Any, directory: Path, names: re.Pattern[str]) -> Path | None:
    """The file of index row `row` if it is one this store wrote: directly in its directory,
    under a name `save` gives, with the row's id, a regular file (not a symlink)."""
    path = Path(row["path"])
    m = names.match(path.name)
    if m is None or m["id"] != row["id"]:
        return None
    try:
        if path.parent.resolve() != directory.resolve() or not stat.S_ISREG(path.lstat().st_mode):
            return None
    except OSError:
        return None
    return path


async def make_room(db: Database, directory: Path, quota: int, needed: int, names: re.Pattern[str]) -> None:
    """Remove the oldest results that no queued or running job made or reads until `needed`
    more bytes fit in the quota.

    Raises:
        StorageFull: they cannot be made to fit (the results left are in use, or not ours).
        sqlite3.Error: the index cannot be read or written.
    """
    if needed > quota:
        raise StorageFull(
            f"The result would be {mb(needed)}, more than the whole result store may hold ({mb(quota)}, "
            "PHOTO_MCP_MAX_STORE_MB); nothing was saved."
        )

    def pick(c: sqlite3.Connection) -> list[Path]:
        used = int(c.execute("SELECT COALESCE(SUM(bytes), 0) FROM results").fetchone()[0])
        if used + needed <= quota:
            return []
        busy = c.execute("SELECT id, inputs, params FROM jobs WHERE state IN ('queued','running')").fetchall()
        busy_ids = {b["id"] for b in busy}
        busy_text = " ".join(f"{b['inputs']} {b['params']}" for b in busy)
        doomed: list[tuple[str, Path]] = []
        for row in c.execute("SELECT id, path, bytes, job_id FROM results ORDER BY created_at, id"):
            if used + needed <= quota:
                break
            if row["job_id"] in busy_ids or row["id"] in busy_text:
                continue  # made or read by a job still running
            path = _ours(row, directory, names)
            if path is None:
                continue  # not a file this store wrote: never deleted
            doomed.append((row["id"], path))
            used -= int(row["bytes"])
        if used + needed > quota:
            raise StorageFull(
                f"The result store is full: {mb(used)} of its {mb(quota)} (PHOTO_MCP_MAX_STORE_MB) are results "
                "that running jobs still need; nothing was saved. Try again when they finish, or raise the quota."
            )
        c.executemany("DELETE FROM results WHERE id=?", [(i,) for i, _ in doomed])
        return [p for _, p in doomed]

    if await usage(db) + needed <= quota:  # the common case, answered on the loop: nothing to remove
        return
    paths = await db.transact(pick, scan=True)  # it checks again: another call may have saved since
    for path in paths:
        await anyio.to_thread.run_sync(lambda p=path: p.unlink(missing_ok=True))
    if paths:
        log.warning("Removed %d old result(s) to stay under PHOTO_MCP_MAX_STORE_MB.", len(paths))
