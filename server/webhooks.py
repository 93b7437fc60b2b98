"""POST /webhooks/removedo/{secret}: Removedo's job-finished callback.

Public (no MCP bearer token: server/security.py exempts /webhooks/); the per-job secret in
the path is the credential. Answers:

| case                                   | status |
|----------------------------------------|--------|
| first valid delivery for a live secret | 200 accepted |
| a replay (same secret, already used)   | 200 ignored |
| secret this server never issued        | 404 |
| body not JSON / not the documented shape | 400 |
| body larger than 64 KB                 | 413 |
| server still starting (no runtime)     | 503 |
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server.app import PhotoServer
from tools.core.webhooks import MAX_BODY_BYTES

PATH = "/webhooks/removedo/{secret}"


def register_routes(server: PhotoServer) -> None:
    """Add the webhook route to `server`'s HTTP app (call before building the app)."""

    @server.custom_route(PATH, methods=["POST"], include_in_schema=False)
    async def removedo_webhook(request: Request) -> Response:
        runtime = server.runtime
        if runtime is None:
            return JSONResponse({"error": "starting up"}, status_code=503)
        hub = runtime.webhooks
        secret = request.path_params["secret"]
        if not hub.knows(secret):
            return JSONResponse({"error": "unknown webhook"}, status_code=404)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        problem = hub.problem(secret, payload)
        if problem is not None:
            return JSONResponse({"error": problem}, status_code=400)
        accepted = hub.deliver(secret, payload)
        return JSONResponse({"status": "accepted" if accepted else "ignored: already received"})
