"""The baseline for the cold-start benchmark: a bare MCPServer over stdio with N tools
(`python bare_server.py N`, default 1), each shaped like one of photo-mcp's image tools: an image
string, a few typed options with descriptions, and a structured output (a pydantic model), so
the SDK builds an input and an output schema per tool, as it does for photo-mcp."""

import sys
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

app = MCPServer("bare")


class Output(BaseModel):
    """What a tool returns (an id, a URI, the size and the format of one image)."""

    status: Literal["succeeded", "running", "failed"]
    result_id: str | None = None
    uri: str | None = None
    width: int | None = None
    height: int | None = None
    mime_type: str | None = None
    job_id: str | None = None
    provider: str | None = None


def _make(i: int):
    async def tool(
        image: Annotated[str, Field(description="The image: a path, a URL or a data: URI", min_length=1)],
        max_side: Annotated[int, Field(ge=1, le=8192, description="Long side in pixels")] = 1024,
        output_format: Literal["png", "jpeg", "webp"] = "png",
        provider: Literal["auto", "a", "b"] = "auto",
    ) -> Output:
        return Output(status="succeeded", result_id=str(i), width=max_side, height=max_side, mime_type=output_format)

    tool.__name__ = tool.__qualname__ = f"tool_{i}"
    tool.__doc__ = f"Tool number {i}: does something to an image and returns the result."
    return tool


for _i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
    app.add_tool(_make(_i))

if __name__ == "__main__":
    app.run("stdio")
