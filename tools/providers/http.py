"""The one HTTP policy every provider client follows, the shared download-all, the key scrubber.

Retries, in the spirit of anthropic-sdk-python's table:

| failure                                   | GET / idempotent        | POST that creates paid work |
|-------------------------------------------|-------------------------|-----------------------------|
| connect error (request never sent)        | retry                   | retry                       |
| 429                                       | retry after Retry-After | retry after Retry-After     |
| 500/502/503/504                           | retry with backoff      | no: return it, caller maps  |
| read timeout / connection lost mid-call   | retry                   | no: it may have run         |

Backoff is exponential with jitter; `Retry-After` is honoured up to a cap. YouCam's
run-task is "idempotent" here because a repeated `request_id` is ignored by the server.

A paid call that may have run but whose answer was lost ends in a `ProviderError` with
`charged=True` and `max_charge` (the most it can have cost): `may_have_charged` writes the
message (what may have been charged, at most how much, run check_credits).
"""

from __future__ import annotations

import email.utils
import functools
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from tools.core.budget import amount
from tools.core.concurrently import gather
from tools.core.echo import quoted
from tools.core.errors import ProviderError, ProviderUnavailable, RateLimited
from tools.core.fetch import MAX_REDIRECTS, SafeFetcher, is_refusal

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
MAX_RESULT_BYTES = 64 * 2**20


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
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
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


def may_have_charged(exc: ProviderError, *, title: str, max_charge: float, unit: str = "credit") -> ProviderError:
    """Mark `exc` (a paid submission that may have run) as possibly charged, at most `max_charge`.

    The message then says what may have been charged, how much at most, and how to check.
    """
    exc.charged = True
    exc.max_charge = max_charge
    note = (
        f" {title} may have charged for this request (at most {amount(max_charge, unit)}): run check_credits to see "
        "the balance before trying again."
    )
    if "check_credits" not in exc.message:
        # What the low-level error said about money no longer holds: drop it.
        text = _NOTHING_CHARGED.sub("", exc.message).rstrip()
        exc.message = text + note
        exc.args = (exc.message,)
    return exc


_NOTHING_CHARGED = re.compile(r"\s*[^.;]*\bnothing was charged\b[^.]*\.", re.IGNORECASE)


def _unsafe(provider: str, why: str) -> ProviderError:
    return ProviderError(
        f"The result from {provider} could not be fetched safely: {why}, so it was not downloaded. The job was "
        f"done at {provider}, so its credits may have been charged.",
        provider=provider,
        charged=True,
    )


@dataclass(frozen=True)
class ResultDownloads:
    """How provider result files are fetched: the way user URLs are (the SSRF guard), and stricter.

    Every hop (the URL a provider gave and each redirect, followed here one at a time) must be
    https (plain http only when `allow_http`), on one of the provider's documented result `hosts`
    (a name, or any subdomain of it; empty: any host) or the provider's own API host, and its
    connection goes through the `fetcher`'s guard: the address that is checked is the address
    that is connected to, and it must be public unless PHOTO_MCP_ALLOW_PRIVATE_URLS is on. A hop
    on the provider's own API origin (scheme, host and port of its configured base URL, which the
    server talks to anyway) is fetched as the API calls are; its redirects are checked again.

    `allow_http` None: plain http only when the provider's API itself is configured as http (a
    local fake or proxy; the real APIs are https), else as PHOTO_MCP_PROVIDER_DOWNLOAD_HTTP says.
    Without a `fetcher` (a client built by hand in a test) downloads go through the provider's
    own HTTP client, with the scheme and host rules only.
    """

    fetcher: SafeFetcher | None = None
    allow_http: bool | None = None
    hosts: tuple[str, ...] = ()
    base: str = ""  # the provider's API base URL: relative URLs are joined to it; its host is allowed
    timeout: float = 60.0
    max_bytes: int = MAX_RESULT_BYTES

    @classmethod
    def from_settings(cls, settings: Any, *, transport: httpx2.AsyncBaseTransport | None = None) -> ResultDownloads:
        """The guarded downloads of a server with `settings` (`transport`: an in-process test transport,
        which replaces the network, so only the scheme and host rules apply)."""
        fetcher = SafeFetcher(
            transport=transport,
            allow_private=settings.allow_private_urls,
            max_bytes=MAX_RESULT_BYTES,
            timeout=settings.provider_timeout,
        )
        return cls(fetcher, getattr(settings, "provider_download_http", None), timeout=settings.provider_timeout)

    def bound(self, *, hosts: Iterable[str], base: str) -> ResultDownloads:
        """These downloads for one provider: its documented result hosts and its API base URL."""
        return replace(self, hosts=tuple(h.lower().strip(".") for h in hosts), base=base)

    def _check(self, url: str, provider: str) -> None:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise _unsafe(provider, "its URL is malformed") from None
        allow_http = self.allow_http
        if allow_http is None:
            allow_http = urlsplit(self.base).scheme == "http"
        if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
            raise _unsafe(provider, f"its URL is not https ({quoted(parts.scheme or 'no', 20)} scheme)")
        if not host:
            raise _unsafe(provider, "its URL has no host")
        own = (urlsplit(self.base).hostname or "").lower()
        if self.hosts and host != own and not any(host == h or host.endswith("." + h) for h in self.hosts):
            raise _unsafe(provider, f"its host {quoted(host, 60)} is not one of {provider}'s result hosts")

    async def fetch_all(
        self, http: httpx2.AsyncClient, urls: list[str], *, provider: str, policy: RetryPolicy
    ) -> list[bytes]:
        """Every URL's bytes, in order, fetched at once; the first error wins (others cancelled).

        Raises:
            ProviderError: a URL is refused (scheme, host, non-public address, redirects) or keeps failing.
        """
        base = self.base or str(http.base_url)
        # The fetcher's one guarded client, kept alive between calls: each of its connections was
        # checked when it was made (the checked address is the connected one), so reusing it is as
        # safe as a new one and saves a lookup, a connect and a close per result.
        client = http if self.fetcher is None else self.fetcher.client
        fetches = [
            functools.partial(
                self._fetch, client, http, urljoin(base, url) if base else url, provider=provider, policy=policy
            )
            for url in urls
        ]
        return await gather(*fetches)

    def _api_origin(self, url: str) -> bool:
        if not self.base:
            return False
        try:
            a, b = urlsplit(url), urlsplit(self.base)
            return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
        except ValueError:
            return False

    async def _fetch(
        self, guarded: httpx2.AsyncClient, api: httpx2.AsyncClient, url: str, *, provider: str, policy: RetryPolicy
    ) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            self._check(url, provider)
            client = api if self._api_origin(url) else guarded
            try:
                response = await send(
                    client, "GET", url, provider=provider, idempotent=True, policy=policy, follow_redirects=False
                )
            except Exception as exc:
                if is_refusal(exc):
                    host = quoted(urlsplit(url).hostname or "?", 60)
                    raise _unsafe(provider, f"its host {host} does not resolve to a public address") from None
                raise
            if response.is_redirect and response.headers.get("location"):
                url = urljoin(url, response.headers["location"])
                continue
            return _result_body(response, provider=provider, max_bytes=self.max_bytes)
        raise _unsafe(provider, f"it redirected more than {MAX_REDIRECTS} times")


def _result_body(response: httpx2.Response, *, provider: str, max_bytes: int) -> bytes:
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


async def download(
    client: httpx2.AsyncClient, url: str, *, provider: str, policy: RetryPolicy, max_bytes: int = MAX_RESULT_BYTES
) -> bytes:
    """Fetch a result file from a provider's CDN (retried: GETs are idempotent).

    Raises:
        ProviderError: the URL keeps failing or does not return an image-sized body.
        ProviderUnavailable / RateLimited: per `send`.
    """
    response = await send(client, "GET", url, provider=provider, idempotent=True, policy=policy)
    return _result_body(response, provider=provider, max_bytes=max_bytes)


async def download_all(
    client: httpx2.AsyncClient,
    urls: list[str],
    *,
    provider: str,
    policy: RetryPolicy,
    max_charge: float | None = None,
    downloads: ResultDownloads | None = None,
) -> list[bytes]:
    """Fetch every result file at once (vendor URLs expire), in order; the first error wins.

    Through `downloads` (the guard and the provider's host rules; see `ResultDownloads`; None:
    through `client` with the scheme and host rules of its base URL). Relative URLs are joined
    to the client's base URL. No API key is sent: callers pass their key per API request, never
    as a client default. The work was done (and paid for) by then: a failure carries
    `charged=True` and `max_charge`, what the call cost.

    Raises:
        ProviderError: the first download that failed (the others are cancelled).
    """
    downloads = downloads or ResultDownloads(base=str(client.base_url))
    try:
        return await downloads.fetch_all(client, urls, provider=provider, policy=policy)
    except ProviderError as exc:
        exc.charged, exc.max_charge = True, max_charge
        raise
