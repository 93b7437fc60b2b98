"""Fake Aluo AI server implementing /work/shared/providers.md §2 (seeds 000, 001, 002).

Routes (the client's base URL is "<served>/api"; it joins relative paths such as "/remove-bg"):

    POST /api/remove-bg                 multipart `file` or `imageUrl`; synchronous transparent PNG
    POST /api/photo-editor/generate     JSON {prompt, imageUrls[1..5], ...} or multipart file0..file4
    GET  /api/photo-editor/status       ?taskId=edit_<n>  PENDING -> SUCCESS | FAILED
    POST /api/photo-generate/generate   JSON {prompt, size, nVariants 1|2|4, outputFormat, resolution?}
    GET  /api/photo-generate/status     ?taskId=task_<n>  like the editor, plus `timings`
    POST /api/ai-generate-background    JSON {prompt}; synchronous
    GET  /cdn/{name}                    the result bytes (no auth), a real Pillow image

Documented (seed): the envelopes, `Bearer sk-...` auth, the edit/generate validation messages,
the 10 aspect ratios, png|jpeg|webp, Free/PRO prices (edit 40/35; generate 40/80/160 and 35/70/140),
async jobs charged only on SUCCESS ("deducted ... after obtaining the results"), remove-bg charged at
call time and refunded on failure (providers.md §2.1, from the overview page).

Not in the seeds, so off unless a knob says so:
- `credits_deducted` / `credits_remaining` in the envelope (only the overview page's example shows
  them): `credit_fields=True` adds them; by default no answer carries a credit amount.

Inferred (providers.md says so, or the seeds are silent), pinned here:
- error `code` per HTTP status: 401 -> -2, 402 -> 402, 5xx -> 500, anything else (400, 404, 429) -> -1;
  429 is the plain error envelope plus `Retry-After`.
- remove-bg / ai-generate-background prices are unknown: knobs, default 1 credit.
- ai-generate-background takes JSON and answers `data.url` (a JPEG here); the seed says only
  "background image URL", so `background_shape="images"` answers `data.images[0].url` instead.
- an edit with numImages > 1 is charged the per-edit price once per output image (seed 001 gives
  the per-edit price only; generation is billed per image in seed 002).
- status payloads: PENDING carries `images: []`; FAILED carries `images: []` and an `error` text;
  editor SUCCESS adds `description`; every image is {url, width, height, content_type}.
- the balance is checked at submit (402) but charged on the SUCCESS poll; if the balance has
  meanwhile dropped below the cost the job ends FAILED ("Insufficient credits") and charges nothing.
- `credits_deducted` is what *this* request deducted (0 on submit and PENDING polls).
- output size: `image_long_side` px on the long side (x2 for 2K, x4 for 4K); an edit without
  aspectRatio keeps the first uploaded file's ratio, or 1:1 for URL inputs (the fake fetches nothing).
- numImages: any positive integer (no documented maximum); outputFormat "jpg" is rejected (enum is jpeg).
- rate limit (Free 10/min, PRO 100/min) is off unless `rate_limit_per_min` is set.
"""

from __future__ import annotations

import hmac
import io
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .faults import Fault, FaultQueue
from .images import MIME, aspect_size, image_bytes
from .recording import Recorded, record

DEFAULT_API_KEY = "sk-test-aluo-0000000000000000"
RATIOS = ("1:1", "3:2", "2:3", "16:9", "9:16", "4:3", "3:4", "4:5", "5:4", "21:9")
FORMATS = ("png", "jpeg", "webp")
RESOLUTIONS = {"1K": 1, "2K": 2, "4K": 4}
PRICES: dict[str, dict[str, Any]] = {
    "free": {"edit": 40, "generate": {1: 40, 2: 80, 4: 160}},
    "pro": {"edit": 35, "generate": {1: 35, 2: 70, 4: 140}},
}
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
_EXT = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_PIL_OK = {"PNG", "JPEG", "WEBP"}  # remove-bg accepts PNG, JPG, WebP (seed 000)
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Handler = Callable[[Request, Recorded], Awaitable[Response]]


@dataclass
class Charge:
    task_id: str  # edit_<n>, task_<n>, rbg_<n> or bg_<n>
    amount: int  # negative for a refund
    what: str  # "edit", "generate", "remove-bg", "remove-bg refund", "background"


@dataclass
class Job:
    task_id: str
    kind: str  # "edit" | "generate"
    prompt: str
    fmt: str
    count: int
    size: tuple[int, int]
    cost: int
    polls: int = 0
    status: str = "PENDING"
    images: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class ApiError(Exception):
    """Raised inside a handler; becomes the error envelope."""

    def __init__(self, status: int, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.error = status, message, error or message


def _code_for(status: int) -> int:
    return {401: -2, 402: 402}.get(status, 500 if status >= 500 else -1)


def error_response(
    status: int, message: str, error: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": _code_for(status), "success": False, "message": message, "error": error or message}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeAluo:
    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        credits: int = 1000,
        tier: str = "free",
        polls_until_done: int = 2,
        remove_bg_cost: int = 1,
        background_cost: int = 1,
        image_long_side: int = 64,
        delay_s: float = 0.0,
        fail_jobs: bool = False,
        fail_message: str = "Image generation failed",
        rate_limit_per_min: int | None = None,
        credit_fields: bool = False,
        background_shape: str = "url",
    ) -> None:
        if tier not in PRICES:
            raise ValueError(f"tier must be one of {sorted(PRICES)}")
        self.api_key = api_key
        self.balance = credits
        self.tier = tier
        self.polls_until_done = polls_until_done
        self.remove_bg_cost = remove_bg_cost
        self.background_cost = background_cost
        self.image_long_side = image_long_side
        self.delay_s = delay_s  # slept before every answer (API and CDN)
        self.fail_jobs = fail_jobs  # read when a job reaches its terminal poll, so tests may flip it late
        self.fail_message = fail_message
        self.rate_limit_per_min = rate_limit_per_min
        self.credit_fields = credit_fields  # undocumented credits_deducted/credits_remaining: off by default
        if background_shape not in ("url", "images"):
            raise ValueError("background_shape is 'url' or 'images'")
        self.background_shape = background_shape
        self.cdn_html = False  # /cdn answers 200 text/html instead of the image (a CDN error page)
        self.requests: list[Recorded] = []
        self.charges: list[Charge] = []
        self.jobs: dict[str, Job] = {}
        self.cdn: dict[str, tuple[bytes, str]] = {}  # name -> (bytes, content type)
        self._faults = FaultQueue()
        self._ids = itertools.count(1000)
        self._hits: deque[float] = deque()
        # Routes take every method so that even a wrong-method request is recorded (then 405).
        api: list[tuple[str, Handler, str | None]] = [
            ("/remove-bg", self._remove_bg, "POST"),
            ("/photo-editor/generate", self._edit, "POST"),
            ("/photo-editor/status", self._edit_status, "GET"),
            ("/photo-generate/generate", self._generate, "POST"),
            ("/photo-generate/status", self._gen_status, "GET"),
            ("/ai-generate-background", self._background, "POST"),
            ("/{rest:path}", self._not_found, None),
        ]
        api_routes = [Route(p, self._endpoint(h, m), methods=_ALL_METHODS) for p, h, m in api]
        public: list[tuple[str, Handler, str | None]] = [
            ("/cdn/{name}", self._cdn, "GET"),
            ("/{rest:path}", self._not_found, None),
        ]
        other = [Route(p, self._endpoint(h, m, auth=False), methods=_ALL_METHODS) for p, h, m in public]
        self.app = Starlette(routes=[Mount("/api", routes=api_routes), *other])

    # -- public knobs -------------------------------------------------------------------------------

    @staticmethod
    def api_base(served: str) -> str:
        """The client's base URL for a fake served at `served` (e.g. by loopback.serve)."""
        return served.rstrip("/") + "/api"

    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` requests whose full path starts with `path_prefix` with `status`.

        `path_prefix` is the full path ("/api/photo-editor/status", "/cdn/"). `body` None gives the
        error envelope for `status` (429 also gets `Retry-After: 1` unless `headers` is given);
        a dict is sent as JSON; str/bytes are sent raw as text/html (override with `headers`).
        """
        if not path_prefix.startswith(("/api", "/cdn")):
            raise ValueError("path_prefix is a full path: '/api/...' or '/cdn/...'")
        self._faults.append(Fault(path_prefix, status, times, headers, body))

    def fail_cdn_once(self) -> None:
        """The next /cdn download answers 500 once (a retry then succeeds)."""
        self.fail_next("/cdn/", 500)

    def prices(self) -> dict[str, Any]:
        return PRICES[self.tier]

    # -- plumbing -------------------------------------------------------------------------------------

    def _endpoint(self, handler: Handler, method: str | None, *, auth: bool = True) -> Callable:
        # Every request is recorded first, so tests see even the ones a fault or auth refused.
        async def endpoint(request: Request) -> Response:
            rec = await record(request)
            self.requests.append(rec)
            if self.delay_s:
                await anyio.sleep(self.delay_s)
            fault = self._take_fault(rec.path)
            if fault is not None:
                return fault
            if method is not None and request.method not in (method, "HEAD" if method == "GET" else method):
                return error_response(405, f"Method {request.method} not allowed on {rec.path}")
            if auth and method is not None:
                if not self._authorized(rec):
                    return error_response(401, "Unauthorized", "Invalid or missing API key")
                limited = self._rate_limited()
                if limited is not None:
                    return limited
            try:
                return await handler(request, rec)
            except ApiError as exc:
                return error_response(exc.status, exc.message, exc.error)

        return endpoint

    def _take_fault(self, path: str) -> Response | None:
        fault = self._faults.take(path)
        if fault is None:
            return None
        headers = fault.headers
        if headers is None and fault.status == 429:
            headers = {"Retry-After": "1"}
        if fault.body is None:
            return error_response(fault.status, f"Injected HTTP {fault.status}", headers=headers)
        if isinstance(fault.body, dict | list):
            return JSONResponse(fault.body, status_code=fault.status, headers=headers)
        hdrs = {"content-type": "text/html; charset=utf-8", **(headers or {})}
        return Response(fault.body, status_code=fault.status, headers=hdrs)

    def _authorized(self, rec: Recorded) -> bool:
        scheme, _, token = rec.headers.get("authorization", "").partition(" ")
        ok = hmac.compare_digest(token.strip().encode(), self.api_key.encode())
        return scheme.lower() == "bearer" and ok

    def _rate_limited(self) -> Response | None:
        if self.rate_limit_per_min is None:
            return None
        now = time.monotonic()
        while self._hits and now - self._hits[0] >= 60:
            self._hits.popleft()
        if len(self._hits) >= self.rate_limit_per_min:
            wait = max(1, int(60 - (now - self._hits[0])) + 1)
            return error_response(429, "Too many requests", headers={"Retry-After": str(wait)})
        self._hits.append(now)
        return None

    def _ok(self, data: dict[str, Any], deducted: int = 0) -> JSONResponse:
        body: dict[str, Any] = {"code": 0, "success": True, "data": data}
        if self.credit_fields:
            body |= {"credits_deducted": deducted, "credits_remaining": self.balance}
        return JSONResponse(body)

    def _require_credits(self, cost: int) -> None:
        if self.balance < cost:
            raise ApiError(402, "Insufficient credits", f"Balance {self.balance} is below the cost {cost}")

    def _charge(self, task_id: str, amount: int, what: str) -> None:
        self.balance -= amount
        self.charges.append(Charge(task_id, amount, what))

    def _store(self, request: Request, name: str, data: bytes, content_type: str) -> str:
        self.cdn[name] = (data, content_type)
        return f"{str(request.base_url).rstrip('/')}/cdn/{name}"

    def _result_image(self, request: Request, name: str, w: int, h: int, fmt: str) -> dict[str, Any]:
        url = self._store(request, f"{name}.{_EXT[fmt]}", image_bytes(w, h, fmt), MIME[fmt])
        return {"url": url, "width": w, "height": h, "content_type": MIME[fmt]}

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    # -- routes ---------------------------------------------------------------------------------------

    async def _remove_bg(self, request: Request, rec: Recorded) -> Response:
        upload = rec.files.get("file")
        image_url = rec.form.get("imageUrl", "").strip()
        if upload is None and not image_url:
            raise ApiError(400, "Please upload an image file", "Send a `file` part or an `imageUrl` field")
        if upload is None and not image_url.startswith(("http://", "https://")):
            raise ApiError(400, f"Invalid image URL {image_url[:80]!r}: use an http(s) URL")
        if upload is not None and len(upload[2]) > MAX_UPLOAD_BYTES:
            raise ApiError(400, "File too large (max 10MB)")
        self._require_credits(self.remove_bg_cost)
        task_id = self._new_id("rbg")
        # Charged at call time, refunded if processing fails (providers.md §2.1).
        self._charge(task_id, self.remove_bg_cost, "remove-bg")
        if upload is not None:
            original = upload[0] or "upload"
            try:
                with Image.open(io.BytesIO(upload[2])) as img:
                    kind, (w, h) = img.format, img.size
                    img.load()
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                self._charge(task_id, -self.remove_bg_cost, "remove-bg refund")
                raise ApiError(400, f"Invalid image file: cannot decode {original!r}") from exc
            if kind not in _PIL_OK:
                self._charge(task_id, -self.remove_bg_cost, "remove-bg refund")
                raise ApiError(400, f"Unsupported image format {kind}: use PNG, JPG or WebP")
        else:
            original = urlsplit(image_url).path.rsplit("/", 1)[-1] or "image"
            w = h = self.image_long_side
        stem = original.rsplit(".", 1)[0] or "image"
        processed = f"{stem}_nobg.png"
        data = image_bytes(w, h, "png", transparent=True)
        url = self._store(request, f"{task_id}_nobg.png", data, "image/png")  # no client text in URLs
        result = {
            "url": url,
            "originalFileName": original,
            "processedFileName": processed,
            "width": w,
            "height": h,
            "fileSize": len(data),
            "contentType": "image/png",
        }
        return self._ok(result, self.remove_bg_cost)

    async def _edit(self, request: Request, rec: Recorded) -> Response:
        ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            body = _json_object(rec)
            urls = body.get("imageUrls") if body.get("imageUrls") is not None else []
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise ApiError(400, "imageUrls must be an array of URL strings")
            files: list[tuple[str, str, bytes]] = []
        elif ctype == "multipart/form-data":
            body = dict(rec.form)
            names = sorted((k for k in rec.files if k.startswith("file") and k[4:].isdigit()), key=_file_no)
            files = [rec.files[k] for k in names]
            urls = []
        else:
            raise ApiError(400, "Unsupported Content-Type", "Send application/json or multipart/form-data")
        prompt = _prompt(body)
        count = len(urls) + len(files)
        if count == 0:
            raise ApiError(400, "At least one image URL is required")
        if count > 5:
            raise ApiError(400, "Maximum 5 images allowed")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ApiError(400, "Invalid image URL", f"imageUrls must be http(s) URLs, got {u[:80]!r}")
        ratio = body.get("aspectRatio") or None
        if ratio is not None and ratio not in RATIOS:
            raise ApiError(400, f"Invalid aspectRatio {ratio!r}: use one of {', '.join(RATIOS)}")
        fmt = _output_format(body)
        num = body.get("numImages", 1)
        if isinstance(num, str) and num.strip().isdigit():
            num = int(num)  # multipart fields are strings
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ApiError(400, f"numImages must be a positive integer, got {num!r}")
        size = aspect_size(ratio or "1:1", self.image_long_side)
        kinds: list[str] = []
        for i, (fname, _ctype, data) in enumerate(files):
            try:
                with Image.open(io.BytesIO(data)) as img:
                    kinds.append(img.format or "")
                    dims = img.size
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise ApiError(400, f"Invalid image file: file{i} ({fname!r}) is not an image") from exc
            if i == 0 and ratio is None:  # no ratio asked: keep the first input's shape
                scale = self.image_long_side / max(dims)
                size = (max(1, round(dims[0] * scale)), max(1, round(dims[1] * scale)))
        cost = self.prices()["edit"] * num  # per output image (see the docstring)
        self._require_credits(cost)
        task_id = self._new_id("edit")
        inputs = list(urls)  # uploaded files become CDN URLs, as the real service hosts them
        for i, ((_, _, data), kind) in enumerate(zip(files, kinds, strict=True)):
            ext = kind.lower().replace("jpeg", "jpg") or "bin"
            mime = Image.MIME.get(kind, "application/octet-stream")
            inputs.append(self._store(request, f"{task_id}_in{i}.{ext}", data, mime))
        self.jobs[task_id] = Job(task_id, "edit", prompt, fmt, num, size, cost)
        # provider/model as in seed 001's sample (seed 000's prose says "fal").
        head = {"provider": "ai-provider", "model": "default", "taskId": task_id, "prompt": prompt}
        tail = {"inputImages": inputs, "numImages": num, "outputFormat": fmt}
        return self._ok({**head, "aspectRatio": ratio, **tail})

    async def _generate(self, request: Request, rec: Recorded) -> Response:
        if rec.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(400, "Unsupported Content-Type", "Send application/json")
        body = _json_object(rec)
        prompt = _prompt(body)
        size = body.get("size") or "1:1"
        if size not in RATIOS:
            raise ApiError(400, f"Invalid size {size!r}: use one of {', '.join(RATIOS)}")
        n = body.get("nVariants", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n not in (1, 2, 4):
            raise ApiError(400, "nVariants must be 1, 2, or 4")
        fmt = _output_format(body)
        resolution = body.get("resolution")
        if resolution is not None and (not isinstance(resolution, str) or resolution not in RESOLUTIONS):
            raise ApiError(400, f"Invalid resolution {resolution!r}: use 1K, 2K or 4K")
        cost = self.prices()["generate"][n]
        self._require_credits(cost)
        task_id = self._new_id("task")
        dims = aspect_size(size, self.image_long_side * RESOLUTIONS.get(resolution or "1K", 1))
        self.jobs[task_id] = Job(task_id, "generate", prompt, fmt, n, dims, cost)
        head = {"provider": "ai-provider", "model": "default", "taskId": task_id, "prompt": prompt}
        return self._ok({**head, "size": size, "nVariants": n, "outputFormat": fmt})

    async def _edit_status(self, request: Request, rec: Recorded) -> Response:
        return self._poll(request, rec, "edit")

    async def _gen_status(self, request: Request, rec: Recorded) -> Response:
        return self._poll(request, rec, "generate")

    def _poll(self, request: Request, rec: Recorded, kind: str) -> Response:
        task_id = rec.query.get("taskId", "").strip()
        if not task_id:
            raise ApiError(400, "taskId is required")
        job = self.jobs.get(task_id)
        if job is None or job.kind != kind:
            raise ApiError(404, "Task not found", f"No {kind} task with id {task_id!r}")
        deducted = 0
        if job.status == "PENDING":
            job.polls += 1
            if job.polls > self.polls_until_done:
                deducted = self._finish(request, job)
        data: dict[str, Any] = {"status": job.status, "images": job.images}
        if job.status == "FAILED":
            data["error"] = job.error
        if job.status == "SUCCESS" and kind == "edit":
            data["description"] = f"Edited image: {job.prompt}"
        if kind == "generate" and job.status != "PENDING":
            data["timings"] = {"inference": 0.5}
        return self._ok(data, deducted)

    def _finish(self, request: Request, job: Job) -> int:
        """Move a job to its terminal state; charge on SUCCESS only. Returns the amount charged."""
        if self.fail_jobs:
            job.status, job.error = "FAILED", self.fail_message
            return 0
        if self.balance < job.cost:  # spent meanwhile by other calls: never go below zero
            job.status, job.error = "FAILED", "Insufficient credits"
            return 0
        w, h = job.size
        job.images = [self._result_image(request, f"{job.task_id}_{i}", w, h, job.fmt) for i in range(job.count)]
        job.status = "SUCCESS"
        self._charge(job.task_id, job.cost, job.kind)
        return job.cost

    async def _background(self, request: Request, rec: Recorded) -> Response:
        body = _json_object(rec) if rec.json is not None or rec.body else {}
        _prompt(body)
        self._require_credits(self.background_cost)
        task_id = self._new_id("bg")
        self._charge(task_id, self.background_cost, "background")
        w, h = aspect_size("1:1", self.image_long_side)
        url = self._result_image(request, task_id, w, h, "jpeg")["url"]
        data: dict[str, Any] = {"url": url} if self.background_shape == "url" else {"images": [{"url": url}]}
        return self._ok(data, self.background_cost)

    async def _cdn(self, request: Request, rec: Recorded) -> Response:
        item = self.cdn.get(request.path_params["name"])
        if item is None:
            return Response("Not Found", status_code=404, media_type="text/plain")
        if self.cdn_html:
            return Response("<html><body>Access denied</body></html>", media_type="text/html")
        return Response(item[0], media_type=item[1])

    async def _not_found(self, request: Request, rec: Recorded) -> Response:
        return error_response(404, "Not found", f"No route for {rec.method} {rec.path}")


def _json_object(rec: Recorded) -> dict[str, Any]:
    if not isinstance(rec.json, dict):
        raise ApiError(400, "Invalid JSON body", "The body must be a JSON object")
    return rec.json


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "Prompt is required")
    return prompt


def _output_format(body: dict[str, Any]) -> str:
    fmt = body.get("outputFormat") or "png"
    if fmt not in FORMATS:
        raise ApiError(400, f"Invalid outputFormat {fmt!r}: use png, jpeg or webp")
    return fmt


def _file_no(name: str) -> int:
    return int(name[4:])
