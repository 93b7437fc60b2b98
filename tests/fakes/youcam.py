"""Fake Perfect Corp "Perfect AI API" (YouCam Online Editor), s2s v1.0: shared/providers.md §1.

Implements §1.1-§1.8 and the §1.10 checklist: RSA id_token -> access token exchange, file create +
signed-URL-style PUT upload, run task (per-feature table of §1.4), status polling with the 10 s loss
rule, style catalogs, credits (+ history) and the rate limits.

Inferred parts (providers.md marks them so, or leaves them open), pinned here:
- auth errors: undecryptable/malformed token or body -> 400 InvalidParameters; wrong client id or a
  timestamp more than `auth_max_age_s` (300 s) away from now -> 401 InvalidAccessToken body.
- the upload URL is `/upload/<opaque token>` (file ids hold "/" and "+"); a PUT carrying an
  Authorization header, a different Content-Type or an unknown token gets 403 (what S3 does).
- slugs wig, obj-removal, aging, colorize; `custom_info` on the aging results item (the seed lost the
  key: `aging_info_key=None` puts the fields beside `data` instead, as v2 does); the makeup
  product-recommendation object is put under `recommendation` (knob, optional by contract).
- unknown slugs -> 404; text-to-image has no file step (file/text-to-image -> 404).
- catalog listings: `groups` / `styles` with `info{title, thumb}` (medium confidence, providers.md §1.6);
  `catalog_shape="flat"` answers `style_groups` / `templates` with flat `title` / `thumb` instead.
- a task that is not polled for `loss_window_s` while running is lost (400 "Invalid task ID", never
  charged); a finished task stays readable. Units are checked at submit and charged on success,
  soonest-expiring entry first; if the balance fell below the cost meanwhile the task ends in
  `error`/`unknown_internal_error`, uncharged. `output_ext` is optional (seed: not required) and
  defaults to the first allowed value; its allowed values are the seed's enums.

request_id (seed 003: "Requests with the same request_id will be ignored by the server ... if the same
file_id is sent with the same request_id, the engine won't re-run the task"): a run with the same source
file id and the same request_id answers with the earlier task, whatever else changed (mask, reference,
params, output_ext), and charges nothing more. Kept per account and feature endpoint (inferred: the
seed documents request_id on each feature's run endpoint).

Size, format and face limits (seed 003 size table), checked by the engine when the task runs:
- a file of 10,000,000 bytes or more -> `exceed_max_filesize` (seed code; "10MB" read as decimal).
- a long side over the feature's limit -> `error_exceed_max_image_size` (inferred: a later docs' code).
- a format the feature does not accept (hairstyle: jpg only) -> `invalid_parameter` (inferred code).
- face width: the fake cannot see faces; `face_width_fraction` (a knob, off by default) models the face
  as that share of the photo's width, and a face under 128 px on a hair feature -> `error_no_face`
  (inferred code). Pose angles are not modelled. wig and aging have no row in the table: the hair
  features' limits are used (inferred).
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import math
import re
import secrets
import string
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import anyio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .faults import Fault, FaultQueue
from .images import MIME, image_bytes, scene
from .recording import Recorded, record

_CT = ("image/jpg", "image/jpeg", "image/png")
STYLE, PROMPT, SCALE, NONE = "style", "prompt+style", "scale", "none"


_JPG_PNG, _JPG_PNG_HEIC = ("JPEG", "PNG"), ("JPEG", "PNG", "HEIF")
MAX_FILE_BYTES = 10_000_000  # "< 10MB"
MIN_FACE_WIDTH = 128


@dataclass(frozen=True)
class FeatureSpec:
    file_sets: tuple[str, ...]  # required file_sets keys, one id each; () = no file step
    params: str  # STYLE | PROMPT | SCALE | NONE
    exts: tuple[str, ...]  # allowed output_ext; the first is the default
    content_types: tuple[str, ...] = _CT  # accepted at file create
    max_side: int = 1024  # long side limit of the inputs (seed size table)
    formats: tuple[str, ...] = _JPG_PNG  # Pillow formats the engine accepts
    face: bool = False  # face width >= 128 applies


FEATURES: dict[str, FeatureSpec] = {
    "hair-style": FeatureSpec(("src_ids",), STYLE, ("jpg",), formats=("JPEG",), face=True),
    **{s: FeatureSpec(("src_ids",), STYLE, ("jpg",), face=True) for s in ("wig", "hair-ext", "hair-bang", "hair-vol")},
    "aging": FeatureSpec(("src_ids",), NONE, ("jpg",)),
    "mu-trans-rec": FeatureSpec(
        ("src_ids", "ref_ids"), NONE, ("jpg",), (*_CT, "image/tiff", "image/gif"), formats=_JPG_PNG_HEIC
    ),
    "obj-removal": FeatureSpec(("src_ids", "mask_ids"), NONE, ("jpg", "webp"), max_side=4096, formats=_JPG_PNG_HEIC),
    "colorize": FeatureSpec(("src_ids",), NONE, ("jpg", "webp"), max_side=4096),
    "sod": FeatureSpec(("src_ids",), NONE, ("png", "webp"), max_side=4096, formats=_JPG_PNG_HEIC),
    "enhance": FeatureSpec(("src_ids",), SCALE, ("jpg", "webp"), max_side=4096, formats=_JPG_PNG_HEIC),
    "text-to-image": FeatureSpec((), PROMPT, ("jpg",)),
}
DEFAULT_COSTS: dict[str, float] = dict.fromkeys(FEATURES, 1)
# credit-history `action` names (spec unit_system enum); the rest follow the api_<slug> pattern
_ACTIONS = {"sod": "api_background_removal", "enhance": "api_photo_enhance", "wig": "wig"}
_ACTIONS |= {"obj-removal": "api_object_removal", "hair-style": "api_hair_style"}
CATALOG_FEATURES = ("hair-style", "wig", "hair-ext", "hair-bang", "hair-vol", "text-to-image")
_GROUP_TITLES = ("Female", "Male", "Trending")
_AGES = (20, 45, 60)  # generated ages; the input photo is estimated at 32
_LOSS_ERR = {"status": 400, "error": "Invalid task ID"}
_UNAUTHORIZED = {"status": 401, "error": "Unauthorized", "error_code": "InvalidAccessToken"}


@functools.cache
def _private_key() -> rsa.RSAPrivateKey:
    # 1024-bit like the console's keys (a 172-char id_token); generated once per process for speed.
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@functools.cache
def catalog(feature: str) -> list[tuple[int, str, list[tuple[int, str]]]]:
    """Deterministic [(group_id, title, [(style_id, title)])]: 3 groups, 25 styles in the first.

    Ids are above 2^53 and most are not exact as float64, so a client that parses them as floats
    sends a different id and gets InvalidStyle.
    """
    fi = CATALOG_FEATURES.index(feature)
    out = []
    for gi, title in enumerate(_GROUP_TITLES):
        # odd ids are never exact as doubles at this size (spacing 4); the first ones are the seed's
        gid = 18213963761051864 + fi * 1_000_004 + gi * 10_004 + (gi > 0)
        base = 22205685004925400 + fi * 1_000_004 + gi * 10_004
        n = 25 if gi == 0 else 3
        out.append((gid, title, [(base + 2 * k + (k > 0), f"{title} {feature} {k + 1}") for k in range(n)]))
    return out


def _info(flat: bool, title: str, thumb: str | None = None) -> dict[str, Any]:
    fields = {"title": title, **({"thumb": thumb} if thumb else {})}
    return fields if flat else {"info": fields}


def _b64_id(n: int) -> str:
    # Real ids are standard base64 with "+", "/" and often "="; the prefix guarantees "+" and "/".
    return base64.b64encode(b"\xfb\xef\xff" + secrets.token_bytes(n - 3)).decode()


def _err(status: int, error: str, code: str | None = None, headers: dict | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "error": error}
    if code:
        body["error_code"] = code
    return JSONResponse(body, status, headers=headers)


def _bad(error: str = "Invalid parameter value", code: str = "InvalidParameters") -> JSONResponse:
    return _err(400, error, code)


def _ok(result: dict) -> JSONResponse:
    return JSONResponse({"status": 200, "result": result})


def _s3_denied(msg: str) -> Response:
    xml = f"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>{msg}</Message></Error>"
    return Response(xml, 403, media_type="application/xml")


def _encode(img: Image.Image, ext: str) -> bytes:
    buf = io.BytesIO()
    if ext == "jpg":
        img.convert("RGB").save(buf, "JPEG", quality=85)
    else:
        img.save(buf, {"png": "PNG", "webp": "WEBP"}[ext])
    return buf.getvalue()


def _tint(img: Image.Image, rgb: tuple[int, int, int]) -> Image.Image:
    rgb_img = img.convert("RGB")
    return Image.blend(rgb_img, Image.new("RGB", rgb_img.size, rgb), 0.3)


def _cutout(img: Image.Image) -> Image.Image:
    out = img.convert("RGBA")
    alpha, (w, h) = Image.new("L", out.size, 0), out.size
    ImageDraw.Draw(alpha).ellipse((w // 6, h // 6, w * 5 // 6, h * 5 // 6), 255)
    out.putalpha(alpha)
    return out


@dataclass
class StoredFile:
    file_id: str
    content_type: str
    file_name: str
    data: bytes | None = None  # None until the PUT arrives (or the bytes of a result)


@dataclass
class Task:
    task_id: str
    feature: str
    client_id: str
    action_id: int
    file_sets: dict[str, str]  # "src_ids" -> file id, ...
    params: dict[str, Any]
    ext: str
    last_seen: float  # monotonic time of creation or of the last poll
    engine_error: str | None
    polls: int = 0
    state: str = "running"  # running | success | error | lost
    error: str | None = None
    results: dict[str, Any] | None = None  # {"data": [...], "extra": {...}}; urls added per response


@dataclass
class CreditEntry:
    id: int
    type: str  # ApiSubsToken | ApiPaygToken
    amount_dec: float
    expiry_ms: int

    def to_json(self) -> dict[str, Any]:  # `amount` is the deprecated integer twin of amount_dec
        a = self.amount_dec
        return {
            "id": self.id,
            "type": self.type,
            "amount": int(a),
            "amount_dec": round(a, 2),
            "expiry": self.expiry_ms,
        }


@dataclass
class Charge:
    task_id: str
    amount: float
    what: str  # feature slug


def _fault_response(fault: Fault) -> Response:
    if isinstance(fault.body, bytes | str):
        return Response(fault.body, fault.status, headers=fault.headers)
    body = fault.body
    if body is None:
        body = {
            400: {"status": 400, "error": "Invalid parameter value", "error_code": "InvalidParameters"},
            401: _UNAUTHORIZED,
            429: {"status": 429, "error": "Too many requests"},
        }.get(fault.status, {"status": fault.status, "error": HTTPStatus(fault.status).phrase})
    return JSONResponse(body, fault.status, headers=fault.headers)


Handler = Callable[[Request, Recorded, str], Awaitable[Response]]


class FakeYouCam:
    """One YouCam account (one client id / key pair) on a Starlette `app`.

    Knobs are plain attributes and may be changed between requests: `polls_until_done`,
    `polling_interval_ms`, `token_ttl_s` (for tokens issued later), `loss_window_s`, `engine_error`
    (taken by tasks submitted later), `delay_s`, `rate_limits` [(count, window_s)] or None, `costs`
    {slug: units}, `auth_max_age_s`, `makeup_recommendation`. Faults: `fail_next()`,
    `expire_tokens()`. State: `requests`, `charges`, `balance` (settable), `credit_entries`, `history`,
    `files`, `tasks`, `results`, `rate_limited`, `lost_tasks`.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        credits: float = 100,
        polls_until_done: int = 2,
        polling_interval_ms: int = 1000,
        token_ttl_s: float = 7200.0,
        loss_window_s: float = 10.0,
        auth_max_age_s: float = 300.0,
        engine_error: str | None = None,
        delay_s: float = 0.0,
        rate_limits: list[tuple[int, float]] | None = [(100, 60.0), (100, 300.0)],  # noqa: B006
        costs: dict[str, float] | None = None,
        makeup_recommendation: bool = True,
        face_width_fraction: float | None = None,
        aging_info_key: str | None = "custom_info",
        catalog_shape: str = "groups",
    ) -> None:
        alphabet = string.ascii_letters + string.digits
        self.client_id = client_id or "".join(secrets.choice(alphabet) for _ in range(32))
        spki = (
            _private_key()
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self.secret_key = base64.b64encode(spki).decode()  # what the console shows as "Secret Key"
        self.polls_until_done = polls_until_done
        self.polling_interval_ms = polling_interval_ms
        self.token_ttl_s = token_ttl_s
        self.loss_window_s = loss_window_s
        self.auth_max_age_s = auth_max_age_s
        self.engine_error = engine_error
        self.delay_s = delay_s
        self.rate_limits = list(rate_limits) if rate_limits else None
        self.costs = {**DEFAULT_COSTS, **(costs or {})}
        self.makeup_recommendation = makeup_recommendation
        self.face_width_fraction = face_width_fraction  # the face's share of the photo width (off: None)
        self.aging_info_key = aging_info_key  # inferred key of the aging info; None: its fields beside `data`
        if catalog_shape not in ("groups", "flat"):
            raise ValueError("catalog_shape is 'groups' or 'flat'")
        self.catalog_shape = catalog_shape  # inferred listing keys: see the module docstring
        self.requests: list[Recorded] = []
        self.charges: list[Charge] = []
        self.history: list[dict[str, Any]] = []  # credit history, newest first
        self.files: dict[str, StoredFile] = {}  # file ids and result dst_ids
        self.tasks: dict[str, Task] = {}
        self.results: dict[str, tuple[bytes, str]] = {"thumb.jpg": (image_bytes(32, 32, "jpg"), MIME["jpg"])}
        self.rate_limited = 0
        self._lost = 0
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client_id, monotonic expiry)
        self._hits: dict[str, deque[float]] = {}
        self._uploads: dict[str, str] = {}  # upload token -> file id
        self._dedupe: dict[tuple, str] = {}
        self._faults = FaultQueue()
        now_ms = int(time.time() * 1000)
        self.credit_entries = [
            CreditEntry(13105541279084536, "ApiPaygToken", 40, now_ms - 86_400_000),  # expired: not usable
            CreditEntry(13105541279084537, "ApiSubsToken", credits, now_ms + 30 * 86_400_000),
        ]
        v1 = "/s2s/v1.0"
        self.app = Starlette(
            routes=[
                Route(f"{v1}/client/auth", self._wrap(self._auth, authed=False), methods=["POST"]),
                Route(f"{v1}/client/credit", self._wrap(self._credit), methods=["GET"]),
                Route(f"{v1}/client/credit/history", self._wrap(self._credit_history), methods=["GET"]),
                Route(f"{v1}/file/{{feature}}", self._wrap(self._file_create), methods=["POST"]),
                Route(f"{v1}/task/{{kind}}/{{feature}}", self._wrap(self._catalog), methods=["GET"]),
                Route(f"{v1}/task/{{feature}}", self._wrap(self._run_task), methods=["POST"]),
                Route(f"{v1}/task/{{feature}}", self._wrap(self._task_status), methods=["GET"]),
                Route("/upload/{token}", self._wrap(self._upload, authed=False), methods=["PUT"]),
                Route("/results/{name}", self._wrap(self._result, authed=False), methods=["GET"]),
            ]
        )

    # ---- knobs -------------------------------------------------------------------------------
    def fail_next(
        self,
        path_prefix: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` requests whose path starts with `path_prefix` with `status`.

        `after=True` lets the request take effect first (task created, file stored) and then
        replaces the answer: a response lost on the way back, for idempotency tests.
        """
        self._faults.append(Fault(path_prefix, status, times, headers, body, after))

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (mid-session refresh)."""
        self._tokens = {t: (cid, 0.0) for t, (cid, _) in self._tokens.items()}

    def add_credits(self, amount: float, *, type: str = "ApiPaygToken", expires_in_s: float = 365 * 86400) -> None:
        expiry = int((time.time() + expires_in_s) * 1000)
        self.credit_entries.append(CreditEntry(13105541279084538 + len(self.credit_entries), type, amount, expiry))

    @property
    def balance(self) -> float:
        return sum(e.amount_dec for e in self._usable())

    @balance.setter
    def balance(self, value: float) -> None:  # all usable units move to the soonest-expiring entry
        usable = self._usable()
        if not usable:
            self.add_credits(value, type="ApiSubsToken")
            return
        for e in usable:
            e.amount_dec = 0
        usable[0].amount_dec = value

    @property
    def lost_tasks(self) -> int:
        self._sweep()
        return self._lost

    # ---- plumbing ----------------------------------------------------------------------------
    def _usable(self) -> list[CreditEntry]:
        now_ms = time.time() * 1000
        return sorted((e for e in self.credit_entries if e.expiry_ms > now_ms), key=lambda e: e.expiry_ms)

    def _wrap(self, handler: Handler, *, authed: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rec = await record(request)
            self.requests.append(rec)
            if self.delay_s:
                await anyio.sleep(self.delay_s)
            fault = self._faults.take(rec.path)
            if fault and not fault.after:
                return _fault_response(fault)
            client = ""
            if authed:
                scheme, _, token = rec.headers.get("authorization", "").partition(" ")
                entry = self._tokens.get(token) if scheme.lower() == "bearer" else None
                if entry is None or entry[1] <= time.monotonic():
                    return JSONResponse(_UNAUTHORIZED, 401)
                client = entry[0]
                if (limited := self._rate_limit(token)) is not None:
                    return limited
            response = await handler(request, rec, client)
            return _fault_response(fault) if fault else response

        return endpoint

    def _rate_limit(self, token: str) -> Response | None:
        # Sliding windows over the accepted authenticated requests of one token (§1.8).
        if not self.rate_limits:
            return None
        now = time.monotonic()
        hits = self._hits.setdefault(token, deque())
        longest = max(w for _, w in self.rate_limits)
        while hits and now - hits[0] >= longest:
            hits.popleft()
        for count, window in self.rate_limits:
            inside = [t for t in hits if now - t < window]
            if len(inside) >= count:
                self.rate_limited += 1
                retry = max(1, math.ceil(window - (now - inside[-count])))
                return _err(429, "Too many requests", headers={"Retry-After": str(retry)})
        hits.append(now)
        return None

    def _sweep(self) -> None:
        # The 10 s loss rule, evaluated lazily: a running task not polled within the window is gone.
        now = time.monotonic()
        for task in self.tasks.values():
            if task.state == "running" and now - task.last_seen > self.loss_window_s:
                task.state = "lost"
                self._lost += 1

    def _page(self, items: list[dict], request: Request, max_size: int) -> tuple[list, str | None] | None:
        q = request.query_params
        try:
            size = int(q.get("page_size", "20"))
        except ValueError:
            return None
        if not 1 <= size <= max_size:
            return None
        start, token = 0, q.get("starting_token", "")
        if token not in ("", "null"):  # opaque to clients: here the id of the page's first item
            ids = [str(it["id"]) for it in items]
            if token not in ids:
                return None
            start = ids.index(token)
        end = start + size
        return items[start:end], (str(items[end]["id"]) if end < len(items) else None)

    # ---- routes ------------------------------------------------------------------------------
    async def _auth(self, request: Request, rec: Recorded, _: str) -> Response:
        body = rec.json
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("client_id", "id_token")):
            return _bad()
        try:
            cipher = base64.b64decode(body["id_token"], validate=True)
            plain = _private_key().decrypt(cipher, padding.PKCS1v15()).decode("ascii")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return _bad()
        # OpenSSL's implicit rejection turns a bad padding into random bytes, so parse strictly.
        m = re.fullmatch(r"client_id=([^&]+)&timestamp=(\d{1,16})", plain)
        if m is None:
            return _bad()
        age_ms = abs(time.time() * 1000 - int(m[2]))
        if body["client_id"] != self.client_id or m[1] != body["client_id"] or age_ms > self.auth_max_age_s * 1000:
            return JSONResponse(_UNAUTHORIZED, 401)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (self.client_id, time.monotonic() + self.token_ttl_s)
        return _ok({"access_token": token})

    async def _credit(self, request: Request, rec: Recorded, _: str) -> Response:
        # The one endpoint whose list sits at the top level as `results` (§1.7).
        return JSONResponse({"status": 200, "results": [e.to_json() for e in self.credit_entries]})

    async def _credit_history(self, request: Request, rec: Recorded, _: str) -> Response:
        page = self._page(self.history, request, 30)
        if page is None:
            return _bad()
        return _ok({"next_token": page[1], "history": page[0]})

    async def _file_create(self, request: Request, rec: Recorded, _: str) -> Response:
        feature = request.path_params["feature"]
        spec = FEATURES.get(feature)
        if spec is None or not spec.file_sets:
            return _err(404, "Not Found")
        files = rec.json.get("files") if isinstance(rec.json, dict) else None
        if not isinstance(files, list) or not files:
            return _bad()
        out = []
        for f in files:
            if not isinstance(f, dict) or f.get("content_type") not in spec.content_types:
                return _bad()
            if not isinstance(f.get("file_name"), str) or not f["file_name"]:
                return _bad()
        for f in files:
            file_id, upload = _b64_id(47), secrets.token_urlsafe(24)
            self.files[file_id] = StoredFile(file_id, f["content_type"], f["file_name"])
            self._uploads[upload] = file_id
            url, headers = f"{request.base_url}upload/{upload}", {"Content-Type": f["content_type"]}
            put = {"method": "PUT", "url": url, "headers": headers}
            out.append({**{k: f[k] for k in ("content_type", "file_name")}, "file_id": file_id, "requests": [put]})
        return _ok({"files": out})

    async def _upload(self, request: Request, rec: Recorded, _: str) -> Response:
        file_id = self._uploads.get(request.path_params["token"])
        if file_id is None:
            return _s3_denied("Request has expired or the signature does not match")
        if "authorization" in rec.headers:  # the URL is pre-signed: a second auth mechanism is refused
            return _s3_denied("Only one auth mechanism allowed")
        stored = self.files[file_id]
        if rec.headers.get("content-type") != stored.content_type:
            return _s3_denied("The request signature we calculated does not match the signature you provided")
        stored.data = rec.body
        return Response(status_code=200)

    async def _catalog(self, request: Request, rec: Recorded, _: str) -> Response:
        kind, feature = request.path_params["kind"], request.path_params["feature"]
        if kind not in ("style-group", "style") or feature not in CATALOG_FEATURES:
            return _err(404, "Not Found")
        groups = catalog(feature)
        flat = self.catalog_shape == "flat"
        if kind == "style-group":
            key = "style_groups" if flat else "groups"
            items = [{"id": gid, **_info(flat, title)} for gid, title, _ in groups]
        else:
            gid = request.query_params.get("style_group_id", "")
            group = next((g for g in groups if str(g[0]) == gid), None)
            if group is None:
                return _bad("Invalid style group", "InvalidStyleGroup")
            thumb = f"{request.base_url}results/thumb.jpg"
            key = "templates" if flat else "styles"
            items = [{"id": sid, **_info(flat, t, thumb)} for sid, t in group[2]]
        page = self._page(items, request, 20)
        return _bad() if page is None else _ok({"next_token": page[1], key: page[0]})

    async def _result(self, request: Request, rec: Recorded, _: str) -> Response:
        hit = self.results.get(request.path_params["name"])
        return Response(hit[0], media_type=hit[1]) if hit else Response("Not Found", 404)

    def _validate(self, spec: FeatureSpec, feature: str, body: Any) -> Response | tuple:
        """Check a run-task body against the §1.4 table; return the parsed parts or an error."""
        if not isinstance(body, dict) or type(body.get("request_id")) is not int or body["request_id"] < 0:
            return _bad()
        payload = body.get("payload")
        actions = payload.get("actions") if isinstance(payload, dict) else None
        if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
            return _bad()
        action_id, params = actions[0].get("id"), actions[0].get("params") or {}
        ext = payload.get("output_ext", spec.exts[0])
        if type(action_id) is not int or not isinstance(params, dict) or ext not in spec.exts:
            return _bad()
        sets = payload.get("file_sets") or {}
        if not isinstance(sets, dict) or set(sets) != set(spec.file_sets):
            return _bad()
        file_sets = {}
        for key in spec.file_sets:
            ids = sets[key]
            if not isinstance(ids, list) or len(ids) != 1 or not isinstance(ids[0], str):
                return _bad()
            stored = self.files.get(ids[0])
            if stored is None or stored.data is None:  # never created, or created but not uploaded
                return _bad()
            file_sets[key] = ids[0]
        if spec.params == NONE and params:
            return _bad()
        if spec.params == SCALE and (
            set(params) != {"scale"} or type(params["scale"]) is not int or params["scale"] not in (1, 2, 4)
        ):
            return _bad()
        if spec.params in (STYLE, PROMPT):
            keys = {"style_group_id", "style_ids"} | ({"prompt"} if spec.params == PROMPT else set())
            gid, sids = params.get("style_group_id"), params.get("style_ids")
            if set(params) != keys or type(gid) is not int or not isinstance(sids, list) or len(sids) != 1:
                return _bad()
            if spec.params == PROMPT and (not isinstance(params["prompt"], str) or not params["prompt"].strip()):
                return _bad()
            group = next((g for g in catalog(feature) if g[0] == gid), None)
            if group is None:
                return _bad("Invalid style group", "InvalidStyleGroup")
            if type(sids[0]) is not int or sids[0] not in {sid for sid, _ in group[2]}:
                return _bad("Invalid style", "InvalidStyle")
        return body["request_id"], action_id, file_sets, params, ext

    async def _run_task(self, request: Request, rec: Recorded, client: str) -> Response:
        feature = request.path_params["feature"]
        spec = FEATURES.get(feature)
        if spec is None:
            return _err(404, "Not Found")
        parsed = self._validate(spec, feature, rec.json)
        if isinstance(parsed, Response):
            return parsed
        request_id, action_id, file_sets, params, ext = parsed
        key = (client, feature, request_id, file_sets.get("src_ids"))
        if key in self._dedupe:  # a repeated request_id for the same file: ignored, same task
            return _ok({"task_id": self._dedupe[key]})
        if self.balance < self.costs[feature]:
            return _bad("Insufficient credit", "CreditInsufficiency")
        self._sweep()
        now, error = time.monotonic(), self.engine_error  # the engine-error knob applies to new tasks
        task = Task(_b64_id(47), feature, client, action_id, file_sets, params, ext, now, error)
        self.tasks[task.task_id] = task
        self._dedupe[key] = task.task_id
        return _ok({"task_id": task.task_id})

    async def _task_status(self, request: Request, rec: Recorded, client: str) -> Response:
        self._sweep()
        task = self.tasks.get(request.query_params.get("task_id", ""))
        if task is None or task.feature != request.path_params["feature"] or task.client_id != client:
            return JSONResponse(_LOSS_ERR, 400)
        if task.state == "lost":
            return JSONResponse(_LOSS_ERR, 400)
        task.last_seen = time.monotonic()
        result: dict[str, Any] = {"polling_interval": self.polling_interval_ms, "status": "running"}
        if task.state == "running":
            task.polls += 1
            if task.polls <= self.polls_until_done:
                return _ok(result)
            self._finish(task)
        result["status"] = task.state
        if task.state == "error":
            result |= {
                "error": task.error,
                "error_message": f"The engine could not process the task ({task.error})",
            }
        else:
            assert task.results is not None
            data = [
                {**{k: v for k, v in d.items() if k != "_n"}, "url": f"{request.base_url}results/{d['_n']}"}
                for d in task.results["data"]
            ]
            result["results"] = [{"id": task.action_id, **task.results["extra"], "data": data}]
        return _ok(result)

    # ---- the "engine" ------------------------------------------------------------------------
    def _finish(self, task: Task) -> None:
        task.state = "error"
        if task.engine_error:
            task.error = task.engine_error
            return
        images: dict[str, Image.Image] = {}
        for key, fid in task.file_sets.items():
            try:
                images[key] = Image.open(io.BytesIO(self.files[fid].data or b""))
                images[key].load()
            except Exception:  # Pillow raises several types for undecodable bytes
                task.error = "error_decode_mask" if key == "mask_ids" else "error_decode_image"
                return
        if "mask_ids" in images and images["mask_ids"].size != images["src_ids"].size:
            task.error = "invalid_parameter"
            return
        if (limit := self._limits_error(task, images)) is not None:
            task.error = limit
            return
        cost = self.costs[task.feature]
        if self.balance < cost:  # spent by other tasks since submit
            task.error = "unknown_internal_error"
            return
        task.results = self._render(task, images)
        task.state = "success"
        self._charge(task, cost)

    def _limits_error(self, task: Task, images: dict[str, Image.Image]) -> str | None:
        """The engine's answer to an input outside the seed's size table (see the module docstring)."""
        spec = FEATURES[task.feature]
        for key, img in images.items():
            if key == "mask_ids":
                continue
            if len(self.files[task.file_sets[key]].data or b"") >= MAX_FILE_BYTES:
                return "exceed_max_filesize"
            if max(img.size) > spec.max_side:
                return "error_exceed_max_image_size"
            if img.format not in spec.formats:
                return "invalid_parameter"
        src = images.get("src_ids")
        fraction = self.face_width_fraction
        if spec.face and src is not None and fraction is not None and src.width * fraction < MIN_FACE_WIDTH:
            return "error_no_face"
        return None

    def _output(self, img: Image.Image, ext: str, **extra: Any) -> dict[str, Any]:
        data = _encode(img, ext)
        name = f"{secrets.token_hex(8)}.{ext}"
        dst_id = _b64_id(32)
        self.results[name] = (data, MIME[ext])
        self.files[dst_id] = StoredFile(dst_id, MIME[ext], name, data)  # chainable as a src id
        return {"dst_id": dst_id, "_n": name, **extra}

    def _render(self, task: Task, images: dict[str, Image.Image]) -> dict[str, Any]:
        src, ext, feature = images.get("src_ids"), task.ext, task.feature
        extra: dict[str, Any] = {}
        if src is None:  # text-to-image
            data = [self._output(scene(256, 256), ext)]
        elif feature == "enhance":
            scale = task.params["scale"]
            data = [self._output(src.resize((src.width * scale, src.height * scale)), ext)]
        elif feature == "sod":
            data = [self._output(_cutout(src), ext)]
        elif feature == "colorize":
            data = [self._output(_tint(src, c), ext) for c in ((200, 120, 60), (60, 120, 200))]
        elif feature == "obj-removal":
            fill = Image.new("RGB", src.size, (128, 128, 128))
            data = [self._output(Image.composite(fill, src.convert("RGB"), images["mask_ids"].convert("L")), ext)]
        elif feature == "aging":
            ages = sorted([*_AGES, 32])
            data = [self._output(src if a == 32 else _tint(src, (a * 3, a * 3, a * 3)), ext, res_age=a) for a in ages]
            info = {"age": 32, "age_idx": ages.index(32), "age_min": ages[0], "age_max": ages[-1]}
            info = {**info, "num_of_photos": len(ages)}
            extra.update({self.aging_info_key: info} if self.aging_info_key else info)
        else:  # hair features, makeup transfer
            data = [self._output(_tint(src, (150, 90, 40)), ext)]
            if feature == "mu-trans-rec" and self.makeup_recommendation:
                extra["recommendation"] = {"products": [{"category": "lipstick", "color": "#B0424B"}]}
        return {"data": data, "extra": extra}

    def _charge(self, task: Task, cost: float) -> None:
        parts, left = [], cost
        for entry in self._usable():  # soonest-expiring first (seed)
            take = min(entry.amount_dec, left)
            if take > 0:
                entry.amount_dec -= take
                left -= take
                parts.append({"id": entry.id, "amount": -math.ceil(take), "amount_dec": -round(take, 2)})
        self.charges.append(Charge(task.task_id, cost, task.feature))
        action = _ACTIONS.get(task.feature, "api_" + task.feature.replace("-", "_"))
        hid, ts = 38173479337460984 + len(self.history), int(time.time() * 1000)
        item = {"id": hid, "timestamp": ts, "action": action, "target_id": task.task_id}
        self.history.insert(0, {**item, "info": {"credits": parts}})
