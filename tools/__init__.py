"""What the assistant can call, and everything behind it.

`tools.core` and `tools.providers` know nothing of MCP; the tool modules
(`tools.local`, `tools.jobs`, ...) register MCP tools on a server handed to them.
"""
