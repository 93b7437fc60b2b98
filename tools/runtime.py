"""The runtime: everything a tool needs, opened once per server process.

Held by the server lifespan: the database, result store, ledger, job manager (with
its task group), the safe fetcher and the image resolver. Provider clients join it
as their issues land.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import httpx2

from tools.core.budget import Ledger
from tools.core.db import Database
from tools.core.fetch import SafeFetcher
from tools.core.jobs import JobContext, JobManager, Outcome
from tools.core.refs import ImageResolver
from tools.core.results import ResultStore
from tools.core.settings import Settings
from tools.core.webhooks import WebhookHub
from tools.providers import CLIENTS
from tools.providers.base import RetryPolicy

# How a provider continues its unfinished jobs after a restart.
Resumer = Callable[["Runtime", JobContext], Awaitable[Outcome]]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ResultStore
    ledger: Ledger
    jobs: JobManager
    fetcher: SafeFetcher
    resolver: ImageResolver
    transport: httpx2.AsyncBaseTransport | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    webhooks: WebhookHub = field(default_factory=WebhookHub)
    _clients: dict[str, Any] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def client(self, name: str) -> Any:
        """The provider client `name`, opened on first use and closed with the runtime.

        Raises:
            NotConfigured: if the provider's keys are not set (the message names them).
        """
        if name in self._clients:
            return self._clients[name]
        async with self._lock:
            if name not in self._clients:
                module, cls = CLIENTS[name].split(":")
                klass = getattr(importlib.import_module(module), cls)
                extra = {"webhooks": self.webhooks} if getattr(klass, "uses_webhooks", False) else {}
                client = klass.from_settings(self.settings, transport=self.transport, policy=self.policy, **extra)
                self._clients[name] = await self._stack.enter_async_context(client)
        return self._clients[name]


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
    resumers: Mapping[str, Resumer] | None = None,
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
    # The download client is made on the first URL fetch: building its TLS context costs
    # ~70 ms that a start-up without URLs should not pay.
    fetcher = SafeFetcher(
        lambda: httpx2.AsyncClient(
            transport=transport, timeout=httpx2.Timeout(settings.download_timeout, connect=10.0)
        ),
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
    runtime = Runtime(
        settings,
        db,
        store,
        ledger,
        jobs,
        fetcher,
        resolver,
        transport=transport,
        policy=RetryPolicy(base_delay=settings.retry_base_delay),
    )
    for provider, resume in (resumers or {}).items():
        jobs.add_resumer(provider, partial(resume, runtime))
    try:
        async with runtime._stack, anyio.create_task_group() as tg:
            runtime._stack.push_async_callback(fetcher.aclose)
            await jobs.start(tg)
            try:
                yield runtime
            finally:
                tg.cancel_scope.cancel()
    finally:
        db.close()
