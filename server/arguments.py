"""Tool arguments as a person types them: typos named, common aliases taken, errors in one sentence.

Checked against the tool's own input schema before the SDK validates them:

- an argument the tool does not have is refused, naming the closest one it does have
  (`maxside` → `max_side`), instead of being silently ignored;
- a value that is unambiguously one of an enum's choices is taken as it (`jpg` → `jpeg`,
  `PNG` → `png`);
- a validation error comes back as one sentence per argument that says what to change, not
  pydantic's report.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tools.core.echo import shorten

# Spellings people use for one choice; taken only when exactly one of them is offered.
ALIASES = {"jpg": ("jpeg",), "jpeg": ("jpg",), "tif": ("tiff",), "tiff": ("tif",)}


class ArgumentProblem(Exception):
    """The arguments cannot be used; the message says what to change."""


def _choices(schema: Mapping[str, Any]) -> list[Any] | None:
    """The enum of a property, also through `anyOf` (an optional enum) and `const`s."""
    if "enum" in schema:
        return list(schema["enum"])
    for option in schema.get("anyOf", ()):
        if "enum" in option:
            return list(option["enum"])
    return None


def _normalise(value: Any, choices: list[Any]) -> Any:
    if not isinstance(value, str) or value in choices:
        return value
    text = value.strip().lower()
    wanted = [c for c in choices if isinstance(c, str) and c.lower() == text]
    wanted = wanted or [c for c in choices if isinstance(c, str) and c in ALIASES.get(text, ())]
    return wanted[0] if len(wanted) == 1 else value


def check(tool: str, arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """`arguments` with unambiguous aliases resolved.

    Raises:
        ArgumentProblem: an argument the tool does not have.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    unknown = [name for name in arguments if name not in properties]
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(properties), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ArgumentProblem(
            f"{tool} has no argument {shorten(name, 60)!r}.{hint} Its arguments are: {', '.join(properties)}."
        )
    out = dict(arguments)
    for name, value in arguments.items():
        choices = _choices(properties[name])
        if choices is not None:
            out[name] = _normalise(value, choices)
    return out


def _what(err: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
    name = loc[0] if loc else "the arguments"
    prop: Mapping[str, Any] = (schema.get("properties") or {}).get(name, {})
    kind = err.get("type", "")
    given = err.get("input")
    shown = f" (got {shorten(repr(given), 60)})" if "input" in err and kind != "missing" else ""
    choices = _choices(prop)
    if kind == "missing":
        return f"{name} is required" + (f" ({prop['description'].rstrip('.')})" if prop.get("description") else "")
    if choices is not None and kind in ("literal_error", "enum"):
        return f"{name} must be one of {', '.join(map(str, choices))}{shown}"
    where = "".join(f"[{p}]" for p in loc[1:])
    return f"{name}{where}: {err.get('msg', 'invalid').rstrip('.')}{shown}"


def explain(tool: str, exc: ValidationError, schema: Mapping[str, Any]) -> str:
    """One sentence naming every argument to change and how."""
    problems = "; ".join(dict.fromkeys(_what(e, schema) for e in exc.errors()))
    return f"{tool} cannot use these arguments: {problems}. Change them and call it again."
