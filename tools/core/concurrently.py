"""Pieces of one call's work done at once, each waiting for something else (a core, the disk,
the network): their results in order, or the one error that says what went wrong.

anyio's task groups report failures as an `ExceptionGroup`; the tool result needs the error
itself (its message, whether the provider charged), so `gather` raises the first that failed,
a `PhotoError` before anything else, on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from tools.core.errors import PhotoError


async def gather(*works: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run `works` at once and return their results, in order.

    The first to fail cancels the others.

    Raises:
        Exception: what the failed work raised (a `PhotoError` first when several failed).
    """
    out: list[Any] = [None] * len(works)

    async def one(i: int, work: Callable[[], Awaitable[Any]]) -> None:
        out[i] = await work()

    try:
        async with anyio.create_task_group() as tg:
            for i, work in enumerate(works):
                tg.start_soon(one, i, work)
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    return out


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The exception to report from `group`: its first `PhotoError`, else its first exception."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for exc in g.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, PhotoError)), leaves[0])
