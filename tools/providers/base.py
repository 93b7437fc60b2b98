"""The one HTTP policy every provider client follows.

Retries, in the spirit of anthropic-sdk-python's table:

| failure                                   | GET / idempotent        | POST that creates paid work |
|-------------------------------------------|-------------------------|-----------------------------|
| connect error (request never sent)        | retry                   | retry                       |
| 429                                       | retry after Retry-After | retry after Retry-After     |
| 500/502/503/504                           | retry with backoff      | no: return it, caller maps  |
| read timeout / connection lost mid-call   | retry                   | no: it may have run         |

Backoff is exponential with jitter; `Retry-After` is honoured up to a cap. YouCam's
run-task is "idempotent" here because a repeated `request_id` is ignored by the server.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import httpx2

from tools.core.errors import ProviderError, ProviderUnavailable, RateLimited

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 30.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * 2**attempt)
        return delay * (0.75 + random.random() / 2)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), if any."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def default_timeout(seconds: float = 60.0) -> httpx2.Timeout:
    """Provider request timeout: `seconds` (PHOTO_MCP_PROVIDER_TIMEOUT) to read/write, connect within 10 s."""
    return httpx2.Timeout(seconds, connect=min(10.0, seconds))


async def send(
    client: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    idempotent: bool,
    policy: RetryPolicy,
    **kwargs: Any,
) -> httpx2.Response:
    """Send one logical request under the retry policy; return the final response.

    A 429 that persists raises `RateLimited`; transport failures raise
    `ProviderUnavailable` (with `charged=True` when a non-idempotent call may have run).
    Other statuses are returned for the client to map.

    Raises:
        RateLimited: still 429 after the retries.
        ProviderUnavailable: unreachable, or failed mid-call.
    """
    for attempt in range(policy.max_attempts):
        last = attempt == policy.max_attempts - 1
        try:
            response = await client.request(method, url, **kwargs)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            # Nothing reached the server: safe to retry any call.
            if last:
                raise ProviderUnavailable(
                    f"{provider} is unreachable ({type(exc).__name__}). Nothing was charged; try again later.",
                    provider=provider,
                    retryable=True,
                ) from None
            await anyio.sleep(policy.backoff(attempt))
            continue
        except httpx2.TransportError as exc:
            if idempotent and not last:
                await anyio.sleep(policy.backoff(attempt))
                continue
            may_have_run = not idempotent
            raise ProviderUnavailable(
                f"The connection to {provider} failed mid-request ({type(exc).__name__})."
                + (" The request may have been processed, so it was not re-sent." if may_have_run else ""),
                provider=provider,
                charged=may_have_run,
                retryable=True,
            ) from None
        if response.status_code == 429:
            wait = retry_after(response.headers)
            if last or (wait is not None and wait > policy.retry_after_cap):
                raise RateLimited(
                    f"{provider} is rate limiting requests"
                    + (f"; try again in {wait:.0f} s." if wait is not None else "; try again shortly.")
                    + " The request was refused, so nothing was charged for it.",
                    provider=provider,
                    retry_after=wait,
                )
            await anyio.sleep(wait if wait is not None else policy.backoff(attempt))
            continue
        if response.status_code in RETRYABLE_STATUS and idempotent and not last:
            await anyio.sleep(policy.backoff(attempt))
            continue
        return response
    raise AssertionError("unreachable")  # pragma: no cover


def unavailable(provider: str, response: httpx2.Response, *, charged: bool = False) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"{provider} answered HTTP {response.status_code} (a server-side problem). "
        + (
            "It may have charged; check credits before retrying."
            if charged
            else "Nothing was charged; try again later."
        ),
        provider=provider,
        charged=charged,
        retryable=True,
    )


async def download(
    client: httpx2.AsyncClient, url: str, *, provider: str, policy: RetryPolicy, max_bytes: int = 64 * 2**20
) -> bytes:
    """Fetch a result file from a provider's CDN (retried: GETs are idempotent).

    Raises:
        ProviderError: the URL keeps failing or does not return an image-sized body.
        ProviderUnavailable / RateLimited: per `send`.
    """
    response = await send(client, "GET", url, provider=provider, idempotent=True, policy=policy)
    if response.status_code >= 400:
        raise ProviderError(
            f"Downloading the result from {provider} failed (HTTP {response.status_code}); "
            "the job succeeded at the provider, so its credits may have been charged.",
            provider=provider,
            charged=True,
            retryable=True,
        )
    data = response.content
    if len(data) > max_bytes:
        raise ProviderError(f"The result from {provider} is larger than {max_bytes} bytes.", provider=provider)
    return data


class JobHooks(Protocol):
    """What a provider call may report back while it runs (a `JobContext` satisfies it)."""

    async def progress(self, message: str, fraction: float | None = None) -> None: ...

    async def remember(self, **provider_ref: Any) -> None: ...

    async def charged(self, credits: float) -> None: ...


@dataclass(frozen=True)
class ProviderImage:
    """One downloaded result image.

    `meta` is shown to the model per image (e.g. `res_age`); `ref` is kept for chaining
    (e.g. YouCam's `dst_id`, so a later YouCam task needs no second upload).
    """

    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    ref: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Balance:
    """A provider's credit balance as far as its API tells (`amount` None when unknown)."""

    amount: float | None
    detail: str
    entries: list[dict[str, Any]] = field(default_factory=list)
