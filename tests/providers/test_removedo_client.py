"""RemovedoClient against the fake Removedo (in-process ASGI): the wire, polling, webhooks, errors."""

from __future__ import annotations

import io
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

from tests.fakes.images import image_bytes
from tests.fakes.removedo import FakeRemovedo
from tools.core.errors import AuthFailed, InvalidInput, JobFailed, NotConfigured, OutOfCredits, ProviderUnavailable
from tools.core.fetch import SafeFetcher
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.core.webhooks import WebhookHub
from tools.providers.http import RetryPolicy
from tools.providers.removedo.client import RemovedoClient

SUBMIT = "/api/v1/remove-bg"
PUBLIC = "http://photo.test"


class Hooks:
    """Records what the client reports (a JobContext does the same against the job store)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.refs: dict[str, Any] = {}
        self.charges: list[float] = []
        self.bases: list[str] = []

    async def progress(self, message: str, fraction: float | None = None) -> None:
        self.messages.append(message)

    async def remember(self, **ref: Any) -> None:
        self.refs.update(ref)

    async def charged(self, credits: float, *, basis: str = "reported") -> None:
        self.charges.append(credits)
        self.bases.append(basis)


def settings(fake: FakeRemovedo, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "REMOVEDO_API_KEY": fake.api_key,
        "REMOVEDO_BASE_URL": "http://removedo.test/",
        "removedo_poll_interval": 0.01,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def opened(fake: FakeRemovedo, hub: WebhookHub | None = None, **overrides: Any) -> AsyncIterator[RemovedoClient]:
    transport = httpx2.ASGITransport(app=fake.app)
    client = RemovedoClient.from_settings(
        settings(fake, **overrides), transport=transport, policy=RetryPolicy(base_delay=0.001), webhooks=hub
    )
    async with client:
        yield client


def data_source(data: bytes) -> ImageSource:
    return ImageSource("data:image/...", "data", fetcher=None, data=data)  # type: ignore[arg-type]


def png_of(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def polls(fake: FakeRemovedo) -> int:
    return sum(r.method == "GET" and r.path.startswith("/api/v1/jobs/") for r in fake.requests)


# -------------------------------------------------------------------------------- submissions
async def test_file_submission_uploads_image_file_polls_and_downloads_a_cutout() -> None:
    fake = FakeRemovedo(polls_until_done=2)
    hooks = Hooks()
    async with opened(fake) as client:
        [out] = await client.remove_background(data_source(image_bytes(80, 60, "jpeg")), hooks)

    submit = fake.requests[0]
    assert (submit.method, submit.path) == ("POST", SUBMIT)
    assert submit.headers["authorization"] == f"Bearer {fake.api_key}"
    assert submit.headers["content-type"].startswith("multipart/form-data")
    name, ctype, data = submit.files["image_file"]
    assert (name, ctype) == ("image.jpg", "image/jpeg")
    assert png_of(data).size == (80, 60)
    assert submit.form == {}  # no image_url, and no webhook_url without a public URL
    assert polls(fake) == 3  # processing, processing, completed
    download = fake.requests[-1]
    assert download.path.startswith("/outputs/") and "authorization" not in download.headers  # key stays home
    img = png_of(out.data)
    assert (img.format, img.mode, img.size) == ("PNG", "RGBA", (80, 60))
    assert img.getchannel("A").getpixel((1, 1)) == 0
    job_id = next(iter(fake.jobs))
    assert hooks.refs == {"job_id": job_id, "estimate": "30-60 seconds"} and out.ref == {"job_id": job_id}
    assert hooks.charges == [1] and hooks.bases == ["documented"] and fake.net_charged == 1
    assert hooks.messages[0] == "uploading to Removedo"
    assert f"queued at Removedo (job {job_id}; Removedo estimates 30-60 seconds)" in hooks.messages
    processing = [m for m in hooks.messages if m.startswith("processing at Removedo (")]
    assert processing and all(m.endswith("; Removedo estimates 30-60 seconds)") for m in processing)
    assert hooks.messages[-1].startswith("downloading the result from Removedo")
    assert out.meta["removedo_estimated_completion"] == "30-60 seconds" and out.meta["removedo_job_id"] == job_id


async def test_url_submission_passes_the_url_without_downloading_it() -> None:
    fetched: list[str] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        fetched.append(str(request.url))
        return httpx2.Response(500)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(refuse)) as http:
        fetcher = SafeFetcher(http, allow_private=True, max_bytes=1 << 20, timeout=5)
        url = "https://images.example.com/shoe.jpg?size=large"
        source = ImageSource(url, "url", fetcher, url=url)
        fake = FakeRemovedo(polls_until_done=0)
        async with opened(fake) as client:
            [out] = await client.remove_background(source, Hooks())
    assert fetched == []
    assert fake.requests[0].form == {"image_url": url} and fake.requests[0].files == {}
    assert fake.requests[0].headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert png_of(out.data).size == fake.url_output_size


async def test_oversized_and_unsupported_inputs_are_fitted_before_upload() -> None:
    fake = FakeRemovedo(polls_until_done=0)
    gif = io.BytesIO()
    Image.new("RGB", (30, 20), "red").save(gif, "GIF")
    async with opened(fake) as client:
        await client.remove_background(data_source(image_bytes(5000, 100, "png")), Hooks())
        await client.remove_background(data_source(gif.getvalue()), Hooks())
    big, small = (r.files["image_file"] for r in fake.requests if r.method == "POST")
    assert big[1] == "image/png" and png_of(big[2]).size == (4096, 82)
    assert small[1] in ("image/png", "image/jpeg", "image/webp") and png_of(small[2]).format != "GIF"


async def test_result_url_key_is_accepted_too() -> None:
    fake = FakeRemovedo(polls_until_done=0, result_key="resultUrl")
    async with opened(fake) as client:
        [out] = await client.remove_background(data_source(image_bytes(40, 30)), Hooks())
    assert png_of(out.data).size == (40, 30)


async def test_rate_limited_submit_is_retried_once_accepted_and_charged_once() -> None:
    fake = FakeRemovedo(polls_until_done=0)
    fake.fail_next(SUBMIT, 429, headers={"Retry-After": "0"})
    hooks = Hooks()
    async with opened(fake) as client:
        await client.remove_background(data_source(image_bytes()), hooks)
    assert sum(r.method == "POST" for r in fake.requests) == 2
    assert len(fake.jobs) == 1 and fake.net_charged == 1 and hooks.charges == [1]


async def test_resume_polls_the_remembered_job_without_submitting() -> None:
    fake = FakeRemovedo(polls_until_done=1)
    transport = httpx2.ASGITransport(app=fake.app)
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://removedo.test", headers=auth) as raw:
        files = {"image_file": ("a.png", image_bytes(50, 40), "image/png")}
        job_id = (await raw.post(SUBMIT, files=files)).json()["jobId"]
    hooks = Hooks()
    async with opened(fake) as client:
        [out] = await client.resume({"job_id": job_id}, hooks)
    assert png_of(out.data).size == (50, 40)
    assert sum(r.method == "POST" for r in fake.requests) == 1
    assert hooks.charges == []  # the charge was recorded when the job was submitted


# ------------------------------------------------------------------------------------ webhooks
def hub_receiver(hub: WebhookHub) -> httpx2.ASGITransport:
    """Deliver the fake's webhooks straight into `hub` (the HTTP route is tested through MCP)."""

    async def hook(request: Request) -> JSONResponse:
        accepted = hub.deliver(request.path_params["secret"], await request.json())
        return JSONResponse({"accepted": accepted}, status_code=200 if accepted else 404)

    app = Starlette(routes=[Route("/webhooks/removedo/{secret}", hook, methods=["POST"])])
    return httpx2.ASGITransport(app=app)


async def test_webhook_wakes_the_poller_long_before_the_fallback_interval() -> None:
    hub = WebhookHub()
    fake = FakeRemovedo(complete_after_s=0.2, webhook_transport=hub_receiver(hub))
    hooks = Hooks()
    overrides = {"transport": "http", "public_url": PUBLIC + "/", "removedo_webhook_poll_interval": 60.0}
    async with fake, opened(fake, hub, **overrides) as client:
        start = anyio.current_time()
        with anyio.fail_after(10):
            [out] = await client.remove_background(data_source(image_bytes(64, 48)), hooks)
        elapsed = anyio.current_time() - start
    webhook_url = fake.requests[0].form["webhook_url"]
    assert webhook_url.startswith(PUBLIC + "/webhooks/removedo/")
    secret = webhook_url.rsplit("/", 1)[1]
    assert len(secret) >= 40
    [sent] = fake.webhooks_sent
    assert sent.status == 200 and sent.payload["status"] == "completed"
    assert elapsed < 5, elapsed  # the fallback poll would have come after 60 s
    assert polls(fake) == 1  # one status read, right after the webhook
    assert png_of(out.data).size == (64, 48)
    assert len(hub) == 0 and hub.knows(secret)  # slot released; a replay is recognised...
    assert hub.deliver(secret, sent.payload) is False  # ...and ignored


async def test_lost_webhook_falls_back_to_slow_polling() -> None:
    hub = WebhookHub()
    fake = FakeRemovedo(polls_until_done=1, lose_webhooks=True, webhook_transport=hub_receiver(hub))
    overrides = {"transport": "http", "public_url": PUBLIC, "removedo_webhook_poll_interval": 0.05}
    async with opened(fake, hub, **overrides) as client:
        with anyio.fail_after(10):
            [out] = await client.remove_background(data_source(image_bytes()), Hooks())
    assert fake.webhooks_lost and not fake.webhooks_sent
    assert polls(fake) == 2 and png_of(out.data).mode == "RGBA"


async def test_no_webhook_on_stdio_even_with_a_public_url() -> None:
    hub = WebhookHub()
    fake = FakeRemovedo(polls_until_done=0)
    async with opened(fake, hub, transport="stdio", public_url=PUBLIC) as client:
        await client.remove_background(data_source(image_bytes()), Hooks())
    assert "webhook_url" not in fake.requests[0].form and len(hub) == 0


async def test_hub_accepts_one_documented_delivery_per_known_secret() -> None:
    hub = WebhookHub()
    slot = hub.register("s3cret-one")
    slot.expect("cjob1")
    done = {"jobId": "cjob1", "status": "completed", "outputUrl": "https://cdn.test/o.png", "completedAt": "x"}
    assert hub.deliver("not-issued", done) is False and not hub.knows("not-issued")
    assert hub.problem("s3cret-one", {"jobId": "cjob1", "status": "processing"}) is not None
    assert hub.problem("s3cret-one", {"jobId": "cjob1", "status": "completed"}) is not None  # no outputUrl
    assert hub.problem("s3cret-one", [1, 2]) is not None
    assert hub.problem("s3cret-one", {**done, "jobId": "cother"}) == (
        "jobId does not match the job this webhook URL was issued for"
    )
    assert not slot.received
    assert hub.deliver("s3cret-one", {**done, "extra": "dropped"}) is True
    assert slot.payload == done
    assert hub.deliver("s3cret-one", {**done, "outputUrl": "https://evil.test/x.png"}) is False  # replay
    assert slot.payload == done
    with anyio.fail_after(1):
        assert await slot.wait(30) is True


# -------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("setup", "error", "fragment"),
    [
        (None, AuthFailed, "check REMOVEDO_API_KEY"),  # the client sends another key
        (lambda f: setattr(f, "balance", 0), OutOfCredits, "HTTP 402 insufficient credits"),
        (lambda f: setattr(f, "suspended", True), AuthFailed, "account suspended"),
        (lambda f: f.fail_next(SUBMIT, 400, body={"error": "image_url must be an http(s) URL"}), InvalidInput, "400"),
        (lambda f: f.fail_next(SUBMIT, 404), ProviderUnavailable, "REMOVEDO_BASE_URL"),
    ],
)
async def test_submit_errors_map_to_clear_messages_and_charge_nothing(
    setup: Any, error: type[Exception], fragment: str
) -> None:
    fake = FakeRemovedo()
    overrides = {"REMOVEDO_API_KEY": "sk_live_wrong_key_1234"} if setup is None else {}
    if setup is not None:
        setup(fake)
    hooks = Hooks()
    async with opened(fake, **overrides) as client:
        with pytest.raises(error) as info:
            await client.remove_background(data_source(image_bytes()), hooks)
    message = str(info.value)
    assert fragment in message and "Nothing was charged" in message
    assert "sk_live" not in message  # no key in any message
    assert getattr(info.value, "charged", False) is False
    assert hooks.charges == [] and fake.net_charged == 0 and polls(fake) == 0


async def test_submit_500_is_not_resent_and_counts_as_possibly_charged() -> None:
    fake = FakeRemovedo()
    fake.fail_next(SUBMIT, 500)
    async with opened(fake) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await client.remove_background(data_source(image_bytes()), Hooks())
    assert info.value.charged is True and "HTTP 500" in str(info.value)
    assert info.value.max_charge == 1 and "(at most 1 credit)" in str(info.value) and "check_credits" in str(info.value)
    assert sum(r.method == "POST" for r in fake.requests) == 1


@pytest.mark.parametrize("refund", [False, True])
async def test_a_failed_job_never_states_a_refund_as_fact(refund: bool) -> None:
    # The seed's "Credit Refunds" section is empty: whether the fake refunds or not, the client
    # says what is known and counts the credit as possibly charged.
    fake = FakeRemovedo(polls_until_done=1, fail_jobs=True, refund_failed=refund)
    hooks = Hooks()
    async with opened(fake) as client:
        with pytest.raises(JobFailed) as info:
            await client.remove_background(data_source(image_bytes()), hooks)
    message = str(info.value)
    assert "Processing failed" in message and "do not say whether failed jobs are refunded" in message
    assert "refunds the credit" not in message and "nothing was charged" not in message.lower()
    assert info.value.charged is True and info.value.max_charge == 1
    assert hooks.charges == [1] and hooks.bases == ["documented"] and hooks.refs["refund"] == "unknown"
    assert fake.net_charged == (0 if refund else 1)


@pytest.mark.parametrize(
    ("status", "times", "error", "fragment"),
    [
        (401, 1, AuthFailed, "check REMOVEDO_API_KEY"),
        (403, 1, AuthFailed, "account suspended"),
        (404, 1, JobFailed, "does not know job"),
        (500, 4, ProviderUnavailable, "HTTP 500"),  # retried (GET) up to max_attempts, then mapped
    ],
)
async def test_poll_errors_after_submit_say_the_credit_was_charged(
    status: int, times: int, error: type[Exception], fragment: str
) -> None:
    fake = FakeRemovedo()
    fake.fail_next("/api/v1/jobs/", status, times=times)
    hooks = Hooks()
    async with opened(fake) as client:
        with pytest.raises(error) as info:
            await client.remove_background(data_source(image_bytes()), hooks)
    assert fragment in str(info.value)
    assert info.value.charged is True  # auto routing must not fall through after this
    assert hooks.charges == [1] and fake.net_charged == 1
    assert polls(fake) == times


async def test_poll_500_once_is_retried_transparently() -> None:
    fake = FakeRemovedo(polls_until_done=0)
    fake.fail_next("/api/v1/jobs/", 500)
    async with opened(fake) as client:
        [out] = await client.remove_background(data_source(image_bytes()), Hooks())
    assert png_of(out.data).mode == "RGBA" and polls(fake) == 2


def test_not_configured_names_the_variable() -> None:
    with pytest.raises(NotConfigured, match="REMOVEDO_API_KEY"):
        RemovedoClient.from_settings(Settings(_env_file=None), policy=RetryPolicy())


async def test_balance_is_unknown_and_points_at_the_ledger() -> None:
    async with opened(FakeRemovedo()) as client:
        balance = await client.balance()
    assert balance.amount is None and "ledger" in balance.detail


@pytest.mark.parametrize(("estimate", "said"), [("1-2 minutes", "1-2 minutes"), (None, None), ("soon-ish", "soon-ish")])
async def test_the_completion_estimate_is_read_tolerantly(estimate: str | None, said: str | None) -> None:
    # Inferred: the seed shows one sample ("30-60 seconds"); other strings, or none, must not break a job.
    fake = FakeRemovedo(polls_until_done=1, estimate=estimate)
    hooks = Hooks()
    async with opened(fake) as client:
        [out] = await client.remove_background(data_source(image_bytes()), hooks)
    assert out.meta.get("removedo_estimated_completion") == said
    assert any(("Removedo estimates" in m) == (said is not None) for m in hooks.messages if "processing" in m)


def test_estimates_parse_to_seconds() -> None:
    from tools.providers.removedo.spec import parse_estimate

    assert parse_estimate("30-60 seconds") == (30, 60)
    assert parse_estimate("1-2 minutes") == (60, 120)
    assert parse_estimate("45 s") == (45, 45)
    assert parse_estimate(20) == (20, 20)
    assert parse_estimate("soon") is None and parse_estimate(None) is None and parse_estimate("60-30 seconds") is None


async def test_a_dropped_answer_to_the_submit_says_it_may_have_charged() -> None:
    fake = FakeRemovedo()

    class DropSubmitAnswer(httpx2.AsyncBaseTransport):
        inner = httpx2.ASGITransport(app=fake.app)

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            response = await self.inner.handle_async_request(request)
            if request.method == "POST":
                await response.aread()
                raise httpx2.ReadError("connection reset by peer", request=request)
            return response

    client = RemovedoClient.from_settings(
        settings(fake), transport=DropSubmitAnswer(), policy=RetryPolicy(base_delay=0.001)
    )
    async with client:
        with pytest.raises(ProviderUnavailable) as info:
            await client.remove_background(data_source(image_bytes()), Hooks())
    assert info.value.charged and info.value.max_charge == 1
    assert "may have charged" in str(info.value) and "check_credits" in str(info.value)
    assert len(fake.jobs) == 1 and sum(r.method == "POST" for r in fake.requests) == 1  # done once, not re-sent


async def test_a_key_with_trailing_whitespace_is_stripped_on_load() -> None:
    fake = FakeRemovedo()
    async with opened(fake, REMOVEDO_API_KEY=fake.api_key + " \n") as client:
        [out] = await client.remove_background(data_source(image_bytes()), Hooks())
    assert fake.requests[0].headers["authorization"] == f"Bearer {fake.api_key}" and out.data
