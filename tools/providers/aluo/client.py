"""Aluo AI (providers.md §2): background removal, prompt edits, product photos, backdrops.

    POST /remove-bg                 synchronous; multipart `file` or `imageUrl`; charged at call time
    POST /photo-editor/generate     JSON `imageUrls` or multipart file0..file4 -> taskId
    GET  /photo-editor/status       ?taskId=  PENDING -> SUCCESS | FAILED (charged on SUCCESS)
    POST /photo-generate/generate   JSON prompt, size, nVariants, outputFormat, resolution -> taskId
    GET  /photo-generate/status     as for the editor
    POST /ai-generate-background    synchronous JSON {prompt} -> data.url

Every answer goes through `_envelope`, the one place that reads Aluo's
`{code, success, data | message, error}` shape, maps errors onto the tree in
`tools.core.errors`, and notes `credits_deducted` / `credits_remaining` when present (Aluo
has no balance endpoint, so the last `credits_remaining` is what `balance()` reports).

Tasks are always polled until SUCCESS or FAILED, even though one seed says an edit is
complete when its taskId comes back. The task id is remembered before the first poll, so
a restarted server resumes polling instead of paying for the work twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin

import anyio
import anyio.to_thread
import httpx2

from tools.core import images
from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    NotConfigured,
    OutOfCredits,
    PhotoError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from tools.core.images import FitLimits
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.providers.aluo.spec import EDIT_PRICE, GENERATE_PRICE
from tools.providers.base import (
    Balance,
    JobHooks,
    ProviderImage,
    RetryPolicy,
    default_timeout,
    download,
    send,
)

PROVIDER = "aluo"
# remove-bg documents PNG/JPG/WebP up to 10 MB and 4096×4096; the editor uses the same limits.
UPLOAD_LIMITS = FitLimits(max_side=4096, max_bytes=10 * 1024 * 1024, formats=("png", "jpeg", "webp"))
MAX_EDIT_IMAGES = 5
# Free-tier prices from the seeds (PRO: edit 35, generate 35/70/140). Used only when a
# successful task's responses carry no `credits_deducted`.
# Consecutive failed status rounds (each already retried by `send`) before giving up on a task.
MAX_POLL_FAILURES = 3

TaskKind = Literal["editor", "generate"]
_TASK_PATH: dict[str, str] = {"editor": "/photo-editor", "generate": "/photo-generate"}
_TASK_NOUN: dict[str, str] = {"editor": "edit", "generate": "generation"}


@dataclass(frozen=True)
class Envelope:
    """A successful Aluo answer: its `data`, and the credit fields when present."""

    data: dict[str, Any]
    deducted: float | None = None
    remaining: float | None = None


class AluoClient:
    """Aluo's HTTP contract; knows nothing of MCP. Open with `async with`."""

    name = PROVIDER

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        api_key: str,
        policy: RetryPolicy,
        poll_interval: float = 2.0,
        max_wait: float = 600.0,
        max_pixels: int = 100_000_000,
    ) -> None:
        self._http = http
        self._key = api_key
        # Sent per API request, never as a client default: result downloads go to a CDN
        # that needs no key and must not see it.
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._policy = policy
        self._poll_interval = poll_interval
        self._max_wait = max_wait
        self._max_pixels = max_pixels
        self.credits_remaining: float | None = None
        self._remaining_at: float | None = None

    def __repr__(self) -> str:
        return f"AluoClient(base_url={str(self._http.base_url)!r})"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None, policy: RetryPolicy
    ) -> AluoClient:
        """Build the client from settings.

        Raises:
            NotConfigured: ALUO_API_KEY is not set.
        """
        key = settings.aluo_api_key.get_secret_value().strip() if settings.aluo_api_key else ""
        if not key:
            raise NotConfigured(
                "Aluo is not configured: set ALUO_API_KEY to an Aluo API key (it starts with sk-; create one in "
                "your aluo.ai account) and restart the server."
            )
        http = httpx2.AsyncClient(
            base_url=settings.aluo_base_url.rstrip("/") + "/",
            timeout=default_timeout(settings.provider_timeout),
            transport=transport,
        )
        return cls(
            http,
            api_key=key,
            policy=policy,
            poll_interval=settings.aluo_poll_interval,
            max_wait=settings.aluo_max_wait,
            max_pixels=settings.max_pixels,
        )

    async def __aenter__(self) -> AluoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    # -- features ------------------------------------------------------------------------------------

    async def remove_background(self, source: ImageSource, hooks: JobHooks) -> list[ProviderImage]:
        """Cut out the subject (BRIA model): a transparent PNG. A public URL is passed as
        `imageUrl` without downloading it; anything else is fitted and uploaded as `file`.

        Raises:
            InvalidInput: the image is unusable, or Aluo refused the request (its words).
            AuthFailed, OutOfCredits, RateLimited, ProviderUnavailable: per the error tree.
        """
        url = source.public_url
        if url is not None:
            await hooks.progress("sending the image URL to Aluo", 0.1)
            files: dict[str, Any] = {"imageUrl": (None, url.encode())}  # a plain multipart field
        else:
            encoded = await self._fit(source)
            await hooks.progress("uploading to Aluo", 0.1)
            files = {"file": (_upload_name(source, encoded, "image"), encoded.data, encoded.mime_type)}
        env = await self._call("POST", "/remove-bg", what="the background removal", files=files)
        await self._record_call_charge(env, hooks)
        result_url = _result_url(env.data)
        if result_url is None:
            raise self._no_result("the background removal")
        await hooks.progress("downloading the cut-out", 0.8)
        (data,) = await self._download_all([result_url])
        meta = {k: env.data[k] for k in ("processedFileName",) if isinstance(env.data.get(k), str)}
        return [ProviderImage(data, meta=meta, ref={"url": result_url})]

    async def edit(
        self,
        prompt: str,
        sources: list[ImageSource],
        hooks: JobHooks,
        *,
        aspect_ratio: str | None = None,
        output_format: str = "png",
        num_images: int = 1,
    ) -> list[ProviderImage]:
        """Edit 1-5 images with a prompt (photo-editor); polls until done, then downloads.

        Public URLs go as JSON `imageUrls` when every input is one; otherwise every input is
        fitted and uploaded as multipart `file0..file4`.

        Raises:
            InvalidInput: 0 or more than 5 images, an unusable image, or Aluo refused the request.
            JobFailed: the task FAILED (nothing charged).
            AuthFailed, OutOfCredits, RateLimited, ProviderUnavailable: per the error tree.
        """
        if not 1 <= len(sources) <= MAX_EDIT_IMAGES:
            raise InvalidInput(f"An Aluo edit takes 1 to {MAX_EDIT_IMAGES} images; {len(sources)} were given.")
        urls = [s.public_url for s in sources]
        kwargs: dict[str, Any]
        if all(urls):
            body: dict[str, Any] = {"prompt": prompt, "imageUrls": urls}
            if aspect_ratio:
                body["aspectRatio"] = aspect_ratio
            body |= {"outputFormat": output_format, "numImages": num_images}
            kwargs = {"json": body}
            await hooks.progress("sending the image URLs to Aluo", 0.1)
        else:
            await hooks.progress("preparing the images", 0.02)
            encoded = [await self._fit(s) for s in sources]  # URL inputs are fetched safely here
            fields = {"prompt": prompt}
            if aspect_ratio:
                fields["aspectRatio"] = aspect_ratio
            fields |= {"outputFormat": output_format, "numImages": str(num_images)}
            files = {
                f"file{i}": (_upload_name(s, e, f"image{i}"), e.data, e.mime_type)
                for i, (s, e) in enumerate(zip(sources, encoded, strict=True))
            }
            kwargs = {"data": fields, "files": files}
            await hooks.progress(f"uploading {len(files)} image(s) to Aluo", 0.1)
        env = await self._call("POST", "/photo-editor/generate", what="the photo edit", **kwargs)
        return await self._run_task("editor", env, EDIT_PRICE, hooks)

    async def generate(
        self,
        prompt: str,
        hooks: JobHooks,
        *,
        size: str = "1:1",
        variants: int = 1,
        output_format: str = "png",
        resolution: str | None = None,
    ) -> list[ProviderImage]:
        """Generate product photos from text (photo-generate); polls until done, then downloads.

        Raises:
            InvalidInput: Aluo refused the request (e.g. "nVariants must be 1, 2, or 4").
            JobFailed: the task FAILED (nothing charged).
            AuthFailed, OutOfCredits, RateLimited, ProviderUnavailable: per the error tree.
        """
        body: dict[str, Any] = {"prompt": prompt, "size": size, "nVariants": variants, "outputFormat": output_format}
        if resolution:
            body["resolution"] = resolution
        await hooks.progress("sending the prompt to Aluo", 0.1)
        env = await self._call("POST", "/photo-generate/generate", what="the product-photo generation", json=body)
        return await self._run_task("generate", env, GENERATE_PRICE.get(variants, 40 * variants), hooks)

    async def generate_background(self, prompt: str, hooks: JobHooks) -> list[ProviderImage]:
        """Generate a backdrop image from text (synchronous).

        Raises:
            InvalidInput: Aluo refused the request (e.g. "Prompt is required").
            AuthFailed, OutOfCredits, RateLimited, ProviderUnavailable: per the error tree.
        """
        await hooks.progress("generating the background on Aluo", 0.1)
        env = await self._call(
            "POST", "/ai-generate-background", what="the background generation", json={"prompt": prompt}
        )
        await self._record_call_charge(env, hooks)
        result_url = _result_url(env.data)
        if result_url is None:
            raise self._no_result("the background generation")
        await hooks.progress("downloading the background", 0.8)
        (data,) = await self._download_all([result_url])
        return [ProviderImage(data, ref={"url": result_url})]

    async def resume(self, ref: dict[str, Any], hooks: JobHooks) -> list[ProviderImage]:
        """Continue polling a task remembered before a restart (never re-submits paid work).

        Raises:
            JobFailed: nothing resumable was remembered, or the task FAILED / is unknown.
            ProviderError: as for the feature that started it.
        """
        kind, task_id = ref.get("kind"), ref.get("task_id")
        if kind not in _TASK_PATH or not isinstance(task_id, str) or not task_id:
            raise JobFailed(
                "This Aluo job cannot be resumed after the restart: the server stopped before Aluo answered with a "
                "task id, so it was not re-sent. If the request had reached Aluo it may have been charged (Aluo "
                "charges a background removal when it is called, and a task when it succeeds): check your Aluo "
                "credits before running it again.",
                provider=PROVIDER,
                charged=True,
            )
        price = ref.get("price")
        return await self._poll(
            kind,
            task_id,
            hooks,
            price=float(price) if isinstance(price, int | float) else 0.0,
            deducted=float(ref.get("deducted") or 0),
            already_charged=ref.get("charged") is not None,
        )

    async def balance(self) -> Balance:
        """Aluo has no balance endpoint: the last `credits_remaining` one of its answers carried."""
        if self.credits_remaining is None or self._remaining_at is None:
            return Balance(
                None,
                "unknown until the first paid call: Aluo has no balance endpoint and reports credits_remaining "
                "only in its answers (see aluo.ai for the live balance)",
            )
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._remaining_at))
        return Balance(
            self.credits_remaining,
            f"last reported by Aluo (credits_remaining at {stamp}); it has no balance endpoint, so this "
            "updates after each paid call",
        )

    # -- tasks ---------------------------------------------------------------------------------------

    async def _run_task(self, kind: TaskKind, env: Envelope, price: float, hooks: JobHooks) -> list[ProviderImage]:
        task_id = env.data.get("taskId") or env.data.get("task_id")
        if not isinstance(task_id, str | int) or isinstance(task_id, bool) or not str(task_id):
            raise ProviderError(
                f"Aluo accepted the {_TASK_NOUN[kind]} but returned no taskId, so its result cannot be fetched. "
                "It may still run and charge; check credits before trying again.",
                provider=PROVIDER,
                charged=True,
            )
        task_id = str(task_id)
        deducted = env.deducted or 0.0
        # Remembered before the first poll: a restart resumes here instead of paying twice.
        await hooks.remember(kind=kind, task_id=task_id, price=price, deducted=deducted)
        await hooks.progress(f"queued at Aluo (task {task_id})", 0.15)
        return await self._poll(kind, task_id, hooks, price=price, deducted=deducted, already_charged=False)

    async def _poll(
        self,
        kind: str,
        task_id: str,
        hooks: JobHooks,
        *,
        price: float,
        deducted: float,
        already_charged: bool,
    ) -> list[ProviderImage]:
        noun = _TASK_NOUN[kind]
        start = time.monotonic()
        polls = failures = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed > self._max_wait:
                raise ProviderUnavailable(
                    f"Aluo's {noun} task {task_id} has not finished after {elapsed:.0f} s, so this server stopped "
                    "waiting (PHOTO_MCP_ALUO_MAX_WAIT). It may still finish and charge; check credits before "
                    "running it again.",
                    provider=PROVIDER,
                    charged=True,
                    retryable=True,
                )
            try:
                env = await self._call(
                    "GET",
                    f"{_TASK_PATH[kind]}/status",
                    what=f"the {noun} status",
                    task_id=task_id,
                    params={"taskId": task_id},
                )
            except RateLimited as exc:
                # Polls count against Aluo's per-minute limit (Free: 10): wait it out, the task runs on.
                await hooks.progress(f"Aluo is rate limiting status checks; waiting ({elapsed:.0f} s)")
                await anyio.sleep(max(self._poll_interval, exc.retry_after or 0.0))
                continue
            except ProviderUnavailable as exc:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise ProviderUnavailable(
                        f"Lost contact with Aluo while its {noun} task {task_id} was running ({exc.message}). "
                        "The task may still finish and charge; check credits before running it again.",
                        provider=PROVIDER,
                        charged=True,
                        retryable=True,
                    ) from None
                await hooks.progress(f"Aluo status check failed; retrying ({elapsed:.0f} s)")
                await anyio.sleep(self._poll_interval)
                continue
            failures = 0
            polls += 1
            deducted += env.deducted or 0.0
            status = str(env.data.get("status") or "PENDING").upper()
            if status == "SUCCESS":
                return await self._finish(kind, task_id, env.data, hooks, price, deducted, already_charged)
            if status == "FAILED":
                raise _failed(noun, task_id, env.data, self._scrub)
            fraction = 0.2 + 0.7 * (1 - 0.85**polls)
            await hooks.progress(f"running on Aluo ({status.lower()}, {elapsed:.0f} s)", fraction)
            await anyio.sleep(self._poll_interval)

    async def _finish(
        self,
        kind: str,
        task_id: str,
        data: dict[str, Any],
        hooks: JobHooks,
        price: float,
        deducted: float,
        already_charged: bool,
    ) -> list[ProviderImage]:
        items = [i for i in data.get("images") or [] if isinstance(i, dict) and isinstance(i.get("url"), str)]
        urls = [i["url"] for i in items]
        if not urls and isinstance(data.get("url"), str):
            urls = [data["url"]]
        if not already_charged:
            # Aluo charges a task on SUCCESS: what its answers reported, else the Free-tier price.
            amount = deducted if deducted > 0 else price
            if amount:
                await hooks.charged(amount)
            await hooks.remember(charged=amount)
        if not urls:
            raise self._no_result(f"the {_TASK_NOUN[kind]} (task {task_id})")
        await hooks.progress(f"downloading {len(urls)} image(s) from Aluo", 0.92)
        datas = await self._download_all(urls)
        description = data.get("description")
        meta: dict[str, Any] = {"aluo_task_id": task_id}
        if isinstance(description, str) and description:
            meta["description"] = description
        return [
            ProviderImage(d, meta=dict(meta), ref={"url": u, "task_id": task_id})
            for d, u in zip(datas, urls, strict=True)
        ]

    # -- plumbing ------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, what: str, task_id: str | None = None, **kwargs: Any) -> Envelope:
        """One API request under the retry policy; POSTs create paid work, so only GETs are idempotent."""
        response = await send(
            self._http,
            method,
            path,
            provider=PROVIDER,
            idempotent=method == "GET",
            policy=self._policy,
            headers=self._auth,
            **kwargs,
        )
        return self._envelope(response, what=what, task_id=task_id, paid=method != "GET")

    def _envelope(
        self, response: httpx2.Response, *, what: str, task_id: str | None = None, paid: bool = False
    ) -> Envelope:
        """Parse Aluo's envelope: return `data`, or raise the error it describes.

        `paid` marks a POST that creates paid work: a server-side failure there may have been
        processed (and charged) before it failed, so it is reported as `charged` and never re-sent.

        Raises:
            AuthFailed: 401/403 or code -2.
            OutOfCredits: 402, code 402 or "Insufficient credits".
            InvalidInput: other 4xx / code -1 (Aluo's message forwarded).
            JobFailed: a status poll for a task Aluo does not know (404).
            ProviderUnavailable: 5xx, code 500, or an answer that is not Aluo's envelope.
        """
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        deducted, remaining = _number(body.get("credits_deducted")), _number(body.get("credits_remaining"))
        if remaining is not None:
            self.credits_remaining, self._remaining_at = remaining, time.time()
        code = body.get("code")
        data = body.get("data")
        if 200 <= status < 300 and body.get("success") is not False and code in (0, None) and isinstance(data, dict):
            return Envelope(data, deducted, remaining)
        message = self._scrub(_text(body.get("message")))
        detail = self._scrub(_text(body.get("error")))
        said = message or detail
        if detail and message and detail.lower() not in message.lower():
            said = f"{message} ({detail})"
        if status in (401, 403) or code == -2:
            raise AuthFailed(
                f"Aluo rejected the API key (HTTP {status}{': ' + said if said else ''}): the key was rejected, "
                "check ALUO_API_KEY (keys start with sk- and are shown once when created). Nothing was charged.",
                provider=PROVIDER,
            )
        if status == 402 or code == 402 or "insufficient credits" in f"{message} {detail}".lower():
            left = f" Aluo last reported {self.credits_remaining:g} credits left." if self.credits_remaining else ""
            raise OutOfCredits(
                f"Aluo has insufficient credits for {what}.{left} Top up at aluo.ai or lower variants / "
                "num_images. Nothing was charged.",
                provider=PROVIDER,
            )
        if status >= 500 or code == 500:
            reason = f"HTTP {status}, a server-side problem" + (f" ({said})" if said else "")
            raise ProviderUnavailable(
                f"Aluo answered {what} with {reason}. "
                + (
                    "It was not re-sent: it reached Aluo and may have been processed (Aluo says it refunds "
                    "failed calls). Check credits before trying again."
                    if paid
                    else "Nothing was charged; try again later."
                ),
                provider=PROVIDER,
                charged=paid,
                retryable=True,
            )
        if status == 404 and task_id is not None:
            raise JobFailed(
                f"Aluo no longer knows task {task_id} ({said or 'not found'}), so its result cannot be fetched. "
                "Run the tool again.",
                provider=PROVIDER,
            )
        if 400 <= status < 500 or code == -1:
            raise InvalidInput(
                f"Aluo refused {what}: {said or f'HTTP {status} with no reason given'}. "
                "Change the request and try again; nothing was charged."
            )
        raise ProviderUnavailable(
            f"Aluo answered {what} with HTTP {status} and a body that is not its usual JSON envelope"
            + ("; it may have been processed, so check credits before trying again." if paid else "; try again later."),
            provider=PROVIDER,
            charged=paid,
            retryable=True,
        )

    async def _record_call_charge(self, env: Envelope, hooks: JobHooks) -> None:
        # Synchronous endpoints charge at call time; record only what Aluo says it deducted.
        if env.deducted:
            await hooks.charged(env.deducted)

    async def _fit(self, source: ImageSource) -> images.Encoded:
        data = await source.read()
        return await images.in_worker(images.fit, data, UPLOAD_LIMITS, self._max_pixels)

    async def _download_all(self, urls: list[str]) -> list[bytes]:
        """Fetch result files concurrently (CDN URLs expire; no key is sent to them)."""
        base = str(self._http.base_url)
        out: list[bytes] = [b""] * len(urls)

        async def one(i: int, url: str) -> None:
            out[i] = await download(self._http, urljoin(base, url), provider=PROVIDER, policy=self._policy)

        try:
            async with anyio.create_task_group() as tg:
                for i, url in enumerate(urls):
                    tg.start_soon(one, i, url)
        except ExceptionGroup as group:
            raise _first_error(group) from None
        return out

    def _no_result(self, what: str) -> ProviderError:
        return ProviderError(
            f"Aluo reported success for {what} but returned no image URL; it may have charged. "
            "Check credits before trying again.",
            provider=PROVIDER,
            charged=True,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "sk-…") if self._key and text else text


def _failed(noun: str, task_id: str, data: dict[str, Any], scrub: Callable[[str], str]) -> ProviderError:
    reason = scrub(_text(data.get("error")) or _text(data.get("message")) or _text(data.get("description")))
    if "insufficient credits" in reason.lower():
        return OutOfCredits(
            f"Aluo stopped the {noun} (task {task_id}): insufficient credits. Top up at aluo.ai or lower "
            "variants / num_images. No credits were charged.",
            provider=PROVIDER,
        )
    return JobFailed(
        f"Aluo could not complete the {noun} (task {task_id}): {reason or 'no reason given'}. The {noun} failed and no "
        "credits were charged; trying again, or rephrasing the prompt or changing the image, may help.",
        provider=PROVIDER,
        retryable=True,
    )


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, PhotoError):
            return exc
    return group.exceptions[0]


def _result_url(data: dict[str, Any]) -> str | None:
    """`data.url`, tolerating `data.images[0].url` (the background endpoint's answer is inferred)."""
    if isinstance(data.get("url"), str) and data["url"]:
        return data["url"]
    items = data.get("images")
    if isinstance(items, list) and items and isinstance(items[0], dict) and isinstance(items[0].get("url"), str):
        return items[0]["url"]
    return None


def _upload_name(source: ImageSource, encoded: images.Encoded, default: str) -> str:
    stem = source.path.stem if source.path is not None and source.kind == "path" else default
    return f"{stem or default}.{encoded.extension}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
