"""The one poll loop (in the spirit of openai-python's `poll`): ask, classify, wait, repeat.

Each provider supplies `check(state)`, which makes one status request and classifies the
answer into a closed set of states; the loop owns what is common:

| state        | what the answer was                          | the loop                                |
|--------------|----------------------------------------------|-----------------------------------------|
| pending      | a good answer, not finished                  | waits `wait` (the server's interval     |
|              |                                              | hint) or the default, capped            |
| done         | finished with a result                       | returns it                              |
| failed       | finished without one                         | raises `error`                          |
| garbled      | not the provider's format (cut body, HTML)   | counts against the bad-answer budget    |
| unreachable  | the status request itself failed (retried)   | counts against the bad-answer budget    |
| rate_limited | refused with 429                             | waits, at least the interval            |

A task already paid for (or running at the provider) must not be abandoned on one bad
answer, so `budget` consecutive garbled/unreachable answers are tolerated; one more raises
`give_up(poll, count)`. A `deadline` (seconds) bounds the whole wait.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, assert_never

import anyio

from tools.core.errors import ProviderError

Status = Literal["pending", "done", "failed", "garbled", "unreachable", "rate_limited"]


@dataclass
class Poll:
    """One classified status answer."""

    status: Status
    body: dict[str, Any] = field(default_factory=dict)  # the provider's answer (done/pending)
    wait: float | None = None  # seconds until the next poll, if the provider (or caller) says
    error: ProviderError | None = None  # failed: what to raise; garbled/unreachable: the cause


@dataclass
class PollState:
    """What the loop knows so far, handed to every `check`."""

    started: float = field(default_factory=time.monotonic)
    polls: int = 0  # good answers (pending) so far
    bad: int = 0  # consecutive garbled/unreachable answers

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


async def poll_until_done(
    check: Callable[[PollState], Awaitable[Poll]],
    *,
    interval: float,
    give_up: Callable[[Poll, int], ProviderError],
    budget: int = 3,
    max_interval: float | None = None,
    retry_interval: float | None = None,
    deadline: float | None = None,
    on_deadline: Callable[[float], ProviderError] | None = None,
    pause: Callable[[float], Awaitable[Any]] = anyio.sleep,
    wait_first: bool = False,
    on_pending: Callable[[PollState, Poll], Awaitable[None]] | None = None,
) -> Poll:
    """Poll with `check` until it says done; return that answer.

    `interval` is the default gap between polls, `max_interval` caps any gap (a provider's
    loss window), `retry_interval` is the gap after a bad answer (default `interval`).
    `pause(seconds)` is how to wait (anyio.sleep, or a webhook slot's wait); `wait_first`
    waits before the first poll too.

    Raises:
        ProviderError: `check` reported failed (its `error`); the bad-answer budget ran out
            (`give_up`); the deadline passed (`on_deadline`).
    """
    state = PollState()

    def capped(seconds: float) -> float:
        seconds = max(0.0, seconds)
        return min(seconds, max_interval) if max_interval is not None else seconds

    if wait_first:
        await pause(capped(interval))
    while True:
        poll = await check(state)
        match poll.status:
            case "done":
                return poll
            case "failed":
                assert poll.error is not None
                raise poll.error
            case "garbled" | "unreachable":
                state.bad += 1
                if state.bad > budget:
                    raise give_up(poll, state.bad)
                delay = poll.wait if poll.wait is not None else (retry_interval or interval)
            case "rate_limited":
                state.bad = 0
                delay = max(interval, poll.wait or 0.0)
            case "pending":
                state.bad = 0
                state.polls += 1
                if on_pending is not None:
                    await on_pending(state, poll)
                delay = poll.wait if poll.wait is not None else interval
            case _:
                assert_never(poll.status)
        if deadline is not None and state.elapsed > deadline:
            assert on_deadline is not None
            raise on_deadline(state.elapsed)
        await pause(capped(delay))
