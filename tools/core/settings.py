"""Settings: environment variables (and a `.env` from the user's config dir), built once in `main()`.

Server settings live under `PHOTO_MCP_`; provider keys keep their vendors' names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Transport = Literal["stdio", "sse", "http"]
PreviewMode = Literal["none", "preview", "full"]
BACKGROUND_PROVIDERS = ("aluo", "youcam", "removedo", "local")
MIN_TOKEN_LENGTH = 16  # PHOTO_MCP_AUTH_TOKEN: shorter ones are refused at load


def _default_data_dir() -> Path:
    return platformdirs.user_data_path("photo-mcp", appauthor=False)


def _env(name: str) -> Any:
    # Provider keys keep the vendor's variable name (no PHOTO_MCP_ prefix).
    return Field(default=None, validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    """Everything configurable. See the README's settings table."""

    # No `.env` by default: a workspace's `.env` in the cwd must not redirect keys or widen the
    # guards. server.config.load_settings passes the user's config-dir file or `--env-file`.
    model_config = SettingsConfigDict(env_prefix="PHOTO_MCP_", env_file=None, extra="ignore", populate_by_name=True)

    transport: Transport = "stdio"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    data_dir: Path = Field(default_factory=_default_data_dir)
    output_dir: Path | None = None
    allowed_dirs: Annotated[list[Path] | None, NoDecode] = None
    # Over HTTP with OAuth, each person's own folders (JSON: {"<subject or issuer#subject>": ["/srv/photos/ann"]}).
    allowed_dirs_per_user: dict[str, list[Path]] = Field(default_factory=dict)
    wait_seconds: float = Field(default=45.0, gt=0, le=3600)
    preview: PreviewMode = "preview"
    preview_size: int = Field(default=512, ge=32, le=4096)
    # Every inline image of one result together (base64 and JSON included): Claude Desktop refuses
    # tool results over 1 MiB, fastmcp's client one SSE event over 1 MiB.
    max_inline_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    max_credits_per_call: float | None = Field(default=None, ge=0)
    max_credits_per_day: float | None = Field(default=None, ge=0)
    # The same daily cap for each principal (an OAuth subject, the static token, the local user).
    max_credits_per_day_per_user: float | None = Field(default=None, ge=0)
    auth_token: SecretStr | None = None
    # OAuth 2.1 resource server (server/auth.py): on when PHOTO_MCP_OAUTH_ISSUER is set. Tokens are
    # checked for this issuer, this audience (the server's own resource URL, RFC 8707: default
    # PHOTO_MCP_PUBLIC_URL + "/mcp"), expiry and scopes, by signature against the issuer's JWKS
    # (PHOTO_MCP_OAUTH_JWKS_URL, else found in its metadata) or by introspection (RFC 7662).
    oauth_issuer: str | None = None
    oauth_audience: str | None = None
    oauth_required_scopes: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["photo:read"])
    oauth_jwks_url: str | None = None
    oauth_introspection_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_algorithms: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["RS256", "ES256", "PS256"])
    oauth_leeway: float = Field(default=30.0, ge=0, le=600)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allow_private_urls: bool = False
    # Provider result URLs over plain http (https only otherwise). Unset: only when the provider's
    # own API is configured as http (a local fake or proxy).
    provider_download_http: bool | None = None
    # HTTP transports: caps (connections beyond the cap evict idle or slow ones first; MCP sessions
    # beyond it evict the least recently used idle one; event streams beyond it get 503) and
    # read deadlines in seconds (unfinished headers get 408 and are closed; so is a stalled body).
    max_connections: int = Field(default=500, ge=4, le=100_000)
    max_sessions: int = Field(default=200, ge=1, le=100_000)
    max_sessions_per_token: int | None = Field(default=None, ge=1, le=100_000)  # unset: max_sessions
    max_streams: int = Field(default=100, ge=1, le=100_000)
    header_timeout: float = Field(default=15.0, gt=0, le=600)
    body_timeout: float = Field(default=120.0, gt=0, le=3600)
    keep_alive_timeout: float = Field(default=5.0, gt=0, le=600)
    public_url: str | None = None
    # Spend consent: ask the person before a paid call estimated at or above this many credits
    # (unset: any call costing more than the cheapest operation, i.e. above 1 credit).
    confirm_above: float | None = Field(default=None, ge=0)
    # Refuse paid calls outright when the client cannot ask the person (no elicitation).
    require_consent: bool = False
    # Keys sealing the 2026-07-28 request state, comma-separated (the first seals, all unseal): the
    # same on every process that may answer one conversation. Unset: a key of this process only.
    request_state_keys: SecretStr | None = None
    # Signed download links (with PHOTO_MCP_PUBLIC_URL): lifetime in seconds, and the HMAC key
    # (unset: generated once and kept in the data dir, owner-only).
    link_ttl: float = Field(default=3600.0, gt=0, le=7 * 86400)
    link_key: SecretStr | None = None
    # A request declaring the Tasks extension waits this long before its job becomes a task.
    task_after: float = Field(default=1.0, ge=0, le=60)

    background_providers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(BACKGROUND_PROVIDERS))
    max_pixels: int = Field(default=100_000_000, ge=1)
    max_download_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # The result store's size quota in MB (oldest results no running job needs are removed first),
    # and the most one call may write (a 0.58 MB request must not write 126 MB).
    max_store_mb: float = Field(default=2048.0, gt=0)
    max_result_mb: float = Field(default=64.0, gt=0)
    # Servers sharing a data dir: a server whose heartbeat is older than this is gone, and its
    # unfinished jobs are taken over (at once when its process is known to have exited).
    lease_seconds: float = Field(default=30.0, ge=0.5, le=3600)
    download_timeout: float = Field(default=30.0, gt=0)
    retry_base_delay: float = Field(default=0.5, ge=0, le=10)
    # Read/write timeout of one provider API request (connect stays at most 10 s).
    provider_timeout: float = Field(default=60.0, gt=0, le=600)

    aluo_api_key: SecretStr | None = _env("ALUO_API_KEY")
    aluo_base_url: str = Field(default="https://api.aluo.ai/api", validation_alias=AliasChoices("ALUO_BASE_URL"))
    youcam_api_key: SecretStr | None = _env("YOUCAM_API_KEY")
    youcam_secret_key: SecretStr | None = _env("YOUCAM_SECRET_KEY")
    youcam_base_url: str = Field(
        default="https://yce-api-01.makeupar.com", validation_alias=AliasChoices("YOUCAM_BASE_URL")
    )
    removedo_api_key: SecretStr | None = _env("REMOVEDO_API_KEY")
    removedo_base_url: str = Field(
        default="https://www.removedo.com", validation_alias=AliasChoices("REMOVEDO_BASE_URL")
    )
    # aluo
    aluo_poll_interval: float = Field(default=2.0, gt=0, le=60)
    # Stop waiting for one Aluo edit/generation task after this long (it may still finish and charge).
    aluo_max_wait: float = Field(default=600.0, gt=0, le=3600)
    # The Aluo plan the key belongs to (PHOTO_MCP_ALUO_PLAN): its published prices drive estimates and caps.
    aluo_plan: Literal["free", "pro"] = "free"
    # removedo
    removedo_poll_interval: float = Field(default=3.0, gt=0, le=60)
    # Slower fallback polling while a webhook is expected (the webhook wakes the poller at once).
    removedo_webhook_poll_interval: float = Field(default=15.0, gt=0, le=300)
    # youcam
    # Sliding windows "count/seconds,...": the documented 100 per 60 s per token and 100 per 300 s per IP.
    youcam_rate_limits: str = Field(
        default="100/60,100/300",
        validation_alias=AliasChoices("YOUCAM_RATE_LIMITS", "PHOTO_MCP_YOUCAM_RATE_LIMITS"),
        pattern=r"^\s*(|off|none|\d+\s*/\s*\d+(\.\d+)?\s*(,\s*\d+\s*/\s*\d+(\.\d+)?\s*)*)\s*$",
    )
    # Feature slug overrides, JSON: {"wig": "wig", "object_removal": "obj-removal", ...}
    youcam_slugs: dict[str, str] = Field(
        default_factory=dict, validation_alias=AliasChoices("YOUCAM_SLUGS", "PHOTO_MCP_YOUCAM_SLUGS")
    )
    # Never leave a running task unpolled longer than this (YouCam drops it after 10 s).
    youcam_max_poll_gap: float = Field(
        default=8.0, gt=0, le=9.5, validation_alias=AliasChoices("YOUCAM_MAX_POLL_GAP", "PHOTO_MCP_YOUCAM_MAX_POLL_GAP")
    )
    # How long style catalogs (list_style_groups / list_styles) are cached, in seconds.
    youcam_catalog_ttl: float = Field(
        default=3600.0, ge=0, validation_alias=AliasChoices("YOUCAM_CATALOG_TTL", "PHOTO_MCP_YOUCAM_CATALOG_TTL")
    )

    @field_validator("auth_token", mode="before")
    @classmethod
    def _token_or_none(cls, value: Any) -> Any:
        # `PHOTO_MCP_AUTH_TOKEN=` (a forgotten value) is no token, not an empty one that matches
        # `Authorization: Bearer` with nothing after it; a short token is guessable.
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or not str(value).strip():
            return None
        token = str(value).strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} random ones "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return token

    @field_validator("oauth_required_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        # OAuth writes scopes space-separated; commas work too.
        if isinstance(value, str):
            return [p for p in value.replace(",", " ").split() if p]
        return value

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p.strip()]
        return value

    @field_validator("allowed_hosts", "background_providers", "oauth_algorithms", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("background_providers")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in BACKGROUND_PROVIDERS]
        if unknown:
            raise ValueError(f"unknown providers {unknown}; choose from {', '.join(BACKGROUND_PROVIDERS)}")
        return value

    @property
    def results_dir(self) -> Path:
        return (self.output_dir or self.data_dir / "results").expanduser()

    @property
    def effective_allowed_dirs(self) -> list[Path]:
        """Where local paths may be read: configured dirs; else home on stdio, none over HTTP."""
        if self.allowed_dirs is not None:
            dirs = self.allowed_dirs
        elif self.transport == "stdio":
            dirs = [Path.home()]
        else:
            dirs = []
        # The output dir is always readable: chaining a result by path must work.
        return [Path(d).expanduser().resolve() for d in [*dirs, self.results_dir]]

    @property
    def is_remote(self) -> bool:
        return self.transport != "stdio"
