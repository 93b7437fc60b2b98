"""Crash recovery: `photo-mcp` SIGKILLed mid-job, then started again on the same data dir.

The server runs as a real stdio subprocess (`python -m server`, what the console script runs)
against a fake provider on 127.0.0.1. Each test hands a job off (a short wait budget), kills
the process with SIGKILL — no shutdown code runs — lets the provider side move on, starts a new
process, and asks `get_job` about the old id. What must hold:

- a job the provider was running comes back finished, polled from the remembered task id, with
  exactly one paid submission and one charge at the provider;
- a job the provider lost during the downtime ends in a clear terminal state that says truthfully
  whether credits were charged;
- a result whose download or write was cut by the kill never shows up half-written under its
  final name, and stale `.photo-mcp-tmp-*` files are swept at the next start.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.fakes.youcam import FakeYouCam, catalog
from tests.reliability import FaultProxy, ServerProcess, killable_stdio, result_files, temp_files
from tests.support import server_env

V1 = "/s2s/v1.0"
HAIR = catalog("hair-style")
GROUP, STYLE = HAIR[1][0], HAIR[1][2][1][0]
Fake = FakeAluo | FakeYouCam | FakeRemovedo


@asynccontextmanager
async def photo_mcp(tmp_path: Path, **env: str) -> AsyncIterator[tuple[ServerProcess, Client]]:
    """A `photo-mcp` stdio subprocess we can SIGKILL, and an MCP client session over its pipes."""
    async with killable_stdio(tmp_path, **env) as (proc, streams), Client(nullcontext(streams)) as client:
        yield proc, client


async def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for a condition on the fake's side (bounded; no fixed sleep decides the outcome)."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - the fakes expose state, not events
            await anyio.sleep(0.01)


async def call(client: Client, tool: str, args: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(60):
        return await client.call_tool(tool, args)


def polls(fake: Fake, method: str, prefix: str) -> int:
    return sum(r.method == method and r.path.startswith(prefix) for r in fake.requests)


@dataclass(frozen=True)
class Provider:
    """How to run one long paid job on a provider, and how to read its fake's ledger."""

    name: str
    tool: str
    submit: tuple[str, str]
    poll: tuple[str, str]

    def fake(self) -> Fake:
        # Never finishes until the test says so.
        if self.name == "aluo":
            return FakeAluo(polls_until_done=10**9)
        if self.name == "youcam":
            # YouCam drops a task not polled for 10 s; a restart on a busy machine can take longer
            # than that, so here the fake keeps tasks for 60 s: this test is about resuming, the
            # loss is the next one's.
            return FakeYouCam(polling_interval_ms=50, polls_until_done=10**9, loss_window_s=60.0)
        return FakeRemovedo(polls_until_done=10**9)

    def env(self, fake: Fake, base: str) -> dict[str, str]:
        if isinstance(fake, FakeAluo):
            return {
                "ALUO_API_KEY": fake.api_key,
                "ALUO_BASE_URL": FakeAluo.api_base(base),
                "PHOTO_MCP_ALUO_POLL_INTERVAL": "0.05",
            }
        if isinstance(fake, FakeYouCam):
            return {"YOUCAM_API_KEY": fake.client_id, "YOUCAM_SECRET_KEY": fake.secret_key, "YOUCAM_BASE_URL": base}
        return {
            "REMOVEDO_API_KEY": fake.api_key,
            "REMOVEDO_BASE_URL": base,
            "PHOTO_MCP_REMOVEDO_POLL_INTERVAL": "0.05",
        }

    def args(self, photo: str) -> dict[str, Any]:
        if self.tool == "edit_photo":
            return {"prompt": "make it blue", "images": [photo]}
        if self.tool == "try_hairstyle":
            return {"image": photo, "style_id": STYLE, "style_group_id": GROUP}
        return {"image": photo, "provider": self.name}

    def finish(self, fake: Fake) -> None:
        fake.polls_until_done = 0  # the provider finishes the job while no server runs

    def paid_submits(self, fake: Fake) -> int:
        method, path = self.submit
        return sum(r.method == method and r.path == path for r in fake.requests)

    def charges(self, fake: Fake) -> list[float]:
        return [c.amount for c in fake.charges]


ALUO = Provider("aluo", "edit_photo", ("POST", "/api/photo-editor/generate"), ("GET", "/api/photo-editor/status"))
YOUCAM = Provider("youcam", "try_hairstyle", ("POST", f"{V1}/task/hair-style"), ("GET", f"{V1}/task/hair-style"))
REMOVEDO = Provider("removedo", "remove_background", ("POST", "/api/v1/remove-bg"), ("GET", "/api/v1/jobs/"))
PRICE = {"aluo": 40, "youcam": 1, "removedo": 1}


def photo(tmp_path: Path) -> str:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    path = work / "face.jpg"
    path.write_bytes(image_bytes(320, 240, "jpeg"))
    return str(path)


async def hand_off(client: Client, provider: Provider, fake: Fake, image: str) -> str:
    """Start the job; it outlives the call's short wait budget. Returns its id once the provider
    is being polled (the task id is persisted before the first poll)."""
    first = await call(client, provider.tool, provider.args(image))
    out = first.structured_content
    assert not first.is_error and out["status"] == "running", first.content
    assert "get_job" in first.content[0].text
    await until(lambda: polls(fake, *provider.poll) >= 2)
    return out["job_id"]


@pytest.mark.parametrize("provider", [ALUO, YOUCAM, REMOVEDO], ids=lambda p: p.name)
async def test_sigkill_mid_job_then_get_job_returns_the_result_without_paying_twice(
    tmp_path: Path, provider: Provider
) -> None:
    fake = provider.fake()
    image = photo(tmp_path)
    async with serve(fake.app) as base:
        env = provider.env(fake, base)
        async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="0.5", **env) as (proc, client):
            job_id = await hand_off(client, provider, fake, image)
            assert await proc.kill() == -signal.SIGKILL
        polled_before = polls(fake, *provider.poll)
        provider.finish(fake)
        async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="30", **env) as (_, client):
            done = await call(client, "get_job", {"job_id": job_id, "wait_seconds": 20})
            out = done.structured_content
            assert not done.is_error and out["status"] == "succeeded", out["message"]
            read = await client.read_resource(out["images"][0]["uri"])
    assert out["message"] == "finished after a server restart"
    # Resumed by polling the remembered task: one paid submission, one charge, both here and there.
    assert polls(fake, *provider.poll) > polled_before
    assert provider.paid_submits(fake) == 1 and provider.charges(fake) == [PRICE[provider.name]]
    assert out["credits"]["charged"] == PRICE[provider.name]
    if isinstance(fake, FakeYouCam):
        assert len(fake.tasks) == 1 and fake.lost_tasks == 0
    (image_out,) = out["images"]
    results = tmp_path / "data" / "results"
    assert result_files(results) == [Path(image_out["path"])] and read.contents[0].blob


async def test_youcam_task_lost_while_the_server_was_dead_fails_clearly_with_nothing_charged(tmp_path: Path) -> None:
    fake = FakeYouCam(polling_interval_ms=50, polls_until_done=10**9, loss_window_s=2.0)
    image = photo(tmp_path)
    async with serve(fake.app) as base:
        env = YOUCAM.env(fake, base)
        async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="0.5", **env) as (proc, client):
            job_id = await hand_off(client, YOUCAM, fake, image)
            await proc.kill()
        await until(lambda: fake.lost_tasks == 1)  # nobody polled it for YouCam's loss window
        async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="30", **env) as (_, client):
            done = await call(client, "get_job", {"job_id": job_id, "wait_seconds": 20})
    out = done.structured_content
    assert done.is_error and out["status"] == "failed"
    assert "dropped the task while this server was restarting" in out["message"]
    assert "Nothing was charged" in out["message"] and fake.charges == [] and out["credits"]["charged"] == 0
    assert YOUCAM.paid_submits(fake) == 1  # and it was not submitted again
    assert result_files(tmp_path / "data" / "results") == []


@pytest.mark.parametrize(
    ("provider", "path"),
    [("aluo", "/api/remove-bg"), ("removedo", "/api/v1/remove-bg")],
)
async def test_sigkill_while_a_paid_request_is_in_flight_is_reported_honestly(
    tmp_path: Path, provider: str, path: str
) -> None:
    """The provider got (and charged) the request; the server died before the answer came back.
    It cannot know the outcome: after the restart the job must fail without re-sending, and must
    not claim that nothing was charged."""
    op = ALUO if provider == "aluo" else REMOVEDO
    fake: Fake = FakeAluo() if provider == "aluo" else FakeRemovedo(polls_until_done=0)
    image = photo(tmp_path)
    async with serve(fake.app) as base:
        proxy = FaultProxy(base)
        proxy.inject("POST", path, "hold", seconds=3600)  # processed; the answer never comes
        async with proxy.serve() as front:
            env = op.env(fake, front)
            async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="0.5", **env) as (proc, client):
                first = await call(client, "remove_background", {"image": image, "provider": provider})
                assert first.structured_content["status"] == "running"
                await until(lambda: [c for c in fake.charges if c.amount > 0] != [])
                await proc.kill()
            async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="30", **env) as (_, client):
                job_id = first.structured_content["job_id"]
                done = await call(client, "get_job", {"job_id": job_id, "wait_seconds": 20})
    out = done.structured_content
    assert done.is_error and out["status"] == "failed", out
    message = out["message"]
    assert "nothing was charged" not in message.lower(), message
    assert "may have been charged" in message and "not re-sent" in message, message
    assert sum(r.method == "POST" and r.path == path for r in fake.requests) == 1
    assert result_files(tmp_path / "data" / "results") == []


async def test_sigkill_during_a_slow_result_download_leaves_no_file_and_the_restart_fetches_it(
    tmp_path: Path,
) -> None:
    fake = FakeAluo(polls_until_done=1, image_long_side=1024)
    image = photo(tmp_path)
    results = tmp_path / "data" / "results"
    async with serve(fake.app) as base:
        proxy = FaultProxy(base)
        # A slow CDN: the result (~7 KB) trickles out 512 bytes every 0.1 s.
        proxy.inject("GET", "/cdn/", "throttle", chunk=512, seconds=0.1)
        async with proxy.serve() as front:
            env = ALUO.env(fake, front)
            async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="0.5", **env) as (proc, client):
                first = await call(client, "edit_photo", ALUO.args(image))
                assert first.structured_content["status"] == "running"
                await until(lambda: "GET /cdn/" in proxy.started)  # paid, and mid-download
                await proc.kill()
            assert [c.amount for c in fake.charges] == [40]
            assert result_files(results) == []  # nothing half-written, under any name
            async with photo_mcp(tmp_path, PHOTO_MCP_WAIT_SECONDS="30", **env) as (_, client):
                job_id = first.structured_content["job_id"]
                done = await call(client, "get_job", {"job_id": job_id, "wait_seconds": 20})
    out = done.structured_content
    assert not done.is_error and out["status"] == "succeeded", out["message"]
    (image_out,) = out["images"]
    assert result_files(results) == [Path(image_out["path"])]
    assert Path(image_out["path"]).stat().st_size == image_out["bytes"]
    assert ALUO.paid_submits(fake) == 1 and [c.amount for c in fake.charges] == [40]
    assert out["credits"]["charged"] == 40  # the charge recorded before the kill is not booked twice


# A child process that writes one result with the product's write_atomic and is SIGKILLed
# after the bytes are in the temp file but before the rename: os.fsync is the pause point
# (it announces itself on stdout and sleeps), so the kill lands at that exact instruction.
_WRITER = """
import os, sys, time
from pathlib import Path
from tools.core.storage import write_atomic

def pause(fd):
    print("in-fsync", flush=True)
    time.sleep(3600)

os.fsync = pause
write_atomic(Path(sys.argv[1]), b"\\x89PNG" + os.urandom(1 << 20))
"""


async def test_a_write_killed_before_its_rename_is_never_visible_and_is_swept_at_the_next_start(
    tmp_path: Path,
) -> None:
    results = tmp_path / "data" / "results"
    results.mkdir(parents=True)
    final = results / "20260101-000000-edit_photo-abcdef012345.png"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(final)],
        stdout=subprocess.PIPE,
        env=server_env(tmp_path),
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None
        line = await anyio.to_thread.run_sync(child.stdout.readline)
        assert line == b"in-fsync\n"
        child.kill()
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    (stale,) = temp_files(results)
    assert not final.exists() and stale.stat().st_size == 4 + (1 << 20)
    # The next start sweeps it; no result is ever listed for it.
    async with photo_mcp(tmp_path) as (_, client):
        listed = await client.list_resources()
        assert temp_files(results) == [] and result_files(results) == []
    assert not any(str(r.uri).startswith("photo://results/") for r in listed.resources)
