"""remove_background routing: provider order, fall-through, and never paying twice.

The fake Aluo and the fake Removedo are served together on loopback; their ledgers are
the proof of what was charged. `auto` tries PHOTO_MCP_BACKGROUND_PROVIDERS in order,
skips unconfigured providers, and falls through only on failures that cannot have charged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.support import free_port, stdio_params
from tools.core.settings import Settings

ALUO_REMOVE_BG = "/api/remove-bg"
REMOVEDO_SUBMIT = "/api/v1/remove-bg"


@dataclass
class Fakes:
    aluo: FakeAluo
    removedo: FakeRemovedo
    aluo_base: str
    removedo_base: str

    @property
    def aluo_net(self) -> int:
        return sum(c.amount for c in self.aluo.charges)

    def aluo_calls(self) -> int:
        return sum(r.path == ALUO_REMOVE_BG for r in self.aluo.requests)

    def removedo_calls(self) -> int:
        return sum(r.path == REMOVEDO_SUBMIT for r in self.removedo.requests)


@asynccontextmanager
async def fakes(aluo: FakeAluo | None = None, removedo: FakeRemovedo | None = None) -> AsyncIterator[Fakes]:
    aluo = aluo or FakeAluo()
    removedo = removedo or FakeRemovedo(polls_until_done=1)
    async with removedo, serve(aluo.app) as a, serve(removedo.app) as r:
        yield Fakes(aluo, removedo, FakeAluo.api_base(a), r)


def routed_settings(
    tmp_path: Path, f: Fakes | None, *, aluo: bool = True, removedo: bool = True, **kw: Any
) -> Settings:
    values: dict[str, Any] = {"allow_private_urls": True, "retry_base_delay": 0.01, "removedo_poll_interval": 0.02}
    if f is not None and aluo:
        values.update(ALUO_API_KEY=f.aluo.api_key, ALUO_BASE_URL=f.aluo_base)
    if f is not None and removedo:
        values.update(REMOVEDO_API_KEY=f.removedo.api_key, REMOVEDO_BASE_URL=f.removedo_base)
    values.update(kw)
    return make_settings(tmp_path, **values)


async def cut_out(settings: Settings, image: str, provider: str = "auto") -> Any:
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(30):
            return await client.call_tool("remove_background", {"image": image, "provider": provider})


def text_of(result: Any) -> str:
    return " ".join(b.text for b in result.content if b.type == "text")


@pytest.fixture
def photo(workdir: Path) -> str:
    path = workdir / "shoe.png"
    path.write_bytes(image_bytes(64, 48))
    return str(path)


# ------------------------------------------------------------------------------ order and skipping
async def test_auto_uses_the_first_configured_provider(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        result = await cut_out(routed_settings(tmp_path, f), photo)
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["provider"] == "aluo" and out["credits"]["charged"] == 1
    assert out["details"] == {"credits_basis": "estimated"}  # Aluo does not say what remove-bg costs
    assert f.aluo_calls() == 1 and f.removedo.requests == []
    assert f.aluo_net == 1 and f.removedo.net_charged == 0


async def test_the_configured_order_is_followed(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        result = await cut_out(routed_settings(tmp_path, f, background_providers=["removedo", "aluo"]), photo)
    assert result.structured_content["provider"] == "removedo", result.content
    assert f.aluo.requests == [] and f.removedo.net_charged == 1


async def test_unconfigured_providers_are_skipped(tmp_path: Path, photo: str) -> None:
    # Only Removedo has a key: Aluo and YouCam (earlier in the default order) are not tried at all.
    async with fakes() as f:
        result = await cut_out(routed_settings(tmp_path, f, aluo=False), photo)
    assert not result.is_error, result.content
    assert result.structured_content["provider"] == "removedo"
    assert f.aluo.requests == [] and f.removedo_calls() == 1


# ------------------------------------------------------------------------------------ fall-through
@pytest.mark.parametrize(("status", "fragment"), [(402, "insufficient credits"), (401, "ALUO_API_KEY")])
async def test_credit_or_auth_failure_falls_through_and_charges_once(
    tmp_path: Path, photo: str, status: int, fragment: str
) -> None:
    async with fakes() as f:
        f.aluo.fail_next(ALUO_REMOVE_BG, status)
        settings = routed_settings(tmp_path, f)
        async with Client(build_server(settings)) as client:
            with anyio.fail_after(30):
                result = await client.call_tool("remove_background", {"image": photo})
            credits = await client.call_tool("check_credits", {})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["provider"] == "removedo"
    [skipped] = out["details"]["skipped"]
    assert skipped.startswith("aluo: ") and fragment in skipped
    assert "Skipped aluo" in out["message"] and "Skipped aluo" in text_of(result)
    # One charge in total, on the provider that ran, in both the fakes and our ledger.
    assert f.aluo_calls() == 1 and f.aluo.charges == [] and f.removedo.net_charged == 1
    assert out["credits"]["charged"] == 1
    spent = {row["provider"]: row["spent_today_here"] for row in credits.structured_content["providers"]}
    assert spent == {"aluo": 0, "youcam": 0, "removedo": 1}


async def test_an_unreachable_provider_falls_through(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        dead = f"http://127.0.0.1:{free_port()}/api"  # nothing listens: the request never left
        result = await cut_out(routed_settings(tmp_path, f, ALUO_BASE_URL=dead), photo)
    assert result.structured_content["provider"] == "removedo", result.content
    assert "unreachable" in result.structured_content["details"]["skipped"][0]
    assert f.removedo.net_charged == 1


async def test_every_provider_failing_reports_each_reason(tmp_path: Path, photo: str) -> None:
    async with fakes(removedo=FakeRemovedo(credits=0)) as f:
        f.aluo.fail_next(ALUO_REMOVE_BG, 402)
        result = await cut_out(routed_settings(tmp_path, f, background_providers=["aluo", "removedo"]), photo)
    assert result.is_error
    message = result.structured_content["message"]
    assert message.startswith("Removedo has no credits left (HTTP 402")
    assert "(Also tried: aluo: Aluo has insufficient credits" in message
    assert f.aluo.charges == [] and f.removedo.charges == []


# ---------------------------------------------------------------------- never after a possible charge
async def test_no_fall_through_once_removedo_has_accepted_the_job(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        f.removedo.fail_next("/api/v1/jobs/", 500, times=4)  # every retry of the status poll fails
        result = await cut_out(routed_settings(tmp_path, f, background_providers=["removedo", "aluo"]), photo)
    assert result.is_error
    assert "already submitted and charged 1 credit" in result.structured_content["message"]
    assert "Also tried" not in result.structured_content["message"]
    assert f.aluo.requests == []  # Aluo never ran: the user is not billed twice
    assert f.removedo.net_charged == 1 and result.structured_content["credits"]["charged"] == 1


async def test_a_failed_job_does_not_fall_through(tmp_path: Path, photo: str) -> None:
    async with fakes(removedo=FakeRemovedo(polls_until_done=0, fail_jobs=True)) as f:
        result = await cut_out(routed_settings(tmp_path, f, background_providers=["removedo", "aluo"]), photo)
    assert result.is_error and "do not say whether failed jobs are refunded" in result.structured_content["message"]
    assert f.aluo.requests == [] and f.removedo.net_charged == 1  # the fake keeps it, as the seed allows
    assert result.structured_content["credits"]["charged"] == 1


async def test_no_fall_through_when_aluo_charged_but_its_result_cannot_be_fetched(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        f.aluo.fail_next("/cdn/", 500, times=10)
        result = await cut_out(routed_settings(tmp_path, f), photo)
    assert result.is_error, result.content
    assert result.structured_content["provider"] == "aluo"
    assert f.removedo.requests == [] and f.aluo_net == 1


async def test_aluo_500_on_the_paid_post_does_not_fall_through(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        f.aluo.fail_next(ALUO_REMOVE_BG, 500)
        result = await cut_out(routed_settings(tmp_path, f), photo)
    assert result.is_error and "HTTP 500" in result.structured_content["message"]
    assert "Also tried" not in result.structured_content["message"]
    assert f.removedo.requests == []  # Aluo may have charged: Removedo is never asked


async def test_an_explicit_provider_never_falls_through(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        f.aluo.fail_next(ALUO_REMOVE_BG, 402)
        result = await cut_out(routed_settings(tmp_path, f), photo, provider="aluo")
    assert result.is_error and "insufficient credits" in result.structured_content["message"]
    assert f.removedo.requests == []


# ----------------------------------------------------------------------------------- setup messages
async def test_explicit_unconfigured_provider_names_its_key(tmp_path: Path, photo: str) -> None:
    result = await cut_out(routed_settings(tmp_path, None), photo, provider="removedo")
    assert result.is_error
    assert text_of(result).endswith(
        "Removedo cannot remove backgrounds here: set REMOVEDO_API_KEY (an API key from removedo.com, sk_live_…)."
    )
    assert result.structured_content is None  # refused before any job was created


async def test_nothing_configured_lists_every_setup_step(tmp_path: Path, photo: str) -> None:
    settings = routed_settings(tmp_path, None, background_providers=["aluo", "youcam", "removedo"])
    result = await cut_out(settings, photo)
    assert result.is_error
    text = text_of(result)
    for key in ("ALUO_API_KEY", "YOUCAM_API_KEY and YOUCAM_SECRET_KEY", "REMOVEDO_API_KEY"):
        assert key in text


# provider="local" without the extra: tests/test_local_ai_tools.py (imports hidden in a subprocess).


# ------------------------------------------------------------------------------------ stdio process
async def test_fall_through_over_a_stdio_subprocess(tmp_path: Path, photo: str) -> None:
    async with fakes() as f:
        f.aluo.fail_next(ALUO_REMOVE_BG, 402)
        params = stdio_params(
            tmp_path,
            ALUO_API_KEY=f.aluo.api_key,
            ALUO_BASE_URL=f.aluo_base,
            REMOVEDO_API_KEY=f.removedo.api_key,
            REMOVEDO_BASE_URL=f.removedo_base,
            PHOTO_MCP_REMOVEDO_POLL_INTERVAL="0.02",
            PHOTO_MCP_BACKGROUND_PROVIDERS="aluo,removedo",
        )
        with anyio.fail_after(60):
            async with Client(params) as client:
                result = await client.call_tool("remove_background", {"image": photo})
    assert not result.is_error, result.content
    assert result.structured_content["provider"] == "removedo"
    assert result.structured_content["details"]["skipped"][0].startswith("aluo: ")
    assert f.aluo.charges == [] and f.removedo.net_charged == 1
