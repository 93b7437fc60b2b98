"""Clients nobody on this project wrote, run against photo-mcp (see tests/test_compat_clients.py)."""
