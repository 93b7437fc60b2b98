"""The baseline for the cold-start benchmark: a bare MCPServer with one tool, over stdio."""

from mcp.server.mcpserver import MCPServer

app = MCPServer("bare")


@app.tool()
def echo(text: str) -> str:
    """Echo the text."""
    return text


if __name__ == "__main__":
    app.run("stdio")
