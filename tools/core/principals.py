"""Who is calling: the principal every job, result, upload and ledger entry records, and scopes.

    principal   a string naming one person: an OAuth token's issuer and subject, or
                STATIC_PRINCIPAL for PHOTO_MCP_AUTH_TOKEN; None for the machine's own user
                (stdio, or loopback HTTP without auth)
    ANYONE      look-ups that act for no caller (resuming jobs, re-indexing): they see every row
    CALLER      "the principal of the request being served" (the `caller` context variable,
                set by the server adapter); ANYONE outside a request

Ownership is strict equality (SQL `principal IS ?`): a row is shown only to the principal that
made it, and another person's id answers exactly like an unknown one. Rows made on stdio have no
principal and stay the local user's.

Scopes (OAuth; the static token and stdio have all of them):

    photo:read   results, jobs, catalogs, credits (reading what is already there)
    photo:edit   tools that make new results without spending (the offline provider)
    photo:spend  paid provider calls
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from tools.core.errors import PhotoError

READ: Final = "photo:read"
EDIT: Final = "photo:edit"
SPEND: Final = "photo:spend"
ALL_SCOPES: Final = (READ, EDIT, SPEND)
WHAT = {READ: "reading results and jobs", EDIT: "making new images with free tools", SPEND: "paid provider calls"}
STATIC_PRINCIPAL: Final = "static-token"


class _Anyone:
    def __repr__(self) -> str:
        return "ANYONE"


class _Caller:
    def __repr__(self) -> str:
        return "CALLER"


ANYONE: Final = _Anyone()
CALLER: Final = _Caller()
Owner = str | _Anyone | _Caller | None

# The principal of the request being served; the adapter sets it around each tool call and
# resource read, so every look-up made for that request is scoped to its caller.
caller: ContextVar[str | _Anyone | None] = ContextVar("photo_mcp_caller", default=ANYONE)


def owner_of(owner: Owner) -> str | _Anyone | None:
    """`owner` with CALLER replaced by the current request's principal."""
    return caller.get() if isinstance(owner, _Caller) else owner


def owned(owner: Owner, column: str = "principal") -> tuple[str, tuple[str | None, ...]]:
    """An SQL condition (and its arguments) that keeps only `owner`'s rows."""
    who = owner_of(owner)
    if isinstance(who, _Anyone):
        return "1=1", ()
    return f"{column} IS ?", (who,)


def visible_to(row_principal: str | None, owner: Owner) -> bool:
    who = owner_of(owner)
    return isinstance(who, _Anyone) or row_principal == who


class MissingScope(PhotoError):
    """The caller's access token lacks the OAuth scope this call needs."""

    def __init__(self, scope: str, hint: str = "") -> None:
        super().__init__(
            f"This call needs the OAuth scope '{scope}' ({WHAT.get(scope, scope)}), which your access token "
            f"does not grant.{(' ' + hint) if hint else ''} Ask the server's operator to grant '{scope}' to your "
            "account, then sign in again so the new token carries it."
        )
        self.scope = scope


@contextmanager
def acting_for(principal: str | None) -> Iterator[None]:
    """Scope every look-up made inside (and in jobs started inside) to `principal`."""
    token = caller.set(principal)
    try:
        yield
    finally:
        caller.reset(token)
