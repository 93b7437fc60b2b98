"""The official MCP conformance suite (npm @modelcontextprotocol/conformance) against photo-mcp over
Streamable HTTP.

The suite's active server scenarios run against `photo-mcp --transport http`; the ones that do
not apply (they call the suite's own fixture tools/prompts/resources, or optional capabilities
photo-mcp does not declare) are listed in tests/clients/conformance-expected-failures.yaml, and
the suite itself fails the run on any other failure — or when a listed one starts passing.

The suite needs Node 22 (it imports `globSync` from `fs`); .ci/run installs it from the npm
registry beside the suite (.ci/conformance, the `node` package) and sets
PHOTO_MCP_REQUIRE_CONFORMANCE=1, so there this test cannot be skipped. PHOTO_MCP_CONFORMANCE_DIR
points elsewhere than .ci/conformance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import anyio
import pytest

from tests.support import http_subprocess

ROOT = Path(__file__).resolve().parent.parent
SUITE_DIR = Path(os.environ.get("PHOTO_MCP_CONFORMANCE_DIR") or ROOT / ".ci" / "conformance")
SUITE = SUITE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EXPECTED_FAILURES = ROOT / "tests" / "clients" / "conformance-expected-failures.yaml"
# Scenarios that apply to photo-mcp and must pass (checked from the suite's own result files).
APPLICABLE = {
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-error",
    "completion-complete",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
}


def _node() -> str | None:
    """A Node ≥ 22: the one .ci/run installs beside the suite, else one on PATH."""
    for candidate in (SUITE_DIR / "node_modules" / ".bin" / "node", shutil.which("node")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


async def _node_major(node: str) -> int:
    done = await anyio.run_process([node, "--version"])
    return int(done.stdout.decode().strip().lstrip("v").split(".")[0])


def expected_failures() -> list[str]:
    return re.findall(r"^\s+- ([a-z0-9-]+)", EXPECTED_FAILURES.read_text(), re.MULTILINE)


async def test_conformance_suite_over_streamable_http(tmp_path: Path) -> None:
    node = _node()
    missing = None
    if not SUITE.exists():
        missing = "the conformance suite is not installed"
    elif node is None or await _node_major(node) < 22:
        missing = "it needs Node 22 or newer"
    if missing:
        if os.environ.get("PHOTO_MCP_REQUIRE_CONFORMANCE"):
            pytest.fail(f"PHOTO_MCP_REQUIRE_CONFORMANCE is set but {missing}")
        pytest.skip(f"{missing} (.ci/run installs it)")
    assert node
    out = tmp_path / "results"
    async with http_subprocess(tmp_path, "http") as base:
        with anyio.fail_after(300):
            done = await anyio.run_process(
                [node, str(SUITE), "server", "--url", base + "/mcp",
                 "--expected-failures", str(EXPECTED_FAILURES), "-o", str(out)],
                check=False, stderr=None, cwd=SUITE_DIR,
            )  # fmt: skip
    report = done.stdout.decode()
    assert done.returncode == 0, report[-4000:]
    assert "Baseline check passed" in report, report[-4000:]

    outcomes: dict[str, set[str]] = {}
    for checks in out.glob("server-*/checks.json"):
        scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name)
        outcomes[scenario] = {c["status"] for c in json.loads(checks.read_text()) if c["status"] != "INFO"}
    assert APPLICABLE | set(expected_failures()) == set(outcomes), "the suite's scenarios changed"
    for scenario in APPLICABLE:
        assert outcomes[scenario] == {"SUCCESS"}, (scenario, outcomes[scenario])
    assert not APPLICABLE & set(expected_failures())
