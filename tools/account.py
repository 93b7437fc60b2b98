"""check_credits: provider balances plus this server's own spend ledger."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tools import providers
from tools.core.errors import PhotoError
from tools.toolkit.declare import tool
from tools.toolkit.params import READ_ONLY_REMOTE
from tools.toolkit.run import Call


class ProviderCredits(BaseModel):
    provider: str
    configured: bool
    balance: float | None = Field(description="Credits left, when the provider tells (None = unknown)")
    detail: str
    entries: list[dict[str, Any]] = Field(default_factory=list)
    spent_today_here: float = Field(description="Credits you spent today on this provider through this server")


class CreditsReport(BaseModel):
    providers: list[ProviderCredits]
    spent_today_here: float
    caps: dict[str, float | None]


@tool(title="Check credits", annotations=READ_ONLY_REMOTE)
async def check_credits(
    call: Call,
    provider: Annotated[
        Literal["all", "aluo", "youcam", "removedo"], Field(description="Which provider, or all")
    ] = "all",
) -> CreditsReport:
    """Report credit balances and what you spent today through this server. Free (no paid calls).

    YouCam: live balance (sum of unexpired credits, with expiry dates). Aluo: the last
    `credits_remaining` it reported (its API has no balance endpoint). Removedo: no
    balance endpoint; only this server's own ledger. Also shows the configured caps.
    """
    rt = call.runtime
    rows = []
    for name in providers.HOSTED if provider == "all" else (provider,):
        spent = await rt.ledger.spent_today(name, principal=call.principal)
        if not providers.configured(rt.settings, name):
            rows.append(
                ProviderCredits(
                    provider=name, configured=False, balance=None, detail="not configured", spent_today_here=spent
                )
            )
            continue
        try:
            balance = await (await rt.client(name)).balance()
        except PhotoError as exc:
            rows.append(
                ProviderCredits(
                    provider=name,
                    configured=True,
                    balance=None,
                    detail=f"could not read the balance: {exc.message}",
                    spent_today_here=spent,
                )
            )
            continue
        rows.append(
            ProviderCredits(
                provider=name,
                configured=True,
                balance=balance.amount,
                detail=balance.detail,
                entries=balance.entries,
                spent_today_here=spent,
            )
        )
    return CreditsReport(
        providers=rows,
        spent_today_here=await rt.ledger.spent_today(principal=call.principal),
        caps={
            "per_call": rt.settings.max_credits_per_call,
            "per_day": rt.settings.max_credits_per_day,
            "per_day_per_user": rt.settings.max_credits_per_day_per_user,
        },
    )
