"""Aluo AI (providers.md §2): background removal, prompt edits, product photos, backdrops.

    POST /remove-bg                 synchronous; multipart `file` or `imageUrl`; charged at call time
    POST /photo-editor/generate     JSON `imageUrls` or multipart file0..file4 -> taskId
    GET  /photo-editor/status       ?taskId=  PENDING -> SUCCESS | FAILED (charged on SUCCESS)
    POST /photo-generate/generate   JSON prompt, size, nVariants, outputFormat, resolution -> taskId
    GET  /photo-generate/status     as for the editor (plus `timings`)
    POST /ai-generate-background    synchronous JSON {prompt} -> data.url (inferred; read tolerantly)

Charges: what an answer reports (`credits_deducted`, optional), else the plan's price from
spec.py recorded with its basis ("documented" or "estimated"), never zero.

Tasks are always polled until SUCCESS or FAILED, even though one seed says an edit is
complete when its taskId comes back. The task id is remembered before the first poll, so
a restarted server resumes polling instead of paying for the work twice.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2

from tools.core import fitting
from tools.core.errors import InvalidInput, JobFailed
from tools.core.refs import ImageSource
from tools.core.settings import Settings
from tools.providers.aluo.spec import (
    MAX_EDIT_IMAGES,
    RESULT_HOSTS,
    UPLOAD_LIMITS,
    Basis,
    Plan,
    call_price,
    edit_price,
    generate_price,
)
from tools.providers.aluo.tasks import TASK_PATH, AluoTasks
from tools.providers.aluo.wire import PROVIDER, Envelope, result_url
from tools.providers.base import Balance, JobHooks, ProviderImage
from tools.providers.http import ResultDownloads, RetryPolicy, default_timeout, download_all
from tools.providers.keys import required_key


class AluoClient(AluoTasks):
    """Aluo's HTTP contract; knows nothing of MCP. Open with `async with`."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        api_key: str,
        policy: RetryPolicy,
        poll_interval: float = 2.0,
        max_wait: float = 600.0,
        max_pixels: int = 100_000_000,
        plan: Plan = "free",
    ) -> None:
        super().__init__(http, api_key=api_key, policy=policy)
        self._poll_interval = poll_interval
        self._max_wait = max_wait
        self._max_pixels = max_pixels
        self.plan: Plan = plan

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: RetryPolicy,
        downloads: ResultDownloads | None = None,
    ) -> AluoClient:
        """Build the client from settings.

        Raises:
            NotConfigured: ALUO_API_KEY is not set.
        """
        key = required_key(
            settings.aluo_api_key,
            "Aluo is not configured: set ALUO_API_KEY to an Aluo API key (it starts with sk-; create one in "
            "your aluo.ai account) and restart the server.",
        )
        http = httpx2.AsyncClient(
            base_url=settings.aluo_base_url.rstrip("/") + "/",
            timeout=default_timeout(settings.provider_timeout),
            transport=transport,
        )
        client = cls(
            http,
            api_key=key,
            policy=policy,
            poll_interval=settings.aluo_poll_interval,
            max_wait=settings.aluo_max_wait,
            max_pixels=settings.max_pixels,
            plan=getattr(settings, "aluo_plan", "free"),
        )
        downloads = downloads or ResultDownloads.from_settings(settings, transport=transport)
        client.downloads = downloads.bound(hosts=RESULT_HOSTS, base=str(http.base_url))
        return client

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
        price = call_price("remove_background", self.plan)
        env = await self._call("POST", "/remove-bg", what="the background removal", max_charge=price[0], files=files)
        files = encoded = None  # sent: the upload's bytes (up to 10 MB) are not held while the result downloads
        return await self._synchronous(
            env, "the background removal", "the cut-out", price, hooks, ("processedFileName",)
        )

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
        price = edit_price(num_images, self.plan)
        env = await self._call("POST", "/photo-editor/generate", what="the photo edit", max_charge=price[0], **kwargs)
        kwargs = files = encoded = None  # sent: the uploads are not held while the task runs
        return await self._run_task("editor", env, price, hooks)

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
        price = generate_price(variants, self.plan)
        env = await self._call(
            "POST", "/photo-generate/generate", what="the product-photo generation", max_charge=price[0], json=body
        )
        return await self._run_task("generate", env, price, hooks)

    async def generate_background(self, prompt: str, hooks: JobHooks) -> list[ProviderImage]:
        """Generate a backdrop image from text (synchronous).

        Raises:
            InvalidInput: Aluo refused the request (e.g. "Prompt is required").
            AuthFailed, OutOfCredits, RateLimited, ProviderUnavailable: per the error tree.
        """
        await hooks.progress("generating the background on Aluo", 0.1)
        price = call_price("generate_background", self.plan)
        env = await self._call(
            "POST",
            "/ai-generate-background",
            what="the background generation",
            max_charge=price[0],
            json={"prompt": prompt},
        )
        return await self._synchronous(env, "the background generation", "the background", price, hooks, ())

    async def resume(self, ref: dict[str, Any], hooks: JobHooks) -> list[ProviderImage]:
        """Continue polling a task remembered before a restart (never re-submits paid work).

        Raises:
            JobFailed: nothing resumable was remembered, or the task FAILED / is unknown.
            ProviderError: as for the feature that started it.
        """
        kind, task_id = ref.get("kind"), ref.get("task_id")
        price = ref.get("price")
        price_value = float(price) if isinstance(price, int | float) and not isinstance(price, bool) else None
        if kind not in TASK_PATH or not isinstance(task_id, str) or not task_id:
            raise JobFailed(
                "This Aluo job cannot be resumed after the restart: the server stopped before Aluo answered with a "
                "task id, so it was not re-sent. If the request had reached Aluo it may have been charged (Aluo "
                "charges a background removal when it is called, and a task when it succeeds): run check_credits "
                "before running it again.",
                provider=PROVIDER,
                charged=True,
                max_charge=price_value,
            )
        basis: Basis = "estimated" if ref.get("basis") == "estimated" else "documented"
        return await self._poll(
            kind,
            task_id,
            hooks,
            price=(price_value or 0.0, basis),
            deducted=float(ref.get("deducted") or 0),
            already_charged=ref.get("charged") is not None,
        )

    async def balance(self) -> Balance:
        """Aluo has no balance endpoint: the last `credits_remaining` one of its answers carried."""
        if self.credits_remaining is None or self._remaining_at is None:
            return Balance(
                None,
                "unknown: Aluo has no balance endpoint and its documents give no balance field (some answers may "
                "carry credits_remaining; see aluo.ai for the live balance)",
            )
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._remaining_at))
        return Balance(
            self.credits_remaining,
            f"last reported by Aluo (credits_remaining at {stamp}); it has no balance endpoint, so this "
            "updates after each paid call",
        )

    # -- synchronous calls ---------------------------------------------------------------------------

    async def _synchronous(
        self,
        env: Envelope,
        what: str,
        noun: str,
        price: tuple[float, Basis],
        hooks: JobHooks,
        meta_keys: tuple[str, ...],
    ) -> list[ProviderImage]:
        # Charged at call time: what Aluo reported, else the plan's price with its basis.
        if env.deducted:
            await hooks.charged(env.deducted, basis="reported")
        else:
            await hooks.charged(price[0], basis=price[1])
        url = result_url(env.data)
        if url is None:
            raise self._no_result(what, price[0])
        await hooks.progress(f"downloading {noun}", 0.8)
        cost = env.deducted or price[0]
        (data,) = await download_all(
            self._http, [url], provider=PROVIDER, policy=self._policy, max_charge=cost, downloads=self.downloads
        )
        meta = {k: env.data[k] for k in meta_keys if isinstance(env.data.get(k), str)}
        return [ProviderImage(data, meta=meta, ref={"url": url})]

    # -- inputs --------------------------------------------------------------------------------------

    async def _fit(self, source: ImageSource) -> fitting.Encoded:
        return await fitting.fit_source(source, UPLOAD_LIMITS, self._max_pixels)


def _upload_name(source: ImageSource, encoded: fitting.Encoded, default: str) -> str:
    stem = source.path.stem if source.path is not None and source.kind == "path" else default
    return f"{stem or default}.{encoded.extension}"
