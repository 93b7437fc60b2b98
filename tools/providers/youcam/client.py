"""YouCam / Perfect Corp "Perfect AI API", s2s v1.0 (shared/providers.md §1).

One task, end to end:

    auth      POST /s2s/v1.0/client/auth  (RSA PKCS#1 v1.5 id_token -> 2 h access token, cached)
    upload    POST /s2s/v1.0/file/{slug}  then the bytes to the presigned URL (files.py); a
              photo:// result from YouCam reuses its dst_id
    run       POST /s2s/v1.0/task/{slug}  {request_id, payload}; request_id is counted per account
              and re-sent unchanged on a retry, so YouCam never runs one request twice
    poll      GET  /s2s/v1.0/task/{slug}?task_id=...  at polling_interval, never more than
              YOUCAM_MAX_POLL_GAP apart (YouCam drops a task after 10 s without a poll)
    download  every data[].url at once (the URLs expire after 2 h)

Every API request goes through the per-credentials `RateLimiter` (limits.py), attached as httpx
event hooks so that retries are counted too. A run-task that may have created its task (its
answer was lost, or a 5xx came back) is retried at once, with the same request_id, under the
loss-window policy, ahead of new admissions; its first poll is due within the window.
Charges: YouCam reports no per-task amount, so each success is recorded at the estimated
price of spec.PRICES.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx2
from cryptography.hazmat.primitives.asymmetric import rsa

from tools import providers
from tools.core.errors import InvalidInput, JobFailed, NotConfigured, ProviderError, ProviderUnavailable, RateLimited
from tools.core.refs import ImageSource
from tools.providers.base import JobHooks, ProviderImage
from tools.providers.http import ResultDownloads, RetryPolicy, download_all, may_have_charged
from tools.providers.keys import strip_key
from tools.providers.polling import Poll, PollState, poll_until_done
from tools.providers.youcam.catalog import YouCamCatalog
from tools.providers.youcam.files import Input, face_advice, fit_mask
from tools.providers.youcam.limits import RateLimiter, Ticket, limiter_for, parse_limits
from tools.providers.youcam.spec import FEATURES, RESULT_HOSTS, StylePage, engine_advice, slug_table
from tools.providers.youcam.wire import RequestIds, TaskLost, error_code, json_object, load_public_key

GARBLED_BUDGET = 3  # consecutive status answers that are not JSON tolerated before giving up on a task
_FACE_CODES = frozenset({"error_no_face", "error_face_parsing", "error_large_face_angle", "error_pose"})


class YouCamClient(YouCamCatalog):
    """YouCam s2s v1.0. Feature methods return downloaded images (with `dst_id` refs for chaining)."""

    downloads: ResultDownloads | None = None  # how result URLs are fetched (set by from_settings)

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        public_key: rsa.RSAPublicKey,
        limiter: RateLimiter,
        policy: RetryPolicy,
        slugs: dict[str, str],
        max_pixels: int,
        catalog_ttl: float,
        state_dir: Path | None,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(
            base_url=base_url,
            client_id=client_id,
            public_key=public_key,
            limiter=limiter,
            policy=policy,
            transport=transport,
            timeout=timeout,
        )
        self.slugs = slugs
        self._max_pixels = max_pixels
        self._catalog_ttl = catalog_ttl
        scope = f"{base_url}\0{client_id}"
        self._request_ids = RequestIds(state_dir / "youcam-request-ids.json" if state_dir else None, scope)
        self._uploads: dict[tuple[str, str], tuple[str, float]] = {}
        self._catalog: dict[tuple[Any, ...], tuple[float, StylePage]] = {}

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: RetryPolicy,
        downloads: ResultDownloads | None = None,
    ) -> YouCamClient:
        """Raises:
        NotConfigured: keys missing or unusable, or a bad YOUCAM_SLUGS / YOUCAM_RATE_LIMITS.
        """
        problem = providers.missing(settings, "youcam")
        if problem is not None:
            raise NotConfigured(f"YouCam is not configured: {problem}.")
        client_id = strip_key(settings.youcam_api_key.get_secret_value())
        try:
            slugs = slug_table(settings.youcam_slugs)
            windows = parse_limits(settings.youcam_rate_limits)
        except ValueError as exc:
            raise NotConfigured(str(exc)) from None
        base_url = settings.youcam_base_url.rstrip("/")
        gap = settings.youcam_max_poll_gap
        scope = hashlib.sha256(f"{base_url}\0{client_id}".encode()).hexdigest()
        client = cls(
            base_url=base_url,
            client_id=client_id,
            public_key=load_public_key(strip_key(settings.youcam_secret_key.get_secret_value())),
            limiter=limiter_for((base_url, scope), windows, gap=gap),
            policy=policy,
            slugs=slugs,
            max_pixels=settings.max_pixels,
            catalog_ttl=settings.youcam_catalog_ttl,
            state_dir=Path(settings.data_dir).expanduser(),
            transport=transport,
            timeout=settings.provider_timeout,
        )
        downloads = downloads or ResultDownloads.from_settings(settings, transport=transport)
        client.downloads = downloads.bound(hosts=RESULT_HOSTS, base=base_url)
        return client

    async def __aenter__(self) -> YouCamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- tasks -----------------------------------------------------------------------------
    async def _run(
        self,
        feature: str,
        inputs: list[Input],
        params: dict[str, Any] | None,
        hooks: JobHooks,
        output_format: str | None = None,
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        """Upload (or reuse) the inputs, run the task, poll it, download its results.

        Raises:
            InvalidInput: `output_format` is not one the feature allows.
        """
        spec, slug = FEATURES[feature], self.slug(feature)
        ext = output_format or spec.output_ext
        if ext not in spec.output_formats:
            raise InvalidInput(
                f"YouCam's {feature.replace('_', ' ')} can return {' or '.join(spec.output_formats)}, not {ext!r}."
            )
        uploads = sum(1 for i in inputs if not i.reuse and not self._cached(slug, i))
        src = next((i for i in inputs if i.key == "src_ids"), None)
        hint = face_advice(src.shrunk) if spec.face and src is not None else None

        async def waiting(message: str) -> None:
            await hooks.progress(message)

        async with self.limiter.admit(uploads + 1, on_wait=waiting) as ticket:
            task_id = await self._submit(feature, inputs, params, ext, ticket, hooks)
            await hooks.remember(feature=slug, task_id=task_id)
            return await self._poll(slug, task_id, ticket, hooks, face_hint=hint)

    async def _submit(
        self,
        feature: str,
        inputs: list[Input],
        params: dict[str, Any] | None,
        ext: str,
        ticket: Ticket,
        hooks: JobHooks,
    ) -> str:
        slug = self.slug(feature)
        for attempt in range(2):
            ids, reused = {}, False
            for inp in inputs:
                ids[inp.key], was_reused = await self._file_id(feature, inp, ticket, hooks, fresh=attempt > 0)
                reused |= was_reused
            request_id = await self._request_ids.next()  # one per run, per account; retries re-send it
            payload: dict[str, Any] = {"file_sets": {k: [v] for k, v in ids.items()}} if ids else {}
            payload["actions"] = [{"id": 0, "params": params}] if params else [{"id": 0}]
            payload["output_ext"] = ext
            await hooks.progress("starting the YouCam task", 0.2)
            body = {"request_id": request_id, "payload": payload}
            # Idempotent: a retry after a lost answer or a 5xx repeats this request_id, which YouCam
            # ignores; the loss-window policy (poll=True) keeps the retries inside the 10 s window.
            response = await self._run_task(slug, body, ticket)
            if response.status_code == 400 and reused and attempt == 0 and error_code(response) == "InvalidParameters":
                continue  # a reused file id has expired at YouCam: upload afresh once
            if response.is_success and not json_object(response):
                # Garbled on the way: asking again with the same request_id returns the same task.
                response = await self._run_task(slug, body, ticket)
            task_id = self._json(response, "run-task").get("result", {}).get("task_id")
            if not isinstance(task_id, str) or not task_id:
                raise ProviderError("YouCam's run-task answer had no task id. Nothing was charged.", provider=self.name)
            return task_id
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run_task(self, slug: str, body: dict[str, Any], ticket: Ticket) -> httpx2.Response:
        return await self._api(
            "POST", f"/task/{slug}", kind="run", ticket=ticket, poll=True, json=body, timeout=self._loss_timeout
        )

    async def _poll(
        self,
        slug: str,
        task_id: str,
        ticket: Ticket,
        hooks: JobHooks,
        *,
        charged: bool = False,
        face_hint: str | None = None,
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        await hooks.progress("queued at YouCam", 0.3)
        gap = self.limiter.gap

        async def check(state: PollState) -> Poll:
            # YouCam counts a poll when it arrives; a hung one is retried before the loss window closes.
            response = await self._api(
                "GET", f"/task/{slug}", kind="poll", ticket=ticket, poll=True, params={"task_id": task_id},
                timeout=self._loss_timeout,
            )  # fmt: skip
            if response.is_success and not json_object(response):
                # A poll is harmless to repeat; giving up here would abandon a task that may have succeeded.
                try:
                    self._json(response, "task status")
                except ProviderError as exc:
                    return Poll("garbled", wait=ticket.last + min(1.0, gap) - time.monotonic(), error=exc)
            result = self._json(response, "task status").get("result") or {}
            status = result.get("status")
            if status == "success":
                return Poll("done", result)
            if status == "error":
                code = result.get("error")
                advice, retryable = engine_advice(code, self._scrub(str(result.get("error_message") or "")))
                if face_hint and code in _FACE_CODES:
                    advice += f"; {face_hint}"
                error = JobFailed(
                    f"YouCam could not process this: {advice} (engine code {code}). "
                    "No credits were consumed (YouCam charges only on success).",
                    provider=self.name,
                    retryable=retryable,
                )
                return Poll("failed", result, error=error)
            try:
                interval = float(result.get("polling_interval", 1000)) / 1000
            except (TypeError, ValueError):
                interval = 1.0
            # The limiter's poll clock starts at the grant; never sleep past the loss-window gap.
            interval = min(max(interval, 0.0), gap)
            return Poll("pending", result, wait=ticket.last + interval - time.monotonic())

        async def pending(state: PollState, poll: Poll) -> None:
            await hooks.progress("running at YouCam", min(0.85, 0.3 + 0.05 * state.polls))

        def give_up(poll: Poll, count: int) -> ProviderError:
            assert poll.error is not None
            return poll.error

        try:
            done = await poll_until_done(
                check, interval=1.0, max_interval=gap, budget=GARBLED_BUDGET, give_up=give_up, on_pending=pending
            )
        except (ProviderUnavailable, RateLimited) as exc:
            if charged:  # already recorded by the run before a restart
                raise
            # The task may have succeeded (and been charged) before the status answers broke off.
            raise may_have_charged(exc, title="YouCam", max_charge=self._cost(slug), unit="unit") from None
        return await self._finish(slug, done.body, hooks, charged=charged)

    def _cost(self, slug: str) -> float:
        return next((f.cost for n, f in FEATURES.items() if self.slugs.get(n) == slug), 1.0)

    async def _finish(
        self, slug: str, result: dict[str, Any], hooks: JobHooks, *, charged: bool
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        items: list[dict[str, Any]] = []
        extra: dict[str, Any] = {}
        for entry in result.get("results") or []:
            if isinstance(entry, dict):
                extra |= {k: v for k, v in entry.items() if k not in ("id", "data")}
                items += [d for d in entry.get("data") or [] if isinstance(d, dict) and d.get("url")]
        cost = self._cost(slug)
        if not charged:  # YouCam charges on success; a resumed job may have recorded it already
            await hooks.charged(cost, basis="estimated")
            await hooks.remember(charged=True)
        if not items:
            raise ProviderError(
                "YouCam reported success but returned no result files; it has charged for the task.",
                provider=self.name,
                charged=True,
                max_charge=cost,
            )
        await hooks.progress(f"downloading {len(items)} result(s) from YouCam", 0.9)
        # All at once (the URLs expire), first error wins.
        urls = [str(d["url"]) for d in items]
        datas = await download_all(
            self._http, urls, provider=self.name, policy=self._policy, max_charge=cost, downloads=self.downloads
        )
        outputs = []
        for d, data in zip(items, datas, strict=True):
            meta = {k: v for k, v in d.items() if k not in ("url", "dst_id")}
            outputs.append(ProviderImage(data, meta=meta, ref={"dst_id": d["dst_id"]} if d.get("dst_id") else {}))
        return outputs, extra

    # ---- features ------------------------------------------------------------------------
    async def hair(
        self, kind: str, source: ImageSource, style_group_id: int, style_id: int, hooks: JobHooks
    ) -> list[ProviderImage]:
        """Hairstyle, wig, hair extension, bangs or hair volume (`kind` = feature name).

        Raises:
            InvalidInput: the photo is too narrow to hold a face of YouCam's minimum width.
            JobFailed: YouCam found no usable face (with advice on the size it needs).
        """
        params = {"style_group_id": style_group_id, "style_ids": [style_id]}
        return (await self._run(kind, [await self._prepare(kind, "src_ids", source)], params, hooks))[0]

    async def aging(self, source: ImageSource, hooks: JobHooks) -> tuple[list[ProviderImage], dict[str, Any]]:
        outputs, extra = await self._run("aging", [await self._prepare("aging", "src_ids", source)], None, hooks)
        # Inferred: the seed lost this object's key; `custom_info` is assumed, and the fields beside
        # `data` (as v2 puts them beside `output`) are read too.
        info = extra.get("custom_info")
        if not isinstance(info, dict):
            info = {k: extra[k] for k in ("age", "age_idx", "age_min", "age_max", "num_of_photos") if k in extra}
        idx = info.get("age_idx")
        outputs = [replace(o, meta={**o.meta, "input_photo": True}) if i == idx else o for i, o in enumerate(outputs)]
        return outputs, info

    async def makeup(
        self, source: ImageSource, reference: ImageSource, hooks: JobHooks
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        inputs = [await self._prepare("makeup", "src_ids", source), await self._prepare("makeup", "ref_ids", reference)]
        return await self._run("makeup", inputs, None, hooks)

    async def remove_object(
        self, source: ImageSource, mask_png: bytes, hooks: JobHooks, *, output_format: str = "jpg"
    ) -> list[ProviderImage]:
        """`mask_png`: grayscale, white = remove, the size of the (EXIF-oriented) source.
        `output_format`: "jpg" or "webp"."""
        src = await self._prepare("object_removal", "src_ids", source)
        mask = await anyio.to_thread.run_sync(fit_mask, mask_png, src.size, self._max_pixels)
        inputs = [src, Input("mask_ids", None, src.size, encoded=mask)]
        return (await self._run("object_removal", inputs, None, hooks, output_format))[0]

    async def colorize(
        self, source: ImageSource, hooks: JobHooks, *, output_format: str = "jpg"
    ) -> list[ProviderImage]:
        """`output_format`: "jpg" or "webp"."""
        inputs = [await self._prepare("colorize", "src_ids", source)]
        return (await self._run("colorize", inputs, None, hooks, output_format))[0]

    async def enhance(
        self, source: ImageSource, scale: int, hooks: JobHooks, *, output_format: str = "jpg"
    ) -> list[ProviderImage]:
        """`output_format`: "jpg" or "webp"."""
        inputs = [await self._prepare("enhance", "src_ids", source)]
        return (await self._run("enhance", inputs, {"scale": scale}, hooks, output_format))[0]

    async def remove_background(
        self, source: ImageSource, hooks: JobHooks, *, output_format: str = "png"
    ) -> list[ProviderImage]:
        """SOD: a transparent cut-out; `output_format` "png" or "webp"."""
        inputs = [await self._prepare("background", "src_ids", source)]
        return (await self._run("background", inputs, None, hooks, output_format))[0]

    async def text_to_image(
        self, prompt: str, style_group_id: int, style_id: int, hooks: JobHooks
    ) -> list[ProviderImage]:
        params = {"prompt": prompt, "style_group_id": style_group_id, "style_ids": [style_id]}
        return (await self._run("image_generator", [], params, hooks))[0]

    async def resume(self, ref: dict[str, Any], hooks: JobHooks) -> list[ProviderImage]:
        """Continue polling a task remembered before a restart (nothing is re-submitted).

        Raises:
            JobFailed: the task was lost meanwhile (nothing charged), or failed.
        """
        slug, task_id = ref.get("feature"), ref.get("task_id")
        if not isinstance(slug, str) or not isinstance(task_id, str):
            raise JobFailed(
                "The server restarted before the YouCam task started. Nothing was charged; run the tool again.",
                provider=self.name,
            )
        async with self.limiter.admit(0, force=True) as ticket:
            ticket.started = True
            try:
                charged = bool(ref.get("charged"))
                return (await self._poll(slug, task_id, ticket, hooks, charged=charged))[0]
            except TaskLost:
                raise JobFailed(
                    "YouCam dropped the task while this server was restarting (a task is kept only while it is "
                    "polled). Nothing was charged; run the tool again.",
                    provider=self.name,
                    retryable=True,
                ) from None
