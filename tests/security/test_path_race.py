"""The path sandbox is checked on the file that is actually read, not on a name read twice.

An attacker who can write inside an allowed directory swaps one of its folders for a symlink
to a secret folder while the server reads from it. The server must read either the inside
file or nothing, never the outside one. A file is checked when the call starts and read when
its work starts, through the same checks: a swap in between is refused too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from tools.core.db import Database
from tools.core.errors import InvalidInput, NotFound
from tools.core.fetch import SafeFetcher
from tools.core.refs import ImageResolver
from tools.core.results import ResultStore

INSIDE = b"inside " * 100
SECRET = b"SECRET " * 100
FLIPPER = """
import os, sys
work, outside = sys.argv[1], sys.argv[2]
real, parked = os.path.join(work, "album"), os.path.join(work, "album.parked")
while True:  # the folder the server resolved becomes, for a moment, a symlink to the secret one
    os.rename(real, parked)
    os.symlink(outside, real)
    os.unlink(real)
    os.rename(parked, real)
"""


def _resolver(tmp_path: Path, work: Path) -> ImageResolver:
    store = ResultStore(tmp_path / "results", Database(tmp_path / "db.sqlite3"))
    fetcher = SafeFetcher(httpx2.AsyncClient(), allow_private=False, max_bytes=1 << 20, timeout=5)  # never used
    return ImageResolver(
        store=store, fetcher=fetcher, allowed_dirs=[work.resolve(), (tmp_path / "results").resolve()],
        base_dir=(tmp_path / "results").resolve(), remote=False,
    )  # fmt: skip


async def test_a_folder_swapped_for_a_symlink_mid_read_never_leaks_the_outside_file(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("symlink swapping needs POSIX")
    work, outside = tmp_path / "work", tmp_path / "outside"
    (work / "album").mkdir(parents=True)
    outside.mkdir()
    (work / "album" / "photo.png").write_bytes(INSIDE)
    (outside / "photo.png").write_bytes(SECRET)
    resolver = _resolver(tmp_path, work)
    outcomes = {"inside": 0, "refused": 0, "missing": 0, "leaked": 0}
    flipper = subprocess.Popen([sys.executable, "-c", FLIPPER, str(work), str(outside)])
    try:
        with anyio.fail_after(120):
            for _ in range(600):
                try:  # both checked opens race the flipper: at resolve, and the read when work starts
                    source = await resolver.resolve(str(work / "album" / "photo.png"))
                    data = await source.read()
                except NotFound:
                    outcomes["missing"] += 1  # caught mid-swap: the folder was parked
                    continue
                except InvalidInput:
                    outcomes["refused"] += 1  # outside, or caught mid-swap: a refusal either way
                    continue
                outcomes["leaked" if data == SECRET else "inside"] += 1
                assert data in (INSIDE, SECRET)
    finally:
        flipper.kill()
        flipper.wait()
    assert outcomes["leaked"] == 0, outcomes
    assert outcomes["inside"] + outcomes["refused"] + outcomes["missing"] == 600


async def test_a_final_symlink_swapped_in_after_the_check_is_not_followed(tmp_path: Path) -> None:
    """The deterministic version: the checked, resolved name is a symlink by the time it is opened."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    target = work / "photo.png"
    target.write_bytes(INSIDE)

    class SwapAfterCheck(ImageResolver):
        """The attacker's move, made at the worst moment: right after the sandbox check passed."""

        def _allowed(self, path: Path) -> bool:
            allowed = super()._allowed(path)
            if path == target.resolve() and not target.is_symlink():
                target.unlink()
                target.symlink_to(outside / "secret.png")
            return allowed

    base = _resolver(tmp_path, work)
    resolver = SwapAfterCheck(
        store=base.store, fetcher=base.fetcher, allowed_dirs=base.allowed_dirs, base_dir=base.base_dir, remote=False
    )
    with pytest.raises(InvalidInput, match="outside the directories"):
        await resolver.resolve(str(target))


async def test_a_file_swapped_for_a_symlink_after_the_call_started_is_refused_when_read(tmp_path: Path) -> None:
    """The call starts (the path checks out), then, while it queues, the file becomes a symlink
    to a secret outside: the read, when its work starts, is refused, never the secret."""
    if sys.platform == "win32":
        pytest.skip("symlinks need POSIX here")
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "secret.png").write_bytes(SECRET)
    target = work / "photo.png"
    target.write_bytes(INSIDE)
    source = await _resolver(tmp_path, work).resolve(str(target))
    target.unlink()
    target.symlink_to(outside / "secret.png")
    with pytest.raises(InvalidInput, match="outside the directories"):
        await source.read()
    with pytest.raises(InvalidInput, match="outside the directories"):
        (await source.reader())()  # what a worker thread calls
