"""Safe URL fetching: private targets, redirects, byte caps."""

from __future__ import annotations

import httpx2
import pytest
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
