"""GET/POST /uploads/{secret}: the one-time upload URL that pick_image hands out over HTTP.

For clients that cannot show MCP Apps: the user opens the link in a browser (a plain form, no
script) or sends the bytes with any HTTP client. Public like the webhooks (server/security.py
exempts /uploads/): the secret in the path is the credential. A link works for one successful
upload, expires (tools/uploads.py), and takes at most MAX_UPLOAD_BYTES.

| case                                         | status |
|----------------------------------------------|--------|
| an image, on a live link                     | 201 with the photo://uploads/<id> URI |
| unknown, spent or expired link               | 404 |
| not an image (the link stays usable)         | 400 |
| larger than the cap                          | 413 |
| server still starting (no runtime)           | 503 |
"""

from __future__ import annotations

import html
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from tools import uploads
from tools.core import images
from tools.core.errors import PhotoError
from tools.core.principals import acting_for

UPLOAD_PATH = "/uploads/{secret}"

_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _page(body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>photo-mcp upload</title>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<style>body{font:15px system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em}"
        "code{background:#f3f4f6;padding:2px 4px;border-radius:4px}</style></head><body>"
        f"<h1>photo-mcp</h1>{body}</body></html>"
    )
    headers = {"Content-Security-Policy": _PAGE_CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(doc, status_code=status, headers=headers)


def _upload_answer(request: Request, status: int, text: str, uri: str | None = None) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        extra = f"<p>Tell the assistant to use <code>{html.escape(uri)}</code>.</p>" if uri else ""
        return _page(f"<p>{html.escape(text)}</p>{extra}", status)
    body: dict[str, Any] = {"uri": uri, "message": text} if uri else {"error": text}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def register_upload_routes(server: Any) -> None:
    """GET/POST /uploads/{secret} on `server`'s HTTP app (call before building the app).

    Public like the webhooks: the secret in the path is the credential; it works for one
    successful upload and expires. POST takes the raw image bytes, or a multipart form with a
    `file` field (the page's own form). Answers 404 (unknown, spent or expired), 413 (too
    large), 400 (not an image), 503 (starting up), 201 with the photo://uploads/ URI.
    """

    @server.custom_route(UPLOAD_PATH, methods=["GET"], include_in_schema=False)
    async def upload_form(request: Request) -> Response:
        secret = request.path_params["secret"]
        if not _SECRET.fullmatch(secret) or server.upload_tickets.valid(secret) is None:
            return _page("<p>This upload link is unknown, used or expired. Ask the assistant for a new one.</p>", 404)
        ticket = server.upload_tickets.valid(secret)
        purpose = f"<p>For: {html.escape(ticket.purpose)}</p>" if ticket and ticket.purpose else ""
        form = (
            f"{purpose}<form method=post enctype=multipart/form-data>"
            "<p><input type=file name=file accept='image/*' required></p>"
            f"<p><button type=submit>Upload</button> (one image, up to {uploads.MAX_UPLOAD_BYTES // 2**20} MB)</p>"
            "</form>"
        )
        return _page(form)

    @server.custom_route(UPLOAD_PATH, methods=["POST", "PUT"], include_in_schema=False)
    async def upload_post(request: Request) -> Response:
        runtime = server.runtime
        if runtime is None:
            return JSONResponse({"error": "starting up"}, status_code=503)
        secret = request.path_params["secret"]
        if not _SECRET.fullmatch(secret) or server.upload_tickets.valid(secret) is None:
            return _upload_answer(request, 404, "This upload link is unknown, used or expired.")
        declared = request.headers.get("content-length")
        limit = uploads.MAX_UPLOAD_BYTES + 64 * 1024  # the multipart envelope
        if declared and declared.isdigit() and int(declared) > limit:
            return _upload_answer(request, 413, f"Uploads are limited to {uploads.MAX_UPLOAD_BYTES // 2**20} MB.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _upload_answer(request, 413, f"Uploads are limited to {uploads.MAX_UPLOAD_BYTES // 2**20} MB.")
        data, name = bytes(body), request.query_params.get("name", "")
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            data, name = await _multipart_file(request, bytes(body))
        try:
            # Sniffed before the link is used up: a wrong file does not cost the user the link.
            await images.in_worker(images.probe, data, runtime.settings.max_pixels)
            ticket = server.upload_tickets.spend(secret)  # one upload per link, even when two race
            if ticket is None:
                return _upload_answer(request, 404, "This upload link was just used.")
            with acting_for(ticket.principal):  # the upload belongs to whoever asked for the link
                record = await uploads.store_upload(runtime, data, name)
        except PhotoError as exc:
            return _upload_answer(request, 400, exc.message)
        return _upload_answer(request, 201, f"Uploaded {uploads.describe(record)}.", record.uri)


async def _multipart_file(request: Request, body: bytes) -> tuple[bytes, str]:
    """The `file` field of a multipart body already read (and capped)."""
    from starlette.datastructures import UploadFile

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, receive).form(max_files=1, max_fields=4)
    item = form.get("file")
    if not isinstance(item, UploadFile):
        return b"", ""
    return await item.read(), item.filename or ""
