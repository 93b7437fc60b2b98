"""The start-up sweep deletes only the server's own temp files, in its own results directory."""

from __future__ import annotations

import os
from pathlib import Path

from tools.core.db import Database
from tools.core.results import TEMP_PREFIX, ResultStore


def test_the_sweep_never_touches_files_the_server_did_not_write(tmp_path: Path) -> None:
    pictures = tmp_path / "Pictures"  # a pre-existing, shared output dir
    pictures.mkdir()
    theirs = [".tmp-holiday.jpg", ".tmp-", ".tmp-draft.psd", "photo-mcp-tmp-x", ".photo-mcp-tmpx"]
    for name in theirs:
        (pictures / name).write_bytes(b"the user's own file")
    (pictures / "sub").mkdir()
    (pictures / "sub" / f"{TEMP_PREFIX}nested.png").write_bytes(b"not in our directory")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"outside")
    (pictures / f"{TEMP_PREFIX}link.png").symlink_to(outside)  # a symlink is not a file we wrote
    ours = pictures / f"{TEMP_PREFIX}abc123.png"
    ours.write_bytes(b"half-written result")

    ResultStore(pictures, Database(tmp_path / "data" / "index.sqlite3"))

    assert not ours.exists()
    for name in theirs:
        assert (pictures / name).read_bytes() == b"the user's own file", name
    assert (pictures / "sub" / f"{TEMP_PREFIX}nested.png").exists()
    assert os.path.islink(pictures / f"{TEMP_PREFIX}link.png") and outside.read_bytes() == b"outside"
