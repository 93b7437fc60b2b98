"""Removedo (https://www.removedo.com): asynchronous background removal, 1 credit per job.

Contract: /work/shared/providers.md §3.

    POST /api/v1/remove-bg    Bearer key; multipart `image_file` or form `image_url`, optional
                              `webhook_url` -> 202 {"jobId", "status": "processing",
                              "estimatedCompletionTime", ...}
    GET  /api/v1/jobs/{jobId} -> {"status": processing|completed|failed, "outputUrl"|"resultUrl",
                                  "errorMessage", ...}

The credit is taken when the job is accepted (202, "documented"). Whether a failed job is
refunded is not documented, so a failure says so and counts as possibly charged (1 credit at
most). The estimate Removedo gives at submit drives the progress messages and is returned in
the image's meta. When the server runs on an HTTP transport with PHOTO_MCP_PUBLIC_URL set,
each job gets a webhook URL with its own secret (tools/core/webhooks.py); the poller then
sleeps on the webhook, polling only as a slow fallback, and reads the job's status the moment
the webhook arrives.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

import anyio
import httpx2

from tools.core.errors import JobFailed, ProviderError, ProviderUnavailable
from tools.core.fitting import fit_source
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.core.webhooks import WebhookHub, WebhookSlot
from tools.providers.base import Balance, JobHooks, ProviderImage
from tools.providers.http import (
    ResultDownloads,
    RetryPolicy,
    default_timeout,
    download_all,
    may_have_charged,
    send,
)
from tools.providers.keys import Scrubber, required_key
from tools.providers.polling import Poll, PollState, poll_until_done
from tools.providers.removedo.spec import (
    BAD_POLL_BUDGET,
    EXPECTED_S,
    JOB_PATH,
    LIMITS,
    MAX_WAIT_S,
    PRICES,
    REFUND_NOTE,
    RESULT_HOSTS,
    SUBMIT_PATH,
    WEBHOOK_PATH,
    parse_estimate,
)
from tools.providers.removedo.wire import DONE, FAILED, NAME, TITLE, error_for, output_url

PRICE, BASIS = PRICES["remove_background"]


class RemovedoClient:
    name = NAME
    uses_webhooks = True  # the runtime hands it the webhook hub
    downloads: ResultDownloads | None = None  # how result URLs are fetched (set by from_settings)

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
        self._scrub = Scrubber([api_key], mask="sk_…")  # a server may quote the key back
        self._policy = policy
        self._max_pixels = max_pixels
        self.poll_interval = poll_interval
        self.webhook_poll_interval = webhook_poll_interval
        self.webhook_base = webhook_base
        self._webhooks = webhooks

    def __repr__(self) -> str:
        return f"RemovedoClient(base_url={str(self._http.base_url)!r})"

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: RetryPolicy,
        webhooks: WebhookHub | None = None,
        downloads: ResultDownloads | None = None,
    ) -> RemovedoClient:
        """Raises:
        NotConfigured: if REMOVEDO_API_KEY is not set.
        """
        key = required_key(
            settings.removedo_api_key,
            "Removedo is not configured: set REMOVEDO_API_KEY (an API key from removedo.com, "
            "e.g. sk_live_...) in the server's environment.",
        )
        http = httpx2.AsyncClient(
            base_url=settings.removedo_base_url.rstrip("/"),
            timeout=default_timeout(settings.provider_timeout),
            transport=transport,
            follow_redirects=True,
        )
        # Webhooks need a URL Removedo can reach: only an HTTP server with a public URL has one.
        webhook_base = settings.public_url.rstrip("/") if settings.is_remote and settings.public_url else None
        client = cls(
            http,
            key,
            policy=policy,
            max_pixels=settings.max_pixels,
            poll_interval=settings.removedo_poll_interval,
            webhook_poll_interval=settings.removedo_webhook_poll_interval,
            webhook_base=webhook_base,
            webhooks=webhooks,
        )
        downloads = downloads or ResultDownloads.from_settings(settings, transport=transport)
        client.downloads = downloads.bound(hosts=RESULT_HOSTS, base=str(http.base_url))
        return client

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
            JobFailed: Removedo ran the job and it failed (whether it refunds is undocumented).
        """
        form: dict[str, str] = {}
        files: dict[str, tuple[str, bytes, str]] | None = None
        if source.public_url is not None:
            form["image_url"] = source.public_url
        else:
            encoded = await fit_source(source, LIMITS, self._max_pixels)
            files = {"image_file": (f"image.{encoded.extension}", encoded.data, encoded.mime_type)}
        secret: str | None = None
        slot: WebhookSlot | None = None
        if self._webhooks is not None and self.webhook_base is not None:
            secret = secrets.token_urlsafe(32)
            slot = self._webhooks.register(secret)
            form["webhook_url"] = self.webhook_base + WEBHOOK_PATH.format(secret=secret)
        try:
            await hooks.progress("uploading to Removedo" if files else "sending the image URL to Removedo", 0.1)
            job_id, estimate = await self._submit(form, files)
            if slot is not None:
                slot.expect(job_id)
            await hooks.remember(job_id=job_id, estimate=estimate)
            await hooks.charged(PRICE, basis=BASIS)  # Removedo takes the credit when it accepts the job
            said = f"; Removedo estimates {estimate}" if estimate else ""
            await hooks.progress(f"queued at Removedo (job {job_id}{said})", 0.2)
            url, elapsed = await self._wait(job_id, hooks, slot, estimate)
        finally:
            if secret is not None and self._webhooks is not None:
                self._webhooks.discard(secret)
        return [await self._download(job_id, url, hooks, estimate, elapsed)]

    async def resume(self, ref: dict[str, Any], hooks: JobHooks) -> list[ProviderImage]:
        """Continue a job submitted before a restart (polling only: its webhook URL died with
        the old process). Never submits again.

        Raises:
            JobFailed: no job id recorded, the job failed or Removedo no longer knows it.
            AuthFailed / ProviderUnavailable / RateLimited: as for polling (the credit stays charged).
        """
        job_id = ref.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise JobFailed(
                "This Removedo job cannot be resumed: the server stopped before Removedo answered with a job id, so "
                "it was not re-sent. If the upload had reached Removedo it may have been charged (at most 1 "
                "credit): run check_credits before running remove_background again.",
                provider=NAME,
                charged=True,
                max_charge=PRICE,
            )
        estimate = ref.get("estimate") if isinstance(ref.get("estimate"), str) else None
        await hooks.progress(f"polling Removedo job {job_id} after a restart", 0.2)
        url, elapsed = await self._wait(job_id, hooks, None, estimate)
        return [await self._download(job_id, url, hooks, estimate, elapsed)]

    async def balance(self) -> Balance:
        return Balance(None, "Removedo has no balance endpoint; see this server's ledger")

    # -------------------------------------------------------------------------------- plumbing
    async def _submit(self, form: dict[str, str], files: dict[str, Any] | None) -> tuple[str, str | None]:
        try:
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
        except ProviderError as exc:
            if exc.charged:  # sent, answer lost: the job may exist and be charged
                raise may_have_charged(exc, title=TITLE, max_charge=PRICE) from None
            raise
        if response.status_code not in (200, 201, 202):
            raise error_for(response, "submit", self._scrub)
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        job_id = body.get("jobId")
        if not isinstance(job_id, str) or not job_id:
            raise may_have_charged(
                ProviderError(
                    f"Removedo accepted the upload (HTTP {response.status_code}) but returned no jobId, so the "
                    "result cannot be fetched.",
                    provider=NAME,
                ),
                title=TITLE,
                max_charge=PRICE,
            )
        estimate = body.get("estimatedCompletionTime")
        if isinstance(estimate, int | float) and not isinstance(estimate, bool):
            estimate = f"{estimate:g} seconds"
        return job_id, (self._scrub(estimate.strip())[:60] or None) if isinstance(estimate, str) else None

    async def _wait(
        self, job_id: str, hooks: JobHooks, slot: WebhookSlot | None, estimate: str | None
    ) -> tuple[str, float]:
        """Poll until the job is terminal; return the result URL and the seconds it took.

        With a webhook slot the poller sleeps on the webhook (the slow interval is only a
        fallback for a lost webhook) and polls the moment it arrives.
        """
        span = parse_estimate(estimate)
        expected = (span[0] + span[1]) / 2 if span else EXPECTED_S
        said = f"; Removedo estimates {estimate}" if estimate else ""

        async def pause(seconds: float) -> None:
            if slot is not None and not slot.received:
                await slot.wait(seconds)
            else:  # no webhook, or it has arrived: the normal polling pace
                await anyio.sleep(min(seconds, self.poll_interval))

        async def check(state: PollState) -> Poll:
            body = await self._status(job_id)
            if body is None:
                # Garbled on the way (a cut body, a gateway page). The job is paid for: asking again
                # is harmless, giving up would lose its result.
                return Poll("garbled")
            status = str(body.get("status", "")).lower()
            if status in DONE:
                return Poll("done", body)
            if status in FAILED:
                reason = self._scrub(str(body.get("errorMessage") or body.get("error") or "no reason given"))
                await hooks.remember(refund="unknown")
                return Poll(
                    "failed",
                    body,
                    error=JobFailed(
                        f"Removedo could not remove the background (job {job_id}): {reason[:300]}. "
                        f"{REFUND_NOTE} (at most 1 credit was charged; check_credits shows this server's ledger). "
                        "Try a clearer photo with a distinct subject, or another provider.",
                        provider=NAME,
                        charged=True,
                        max_charge=PRICE,
                    ),
                )
            return Poll("pending", body)

        async def pending(state: PollState, poll: Poll) -> None:
            elapsed = state.elapsed
            fraction = 0.2 + 0.65 * (1 - math.exp(-elapsed / expected))
            await hooks.progress(f"processing at Removedo ({elapsed:.0f} s{said})", fraction)

        def give_up(poll: Poll, count: int) -> ProviderError:
            return ProviderUnavailable(
                f"Removedo answered the status of job {job_id} with something that is not JSON, "
                f"{count} times in a row. The job was already charged 1 credit; try again later.",
                provider=NAME,
                charged=True,
                retryable=True,
                max_charge=PRICE,
            )

        def too_long(elapsed: float) -> ProviderError:
            return ProviderUnavailable(
                f"Removedo job {job_id} is still processing after {elapsed / 60:.0f} minutes{said}; giving up. "
                "Its credit was charged at submit. Try again later or use another provider.",
                provider=NAME,
                charged=True,
                retryable=True,
                max_charge=PRICE,
            )

        interval = self.webhook_poll_interval if slot is not None else self.poll_interval
        started = time.monotonic()
        done = await poll_until_done(
            check,
            interval=interval,
            retry_interval=self.poll_interval,
            budget=BAD_POLL_BUDGET,
            give_up=give_up,
            deadline=MAX_WAIT_S,
            on_deadline=too_long,
            pause=pause,
            wait_first=True,
            on_pending=pending,
        )
        url = output_url(done.body)
        if url is None:
            raise ProviderError(
                f"Removedo reports job {job_id} completed but gives no output URL; its credit was "
                "charged. Try again, or use another provider.",
                provider=NAME,
                charged=True,
                max_charge=PRICE,
            )
        return url, time.monotonic() - started

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
            exc.max_charge = PRICE
            exc.message += f" Removedo job {job_id} was already submitted (1 credit charged)."
            exc.args = (exc.message,)
            raise
        if response.status_code != 200:
            raise error_for(response, "poll", self._scrub, job_id)
        try:
            body = response.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else None

    async def _download(
        self, job_id: str, url: str, hooks: JobHooks, estimate: str | None, elapsed: float
    ) -> ProviderImage:
        if not url.startswith(("http://", "https://")):
            raise ProviderError(
                f"Removedo gave an output URL that is not http(s) for job {job_id}; its credit was charged.",
                provider=NAME,
                charged=True,
            )
        await hooks.progress(f"downloading the result from Removedo (done in {elapsed:.0f} s)", 0.9)
        (data,) = await download_all(
            self._http, [url], provider=NAME, policy=self._policy, max_charge=PRICE, downloads=self.downloads
        )
        meta: dict[str, Any] = {"removedo_job_id": job_id, "removedo_seconds": round(elapsed, 1)}
        if estimate:
            meta["removedo_estimated_completion"] = estimate
        return ProviderImage(data, meta=meta, ref={"job_id": job_id})
