"""Webhooks from providers: a per-job secret in the URL, one delivery, a woken poller.

A client that wants a webhook registers a fresh secret (`WebhookHub.register`), puts
`<PHOTO_MCP_PUBLIC_URL>/webhooks/<provider>/<secret>` in its submit request, and waits on
the returned slot instead of sleeping between polls. The HTTP route (server/webhooks.py)
hands each POST to `deliver`, which accepts it only for a registered secret, only with the
documented fields, and only once; replays and late copies are ignored.

The webhook is a wake-up call, not the source of truth: the client still reads the job's
status from the provider's authenticated API before it downloads anything.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio

TERMINAL_STATUSES = ("completed", "failed")
# Removedo's documented payload (providers.md §3.3); anything else in a body is dropped.
FIELDS = ("jobId", "status", "outputUrl", "errorMessage", "completedAt")
MAX_BODY_BYTES = 64 * 1024
_SPENT_KEPT = 4096  # finished secrets remembered so that replays are told "ignored", not "unknown"


def _key(secret: str) -> str:
    # Slots are looked up by a hash of the secret, so the secret itself is never kept or compared.
    return hashlib.sha256(secret.encode()).hexdigest()


def validate(payload: Any) -> dict[str, Any]:
    """The documented fields of a webhook body.

    Raises:
        ValueError: with the reason, if `payload` is not a documented webhook body.
    """
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    job_id = payload.get("jobId")
    if not isinstance(job_id, str) or not job_id or len(job_id) > 200:
        raise ValueError("jobId must be a non-empty string")
    status = payload.get("status")
    if status not in TERMINAL_STATUSES:
        raise ValueError("status must be 'completed' or 'failed'")
    for name in ("outputUrl", "errorMessage", "completedAt"):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
    if status == "completed":
        url = payload.get("outputUrl")
        if not url or urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("a completed job needs an http(s) outputUrl")
    return {name: payload[name] for name in FIELDS if payload.get(name) is not None}


@dataclass
class WebhookSlot:
    """One expected delivery. `payload` is set by the first accepted webhook."""

    key: str
    job_id: str | None = None
    payload: dict[str, Any] | None = None
    _event: anyio.Event = field(default_factory=anyio.Event)

    @property
    def received(self) -> bool:
        return self.payload is not None

    def expect(self, job_id: str) -> None:
        """Bind the slot to the provider's job id (known once the submit answered).

        A payload for another job that arrived before this call is dropped.
        """
        self.job_id = job_id
        if self.payload is not None and self.payload["jobId"] != job_id:
            self.payload = None
            self._event = anyio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the webhook; return whether it has arrived."""
        if self.payload is None:
            with anyio.move_on_after(timeout):
                await self._event.wait()
        return self.payload is not None


class WebhookHub:
    """The per-process registry of expected webhooks (held by the Runtime)."""

    def __init__(self) -> None:
        self._slots: dict[str, WebhookSlot] = {}
        self._spent: OrderedDict[str, None] = OrderedDict()

    def register(self, secret: str) -> WebhookSlot:
        """Expect one webhook at the URL carrying `secret` (make it with `secrets.token_urlsafe`)."""
        key = _key(secret)
        slot = WebhookSlot(key)
        self._slots[key] = slot
        return slot

    def discard(self, secret: str) -> None:
        """Stop expecting `secret`'s webhook; a later copy is then ignored as a replay."""
        key = _key(secret)
        if self._slots.pop(key, None) is not None:
            self._spent[key] = None
            while len(self._spent) > _SPENT_KEPT:
                self._spent.popitem(last=False)

    def knows(self, secret: str) -> bool:
        """Whether `secret` was issued by this process (still expected, or recently finished)."""
        key = _key(secret)
        return key in self._slots or key in self._spent

    def problem(self, secret: str, payload: Any) -> str | None:
        """Why `payload` cannot be accepted for `secret`, or None if it is acceptable (or a replay)."""
        try:
            body = validate(payload)
        except ValueError as exc:
            return str(exc)
        slot = self._slots.get(_key(secret))
        if slot is not None and slot.job_id is not None and body["jobId"] != slot.job_id:
            return "jobId does not match the job this webhook URL was issued for"
        return None

    def deliver(self, secret: str, payload: Any) -> bool:
        """Accept the first valid webhook for a known secret and wake its poller.

        Returns False (and changes nothing) for an unknown secret, a body without the
        documented fields, a different job's id, or a replay.
        """
        slot = self._slots.get(_key(secret))
        if slot is None or slot.received or self.problem(secret, payload) is not None:
            return False
        slot.payload = validate(payload)
        slot._event.set()
        return True

    def __len__(self) -> int:
        return len(self._slots)
