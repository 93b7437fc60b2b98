"""What every provider client hands back and reports: result images, balances, job hooks.

The HTTP policy (retries, downloads) lives in `tools.providers.http`, key scrubbing in
`tools.providers.keys`, the poll loop in `tools.providers.polling`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tools.core.previews import Preview

# How a recorded charge is known:
#   reported   the provider's answer said what it deducted
#   documented the provider's documents give the price (the answer carried no amount)
#   estimated  no document gives the price: our estimate
ChargeBasis = Literal["reported", "documented", "estimated"]


class JobHooks(Protocol):
    """What a provider call may report back while it runs (a `JobContext` satisfies it)."""

    async def progress(self, message: str, fraction: float | None = None) -> None: ...

    async def remember(self, **provider_ref: Any) -> None: ...

    async def charged(self, credits: float, *, basis: ChargeBasis = "reported") -> None: ...


@dataclass(frozen=True)
class ProviderImage:
    """One downloaded result image.

    `meta` is shown to the model per image (e.g. `res_age`); `ref` is kept for chaining
    (e.g. YouCam's `dst_id`, so a later YouCam task needs no second upload).
    """

    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    ref: dict[str, Any] = field(default_factory=dict)
    # Made from the pixels before they were encoded (an offline edit), so saving needs no decode.
    preview: Preview | None = None


@dataclass(frozen=True)
class Balance:
    """A provider's credit balance as far as its API tells (`amount` None when unknown)."""

    amount: float | None
    detail: str
    entries: list[dict[str, Any]] = field(default_factory=list)
