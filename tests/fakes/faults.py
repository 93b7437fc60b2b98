"""Injected faults, shared by every fake: a queue of (path prefix, status, times) answers.

How a fault is rendered is each provider's own (its error envelope), so only matching and
counting live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    prefix: str
    status: int
    times: int = 1
    headers: dict[str, str] | None = None
    body: Any = None
    after: bool = False  # let the request take effect first, then replace its answer (a lost reply)


class FaultQueue(list[Fault]):
    """Faults waiting to fire; a spent fault leaves the queue."""

    def take(self, path: str) -> Fault | None:
        """The first fault whose prefix matches `path`, counted down by one firing."""
        for fault in self:
            if path.startswith(fault.prefix):
                fault.times -= 1
                if fault.times <= 0:
                    self.remove(fault)
                return fault
        return None
