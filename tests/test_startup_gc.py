"""Serving pauses the cyclic garbage collector while the server is built (server/__main__.py):
it must be running again afterwards, also when start-up stops at a configuration error."""

from __future__ import annotations

import gc
from pathlib import Path

from server.__main__ import main


def test_a_start_up_that_fails_leaves_the_collector_on(tmp_path: Path) -> None:
    assert main(["--env-file", str(tmp_path / "missing.env")]) == 2
    assert gc.isenabled()
