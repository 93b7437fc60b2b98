"""The shared HTTP pieces: the key scrubber, download-all (first error wins), the poll loop."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.core.budget import amount
from tools.core.errors import JobFailed, ProviderError, ProviderUnavailable
from tools.providers.http import RetryPolicy, download_all, may_have_charged
from tools.providers.keys import Scrubber, strip_key
from tools.providers.polling import Poll, PollState, poll_until_done

KEY = "sk-Live_9fA3kQ7zX2mB8nR4tY6w"
ZW = "\u200b"


def entities(text: str, hexa: bool = False) -> str:
    return "".join(f"&#x{ord(c):x};" if hexa else f"&#{ord(c)};" for c in text)


VARIANTS = {
    "exact": KEY,
    "upper": KEY.upper(),
    "lower": KEY.lower(),
    "split by spaces": " ".join([KEY[:10], KEY[10:20], KEY[20:]]),
    "split by a newline": KEY[:12] + "\n" + KEY[12:],
    "zero-width inside": ZW.join(KEY),
    "decimal entities": entities(KEY),
    "hex entities": entities(KEY, hexa=True),
    "half entities": KEY[:8] + entities(KEY[8:]),
    "html-escaped": html.escape(KEY),
    "percent-encoded": "".join(f"%{ord(c):02X}" for c in KEY),
    "percent, lower-case hex": "".join(f"%{ord(c):02x}" for c in KEY),
    "quote()": quote(KEY, safe=""),
    "json unicode escapes": "".join(f"\\u{ord(c):04x}" for c in KEY),
    "percent-encoded zero-width": "%E2%80%8B".join(KEY),
    "entity zero-width": "&#8203;".join(KEY),
}


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_the_scrubber_removes_every_variant_of_the_key(variant: str) -> None:
    scrub = Scrubber([KEY])
    out = scrub(f'{{"error": "invalid key {variant} for this account"}}')
    assert "invalid key" in out and "for this account" in out
    for probe in (KEY, KEY.lower(), KEY[4:16], KEY[-12:].lower()):
        assert probe.lower() not in out.lower()
    assert "…" in out


def test_the_scrubber_keeps_ordinary_text_and_ignores_short_or_empty_secrets() -> None:
    scrub = Scrubber([KEY, "", None, "abc"])
    text = "Invalid parameter value: sk-other-key-entirely and abc are fine"
    assert scrub(text) == text
    assert Scrubber([])(text) == text


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=12, max_size=48),
    st.sampled_from(list(VARIANTS)),
    st.text(max_size=20),
)
def test_any_key_in_any_variant_is_scrubbed(key: str, variant: str, around: str) -> None:
    encoded = {
        "exact": key,
        "upper": key.upper(),
        "split by spaces": key[:5] + " " + key[5:],
        "split by a newline": key[:5] + "\r\n" + key[5:],
        "zero-width inside": ZW.join(key),
        "decimal entities": entities(key),
        "hex entities": entities(key, hexa=True),
        "half entities": key[:4] + entities(key[4:]),
        "html-escaped": html.escape(key),
        "percent-encoded": "".join(f"%{ord(c):02X}" for c in key),
        "percent, lower-case hex": "".join(f"%{ord(c):02x}" for c in key),
        "quote()": quote(key, safe=""),
        "json unicode escapes": "".join(f"\\u{ord(c):04x}" for c in key),
        "percent-encoded zero-width": "%E2%80%8B".join(key),
        "entity zero-width": "&#8203;".join(key),
        "lower": key.lower(),
    }[variant]
    out = Scrubber([key])(around + encoded + around)
    assert key.lower() not in html.unescape(out).lower().replace(" ", "").replace(ZW, "")


def test_keys_are_stripped_of_copy_paste_whitespace() -> None:
    assert strip_key(f"  {KEY}\n") == KEY
    assert strip_key(f"{KEY}{ZW}\r\n") == KEY
    assert strip_key(None) == "" and strip_key("   ") == ""


def test_may_have_charged_says_how_much_at_most_and_how_to_check() -> None:
    exc = may_have_charged(ProviderUnavailable("The connection dropped.", provider="x"), title="X", max_charge=40)
    assert exc.charged and exc.max_charge == 40
    assert str(exc) == exc.message and "at most 40 credits" in exc.message and "check_credits" in exc.message


# -- download-all ---------------------------------------------------------------------------------------


async def test_download_all_keeps_order_and_the_first_error_wins() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        if request.url.path == "/bad":
            return httpx2.Response(404)
        return httpx2.Response(200, content=request.url.path.encode())

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), base_url="http://cdn.test") as http:
        policy = RetryPolicy(base_delay=0.001)
        assert await download_all(http, ["/a", "/b", "/c"], provider="x", policy=policy) == [b"/a", b"/b", b"/c"]
        with pytest.raises(ProviderError, match="HTTP 404") as err:
            await download_all(http, ["/a", "/bad", "/c"], provider="x", policy=policy)
    assert err.value.charged and not isinstance(err.value, BaseExceptionGroup)
    assert "authorization" not in {k.lower() for k in http.headers}


# -- the poll loop ----------------------------------------------------------------------------------------


def scripted(*answers: Poll) -> Any:
    queue = list(answers)

    async def check(state: PollState) -> Poll:
        return queue.pop(0)

    return check


def give_up(poll: Poll, count: int) -> ProviderError:
    return ProviderUnavailable(f"gave up after {count}", provider="x")


async def test_the_loop_returns_on_done_and_tolerates_a_budget_of_bad_answers() -> None:
    pending: list[int] = []

    async def on_pending(state: PollState, poll: Poll) -> None:
        pending.append(state.polls)

    check = scripted(
        Poll("pending"), Poll("garbled"), Poll("unreachable"), Poll("rate_limited", wait=0), Poll("pending"),
        Poll("done", {"url": "u"}),
    )  # fmt: skip
    with anyio.fail_after(5):
        done = await poll_until_done(check, interval=0, budget=2, give_up=give_up, on_pending=on_pending)
    assert done.body == {"url": "u"} and pending == [1, 2]


async def test_the_loop_gives_up_one_past_the_budget_and_raises_failures() -> None:
    with anyio.fail_after(5), pytest.raises(ProviderUnavailable, match="gave up after 3"):
        await poll_until_done(scripted(*[Poll("garbled")] * 3), interval=0, budget=2, give_up=give_up)
    failure = JobFailed("no", provider="x")
    with anyio.fail_after(5), pytest.raises(JobFailed):
        await poll_until_done(scripted(Poll("pending"), Poll("failed", error=failure)), interval=0, give_up=give_up)


async def test_the_loop_caps_every_wait_and_honours_the_deadline() -> None:
    waits: list[float] = []

    async def pause(seconds: float) -> None:
        waits.append(seconds)

    check = scripted(Poll("pending", wait=30), Poll("pending", wait=-1), Poll("done"))
    await poll_until_done(check, interval=5, max_interval=2, give_up=give_up, pause=pause, wait_first=True)
    assert waits == [2, 2, 0]

    def late(elapsed: float) -> ProviderError:
        return ProviderUnavailable("too long", provider="x")

    with pytest.raises(ProviderUnavailable, match="too long"):
        await poll_until_done(scripted(Poll("pending")), interval=0, give_up=give_up, deadline=-1, on_deadline=late)


def test_may_have_charged_drops_what_no_longer_holds() -> None:
    exc = ProviderUnavailable(
        "x answered HTTP 502 (a server-side problem). Nothing was charged; try again later.", provider="x"
    )
    may_have_charged(exc, title="X", max_charge=1, unit="unit")
    assert "nothing was charged" not in exc.message.lower() and exc.message.startswith("x answered HTTP 502")
    assert "(at most 1 unit)" in exc.message


def test_amounts_read_as_a_person_writes_them() -> None:
    assert [amount(n) for n in (0, 0.5, 1, 3)] == ["0 credits", "0.5 credits", "1 credit", "3 credits"]
    assert amount(2, "unit") == "2 units"
