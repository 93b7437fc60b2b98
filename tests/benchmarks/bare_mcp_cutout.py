"""The floor of any provider tool over stdio, for the per-call benchmarks: a bare `MCPServer` whose
one tool does exactly what the bare httpx2 script does per cut-out (bench_overhead.bare_script:
read the file, multipart upload, JSON answer, result download, file write, on one keep-alive
client) and answers with one line of text. No job, no database, no sniffing, no preview.

    BARE_API=<fake base> BARE_KEY=<key> BARE_OUT=<dir> python -m tests.benchmarks.bare_mcp_cutout

What it costs over the bare script is what MCP itself costs over stdio (JSON-RPC framing, the
SDK's request handling, argument and result models, the pipes): photo-mcp cannot go below it.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import httpx2
from mcp.server.mcpserver import MCPServer

app = MCPServer("bare-cutout", log_level="WARNING")  # photo-mcp logs at WARNING too
_http: httpx2.AsyncClient | None = None
_count = itertools.count()


async def cut_out(image: str) -> bytes:
    """The bare script's HTTP sequence for `image`: upload, JSON answer, the result's bytes."""
    global _http
    if _http is None:
        _http = httpx2.AsyncClient(timeout=30)
    src = Path(image)
    auth = {"Authorization": f"Bearer {os.environ['BARE_KEY']}"}
    mime = "image/jpeg" if src.suffix == ".jpg" else "image/png"
    r = await _http.post(
        f"{os.environ['BARE_API']}/remove-bg", files={"file": (src.name, src.read_bytes(), mime)}, headers=auth
    )
    r.raise_for_status()
    result = await _http.get(r.json()["data"]["url"])
    result.raise_for_status()
    return result.content


@app.tool()
async def remove_background(image: str, provider: str = "aluo") -> str:
    """Cut out the subject of `image` (the fake Aluo on loopback)."""
    out = Path(os.environ["BARE_OUT"]) / f"cutout-{next(_count)}.png"
    out.write_bytes(await cut_out(image))
    return f"saved {out}"


if __name__ == "__main__":
    app.run("stdio")
