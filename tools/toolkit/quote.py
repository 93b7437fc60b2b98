"""What a paid tool call will cost, known from its arguments before anything runs.

A paid tool declares its quote with `@tool(..., quote=priced(...))`. The server asks the person
with this quote before the tool body runs (spend consent); the numbers are the ones
`run_provider` reserves against the caps, because both come from `routing.candidates` and the
provider registry's `estimate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tools import providers
from tools.core.settings import Settings
from tools.providers.routing import candidates


@dataclass(frozen=True)
class Quote:
    """A paid call's price before it runs."""

    operation: str
    providers: tuple[str, ...]  # in the order they would be tried
    credits: float  # the largest estimate among them: what the caps may see
    units: int = 1

    @property
    def paid(self) -> bool:
        return self.credits > 0


Order = Sequence[str] | Callable[[Settings], Sequence[str]]


class QuoteFn:
    """`quote(settings, **tool_arguments) -> Quote`; see `priced`."""

    def __init__(self, operation: str, order: Order, provider: str | None, units: str | None) -> None:
        self.operation = operation
        self._order = order
        self._provider = provider
        self._units = units

    def wanted(self, settings: Settings, **args: Any) -> tuple[str, ...]:
        """The providers the call asks for (configured or not): an explicit one, or the preference order."""
        requested = str(args.get(self._provider, "auto")) if self._provider else "auto"
        if requested != "auto":
            return (requested,)
        return tuple(self._order(settings) if callable(self._order) else self._order)

    def __call__(self, settings: Settings, **args: Any) -> Quote:
        """Raises:
        NotConfigured: no provider can run the call here (the tool answers with its setup message).
        """
        requested = str(args.get(self._provider, "auto")) if self._provider else "auto"
        wanted = list(self.wanted(settings, **args)) if requested == "auto" else [requested]
        names = candidates(settings, requested, wanted, self.operation, self.operation)
        count = int(args.get(self._units) or 1) if self._units else 1
        cost = max(providers.estimate(settings, name, self.operation, count) for name in names)
        return Quote(self.operation, tuple(names), cost, count)


def priced(operation: str, order: Order, *, provider: str | None = None, units: str | None = None) -> QuoteFn:
    """The quote of a tool that runs `operation` on the providers of `order`.

    `provider` names the tool argument choosing a provider ("auto" routes over `order`); `units`
    names the argument counting what is priced per unit (variants, output images).
    """
    return QuoteFn(operation, order, provider, units)


def cheapest_paid(settings: Settings) -> float:
    """The smallest per-call price of any paid operation: the default consent threshold."""
    prices = [
        providers.estimate(settings, info.name, op)
        for info in providers.REGISTRY.values()
        if info.paid
        for op in info.operations
    ]
    return min((p for p in prices if p > 0), default=1.0)
