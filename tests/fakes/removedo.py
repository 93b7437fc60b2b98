"""Fake Removedo server: the async background-removal API of /work/shared/providers.md section 3.

Implemented from the seed (004, the vendor's API page):
- `POST /api/v1/remove-bg` with `Authorization: Bearer <key>`; multipart `image_file` (JPEG/PNG/WEBP) or
  `image_url` (urlencoded or multipart), exactly one of them, optional `webhook_url`; answers 202
  `{"jobId","status":"processing","createdAt","estimatedCompletionTime":"30-60 seconds"}`.
- `GET /api/v1/jobs/{jobId}`; 404 for an unknown job.
- Webhook: one JSON POST to `webhook_url` on a terminal state, with the documented payloads.
- Status codes 400/401/402/403/404/500; 1 credit per call from one pool; 402 when it is empty.

Inferred (providers.md says so, clients must be tolerant there):
- The job-status body: `{"jobId","status","createdAt","completedAt","outputUrl","errorMessage"}`, with
  the result-URL key switchable (`result_key="resultUrl"`) to test client tolerance.
- cuid-like job ids ("c" + 24 base36 chars); error bodies `{"error": "..."}`; any 2xx acks a webhook
  (no retries, no signature); the credit is charged at submit.
- Refunds: the seed's "Credit Refunds" section is empty, so a failed job is NOT refunded unless the
  `refund_failed=True` knob says so (clients must not state either as fact).
- `estimatedCompletionTime` is a free-form string in the seed ("30-60 seconds"); the `estimate` knob
  changes it (None leaves the field out) so clients are tested on other shapes.

Choices of this fake (not in the contract):
- Validation order on submit: auth (401), suspension (403), parameters (400), credits (402). Injected
  faults (`fail_next`) come before all of these and have no side effects.
- When `complete_after_s` is set, time alone decides completion (polls do not advance the job); the
  deadline is also checked lazily on each poll, so a poll after it always sees the terminal state.
- Results are real RGBA PNGs served at `GET /outputs/{jobId}.png` (no auth, like the doc's `curl -O`),
  the input's size, with an alpha mask keyed on the border colour; URL jobs cut out a default `scene()`.

Timers (why `async with fake:`): a Starlette `BackgroundTask` runs inside the request's ASGI call, and
httpx2.ASGITransport awaits that whole call, so a sleeping timer would hold the 202 response back; the
app's lifespan does not run under ASGITransport nor under `serve()` (lifespan="off"). So the fake owns an
anyio task group opened by `async with fake:` (the app's lifespan enters the same thing, for servers that
run lifespans). Per-job timers run in it and work under both transports; leaving the block cancels any
pending timers. Poll-driven completion needs no task group: its webhook is sent before the poll answers.
"""

from __future__ import annotations

import io
import secrets
import string
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
from anyio.abc import TaskGroup
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import Fault, FaultQueue
from .images import scene
from .recording import Recorded, record

DEFAULT_API_KEY = "sk_live_test_removedo_000000"
ESTIMATE = "30-60 seconds"
FAILED_MESSAGE = "Processing failed"
_FORMATS = {"JPEG", "PNG", "WEBP"}
_BASE36 = string.digits + string.ascii_lowercase
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_DEFAULT_ERRORS = {
    400: "Bad request",
    401: "Invalid or missing API key",
    402: "Insufficient credits",
    403: "Account suspended",
    404: "Not found",
    429: "Too many requests",
    500: "Internal server error",
}


@dataclass
class Charge:
    job_id: str
    amount: int  # +1 for a submit, -1 for the refund of a failed job; sum() is the net
    what: str  # "remove-bg" or "refund"


@dataclass
class WebhookDelivery:
    url: str
    payload: dict[str, Any]
    status: int | None  # the receiver's HTTP status; None if the POST did not get an answer
    error: str | None = None  # exception class name when the POST failed


@dataclass
class Job:
    id: str
    created_at: str
    created_mono: float
    base_url: str  # of the submit request, so outputUrl works on whatever port the app is served on
    image: Image.Image | None  # decoded upload; None for an image_url job
    image_url: str | None
    webhook_url: str | None
    polls: int = 0
    status: str = "processing"
    completed_at: str | None = None
    output_url: str | None = None
    error_message: str | None = None


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # second precision, like the seed samples


def _new_job_id() -> str:
    return "c" + "".join(secrets.choice(_BASE36) for _ in range(24))  # cuid v1 shape: 25 chars


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def cutout_png(img: Image.Image) -> bytes:
    """A plausible background removal: alpha = pixels that differ from the corner colours.

    A small median filter removes speckle (JPEG noise). If the key removes everything or nothing,
    fall back to a centred ellipse.
    """
    rgb = img.convert("RGB")
    w, h = rgb.size
    # Background model: the four corner colours blended bilinearly, so gradients (studio sweeps,
    # scene()'s light gradient) are keyed out too, not just flat backdrops.
    corners = Image.new("RGB", (2, 2))
    corners.putdata([rgb.getpixel(p) for p in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1))])
    bg = corners.resize(rgb.size, Image.Resampling.BILINEAR)
    diff = ImageChops.difference(rgb, bg).convert("L")
    mask = diff.point(lambda v: 255 if v > 40 else 0)
    if min(w, h) >= 3:
        mask = mask.filter(ImageFilter.MedianFilter(3))
    if mask.getextrema() in ((0, 0), (255, 255)):
        mask = Image.new("L", rgb.size, 0)
        ImageDraw.Draw(mask).ellipse((w // 6, h // 6, w - 1 - w // 6, h - 1 - h // 6), fill=255)
    if "A" in img.getbands():  # an already transparent input stays transparent where it was
        mask = ImageChops.multiply(mask, img.getchannel("A"))
    out = rgb.convert("RGBA")
    out.putalpha(mask)
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


class FakeRemovedo:
    """In-memory Removedo. Build it, hand `fake.app` to a transport or `serve()`, flip knobs in tests."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        credits: int = 100,
        polls_until_done: int = 2,
        complete_after_s: float | None = None,
        fail_jobs: bool = False,
        suspended: bool = False,
        result_key: str = "outputUrl",
        lose_webhooks: bool = False,
        delay_s: float = 0.0,
        url_output_size: tuple[int, int] = (64, 48),
        webhook_timeout_s: float = 5.0,
        webhook_transport: httpx2.AsyncBaseTransport | None = None,
        refund_failed: bool = False,
        estimate: str | None = ESTIMATE,
    ) -> None:
        self.api_key = api_key
        self.balance: int = credits
        self.polls_until_done = polls_until_done
        self.complete_after_s = complete_after_s
        self.fail_jobs = fail_jobs
        self.suspended = suspended
        self.result_key = result_key
        self.lose_webhooks = lose_webhooks
        self.delay_s = delay_s
        self.url_output_size = url_output_size
        self.webhook_timeout_s = webhook_timeout_s
        # Lets a test deliver webhooks into an ASGI app without a socket (httpx2.ASGITransport).
        self.webhook_transport = webhook_transport
        self.refund_failed = refund_failed  # undocumented: off by default
        self.estimate = estimate

        self.requests: list[Recorded] = []
        self.charges: list[Charge] = []
        self.jobs: dict[str, Job] = {}
        self.outputs: dict[str, bytes] = {}  # file name -> PNG bytes served at /outputs/{name}
        self.webhooks_sent: list[WebhookDelivery] = []
        self.webhooks_lost: list[WebhookDelivery] = []  # swallowed by lose_webhooks (status None)
        self.faults = FaultQueue()
        self._tg: TaskGroup | None = None
        self._delivered: anyio.Event | None = None  # wakes wait_for_webhooks()

        self.app = Starlette(
            routes=[
                Route("/api/v1/remove-bg", self._wrap(self._submit, auth=True), methods=["POST"]),
                Route("/api/v1/jobs/{job_id}", self._wrap(self._status, auth=True), methods=["GET"]),
                Route("/outputs/{name}", self._wrap(self._output, auth=False), methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    # ----------------------------------------------------------------- lifecycle (timer task group)
    async def __aenter__(self) -> FakeRemovedo:
        if self._tg is not None:
            raise RuntimeError("FakeRemovedo is already running")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()  # pending timers are test leftovers: do not make the test wait for them
        return await tg.__aexit__(exc_type, exc, tb)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self:
            yield

    @property
    def running(self) -> bool:
        return self._tg is not None

    # ----------------------------------------------------------------------------- test helpers
    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` requests whose path starts with `path_prefix` with `status`.

        `body` may be a dict/list (sent as JSON), str/bytes (sent as text/plain), or None for
        `{"error": <default message for the status>}`. Faults have no side effects (no charge, no job).
        """
        self.faults.append(Fault(path_prefix, status, times, dict(headers or {}), body))

    @property
    def net_charged(self) -> int:
        return sum(c.amount for c in self.charges)

    async def wait_for_webhooks(self, count: int = 1, timeout_s: float = 5.0) -> list[WebhookDelivery]:
        """Wait until at least `count` webhook deliveries were attempted (answered or not).

        Raises:
            TimeoutError: if fewer than `count` were attempted within `timeout_s`.
        """
        with anyio.fail_after(timeout_s):
            while len(self.webhooks_sent) < count:
                self._delivered = anyio.Event()  # made here: anyio events need a running event loop
                await self._delivered.wait()
        return self.webhooks_sent

    # --------------------------------------------------------------------------------- plumbing
    def _wrap(
        self, handler: Callable[[Request, Recorded], Awaitable[Response]], *, auth: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rec = await record(request)
            self.requests.append(rec)
            if self.delay_s:
                await anyio.sleep(self.delay_s)
            fault = self.faults.take(rec.path)
            if fault is not None:
                return self._fault_response(fault)
            if auth:
                if not self._authorized(rec.headers.get("authorization", "")):
                    return _error(401, _DEFAULT_ERRORS[401])
                if self.suspended:
                    return _error(403, "Account suspended")
            return await handler(request, rec)

        return endpoint

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self.api_key.encode())

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.body is None:
            return _error(fault.status, _DEFAULT_ERRORS.get(fault.status, "Error"), fault.headers)
        if isinstance(fault.body, str | bytes):
            return Response(fault.body, fault.status, fault.headers, media_type="text/plain")
        return JSONResponse(fault.body, fault.status, fault.headers)

    # ----------------------------------------------------------------------------------- routes
    async def _submit(self, request: Request, rec: Recorded) -> Response:
        ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _FORM_TYPES:
            return _error(400, "Content-Type must be multipart/form-data or application/x-www-form-urlencoded")
        if "image_file" in rec.form:  # a text field, not a file part
            return _error(400, "image_file must be a file upload")
        upload = rec.files.get("image_file")
        image_url = rec.form.get("image_url", "").strip() or None
        webhook_url = rec.form.get("webhook_url", "").strip() or None
        if upload is not None and image_url is not None:
            return _error(400, "Provide either image_file or image_url, not both")
        if upload is None and image_url is None:
            return _error(400, "Either image_file or image_url must be provided")
        image: Image.Image | None = None
        if upload is not None:
            try:
                image = Image.open(io.BytesIO(upload[2]))
                image.load()
            except Exception:  # Pillow raises several types (UnidentifiedImageError, OSError, bombs...)
                return _error(400, "image_file must be a JPEG, PNG or WEBP image")
            if image.format not in _FORMATS:
                return _error(400, "image_file must be a JPEG, PNG or WEBP image")
        elif image_url is not None and not _is_http_url(image_url):
            return _error(400, "image_url must be an http(s) URL")
        if webhook_url is not None and not _is_http_url(webhook_url):
            return _error(400, "webhook_url must be an http(s) URL")
        if self.complete_after_s is not None and webhook_url is not None and self._tg is None:
            # Fail loudly: without the task group the timer (and so the webhook) would never fire.
            raise RuntimeError("complete_after_s with a webhook_url needs `async with fake:` around the test")
        if self.balance < 1:
            return _error(402, "Insufficient credits")

        job = Job(
            id=_new_job_id(),
            created_at=_iso_now(),
            created_mono=time.monotonic(),
            base_url=str(request.base_url),
            image=image,
            image_url=image_url,
            webhook_url=webhook_url,
        )
        self.jobs[job.id] = job
        self.balance -= 1  # charged at submit: "each API call consumes 1 credit"
        self.charges.append(Charge(job.id, 1, "remove-bg"))
        if self.complete_after_s is not None and self._tg is not None:
            self._tg.start_soon(self._timer, job)
        body = {
            "jobId": job.id,
            "status": "processing",
            "createdAt": job.created_at,
        }
        if self.estimate is not None:
            body["estimatedCompletionTime"] = self.estimate
        return JSONResponse(body, status_code=202)

    async def _status(self, request: Request, rec: Recorded) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "Job not found")
        if job.status == "processing":
            if self.complete_after_s is None:
                job.polls += 1
                if job.polls > self.polls_until_done:
                    await self._finish(job)
            elif time.monotonic() - job.created_mono >= self.complete_after_s:
                await self._finish(job)  # lazy check: the timer may not have run yet (or at all)
        body = {
            "jobId": job.id,
            "status": job.status,
            "createdAt": job.created_at,
            "completedAt": job.completed_at,
            self.result_key: job.output_url,
            "errorMessage": job.error_message,
        }
        return JSONResponse(body)

    async def _output(self, request: Request, rec: Recorded) -> Response:
        data = self.outputs.get(request.path_params["name"])
        if data is None:
            return _error(404, "Not found")
        return Response(data, media_type="image/png")

    # --------------------------------------------------------------------------- state machine
    async def _timer(self, job: Job) -> None:
        assert self.complete_after_s is not None
        await anyio.sleep(max(0.0, job.created_mono + self.complete_after_s - time.monotonic()))
        await self._finish(job)

    async def _finish(self, job: Job) -> None:
        """Move `job` to its terminal state once (a poll and the timer may race), then notify."""
        if job.status != "processing":
            return
        job.completed_at = _iso_now()
        if self.fail_jobs:
            job.status = "failed"
            job.error_message = FAILED_MESSAGE
            if self.refund_failed:  # knob: the seed does not say whether failed jobs are refunded
                self.balance += 1
                self.charges.append(Charge(job.id, -1, "refund"))
        else:
            job.status = "completed"
            source = job.image if job.image is not None else scene(*self.url_output_size)
            name = f"{job.id}.png"
            self.outputs[name] = cutout_png(source)
            job.output_url = f"{job.base_url}outputs/{name}"
        job.image = None  # the decoded upload is no longer needed
        if job.webhook_url is not None:
            await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        assert job.webhook_url is not None
        payload: dict[str, Any] = {"jobId": job.id, "status": job.status}
        if job.status == "completed":
            payload["outputUrl"] = job.output_url
        else:
            payload["errorMessage"] = job.error_message
        payload["completedAt"] = job.completed_at
        if self.lose_webhooks:
            self.webhooks_lost.append(WebhookDelivery(job.webhook_url, payload, None))
            return
        delivery = WebhookDelivery(job.webhook_url, payload, None)
        try:
            async with httpx2.AsyncClient(timeout=self.webhook_timeout_s, transport=self.webhook_transport) as client:
                response = await client.post(job.webhook_url, json=payload)
            delivery.status = response.status_code  # any answer counts: sent ONCE, no retries
        except httpx2.HTTPError as exc:
            delivery.error = type(exc).__name__
        self.webhooks_sent.append(delivery)
        if self._delivered is not None:
            self._delivered.set()
