"""Trying providers in order: the fall-through rule shared by every routed tool.

Move on only after a failure that cannot have charged (missing key or extra, rejected key,
no credits, an outage before any work was accepted); never after a provider may have
charged, so the same photo is never paid for twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tools.core.errors import NotConfigured, ProviderError
from tools.core.jobs import Outcome


def can_fall_through(exc: ProviderError | NotConfigured) -> bool:
    return isinstance(exc, NotConfigured) or (exc.fall_through and not exc.charged)


async def first_that_works(order: list[str], attempt: Callable[[str], Awaitable[Outcome]]) -> Outcome:
    """Run `attempt(provider)` for each provider in `order` until one succeeds.

    The outcome's message and `details["skipped"]` say which providers were skipped and why.

    Raises:
        ProviderError | NotConfigured: the last provider's error (naming the skipped ones),
            or the first error after which falling through could charge twice.
    """
    skipped: list[str] = []
    for position, name in enumerate(order):
        try:
            outcome = await attempt(name)
        except (ProviderError, NotConfigured) as exc:
            if position < len(order) - 1 and can_fall_through(exc):
                skipped.append(f"{name}: {exc.message}")
                continue
            if skipped:
                exc.message = f"{exc.message} (Also tried: {'; '.join(skipped)})"
                exc.args = (exc.message,)
            raise
        if skipped:
            outcome.details["skipped"] = skipped
            outcome.message = " ".join(m for m in (outcome.message, f"Skipped {'; '.join(skipped)}.") if m)
        return outcome
    raise AssertionError("no provider to try")
