"""Declaring a tool: a plain module-level async function, marked with what a menu shows.

    @tool(title="Resize an image", annotations=LOCAL_EDIT)
    async def resize_image(call: Call, image: ImageRef, max_side: int | None = None) -> Result:
        '''The description the model reads.'''

The first parameter is the `Call` (the runtime and the caller's progress channel); the others
are the tool's arguments, typed and described for its input schema; the return annotation is
its output schema. The function stays importable and callable as it is (a test passes a
`Call` of its own); `tools_of(module)` lists a module's tools for the server to register.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from mcp_types import ToolAnnotations

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__photo_tool__"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    annotations: ToolAnnotations
    description: str
    # A paid tool's price from its arguments (tools.toolkit.quote): what spend consent asks about.
    quote: Callable[..., Any] | None = None


def tool(*, title: str, annotations: ToolAnnotations, quote: Callable[..., Any] | None = None) -> Callable[[F], F]:
    """Mark `fn` as a tool; it is returned unchanged. `quote`: see `tools.toolkit.quote.priced`."""

    def mark(fn: F) -> F:
        # The docstring is the description the model reads: no source indentation in it.
        spec = ToolSpec(fn.__name__, title, annotations, inspect.cleandoc(fn.__doc__ or ""), quote)

        setattr(fn, _MARK, spec)
        return fn

    return mark


def spec_of(fn: Callable[..., Any]) -> ToolSpec:
    """Raises:
    AttributeError: `fn` is not a tool.
    """
    return getattr(fn, _MARK)


def tools_of(module: ModuleType) -> list[Callable[..., Any]]:
    """The tools a module defines, in source order."""
    found = [v for v in vars(module).values() if callable(v) and hasattr(v, _MARK) and v.__module__ == module.__name__]
    return sorted(found, key=lambda fn: fn.__code__.co_firstlineno)
