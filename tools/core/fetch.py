"""Safe URL download: http(s) only, public addresses only, capped in bytes and time.

The address that is checked is the address that is connected to. The fetcher's own HTTP
client connects through `GuardedBackend`: for every new connection (the first request and
every redirect hop) it resolves the host once, refuses unless every address is public, and
connects to that very address (TLS still verifies the URL's host name: SNI and the Host
header are the URL's). A DNS answer that changes between a check and the connect (DNS
rebinding) therefore cannot make the server talk to loopback or the private network.

Failures do not tell the caller what the network did: a refused, reset, slow or erroring
server all give the same message, so URLs cannot be used to scan ports.

    InvalidInput (tools.core.errors)
    ├── REFUSED      the host does not resolve to public addresses only (or not at all)
    ├── UNREACHABLE  anything that went wrong on the network or at the server, one message
    └── policy       bad scheme, too many redirects, body over the byte cap
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import anyio
import httpx2

from tools.core.echo import quoted
from tools.core.errors import InvalidInput

if TYPE_CHECKING:
    import httpcore2  # imported by the first guarded transport (see GuardedBackend)

MAX_REDIRECTS = 5
Resolver = Callable[[str, int], Awaitable[list[str]]]


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (raises OSError if none)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in infos))


def parse_http_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL.

    Raises:
        InvalidInput: for any other scheme or a URL without a host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"Malformed URL {quoted(url, 60)}.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"Only http(s) URLs can be fetched, not {quoted(parts.scheme or 'no')} scheme.")
    if not parts.hostname:
        raise InvalidInput(f"The URL {quoted(url, 60)} has no host.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def refused(host: str) -> InvalidInput:
    """The one message for a host that is not fetched, whatever it resolved to (or did not)."""
    return InvalidInput(
        f"The URL's host {quoted(host)} does not resolve to a public address (unresolvable, private, "
        "loopback or link-local hosts are refused); only public http(s) URLs are fetched."
    )


def unreachable(host: str) -> InvalidInput:
    """The one message for every network or server failure: no port-scan oracle."""
    return InvalidInput(
        f"Could not download the image from {quoted(host)}: the server was unreachable, too slow or answered "
        "with an error (which one is not shown). Check that the URL is public and works, or pass the image "
        "as a data: URI."
    )


class _Refused(Exception):
    """Raised inside the connection pool when a resolved address is not allowed."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.host = host


def is_refusal(exc: BaseException) -> bool:
    """Whether `exc` is the guard refusing a host (not public, unresolvable) at connect time."""
    return isinstance(exc, _Refused)


def _connect_errors() -> tuple[type[Exception], ...]:
    """httpcore2's ConnectError once it is loaded (none can be raised before)."""
    httpcore2 = sys.modules.get("httpcore2")
    return (httpcore2.ConnectError,) if httpcore2 is not None else ()


class GuardedBackend:
    """An httpcore network backend that resolves once, checks, and connects to the checked address.

    It implements the whole of `httpcore2.AsyncNetworkBackend` (an interface: three methods) without
    subclassing it. httpcore2 (with h11, ~14 ms of a cold start) is imported when the first guarded
    transport is made, as httpx2 itself imports it with its first transport, not at start-up.
    """

    def __init__(self, fetcher: SafeFetcher) -> None:
        import httpcore2

        self._fetcher = fetcher
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        import httpcore2  # already loaded: __init__ imported it

        addresses = await self._fetcher.addresses(host, port)
        failure: Exception = httpcore2.ConnectError("no address")
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")
            if not self._fetcher.allow_private and (not peer or not self._fetcher.is_public(str(peer[0]))):
                await stream.aclose()  # belt and braces: what we are connected to is checked too
                raise _Refused(host)
            return stream
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise _Refused(path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class SafeFetcher:
    """Downloads images from the public internet for tools that need the bytes.

    Without `client`, the fetcher makes its own on the first fetch (guarded at connect time,
    no proxies from the environment) and closes it in `aclose`. A `transport` passed in (an
    in-process test transport) replaces the guarded network: only the pre-flight checks apply.
    """

    def __init__(
        self,
        client: httpx2.AsyncClient | None = None,
        *,
        allow_private: bool,
        max_bytes: int,
        timeout: float,
        transport: httpx2.AsyncBaseTransport | None = None,
        connect_timeout: float = 10.0,
        is_public: Callable[[str], bool] = _is_public,
        resolve: Resolver = system_resolve,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        if client is not None and not isinstance(client, httpx2.AsyncClient):
            raise TypeError("SafeFetcher takes an httpx2.AsyncClient or None (it then makes a guarded one)")
        self._client = client
        self._owned = client is None
        self._transport = transport
        self.allow_private = allow_private
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        # Which resolved addresses count as public, and how names resolve. Injectable so tests can
        # make one loopback server play "the internet", or a resolver that changes its answer.
        self.is_public = is_public
        self.resolve = resolve
        self.verify = verify  # TLS verification of the URL's host name (a context: tests' own CA)

    @property
    def transport(self) -> httpx2.AsyncBaseTransport | None:
        """The injected test transport, if any (it replaces the guarded network)."""
        return self._transport

    def guarded_transport(self) -> httpx2.AsyncHTTPTransport:
        """An httpx2 transport whose every new connection goes through `GuardedBackend`."""
        if self.verify is True:  # building the default TLS context costs ~70 ms: once per fetcher
            self.verify = httpx2.create_ssl_context()
        # No proxy from the environment: a proxy would resolve names itself.
        transport = httpx2.AsyncHTTPTransport(verify=self.verify, trust_env=False)
        pool = transport._pool  # httpx2 builds the pool; only its network backend is ours
        if not hasattr(pool, "_network_backend"):  # pragma: no cover - guards an httpx2 upgrade
            raise RuntimeError("httpx2's connection pool changed: the SSRF guard cannot be installed")
        pool._network_backend = GuardedBackend(self)
        return transport

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                transport=self._transport or self.guarded_transport(),
                timeout=httpx2.Timeout(self.timeout, connect=self.connect_timeout),
                trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client this fetcher made (a client passed in belongs to the caller)."""
        if self._owned and self._client is not None:
            await self._client.aclose()

    async def addresses(self, host: str, port: int) -> list[str]:
        """Resolve `host` once; refuse unless every address is public (or private URLs are allowed).

        Raises:
            _Refused: unresolvable, or any address not public.
        """
        try:
            addresses = await self.resolve(host, port)
        except (OSError, UnicodeError):
            raise _Refused(host) from None
        if not addresses:
            raise _Refused(host)
        if not self.allow_private:
            for address in addresses:
                try:
                    public = self.is_public(address)
                except ValueError:
                    public = False
                if not public:
                    raise _Refused(host)
        return addresses

    async def check(self, url: str) -> None:
        """Refuse URLs that are not http(s) or that resolve to a non-public address.

        A pre-flight check for early, clear answers (and for URLs handed to providers); the
        binding check is the one at connect time.

        Raises:
            InvalidInput: with the reason (scheme, or a host that is not public).
        """
        _, host, port = parse_http_url(url)
        if self.allow_private:
            return
        try:
            await self.addresses(host, port)
        except _Refused:
            raise refused(host) from None

    async def fetch(self, url: str) -> tuple[bytes, str | None]:
        """Download `url` (following up to 5 checked redirects); return body and content type.

        Raises:
            InvalidInput: bad scheme, non-public target, too many redirects, body over the byte
                cap, or one uniform message for any network or server failure.
        """
        host = urlsplit(url).hostname or "?"
        try:
            with anyio.fail_after(self.timeout):
                return await self._fetch(url)
        except _Refused as exc:
            raise refused(exc.host) from None
        except _Failed as exc:
            raise unreachable(exc.host) from None
        except (TimeoutError, httpx2.HTTPError, OSError, *_connect_errors()):
            raise unreachable(host) from None

    async def _fetch(self, url: str) -> tuple[bytes, str | None]:
        for _ in range(MAX_REDIRECTS + 1):
            await self.check(url)
            host = urlsplit(url).hostname or "?"
            try:
                async with self.client.stream("GET", url, follow_redirects=False) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise _Failed(host)
                        url = urljoin(url, location)
                        continue
                    if response.status_code >= 400:
                        raise _Failed(host)
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
            except (httpx2.HTTPError, OSError):
                raise _Failed(host) from None
        raise InvalidInput(f"The URL redirected more than {MAX_REDIRECTS} times.")

    def _too_big(self) -> str:
        return f"The download is larger than {self.max_bytes // (1024 * 1024)} MB (PHOTO_MCP_MAX_DOWNLOAD_BYTES)."


class _Failed(Exception):
    """Any network or server failure on one hop (reported with the one uniform message)."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self.host = host
