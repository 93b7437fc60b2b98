"""YouCam / Perfect Corp "Perfect AI API", s2s v1.0 (shared/providers.md §1).

One task, end to end:

    auth      POST /s2s/v1.0/client/auth  (RSA PKCS#1 v1.5 id_token -> 2 h access token, cached)
    upload    POST /s2s/v1.0/file/{slug}  then the bytes to the presigned URL (its method and
              headers verbatim, no Authorization); a photo:// result from YouCam reuses its dst_id
    run       POST /s2s/v1.0/task/{slug}  {request_id, payload}; request_id dedupes retries
    poll      GET  /s2s/v1.0/task/{slug}?task_id=...  at polling_interval, never more than
              YOUCAM_MAX_POLL_GAP apart (YouCam drops a task after 10 s without a poll)
    download  every data[].url at once (the URLs expire after 2 h)

Every API request goes through the per-credentials `RateLimiter` (youcam_limits.py), attached
as httpx event hooks so that retries are counted too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image

from tools.core import images
from tools.core.errors import InvalidInput, JobFailed, NotConfigured, ProviderError
from tools.core.images import Encoded
from tools.core.refs import ImageSource
from tools.providers.base import Balance, JobHooks, ProviderImage, RetryPolicy, download, send
from tools.providers.youcam.limits import RateLimiter, Ticket, limiter_for, parse_limits
from tools.providers.youcam.spec import (
    CONTENT_TYPES,
    FEATURES,
    SETUP,
    Style,
    StylePage,
    engine_advice,
    parse_page,
    slug_table,
)
from tools.providers.youcam.wire import RequestIds, TaskLost, YouCamWire, error_code, json_object, load_public_key

UPLOAD_TTL_S = 12 * 3600.0  # uploads are kept 1 day
DST_REUSE_S = 29 * 86400.0  # results are kept 30 days
MAX_GARBLED_POLLS = 3  # consecutive status answers that are not JSON before giving up on a task


@dataclass
class _Input:
    key: str  # src_ids | ref_ids | mask_ids
    source: ImageSource | None
    size: tuple[int, int]
    encoded: Encoded | None = None
    reuse: str | None = None  # a YouCam file id already on the server (dst_id)


class YouCamClient(YouCamWire):
    """YouCam s2s v1.0. Feature methods return downloaded images (with `dst_id` refs for chaining)."""

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
        scope = hashlib.sha256(f"{base_url}\0{client_id}".encode()).hexdigest()
        self._request_ids = RequestIds(state_dir / "youcam-request-ids.json" if state_dir else None, scope)
        self._uploads: dict[tuple[str, str], tuple[str, float]] = {}
        self._catalog: dict[tuple[Any, ...], tuple[float, StylePage]] = {}

    @classmethod
    def from_settings(
        cls, settings: Any, *, transport: httpx2.AsyncBaseTransport | None = None, policy: RetryPolicy
    ) -> YouCamClient:
        """Raises:
        NotConfigured: keys missing or unusable, or a bad YOUCAM_SLUGS / YOUCAM_RATE_LIMITS.
        """
        if not settings.configured("youcam"):
            raise NotConfigured(f"YouCam is not configured: {SETUP}.")
        client_id = settings.youcam_api_key.get_secret_value().strip()
        try:
            slugs = slug_table(settings.youcam_slugs)
            windows = parse_limits(settings.youcam_rate_limits)
        except ValueError as exc:
            raise NotConfigured(str(exc)) from None
        base_url = settings.youcam_base_url.rstrip("/")
        gap = settings.youcam_max_poll_gap
        scope = hashlib.sha256(f"{base_url}\0{client_id}".encode()).hexdigest()
        return cls(
            base_url=base_url,
            client_id=client_id,
            public_key=load_public_key(settings.youcam_secret_key.get_secret_value()),
            limiter=limiter_for((base_url, scope), windows, gap=gap),
            policy=policy,
            slugs=slugs,
            max_pixels=settings.max_pixels,
            catalog_ttl=settings.youcam_catalog_ttl,
            state_dir=Path(settings.data_dir).expanduser(),
            transport=transport,
            timeout=settings.provider_timeout,
        )

    async def __aenter__(self) -> YouCamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- inputs ---------------------------------------------------------------------------
    def slug(self, feature: str) -> str:
        return self.slugs[feature]

    async def _prepare(self, feature: str, key: str, source: ImageSource) -> _Input:
        """Reuse a YouCam result's dst_id when it fits the feature, else fit the image for upload."""
        limits = FEATURES[feature].limits
        assert limits is not None
        rec = source.result
        dst = (rec.meta.get("provider_ref") or {}).get("dst_id") if rec is not None else None
        if rec is not None and rec.provider == self.name and isinstance(dst, str) and dst:
            fits = (
                max(rec.width, rec.height) <= (limits.max_side or 1 << 30)
                and rec.bytes <= (limits.max_bytes or 1 << 60)
                and rec.mime_type in {images.MIME_OF[f] for f in limits.formats}
                and time.time() - rec.created_at < DST_REUSE_S
            )
            if fits:
                return _Input(key, source, (rec.width, rec.height), reuse=dst)
        return await self._fit(key, source, limits)

    async def _fit(self, key: str, source: ImageSource, limits: images.FitLimits) -> _Input:
        data = await source.read()
        enc = await images.in_worker(images.fit, data, limits, self._max_pixels)
        return _Input(key, source, (enc.width, enc.height), encoded=enc)

    def _cached(self, slug: str, inp: _Input) -> str | None:
        if inp.encoded is None:
            return None
        hit = self._uploads.get((slug, hashlib.sha256(inp.encoded.data).hexdigest()))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    async def _file_id(
        self, feature: str, inp: _Input, ticket: Ticket, hooks: JobHooks, fresh: bool
    ) -> tuple[str, bool]:
        """(file id, whether it was reused rather than uploaded just now)."""
        slug = self.slug(feature)
        if not fresh:
            if inp.reuse:
                return inp.reuse, True
            if cached := self._cached(slug, inp):
                return cached, True
        if inp.encoded is None:
            assert inp.source is not None
            limits = FEATURES[feature].limits
            assert limits is not None
            inp.encoded = (await self._fit(inp.key, inp.source, limits)).encoded
        enc = inp.encoded
        assert enc is not None
        await hooks.progress("uploading to YouCam", 0.1)
        ctype = CONTENT_TYPES[enc.mime_type]
        files = [{"content_type": ctype, "file_name": f"{inp.key.split('_')[0]}.{enc.extension}"}]
        body = self._json(
            await self._api("POST", f"/file/{slug}", kind="file", ticket=ticket, json={"files": files}), "file upload"
        )
        try:
            entry = body["result"]["files"][0]
            file_id, put = str(entry["file_id"]), entry["requests"][0]
            method, url = str(put.get("method") or "PUT"), str(put["url"])
            headers = {str(k): str(v) for k, v in (put.get("headers") or {}).items()}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderError(
                "YouCam's file-create answer was not understood. Nothing was charged.", provider=self.name
            ) from None
        # The presigned URL: its method and headers verbatim (they are signed), no Authorization.
        response = await send(
            self._http,
            method,
            url,
            provider=self.name,
            idempotent=True,
            policy=self._policy,
            content=enc.data,
            headers=headers,
        )
        if response.status_code >= 300:
            raise ProviderError(
                f"Uploading the image to YouCam's storage failed (HTTP {response.status_code}). Nothing was charged; "
                "try again.",
                provider=self.name,
                retryable=True,
            )
        self._uploads[(slug, hashlib.sha256(enc.data).hexdigest())] = (file_id, time.monotonic() + UPLOAD_TTL_S)
        return file_id, False

    # ---- tasks -----------------------------------------------------------------------------
    async def _run(
        self, feature: str, inputs: list[_Input], params: dict[str, Any] | None, hooks: JobHooks
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        """Upload (or reuse) the inputs, run the task, poll it, download its results."""
        slug = self.slug(feature)
        uploads = sum(1 for i in inputs if not i.reuse and not self._cached(slug, i))

        async def waiting(message: str) -> None:
            await hooks.progress(message)

        async with self.limiter.admit(uploads + 1, on_wait=waiting) as ticket:
            task_id = await self._submit(feature, inputs, params, ticket, hooks)
            await hooks.remember(feature=slug, task_id=task_id)
            return await self._poll(slug, task_id, ticket, hooks)

    async def _submit(
        self, feature: str, inputs: list[_Input], params: dict[str, Any] | None, ticket: Ticket, hooks: JobHooks
    ) -> str:
        spec, slug = FEATURES[feature], self.slug(feature)
        for attempt in range(2):
            ids, reused = {}, False
            for inp in inputs:
                ids[inp.key], was_reused = await self._file_id(feature, inp, ticket, hooks, fresh=attempt > 0)
                reused |= was_reused
            request_id = await self._request_ids.next(slug, [ids[k] for k in sorted(ids)])
            payload: dict[str, Any] = {"file_sets": {k: [v] for k, v in ids.items()}} if ids else {}
            payload["actions"] = [{"id": 0, "params": params}] if params else [{"id": 0}]
            payload["output_ext"] = spec.output_ext
            await hooks.progress("starting the YouCam task", 0.2)
            body = {"request_id": request_id, "payload": payload}
            # idempotent: a retry after a lost answer repeats this request_id, which YouCam ignores
            response = await self._api("POST", f"/task/{slug}", kind="run", ticket=ticket, json=body)
            if response.status_code == 400 and reused and attempt == 0 and error_code(response) == "InvalidParameters":
                continue  # a reused file id has expired at YouCam: upload afresh once
            if response.is_success and not json_object(response):
                # Garbled on the way: asking again with the same request_id returns the same task.
                response = await self._api("POST", f"/task/{slug}", kind="run", ticket=ticket, json=body)
            task_id = self._json(response, "run-task").get("result", {}).get("task_id")
            if not isinstance(task_id, str) or not task_id:
                raise ProviderError("YouCam's run-task answer had no task id. Nothing was charged.", provider=self.name)
            return task_id
        raise AssertionError("unreachable")  # pragma: no cover

    async def _poll(
        self, slug: str, task_id: str, ticket: Ticket, hooks: JobHooks, *, charged: bool = False
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        await hooks.progress("queued at YouCam", 0.3)
        polls = 0
        gap = self.limiter.gap
        # YouCam counts a poll when it arrives; a hung one is retried before the loss window closes.
        timeout = httpx2.Timeout(max(2.0, gap), connect=max(2.0, min(10.0, gap)))
        garbled = 0
        while True:
            response = await self._api(
                "GET",
                f"/task/{slug}",
                kind="poll",
                ticket=ticket,
                poll=True,
                params={"task_id": task_id},
                timeout=timeout,
            )
            if response.is_success and not json_object(response) and garbled < MAX_GARBLED_POLLS:
                # A poll is harmless to repeat; giving up here would abandon a task that may have succeeded.
                garbled += 1
                await anyio.sleep(max(0.0, ticket.last + min(1.0, gap) - time.monotonic()))
                continue
            garbled = 0
            result = self._json(response, "task status").get("result") or {}
            status = result.get("status")
            if status == "success":
                return await self._finish(slug, result, hooks, charged=charged)
            if status == "error":
                advice, retryable = engine_advice(
                    result.get("error"), self._scrub(str(result.get("error_message") or ""))
                )
                raise JobFailed(
                    f"YouCam could not process this: {advice} (engine code {result.get('error')}). "
                    "No credits were consumed (YouCam charges only on success).",
                    provider=self.name,
                    retryable=retryable,
                )
            polls += 1
            await hooks.progress("running at YouCam", min(0.85, 0.3 + 0.05 * polls))
            try:
                interval = float(result.get("polling_interval", 1000)) / 1000
            except (TypeError, ValueError):
                interval = 1.0
            # The limiter's poll clock starts at the grant; never sleep past the loss-window gap.
            interval = min(max(interval, 0.0), gap)
            await anyio.sleep(max(0.0, ticket.last + interval - time.monotonic()))

    async def _finish(
        self, slug: str, result: dict[str, Any], hooks: JobHooks, *, charged: bool
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        items: list[dict[str, Any]] = []
        extra: dict[str, Any] = {}
        for entry in result.get("results") or []:
            if isinstance(entry, dict):
                extra |= {k: v for k, v in entry.items() if k not in ("id", "data")}
                items += [d for d in entry.get("data") or [] if isinstance(d, dict) and d.get("url")]
        if not charged:  # YouCam charges on success; a resumed job may have recorded it already
            await hooks.charged(next((f.cost for n, f in FEATURES.items() if self.slugs.get(n) == slug), 1.0))
            await hooks.remember(charged=True)
        if not items:
            raise ProviderError(
                "YouCam reported success but returned no result files; it has charged for the task.",
                provider=self.name,
                charged=True,
            )
        await hooks.progress(f"downloading {len(items)} result(s) from YouCam", 0.9)
        datas: list[bytes | ProviderError] = [b""] * len(items)

        async def fetch(i: int, url: str) -> None:
            try:
                datas[i] = await download(self._http, url, provider=self.name, policy=self._policy)
            except ProviderError as exc:
                datas[i] = exc

        async with anyio.create_task_group() as tg:  # all at once: the URLs expire
            for i, d in enumerate(items):
                tg.start_soon(fetch, i, str(d["url"]))
        outputs = []
        for d, data in zip(items, datas, strict=True):
            if isinstance(data, ProviderError):
                raise data
            meta = {k: v for k, v in d.items() if k not in ("url", "dst_id")}
            outputs.append(ProviderImage(data, meta=meta, ref={"dst_id": d["dst_id"]} if d.get("dst_id") else {}))
        return outputs, extra

    # ---- features ------------------------------------------------------------------------
    async def hair(
        self, kind: str, source: ImageSource, style_group_id: int, style_id: int, hooks: JobHooks
    ) -> list[ProviderImage]:
        """Hairstyle, wig, hair extension, bangs or hair volume (`kind` = feature name)."""
        params = {"style_group_id": style_group_id, "style_ids": [style_id]}
        return (await self._run(kind, [await self._prepare(kind, "src_ids", source)], params, hooks))[0]

    async def aging(self, source: ImageSource, hooks: JobHooks) -> tuple[list[ProviderImage], dict[str, Any]]:
        outputs, extra = await self._run("aging", [await self._prepare("aging", "src_ids", source)], None, hooks)
        info = extra.get("custom_info") if isinstance(extra.get("custom_info"), dict) else {}
        idx = info.get("age_idx")
        outputs = [replace(o, meta={**o.meta, "input_photo": True}) if i == idx else o for i, o in enumerate(outputs)]
        return outputs, info

    async def makeup(
        self, source: ImageSource, reference: ImageSource, hooks: JobHooks
    ) -> tuple[list[ProviderImage], dict[str, Any]]:
        inputs = [await self._prepare("makeup", "src_ids", source), await self._prepare("makeup", "ref_ids", reference)]
        return await self._run("makeup", inputs, None, hooks)

    async def remove_object(self, source: ImageSource, mask_png: bytes, hooks: JobHooks) -> list[ProviderImage]:
        """`mask_png`: grayscale, white = remove, the size of the (EXIF-oriented) source."""
        src = await self._prepare("object_removal", "src_ids", source)
        mask = await anyio.to_thread.run_sync(_fit_mask, mask_png, src.size, self._max_pixels)
        inputs = [src, _Input("mask_ids", None, src.size, encoded=mask)]
        return (await self._run("object_removal", inputs, None, hooks))[0]

    async def colorize(self, source: ImageSource, hooks: JobHooks) -> list[ProviderImage]:
        return (await self._run("colorize", [await self._prepare("colorize", "src_ids", source)], None, hooks))[0]

    async def enhance(self, source: ImageSource, scale: int, hooks: JobHooks) -> list[ProviderImage]:
        inputs = [await self._prepare("enhance", "src_ids", source)]
        return (await self._run("enhance", inputs, {"scale": scale}, hooks))[0]

    async def remove_background(self, source: ImageSource, hooks: JobHooks) -> list[ProviderImage]:
        """SOD: a transparent PNG cut-out."""
        inputs = [await self._prepare("background", "src_ids", source)]
        return (await self._run("background", inputs, None, hooks))[0]

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

    # ---- catalogs and credits ------------------------------------------------------------
    async def _catalog_page(self, kind: str, feature: str, group_id: int | None, cursor: str | None) -> StylePage:
        slug = self.slug(feature)
        key = (kind, slug, group_id, cursor or "")
        hit = self._catalog.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        params: dict[str, str] = {"page_size": "20"}
        if group_id is not None:
            params["style_group_id"] = str(group_id)
        if cursor:
            params["starting_token"] = cursor
        response = await self._api("GET", f"/task/{kind}/{slug}", kind="other", params=params)
        if response.status_code == 400 and error_code(response) not in ("InvalidStyleGroup", "InvalidStyle") and cursor:
            raise InvalidInput("That cursor is not valid for this listing; start again without a cursor.")
        if response.status_code == 400 and error_code(response) == "InvalidStyleGroup":
            raise InvalidInput(f"{group_id} is not a {feature} style group: call list_style_groups('{feature}').")
        page = parse_page(self._json(response, "style catalog").get("result") or {})
        self._catalog[key] = (time.monotonic() + self._catalog_ttl, page)
        return page

    async def style_groups(self, feature: str, cursor: str | None = None) -> StylePage:
        return await self._catalog_page("style-group", feature, None, cursor)

    async def styles(self, feature: str, style_group_id: int, cursor: str | None = None) -> StylePage:
        return await self._catalog_page("style", feature, style_group_id, cursor)

    async def _all(self, feature: str, group_id: int | None) -> list[Style]:
        items, cursor = [], None
        for _ in range(50):
            page = await (
                self.styles(feature, group_id, cursor) if group_id is not None else self.style_groups(feature, cursor)
            )
            items += page.items
            if not (cursor := page.next_cursor):
                break
        return items

    async def all_style_groups(self, feature: str) -> list[Style]:
        return await self._all(feature, None)

    async def all_styles(self, feature: str, style_group_id: int) -> list[Style]:
        return await self._all(feature, style_group_id)

    async def find_style_group(self, feature: str, style_id: int) -> int:
        """The group holding `style_id`, from the (cached) catalog.

        Raises:
            InvalidInput: no group of `feature` holds it.
        """
        for group in await self.all_style_groups(feature):
            if any(s.id == style_id for s in await self.all_styles(feature, group.id)):
                return group.id
        raise InvalidInput(
            f"Style {style_id} is not in YouCam's {feature} catalog: pick an id from list_styles('{feature}', ...)."
        )

    async def balance(self) -> Balance:
        """GET client/credit: the sum of unexpired `amount_dec`, with each entry's expiry date."""
        body = self._json(await self._api("GET", "/client/credit", kind="other"), "credit")
        raw = body.get("results")
        if not isinstance(raw, list):
            raw = (body.get("result") or {}).get("results") or []
        now_ms, total, entries, soonest = time.time() * 1000, 0.0, [], None
        for e in raw:
            if not isinstance(e, dict):
                continue
            amount = float(e.get("amount_dec", e.get("amount", 0)) or 0)
            expiry = e.get("expiry")
            expired = isinstance(expiry, int | float) and expiry <= now_ms
            expires = time.strftime("%Y-%m-%d", time.gmtime(expiry / 1000)) if isinstance(expiry, int | float) else None
            entries.append({"type": e.get("type"), "amount": amount, "expires": expires, "expired": expired})
            if not expired:
                total += amount
                if expires and amount > 0 and (soonest is None or expires < soonest):
                    soonest = expires
        detail = f"{total:g} units (sum of unexpired credits)" + (
            f"; the soonest expire on {soonest}" if soonest else ""
        )
        return Balance(round(total, 4), detail, entries)


def _fit_mask(mask_png: bytes, size: tuple[int, int], max_pixels: int) -> Encoded:
    """The mask as a grayscale PNG of exactly `size` (the uploaded photo's size)."""
    mask = images.decode(mask_png, max_pixels).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return Encoded(images.encode(mask, "png"), "image/png", *size)
