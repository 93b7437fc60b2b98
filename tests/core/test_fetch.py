"""Safe URL fetching: private targets, redirects, byte caps, and the checked address being the one connected to."""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.tls import TLSListener
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tools.core.errors import InvalidInput
from tools.core.fetch import SafeFetcher

PNG = image_bytes(10, 10, "png")


async def _image(request):
    return Response(PNG, media_type="image/png")


async def _big(request):
    return Response(b"x" * 50_000, media_type="image/png")


async def _loop(request):
    return RedirectResponse("/loop", status_code=302)


async def _hop(request):
    return RedirectResponse("/image.png", status_code=302)


APP = Starlette(routes=[Route("/image.png", _image), Route("/big", _big), Route("/loop", _loop), Route("/hop", _hop)])


def _fetcher(client: httpx2.AsyncClient, *, allow_private: bool, max_bytes: int = 1_000_000) -> SafeFetcher:
    return SafeFetcher(client, allow_private=allow_private, max_bytes=max_bytes, timeout=5)


async def test_loopback_is_refused_unless_private_urls_are_allowed() -> None:
    async with serve(APP) as base, httpx2.AsyncClient() as client:
        with pytest.raises(InvalidInput, match="private, loopback"):
            await _fetcher(client, allow_private=False).fetch(base + "/image.png")
        data, ctype = await _fetcher(client, allow_private=True).fetch(base + "/hop")
        assert data == PNG and ctype == "image/png"


async def test_endless_redirects_and_huge_bodies_stop() -> None:
    async with serve(APP) as base, httpx2.AsyncClient() as client:
        fetcher = _fetcher(client, allow_private=True, max_bytes=10_000)
        with pytest.raises(InvalidInput, match="redirected more than 5 times"):
            await fetcher.fetch(base + "/loop")
        with pytest.raises(InvalidInput, match="larger than"):
            await fetcher.fetch(base + "/big")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://x", "http://10.0.0.1/a.png", "http://[fe80::1]/a", "http://224.0.0.1/"]
)
async def test_non_http_and_private_addresses_are_refused(url: str) -> None:
    async with httpx2.AsyncClient() as client:
        with pytest.raises(InvalidInput):
            await _fetcher(client, allow_private=False).check(url)


# ----------------------------------------------- the address checked is the one connected to
def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def _raw_server(host: str, port: int, body: bytes, seen: list[str]) -> tuple[Any, Any]:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            seen.append(data.split(b" ", 2)[1].decode())
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            await stream.send(head.encode() + body)

    return listener, handle


@pytest.mark.parametrize("switch_after", [0, 1, 2, 3])
async def test_a_resolver_that_changes_its_answer_never_reaches_the_internal_address(switch_after: int) -> None:
    """Without a network namespace: 127.0.0.1 plays "public" (the policy seam), ::1 is internal.

    The name resolves to 127.0.0.1 for `switch_after` lookups, then to ::1 (DNS rebinding). The
    internal server, on the same port, must never see a request.
    """
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    public_seen: list[str] = []
    internal_seen: list[str] = []
    public, handle_public = await _raw_server("127.0.0.1", 0, PNG, public_seen)
    port = public.extra(SocketAttribute.local_port)
    internal, handle_internal = await _raw_server("::1", port, b"INTERNAL", internal_seen)
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        if host != "rebind.test":
            raise OSError("unknown")
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) <= switch_after else ["::1"]

    fetcher = SafeFetcher(
        allow_private=False, max_bytes=1 << 20, timeout=5, is_public=lambda a: a == "127.0.0.1", resolve=resolve
    )
    async with public, internal, anyio.create_task_group() as tg:
        tg.start_soon(public.serve, handle_public)
        tg.start_soon(internal.serve, handle_internal)
        try:
            with anyio.fail_after(20):
                await fetcher.check(f"http://rebind.test:{port}/a.png")  # as the resolver does first
                data, _ = await fetcher.fetch(f"http://rebind.test:{port}/a.png")
            assert data == PNG
        except InvalidInput as exc:
            assert "does not resolve to a public address" in str(exc)
        finally:
            await fetcher.aclose()
            tg.cancel_scope.cancel()
    assert internal_seen == []
    assert (public_seen == ["/a.png"]) == (switch_after >= 3)  # 3 lookups: check, check per hop, connect


# --------------------------------------------- connecting to an address keeps TLS on the name
def _certificate(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for `name` and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


async def test_https_to_the_checked_address_still_verifies_the_urls_host_name(tmp_path: Path) -> None:
    """The guard connects to the resolved IP; SNI, certificate check and Host stay the URL's name."""
    cert, key = _certificate("photos.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda _sock, name, _ctx: sni.append(name)
    client_ctx = ssl.create_default_context(cadata=cert.decode())
    hosts: list[str] = []

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = tcp.extra(SocketAttribute.local_port)

    async def handle(stream: Any) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            hosts.extend(line.split(b":", 1)[1].strip().decode() for line in data.split(b"\r\n")
                         if line.lower().startswith(b"host:"))  # fmt: skip
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(PNG)}\r\nconnection: close\r\n\r\n"
            await stream.send(head.encode() + PNG)

    async def resolve(host: str, port: int) -> list[str]:
        if host in ("photos.test", "other.test"):
            return ["127.0.0.1"]
        raise OSError("unknown")

    def fetcher() -> SafeFetcher:
        return SafeFetcher(
            allow_private=False, max_bytes=1 << 20, timeout=10, is_public=lambda a: a == "127.0.0.1",
            resolve=resolve, verify=client_ctx,
        )  # fmt: skip

    async with TLSListener(tcp, server_ctx, standard_compatible=False) as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        with anyio.fail_after(20):
            good = fetcher()
            data, _ = await good.fetch(f"https://photos.test:{port}/a.png")
            await good.aclose()
            wrong = fetcher()  # same address, a name the certificate does not cover: refused
            with pytest.raises(InvalidInput, match="Could not download"):
                await wrong.fetch(f"https://other.test:{port}/a.png")
            await wrong.aclose()
        tg.cancel_scope.cancel()
    assert data == PNG
    assert sni[:2] == ["photos.test", "other.test"] and hosts == [f"photos.test:{port}"]
