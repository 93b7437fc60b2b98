"""What a fake saw on the wire: one `Recorded` per request, parsed once by `record()`.

Shared by every fake in tests/fakes so tests can assert on headers, JSON keys, form fields
and multipart file parts the same way whatever the provider.
"""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case keys
    json: Any | None = None  # parsed JSON body, None if the body was not (valid) JSON
    form: dict[str, str] = field(default_factory=dict)  # non-file multipart/urlencoded fields
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # field -> (name, type, data)
    body: bytes = b""  # raw body: JSON text, or the bytes of a raw PUT upload


async def record(request: Request) -> Recorded:
    """Parse `request`'s body once (JSON, multipart or urlencoded) and return what was sent.

    The body is read first, so Starlette's cached `request.form()` / `request.json()` still work
    afterwards. A malformed multipart body leaves `form` and `files` empty rather than raising:
    the fake then answers with its own validation error, as a real server would.
    """
    body = await request.body()
    rec = Recorded(
        method=request.method,
        path=request.url.path,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
    ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            rec.json = jsonlib.loads(body) if body else None
        except ValueError:
            rec.json = None
    elif ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form()
        except Exception:  # malformed body: starlette raises HTTPException/MultiPartException
            return rec
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                rec.files[key] = (value.filename or "", value.content_type or "", data)
            else:
                rec.form[key] = value
    return rec
