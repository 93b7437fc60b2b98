"""Safe URL download: http(s) only, public addresses only, capped in bytes and time.

The host is resolved and every address checked before each request and on every
redirect hop (redirects are followed by hand), so a public name that points at a
private, loopback, link-local or multicast address is refused.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from tools.core.errors import InvalidInput

MAX_REDIRECTS = 5


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_http_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL.

    Raises:
        InvalidInput: for any other scheme or a URL without a host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"Malformed URL {url[:200]!r} ({exc}).") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"Only http(s) URLs can be fetched, not {parts.scheme or 'no'} scheme.")
    if not parts.hostname:
        raise InvalidInput(f"The URL {url[:200]!r} has no host.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


class SafeFetcher:
    """Downloads images from the public internet for tools that need the bytes."""

    def __init__(
        self,
        client: httpx2.AsyncClient | Callable[[], httpx2.AsyncClient],
        *,
        allow_private: bool,
        max_bytes: int,
        timeout: float,
        is_public: Callable[[str], bool] = _is_public,
    ) -> None:
        # A client, or a factory called on the first fetch (then this fetcher owns and closes it).
        self._client = client if isinstance(client, httpx2.AsyncClient) else None
        self._make = None if self._client is not None else client
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        self.timeout = timeout
        # Which resolved addresses count as public. Injectable so tests can make one loopback
        # server play "the internet" and check what happens on its redirects.
        self.is_public = is_public

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            assert self._make is not None
            self._client = self._make()
        return self._client

    async def aclose(self) -> None:
        """Close the client this fetcher made (a client passed in belongs to the caller)."""
        if self._make is not None and self._client is not None:
            await self._client.aclose()

    async def check(self, url: str) -> None:
        """Refuse URLs that are not http(s) or that resolve to a non-public address.

        Raises:
            InvalidInput: with the reason (scheme, unresolvable host, private address).
        """
        _, host, port = parse_http_url(url)
        if self.allow_private:
            return
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise InvalidInput(f"Cannot resolve the host {host!r} of the URL.") from None
        for *_, sockaddr in infos:
            if not self.is_public(str(sockaddr[0])):
                raise InvalidInput(
                    f"The URL's host {host!r} resolves to a private, loopback or link-local address "
                    f"({sockaddr[0]}); only public URLs are fetched."
                )

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """Download `url` (following up to 5 checked redirects); return body and content type.

        Raises:
            InvalidInput: bad scheme, private target, too many redirects, HTTP error status,
                body over the byte cap, or too slow.
        """
        try:
            with anyio.fail_after(self.timeout):
                return await self._fetch(url)
        except TimeoutError:
            raise InvalidInput(f"Downloading the URL took longer than {self.timeout:.0f} s.") from None
        except httpx2.HTTPError as exc:
            raise InvalidInput(f"Could not download the URL: {type(exc).__name__}.") from None

    async def _fetch(self, url: str) -> tuple[bytes, str | None]:
        for _ in range(MAX_REDIRECTS + 1):
            await self.check(url)
            async with self.client.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise InvalidInput("The URL redirected without a Location header.")
                    url = urljoin(url, location)
                    continue
                if response.status_code >= 400:
                    raise InvalidInput(f"The URL answered HTTP {response.status_code}.")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise InvalidInput(self._too_big())
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise InvalidInput(self._too_big())
                    chunks.append(chunk)
                return b"".join(chunks), response.headers.get("content-type")
        raise InvalidInput(f"The URL redirected more than {MAX_REDIRECTS} times.")

    def _too_big(self) -> str:
        return f"The download is larger than {self.max_bytes // (1024 * 1024)} MB (PHOTO_MCP_MAX_DOWNLOAD_BYTES)."
