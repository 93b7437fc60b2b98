"""Removedo (https://www.removedo.com): asynchronous background removal, 1 credit per job.

Contract: /work/shared/providers.md §3.

    POST /api/v1/remove-bg    Bearer key; multipart `image_file` or form `image_url`, optional
                              `webhook_url` -> 202 {"jobId", "status": "processing", ...}
    GET  /api/v1/jobs/{jobId} -> {"status": processing|completed|failed, "outputUrl"|"resultUrl",
                                  "errorMessage", ...}

The credit is taken when the job is accepted (202) and refunded by Removedo when the job
fails, so the ledger records +1 at submit and -1 on `failed`. When the server runs on an
HTTP transport with PHOTO_MCP_PUBLIC_URL set, each job gets a webhook URL with its own
secret (tools/core/webhooks.py); the poller then sleeps on the webhook, polling only as a
slow fallback, and reads the job's status the moment the webhook arrives.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Literal

import anyio
import httpx2

from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    NotConfigured,
    OutOfCredits,
    PhotoError,
    ProviderError,
    ProviderUnavailable,
)
from tools.core.images import FitLimits, fit, in_worker
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.core.webhooks import WebhookHub, WebhookSlot
from tools.providers.base import (
    Balance,
    JobHooks,
    ProviderImage,
    RetryPolicy,
    default_timeout,
    download,
    send,
    unavailable,
)

NAME = "removedo"
SUBMIT_PATH = "/api/v1/remove-bg"
JOB_PATH = "/api/v1/jobs/{job_id}"
WEBHOOK_PATH = "/webhooks/removedo/{secret}"
# Documented: JPEG, PNG or WEBP. Size limits are undocumented; these are the common ones
# of the other background-removal APIs (10 MB, 4096 px), so big photos are fitted first.
LIMITS = FitLimits(max_side=4096, max_bytes=10 * 1024 * 1024, formats=("png", "jpeg", "webp"))
MAX_WAIT_S = 30 * 60.0  # documented estimate: 30-60 s; give up (charged) far beyond it
EXPECTED_S = 45.0  # for the progress fraction
MAX_GARBLED_POLLS = 3  # consecutive status answers that are not JSON before giving up on the job
_DONE = frozenset({"completed", "complete", "succeeded", "success", "done"})
_FAILED = frozenset({"failed", "error"})
_URL_KEYS = ("outputUrl", "resultUrl", "output_url", "result_url", "url")

Phase = Literal["submit", "poll"]


def _error_text(response: httpx2.Response) -> str:
    """The provider's own error text, if any (bodies are `{"error": "..."}`; tolerate others)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("error", "message", "errorMessage", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:300]
    return ""


class RemovedoClient:
    name = NAME
    uses_webhooks = True  # the runtime hands it the webhook hub

    def __init__(
        self,
        http: httpx2.AsyncClient,
        api_key: str,
        *,
        policy: RetryPolicy,
        max_pixels: int,
        poll_interval: float,
        webhook_poll_interval: float,
        webhook_base: str | None = None,
        webhooks: WebhookHub | None = None,
    ) -> None:
        self._http = http
        # Sent per API request only: result downloads (other hosts) never see the key.
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._key = api_key  # only to scrub it from provider text we pass on (a server may quote it back)
        self._policy = policy
        self._max_pixels = max_pixels
        self.poll_interval = poll_interval
        self.webhook_poll_interval = webhook_poll_interval
        self.webhook_base = webhook_base
        self._webhooks = webhooks

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: RetryPolicy,
        webhooks: WebhookHub | None = None,
    ) -> RemovedoClient:
        """Raises:
        NotConfigured: if REMOVEDO_API_KEY is not set.
        """
        key = settings.removedo_api_key.get_secret_value() if settings.removedo_api_key else ""
        if not key:
            raise NotConfigured(
                "Removedo is not configured: set REMOVEDO_API_KEY (an API key from removedo.com, "
                "e.g. sk_live_...) in the server's environment."
            )
        http = httpx2.AsyncClient(
            base_url=settings.removedo_base_url.rstrip("/"),
            timeout=default_timeout(settings.provider_timeout),
            transport=transport,
            follow_redirects=True,
        )
        # Webhooks need a URL Removedo can reach: only an HTTP server with a public URL has one.
        webhook_base = settings.public_url.rstrip("/") if settings.is_remote and settings.public_url else None
        return cls(
            http,
            key,
            policy=policy,
            max_pixels=settings.max_pixels,
            poll_interval=settings.removedo_poll_interval,
            webhook_poll_interval=settings.removedo_webhook_poll_interval,
            webhook_base=webhook_base,
            webhooks=webhooks,
        )

    async def __aenter__(self) -> RemovedoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------------------ operations
    async def remove_background(self, source: ImageSource, hooks: JobHooks) -> list[ProviderImage]:
        """Cut out `source`: submit (1 credit), wait for the job, download the transparent PNG.

        A public http(s) URL is passed to Removedo as `image_url` (not downloaded here);
        anything else is uploaded as `image_file`, fitted to JPEG/PNG/WEBP, 10 MB, 4096 px.

        Raises:
            InvalidInput: the image cannot be used, or Removedo rejected the parameters.
            AuthFailed / OutOfCredits / RateLimited / ProviderUnavailable: per the HTTP status.
            JobFailed: Removedo ran the job and it failed (its credit is refunded).
        """
        form: dict[str, str] = {}
        files: dict[str, tuple[str, bytes, str]] | None = None
        if source.public_url is not None:
            form["image_url"] = source.public_url
        else:
            encoded = await in_worker(fit, await source.read(), LIMITS, self._max_pixels)
            files = {"image_file": (f"image.{encoded.extension}", encoded.data, encoded.mime_type)}
        secret: str | None = None
        slot: WebhookSlot | None = None
        if self._webhooks is not None and self.webhook_base is not None:
            secret = secrets.token_urlsafe(32)
            slot = self._webhooks.register(secret)
            form["webhook_url"] = self.webhook_base + WEBHOOK_PATH.format(secret=secret)
        try:
            await hooks.progress("uploading to Removedo" if files else "sending the image URL to Removedo", 0.1)
            job_id = await self._submit(form, files)
            if slot is not None:
                slot.expect(job_id)
            await hooks.remember(job_id=job_id)
            await hooks.charged(1)  # Removedo takes the credit when it accepts the job
            await hooks.progress(f"queued at Removedo (job {job_id})", 0.2)
            url = await self._wait(job_id, hooks, slot)
        finally:
            if secret is not None and self._webhooks is not None:
                self._webhooks.discard(secret)
        return [await self._download(job_id, url, hooks)]

    async def resume(self, ref: dict[str, Any], hooks: JobHooks) -> list[ProviderImage]:
        """Continue a job submitted before a restart (polling only: its webhook URL died with
        the old process). Never submits again.

        Raises:
            JobFailed: no job id recorded, the job failed (refunded) or Removedo no longer knows it.
            AuthFailed / ProviderUnavailable / RateLimited: as for polling (the credit stays charged).
        """
        job_id = ref.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise JobFailed(
                "This Removedo job cannot be resumed: the server stopped before Removedo answered with a job id, so "
                "it was not re-sent. If the upload had reached Removedo it may have been charged 1 credit (refunded "
                "only if the job fails): check before running remove_background again.",
                provider=NAME,
                charged=True,
            )
        await hooks.progress(f"polling Removedo job {job_id} after a restart", 0.2)
        url = await self._wait(job_id, hooks, None)
        return [await self._download(job_id, url, hooks)]

    async def balance(self) -> Balance:
        return Balance(None, "Removedo has no balance endpoint; see this server's ledger")

    # -------------------------------------------------------------------------------- plumbing
    async def _submit(self, form: dict[str, str], files: dict[str, Any] | None) -> str:
        response = await send(
            self._http,
            "POST",
            SUBMIT_PATH,
            provider=NAME,
            idempotent=False,  # each accepted submit is a paid job
            policy=self._policy,
            data=form,
            files=files,
            headers=self._auth,
        )
        if response.status_code not in (200, 201, 202):
            raise self._error(response, "submit")
        try:
            job_id = response.json()["jobId"]
        except (ValueError, KeyError, TypeError):
            job_id = None
        if not isinstance(job_id, str) or not job_id:
            raise ProviderError(
                f"Removedo accepted the upload (HTTP {response.status_code}) but returned no jobId, so the "
                "result cannot be fetched. It may have charged 1 credit; try again later or use another provider.",
                provider=NAME,
                charged=True,
            )
        return job_id

    async def _wait(self, job_id: str, hooks: JobHooks, slot: WebhookSlot | None) -> str:
        """Poll until the job is terminal; return the result URL.

        With a webhook slot the poller sleeps on the webhook (the slow interval is only a
        fallback for a lost webhook) and polls the moment it arrives.
        """
        start = time.monotonic()
        garbled = 0
        while True:
            if slot is not None and not slot.received:
                await slot.wait(self.webhook_poll_interval)
            else:
                await anyio.sleep(self.poll_interval)
            body = await self._status(job_id)
            if body is None:
                # Garbled on the way (a cut body, a gateway page). The job is paid for: asking again
                # is harmless, giving up would lose its result.
                garbled += 1
                if garbled >= MAX_GARBLED_POLLS:
                    raise ProviderUnavailable(
                        f"Removedo answered the status of job {job_id} with something that is not JSON, "
                        f"{garbled} times in a row. The job was already charged 1 credit; try again later.",
                        provider=NAME,
                        charged=True,
                        retryable=True,
                    )
                continue
            garbled = 0
            status = str(body.get("status", "")).lower()
            if status in _DONE:
                url = next((body[k] for k in _URL_KEYS if isinstance(body.get(k), str) and body[k]), None)
                if url is None:
                    raise ProviderError(
                        f"Removedo reports job {job_id} completed but gives no output URL; its credit was "
                        "charged. Try again, or use another provider.",
                        provider=NAME,
                        charged=True,
                    )
                return url
            if status in _FAILED:
                await hooks.charged(-1)  # Removedo refunds failed jobs
                reason = self._scrub(str(body.get("errorMessage") or body.get("error") or "no reason given"))
                raise JobFailed(
                    f"Removedo could not remove the background (job {job_id}): {str(reason)[:300]}. "
                    "Removedo refunds the credit for failed jobs, so nothing was charged. Try a clearer photo "
                    "with a distinct subject, or another provider.",
                    provider=NAME,
                )
            elapsed = time.monotonic() - start
            if elapsed > MAX_WAIT_S:
                raise ProviderUnavailable(
                    f"Removedo job {job_id} is still processing after {elapsed / 60:.0f} minutes; giving up. "
                    "Its credit was charged at submit. Try again later or use another provider.",
                    provider=NAME,
                    charged=True,
                    retryable=True,
                )
            fraction = 0.2 + 0.65 * (1 - math.exp(-elapsed / EXPECTED_S))
            await hooks.progress(f"processing at Removedo ({elapsed:.0f} s)", fraction)

    async def _status(self, job_id: str) -> dict[str, Any] | None:
        """The job's status body; None when the answer was not a JSON object."""
        try:
            response = await send(
                self._http,
                "GET",
                JOB_PATH.format(job_id=job_id),
                provider=NAME,
                idempotent=True,
                policy=self._policy,
                headers=self._auth,
            )
        except ProviderError as exc:  # unreachable / rate limited: the job itself was already paid for
            exc.charged = True
            exc.message += f" Removedo job {job_id} was already submitted (1 credit charged)."
            exc.args = (exc.message,)
            raise
        if response.status_code != 200:
            raise self._error(response, "poll", job_id)
        try:
            body = response.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else None

    async def _download(self, job_id: str, url: str, hooks: JobHooks) -> ProviderImage:
        if not url.startswith(("http://", "https://")):
            raise ProviderError(
                f"Removedo gave an output URL that is not http(s) for job {job_id}; its credit was charged.",
                provider=NAME,
                charged=True,
            )
        await hooks.progress("downloading the result from Removedo", 0.9)
        data = await download(self._http, url, provider=NAME, policy=self._policy)
        return ProviderImage(data, meta={"removedo_job_id": job_id}, ref={"job_id": job_id})

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "sk_…") if self._key and text else text

    def _error(self, response: httpx2.Response, phase: Phase, job_id: str | None = None) -> PhotoError:
        """Map an HTTP error to the error tree. After submit the credit is spent: `charged=True`."""
        status = response.status_code
        detail = self._scrub(_error_text(response))
        said = f" ({detail})" if detail else ""
        charged = phase == "poll"
        money = (
            f" Removedo job {job_id} was already submitted and charged 1 credit."
            if charged
            else " Nothing was charged."
        )
        if status == 400:
            return InvalidInput(
                f"Removedo rejected the request as invalid (HTTP 400){said}. It accepts one JPEG, PNG or WEBP "
                "image, or a public http(s) URL to one; check the image." + money
            )
        if status == 401:
            return AuthFailed(
                f"Removedo rejected the API key (HTTP 401){said}: check REMOVEDO_API_KEY." + money,
                provider=NAME,
                charged=charged,
            )
        if status == 402:
            return OutOfCredits(
                f"Removedo has no credits left (HTTP 402 insufficient credits){said}. Buy credits at "
                "removedo.com or use another provider." + money,
                provider=NAME,
                charged=charged,
            )
        if status == 403:
            return AuthFailed(
                f"Removedo refused the request: account suspended (HTTP 403){said}. Contact Removedo support "
                "or use another provider." + money,
                provider=NAME,
                charged=charged,
            )
        if status == 404:
            if phase == "poll":
                return JobFailed(
                    f"Removedo does not know job {job_id} (HTTP 404): it may have expired or been deleted, so "
                    "its result cannot be fetched. The credit taken at submit may not come back; run "
                    "remove_background again if needed.",
                    provider=NAME,
                    charged=True,
                )
            return ProviderUnavailable(
                f"Removedo answered HTTP 404 for {SUBMIT_PATH}: check REMOVEDO_BASE_URL "
                "(default https://www.removedo.com). Nothing was charged.",
                provider=NAME,
            )
        if status >= 500:
            if phase == "submit":
                # The submit may still have created (and charged) a job: never fall through after it.
                return unavailable(NAME, response, charged=True)
            return ProviderUnavailable(
                f"Removedo answered HTTP {status} (a server-side problem) while reporting job {job_id}, even "
                f"after retries.{money} Try again later.",
                provider=NAME,
                charged=True,
                retryable=True,
            )
        return ProviderError(
            f"Removedo answered HTTP {status}{said} unexpectedly." + money, provider=NAME, charged=charged
        )
