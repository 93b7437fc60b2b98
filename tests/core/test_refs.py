"""A file input is checked when the call starts and read when its work starts.

Twenty calls queued behind two workers must not hold twenty inputs in memory (issue 20), so the
resolver keeps no bytes of a file: what a caller sees is that a bad path still fails at once,
and that the bytes used are the file as it is when its work starts, read through the same
checks (tests/security/test_path_race.py covers a swap to a symlink in between).
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from tests.fakes.images import image_bytes
from tools.core import fitting
from tools.core.db import Database
from tools.core.errors import InvalidInput, NotFound
from tools.core.fetch import SafeFetcher
from tools.core.refs import MAX_FILE_BYTES, ImageResolver
from tools.core.results import ResultStore


@pytest.fixture
def resolver(tmp_path: Path) -> ImageResolver:
    results = (tmp_path / "results").resolve()
    store = ResultStore(results, Database(tmp_path / "db.sqlite3"))
    fetcher = SafeFetcher(httpx2.AsyncClient(), allow_private=False, max_bytes=1 << 20, timeout=5)  # never used
    return ImageResolver(
        store=store, fetcher=fetcher, allowed_dirs=[tmp_path.resolve()], base_dir=results, remote=False
    )


async def test_a_file_is_read_when_its_work_starts_not_when_the_call_starts(
    resolver: ImageResolver, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(40, 30, "png"))
    source = await resolver.resolve(str(photo))
    edited = image_bytes(20, 10, "png")
    photo.write_bytes(edited)  # the user saves an edit while the call queues
    assert await source.read() == edited
    assert (await source.reader())() == edited
    fitted = await fitting.fit_source(source, fitting.FitLimits(), 10**6)
    assert (fitted.data, fitted.width, fitted.height) == (edited, 20, 10)


async def test_a_missing_file_fails_at_call_start_and_one_deleted_later_fails_alike(
    resolver: ImageResolver, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    with pytest.raises(NotFound) as at_start:
        await resolver.resolve(str(photo))
    photo.write_bytes(image_bytes(40, 30, "png"))
    source = await resolver.resolve(str(photo))
    photo.unlink()  # gone before its turn came
    with pytest.raises(NotFound) as at_read:
        await source.read()
    assert str(at_read.value) == str(at_start.value) == f"No file at '{photo}'."


async def test_the_checks_made_at_call_start_are_made_again_on_the_read(
    resolver: ImageResolver, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes(40, 30, "png"))
    source = await resolver.resolve(str(photo))
    photo.unlink()
    photo.mkdir()  # the name now is a folder
    with pytest.raises(InvalidInput, match="is a directory"):
        await source.read()
    photo.rmdir()
    with photo.open("wb") as f:  # or a file over the size limit (sparse: nothing is written)
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(InvalidInput, match=f"the limit is {MAX_FILE_BYTES // 2**20} MB"):
        await source.read()
