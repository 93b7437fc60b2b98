"""remove_background on Removedo through MCP, against the fake Removedo served on loopback.

In-memory client for the tool behaviour, a stdio subprocess, and the Streamable HTTP app
for webhooks (which only exist on an HTTP transport with PHOTO_MCP_PUBLIC_URL).
"""

from __future__ import annotations

import base64
import io
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.support import serve_http, stdio_params
from tools.core.settings import Settings

SUBMIT = "/api/v1/remove-bg"
TOKEN = "mcp-token-0123456789abcdef"


@asynccontextmanager
async def served(fake: FakeRemovedo) -> AsyncIterator[str]:
    """The fake on a loopback port, with its timer task group open."""
    async with fake, serve(fake.app) as base:
        yield base


def removedo_settings(tmp_path: Path, fake: FakeRemovedo, base: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "REMOVEDO_API_KEY": fake.api_key,
        "REMOVEDO_BASE_URL": base,
        "allow_private_urls": True,
        "retry_base_delay": 0.01,
        "removedo_poll_interval": 0.02,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def posts(fake: FakeRemovedo) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == SUBMIT]


def polls(fake: FakeRemovedo) -> int:
    return sum(r.method == "GET" and r.path.startswith("/api/v1/jobs/") for r in fake.requests)


def text_of(result: Any) -> str:
    return " ".join(b.text for b in result.content if b.type == "text")


# ------------------------------------------------------------------------------- happy paths
async def test_file_cutout_streams_progress_and_reads_back(tmp_path: Path, workdir: Path) -> None:
    (workdir / "shoe.jpg").write_bytes(image_bytes(96, 72, "jpeg"))
    fake = FakeRemovedo(polls_until_done=3, delay_s=0.02)
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with served(fake) as base:
        settings = removedo_settings(tmp_path, fake, base)
        async with Client(build_server(settings)) as client:
            with anyio.fail_after(20):
                result = await client.call_tool(
                    "remove_background",
                    {"image": str(workdir / "shoe.jpg"), "provider": "removedo"},
                    progress_callback=on_progress,
                )
            assert not result.is_error, result.content
            out = result.structured_content
            [image] = out["images"]
            read = await client.read_resource(image["uri"])
            # Chaining: the photo:// result is uploaded as a file.
            again = await client.call_tool("remove_background", {"image": image["uri"], "provider": "removedo"})
            assert not again.is_error, again.content

    assert out["provider"] == "removedo" and out["status"] == "succeeded"
    assert out["credits"] == {"estimated": 1.0, "charged": 1.0}
    assert (image["mime_type"], image["width"], image["height"]) == ("image/png", 96, 72)
    assert image["info"]["removedo_job_id"] in fake.jobs
    data = Path(image["path"]).read_bytes()
    assert base64.b64decode(read.contents[0].blob) == data
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "RGBA" and img.getchannel("A").getpixel((0, 0)) == 0
    assert [b.type for b in result.content] == ["text", "resource_link", "image"]
    assert "remove_background ran on removedo" in text_of(result)

    first, second = posts(fake)
    assert first.files["image_file"][1] == "image/jpeg" and first.form == {}  # stdio settings: no webhook
    assert second.files["image_file"][1] == "image/png"
    assert fake.net_charged == 2 and polls(fake) == 8

    messages = [m or "" for _, m in updates]
    assert any(m.startswith("uploading to Removedo") for m in messages), messages
    assert any(m.startswith("processing at Removedo") for m in messages), messages
    values = [p for p, _ in updates]
    assert values == sorted(values) and updates[-1][0] == 100


async def test_url_input_is_sent_as_image_url_not_downloaded(tmp_path: Path) -> None:
    fake = FakeRemovedo(polls_until_done=1)
    url = "http://127.0.0.1:9/catalog/shoe.jpg"  # nothing listens there: a download would fail the call
    async with served(fake) as base, Client(build_server(removedo_settings(tmp_path, fake, base))) as client:
        result = await client.call_tool("remove_background", {"image": url, "provider": "removedo"})
    assert not result.is_error, result.content
    [submit] = posts(fake)
    assert submit.form == {"image_url": url} and submit.files == {}
    image = result.structured_content["images"][0]
    assert (image["width"], image["height"]) == fake.url_output_size


async def test_check_credits_shows_the_ledger_for_removedo(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 40))
    fake = FakeRemovedo(polls_until_done=0)
    async with served(fake) as base, Client(build_server(removedo_settings(tmp_path, fake, base))) as client:
        await client.call_tool("remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"})
        report = await client.call_tool("check_credits", {"provider": "removedo"})
    [row] = report.structured_content["providers"]
    assert row["configured"] is True and row["balance"] is None
    assert "no balance endpoint" in row["detail"] and row["spent_today_here"] == 1


async def test_handed_off_job_resumes_after_a_restart_without_resubmitting(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(50, 40))
    fake = FakeRemovedo(polls_until_done=10**6)
    async with served(fake) as base:
        first = removedo_settings(tmp_path, fake, base, wait_seconds=0.3)
        async with Client(build_server(first)) as client:
            started = await client.call_tool(
                "remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"}
            )
        assert started.structured_content["status"] == "running"
        job_id = started.structured_content["job_id"]
        fake.polls_until_done = 0  # the job finishes while the server is down
        async with Client(build_server(removedo_settings(tmp_path, fake, base))) as client:
            with anyio.fail_after(20):
                done = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 15})
    assert done.structured_content["status"] == "succeeded", done.content
    assert done.structured_content["credits"]["charged"] == 1
    assert len(done.structured_content["images"]) == 1
    assert len(posts(fake)) == 1 and fake.net_charged == 1


# ------------------------------------------------------------------------------------ errors
Setup = Callable[[FakeRemovedo], None]


def _fail(path: str, status: int, times: int = 1) -> Setup:
    return lambda fake: fake.fail_next(path, status, times=times)


def _set(**knobs: Any) -> Setup:
    return lambda fake: [setattr(fake, k, v) for k, v in knobs.items()]  # type: ignore[func-returns-value]


@pytest.mark.parametrize(
    ("setup", "overrides", "fragment", "charged", "net", "submits"),
    [
        (None, {"REMOVEDO_API_KEY": "sk_live_wrong_000000"}, "check REMOVEDO_API_KEY", 0, 0, 1),
        (_set(balance=0), {}, "HTTP 402 insufficient credits", 0, 0, 1),
        (_set(suspended=True), {}, "account suspended (HTTP 403)", 0, 0, 1),
        (_fail(SUBMIT, 400), {}, "rejected the request as invalid (HTTP 400)", 0, 0, 1),
        (_fail(SUBMIT, 429, times=4), {}, "rate limiting", 0, 0, 4),
        (_fail(SUBMIT, 500), {}, "HTTP 500", 0, 0, 1),
        # Removedo's documents do not say whether a failed job is refunded: booked as charged.
        (_set(fail_jobs=True), {}, "do not say whether failed jobs are refunded", 1, 1, 1),
        (_fail("/api/v1/jobs/", 404), {}, "does not know job", 1, 1, 1),
        (_fail("/api/v1/jobs/", 401), {}, "already submitted and charged 1 credit", 1, 1, 1),
        (_fail("/api/v1/jobs/", 500, times=4), {}, "HTTP 500", 1, 1, 1),
    ],
    ids=[
        "401",
        "402",
        "403",
        "400",
        "429",
        "submit-500",
        "job-failed",
        "poll-404",
        "poll-401",
        "poll-500",
    ],
)
async def test_every_error_reaches_the_model(
    tmp_path: Path,
    workdir: Path,
    setup: Setup | None,
    overrides: dict[str, Any],
    fragment: str,
    charged: float,
    net: int,
    submits: int,
) -> None:
    (workdir / "a.png").write_bytes(image_bytes(40, 40))
    fake = FakeRemovedo(polls_until_done=1)
    if setup is not None:
        setup(fake)
    async with served(fake) as base:
        settings = removedo_settings(tmp_path, fake, base, **overrides)
        async with Client(build_server(settings)) as client:
            result = await client.call_tool(
                "remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"}
            )
    assert result.is_error
    message = result.structured_content["message"]
    assert fragment in message and fragment in text_of(result)
    assert "sk_live" not in text_of(result)
    assert result.structured_content["credits"]["charged"] == charged
    assert fake.net_charged == net and len(posts(fake)) == submits


# --------------------------------------------------------------------------- real transports
async def test_stdio_subprocess_cuts_out_without_a_webhook(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(60, 40))
    fake = FakeRemovedo(polls_until_done=1)
    async with served(fake) as base:
        params = stdio_params(
            tmp_path,
            REMOVEDO_API_KEY=fake.api_key,
            REMOVEDO_BASE_URL=base,
            PHOTO_MCP_REMOVEDO_POLL_INTERVAL="0.02",
            PHOTO_MCP_PUBLIC_URL="http://127.0.0.1:9",  # ignored on stdio: Removedo could not call back
        )
        with anyio.fail_after(60):
            async with Client(params) as client:
                result = await client.call_tool(
                    "remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"}
                )
    assert not result.is_error, result.content
    image = result.structured_content["images"][0]
    assert image["mime_type"] == "image/png" and Path(image["path"]).is_file()
    [submit] = posts(fake)
    assert "webhook_url" not in submit.form and "image_file" in submit.files
    assert fake.net_charged == 1


@asynccontextmanager
async def http_session(base: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as authed,
        streamable_http_client(base + "/mcp", http_client=authed) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def http_settings(tmp_path: Path, fake: FakeRemovedo, base: str, **overrides: Any) -> Settings:
    # Slow polling both ways: only the webhook can finish the job quickly.
    values: dict[str, Any] = {
        "transport": "http",
        "auth_token": TOKEN,
        "removedo_poll_interval": 5.0,
        "removedo_webhook_poll_interval": 5.0,
    }
    values.update(overrides)
    return removedo_settings(tmp_path, fake, base, **values)


async def test_webhook_finishes_the_job_well_before_the_poll_interval(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(64, 48))
    fake = FakeRemovedo(complete_after_s=0.3)
    async with served(fake) as removedo:
        # Polls only every 60 s: a job done in well under that was finished by the webhook, on any machine.
        settings = http_settings(
            tmp_path, fake, removedo, removedo_poll_interval=60.0, removedo_webhook_poll_interval=60.0
        )
        server = build_server(settings)
        async with serve_http(server, settings) as base:
            settings.public_url = base  # known once the port is: clients open lazily, so this is in time
            async with http_session(base) as session:
                start = time.monotonic()
                with anyio.fail_after(40):
                    result = await session.call_tool(
                        "remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"}
                    )
                elapsed = time.monotonic() - start
    assert not result.is_error, result.content
    assert elapsed < 30, f"took {elapsed:.2f} s; the 60 s poll interval would have been the floor"
    [submit] = posts(fake)
    assert submit.form["webhook_url"].startswith(base + "/webhooks/removedo/")
    [sent] = fake.webhooks_sent
    assert sent.status == 200 and sent.payload["status"] == "completed"  # no MCP token needed
    assert polls(fake) == 1  # one status read, triggered by the webhook
    assert result.structured_content["images"][0]["width"] == 64


async def test_forged_malformed_and_replayed_webhooks_are_ignored(tmp_path: Path, workdir: Path) -> None:
    (workdir / "a.png").write_bytes(image_bytes(64, 48))
    # Removedo's own webhook is lost and polling is slow: only our hand-made POSTs can wake the job.
    fake = FakeRemovedo(polls_until_done=0, lose_webhooks=True)
    async with served(fake) as removedo:
        settings = http_settings(tmp_path, fake, removedo, wait_seconds=0.5, removedo_webhook_poll_interval=60.0)
        server = build_server(settings)
        async with serve_http(server, settings) as base, http_session(base) as session, httpx2.AsyncClient() as raw:
            settings.public_url = base
            started = await session.call_tool(
                "remove_background", {"image": str(workdir / "a.png"), "provider": "removedo"}
            )
            assert started.structured_content["status"] == "running"
            [submit] = posts(fake)
            hook = submit.form["webhook_url"]
            job_id = next(iter(fake.jobs))
            good = {
                "jobId": job_id,
                "status": "completed",
                "outputUrl": "https://cdn.removedo.test/out.png",
                "completedAt": "2025-01-15T10:30:45Z",
            }
            forged = await raw.post(f"{base}/webhooks/removedo/{secrets.token_urlsafe(32)}", json=good)
            assert forged.status_code == 404
            bad_bodies: list[dict[str, Any]] = [
                {"content": b"not json", "headers": {"content-type": "application/json"}},
                {"json": ["a", "list"]},
                {"json": {**good, "status": "processing"}},
                {"json": {"jobId": job_id, "status": "completed"}},  # no outputUrl
                {"json": {**good, "jobId": "c" + "0" * 24}},  # another job
            ]
            for body in bad_bodies:
                r = await raw.post(hook, **body)
                assert r.status_code == 400, (body, r.text)
            too_big = await raw.post(hook, content=b"{" + b" " * 70_000 + b"}")
            assert too_big.status_code == 413
            assert polls(fake) == 0  # none of them woke the poller

            woke = time.monotonic()
            accepted = await raw.post(hook, json=good)
            assert (accepted.status_code, accepted.json()) == (200, {"status": "accepted"})
            with anyio.fail_after(10):
                done = await session.call_tool("get_job", {"job_id": started.structured_content["job_id"]})
                while done.structured_content["status"] == "running":
                    done = await session.call_tool(
                        "get_job", {"job_id": started.structured_content["job_id"], "wait_seconds": 0.5}
                    )
            assert time.monotonic() - woke < 5  # long before the 60 s fallback poll
            replay = await raw.post(hook, json={**good, "outputUrl": "https://evil.test/x.png"})
            assert replay.status_code == 200 and replay.json()["status"].startswith("ignored")
    assert done.structured_content["status"] == "succeeded", done.content
    assert polls(fake) == 1 and len(posts(fake)) == 1
    assert not any(r.path.startswith("/x.png") for r in fake.requests)
    with Image.open(done.structured_content["images"][0]["path"]) as img:
        assert img.size == (64, 48)  # the result came from the polled outputUrl, not the webhook's
