"""Spend consent with real clients: the SDK's `Client` with and without elicitation, on both
protocol eras, over stdio (a `photo-mcp` subprocess) and Streamable HTTP, against the fake Aluo
served on loopback. What counts is the fake's own ledger: accept -> one charge, decline ->
nothing sent at all, a client that cannot ask -> today's behaviour (caps only)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult, ErrorData, InputRequiredResult

from server.app import build_server
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import http_process, serve_http, stdio_params
from tests.test_aluo_tools import aluo_settings

GENERATE = {"prompt": "A red mug on a table", "variants": 2}


class Person:
    """An elicitation callback that answers like a person would, and remembers what it was shown."""

    def __init__(self, action: str = "accept", content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = {"confirm": True} if content is None and action == "accept" else content
        self.asked: list[ElicitRequestParams] = []

    async def __call__(self, ctx: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        self.asked.append(params)
        if getattr(params, "mode", "form") == "url":
            return ElicitResult(action=self.action)
        return ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)

    @property
    def messages(self) -> list[str]:
        return [p.message for p in self.asked]


def sent_work(fake: FakeAluo) -> list[Any]:
    """Every request that reached the fake Aluo."""
    return list(fake.requests)


@asynccontextmanager
async def aluo(**knobs: Any) -> AsyncIterator[tuple[FakeAluo, str]]:
    fake = FakeAluo(**knobs)
    async with serve(fake.app) as base:
        yield fake, base


@asynccontextmanager
async def connect(
    transport: str, mode: str, tmp_path: Path, fake: FakeAluo, base: str, person: Person | None, **env: str
) -> AsyncIterator[Client]:
    """A real client over `transport`; `person=None` declares no elicitation capability."""
    kwargs: dict[str, Any] = {"mode": mode}
    if person is not None:
        kwargs["elicitation_callback"] = person
    if transport == "stdio":
        params = stdio_params(
            tmp_path,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(base),
            PHOTO_MCP_ALUO_POLL_INTERVAL="0.02",
            **env,
        )
        async with Client(params, **kwargs) as client:
            yield client
    else:
        overrides = {k.removeprefix("PHOTO_MCP_").lower(): v for k, v in env.items()}
        settings = aluo_settings(tmp_path, fake, base, **overrides)
        async with serve_http(build_server(settings), settings) as url, Client(url + "/mcp", **kwargs) as client:
            yield client


async def call(client: Client, tool: str, args: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(60):
        return await client.call_tool(tool, args)


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_accept_charges_once_decline_sends_nothing_no_capability_runs_on_caps(
    tmp_path: Path, workdir: Path, transport: str, mode: str
) -> None:
    async with aluo() as (fake, base):
        # Decline: the person is asked (what, where, how much, today's spend) and nothing is sent.
        no = Person("decline")
        async with connect(transport, mode, tmp_path / "a", fake, base, no) as client:
            declined = await call(client, "generate_product_photo", GENERATE)
        assert sent_work(fake) == [] and fake.charges == []
        (question,) = no.messages
        assert "generate_product_photo" in question and "Aluo AI" in question
        assert '"A red mug on a table"' in question  # what the credits are for
        assert "80 credits" in question and "Today's spend so far: 0 credits" in question
        assert not declined.is_error and declined.structured_content["status"] == "cancelled"
        assert declined.structured_content["credits"] == {"estimated": 80.0, "charged": 0.0}
        assert "declined" in declined.content[0].text and "Nothing was sent" in declined.content[0].text

        # Accept: it runs, and the fake charges exactly once.
        yes = Person("accept")
        async with connect(transport, mode, tmp_path / "b", fake, base, yes) as client:
            accepted = await call(client, "generate_product_photo", GENERATE)
        assert len(yes.asked) == 1
        assert not accepted.is_error, accepted.content
        assert accepted.structured_content["status"] == "succeeded"
        assert len(accepted.structured_content["images"]) == 2
        assert [(c.amount, c.what) for c in fake.charges] == [(80, "generate")]

        # A client without elicitation: today's behaviour, caps only (it runs, charged once more).
        async with connect(transport, mode, tmp_path / "c", fake, base, None) as client:
            unasked = await call(client, "generate_product_photo", GENERATE)
        assert not unasked.is_error, unasked.content
        assert [(c.amount, c.what) for c in fake.charges] == [(80, "generate"), (80, "generate")]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_required_consent_refuses_a_client_that_cannot_ask(tmp_path: Path, mode: str) -> None:
    async with (
        aluo() as (fake, base),
        connect("stdio", mode, tmp_path, fake, base, None, PHOTO_MCP_REQUIRE_CONSENT="true") as client,
    ):
        refused = await call(client, "generate_product_photo", GENERATE)
    assert refused.is_error
    assert "PHOTO_MCP_REQUIRE_CONSENT" in refused.content[0].text and "Nothing was sent" in refused.content[0].text
    assert sent_work(fake) == []


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_dismissing_or_unticking_sends_nothing(tmp_path: Path, mode: str) -> None:
    async with aluo() as (fake, base):
        settings = aluo_settings(tmp_path, fake, base)
        for person in (Person("cancel"), Person("accept", {"confirm": False})):
            async with Client(build_server(settings), mode=mode, elicitation_callback=person) as client:
                result = await call(client, "edit_photo", {"prompt": "bluer", "images": [f"{base}/cdn/x.png"]})
            assert len(person.asked) == 1 and result.structured_content["status"] == "cancelled"
        assert sent_work(fake) == []
        assert "dismissed" in result.content[0].text or "declined" in result.content[0].text


async def test_threshold_cheap_calls_run_without_asking_unless_configured(tmp_path: Path, workdir: Path) -> None:
    (workdir / "mug.jpg").write_bytes(image_bytes(80, 60, "jpeg"))
    args = {"image": str(workdir / "mug.jpg"), "provider": "aluo"}
    async with aluo() as (fake, base):
        # Default: 1 credit is the cheapest paid operation, so remove_background never asks.
        person = Person("decline")
        async with Client(build_server(aluo_settings(tmp_path, fake, base)), elicitation_callback=person) as client:
            cut = await call(client, "remove_background", args)
            free = await call(client, "resize_image", {"image": str(workdir / "mug.jpg"), "width": 40})
        assert person.asked == [] and not cut.is_error and not free.is_error
        assert len(fake.charges) == 1
        # PHOTO_MCP_CONFIRM_ABOVE=1: at or above 1 credit asks, and a decline sends nothing.
        settings = aluo_settings(tmp_path, fake, base, confirm_above=1)
        async with Client(build_server(settings), elicitation_callback=person) as client:
            refused = await call(client, "remove_background", args)
        assert len(person.asked) == 1 and "about 1 credit?" in person.messages[0]
        assert refused.structured_content["status"] == "cancelled" and len(fake.charges) == 1


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_missing_key_offers_the_console_by_url_only_where_supported(tmp_path: Path, mode: str) -> None:
    settings = aluo_settings(tmp_path, FakeAluo(), "http://127.0.0.1:9", aluo_api_key=None)
    # A client that declares URL-mode elicitation (the SDK's does, with a callback) is offered the
    # provider's console: a URL to open, never a key through the model.
    person = Person("accept")
    async with Client(build_server(settings), mode=mode, elicitation_callback=person) as client:
        result = await call(client, "generate_product_photo", GENERATE)
    assert result.is_error and "ALUO_API_KEY" in result.content[0].text
    (offer,) = person.asked
    assert offer.mode == "url" and offer.url.startswith("https://aluo.ai")
    assert "never paste a key" in offer.message and "ALUO_API_KEY" in offer.message
    # A client without elicitation gets the setup message only.
    async with Client(build_server(settings), mode=mode) as client:
        plain = await call(client, "generate_product_photo", GENERATE)
    assert plain.is_error and "ALUO_API_KEY" in plain.content[0].text


@pytest.mark.parametrize("transport", ["stdio", "http"])
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_out_of_credits_offers_the_console_and_runs_nothing_twice(
    tmp_path: Path, transport: str, mode: str
) -> None:
    async with aluo(credits=10) as (fake, base):
        person = Person("accept")
        async with connect(transport, mode, tmp_path, fake, base, person) as client:
            result = await call(client, "generate_product_photo", {"prompt": "A red mug"})
    assert result.is_error and "credit" in result.content[0].text.lower()
    consent, offer = person.asked
    assert "40 credits" in consent.message
    assert offer.mode == "url" and offer.url == "https://aluo.ai" and "out of credits" in offer.message
    submits = [r for r in fake.requests if r.method == "POST"]
    assert len(submits) == 1 and fake.charges == []  # refused once at submit; never re-sent


async def test_shared_request_state_keys_let_another_process_finish_the_round(tmp_path: Path) -> None:
    """2026-07-28: the question is asked by one process and answered to another (a load balancer
    without stickiness). With the same PHOTO_MCP_REQUEST_STATE_KEYS the second one honours the
    sealed state; a process with its own key does not run the call."""
    keys = "k1-" + "a" * 40 + ",k0-" + "b" * 40
    for name in "abc":
        (tmp_path / name).mkdir()
    async with aluo() as (fake, base):
        env = {"ALUO_API_KEY": fake.api_key, "ALUO_BASE_URL": FakeAluo.api_base(base)}
        async with (
            http_process(tmp_path / "a", "http", PHOTO_MCP_REQUEST_STATE_KEYS=keys, **env) as (one, _),
            http_process(tmp_path / "b", "http", PHOTO_MCP_REQUEST_STATE_KEYS=keys, **env) as (two, _),
            http_process(tmp_path / "c", "http", **env) as (own_key, _),
        ):
            with anyio.fail_after(60):
                async with Client(one + "/mcp", mode="2026-07-28", elicitation_callback=Person()) as first:
                    asked = await first.session.call_tool("generate_product_photo", GENERATE, allow_input_required=True)
                assert isinstance(asked, InputRequiredResult) and asked.request_state
                ((key, question),) = asked.input_requests.items()
                assert "80 credits" in question.params.message
                answer = {key: ElicitResult(action="accept", content={"confirm": True})}
                assert fake.requests == []

                async with Client(own_key + "/mcp", mode="2026-07-28", elicitation_callback=Person()) as stranger:
                    with contextlib.suppress(MCPError):
                        await stranger.session.call_tool(
                            "generate_product_photo",
                            GENERATE,
                            input_responses=answer,
                            request_state=asked.request_state,
                            allow_input_required=True,
                        )
                assert fake.requests == []  # a state it cannot unseal never runs the call

                async with Client(two + "/mcp", mode="2026-07-28", elicitation_callback=Person()) as second:
                    done = await second.session.call_tool(
                        "generate_product_photo",
                        GENERATE,
                        input_responses=answer,
                        request_state=asked.request_state,
                        allow_input_required=True,
                    )
    assert isinstance(done, CallToolResult) and not done.is_error, done
    assert done.structured_content["status"] == "succeeded"
    assert [(c.amount, c.what) for c in fake.charges] == [(80, "generate")]


async def test_a_rejected_key_offers_the_console_to_check_it(tmp_path: Path) -> None:
    async with aluo() as (fake, base):
        settings = aluo_settings(tmp_path, fake, base, aluo_api_key="sk-not-the-right-key-000000")
        person = Person("accept")
        async with Client(build_server(settings), mode="2026-07-28", elicitation_callback=person) as client:
            result = await call(client, "generate_product_photo", {"prompt": "A red mug"})
    assert result.is_error
    _consent, offer = person.asked
    assert offer.mode == "url" and "rejected the configured API key" in offer.message
    assert "sk-not-the-right-key" not in offer.message + result.content[0].text  # no key in any output
    assert fake.charges == []


@pytest.mark.parametrize("asks", [True, False])
async def test_the_caps_still_refuse_and_a_capped_call_is_not_asked_about(tmp_path: Path, asks: bool) -> None:
    async with aluo() as (fake, base):
        settings = aluo_settings(tmp_path, fake, base, max_credits_per_call=50)
        person = Person("accept")
        kwargs = {"elicitation_callback": person} if asks else {}
        async with Client(build_server(settings), mode="2026-07-28", **kwargs) as client:
            capped = await call(client, "generate_product_photo", GENERATE)  # 80 credits > 50
    assert capped.is_error and "PHOTO_MCP_MAX_CREDITS_PER_CALL" in capped.content[0].text
    assert person.asked == [] and fake.requests == []


async def test_an_answer_decides_even_if_the_retry_declares_no_elicitation(tmp_path: Path) -> None:
    """2026-07-28: a retry carrying a decline must not run as 'this client cannot ask'."""
    async with aluo() as (fake, base):
        server = build_server(aluo_settings(tmp_path, fake, base))
        with anyio.fail_after(60):
            async with Client(server, mode="2026-07-28", elicitation_callback=Person()) as asker:
                asked = await asker.session.call_tool("generate_product_photo", GENERATE, allow_input_required=True)
            assert isinstance(asked, InputRequiredResult)
            (key,) = asked.input_requests
            async with Client(server, mode="2026-07-28") as silent:  # declares no elicitation
                result = await silent.session.call_tool(
                    "generate_product_photo",
                    GENERATE,
                    input_responses={key: ElicitResult(action="decline")},
                    request_state=asked.request_state,
                    allow_input_required=True,
                )
    assert isinstance(result, CallToolResult) and result.structured_content["status"] == "cancelled"
    assert fake.requests == []
