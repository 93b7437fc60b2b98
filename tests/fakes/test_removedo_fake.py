"""Tests for the fake Removedo server: they pin our reading of providers.md section 3 on the wire."""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .images import MIME, image_bytes
from .loopback import serve
from .removedo import DEFAULT_API_KEY, FakeRemovedo

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
JOB_ID = re.compile(r"^c[0-9a-z]{24}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SUBMIT = "/api/v1/remove-bg"


def asgi_client(fake: FakeRemovedo) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app), base_url="http://fake", headers=AUTH)


def upload(fmt: str = "png", size: tuple[int, int] = (80, 60)) -> dict[str, Any]:
    return {"image_file": (f"photo.{fmt}", image_bytes(*size, fmt), MIME[fmt])}


class Receiver:
    """A tiny webhook receiver app: records JSON bodies, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[Any] = []
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> JSONResponse:
        self.bodies.append(await request.json())
        return JSONResponse({"ok": True}, status_code=self.status)


@asynccontextmanager
async def served_receiver(status: int = 200) -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver(status)
    async with serve(receiver.app) as base:
        yield receiver, f"{base}/hook"


async def poll_until_terminal(
    client: httpx2.AsyncClient, job_id: str, limit: int = 10, interval_s: float = 0.0
) -> dict[str, Any]:
    for _ in range(limit):
        body = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        if body["status"] != "processing":
            return body
        await anyio.sleep(interval_s)
    raise AssertionError("job never finished")


# --------------------------------------------------------------------------------------- submit
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
async def test_submit_file_answers_202_and_charges_one_credit(fmt: str) -> None:
    fake = FakeRemovedo(credits=5)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload(fmt))
    assert r.status_code == 202
    body = r.json()
    assert set(body) == {"jobId", "status", "createdAt", "estimatedCompletionTime"}
    assert JOB_ID.match(body["jobId"])
    assert body["status"] == "processing"
    assert ISO_Z.match(body["createdAt"])
    assert body["estimatedCompletionTime"] == "30-60 seconds"
    assert fake.balance == 4
    assert [(c.job_id, c.amount, c.what) for c in fake.charges] == [(body["jobId"], 1, "remove-bg")]
    assert fake.requests[0].files["image_file"][1] == MIME[fmt]


async def test_file_job_polls_then_completes_with_a_real_cutout_png() -> None:
    fake = FakeRemovedo(polls_until_done=2)
    async with asgi_client(fake) as client:
        job_id = (await client.post(SUBMIT, files=upload("jpeg", (80, 60)))).json()["jobId"]
        for _ in range(2):
            r = await client.get(f"/api/v1/jobs/{job_id}")
            assert r.status_code == 200
            assert r.json() == {
                "jobId": job_id,
                "status": "processing",
                "createdAt": r.json()["createdAt"],
                "completedAt": None,
                "outputUrl": None,
                "errorMessage": None,
            }
        done = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        assert done["status"] == "completed"
        assert ISO_Z.match(done["completedAt"])
        assert done["errorMessage"] is None
        assert done["outputUrl"] == f"http://fake/outputs/{job_id}.png"
        again = (await client.get(f"/api/v1/jobs/{job_id}")).json()
        assert again == done  # terminal state is stable
        png = await client.get(done["outputUrl"], headers={"Authorization": ""})  # no auth needed
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(png.content))
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (80, 60))
    alpha = img.getchannel("A")
    assert alpha.getpixel((40, 30)) == 255  # the disc of scene() is kept
    assert alpha.getpixel((1, 1)) == 0  # the background is keyed out
    assert fake.net_charged == 1 and fake.balance == 99


async def test_transparent_input_keeps_its_transparency() -> None:
    fake = FakeRemovedo(polls_until_done=0)
    data = image_bytes(50, 50, "png", transparent=True)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files={"image_file": ("cut.png", data, "image/png")})
        done = (await client.get(f"/api/v1/jobs/{r.json()['jobId']}")).json()
        png = (await client.get(done["outputUrl"])).content
    alpha = Image.open(io.BytesIO(png)).getchannel("A")
    assert alpha.size == (50, 50)
    assert (alpha.getpixel((25, 25)), alpha.getpixel((0, 0))) == (255, 0)


@pytest.mark.parametrize("multipart", [False, True])
async def test_image_url_job_is_recorded_not_fetched_and_gets_default_size(multipart: bool) -> None:
    fake = FakeRemovedo(polls_until_done=0)
    url = "https://example.com/photo.jpg"
    async with asgi_client(fake) as client:
        if multipart:
            r = await client.post(SUBMIT, files={"image_url": (None, url)})
        else:
            r = await client.post(SUBMIT, data={"image_url": url})
        assert r.status_code == 202
        done = (await client.get(f"/api/v1/jobs/{r.json()['jobId']}")).json()
        png = await client.get(done["outputUrl"])
    ctype = fake.requests[0].headers["content-type"]
    assert ctype.startswith("multipart/form-data" if multipart else "application/x-www-form-urlencoded")
    assert fake.requests[0].form == {"image_url": url}
    assert fake.jobs[done["jobId"]].image_url == url
    assert Image.open(io.BytesIO(png.content)).size == (64, 48)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"data": {"image_url": "https://x.test/a.jpg"}, "files": upload()}, "not both"),
        ({"data": {"webhook_url": "https://x.test/hook"}}, "must be provided"),
        ({"files": {"image_file": ("a.png", b"not an image", "image/png")}}, "JPEG, PNG or WEBP"),
        ({"files": {"image_file": ("a.bmp", b"", "image/bmp")}}, "JPEG, PNG or WEBP"),
        ({"json": {"image_url": "https://x.test/a.jpg"}}, "Content-Type"),
        ({"data": {"image_url": "ftp://x.test/a.jpg"}}, "image_url"),
        ({"data": {"image_url": "https://x.test/a.jpg", "webhook_url": "nope"}}, "webhook_url"),
        ({"data": {"image_file": "inline text"}}, "file upload"),
    ],
)
async def test_bad_parameters_are_400_without_charge(kwargs: dict[str, Any], fragment: str) -> None:
    fake = FakeRemovedo(credits=3)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, **kwargs)
    assert r.status_code == 400
    assert fragment in r.json()["error"]
    assert fake.balance == 3 and fake.charges == [] and fake.jobs == {}


async def test_gif_is_rejected_even_when_pillow_can_decode_it() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "GIF")
    fake = FakeRemovedo()
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files={"image_file": ("a.gif", buf.getvalue(), "image/gif")})
    assert r.status_code == 400 and r.json() == {"error": "image_file must be a JPEG, PNG or WEBP image"}


# ------------------------------------------------------------------------------ auth and credits
@pytest.mark.parametrize("header", [None, "Bearer sk_live_wrong", f"Basic {DEFAULT_API_KEY}"])
async def test_bad_or_missing_key_is_401_on_submit_and_poll(header: str | None) -> None:
    fake = FakeRemovedo()
    headers = {} if header is None else {"Authorization": header}
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake", headers=headers) as client:
        r1 = await client.post(SUBMIT, data={"image_url": "https://x.test/a.jpg"})
        r2 = await client.get("/api/v1/jobs/cxxxxxxxxxxxxxxxxxxxxxxxx")
    assert (r1.status_code, r2.status_code) == (401, 401)
    assert "error" in r1.json() and fake.charges == []


async def test_suspended_account_is_403() -> None:
    fake = FakeRemovedo(suspended=True)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload())
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    assert fake.charges == []


async def test_insufficient_credits_is_402_at_submit() -> None:
    fake = FakeRemovedo(credits=1)
    async with asgi_client(fake) as client:
        assert (await client.post(SUBMIT, files=upload())).status_code == 202
        r = await client.post(SUBMIT, files=upload())
    assert (r.status_code, r.json()) == (402, {"error": "Insufficient credits"})
    assert fake.balance == 0 and len(fake.charges) == 1 and len(fake.jobs) == 1


async def test_failed_job_is_not_refunded_by_default_the_seed_is_silent() -> None:
    fake = FakeRemovedo(credits=2, polls_until_done=1, fail_jobs=True)
    async with asgi_client(fake) as client:
        job_id = (await client.post(SUBMIT, files=upload())).json()["jobId"]
        assert fake.balance == 1  # charged at submit
        body = await poll_until_terminal(client, job_id)
    assert body["status"] == "failed"
    assert body["errorMessage"] == "Processing failed"
    assert body["outputUrl"] is None and ISO_Z.match(body["completedAt"])
    assert [(c.amount, c.what) for c in fake.charges] == [(1, "remove-bg")]
    assert fake.net_charged == 1 and fake.balance == 1


async def test_failed_job_refunds_its_credit_with_the_knob() -> None:
    fake = FakeRemovedo(credits=2, polls_until_done=1, fail_jobs=True, refund_failed=True)
    async with asgi_client(fake) as client:
        job_id = (await client.post(SUBMIT, files=upload())).json()["jobId"]
        body = await poll_until_terminal(client, job_id)
    assert body["status"] == "failed"
    assert [(c.amount, c.what) for c in fake.charges] == [(1, "remove-bg"), (-1, "refund")]
    assert fake.net_charged == 0 and fake.balance == 2


@pytest.mark.parametrize("estimate", ["2 minutes", None])
async def test_the_completion_estimate_is_a_knob(estimate: str | None) -> None:
    fake = FakeRemovedo(estimate=estimate)
    async with asgi_client(fake) as client:
        body = (await client.post(SUBMIT, files=upload())).json()
    assert body.get("estimatedCompletionTime") == estimate


# --------------------------------------------------------------------------- status and outputs
async def test_unknown_job_and_unknown_output_are_404() -> None:
    fake = FakeRemovedo()
    async with asgi_client(fake) as client:
        r = await client.get("/api/v1/jobs/cm3abc123xyz")
        o = await client.get("/outputs/nope.png")
    assert (r.status_code, r.json()) == (404, {"error": "Job not found"})
    assert o.status_code == 404


async def test_result_key_knob_renames_the_output_url_field() -> None:
    fake = FakeRemovedo(polls_until_done=0, result_key="resultUrl")
    async with asgi_client(fake) as client:
        job_id = (await client.post(SUBMIT, files=upload())).json()["jobId"]
        body = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert "outputUrl" not in body
    assert body["resultUrl"].endswith(f"/outputs/{job_id}.png")


# -------------------------------------------------------------------------------------- faults
async def test_fail_next_injects_errors_without_side_effects() -> None:
    fake = FakeRemovedo()
    fake.fail_next(SUBMIT, 429, times=2, headers={"Retry-After": "1"})
    fake.fail_next("/api/v1/jobs", 500, body={"error": "boom", "code": 7})
    fake.fail_next("/outputs", 502, body="<html>bad gateway</html>")
    async with asgi_client(fake) as client:
        for _ in range(2):
            r = await client.post(SUBMIT, files=upload())
            assert (r.status_code, r.headers["retry-after"]) == (429, "1")
            assert r.json() == {"error": "Too many requests"}
        assert fake.charges == [] and fake.jobs == {}
        job_id = (await client.post(SUBMIT, files=upload())).json()["jobId"]
        r = await client.get(f"/api/v1/jobs/{job_id}")
        assert (r.status_code, r.json()) == (500, {"error": "boom", "code": 7})
        o = await client.get("/outputs/x.png")
        assert (o.status_code, o.text) == (502, "<html>bad gateway</html>")
        assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 200
    assert fake.faults == [] and len(fake.requests) == 6


async def test_fail_next_can_fake_a_401_for_a_valid_key() -> None:
    fake = FakeRemovedo()
    fake.fail_next("/api/", 401)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload())
    assert (r.status_code, r.json()) == (401, {"error": "Invalid or missing API key"})


async def test_delay_s_slows_every_answer() -> None:
    fake = FakeRemovedo(delay_s=0.15)
    async with asgi_client(fake) as client:
        start = time.monotonic()
        await client.get("/api/v1/jobs/cm3abc123xyz")
    assert time.monotonic() - start >= 0.15


# ------------------------------------------------------------------------------------ webhooks
async def test_poll_driven_webhook_over_loopback_is_sent_once() -> None:
    fake = FakeRemovedo(polls_until_done=1)
    async with (
        served_receiver() as (receiver, hook),
        serve(fake.app) as base,
        httpx2.AsyncClient(base_url=base, headers=AUTH) as client,
    ):
        r = await client.post(SUBMIT, files=upload("webp"), data={"webhook_url": hook})
        job_id = r.json()["jobId"]
        assert receiver.bodies == []
        done = await poll_until_terminal(client, job_id)
        await poll_until_terminal(client, job_id)  # later polls do not resend
        png = await client.get(done["outputUrl"])
    assert done["outputUrl"] == f"{base}/outputs/{job_id}.png"  # built from the serving port
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (80, 60)
    expected = {"jobId": job_id, "status": "completed", "outputUrl": done["outputUrl"]}
    assert receiver.bodies == [{**expected, "completedAt": done["completedAt"]}]
    [sent] = fake.webhooks_sent
    assert (sent.url, sent.status, sent.payload) == (hook, 200, receiver.bodies[0])


async def test_time_based_completion_sends_webhook_before_any_poll_asgi() -> None:
    fake = FakeRemovedo(complete_after_s=0.1)
    async with served_receiver() as (receiver, hook), fake, asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload(), data={"webhook_url": hook})
        job_id = r.json()["jobId"]
        assert (await client.get(f"/api/v1/jobs/{job_id}")).json()["status"] == "processing"
        await fake.wait_for_webhooks(1, timeout_s=2)
        assert receiver.bodies[0]["status"] == "completed"
        polls_before = sum(rec.method == "GET" for rec in fake.requests)
        assert polls_before == 1  # the webhook came from the timer, not from a poll
        body = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert body["status"] == "completed"
    assert body["outputUrl"] == receiver.bodies[0]["outputUrl"]
    assert len(receiver.bodies) == 1


async def test_time_based_failed_job_webhook_over_loopback() -> None:
    receiver = Receiver()  # in-process here; the poll-driven test above uses a socket for it
    transport = httpx2.ASGITransport(app=receiver.app)
    fake = FakeRemovedo(complete_after_s=0.05, fail_jobs=True, credits=1, webhook_transport=transport)
    async with (
        fake,
        serve(fake.app) as base,
        httpx2.AsyncClient(base_url=base, headers=AUTH) as client,
    ):
        data = {"image_url": "https://x.test/a.png", "webhook_url": "http://receiver/hook"}
        r = await client.post(SUBMIT, data=data)
        assert fake.balance == 0
        await fake.wait_for_webhooks(1, timeout_s=2)
    [payload] = receiver.bodies
    assert payload == {
        "jobId": r.json()["jobId"],
        "status": "failed",
        "errorMessage": "Processing failed",
        "completedAt": payload["completedAt"],
    }
    assert fake.balance == 0 and fake.net_charged == 1  # no refund unless the knob says so


async def test_lazy_deadline_without_task_group_and_loud_error_with_webhook() -> None:
    fake = FakeRemovedo(complete_after_s=0.05, polls_until_done=0)
    async with asgi_client(fake) as client:
        job_id = (await client.post(SUBMIT, files=upload())).json()["jobId"]
        assert (await client.get(f"/api/v1/jobs/{job_id}")).json()["status"] == "processing"
        with anyio.fail_after(2):  # no timer runs: only the lazy deadline check on a poll can finish it
            body = await poll_until_terminal(client, job_id, limit=1000, interval_s=0.01)
        assert body["status"] == "completed"
        with pytest.raises(RuntimeError, match="async with fake"):
            await client.post(SUBMIT, files=upload(), data={"webhook_url": "http://127.0.0.1:9/h"})
    assert fake.net_charged == 1


async def test_lose_webhooks_never_delivers() -> None:
    receiver = Receiver()
    transport = httpx2.ASGITransport(app=receiver.app)
    fake = FakeRemovedo(polls_until_done=0, lose_webhooks=True, webhook_transport=transport)
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload(), data={"webhook_url": "http://receiver/hook"})
        assert (await client.get(f"/api/v1/jobs/{r.json()['jobId']}")).json()["status"] == "completed"
    assert receiver.bodies == [] and fake.webhooks_sent == []
    assert [w.payload["status"] for w in fake.webhooks_lost] == ["completed"]


async def test_webhook_error_answer_is_recorded_and_not_retried() -> None:
    receiver = Receiver(status=500)
    fake = FakeRemovedo(polls_until_done=0, webhook_transport=httpx2.ASGITransport(app=receiver.app))
    async with asgi_client(fake) as client:
        r = await client.post(SUBMIT, files=upload(), data={"webhook_url": "http://receiver/hook"})
        for _ in range(3):
            await client.get(f"/api/v1/jobs/{r.json()['jobId']}")
    assert len(receiver.bodies) == 1
    assert [(w.status, w.error) for w in fake.webhooks_sent] == [(500, None)]


async def test_unreachable_webhook_is_recorded_with_error() -> None:
    fake = FakeRemovedo(polls_until_done=0, webhook_timeout_s=1)
    with socket.socket() as sock:  # bound but not listening: connecting to it is refused at once
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        async with asgi_client(fake) as client:
            r = await client.post(SUBMIT, files=upload(), data={"webhook_url": dead})
            await client.get(f"/api/v1/jobs/{r.json()['jobId']}")
    [sent] = fake.webhooks_sent
    assert sent.status is None and sent.error is not None


async def test_app_lifespan_opens_the_timer_task_group() -> None:
    fake = FakeRemovedo()
    async with fake.app.router.lifespan_context(fake.app):
        assert fake.running
    assert not fake.running
