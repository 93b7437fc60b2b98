"""Machinery behind the tools: images, fetching, results, jobs, budget, outputs (no MCP)."""
