"""How values the caller sent are echoed back in messages: shortened, never whole.

A 20-million-character `photo://` id or URL host must not come back in an error (it floods
the model's context and turns errors into an amplifier); the start and end are enough to
recognise it.
"""

from __future__ import annotations


def shorten(value: object, keep: int = 40) -> str:
    """`value` as text, at most about 2 × `keep` characters: head…tail (N characters)."""
    text = str(value)
    if len(text) <= 2 * keep + 20:
        return text
    return f"{text[:keep]}…{text[-keep:]} ({len(text)} characters)"


def quoted(value: object, keep: int = 40) -> str:
    """`shorten`, in quotes, with control characters escaped (repr-style)."""
    return repr(shorten(value, keep))
