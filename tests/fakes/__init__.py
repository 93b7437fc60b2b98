"""Fake provider servers: real Starlette apps implementing ../shared/providers.md."""
