"""Which providers a routed tool tries, and the fall-through rule between them.

`candidates` is checked before any job starts: an explicit provider that is not configured or
installed answers with its setup message, and `auto` keeps the usable providers of the tool's
preference order. `first_that_works` then moves on only after a failure that cannot have
charged (missing key or extra, rejected key, no credits, an outage before any work was
accepted); never after a provider may have charged, so the same photo is never paid for twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from tools import providers
from tools.core.errors import NotConfigured, ProviderError
from tools.core.settings import Settings

T = TypeVar("T")


def candidates(settings: Settings, requested: str, order: Sequence[str], operation: str, what: str) -> list[str]:
    """The providers to try for `operation`, in order.

    `requested` is a provider name or "auto" (then `order`, the tool's preference order, less
    the providers that are not set up). `what` names the operation for messages ("remove
    backgrounds").

    Raises:
        NotConfigured: an explicit provider is not set up, or no provider of `order` is.
    """
    if requested != "auto":
        problem = providers.missing(settings, requested, operation)
        if problem is not None:
            title = providers.info(requested).title
            raise NotConfigured(f"{title} cannot {what} here: {problem}.")
        return [requested]
    usable = [name for name in order if providers.configured(settings, name, operation)]
    if not usable:
        raise NotConfigured(
            f"No provider can {what} here: "
            + "; ".join(f"for {providers.info(n).title}, {providers.setup_hint(n)}" for n in order)
            + "."
        )
    return usable


def can_fall_through(exc: ProviderError | NotConfigured) -> bool:
    return isinstance(exc, NotConfigured) or (exc.fall_through and not exc.charged)


async def first_that_works(order: Sequence[str], attempt: Callable[[str], Awaitable[T]]) -> tuple[T, list[str]]:
    """Run `attempt(provider)` for each provider in `order` until one succeeds.

    Returns its result and the skipped providers, each as "name: why".

    Raises:
        ProviderError | NotConfigured: the last provider's error (naming the skipped ones),
            or the first error after which falling through could charge twice.
    """
    skipped: list[str] = []
    for position, name in enumerate(order):
        try:
            return await attempt(name), skipped
        except (ProviderError, NotConfigured) as exc:
            if position < len(order) - 1 and can_fall_through(exc):
                skipped.append(f"{name}: {exc.message}")
                continue
            if skipped:
                exc.message = f"{exc.message} (Also tried: {'; '.join(skipped)})"
                exc.args = (exc.message,)
            raise
    raise AssertionError("no provider to try")
