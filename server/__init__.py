"""The MCP adapter: the only package that imports mcp.server."""
