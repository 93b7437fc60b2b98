"""YouCam's rate limits, kept on our side so that no poll ever misses its loss window.

YouCam allows 100 requests per 60 s per access token and 100 per 300 s per IP (both must
pass, else 429), and it drops a task that is not polled for 10 s. A poll refused with 429
can therefore lose a task: the limiter makes sure that never happens, instead of reacting
to 429s. One `RateLimiter` per credentials counts every API request (sliding windows, with a
small safety margin) and grants requests by class, highest priority first:

| class   | what                                         | granted when                                  |
|---------|----------------------------------------------|-----------------------------------------------|
| urgent  | auth; a poll that is due (`gap` s after the  | a slot is free now                            |
|         | task's last poll); a retried run-task (its   |                                               |
|         | first attempt may have created the task, so  |                                               |
|         | the 10 s loss clock may be running)          |                                               |
| planned | requests a task reserved on admission        | a slot is free now                            |
|         | (file create, run-task)                      |                                               |
| normal  | admitting a new task; catalog and credit     | the plan still holds with it; first come,     |
|         | calls; a running task's retries              | first served (retries never queue)            |
| early   | a poll before it is due (at the server's     | the plan still holds with it, no normal       |
|         | `polling_interval`)                          | request waits and every window is less than   |
|         |                                              | ¾ used (room kept for newcomers)              |

The plan, and why it is a proof: every admitted task needs one poll per `gap` seconds for as long
as it runs, and nobody knows how long that is. A request (and a new task with its reserved
requests) is granted only if, with it sent now, every admitted task can still be polled every
`gap` seconds *forever* without any window going over its count. Checking that takes a finite
look-ahead: every task polls with the same period `gap`, so once a window has slid past the last
request already sent (`now`), what it holds repeats with period `gap`; windows ending up to
`now + longest window + 2·gap` therefore cover every window there will ever be (`proof_horizon`).
So whatever the limiter admits can be kept alive indefinitely: no admitted task can be lost to
the rate limits, however long YouCam takes. A task that cannot be admitted safely waits (its job
says "waiting for YouCam rate-limit capacity"), and is admitted at the first moment the proof
holds (a request ageing out of a window, a task ending).

The price of the proof: under YouCam's 100 requests per 300 s per IP and an 8 s poll gap, a
never-ending task needs 39 polls in any 306 s, so at most two tasks can run at once from an idle
start, and fewer while earlier requests still fill the window. Tasks usually end within seconds,
which frees their reservation at once.

Residual risk: other clients on the same IP are invisible to us: their 429s are honoured
(Retry-After) by the HTTP policy and pause this limiter too.
"""

from __future__ import annotations

import bisect
import re
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import anyio

Kind = Literal["auth", "poll", "file", "run", "other"]
EARLY_SHARE = 0.75  # early polls only while every window is less than this share used
MAX_WAIT_S = 0.25  # re-check at least this often while waiting (hits age out of windows)
WAIT_REPORT_S = 5.0


@dataclass(frozen=True)
class Window:
    """At most `count` requests in any `seconds`-long sliding window."""

    count: int
    seconds: float

    @property
    def guarded(self) -> float:
        # Our send time is earlier than the server's arrival time; a margin absorbs latency.
        return self.seconds * 1.02 + 0.05


def parse_limits(text: str) -> list[Window]:
    """`"100/60,100/300"` -> windows; `""`, `"off"` or `"none"` -> no limits.

    Raises:
        ValueError: for anything else.
    """
    text = text.strip().lower()
    if text in ("", "off", "none"):
        return []
    windows = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", part)
        if m is None or int(m[1]) < 1 or float(m[2]) <= 0:
            raise ValueError(f"bad rate limit {part.strip()!r}: use count/seconds, e.g. 100/60,100/300")
        windows.append(Window(int(m[1]), float(m[2])))
    return windows


def proof_horizon(windows: list[Window], gap: float) -> float:
    """How far ahead `plan_fits` must look to prove that the polls can go on forever: past the
    longest (guarded) window, the windows' contents repeat with period `gap` (see the module
    docstring); one more period covers the tasks whose first poll is up to `gap` away."""
    return max((w.guarded for w in windows), default=0.0) + 2 * gap


def plan_fits(
    windows: list[Window],
    hits: list[float],
    now: float,
    now_events: int,
    poll_starts: list[float],
    gap: float,
    horizon: float | None = None,
) -> bool:
    """Whether `now_events` requests sent now, plus one poll per task every `gap` seconds from
    each of `poll_starts` (the tasks' next due times, each at most `gap` from now) up to
    `now + horizon`, keep every window within its count, given the past requests `hits` (sorted,
    all <= now). With the default horizon (`proof_horizon`) a True answer holds for all time.

    The count inside a window only rises at an event, so checking at each event suffices.
    """
    events = [now] * now_events
    end = now + (proof_horizon(windows, gap) if horizon is None else horizon)
    for start in poll_starts:
        t = max(start, now)
        events.append(t)
        t += gap
        while t <= end:
            events.append(t)
            t += gap
    events.sort()
    for w in windows:
        span = w.guarded
        for e in events:
            lo = e - span
            old = len(hits) - bisect.bisect_right(hits, lo)
            new = bisect.bisect_right(events, e) - bisect.bisect_right(events, lo)
            if old + new > w.count:
                return False
    return True


class Ticket:
    """An admitted task: the requests it reserved and when it was last polled."""

    def __init__(self, reserved: int, now: float) -> None:
        self.reserved = reserved
        self.last = now  # last poll (or the run-task) grant time
        self.started = False  # run-task sent: the server's loss clock is ticking


class RateLimiter:
    """Grants YouCam requests under `windows`, keeping every admitted task pollable every
    `gap` seconds (see the module docstring)."""

    def __init__(
        self,
        windows: list[Window],
        *,
        gap: float,
        horizon: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`horizon`: how far the plan looks ahead; None (the default) proves it for all time."""
        self.windows = windows
        self.gap = gap
        self.horizon = horizon
        self.clock = clock
        self._hits: list[float] = []
        self._tickets: set[Ticket] = set()
        self._normals: deque[object] = deque()  # waiting ticketless requests, FIFO
        self._admissions: deque[object] = deque()  # waiting new tasks, FIFO
        self._blocked_until = 0.0
        self._event = anyio.Event()

    # ---- state --------------------------------------------------------------------------
    @property
    def running(self) -> int:
        return len(self._tickets)

    def _wake(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    def _prune(self, now: float) -> None:
        if self.windows:
            cut = now - max(w.guarded for w in self.windows)
            del self._hits[: bisect.bisect_right(self._hits, cut)]

    def _free_now(self, now: float, n: int = 1) -> bool:
        return all(
            len(self._hits) - bisect.bisect_right(self._hits, now - w.guarded) + n <= w.count for w in self.windows
        )

    def _fits(self, now: float, extra: int, moved: Ticket | None = None, added: Ticket | None = None) -> bool:
        if not self.windows:
            return True
        starts = []
        for t in (*self._tickets, *((added,) if added else ())):
            if t is moved:
                starts.append(now + self.gap)
            else:
                starts.append(t.last + self.gap if t.started else now + self.gap)
        reserved = sum(t.reserved for t in self._tickets) + (added.reserved if added else 0)
        return plan_fits(self.windows, self._hits, now, reserved + extra, starts, self.gap, self.horizon)

    def _next_wake(self, now: float, ticket: Ticket | None) -> float:
        times = [now + MAX_WAIT_S, self._blocked_until]
        for w in self.windows:
            i = bisect.bisect_right(self._hits, now - w.guarded)
            if i < len(self._hits):
                times.append(self._hits[i] + w.guarded)
        if ticket is not None:
            times.append(ticket.last + self.gap)
        future = [t for t in times if t > now]
        return max(0.001, min(future) - now) if future else 0.001

    async def _wait(self, now: float, ticket: Ticket | None) -> None:
        event = self._event
        with anyio.move_on_after(self._next_wake(now, ticket)):
            await event.wait()

    # ---- requests -----------------------------------------------------------------------
    def _grantable(self, kind: Kind, ticket: Ticket | None, now: float, token: object) -> bool:
        if now < self._blocked_until:
            return False
        if kind == "auth" or (kind == "poll" and ticket is not None and now >= ticket.last + self.gap - 1e-3):
            return self._free_now(now)  # urgent
        if kind == "run" and ticket is not None and ticket.started:
            # A retry of a run-task that may have created its task: the loss clock may be running,
            # so it goes ahead of admissions and early polls, whatever the plan says.
            return self._free_now(now)
        if ticket is None:  # normal, first come first served among normal requests
            return (self._normals[0] is token if self._normals else token is None) and self._fits(now, 1)
        if kind in ("file", "run"):
            # planned; beyond its reservation (a retry) a running task never queues behind
            # admissions, which may be waiting for it to finish
            return self._free_now(now) if ticket.reserved > 0 else self._fits(now, 1)
        # An early poll (at the server's polling_interval): while the plan still holds with it and
        # every window is less than EARLY_SHARE used, so that one long task polling every second
        # cannot take all the room a newcomer needs. It may go ahead of waiting admissions: a task
        # that ends sooner frees its whole reservation.
        if self._normals or not self._spare(now):
            return False
        return self._fits(now, 1, moved=ticket)

    def _spare(self, now: float) -> bool:
        return all(
            len(self._hits) - bisect.bisect_right(self._hits, now - w.guarded) + 1 <= w.count * EARLY_SHARE
            for w in self.windows
        )

    async def acquire(self, kind: Kind, ticket: Ticket | None = None) -> float:
        """Wait until a request of `kind` (for `ticket`'s task, if any) may be sent; return the grant time."""
        token = object()
        queued = ticket is None and kind != "auth"
        if queued:
            self._normals.append(token)
        try:
            while True:
                now = self.clock()
                self._prune(now)
                if not self.windows or self._grantable(kind, ticket, now, token):
                    break
                await self._wait(now, ticket)
        finally:
            if queued:
                self._normals.remove(token)
                self._wake()
        return self._grant(kind, ticket, now)

    def try_acquire(self, kind: Kind, ticket: Ticket | None = None) -> float | None:
        """Grant a request of `kind` now if the rules allow it (the grant time), else None: never waits."""
        now = self.clock()
        self._prune(now)
        if self.windows and not self._grantable(kind, ticket, now, None):
            return None
        return self._grant(kind, ticket, now)

    def _grant(self, kind: Kind, ticket: Ticket | None, now: float) -> float:
        bisect.insort(self._hits, now)
        if ticket is not None:
            if kind == "poll":
                ticket.last = now
            elif kind in ("file", "run") and ticket.reserved > 0:
                ticket.reserved -= 1
            if kind == "run" and not ticket.started:
                ticket.started, ticket.last = True, now
        return now

    def answered(self, granted: float, status: int, retry_after: float | None) -> None:
        """A request granted at `granted` got its response: count it from now (the server saw it
        no later than this), and pause on a 429 (someone else shares the limits)."""
        now = self.clock()
        i = bisect.bisect_left(self._hits, granted)
        if i < len(self._hits) and self._hits[i] == granted:
            del self._hits[i]
            bisect.insort(self._hits, now)
        if status == 429:
            self._blocked_until = max(self._blocked_until, now + (retry_after if retry_after is not None else 1.0))

    # ---- tasks --------------------------------------------------------------------------
    @asynccontextmanager
    async def admit(
        self,
        reserved: int,
        *,
        on_wait: Callable[[str], Awaitable[None]] | None = None,
        force: bool = False,
    ) -> AsyncIterator[Ticket]:
        """Admit a new task that will send `reserved` requests before its polls.

        Waits while admitting it would endanger the polls of running tasks, calling
        `on_wait(message)` now and then. `force` admits at once (a task that already runs
        at YouCam, resumed after a restart).
        """
        ticket = Ticket(reserved, self.clock())
        if not force and self.windows:
            await self._await_admission(ticket, on_wait)
        ticket.last = self.clock()
        self._tickets.add(ticket)
        try:
            yield ticket
        finally:
            self.release(ticket)

    def _admissible(self, ticket: Ticket, now: float) -> bool:
        if now < self._blocked_until:
            return False
        # Nothing running and nothing sent within any window: admit even a task whose plan alone
        # exceeds the limits (tiny windows), or it would never start. Not while past requests fill
        # a window: its polls could not be granted in time.
        idle = not self._tickets and not self._hits
        return idle or self._fits(now, 0, added=ticket)

    def try_admit(self, reserved: int) -> Ticket | None:
        """Admit a new task now if the proof holds with it (and nobody is waiting ahead), else
        None: never waits. The caller ends it with `release`."""
        now = self.clock()
        self._prune(now)
        if self._admissions:
            return None
        ticket = Ticket(reserved, now)
        if self.windows and not self._admissible(ticket, now):
            return None
        self._tickets.add(ticket)
        return ticket

    def release(self, ticket: Ticket) -> None:
        """The task has ended (or will never start): its reservation is free."""
        self._tickets.discard(ticket)
        self._wake()

    async def _await_admission(self, ticket: Ticket, on_wait: Callable[[str], Awaitable[None]] | None) -> None:
        token = object()
        self._admissions.append(token)
        reported = -WAIT_REPORT_S
        try:
            while True:
                now = self.clock()
                self._prune(now)
                if self._admissions[0] is token and self._admissible(ticket, now):
                    return
                if on_wait is not None and now - reported >= WAIT_REPORT_S:
                    reported = now
                    await on_wait(
                        f"waiting for YouCam rate-limit capacity ({self.running} task(s) running, "
                        f"{self._admissions.index(token)} ahead in line)"
                    )
                await self._wait(now, None)
        finally:
            self._admissions.remove(token)
            self._wake()


_LIMITERS: weakref.WeakValueDictionary[tuple[str, ...], RateLimiter] = weakref.WeakValueDictionary()


def limiter_for(key: tuple[str, ...], windows: list[Window], *, gap: float) -> RateLimiter:
    """The one limiter of these credentials (`key`) in this process, shared by every client using them."""
    limiter = _LIMITERS.get(key)
    if limiter is None or limiter.windows != windows or limiter.gap != gap:
        limiter = RateLimiter(windows, gap=gap)
        _LIMITERS[key] = limiter
    return limiter
