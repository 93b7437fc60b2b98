"""`photo-mcp doctor`: what is configured (keys masked), writable and reachable."""

from __future__ import annotations

import os

import anyio
import httpx2

from server.auth import oauth_report
from server.config import mask
from tools.core.db import database_report
from tools.core.lease import servers_report
from tools.core.settings import Settings
from tools.providers import REGISTRY


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


async def _reachable(url: str) -> str:
    try:
        async with httpx2.AsyncClient(timeout=4.0) as client:
            response = await client.get(url)
        return f"reachable (HTTP {response.status_code})"
    except httpx2.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"


async def run_doctor(settings: Settings) -> int:
    out_dir = settings.results_dir
    try:
        settings.data_dir.expanduser().mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the server
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        writable = os.access(out_dir, os.W_OK)
    except OSError:
        writable = False
    print("photo-mcp doctor")
    print(f"  data dir:      {settings.data_dir}")
    data_dir = settings.data_dir.expanduser()
    database = data_dir / "photo-mcp.sqlite3"
    servers = servers_report(database, data_dir / "servers", ttl=settings.lease_seconds)
    for line in [*database_report(database), *servers]:
        print("  " + line)
    print(f"  output dir:    {out_dir} ({'writable' if writable else 'NOT WRITABLE'})")
    print(f"  allowed dirs:  {', '.join(str(d) for d in settings.effective_allowed_dirs)}")
    print(f"  wait budget:   {settings.wait_seconds:g} s; previews: {settings.preview} ({settings.preview_size}px)")
    caps = f"per call {settings.max_credits_per_call}, per day {settings.max_credits_per_day}"
    caps += f", per person per day {settings.max_credits_per_day_per_user}"
    print(f"  credit caps:   {caps}")
    for line in await oauth_report(settings):
        print("  " + line)
    # The hosted providers, from the registry: (variable, value) per key, and the base URL.
    hosted = {
        name: (
            [(var, _secret(getattr(settings, key))) for key, var in zip(info.keys, info.env, strict=True)],
            getattr(settings, info.base_url) if info.base_url else "",
        )
        for name, info in REGISTRY.items()
        if info.paid
    }
    checks: dict[str, str] = {}

    async def check(name: str, url: str) -> None:
        checks[name] = await _reachable(url)

    async with anyio.create_task_group() as tg:
        for name, (keys, url) in hosted.items():
            if all(v for _, v in keys):
                tg.start_soon(check, name, url)
    for name, (keys, url) in hosted.items():
        configured = all(v for _, v in keys)
        print(f"  {name:<9}      {'configured' if configured else 'not configured'}; {url}")
        for var, value in keys:
            print(f"      {var}: {mask(value)}")
        if configured:
            print(f"      {checks.get(name, '')}")
    from tools.providers.local import status as local_status

    print(f"  local AI:      {local_status()}")
    return 0 if writable else 1
