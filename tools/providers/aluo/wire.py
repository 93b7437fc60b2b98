"""The Aluo wire: one authenticated request under the HTTP policy, and the envelope.

Every answer goes through `AluoWire._envelope`, the one place that reads Aluo's
`{code, success, data | message, error}` shape, maps errors onto the tree in
`tools.core.errors`, and notes `credits_deducted` / `credits_remaining` when present. Those two
fields appear only in one overview example, not in the seeds: they are optional, and Aluo has
no balance endpoint, so the last `credits_remaining` seen is what `balance()` can report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
)
from tools.providers.http import ResultDownloads, RetryPolicy, may_have_charged, send
from tools.providers.keys import Scrubber

PROVIDER = "aluo"
TITLE = "Aluo"


@dataclass(frozen=True)
class Envelope:
    """A successful Aluo answer: its `data`, and the credit fields when present."""

    data: dict[str, Any]
    deducted: float | None = None
    remaining: float | None = None


class AluoWire:
    """One httpx client with the key sent per API request (never to the CDN)."""

    name = PROVIDER
    downloads: ResultDownloads | None = None  # how result URLs are fetched (set by from_settings)

    def __init__(self, http: httpx2.AsyncClient, *, api_key: str, policy: RetryPolicy) -> None:
        self._http = http
        # Sent per API request, never as a client default: result downloads go to a CDN
        # that needs no key and must not see it.
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._policy = policy
        self._scrub = Scrubber([api_key], mask="sk-…")
        self.credits_remaining: float | None = None
        self._remaining_at: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self._http.base_url)!r})"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        task_id: str | None = None,
        max_charge: float | None = None,
        **kwargs: Any,
    ) -> Envelope:
        """One API request under the retry policy; POSTs create paid work, so only GETs are idempotent.

        A paid POST whose answer was lost (connection dropped, 5xx) may still have run: the error
        then carries `charged=True` and `max_charge`.
        """
        paid = method != "GET"
        try:
            response = await send(
                self._http,
                method,
                path,
                provider=PROVIDER,
                idempotent=not paid,
                policy=self._policy,
                headers=self._auth,
                **kwargs,
            )
            return self._envelope(response, what=what, task_id=task_id, paid=paid)
        except ProviderError as exc:
            if paid and exc.charged and max_charge is not None:
                raise may_have_charged(exc, title=TITLE, max_charge=max_charge) from None
            raise

    def _envelope(
        self, response: httpx2.Response, *, what: str, task_id: str | None = None, paid: bool = False
    ) -> Envelope:
        """Parse Aluo's envelope: return `data`, or raise the error it describes.

        `paid` marks a POST that creates paid work: a server-side failure there may have been
        processed (and charged) before it failed, so it is reported as `charged` and never re-sent.

        Raises:
            AuthFailed: 401/403 or code -2.
            OutOfCredits: 402, code 402 or "Insufficient credits".
            InvalidInput: other 4xx / code -1 (Aluo's message forwarded).
            JobFailed: a status poll for a task Aluo does not know (404).
            ProviderUnavailable: 5xx, code 500, or an answer that is not Aluo's envelope.
        """
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        deducted, remaining = number(body.get("credits_deducted")), number(body.get("credits_remaining"))
        if remaining is not None:
            self.credits_remaining, self._remaining_at = remaining, time.time()
        code = body.get("code")
        data = body.get("data")
        if 200 <= status < 300 and body.get("success") is not False and code in (0, None) and isinstance(data, dict):
            return Envelope(data, deducted, remaining)
        message = self._scrub(text(body.get("message")))
        detail = self._scrub(text(body.get("error")))
        said = message or detail
        if detail and message and detail.lower() not in message.lower():
            said = f"{message} ({detail})"
        if status in (401, 403) or code == -2:
            raise AuthFailed(
                f"Aluo rejected the API key (HTTP {status}{': ' + said if said else ''}): the key was rejected, "
                "check ALUO_API_KEY (keys start with sk- and are shown once when created). Nothing was charged.",
                provider=PROVIDER,
            )
        if status == 402 or code == 402 or "insufficient credits" in f"{message} {detail}".lower():
            left = f" Aluo last reported {self.credits_remaining:g} credits left." if self.credits_remaining else ""
            raise OutOfCredits(
                f"Aluo has insufficient credits for {what}.{left} Top up at aluo.ai or lower variants / "
                "num_images. Nothing was charged.",
                provider=PROVIDER,
            )
        if status >= 500 or code == 500:
            reason = f"HTTP {status}, a server-side problem" + (f" ({said})" if said else "")
            raise ProviderUnavailable(
                f"Aluo answered {what} with {reason}. "
                + (
                    "It was not re-sent: it reached Aluo and may have been processed."
                    if paid
                    else "Nothing was charged; try again later."
                ),
                provider=PROVIDER,
                charged=paid,
                retryable=True,
            )
        if status == 404 and task_id is not None:
            raise JobFailed(
                f"Aluo no longer knows task {task_id} ({said or 'not found'}), so its result cannot be fetched. "
                "Run the tool again.",
                provider=PROVIDER,
            )
        if 400 <= status < 500 or code == -1:
            raise InvalidInput(
                f"Aluo refused {what}: {said or f'HTTP {status} with no reason given'}. "
                "Change the request and try again; nothing was charged."
            )
        raise ProviderUnavailable(
            f"Aluo answered {what} with HTTP {status} and a body that is not its usual JSON envelope"
            + ("; it may have been processed." if paid else "; try again later."),
            provider=PROVIDER,
            charged=paid,
            retryable=True,
        )

    def _no_result(self, what: str, max_charge: float) -> ProviderError:
        return may_have_charged(
            ProviderError(f"Aluo reported success for {what} but returned no image URL.", provider=PROVIDER),
            title=TITLE,
            max_charge=max_charge,
        )


def failed(noun: str, task_id: str, data: dict[str, Any], scrub: Callable[[str], str]) -> ProviderError:
    """The error for a task that ended FAILED (Aluo charges nothing then)."""
    reason = scrub(text(data.get("error")) or text(data.get("message")) or text(data.get("description")))
    if "insufficient credits" in reason.lower():
        return OutOfCredits(
            f"Aluo stopped the {noun} (task {task_id}): insufficient credits. Top up at aluo.ai or lower "
            "variants / num_images. No credits were charged.",
            provider=PROVIDER,
        )
    return JobFailed(
        f"Aluo could not complete the {noun} (task {task_id}): {reason or 'no reason given'}. The {noun} failed and no "
        "credits were charged; trying again, or rephrasing the prompt or changing the image, may help.",
        provider=PROVIDER,
        retryable=True,
    )


def result_url(data: dict[str, Any]) -> str | None:
    """The one result URL of a synchronous call, read tolerantly (ai-generate-background's answer is
    inferred): `data.url`, `data.imageUrl`, `data.image_url`, `data.images[0].url` or `data.images[0]`."""
    for key in ("url", "imageUrl", "image_url", "backgroundUrl", "resultUrl"):
        if isinstance(data.get(key), str) and data[key]:
            return data[key]
    items = data.get("images")
    if isinstance(items, list) and items:
        first = items[0]
        if isinstance(first, dict) and isinstance(first.get("url"), str) and first["url"]:
            return first["url"]
        if isinstance(first, str) and first:
            return first
    return None


def timings(data: dict[str, Any]) -> dict[str, float]:
    """Aluo's `timings` (seed 000: "performance metrics (inference time, etc.)"), numbers only."""
    raw = data.get("timings")
    if not isinstance(raw, dict):
        return {}
    return {str(k): float(v) for k, v in raw.items() if number(v) is not None}


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
