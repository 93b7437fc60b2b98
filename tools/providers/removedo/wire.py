"""The Removedo wire: error bodies, status bodies and HTTP errors mapped onto the error tree.

Error bodies are undocumented (`{"error": "..."}` assumed, others tolerated); the job-status body
is inferred (providers.md §3.2): `status` and `outputUrl`, also `resultUrl` and friends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import httpx2

from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    OutOfCredits,
    PhotoError,
    ProviderError,
    ProviderUnavailable,
)
from tools.providers.http import may_have_charged, unavailable
from tools.providers.removedo.spec import SUBMIT_PATH

NAME = "removedo"
TITLE = "Removedo"
DONE = frozenset({"completed", "complete", "succeeded", "success", "done"})
FAILED = frozenset({"failed", "error"})
URL_KEYS = ("outputUrl", "resultUrl", "output_url", "result_url", "url")

Phase = Literal["submit", "poll"]


def error_text(response: httpx2.Response) -> str:
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


def output_url(body: dict[str, Any]) -> str | None:
    return next((body[k] for k in URL_KEYS if isinstance(body.get(k), str) and body[k]), None)


def error_for(
    response: httpx2.Response, phase: Phase, scrub: Callable[[str], str], job_id: str | None = None
) -> PhotoError:
    """Map an HTTP error to the error tree. After submit the credit is spent: `charged=True`."""
    status = response.status_code
    detail = scrub(error_text(response))
    said = f" ({detail})" if detail else ""
    charged = phase == "poll"
    money = (
        f" Removedo job {job_id} was already submitted and charged 1 credit." if charged else " Nothing was charged."
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
                max_charge=1,
            )
        return ProviderUnavailable(
            f"Removedo answered HTTP 404 for {SUBMIT_PATH}: check REMOVEDO_BASE_URL "
            "(default https://www.removedo.com). Nothing was charged.",
            provider=NAME,
        )
    if status >= 500:
        if phase == "submit":
            # The submit may still have created (and charged) a job: never fall through after it.
            return may_have_charged(unavailable(NAME, response, charged=True), title=TITLE, max_charge=1)
        return ProviderUnavailable(
            f"Removedo answered HTTP {status} (a server-side problem) while reporting job {job_id}, even "
            f"after retries.{money} Try again later.",
            provider=NAME,
            charged=True,
            retryable=True,
            max_charge=1,
        )
    return ProviderError(f"Removedo answered HTTP {status}{said} unexpectedly." + money, provider=NAME, charged=charged)
