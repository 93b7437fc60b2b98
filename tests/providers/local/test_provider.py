"""The offline provider's error mapping: only the caller's mistakes become InvalidInput."""

from __future__ import annotations

import pytest

from tools.core.errors import InvalidInput
from tools.providers.local.edits import MaskTooLarge
from tools.providers.local.provider import offline


async def test_a_mask_too_large_is_advice_for_the_caller() -> None:
    def work() -> bytes:
        raise MaskTooLarge(0.3)

    with pytest.raises(InvalidInput, match="youcam"):
        await offline(work, model=False)


async def test_a_bug_inside_the_offline_code_is_not_blamed_on_the_input() -> None:
    """Regression: every ValueError raised in the offline code was reported as the user's invalid input."""

    def work() -> bytes:
        raise ValueError("operands could not be broadcast together")

    with pytest.raises(ValueError, match="broadcast") as caught:
        await offline(work, model=False)
    assert not isinstance(caught.value, InvalidInput)
