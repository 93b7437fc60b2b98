"""The floor of a provider tool that keeps photo-mcp's output contract, for bench_overhead: the
bare `MCPServer` tool of bare_mcp_cutout.py, plus what every result of photo-mcp promises the
user (design.md, "output contract"): the file written whole or not at all (temp file, fsync,
rename, in a worker thread), its pixels decoded once (a preview is never shown for a file that
does not decode; a small one is shown as it is), and the answer as a summary, a resource link,
the inline image and a structured result with an output schema (photo-mcp's `ToolOutput`, so
the client validates the same shape).

    BARE_API=<fake base> BARE_KEY=<key> BARE_OUT=<dir> python -m tests.benchmarks.contract_mcp_cutout

Not here, and photo-mcp's own: the job's row (a call survives a restart), the ledger (no double
charge, caps), the result's index row (photo://results/<id>, lineage, the quota), the sandbox
check of the input, fitting it to the provider's limits, routing and the MCP middleware
(consent, older clients, tasks, apps).
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image

from tests.benchmarks.bare_mcp_cutout import cut_out
from tools.toolkit.render import Credits, ImageOut, ToolOutput

app = MCPServer("contract-cutout", log_level="WARNING")
PREVIEW_SIDE = 512  # photo-mcp's default PHOTO_MCP_PREVIEW_SIZE
_count = itertools.count()


def _store(data: bytes, out: Path) -> tuple[tuple[int, int], bytes, str]:
    """Write `data` whole or not at all, then its preview: the file itself when it is small,
    else shrunk to 512 px (PNG with alpha, else JPEG), as photo-mcp's previews are made."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        size = img.size
        if max(size) <= PREVIEW_SIDE:
            return size, data, "image/png"
        img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BICUBIC, reducing_gap=1.0)
        buf = io.BytesIO()
        if img.mode == "RGBA":
            img.save(buf, "PNG", compress_level=1)
            return size, buf.getvalue(), "image/png"
        img.convert("RGB").save(buf, "JPEG", quality=80)
        return size, buf.getvalue(), "image/jpeg"


@app.tool()
async def remove_background(image: str, provider: str = "aluo") -> Annotated[CallToolResult, ToolOutput]:
    """Cut out the subject of `image` (the fake Aluo on loopback)."""
    start = time.monotonic()
    data = await cut_out(image)
    rid = secrets.token_hex(6)
    out = Path(os.environ["BARE_OUT"]) / f"cutout-{next(_count)}-{rid}.png"
    (width, height), preview, preview_mime = await anyio.to_thread.run_sync(_store, data, out)
    uri = f"photo://results/{rid}"
    shown = ImageOut(id=rid, uri=uri, path=str(out), mime_type="image/png", width=width, height=height, bytes=len(data))
    structured = ToolOutput(
        job_id=f"j_{rid}", status="succeeded", provider=provider, operation="remove_background", images=[shown],
        credits=Credits(estimated=1, charged=1), elapsed_s=round(time.monotonic() - start, 3), message="done",
    )  # fmt: skip
    return CallToolResult(
        content=[
            TextContent(type="text", text=f"remove_background ran on {provider}.\n- {uri} → {out}"),
            ResourceLink(type="resource_link", uri=uri, name=out.name, mime_type="image/png", size=len(data)),
            ImageContent(type="image", data=base64.b64encode(preview).decode(), mime_type=preview_mime),
        ],
        structured_content=structured.model_dump(mode="json"),
    )


if __name__ == "__main__":
    app.run("stdio")
