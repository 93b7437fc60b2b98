"""On a multi-user server (OAuth) the consent question shows each person their own spend today,
never the others'."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.auth.conftest import photo_mcp, token_for
from tests.auth.issuer import Issuer
from tests.fakes.aluo import FakeAluo
from tests.fakes.loopback import serve
from tests.test_consent import GENERATE, Person


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer().serve() as running:  # a real authorization server on loopback
        yield running


async def test_each_person_is_shown_their_own_spend(tmp_path: Path, issuer: Issuer) -> None:
    fake = FakeAluo()
    async with serve(fake.app) as fake_base:
        aluo = {
            "allow_private_urls": True,
            "aluo_poll_interval": 0.02,
            "aluo_api_key": fake.api_key,
            "aluo_base_url": FakeAluo.api_base(fake_base),
            "max_credits_per_day_per_user": 500,
        }
        async with photo_mcp(tmp_path, issuer, **aluo) as served:
            with anyio.fail_after(60):
                for sub, before in (("alice", 0), ("alice", 80), ("bob", 0)):
                    person = Person("accept")
                    headers = {"Authorization": f"Bearer {token_for(issuer, served, sub)}"}
                    async with (
                        httpx2.AsyncClient(headers=headers, timeout=30) as http,
                        Client(
                            streamable_http_client(served.mcp, http_client=http),
                            mode="2026-07-28",
                            elicitation_callback=person,
                        ) as client,
                    ):
                        result = await client.call_tool("generate_product_photo", GENERATE)
                    assert not result.is_error, result.content
                    (question,) = person.messages
                    # Bob is not shown the 160 credits Alice spent: only his own.
                    assert f"Your spend today: {before} credits of a daily cap of 500" in question, question
    assert len(fake.charges) == 3
