"""AluoClient against the fake Aluo server: the wire, the polling, the charges, the errors."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from tests.conftest import make_settings
from tests.fakes.aluo import DEFAULT_API_KEY, FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import free_port
from tools.core.errors import (
    AuthFailed,
    InvalidInput,
    JobFailed,
    NotConfigured,
    OutOfCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from tools.core.fetch import SafeFetcher
from tools.core.refs import ImageSource
from tools.providers.aluo.client import AluoClient
from tools.providers.http import RetryPolicy

POLICY = RetryPolicy(base_delay=0.01)


class Hooks:
    """Records what the client reports (the `JobHooks` protocol a JobContext implements)."""

    def __init__(self, on_remember: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.progress_log: list[tuple[str, float | None]] = []
        self.ref: dict[str, Any] = {}
        self.remembered: list[dict[str, Any]] = []
        self.charges: list[float] = []
        self.bases: list[str] = []
        self.on_remember = on_remember

    async def progress(self, message: str, fraction: float | None = None) -> None:
        self.progress_log.append((message, fraction))

    async def remember(self, **ref: Any) -> None:
        self.ref.update(ref)
        self.remembered.append(ref)
        if self.on_remember is not None:
            self.on_remember(ref)

    async def charged(self, credits: float, *, basis: str = "reported") -> None:
        self.charges.append(credits)
        self.bases.append(basis)


@asynccontextmanager
async def aluo(
    tmp_path: Path, fake: FakeAluo, *, base: str = "http://fake", key: str = DEFAULT_API_KEY, asgi: bool = True
) -> AsyncIterator[AluoClient]:
    settings = make_settings(tmp_path, aluo_api_key=key, aluo_base_url=FakeAluo.api_base(base), aluo_poll_interval=0.01)
    transport = httpx2.ASGITransport(app=fake.app) if asgi else None
    async with AluoClient.from_settings(settings, transport=transport, policy=POLICY) as client:
        yield client


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def data_source(data: bytes, fetcher: SafeFetcher | None = None) -> ImageSource:
    return ImageSource("data:image/png;base64,...", "data", fetcher, data=data)  # type: ignore[arg-type]


def url_source(url: str) -> ImageSource:
    return ImageSource(url, "url", None, url=url)  # type: ignore[arg-type]


def posts(fake: FakeAluo, path: str) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path == path]


# -- configuration ----------------------------------------------------------------------------------


def test_missing_key_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(NotConfigured, match="ALUO_API_KEY"):
        AluoClient.from_settings(make_settings(tmp_path), policy=POLICY)


async def test_key_is_sent_to_the_api_only_and_never_shown(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake) as client:
        await client.remove_background(data_source(image_bytes(40, 30, "png")), Hooks())
        assert DEFAULT_API_KEY not in repr(client)
    api, cdn = fake.requests
    assert api.path == "/api/remove-bg"  # base ".../api" + relative path, no /api/api
    assert api.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert cdn.path.startswith("/cdn/") and "authorization" not in cdn.headers


# -- remove-bg --------------------------------------------------------------------------------------


async def test_remove_bg_uploads_a_file_part_and_charges_what_aluo_reports(tmp_path: Path) -> None:
    fake = FakeAluo(remove_bg_cost=3, credit_fields=True)
    hooks = Hooks()
    src = ImageSource("shoe.jpg", "path", None, path=tmp_path / "shoe.jpg", data=image_bytes(80, 60, "jpeg"))  # type: ignore[arg-type]
    async with aluo(tmp_path, fake) as client:
        assert (await client.balance()).amount is None
        (out,) = await client.remove_background(src, hooks)
        balance = await client.balance()
    req = posts(fake, "/api/remove-bg")[0]
    assert req.headers["content-type"].startswith("multipart/form-data")
    name, ctype, data = req.files["file"]
    assert (name, ctype) == ("shoe.jpg", "image/jpeg") and data == src.data  # fits already: sent untouched
    assert req.form == {}
    img = decode(out.data)
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == (80, 60)
    assert img.getpixel((0, 0))[3] == 0  # transparent corner
    assert hooks.charges == [3] and hooks.bases == ["reported"] and [c.amount for c in fake.charges] == [3]
    assert balance.amount == fake.balance == 997 and "last reported by Aluo" in balance.detail


async def test_remove_bg_fits_large_and_foreign_formats_before_upload(tmp_path: Path) -> None:
    fake = FakeAluo()
    big = io.BytesIO()
    Image.new("RGB", (5000, 1000), (10, 200, 30)).save(big, "BMP")
    async with aluo(tmp_path, fake) as client:
        await client.remove_background(data_source(big.getvalue()), Hooks())
    name, ctype, data = posts(fake, "/api/remove-bg")[0].files["file"]
    sent = decode(data)
    assert sent.format in ("PNG", "JPEG", "WEBP") and ctype == Image.MIME[sent.format]
    assert max(sent.size) == 4096 and len(data) <= 10 * 1024 * 1024
    assert name == "image." + {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[sent.format]


async def test_remove_bg_passes_a_url_through_without_downloading_it(tmp_path: Path) -> None:
    fake = FakeAluo()
    url = "http://fake/cdn/never-fetched.jpg"
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.remove_background(url_source(url), Hooks())
    req = posts(fake, "/api/remove-bg")[0]
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert req.form == {"imageUrl": url} and req.files == {}
    assert all(r.path != "/cdn/never-fetched.jpg" for r in fake.requests)
    assert decode(out.data).mode == "RGBA"


async def test_remove_bg_without_a_reported_amount_records_the_estimated_price(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.cdn["cut.png"] = (image_bytes(20, 20, "png", transparent=True), "image/png")
    body = {"code": 0, "success": True, "data": {"url": "http://fake/cdn/cut.png"}, "credits_remaining": 55}
    fake.fail_next("/api/remove-bg", 200, body=body)
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        await client.remove_background(data_source(image_bytes(20, 20)), hooks)
        assert (await client.balance()).amount == 55
    assert hooks.charges == [1] and hooks.bases == ["estimated"]  # never zero: seed 000 gives no amount


async def test_remove_bg_400_is_forwarded_in_aluos_words(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(InvalidInput, match="Aluo refused the background removal: Invalid image URL"):
            await client.remove_background(url_source("ftp://fake/x.png"), Hooks())
        fake.fail_next(
            "/api/remove-bg",
            400,
            body={"code": -1, "success": False, "message": "File too large (max 10MB)", "error": "upload was 12 MB"},
        )
        with pytest.raises(
            InvalidInput, match=r"File too large \(max 10MB\) \(upload was 12 MB\)\. .*nothing was charged"
        ):
            await client.remove_background(data_source(image_bytes()), Hooks())


async def test_remove_bg_500_reached_aluo_so_it_may_have_charged(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/remove-bg", 500)
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(ProviderUnavailable, match="HTTP 500") as err:
            await client.remove_background(data_source(image_bytes()), Hooks())
    assert err.value.charged and len(posts(fake, "/api/remove-bg")) == 1


# -- photo-editor -----------------------------------------------------------------------------------


async def test_edit_with_urls_sends_json_polls_and_downloads_every_image(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=3)
    seen_at_remember: list[int] = []
    hooks = Hooks(on_remember=lambda ref: seen_at_remember.append(len(fake.requests)))
    urls = ["http://fake/cdn/a.jpg", "http://fake/cdn/b.jpg"]
    async with aluo(tmp_path, fake) as client:
        outs = await client.edit(
            "Make it blue",
            [url_source(u) for u in urls],
            hooks,
            aspect_ratio="16:9",
            output_format="webp",
            num_images=2,
        )
    (post,) = posts(fake, "/api/photo-editor/generate")
    assert post.headers["content-type"] == "application/json"
    assert post.json == {
        "prompt": "Make it blue",
        "imageUrls": urls,
        "aspectRatio": "16:9",
        "outputFormat": "webp",
        "numImages": 2,
    }
    polls = [r for r in fake.requests if r.path == "/api/photo-editor/status"]
    task_id = next(iter(fake.jobs))
    assert len(polls) == 4 and all(r.query == {"taskId": task_id} for r in polls)
    # The task id was persisted right after submit, before the first poll.
    assert hooks.remembered[0] == {
        "kind": "editor",
        "task_id": task_id,
        "price": 80,  # 40 per edit (documented) x 2 output images (estimated)
        "basis": "estimated",
        "deducted": 0,
    }
    assert seen_at_remember[0] == 1
    assert not any(r.path in ("/cdn/a.jpg", "/cdn/b.jpg") for r in fake.requests)  # inputs never fetched
    assert [decode(o.data).format for o in outs] == ["WEBP", "WEBP"]
    assert decode(outs[0].data).size == (64, 36)
    assert outs[0].meta["aluo_task_id"] == task_id and outs[0].meta["description"].endswith("Make it blue")
    running = [m for m, _ in hooks.progress_log if m.startswith("running on Aluo")]
    assert len(running) == 3
    assert hooks.charges == [80] and [c.amount for c in fake.charges] == [80]
    assert hooks.ref["charged"] == 80


async def test_edit_with_local_inputs_sends_multipart_file_parts(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    sources = [data_source(image_bytes(60, 30, "png")), data_source(image_bytes(30, 30, "jpeg"))]
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.edit("Swap the colours", sources, Hooks())
    (post,) = posts(fake, "/api/photo-editor/generate")
    assert post.headers["content-type"].startswith("multipart/form-data")
    assert post.form == {"prompt": "Swap the colours", "outputFormat": "png", "numImages": "1"}  # no aspectRatio
    assert sorted(post.files) == ["file0", "file1"]
    assert post.files["file0"][1:] == ("image/png", sources[0].data)
    assert post.files["file1"][1] == "image/jpeg"
    assert decode(out.data).size == (64, 32)  # no ratio asked: the first input's shape


async def test_edit_mixing_a_url_and_a_file_uploads_both(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    async with serve(fake.app) as base:
        fake.cdn["in.png"] = (image_bytes(40, 40, "png"), "image/png")
        async with httpx2.AsyncClient() as http, aluo(tmp_path, fake, base=base, asgi=False) as client:
            fetcher = SafeFetcher(http, allow_private=True, max_bytes=2**20, timeout=5)
            url = ImageSource(base + "/cdn/in.png", "url", fetcher, url=base + "/cdn/in.png")
            await client.edit("Combine", [data_source(image_bytes(20, 20)), url], Hooks())
    (post,) = posts(fake, "/api/photo-editor/generate")
    assert sorted(post.files) == ["file0", "file1"] and "imageUrls" not in post.form
    assert post.files["file1"][2] == fake.cdn["in.png"][0]


async def test_edit_refuses_six_images_before_sending(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(InvalidInput, match="1 to 5 images"):
            await client.edit("x", [url_source(f"http://fake/{i}.png") for i in range(6)], Hooks())
    assert fake.requests == []


async def test_failed_edit_charges_nothing(tmp_path: Path) -> None:
    fake = FakeAluo(fail_jobs=True, fail_message="Content policy violation")
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(JobFailed, match=r"Content policy violation\. The edit failed and no credits were charged"):
            await client.edit("x", [url_source("http://fake/a.png")], hooks)
    assert hooks.charges == [] and fake.charges == []


async def test_balance_spent_meanwhile_is_out_of_credits_not_charged(tmp_path: Path) -> None:
    fake = FakeAluo(credits=50)

    def spend_elsewhere(ref: dict[str, Any]) -> None:
        fake.balance = 10

    hooks = Hooks(on_remember=spend_elsewhere)
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(OutOfCredits, match="Top up"):
            await client.edit("x", [url_source("http://fake/a.png")], hooks)
    assert hooks.charges == [] and fake.charges == []


# -- photo-generate ---------------------------------------------------------------------------------


async def test_generate_sends_the_documented_json_and_charges_per_variants(tmp_path: Path) -> None:
    fake = FakeAluo(credit_fields=True)
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        outs = await client.generate("A red mug", hooks, size="3:2", variants=4, output_format="jpeg", resolution="2K")
        balance = await client.balance()
    (post,) = posts(fake, "/api/photo-generate/generate")
    assert post.json == {
        "prompt": "A red mug",
        "size": "3:2",
        "nVariants": 4,
        "outputFormat": "jpeg",
        "resolution": "2K",
    }
    assert len(outs) == 4 and len({o.ref["url"] for o in outs}) == 4
    assert all(decode(o.data).format == "JPEG" and decode(o.data).size == (128, 85) for o in outs)
    assert hooks.charges == [160] and [c.amount for c in fake.charges] == [160]
    assert balance.amount == 840
    assert all(r.path.startswith("/api/photo-generate/") for r in fake.requests if r.path.startswith("/api"))


async def test_generate_without_resolution_omits_the_key(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    async with aluo(tmp_path, fake) as client:
        await client.generate("mug", Hooks())
    assert posts(fake, "/api/photo-generate/generate")[0].json == {
        "prompt": "mug",
        "size": "1:1",
        "nVariants": 1,
        "outputFormat": "png",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"variants": 3}, "nVariants must be 1, 2, or 4"), ({"prompt": "   "}, "Prompt is required")],
)
async def test_generate_400_messages_are_forwarded(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    fake = FakeAluo()
    prompt = kwargs.pop("prompt", "mug")
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(InvalidInput, match=f"Aluo refused the product-photo generation: {message}"):
            await client.generate(prompt, Hooks(), **kwargs)
    assert fake.jobs == {} and fake.charges == []


async def test_402_is_out_of_credits(tmp_path: Path) -> None:
    fake = FakeAluo(credits=100)
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(OutOfCredits) as err:
            await client.generate("mug", Hooks(), variants=4)
    assert "Top up" in err.value.message and "lower variants" in err.value.message
    assert not err.value.charged and fake.charges == []


async def test_401_names_the_key_variable_without_showing_the_key(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake, key="sk-wrong-key-123") as client:
        with pytest.raises(AuthFailed) as err:
            await client.generate("mug", Hooks())
    assert "the key was rejected, check ALUO_API_KEY" in err.value.message
    assert "sk-wrong-key-123" not in err.value.message and len(fake.requests) == 1


async def test_500_on_submit_is_not_retried_and_charges_nothing(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/photo-generate/generate", 500, times=5)
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(
            ProviderUnavailable, match=r"HTTP 500.*not re-sent.*at most 40 credits.*check_credits"
        ) as err:
            await client.generate("mug", Hooks())
    assert err.value.charged and err.value.max_charge == 40  # reached Aluo: `auto` must not fall through
    assert len(posts(fake, "/api/photo-generate/generate")) == 1 and fake.jobs == {}


async def test_429_on_submit_backs_off_and_the_retry_charges_once(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    fake.fail_next("/api/photo-generate/generate", 429, headers={"Retry-After": "0"})
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        await client.generate("mug", hooks)
    assert len(posts(fake, "/api/photo-generate/generate")) == 2 and len(fake.jobs) == 1
    assert hooks.charges == [40] and len(fake.charges) == 1


async def test_429_with_a_long_retry_after_says_when_to_try_again(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/photo-generate/generate", 429, headers={"Retry-After": "120"})
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(RateLimited, match="try again in 120 s") as err:
            await client.generate("mug", Hooks())
    assert err.value.retry_after == 120 and len(fake.requests) == 1


async def test_transient_poll_and_cdn_failures_are_retried(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=1)
    fake.fail_next("/api/photo-generate/status", 503, times=2)
    fake.fail_cdn_once()
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.generate("mug", hooks)
    assert decode(out.data).format == "PNG"
    cdn = [r for r in fake.requests if r.path.startswith("/cdn/")]
    assert len(cdn) == 2 and cdn[0].path == cdn[1].path
    assert hooks.charges == [40] and len(fake.charges) == 1


async def test_rate_limited_status_checks_are_waited_out(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=1)
    # Two full rounds of `send`'s retries all answer 429: the task is still followed to the end.
    fake.fail_next("/api/photo-editor/status", 429, times=8, headers={"Retry-After": "0"})
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.edit("x", [url_source("http://fake/a.png")], hooks)
    assert decode(out.data).format == "PNG" and hooks.charges == [40]
    assert len([r for r in fake.requests if r.path == "/api/photo-editor/status"]) == 10
    assert any("rate limiting" in m for m, _ in hooks.progress_log)


async def test_a_status_endpoint_that_stays_down_reports_the_task_may_still_charge(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/photo-editor/status", 500, times=100)
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(ProviderUnavailable, match="may still finish and charge") as err:
            await client.edit("x", [url_source("http://fake/a.png")], Hooks())
    assert err.value.charged and len(posts(fake, "/api/photo-editor/generate")) == 1


async def test_unreachable_aluo_is_provider_unavailable(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake, base=f"http://127.0.0.1:{free_port()}", asgi=False) as client:
        with pytest.raises(ProviderUnavailable, match=r"unreachable.*Nothing was charged"):
            await client.generate("mug", Hooks())


async def test_a_read_timeout_on_a_paid_post_is_never_resent(tmp_path: Path) -> None:
    fake = FakeAluo(delay_s=0.5)
    async with serve(fake.app) as base:
        http = httpx2.AsyncClient(base_url=FakeAluo.api_base(base) + "/", timeout=httpx2.Timeout(0.1))
        async with AluoClient(http, api_key=DEFAULT_API_KEY, policy=POLICY, poll_interval=0.01) as client:
            with pytest.raises(ProviderUnavailable, match="not re-sent") as err:
                await client.generate("mug", Hooks())
    assert err.value.charged and len(posts(fake, "/api/photo-generate/generate")) == 1


# -- ai-generate-background -------------------------------------------------------------------------


async def test_background_sends_json_prompt_and_charges_what_aluo_reports(tmp_path: Path) -> None:
    fake = FakeAluo(background_cost=5, credit_fields=True)
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.generate_background("a marble table", hooks)
    (post,) = posts(fake, "/api/ai-generate-background")
    assert post.headers["content-type"] == "application/json" and post.json == {"prompt": "a marble table"}
    assert decode(out.data).format == "JPEG"
    assert hooks.charges == [5] and [c.amount for c in fake.charges] == [5]


async def test_background_tolerates_an_images_list(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.cdn["bg.png"] = (image_bytes(30, 30, "png"), "image/png")
    data = {"images": [{"url": "http://fake/cdn/bg.png"}]}
    fake.fail_next("/api/ai-generate-background", 200, body={"code": 0, "success": True, "data": data})
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.generate_background("studio", Hooks())
    assert out.data == fake.cdn["bg.png"][0]


async def test_an_answer_that_is_not_the_envelope_is_unavailable(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/ai-generate-background", 502, body="<html>Bad gateway</html>")
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(ProviderUnavailable, match="HTTP 502") as err:
            await client.generate_background("studio", Hooks())
    assert err.value.charged and len(posts(fake, "/api/ai-generate-background")) == 1


# -- resume -----------------------------------------------------------------------------------------


async def _submit_directly(fake: FakeAluo, path: str, body: dict[str, Any]) -> str:
    transport = httpx2.ASGITransport(app=fake.app)
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake/api", headers=headers) as raw:
        return (await raw.post(path, json=body)).json()["data"]["taskId"]


async def test_resume_polls_the_remembered_task_and_charges_once(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=2)
    task_id = await _submit_directly(fake, "/photo-generate/generate", {"prompt": "mug", "nVariants": 2})
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        outs = await client.resume({"kind": "generate", "task_id": task_id, "price": 80, "deducted": 0}, hooks)
    assert len(outs) == 2 and hooks.charges == [80] and len(fake.charges) == 1
    assert not any(r.method == "POST" for r in fake.requests[1:])  # nothing re-submitted


async def test_resume_after_the_charge_was_recorded_does_not_charge_again(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    task_id = await _submit_directly(fake, "/photo-generate/generate", {"prompt": "mug"})
    async with aluo(tmp_path, fake) as client:
        first = Hooks()
        await client.resume({"kind": "generate", "task_id": task_id, "price": 40}, first)
        again = Hooks()
        (out,) = await client.resume({"kind": "generate", "task_id": task_id, "price": 40, **first.ref}, again)
    assert first.charges == [40] and again.charges == [] and len(fake.charges) == 1
    assert decode(out.data).format == "PNG"


async def test_resume_of_an_unknown_or_missing_task_fails_clearly(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(JobFailed, match="no longer knows task edit_1"):
            await client.resume({"kind": "editor", "task_id": "edit_1"}, Hooks())
        with pytest.raises(JobFailed, match="cannot be resumed"):
            await client.resume({}, Hooks())
    assert [r.path for r in fake.requests] == ["/api/photo-editor/status"]


async def test_no_image_url_on_success_is_a_charged_provider_error(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next(
        "/api/photo-generate/status",
        200,
        body={"code": 0, "success": True, "data": {"status": "SUCCESS", "images": []}},
    )
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        with pytest.raises(ProviderError, match="no image URL") as err:
            await client.generate("mug", hooks)
    assert err.value.charged and hooks.charges == [40]


# -- cost honesty (issue 15) and charges after a lost answer (issue 14 item 6) -----------------------


class DropAnswerOf(httpx2.AsyncBaseTransport):
    """The fake handles the request (the work is done), then the connection drops before the answer."""

    def __init__(self, app: Any, path: str) -> None:
        self._inner = httpx2.ASGITransport(app=app)
        self._path = path

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.method == "POST" and request.url.path == self._path:
            await response.aread()
            raise httpx2.ReadError("connection reset by peer", request=request)
        return response


async def test_an_edit_of_several_images_is_recorded_per_output_image(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)  # no credit fields: the client records the price
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        outs = await client.edit("make it blue", [url_source("https://example.com/a.jpg")], hooks, num_images=3)
    assert len(outs) == 3 and [c.amount for c in fake.charges] == [120]
    assert hooks.charges == [120] and hooks.bases == ["estimated"]  # 40/edit documented, x3 images estimated
    assert hooks.remembered[0]["price"] == 120


async def test_the_pro_plan_setting_uses_pro_prices(tmp_path: Path) -> None:
    fake = FakeAluo(tier="pro", polls_until_done=0)
    hooks = Hooks()
    settings = make_settings(
        tmp_path, aluo_api_key=DEFAULT_API_KEY, aluo_base_url=FakeAluo.api_base("http://fake"), aluo_plan="pro"
    )
    async with AluoClient.from_settings(settings, transport=httpx2.ASGITransport(app=fake.app), policy=POLICY) as c:
        await c.generate("mug", hooks, variants=2)
        await c.edit("blue", [url_source("https://example.com/a.jpg")], hooks)
    assert [c.amount for c in fake.charges] == [70, 35]
    assert hooks.charges == [70, 35] and hooks.bases == ["documented", "documented"]


async def test_generate_background_without_an_amount_records_the_estimate(tmp_path: Path) -> None:
    fake = FakeAluo(background_cost=1)
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        await client.generate_background("studio", hooks)
    assert hooks.charges == [1] and hooks.bases == ["estimated"]


@pytest.mark.parametrize("shape", ["url", "images"])
async def test_background_answer_is_read_in_both_plausible_shapes(tmp_path: Path, shape: str) -> None:
    # Inferred contract (seed 000 says only "background image URL"): data.url or data.images[0].url.
    fake = FakeAluo(background_shape=shape)
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.generate_background("studio", Hooks())
    assert decode(out.data).format == "JPEG"


async def test_timings_reach_the_progress_and_the_image_meta(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=1)
    hooks = Hooks()
    async with aluo(tmp_path, fake) as client:
        (out,) = await client.generate("mug", hooks)
    assert out.meta["aluo_timings"] == {"inference": 0.5}
    assert any("Aluo took 0.5 s" in m for m, _ in hooks.progress_log)


@pytest.mark.parametrize(
    ("path", "call", "max_charge", "said"),
    [
        ("/api/photo-editor/generate", "edit", 40, "at most 40 credits"),
        ("/api/photo-generate/generate", "generate", 160, "at most 160 credits"),
        ("/api/remove-bg", "remove_background", 1, "at most 1 credit)"),
    ],
)
async def test_a_dropped_answer_to_a_paid_call_says_what_may_have_been_charged(
    tmp_path: Path, path: str, call: str, max_charge: float, said: str
) -> None:
    fake = FakeAluo(polls_until_done=0)
    settings = make_settings(tmp_path, aluo_api_key=DEFAULT_API_KEY, aluo_base_url=FakeAluo.api_base("http://fake"))
    hooks = Hooks()
    async with AluoClient.from_settings(settings, transport=DropAnswerOf(fake.app, path), policy=POLICY) as client:
        with pytest.raises(ProviderUnavailable) as err:
            if call == "edit":
                await client.edit("blue", [url_source("https://example.com/a.jpg")], hooks)
            elif call == "generate":
                await client.generate("mug", hooks, variants=4)
            else:
                await client.remove_background(data_source(image_bytes(20, 20)), hooks)
    assert err.value.charged and err.value.max_charge == max_charge
    assert said in err.value.message and "check_credits" in err.value.message
    assert len(posts(fake, path)) == 1  # never re-sent
