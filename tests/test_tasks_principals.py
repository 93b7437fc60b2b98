"""Tasks belong to the person who started them: with OAuth, another principal's `tasks/get` and
`tasks/cancel` answer "not found" (as for an unknown id), and the task keeps running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from tests.auth.conftest import photo_mcp, token_for
from tests.auth.issuer import Issuer
from tests.fakes.aluo import FakeAluo
from tests.fakes.loopback import serve
from tests.test_tasks import GENERATE, NEVER, TaskHandle, TasksClient, cancel, get


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer().serve() as running:  # a real authorization server on loopback
        yield running


async def test_another_principal_cannot_see_or_cancel_a_task(tmp_path: Path, issuer: Issuer) -> None:
    fake = FakeAluo(polls_until_done=NEVER)
    aluo = {"allow_private_urls": True, "retry_base_delay": 0.01, "aluo_poll_interval": 0.1}
    async with serve(fake.app) as fake_base:
        aluo |= {"aluo_api_key": fake.api_key, "aluo_base_url": FakeAluo.api_base(fake_base)}
        async with photo_mcp(tmp_path, issuer, **aluo) as served:
            alice, bob = (token_for(issuer, served, sub) for sub in ("alice", "bob"))
            with anyio.fail_after(60):
                async with (
                    httpx2.AsyncClient(headers={"Authorization": f"Bearer {alice}"}, timeout=30) as as_alice,
                    httpx2.AsyncClient(headers={"Authorization": f"Bearer {bob}"}, timeout=30) as as_bob,
                    Client(
                        streamable_http_client(served.mcp, http_client=as_alice),
                        mode="2026-07-28",
                        extensions=[TasksClient()],
                    ) as a,
                    Client(
                        streamable_http_client(served.mcp, http_client=as_bob),
                        mode="2026-07-28",
                        extensions=[TasksClient()],
                    ) as b,
                ):
                    handle = await a.session.call_tool("generate_product_photo", GENERATE, allow_claimed=True)
                    assert isinstance(handle, TaskHandle)
                    for attempt in (get, cancel):
                        with pytest.raises(MCPError) as refused:
                            await attempt(b.session, handle.task_id)
                        assert refused.value.error.code == INVALID_PARAMS
                        assert "not found" in refused.value.error.message
                    assert (await get(a.session, handle.task_id)).status == "working"
                    await cancel(a.session, handle.task_id)
                    state = await get(a.session, handle.task_id)
                    while state.status == "working":
                        await anyio.sleep(0.05)
                        state = await get(a.session, handle.task_id)
    assert state.status == "cancelled" and fake.charges == []
