"""The runtime: everything a tool needs, opened once per server process.

Held by the server lifespan: the database, result store, ledger, job manager (with its task
group), the safe fetcher, the image resolver, the webhook hub and the provider clients (opened
on first use). It also finishes what the job manager cannot know about: saving a provider's
images with the job's lineage, and resuming a job after a restart through its provider.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2

from tools import providers
from tools.core import images
from tools.core.budget import Ledger
from tools.core.concurrently import gather
from tools.core.db import Database
from tools.core.errors import InvalidInput, JobFailed, ProviderError, StorageFull
from tools.core.fetch import SafeFetcher
from tools.core.jobs import JobContext, JobManager, Outcome
from tools.core.lease import Lease
from tools.core.previews import Preview, PreviewCache, made_at_save, probe_and_preview
from tools.core.refs import ImageResolver
from tools.core.results import ResultRecord, ResultStore, Staged
from tools.core.settings import Settings
from tools.core.webhooks import WebhookHub
from tools.providers.base import ProviderImage
from tools.providers.http import ResultDownloads, RetryPolicy

log = logging.getLogger("photo_mcp.runtime")


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
    # How every provider client fetches its result URLs: through the SSRF guard (see ResultDownloads).
    downloads: ResultDownloads | None = None
    # Previews made when results were saved, until their tool result is rendered.
    previews: PreviewCache = field(default_factory=PreviewCache)
    _clients: dict[str, Any] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def client(self, name: str) -> Any:
        """The provider client `name`, opened on first use and closed with the runtime.

        Raises:
            NotConfigured: if the provider's keys (or the offline extra) are missing.
        """
        if name in self._clients:
            return self._clients[name]
        async with self._lock:
            if name not in self._clients:
                info = providers.info(name)
                module, cls = info.client.split(":")
                klass = getattr(importlib.import_module(module), cls)
                extra = {"webhooks": self.webhooks} if info.webhook_path else {}
                if self.downloads is None:
                    self.downloads = ResultDownloads.from_settings(self.settings, transport=self.transport)
                    if self.downloads.fetcher is not None:  # its pooled client closes with the runtime
                        self._stack.push_async_callback(self.downloads.fetcher.aclose)
                client = klass.from_settings(
                    self.settings, transport=self.transport, policy=self.policy, downloads=self.downloads, **extra
                )
                self._clients[name] = await self._stack.enter_async_context(client)
        return self._clients[name]

    async def save_outputs(self, job: JobContext, outputs: Sequence[ProviderImage]) -> list[ResultRecord]:
        """Save every provider image as a result of `job` (nothing is saved if any is not an image).

        Raises:
            ProviderError: a returned file is not an image (credits may have been charged).
            StorageFull: the outputs are more than one call may write, or cannot be stored (what
                was saved of them is removed again).
        """
        provider = job.job.provider
        lineage = job.job.lineage
        total, limit = sum(len(out.data) for out in outputs), self.store.max_result_bytes
        if limit is not None and total > limit:
            raise StorageFull(
                f"The results would be {total / 2**20:.0f} MB, more than the {limit / 2**20:.0f} MB one call may write "
                "(PHOTO_MCP_MAX_RESULT_MB); nothing was saved. Ask for a smaller size, or JPEG/WebP output."
                + (" The provider may have charged for the job." if providers.info(provider).paid else "")
            )
        side = made_at_save(self.settings)
        staged: list[Staged] = []
        facts: list[tuple[images.ImageInfo, Preview | None]] = []
        try:
            for out in outputs:
                try:
                    (info, made), file = await self._probed_while_staged(out, side)
                except InvalidInput:
                    raise ProviderError(
                        f"{provider} returned a result that is not an image; it may have charged for the job. "
                        "Try again, or use another provider.",
                        provider=provider,
                        charged=providers.info(provider).paid,
                    ) from None
                staged.append(file)
                facts.append((info, out.preview or made))
        except BaseException:
            await self.store.unstage(staged)
            raise
        saved: list[ResultRecord] = []
        try:
            for out, file, (info, _) in zip(outputs, staged, facts, strict=True):
                meta = dict(out.meta) | ({"provider_ref": out.ref} if out.ref else {})
                saved.append(
                    await self.store.publish(
                        file, mime_type=info.mime_type, width=info.width, height=info.height, lineage=lineage,
                        meta=meta,
                    )
                )  # fmt: skip
        except BaseException:
            await self.store.unstage(staged[len(saved) + 1 :])  # the one that failed removed itself
            await self.store.discard(saved)  # all of a call's outputs, or none
            raise
        for record, (_, preview) in zip(saved, facts, strict=True):
            if preview is not None:
                self.previews.put(record.id, preview)
        return saved

    async def _probed_while_staged(
        self, out: ProviderImage, side: int | None
    ) -> tuple[tuple[images.ImageInfo, Preview | None], Staged]:
        """Probe `out` (and make its preview, unless it has one) while its file is written and
        fsync'd: one waits for a core, the other for the disk.

        Raises:
            InvalidInput: it is not an image (its staged file is removed).
            StorageFull: as `ResultStore.stage`.
        """
        staged: list[Staged] = []  # the file as soon as it exists, to remove it if anything fails

        async def stage() -> None:
            staged.append(await self.store.stage(out.data))

        probe = functools.partial(
            images.in_worker, probe_and_preview, out.data, self.settings.max_pixels, None if out.preview else side
        )
        try:
            facts, _ = await gather(probe, stage)
        except BaseException:
            await self.store.unstage(staged)
            raise
        return facts, staged[0]

    async def resume(self, job: JobContext) -> Outcome:
        """Continue a job a previous run left unfinished, through its provider; never re-submit.

        Raises:
            JobFailed: the provider cannot resume (offline work, or nothing was sent yet).
            ProviderError: as the provider's own `resume` raises.
        """
        name = job.job.provider
        client = await self.client(name) if name in providers.REGISTRY else None
        if client is None or not hasattr(client, "resume"):
            raise JobFailed(
                "The server restarted while this job ran on this machine (nothing was sent to a paid provider, "
                "so nothing was charged). Run the tool again.",
                provider=name,
            )
        await job.progress(f"resumed after a restart: polling {name}", job.job.progress)
        outputs = await client.resume(job.job.provider_ref, job)
        return Outcome(await self.save_outputs(job, outputs), message="finished after a server restart")


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    """Open the runtime; jobs run until the context exits (then they are cancelled, their state
    persisted, and resumed by the next start where the provider allows).

    Raises:
        OSError: if the data or output dir cannot be created.
    """
    db = await anyio.to_thread.run_sync(Database, settings.data_dir.expanduser() / "photo-mcp.sqlite3")
    # This server's identity and lease on the shared data dir (other servers may run on it).
    lease = Lease(db, settings.data_dir.expanduser() / "servers", ttl=settings.lease_seconds)
    try:
        await anyio.to_thread.run_sync(lease.register)
    except (OSError, sqlite3.Error):
        log.exception("Could not register this server's lease; it is retried with every heartbeat.")
    quota = functools.partial(
        ResultStore,
        max_bytes=int(settings.max_store_mb * 2**20),
        max_result_bytes=int(settings.max_result_mb * 2**20),
        server_id=lease.id,
        alive=lease.alive_sync,
    )
    store = await anyio.to_thread.run_sync(quota, settings.results_dir, db)
    if db.moved_aside is not None:  # a damaged database was replaced: the result files are still there
        await store.rebuild_index()
    ledger = Ledger(
        db,
        per_call=settings.max_credits_per_call,
        per_day=settings.max_credits_per_day,
        per_user=settings.max_credits_per_day_per_user,
    )
    jobs = JobManager(db, ledger, lease=lease)
    # The download client is made on the first URL fetch: building its TLS context costs
    # ~70 ms that a start-up without URLs should not pay.
    # Without an injected transport it connects through its SSRF guard (checked address = connected one).
    fetcher = SafeFetcher(
        transport=transport,
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
        dirs_per_user=settings.allowed_dirs_per_user,
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
    try:
        async with runtime._stack, anyio.create_task_group() as tg:
            runtime._stack.push_async_callback(fetcher.aclose)
            await jobs.start(tg, runtime.resume)
            try:
                yield runtime
            finally:
                tg.cancel_scope.cancel()
    finally:
        lease.release()
        db.close()
