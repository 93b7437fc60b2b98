"""The offline AI backend behind provider="local" (optional extra photo-mcp[local])."""

from __future__ import annotations

from tools.core.jobs import JobContext
from tools.core.refs import ImageSource
from tools.errors import NotConfigured
from tools.local_ai_status import INSTALL_HINT
from tools.providers.base import ProviderImage
from tools.runtime import Runtime


async def local_cut_out(rt: Runtime, source: ImageSource, job: JobContext) -> list[ProviderImage]:
    """Raises:
    NotConfigured: until the offline extra is installed.
    """
    raise NotConfigured(f"The offline local provider is not installed: {INSTALL_HINT}")
