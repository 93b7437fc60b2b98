"""Several `photo-mcp` servers on one data directory (Claude Desktop and an IDE agent share the
default one): each has an identity and a lease, and never takes what another live server runs.

Real stdio server processes on one data dir, against the fake Removedo on 127.0.0.1. Jobs are
started on two; one server is SIGKILLed mid-job while two others run; they race to take its job
over once it is gone (its lock is free), one of them does (atomically) and finishes it. Every job
ends exactly once, is charged once at the provider and has its result saved once. A server's
start-up sweep removes only the temp files of servers that are gone, never a live one's
in-progress write.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.reliability import ServerProcess, killable_stdio, result_files, temp_files
from tests.support import server_env
from tools.core.results import TEMP_PREFIX

SUBMIT, POLL = "/api/v1/remove-bg", "/api/v1/jobs/"


@asynccontextmanager
async def photo_mcp(tmp_path: Path, **env: str) -> AsyncIterator[tuple[ServerProcess, Client]]:
    env = {"PHOTO_MCP_LEASE_SECONDS": "2", **env}
    async with killable_stdio(tmp_path, **env) as (proc, streams), Client(nullcontext(streams)) as client:
        yield proc, client


async def call(client: Client, tool: str, args: dict[str, Any]) -> Any:
    with anyio.fail_after(60):
        return await client.call_tool(tool, args)


async def until(condition: Any, timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - the fakes expose state, not events
            await anyio.sleep(0.01)


async def finished(client: Client, job: str) -> dict[str, Any]:
    """The job's final state, asked for again while it runs (get_job waits PHOTO_MCP_WAIT_SECONDS at most)."""
    with anyio.fail_after(60):
        while True:
            out = (await client.call_tool("get_job", {"job_id": job, "wait_seconds": 5})).structured_content
            if out["status"] != "running":
                return out


def db_rows(tmp_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"{(tmp_path / 'data' / 'photo-mcp.sqlite3').as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def server_ids(tmp_path: Path) -> set[str]:
    return {r[0] for r in db_rows(tmp_path, "SELECT id FROM servers")}


def polls_of(fake: FakeRemovedo, job: str) -> int:
    return sum(r.method == "GET" and r.path == POLL + job for r in fake.requests)


async def test_two_servers_one_killed_mid_job_every_job_ends_once_charged_once_saved_once(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.jpg").write_bytes(image_bytes(120, 90, "jpeg"))
    (work / "b.jpg").write_bytes(image_bytes(100, 80, "jpeg"))
    fake = FakeRemovedo(polls_until_done=10**9)  # runs until the test says so
    async with serve(fake.app) as base:
        env = {
            "REMOVEDO_API_KEY": fake.api_key,
            "REMOVEDO_BASE_URL": base,
            "PHOTO_MCP_REMOVEDO_POLL_INTERVAL": "0.05",
            "PHOTO_MCP_WAIT_SECONDS": "0.5",
        }
        async with photo_mcp(tmp_path, **env) as (first, a):
            started = await call(a, "remove_background", {"image": str(work / "a.jpg"), "provider": "removedo"})
            job_a = started.structured_content["job_id"]
            await until(lambda: len(fake.jobs) == 1 and polls_of(fake, next(iter(fake.jobs))) >= 2)
            (removedo_a,) = fake.jobs
            async with photo_mcp(tmp_path, **env) as (_, b):
                # The second server started while the first runs a job: it leaves that job alone.
                started = await call(b, "remove_background", {"image": str(work / "b.jpg"), "provider": "removedo"})
                job_b = started.structured_content["job_id"]
                await until(lambda: len(fake.jobs) == 2)
                (removedo_b,) = set(fake.jobs) - {removedo_a}
                await until(lambda: polls_of(fake, removedo_b) >= 2)
                seen = await call(b, "get_job", {"job_id": job_a})
                assert seen.structured_content["status"] == "running", seen.structured_content
                polled = polls_of(fake, removedo_a)
                await until(lambda: polls_of(fake, removedo_a) >= polled + 3)  # A still polls its own job
                assert len(server_ids(tmp_path)) == 2
                owners = dict(db_rows(tmp_path, "SELECT id, owner FROM jobs"))
                assert owners[job_a] != owners[job_b] and None not in owners.values()

                async with photo_mcp(tmp_path, **env) as (_, third):
                    assert (await third.list_tools()).tools  # a third server, racing B for A's job
                    assert len(server_ids(tmp_path)) == 3
                    assert await first.kill() == -signal.SIGKILL  # mid-job: no shutdown code runs
                    fake.polls_until_done = 0  # the provider finishes both jobs
                    out_b, out_a = await finished(b, job_b), await finished(third, job_a)
                    assert out_b["status"] == "succeeded", out_b
                    assert out_a["status"] == "succeeded", out_a  # taken over from the killed server
                    assert out_a["message"] == "finished after a server restart"
                    taker = dict(db_rows(tmp_path, "SELECT id, owner FROM jobs"))[job_a]
                    assert taker in server_ids(tmp_path) and taker != owners[job_a]  # one live server took it
        # A fourth server (a restart) on the same data dir finds nothing to take over.
        async with photo_mcp(tmp_path, **env) as (_, c):
            for job, out in ((job_a, out_a), (job_b, out_b)):
                again = await call(c, "get_job", {"job_id": job})
                assert again.structured_content["status"] == "succeeded"
                assert again.structured_content["images"] == out["images"]
    # Each job: submitted once, charged once at the provider, one result row and one file.
    assert sum(r.method == "POST" and r.path == SUBMIT for r in fake.requests) == 2
    assert sorted(c.amount for c in fake.charges) == [1, 1]
    rows = db_rows(tmp_path, "SELECT job_id, path FROM results")
    assert sorted(job for job, _ in rows) == sorted([job_a, job_b])
    results = tmp_path / "data" / "results"
    assert result_files(results) == sorted(Path(p) for _, p in rows) and temp_files(results) == []
    assert dict(db_rows(tmp_path, "SELECT id, credits_charged FROM jobs")) == {job_a: 1, job_b: 1}
    assert server_ids(tmp_path) == set()  # the killed one was forgotten, the others left cleanly
    assert list((tmp_path / "data" / "servers").iterdir()) == []


async def test_a_start_up_sweep_leaves_a_live_servers_temp_files_alone(tmp_path: Path) -> None:
    results = tmp_path / "data" / "results"
    async with photo_mcp(tmp_path) as (first, a):
        assert (await a.list_tools()).tools  # the first server is up and serving
        (first_id,) = server_ids(tmp_path)
        in_progress = results / f"{TEMP_PREFIX}{first_id}-k3j4h5.png"  # the first server's write
        in_progress.write_bytes(b"half-written")
        gone = results / f"{TEMP_PREFIX}s0123456789-abcdef.png"  # a server that no longer runs
        gone.write_bytes(b"left by a crash")
        async with photo_mcp(tmp_path) as (_, b):
            assert (await b.list_tools()).tools
            assert in_progress.read_bytes() == b"half-written"  # not swept: its writer is alive
            assert not gone.exists()
        await first.kill()
    async with photo_mcp(tmp_path) as (_, c):
        assert (await c.list_tools()).tools
        assert not in_progress.exists()  # its writer is gone now: swept


# A lease far longer than any stall of a busy machine: here a server is gone only when its lock is free.
LONG_LEASE = {"PHOTO_MCP_LEASE_SECONDS": "300"}


async def doctor(tmp_path: Path) -> str:
    """`photo-mcp doctor` on the same data dir, as a user runs it next to the servers."""
    cmd = [sys.executable, "-m", "server", "doctor"]
    with anyio.fail_after(60):
        done = await anyio.run_process(cmd, env=server_env(tmp_path, **LONG_LEASE), cwd="/", check=False)
    return done.stdout.decode()


async def test_doctor_lists_the_servers_on_the_data_dir_and_which_are_gone(tmp_path: Path) -> None:
    async with photo_mcp(tmp_path, **LONG_LEASE) as (_, a), photo_mcp(tmp_path, **LONG_LEASE) as (_, b):
        assert (await a.list_tools()).tools and (await b.list_tools()).tools
        report = await doctor(tmp_path)
        assert "servers:       2 running on this data dir" in report
        for server_id in server_ids(tmp_path):
            line = report.split(f"  {server_id}: pid ", 1)[1].splitlines()[0]
            assert line.endswith("; alive"), line
    async with photo_mcp(tmp_path, **LONG_LEASE) as (crashed, c):
        assert (await c.list_tools()).tools
        (crashed_id,) = server_ids(tmp_path)  # the two before left cleanly: their rows are gone
        await crashed.kill()  # its row stays (no other server is there to take over); its lock is free at once
        line = (await doctor(tmp_path)).split(f"  {crashed_id}: pid ", 1)[1].splitlines()[0]
        assert "gone" in line and "alive" not in line, line
