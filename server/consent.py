"""Spend consent: the person says yes before a paid call runs.

Caps stop runaway spend; only a person saying yes is consent. A paid tool declares its quote
(`@tool(quote=priced(...))`); its MCP-facing signature gets a `consent` parameter filled by the
SDK's `Resolve` machinery before the tool body runs, so nothing reaches a provider until the
answer is in. `Resolve` + `Elicit` speak both protocol eras: a standalone `elicitation/create`
mid-call up to 2025-11-25, an `InputRequiredResult` round on 2026-07-28.

    the estimate             the client                      what happens
    free, or below the       any                             runs (caps only)
      threshold
    at/above the threshold   can elicit (form)               asks: accept runs it; decline or
                                                             cancel sends nothing and says so
    at/above the threshold   cannot elicit                   runs (caps only), or is refused when
                                                             PHOTO_MCP_REQUIRE_CONSENT=true

The threshold is PHOTO_MCP_CONFIRM_ABOVE (at or above that many credits); unset, any call costing
more than the cheapest paid operation (above 1 credit) asks.

When a provider key is missing or its credits run out, a client that supports URL-mode
elicitation is offered the provider's console (never a key through the model): a standalone
`elicitation/create` up to 2025-11-25, one input_required round on 2026-07-28 (`ConsoleOffers`,
whose retry returns the original error without running anything again). Any other client gets
the setup message only.
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import (
    AcceptedElicitation,
    Elicit,
    ElicitationResult,
)
from mcp.server.request_state import RequestStateSecurity
from mcp_types import CallToolResult, ElicitRequest, ElicitRequestURLParams, InputRequiredResult, TextContent
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from server.auth import caller_identity
from tools import providers
from tools.core.budget import amount
from tools.core.errors import BudgetExceeded, PhotoError
from tools.core.settings import Settings
from tools.toolkit.quote import Quote, QuoteFn, cheapest_paid
from tools.toolkit.render import Credits, ToolOutput

log = logging.getLogger("photo_mcp.consent")
CONSOLE_KEY = "photo-mcp/console"  # the input request key of a console offer (2026-07-28)
_STATE_TAG = "photo_mcp_console_result"
_offers: ContextVar[list[tuple[str, str]] | None] = ContextVar("photo_mcp_console_offers", default=None)

# Where a person gets a key or buys credits: opened by the client's browser, never by the model.
CONSOLES = {
    "aluo": "https://aluo.ai",
    "youcam": "https://yce.perfectcorp.com",
    "removedo": "https://www.removedo.com",
}


class Approve(BaseModel):
    """The consent form: accepting it is the answer; unticking the box declines."""

    confirm: bool = Field(default=True, title="Spend the credits", description="Accept to run it, decline to stop")


@dataclass(frozen=True)
class NotAsked:
    """The resolver's answer when no question was asked (free, below the threshold, no quote, or
    a client that cannot ask): the call goes ahead under the caps."""

    reason: str


def threshold(settings: Settings) -> tuple[float, bool]:
    """(credits, inclusive): a call asks when its estimate is >= (or >) this many credits."""
    if settings.confirm_above is None:
        return cheapest_paid(settings), False
    return settings.confirm_above, True


def needs_consent(settings: Settings, credits: float) -> bool:
    if credits <= 0:
        return False
    limit, inclusive = threshold(settings)
    return credits >= limit if inclusive else credits > limit


def is_modern(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def can_elicit(ctx: Context, mode: str = "form") -> bool:
    """Whether the client can show this request's question: it declared the mode, and on the
    handshake era the connection can carry a server-to-client request."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None:
        return False
    if mode == "form":
        # A bare `elicitation: {}` is form support; url-only is not.
        declared = elicitation.form is not None or elicitation.url is None
    else:
        declared = elicitation.url is not None
    if not declared:
        return False
    return is_modern(ctx) or ctx.session.can_send_request


def _provider_names(names: tuple[str, ...]) -> str:
    titles = [providers.info(n).title for n in names]
    if len(titles) == 1:
        return titles[0]
    return f"{titles[0]} (or, if it cannot run, {', '.join(titles[1:])})"


def _subject(args: dict[str, Any]) -> str:
    """The call's prompt, shortened, so the person sees what the credits are for."""
    prompt = args.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return ""
    text = " ".join(prompt.split())
    return f' "{text[:80]}…"' if len(text) > 80 else f' "{text}"'


def question(
    title: str, quote: Quote, spent: float, settings: Settings, args: dict[str, Any] | None = None, *, own: bool = False
) -> str:
    """The consent question. `own`: `spent` is the caller's own (a multi-user server), not the server's."""
    limit = settings.max_credits_per_day_per_user if own else None
    limit = settings.max_credits_per_day if limit is None else limit
    cap = f" of a daily cap of {limit:g}" if limit is not None else ""
    whose = "Your spend today" if own else "Today's spend so far"
    units = f" ({quote.units} images)" if quote.units > 1 else ""
    return (
        f"{title}{_subject(args or {})}: run {quote.operation}{units} on {_provider_names(quote.providers)} for about "
        f"{amount(quote.credits)}? {whose}: {amount(spent)}{cap}. "
        "Nothing is sent to the provider until you accept."
    )


def resolver_for(name: str, title: str, quote: QuoteFn, arg_names: list[str]) -> Callable[..., Any]:
    """The `Resolve` function of one paid tool: its quote from the call's arguments, then the
    question (or `NotAsked`).

    Raises (from the resolver):
        ToolError: consent is required and the client cannot ask (nothing is sent).
    """

    async def resolver(ctx: Context, **args: Any) -> Elicit[Approve] | NotAsked:
        rt = ctx.request_context.lifespan_context
        settings: Settings = rt.settings
        try:
            q = quote(settings, **args)
        except PhotoError:  # not set up here: the tool answers with its setup message, nothing is sent
            return NotAsked("no provider can run it here")
        if not needs_consent(settings, q.credits):
            return NotAsked("below the confirmation threshold")
        try:
            await rt.ledger.check(q.credits)
        except BudgetExceeded:  # the caps refuse it anyway (nothing is sent): don't ask for nothing
            return NotAsked("over a credit cap")
        # A retry round carrying answers was asked before: the recorded answer decides, whatever
        # capabilities this round declares (never run unasked on a round that follows a question).
        answered = is_modern(ctx) and any(k.split("#")[0] == wire_key for k in ctx.input_responses or {})
        if not can_elicit(ctx) and not answered:
            if settings.require_consent:
                raise ToolError(
                    f"Not run: {q.operation} on {_provider_names(q.providers)} would spend about {q.credits:g} "
                    "credits, this server requires the person's confirmation (PHOTO_MCP_REQUIRE_CONSENT), and "
                    "this client cannot ask (it declares no elicitation support). Nothing was sent."
                )
            return NotAsked("the client cannot ask")
        # A multi-user server shows each person their own spend (never the others'); else the server's.
        principal = caller_identity(settings)[0]
        if principal is None:
            spent = await rt.ledger.spent_today()
        else:
            spent = await rt.ledger.spent_today(principal=principal)
        return Elicit(question(title, q, spent, settings, args, own=principal is not None), Approve)

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in arg_names]
    resolver.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    resolver.__annotations__ = {"ctx": Context}
    # The wire key of the question (`module:qualname`): one per tool, stable across processes.
    resolver.__qualname__ = f"consent.{name}"
    wire_key = f"{__name__}:{resolver.__qualname__}"
    return resolver


def approved(outcome: ElicitationResult[Any]) -> bool:
    if not isinstance(outcome, AcceptedElicitation):
        return False
    data = outcome.data
    return not isinstance(data, Approve) or data.confirm


def refused_result(quote: QuoteFn, settings: Settings, args: dict[str, Any], outcome: ElicitationResult[Any]) -> Any:
    """The result of a declined or dismissed question: nothing ran, nothing was sent, and it says so."""
    try:
        q = quote(settings, **args)
    except PhotoError:
        q = Quote(quote.operation, quote.wanted(settings, **args), 0.0)
    how = "dismissed without an answer" if outcome.action == "cancel" else "declined"
    message = (
        f"Not run: the person {how} spending about {amount(q.credits)} on {q.operation} "
        f"({_provider_names(q.providers)}). Nothing was sent to the provider and no credits were spent. "
        "Do not retry unless they ask for it."
    )
    out = ToolOutput(
        job_id="",
        status="cancelled",
        provider=q.providers[0],
        operation=q.operation,
        credits=Credits(estimated=q.credits, charged=0),
        elapsed_s=0.0,
        message=message,
        details={"consent": outcome.action if outcome.action != "accept" else "decline"},
    )
    return CallToolResult(
        content=[TextContent(type="text", text=message)], structured_content=out.model_dump(mode="json")
    )


# -- provider console offers (URL-mode elicitation) ---------------------------------------------------


def console_offer(provider: str, why: str) -> tuple[str, str] | None:
    """(message, url) offering `provider`'s console, or None when it has none."""
    url = CONSOLES.get(provider)
    if url is None:
        return None
    title = providers.info(provider).title
    setting = " and ".join(providers.info(provider).env)
    if why == "credits":
        text = f"{title} is out of credits. Open its console to add credits, then ask again."
    elif why == "rejected":
        text = (
            f"{title} rejected the configured API key. Open its console to check or create a key, then update "
            f"{setting} in the server's environment (never paste a key into the chat)."
        )
    else:
        text = (
            f"{title} is not set up on this server. Open its console to get an API key, then set {setting} in "
            "the server's environment (never paste a key into the chat)."
        )
    return text, url


async def offer_console(ctx: Context, provider: str, why: str) -> bool:
    """Offer `provider`'s console by URL-mode elicitation where the client supports it.

    Handshake era: a standalone `elicitation/create` now (True if the person accepted). 2026-07-28:
    noted for `ConsoleOffers`, which turns this call's error result into an input_required round.
    """
    offer = console_offer(provider, why)
    if offer is None or not can_elicit(ctx, "url"):
        return False
    if is_modern(ctx):
        pending = _offers.get()
        if pending is not None and CONSOLE_KEY not in (ctx.input_responses or {}):
            pending.append(offer)
        return False
    try:
        result = await ctx.elicit_url(offer[0], offer[1], "console-" + secrets.token_hex(8))
    except Exception as exc:  # the offer is a courtesy: its failure must not hide the real error
        log.info("The console offer for %s was not shown (%s).", provider, type(exc).__name__)
        return False
    return result.action == "accept"


class ConsoleOffers:
    """Server middleware (2026-07-28): a tools/call that failed for a missing key or credits, from a
    client that declares URL-mode elicitation, answers with one input_required round offering the
    provider's console; the retry gets the original error result back (kept in the sealed request
    state), so nothing runs twice."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return await call_next(ctx)
        params = ctx.params or {}
        kept = _kept_result(params.get("requestState"))
        if kept is not None and CONSOLE_KEY in (params.get("inputResponses") or {}):
            return kept
        pending: list[tuple[str, str]] = []
        token = _offers.set(pending)
        try:
            result = await call_next(ctx)
        finally:
            _offers.reset(token)
        if not pending or isinstance(result, InputRequiredResult):
            return result
        message, url = pending[0]
        wire = (
            result.model_dump(by_alias=True, mode="json", exclude_none=True)
            if isinstance(result, BaseModel)
            else result
        )
        request = ElicitRequest(params=ElicitRequestURLParams(message=message, url=url))
        return InputRequiredResult(input_requests={CONSOLE_KEY: request}, request_state=json.dumps({_STATE_TAG: wire}))


def _kept_result(state: Any) -> dict[str, Any] | None:
    if not isinstance(state, str) or _STATE_TAG not in state:
        return None
    try:
        kept = json.loads(state).get(_STATE_TAG)
    except (ValueError, AttributeError):
        return None
    return kept if isinstance(kept, dict) else None


def failed_provider(result: Any) -> tuple[str, str] | None:
    """(provider, why) of a result that failed for a key or credits problem, else None."""
    sc = getattr(result, "structured_content", None)
    if not getattr(result, "is_error", False) or not isinstance(sc, dict):
        return None
    kind = (sc.get("details") or {}).get("error_kind")
    if kind == "OutOfCredits":
        return sc.get("provider", ""), "credits"
    if kind == "AuthFailed":
        return sc.get("provider", ""), "rejected"
    return None


# -- sealed request state -----------------------------------------------------------------------------


def request_state_security(settings: Settings) -> RequestStateSecurity | None:
    """Shared keys for the 2026-07-28 request state (PHOTO_MCP_REQUEST_STATE_KEYS), or None for
    the SDK's per-process key. Every process that may answer one conversation needs the same keys.

    Raises:
        ValueError: a key shorter than 32 characters.
    """
    if settings.request_state_keys is None:
        return None
    keys = [k.strip() for k in settings.request_state_keys.get_secret_value().split(",") if k.strip()]
    if not keys:
        return None
    if any(len(k.encode()) < 32 for k in keys):
        raise ValueError("PHOTO_MCP_REQUEST_STATE_KEYS: every key needs at least 32 characters (random ones)")
    return RequestStateSecurity(keys=keys)
