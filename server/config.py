"""Loading settings: environment and `.env`, with the transport deciding defaults.

Built in `main()`, never at import time.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tools.core.settings import Settings, Transport


class ConfigError(Exception):
    """The settings are invalid; the message names the variable to fix."""


def load_settings(transport: Transport = "stdio", **overrides: Any) -> Settings:
    """Read the environment (and `.env`) for `transport`.

    Raises:
        ConfigError: naming the invalid variables.
    """
    try:
        return Settings(transport=transport, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Invalid configuration: {problems}") from None


def mask(secret: str | None) -> str:
    """Show that a key is set without showing it."""
    if not secret:
        return "not set"
    return f"set ({len(secret)} characters)"
