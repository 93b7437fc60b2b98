"""Loading settings: environment and `.env`, with the transport deciding defaults.

Built in `main()`, never at import time. The `.env` file is read only from the user's config
directory (`platformdirs.user_config_path("photo-mcp")`, e.g. `~/.config/photo-mcp/.env`) or
from an explicit `--env-file`, never from the working directory: IDE hosts start servers in
the workspace, and a repository's `.env` must not redirect the user's keys or open the guards.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from dotenv import dotenv_values
from pydantic import ValidationError

from tools.core.settings import Settings, Transport

log = logging.getLogger("photo_mcp.config")

# Settings that redirect where keys are sent or widen what the server may reach: when a file
# sets them, the operator is told (the value shown; these are never secrets).
GUARD_SWITCHES = ("PHOTO_MCP_ALLOW_PRIVATE_URLS", "PHOTO_MCP_ALLOWED_DIRS", "PHOTO_MCP_ALLOWED_HOSTS")
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


class ConfigError(Exception):
    """The settings are invalid; the message names the variable to fix."""


def default_env_file() -> Path:
    """Where the user's own `.env` lives (Linux: ~/.config/photo-mcp/.env)."""
    return platformdirs.user_config_path("photo-mcp", appauthor=False) / ".env"


def load_settings(transport: Transport = "stdio", *, env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the environment (and the user's `.env`, or `env_file`) for `transport`.

    Raises:
        ConfigError: naming the invalid variables, or an `env_file` that does not exist.
    """
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"--env-file {env_file}: no such file.")
    path = env_file if env_file is not None else default_env_file()
    source = path if path.is_file() else None
    if source is not None:
        _warn_about_overrides(source)
    try:
        return Settings(_env_file=source, transport=transport, **overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}") from None


def _warn_about_overrides(path: Path) -> None:
    """Log base-URL overrides and guard switches that `path` sets (and the environment does not)."""
    try:
        values = dotenv_values(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.") from None
    environ = {k.upper() for k in os.environ}
    for name, value in values.items():
        key = name.upper()
        if key in environ or any(word in key for word in _SECRET_WORDS):
            continue  # the environment wins over the file; secrets are never shown
        if key.endswith("_BASE_URL") or key in GUARD_SWITCHES:
            log.warning("%s sets %s=%s", path, key, _shown(value or ""))


def _shown(value: str, keep: int = 200) -> str:
    """A value fit for a log line: credentials in a URL dropped, long values shortened."""
    try:
        parts = urlsplit(value.strip())
        if parts.password is not None or parts.username is not None:
            host = parts.hostname or ""
            netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
            value = urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return value if len(value) <= keep else value[:keep] + "…"


def _variable(loc: tuple[Any, ...]) -> str:
    """The environment variable a validation error is about (PHOTO_MCP_AUTH_TOKEN, ALUO_BASE_URL, ...)."""
    if not loc:
        return "settings"
    name = str(loc[0])
    field = Settings.model_fields.get(name)
    alias = getattr(field, "validation_alias", None) if field else None
    choices = getattr(alias, "choices", None)
    if choices:
        return str(choices[0]).upper()
    if field is None:
        return name.upper()  # an alias itself (e.g. ALUO_BASE_URL)
    return f"PHOTO_MCP_{name.upper()}"


def mask(secret: str | None) -> str:
    """Show that a key is set without showing it."""
    if not secret:
        return "not set"
    return f"set ({len(secret)} characters)"
