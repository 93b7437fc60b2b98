"""Provider keys in text: stripped on load, scrubbed from anything a provider echoes back.

A provider may quote the Authorization header in an error body, split, upper-cased, HTML- or
percent-encoded on the way; `Scrubber` removes every such variant before the text reaches a
message, a log line or a tool result.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from tools.core.errors import NotConfigured

# Characters a key may be split with in provider text: whitespace, zero-width characters, and their
# percent-, entity- and escape-encoded forms.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_GAP = (
    r"(?:[\s" + _INVISIBLE + r"]|\+|%(?:2[0B]|0[9AD]|E2%80%8[BCD]|E2%81%A0|EF%BB%BF|C2%AD)"
    r"|&(?:nbsp|zwsp|zwj|zwnj|shy|#(?:x0*(?:20|9|a|d|200b|200c|200d|2060|feff|ad)|0*(?:32|9|10|13|8203|8204|8205|8288|65279|173)));?"
    r"|\\u(?:0020|200[bcd]|2060|feff|00ad)|\\[nrt])*"
)
_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos", "/": "sol", "=": "equals", "+": "plus"}
MIN_SECRET = 8  # shorter values are not scrubbed (they would match ordinary text)


def _char(c: str) -> str:
    """A regex for one character of a secret in any common encoding, any case."""
    forms = {re.escape(c.lower()), re.escape(c.upper())}
    for ch in {c.lower(), c.upper()}:
        code = ord(ch)
        forms |= {f"%{code:02x}", f"&#0*{code};?", f"&#x0*{code:x};?", f"\\\\u{code:04x}", f"\\\\x{code:02x}"}
        if ch in _NAMED:
            forms.add(f"&{_NAMED[ch]};")
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


class Scrubber:
    """Removes configured secrets from text a provider sent back (errors, echoed bodies).

    Matches case-insensitively and across the variants a key takes on the way: split by
    whitespace or zero-width characters, HTML entities (`&#115;`, `&#x73;`, `&amp;`),
    percent-encoding (`%73`) and `\\uXXXX` escapes, mixed freely.
    """

    def __init__(self, secrets: Iterable[str | None], mask: str = "…") -> None:
        self._mask = mask
        values = sorted({s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET}, key=len, reverse=True)
        self._plain = values
        self._pattern = (
            re.compile("|".join(_GAP.join(_char(c) for c in value) for value in values), re.IGNORECASE)
            if values
            else None
        )

    def __call__(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        for value in self._plain:  # the common case, cheaply
            text = text.replace(value, self._mask)
        decoded = html.unescape(text)
        out = self._pattern.sub(self._mask, text)
        if decoded != text and self._pattern.search(decoded):
            # An encoding the pattern did not cover inline (e.g. entities split mid-way): show decoded text.
            out = self._pattern.sub(self._mask, decoded)
        return out


def strip_key(value: str | None) -> str:
    """A key as configured, without the whitespace and newlines that copying adds."""
    return (value or "").strip().strip(_INVISIBLE).strip()


def required_key(secret: Any, missing: str) -> str:
    """The stripped value of a `SecretStr` setting.

    Raises:
        NotConfigured: it is unset or blank (`missing` is the setup message).
    """
    key = strip_key(secret.get_secret_value() if secret is not None else "")
    if not key:
        raise NotConfigured(missing)
    return key
