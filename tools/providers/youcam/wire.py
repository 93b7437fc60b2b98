"""The YouCam wire: sign-in, authenticated requests through the rate limiter, error mapping.

Auth (shared/providers.md §1.1): `id_token` = base64 of RSA PKCS#1 v1.5 encryption of
`client_id=<id>&timestamp=<ms>` under the console's Secret Key (base64 DER SPKI); the access
token is cached and renewed 5 minutes before its 2 h life ends, and on a 401 the call signs in
again once and is retried. Every API request carries a (kind, ticket) tag that the httpx
request hook hands to the `RateLimiter`, so send()'s own retries are rate limited too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    NotConfigured,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
)
from tools.core.storage import write_atomic
from tools.providers.http import RetryPolicy, retry_after, send, unavailable
from tools.providers.keys import Scrubber
from tools.providers.youcam.limits import Kind, RateLimiter, Ticket

V1 = "/s2s/v1.0"
TOKEN_TTL_S = 7200.0
REFRESH_EARLY_S = 300.0
_TAG = "photo_mcp.youcam"  # request extension: (kind, ticket) for the limiter
_GRANTED = "photo_mcp.youcam.granted"
log = logging.getLogger(__name__)


class TaskLost(JobFailed):
    """YouCam no longer knows the task (not polled in time, or expired): nothing was charged."""


def load_public_key(secret: str) -> rsa.RSAPublicKey:
    """The console's Secret Key: base64 DER SubjectPublicKeyInfo (PEM accepted too).

    Raises:
        NotConfigured: not an RSA public key.
    """
    try:
        text = secret.strip()
        key = (
            serialization.load_pem_public_key(text.encode())
            if text.startswith("-----BEGIN")
            else serialization.load_der_public_key(base64.b64decode(text, validate=True))
        )
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise NotConfigured(
            "YOUCAM_SECRET_KEY is not a valid RSA public key: paste the Secret Key from the YouCam API console "
            "(a base64 string) as it is."
        )
    return key


class RequestIds:
    """One request_id counter per account (credentials), incremented for every new run and
    persisted, so no two runs ever share one, whatever their files, features or process.

    Seed 003: "Requests with the same request_id will be ignored by the server", and the same
    file_id with the same request_id returns the old task. Counting per account is the safe
    reading of both. The file is locked while it is read and written (several servers may share
    one data directory); a retry of one run re-sends its own id, never a new one.
    """

    def __init__(self, path: Path | None, scope: str) -> None:
        self._path = path
        self._scope = "account:" + hashlib.sha256(scope.encode()).hexdigest()[:32]
        self._memory = 0
        self._lock = anyio.Lock()

    def _take(self) -> int:
        if self._path is None:
            value, self._memory = self._memory, self._memory + 1
            return value
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a+") as lock:
            _lock_file(lock)
            try:
                data = json.loads(self._path.read_text()) if self._path.exists() else {}
            except (OSError, ValueError):
                data = {}
            data = data if isinstance(data, dict) else {}
            entry = data.get(self._scope)
            if isinstance(entry, int) and not isinstance(entry, bool):
                value = entry
            else:
                # First use (or a file from the per-file counters before): start above every id
                # handed out so far, so none is ever repeated.
                old = [v[0] if isinstance(v, list) and v else v for v in data.values()]
                value = max([int(v) for v in old if isinstance(v, int | float)] + [self._memory - 1, -1]) + 1
            value = max(value, self._memory)
            data = {k: v for k, v in data.items() if k.startswith("account:")}  # drops pre-account counters
            data[self._scope] = value + 1
            write_atomic(self._path, json.dumps(data).encode())
        self._memory = value + 1
        return value

    async def next(self) -> int:
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(self._take)
            except OSError:
                # best effort: the in-memory counter still prevents repeats in this process
                log.error("YouCam request ids could not be persisted in %s", self._path, exc_info=True)
                value, self._memory = self._memory, self._memory + 1
                return value


def _lock_file(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: the in-process lock still holds
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


class YouCamWire:
    """One httpx client for one set of credentials; the client in youcam.py builds on it."""

    name = "youcam"

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        public_key: rsa.RSAPublicKey,
        limiter: RateLimiter,
        policy: RetryPolicy,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._client_id = client_id
        self._key = public_key
        # Scrubbed from any provider text passed on: the client id (sent at sign-in) and the key as configured.
        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._scrub = Scrubber([client_id, base64.b64encode(spki).decode()])
        self.limiter = limiter
        self._policy = policy
        gap = limiter.gap
        # A poll (or a run-task that may have created its task) retried after a 5xx or a lost
        # answer must still land inside the loss window.
        self._poll_policy = replace(policy, max_delay=min(policy.max_delay, gap / 4), retry_after_cap=gap / 2)
        self._loss_timeout = httpx2.Timeout(max(2.0, gap), connect=max(2.0, min(10.0, gap)))
        self._http = httpx2.AsyncClient(
            base_url=base_url,
            timeout=httpx2.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        self._access: str | None = None
        self._access_until = 0.0
        self._auth_lock = anyio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- plumbing ------------------------------------------------------------------------
    async def _on_request(self, request: httpx2.Request) -> None:
        tag = request.extensions.get(_TAG)
        if tag is not None:
            kind, ticket = tag
            request.extensions[_GRANTED] = await self.limiter.acquire(kind, ticket)

    async def _on_response(self, response: httpx2.Response) -> None:
        granted = response.request.extensions.get(_GRANTED)
        if granted is not None:
            self.limiter.answered(granted, response.status_code, retry_after(response.headers))

    def _id_token(self) -> str:
        msg = f"client_id={self._client_id}&timestamp={int(time.time() * 1000)}".encode()
        return base64.b64encode(self._key.encrypt(msg, padding.PKCS1v15())).decode()

    async def _token(self) -> str:
        if self._access and time.monotonic() < self._access_until:
            return self._access
        async with self._auth_lock:
            if self._access and time.monotonic() < self._access_until:
                return self._access
            body = {"client_id": self._client_id, "id_token": self._id_token()}
            response = await self._send("POST", f"{V1}/client/auth", "auth", None, self._policy, json=body)
            if response.status_code in (400, 401, 403):
                raise AuthFailed(
                    f"YouCam refused the sign-in (HTTP {response.status_code}): check YOUCAM_API_KEY and "
                    "YOUCAM_SECRET_KEY in the YouCam API console, and that this computer's clock is right "
                    "(the sign-in token is time-stamped). Nothing was charged.",
                    provider=self.name,
                )
            token = self._json(response, "sign-in").get("result", {}).get("access_token")
            if not isinstance(token, str) or not token:
                raise ProviderError(
                    "YouCam's sign-in answer had no access token. Nothing was charged.", provider="youcam"
                )
            self._access, self._access_until = token, time.monotonic() + TOKEN_TTL_S - REFRESH_EARLY_S
            return token

    async def _send(
        self, method: str, url: str, kind: Kind, ticket: Ticket | None, policy: RetryPolicy, **kw: Any
    ) -> httpx2.Response:
        return await send(
            self._http,
            method,
            url,
            provider=self.name,
            idempotent=True,
            policy=policy,
            extensions={_TAG: (kind, ticket)},
            **kw,
        )

    async def _api(
        self, method: str, path: str, *, kind: Kind, ticket: Ticket | None = None, poll: bool = False, **kw: Any
    ) -> httpx2.Response:
        """One API call with the bearer token; on a 401, sign in again once and retry.

        Every call is idempotent here: run-task because YouCam ignores a repeated request_id.
        """
        policy = self._poll_policy if poll else self._policy
        for attempt in range(2):
            token = await self._token()
            headers = {"Authorization": f"Bearer {token}"}
            response = await self._send(method, V1 + path, kind, ticket, policy, headers=headers, **kw)
            if response.status_code != 401 or attempt:
                return response
            if self._access == token:
                self._access = None  # expired or revoked: sign in again
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, response: httpx2.Response, during: str) -> dict[str, Any]:
        """The JSON body of a 2xx answer, else the matching error."""
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if 200 <= status < 300 and isinstance(body, dict):
            return body
        if 200 <= status < 300:  # garbled on the way (a cut body, a gateway page): not YouCam's answer
            raise ProviderUnavailable(
                f"YouCam answered the {during} request with HTTP {status} but a body that is not JSON. "
                + (
                    "If the task had already finished, YouCam may have charged for it."
                    if during == "task status"
                    else "Nothing was charged; try again."
                ),
                provider=self.name,
                retryable=True,
            )
        body = body if isinstance(body, dict) else {}
        code, error = body.get("error_code"), self._scrub(str(body.get("error") or response.reason_phrase))
        if status == 400 and code == "CreditInsufficiency":
            raise OutOfCredits(
                "YouCam has too few credits left for this task. Nothing was charged. Top up in the YouCam "
                "console (check_credits shows the balance).",
                provider=self.name,
            )
        if status == 400 and code in ("InvalidStyleGroup", "InvalidStyle"):
            what = "style group" if code == "InvalidStyleGroup" else "style"
            raise InvalidInput(
                f"YouCam does not know that {what} id for this feature. Nothing was charged. Use the ids from "
                "list_style_groups and list_styles (pass them as integers)."
            )
        if status == 400 and "invalid task id" in error.lower():
            raise TaskLost(
                "YouCam lost the task (it was not polled in time, or it expired). No credits were consumed; "
                "run the tool again.",
                provider=self.name,
                retryable=True,
            )
        if status in (401, 403):
            raise AuthFailed(
                f"YouCam refused the {during} request (HTTP {status}): check YOUCAM_API_KEY and "
                "YOUCAM_SECRET_KEY. Nothing was charged.",
                provider=self.name,
            )
        if status == 404:
            raise ProviderError(
                f"YouCam has no {during} endpoint at {response.request.url.path} (HTTP 404). The feature slug "
                "may be outdated: override it with YOUCAM_SLUGS. Nothing was charged.",
                provider=self.name,
            )
        if status >= 500:
            if "timed out" in error.lower():
                raise JobFailed(
                    "YouCam timed out running the task. No credits were consumed (YouCam charges only on "
                    "success); try again.",
                    provider=self.name,
                    retryable=True,
                )
            raise unavailable(self.name, response)
        raise ProviderError(
            f"YouCam rejected the {during} request (HTTP {status} {code or ''}: {error}). Nothing was charged.",
            provider=self.name,
        )


def json_object(response: httpx2.Response) -> bool:
    """Whether the body is a JSON object (YouCam always answers with one)."""
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def error_code(response: httpx2.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error_code") if isinstance(body, dict) else None
