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
import html
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import anyio
import httpx2

from tools.core.errors import NotConfigured, PhotoError, ProviderError, ProviderUnavailable, RateLimited

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


def may_have_charged(exc: ProviderError, *, title: str, max_charge: float, unit: str = "credits") -> ProviderError:
    """Mark `exc` (a paid submission that may have run) as possibly charged, at most `max_charge`.

    The message then says what may have been charged, how much at most, and how to check.
    """
    exc.charged = True
    exc.max_charge = max_charge
    note = (
        f" {title} may have charged for this request (at most {max_charge:g} {unit}): run check_credits to see "
        "the balance before trying again."
    )
    if "check_credits" not in exc.message:
        # What the low-level error said about money no longer holds: drop it.
        text = _NOTHING_CHARGED.sub("", exc.message).rstrip()
        exc.message = text + note
        exc.args = (exc.message,)
    return exc


_NOTHING_CHARGED = re.compile(r"\s*[^.;]*\bnothing was charged\b[^.]*\.", re.IGNORECASE)


async def download(
    client: httpx2.AsyncClient, url: str, *, provider: str, policy: RetryPolicy, max_bytes: int = MAX_RESULT_BYTES
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


async def download_all(
    client: httpx2.AsyncClient,
    urls: list[str],
    *,
    provider: str,
    policy: RetryPolicy,
    max_charge: float | None = None,
) -> list[bytes]:
    """Fetch every result file at once (vendor URLs expire), in order; the first error wins.

    Relative URLs are joined to the client's base URL. No API key is sent: callers pass their
    key per API request, never as a client default. The work was done (and paid for) by then:
    a failure carries `charged=True` and `max_charge`, what the call cost.

    Raises:
        ProviderError: the first download that failed (the others are cancelled).
    """
    base = str(client.base_url)
    out: list[bytes] = [b""] * len(urls)

    async def one(i: int, url: str) -> None:
        out[i] = await download(client, urljoin(base, url) if base else url, provider=provider, policy=policy)

    try:
        async with anyio.create_task_group() as tg:
            for i, url in enumerate(urls):
                tg.start_soon(one, i, url)
    except BaseExceptionGroup as group:
        first = _first_error(group)
        if isinstance(first, ProviderError):
            first.charged, first.max_charge = True, max_charge
        raise first from None
    return out


def _first_error(group: BaseExceptionGroup) -> BaseException:
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for exc in g.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, PhotoError)), leaves[0])


# -- the key scrubber ---------------------------------------------------------------------------------

# Characters a key may be split with in provider text: whitespace, zero-width characters, and their
# percent-, entity- and escape-encoded forms.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_GAP = (
    r"(?:[\s" + _INVISIBLE + r"]|\+|%(?:2[0B]|0[9AD]|E2%80%8[BCD]|E2%81%A0|EF%BB%BF|C2%AD)"
    r"|&(?:nbsp|zwsp|zwj|zwnj|shy|#(?:x0*(?:20|9|a|d|200b|200c|200d|2060|feff|ad)|0*(?:32|9|10|13|8203|8204|8205|8288|65279|173)));?"
    r"|\\u(?:0020|200[bcd]|2060|feff|00ad)|\\[nrt])*"
)
_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos", "/": "sol", "=": "equals", "+": "plus"}
MIN_SECRET = 8  # shorter values are not scrubbed (they would match ordinary text)


def _char(c: str) -> str:
    """A regex for one character of a secret in any common encoding, any case."""
    forms = {re.escape(c.lower()), re.escape(c.upper())}
    for ch in {c.lower(), c.upper()}:
        code = ord(ch)
        forms |= {f"%{code:02x}", f"&#0*{code};?", f"&#x0*{code:x};?", f"\\\\u{code:04x}", f"\\\\x{code:02x}"}
        if ch in _NAMED:
            forms.add(f"&{_NAMED[ch]};")
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


class Scrubber:
    """Removes configured secrets from text a provider sent back (errors, echoed bodies).

    Matches case-insensitively and across the variants a key takes on the way: split by
    whitespace or zero-width characters, HTML entities (`&#115;`, `&#x73;`, `&amp;`),
    percent-encoding (`%73`) and `\\uXXXX` escapes, mixed freely.
    """

    def __init__(self, secrets: Iterable[str | None], mask: str = "…") -> None:
        self._mask = mask
        values = sorted({s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET}, key=len, reverse=True)
        self._plain = values
        self._pattern = (
            re.compile("|".join(_GAP.join(_char(c) for c in value) for value in values), re.IGNORECASE)
            if values
            else None
        )

    def __call__(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        for value in self._plain:  # the common case, cheaply
            text = text.replace(value, self._mask)
        decoded = html.unescape(text)
        out = self._pattern.sub(self._mask, text)
        if decoded != text and self._pattern.search(decoded):
            # An encoding the pattern did not cover inline (e.g. entities split mid-way): show decoded text.
            out = self._pattern.sub(self._mask, decoded)
        return out


def strip_key(value: str | None) -> str:
    """A key as configured, without the whitespace and newlines that copying adds."""
    return (value or "").strip().strip(_INVISIBLE).strip()


def required_key(secret: Any, missing: str) -> str:
    """The stripped value of a `SecretStr` setting.

    Raises:
        NotConfigured: it is unset or blank (`missing` is the setup message).
    """
    key = strip_key(secret.get_secret_value() if secret is not None else "")
    if not key:
        raise NotConfigured(missing)
    return key
