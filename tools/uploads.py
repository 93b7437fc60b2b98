"""Pictures the user hands over: stored as `photo://uploads/{id}`, accepted by every tool.

Two ways in, both ending in `store_upload`:

    the viewer's drop zone / file picker  -> the app-only `upload_image` tool (over the host)
    a one-time upload URL (HTTP servers)  -> POST /uploads/{secret} (server/apps.py)

Every upload is size-capped and sniffed like every other input (the header decides the format,
never the file name or the declared type; SVG and non-images are refused; the pixel-bomb limit
applies). Formats a browser cannot show or the store does not keep (HEIC, TIFF, BMP, ...) are
re-encoded as PNG (with transparency) or JPEG. Uploads are stored like results: owner-only
files in the output dir, indexed, listed by resources/list.

Upload URLs follow the webhook pattern (tools/core/webhooks.py): a fresh secret in the path is
the credential, only its hash is kept, it works once, and it expires.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from tools.core import images
from tools.core.errors import InvalidInput
from tools.core.results import EXTENSIONS, ResultRecord
from tools.runtime import Runtime

MAX_UPLOAD_BYTES = 15 * 1024 * 1024
TICKET_TTL_S = 15 * 60.0
_MAX_TICKETS = 1024
_BROWSER_FORMATS = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def clean_name(name: str | None) -> str:
    """A file name safe to show and store: no directories, no control characters, at most 80 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base[:80] or "upload"


def _normalized(data: bytes, max_pixels: int) -> tuple[bytes, images.ImageInfo]:
    """The bytes to store and their facts.

    Raises:
        InvalidInput: not an image, or over the pixel limit.
    """
    info = images.probe(data, max_pixels)
    if info.mime_type in _BROWSER_FORMATS and info.mime_type in EXTENSIONS:
        return data, info
    img = images.normalize_mode(images.decode(data, max_pixels))
    fmt = "png" if img.mode == "RGBA" else "jpeg"
    out = images.encode(img, fmt, quality=92 if fmt == "jpeg" else None)
    return out, images.probe(out, max_pixels)


async def store_upload(runtime: Runtime, data: bytes, name: str | None) -> ResultRecord:
    """Check and store one uploaded picture; returns its record (`record.uri` is photo://uploads/{id}).

    Raises:
        InvalidInput: empty, larger than MAX_UPLOAD_BYTES, not an image, or over the pixel limit.
    """
    if not data:
        raise InvalidInput("The upload is empty: pick an image file.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"The picture is {len(data) / 2**20:.1f} MB; uploads are limited to {MAX_UPLOAD_BYTES // 2**20} MB."
        )
    stored, info = await images.in_worker(_normalized, data, runtime.settings.max_pixels)
    return await runtime.store.save_upload(
        stored, mime_type=info.mime_type, width=info.width, height=info.height, name=clean_name(name)
    )


def describe(record: ResultRecord) -> str:
    """One line naming an upload for the conversation."""
    name = record.meta.get("name") or record.name
    return f"{record.uri} ({name}, {record.width}×{record.height} {record.mime_type.split('/')[1].upper()})"


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Ticket:
    expires_at: float
    purpose: str = ""
    principal: str | None = None  # whose the upload will be: the caller that asked for the link


class UploadTickets:
    """One-time upload URLs of this process: issued by pick_image, spent by one upload."""

    def __init__(self, ttl_s: float = TICKET_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._tickets: dict[str, Ticket] = {}

    def issue(self, purpose: str = "", *, principal: str | None = None) -> str:
        """A fresh secret for one upload by `principal` (put it in the URL path); only its hash is kept."""
        self._prune()
        secret = secrets.token_urlsafe(24)
        self._tickets[_key(secret)] = Ticket(time.monotonic() + self.ttl_s, purpose, principal)
        while len(self._tickets) > _MAX_TICKETS:  # the oldest go first
            self._tickets.pop(next(iter(self._tickets)))
        return secret

    def valid(self, secret: str) -> Ticket | None:
        """The live ticket of `secret`, or None (unknown, spent or expired)."""
        ticket = self._tickets.get(_key(secret))
        if ticket is None or ticket.expires_at <= time.monotonic():
            return None
        return ticket

    def spend(self, secret: str) -> Ticket | None:
        """Use the ticket up; None if it was not live (a second upload on one URL is refused)."""
        ticket = self.valid(secret)
        self._tickets.pop(_key(secret), None)
        return ticket

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, t in self._tickets.items() if t.expires_at <= now]:
            del self._tickets[key]
