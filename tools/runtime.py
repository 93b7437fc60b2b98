"""The runtime: everything a tool needs, opened once per server process.

Held by the server lifespan: the database, result store, ledger, job manager (with
its task group), the safe fetcher and the image resolver. Provider clients join it
as their issues land.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx2

from tools.core.budget import Ledger
from tools.core.db import Database
from tools.core.fetch import SafeFetcher
from tools.core.jobs import JobManager
from tools.core.refs import ImageResolver
from tools.core.results import ResultStore
from tools.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ResultStore
    ledger: Ledger
    jobs: JobManager
    fetcher: SafeFetcher
    resolver: ImageResolver
    http: httpx2.AsyncClient


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    """Open the runtime; jobs run until the context exits (then they are cancelled,
    their state persisted, and resumed by the next start where a provider allows).

    Raises:
        OSError: if the data or output dir cannot be created.
    """
    db = await anyio.to_thread.run_sync(Database, settings.data_dir.expanduser() / "photo-mcp.sqlite3")
    store = await anyio.to_thread.run_sync(ResultStore, settings.results_dir, db)
    ledger = Ledger(db, per_call=settings.max_credits_per_call, per_day=settings.max_credits_per_day)
    jobs = JobManager(db, store, ledger)
    try:
        async with httpx2.AsyncClient(
            transport=transport, timeout=httpx2.Timeout(settings.download_timeout, connect=10.0)
        ) as http:
            fetcher = SafeFetcher(
                http,
                allow_private=settings.allow_private_urls,
                max_bytes=settings.max_download_bytes,
                timeout=settings.download_timeout,
            )
            resolver = ImageResolver(
                store=store,
                fetcher=fetcher,
                allowed_dirs=settings.effective_allowed_dirs,
                base_dir=settings.results_dir.resolve(),
                remote=settings.is_remote,
            )
            runtime = Runtime(settings, db, store, ledger, jobs, fetcher, resolver, http)
            async with anyio.create_task_group() as tg:
                await jobs.start(tg)
                try:
                    yield runtime
                finally:
                    tg.cancel_scope.cancel()
    finally:
        db.close()
