"""Tests for the fake Aluo server: they pin our reading of providers.md §2 on the wire."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from PIL import Image

from .aluo import DEFAULT_API_KEY, RATIOS, FakeAluo
from .images import image_bytes
from .loopback import serve

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
URL = "https://example.com/product.jpg"


@asynccontextmanager
async def client(fake: FakeAluo) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake/api", headers=AUTH) as c:
        yield c


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def assert_error(r: httpx2.Response, status: int, code: int, message: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["success"] is False
    assert isinstance(body["message"], str) and isinstance(body["error"], str)
    if message is not None:
        assert body["message"] == message
    return body


async def poll(c: httpx2.AsyncClient, path: str, task_id: str) -> list[dict[str, Any]]:
    bodies = []
    for _ in range(10):
        body = (await c.get(path, params={"taskId": task_id})).json()
        bodies.append(body)
        if body["data"]["status"] != "PENDING":
            break
    return bodies


# -- auth and envelope ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "Basic x"}])
async def test_bad_or_missing_key_is_401_code_minus_2(headers: dict[str, str]) -> None:
    fake = FakeAluo()
    transport = httpx2.ASGITransport(app=fake.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://fake/api", headers=headers) as c:
        r = await c.post("/photo-generate/generate", json={"prompt": "mug"})
    body = assert_error(r, 401, -2)
    assert DEFAULT_API_KEY not in r.text and "sk-wrong" not in r.text
    assert fake.requests[0].path == "/api/photo-generate/generate" and fake.jobs == {}
    assert body["message"] == "Unauthorized"


async def test_unknown_route_and_wrong_method_are_recorded_error_envelopes() -> None:
    fake = FakeAluo()
    async with client(fake) as c:
        assert_error(await c.post("/nope", json={}), 404, -1)
        assert_error(await c.get("/remove-bg"), 405, -1)
        assert_error(await c.get("/api/remove-bg"), 404, -1)  # no /api/api/...
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/api/nope"),
        ("GET", "/api/remove-bg"),
        ("GET", "/api/api/remove-bg"),
    ]


def test_constructor_validates_tier_and_api_base() -> None:
    with pytest.raises(ValueError):
        FakeAluo(tier="max")
    assert FakeAluo.api_base("http://127.0.0.1:9/") == "http://127.0.0.1:9/api"


# -- remove-bg --------------------------------------------------------------------------------------


async def test_remove_bg_file_returns_transparent_png_of_input_size() -> None:
    fake = FakeAluo(credit_fields=True, credits=10)
    src = image_bytes(120, 80, "jpeg")
    async with client(fake) as c:
        r = await c.post("/remove-bg", files={"file": ("shoe.jpg", src, "image/jpeg")})
        assert r.status_code == 200
        body = r.json()
        out = await c.get(body["data"]["url"])
    assert body["code"] == 0 and body["success"] is True
    assert body["credits_deducted"] == 1 and body["credits_remaining"] == 9
    data = body["data"]
    assert data["originalFileName"] == "shoe.jpg" and data["processedFileName"] == "shoe_nobg.png"
    assert (data["width"], data["height"]) == (120, 80) and data["contentType"] == "image/png"
    assert data["url"].startswith("http://fake/cdn/")
    assert out.headers["content-type"] == "image/png" and len(out.content) == data["fileSize"]
    img = decode(out.content)
    assert img.format == "PNG" and img.mode == "RGBA" and img.size == (120, 80)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((60, 40))[3] == 255
    rec = fake.requests[0]
    assert (
        rec.files["file"] == ("shoe.jpg", "image/jpeg", src) and rec.headers["authorization"] == AUTH["Authorization"]
    )
    assert [(ch.amount, ch.what) for ch in fake.charges] == [(1, "remove-bg")] and fake.balance == 9


async def test_remove_bg_image_url_fetches_nothing_and_records_the_field() -> None:
    fake = FakeAluo(credit_fields=True, remove_bg_cost=3)
    async with client(fake) as c:
        r = await c.post("/remove-bg", data={"imageUrl": URL}, files={"unused": ("x.txt", b"x", "text/plain")})
        data = r.json()["data"]
        out = await c.get(data["url"])
    assert r.status_code == 200 and r.json()["credits_deducted"] == 3
    assert fake.requests[0].form == {"imageUrl": URL}
    assert data["originalFileName"] == "product.jpg" and data["processedFileName"] == "product_nobg.png"
    assert decode(out.content).size == (data["width"], data["height"])
    assert [r.path for r in fake.requests] == ["/api/remove-bg", data["url"].removeprefix("http://fake")]


async def test_remove_bg_non_image_is_400_and_refunded() -> None:
    fake = FakeAluo(credits=5)
    async with client(fake) as c:
        r = await c.post("/remove-bg", files={"file": ("a.jpg", b"<html>not an image</html>", "image/jpeg")})
        gif = io.BytesIO()
        Image.new("RGB", (4, 4)).save(gif, "GIF")
        r2 = await c.post("/remove-bg", files={"file": ("a.gif", gif.getvalue(), "image/gif")})
    body = assert_error(r, 400, -1)
    assert "cannot decode 'a.jpg'" in body["message"]
    assert "Unsupported image format GIF" in assert_error(r2, 400, -1)["message"]
    assert fake.balance == 5 and sum(ch.amount for ch in fake.charges) == 0
    assert [ch.what for ch in fake.charges] == ["remove-bg", "remove-bg refund"] * 2


async def test_remove_bg_needs_an_image_and_credits() -> None:
    fake = FakeAluo(credits=0)
    async with client(fake) as c:
        assert_error(await c.post("/remove-bg", data={"other": "1"}), 400, -1, "Please upload an image file")
        assert_error(await c.post("/remove-bg", json={"imageUrl": URL}), 400, -1)  # multipart only
        assert_error(await c.post("/remove-bg", data={"imageUrl": "file:///etc/x"}), 400, -1)
        r = await c.post("/remove-bg", files={"file": ("a.png", image_bytes(8, 8), "image/png")})
    assert_error(r, 402, 402, "Insufficient credits")
    assert fake.charges == [] and fake.balance == 0


# -- photo editor -----------------------------------------------------------------------------------


async def test_edit_json_pending_then_success_charges_40_per_image_once() -> None:
    fake = FakeAluo(credit_fields=True, credits=100, polls_until_done=2)
    req = {"prompt": "Make it blue", "imageUrls": [URL], "aspectRatio": "16:9", "outputFormat": "webp"}
    async with client(fake) as c:
        r = await c.post("/photo-editor/generate", json={**req, "numImages": 2})
        sub = r.json()
        assert r.status_code == 200 and fake.balance == 100 and sub["credits_deducted"] == 0
        bodies = await poll(c, "/photo-editor/status", sub["data"]["taskId"])
        again = (await c.get("/photo-editor/status", params={"taskId": sub["data"]["taskId"]})).json()
        images = bodies[-1]["data"]["images"]
        downloads = [await c.get(i["url"]) for i in images]
    data = sub["data"]
    assert data["taskId"].startswith("edit_") and data["provider"] and data["model"]
    assert (data["prompt"], data["aspectRatio"], data["outputFormat"]) == ("Make it blue", "16:9", "webp")
    assert data["numImages"] == 2 and data["inputImages"] == [URL]
    assert [b["data"]["status"] for b in bodies] == ["PENDING", "PENDING", "SUCCESS"]
    assert bodies[0]["data"]["images"] == [] and [b["credits_deducted"] for b in bodies] == [0, 0, 80]
    assert bodies[-1]["credits_remaining"] == 20 and again["credits_deducted"] == 0
    assert again["data"]["images"] == images and isinstance(bodies[-1]["data"]["description"], str)
    assert len(images) == 2 and len({i["url"] for i in images}) == 2
    for meta, dl in zip(images, downloads, strict=True):
        assert meta["content_type"] == "image/webp" == dl.headers["content-type"]
        img = decode(dl.content)
        assert img.format == "WEBP" and img.size == (meta["width"], meta["height"]) == (64, 36)
    assert [(ch.task_id, ch.amount, ch.what) for ch in fake.charges] == [(data["taskId"], 80, "edit")]
    assert set(fake.requests[0].json) == {*req, "numImages"}


async def test_edit_multipart_files_are_recorded_and_become_input_urls() -> None:
    fake = FakeAluo(polls_until_done=0)
    files = {
        "file0": ("wide.png", image_bytes(100, 50, "png"), "image/png"),
        "file1": ("b.jpg", image_bytes(20, 20, "jpeg"), "image/jpeg"),
    }
    form = {"prompt": "Put them together", "outputFormat": "jpeg", "numImages": "1"}
    async with client(fake) as c:
        r = await c.post("/photo-editor/generate", data=form, files=files)
        data = r.json()["data"]
        done = (await c.get("/photo-editor/status", params={"taskId": data["taskId"]})).json()["data"]
        first_input = await c.get(data["inputImages"][0])
        out = decode((await c.get(done["images"][0]["url"])).content)
    assert r.status_code == 200, r.text
    rec = fake.requests[0]
    assert rec.form == form and rec.json is None
    assert rec.files == {k: (name, ctype, raw) for k, (name, raw, ctype) in files.items()}
    assert data["aspectRatio"] is None and data["numImages"] == 1 and len(data["inputImages"]) == 2
    assert first_input.content == files["file0"][1] and first_input.headers["content-type"] == "image/png"
    assert done["status"] == "SUCCESS" and out.format == "JPEG" and out.size == (64, 32)  # first input's 2:1


def _multipart_six() -> dict[str, Any]:
    return {f"file{i}": (f"{i}.png", image_bytes(8, 8), "image/png") for i in range(6)}


@pytest.mark.parametrize(
    ("json", "message"),
    [
        ({"imageUrls": [URL]}, "Prompt is required"),
        ({"prompt": "  ", "imageUrls": [URL]}, "Prompt is required"),
        ({"prompt": "x"}, "At least one image URL is required"),
        ({"prompt": "x", "imageUrls": []}, "At least one image URL is required"),
        ({"prompt": "x", "imageUrls": [URL] * 6}, "Maximum 5 images allowed"),
        ({"prompt": "x", "imageUrls": [URL], "aspectRatio": "7:5"}, "Invalid aspectRatio '7:5'"),
        ({"prompt": "x", "imageUrls": [URL], "outputFormat": "jpg"}, "Invalid outputFormat 'jpg'"),
        ({"prompt": "x", "imageUrls": [URL], "numImages": 0}, "numImages must be a positive integer"),
        ({"prompt": "x", "imageUrls": "https://a/b.png"}, "imageUrls must be an array of URL strings"),
    ],
)
async def test_edit_validation_messages(json: dict[str, Any], message: str) -> None:
    fake = FakeAluo()
    async with client(fake) as c:
        r = await c.post("/photo-editor/generate", json=json)
    assert assert_error(r, 400, -1)["message"].startswith(message)
    assert fake.jobs == {} and fake.charges == []


async def test_edit_multipart_validation_and_all_ratios_accepted() -> None:
    fake = FakeAluo()
    async with client(fake) as c:
        r6 = await c.post("/photo-editor/generate", data={"prompt": "x"}, files=_multipart_six())
        r0 = await c.post("/photo-editor/generate", data={"prompt": "x", "aspectRatio": "1:1"})
        bad = {"file0": ("a.png", b"nope", "image/png")}
        rbad = await c.post("/photo-editor/generate", data={"prompt": "x"}, files=bad)
        oks = [
            await c.post("/photo-editor/generate", json={"prompt": "x", "imageUrls": [URL], "aspectRatio": ar})
            for ar in RATIOS
        ]
    assert_error(r6, 400, -1, "Maximum 5 images allowed")
    assert_error(r0, 400, -1)  # urlencoded is neither JSON nor multipart
    assert "file0" in assert_error(rbad, 400, -1)["message"]
    assert [r.status_code for r in oks] == [200] * len(RATIOS)


async def test_edit_credit_check_at_submit_and_pro_price() -> None:
    fake = FakeAluo(credit_fields=True, credits=34, tier="pro", polls_until_done=0)
    async with client(fake) as c:
        req = {"prompt": "x", "imageUrls": [URL]}
        assert_error(await c.post("/photo-editor/generate", json=req), 402, 402, "Insufficient credits")
        fake.balance = 35
        task = (await c.post("/photo-editor/generate", json=req)).json()["data"]["taskId"]
        done = (await c.get("/photo-editor/status", params={"taskId": task})).json()
    assert done["data"]["status"] == "SUCCESS" and done["credits_deducted"] == 35 and fake.balance == 0


async def test_failed_jobs_charge_nothing() -> None:
    fake = FakeAluo(credit_fields=True, credits=200, polls_until_done=1)
    async with client(fake) as c:
        task = (await c.post("/photo-editor/generate", json={"prompt": "x", "imageUrls": [URL]})).json()
        fake.fail_jobs = True  # read at the terminal poll, so it can be flipped after submit
        bodies = await poll(c, "/photo-editor/status", task["data"]["taskId"])
        gen = (await c.post("/photo-generate/generate", json={"prompt": "mug", "nVariants": 4})).json()
        gbodies = await poll(c, "/photo-generate/status", gen["data"]["taskId"])
    for b in (bodies[-1], gbodies[-1]):
        assert b["code"] == 0 and b["data"]["status"] == "FAILED" and b["data"]["images"] == []
        assert b["data"]["error"] == "Image generation failed" and b["credits_deducted"] == 0
    assert fake.charges == [] and fake.balance == 200


async def test_balance_spent_meanwhile_fails_the_job_without_going_negative() -> None:
    fake = FakeAluo(credits=40, polls_until_done=0)
    async with client(fake) as c:
        req = {"prompt": "x", "imageUrls": [URL]}
        t1 = (await c.post("/photo-editor/generate", json=req)).json()["data"]["taskId"]
        t2 = (await c.post("/photo-editor/generate", json=req)).json()["data"]["taskId"]
        s1 = (await c.get("/photo-editor/status", params={"taskId": t1})).json()["data"]
        s2 = (await c.get("/photo-editor/status", params={"taskId": t2})).json()["data"]
    assert s1["status"] == "SUCCESS" and (s2["status"], s2["error"]) == ("FAILED", "Insufficient credits")
    assert fake.balance == 0 and [ch.amount for ch in fake.charges] == [40]


@pytest.mark.parametrize("path", ["/photo-editor/status", "/photo-generate/status"])
async def test_status_unknown_or_missing_task(path: str) -> None:
    fake = FakeAluo(polls_until_done=0)
    async with client(fake) as c:
        gen = (await c.post("/photo-generate/generate", json={"prompt": "m"})).json()["data"]["taskId"]
        edit = (await c.post("/photo-editor/generate", json={"prompt": "m", "imageUrls": [URL]})).json()
        other = edit["data"]["taskId"] if path.startswith("/photo-generate") else gen
        assert_error(await c.get(path, params={"taskId": "edit_999"}), 404, -1, "Task not found")
        assert_error(await c.get(path, params={"taskId": other}), 404, -1, "Task not found")
        assert_error(await c.get(path), 400, -1, "taskId is required")


# -- photo generate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "free", "pro"), [(1, 40, 35), (2, 80, 70), (4, 160, 140)])
async def test_generate_prices_per_variant_count(n: int, free: int, pro: int) -> None:
    for tier, price in (("free", free), ("pro", pro)):
        fake = FakeAluo(credit_fields=True, tier=tier, credits=1000, polls_until_done=0)
        async with client(fake) as c:
            task = (await c.post("/photo-generate/generate", json={"prompt": "m", "nVariants": n})).json()
            done = (await c.get("/photo-generate/status", params={"taskId": task["data"]["taskId"]})).json()
        assert len(done["data"]["images"]) == n and done["credits_deducted"] == price
        assert [(ch.amount, ch.what) for ch in fake.charges] == [(price, "generate")]


async def test_generate_defaults_sizes_formats_resolution_and_timings() -> None:
    fake = FakeAluo(polls_until_done=1)
    async with client(fake) as c:
        r = await c.post("/photo-generate/generate", json={"prompt": "A red mug"})
        data = r.json()["data"]
        sized = await c.post(
            "/photo-generate/generate",
            json={"prompt": "m", "size": "9:16", "outputFormat": "jpeg", "resolution": "2K", "nVariants": 2},
        )
        pend = (await c.get("/photo-generate/status", params={"taskId": sized.json()["data"]["taskId"]})).json()
        done = (await c.get("/photo-generate/status", params={"taskId": sized.json()["data"]["taskId"]})).json()
        img = decode((await c.get(done["data"]["images"][1]["url"])).content)
    assert data["taskId"].startswith("task_") and data["provider"] and data["model"]
    assert {k: data[k] for k in ("prompt", "size", "nVariants", "outputFormat")} == {
        "prompt": "A red mug",
        "size": "1:1",
        "nVariants": 1,
        "outputFormat": "png",
    }
    assert pend["data"]["status"] == "PENDING" and "timings" not in pend["data"]
    assert done["data"]["status"] == "SUCCESS" and isinstance(done["data"]["timings"], dict)
    meta = done["data"]["images"][1]
    assert meta["content_type"] == "image/jpeg" and (meta["width"], meta["height"]) == (72, 128)
    assert img.format == "JPEG" and img.size == (72, 128)
    assert fake.requests[1].json["resolution"] == "2K"


@pytest.mark.parametrize(
    ("json", "message"),
    [
        ({"size": "1:1"}, "Prompt is required"),
        ({"prompt": "m", "nVariants": 3}, "nVariants must be 1, 2, or 4"),
        ({"prompt": "m", "nVariants": "2"}, "nVariants must be 1, 2, or 4"),
        ({"prompt": "m", "size": "2:1"}, "Invalid size '2:1'"),
        ({"prompt": "m", "outputFormat": "gif"}, "Invalid outputFormat 'gif'"),
        ({"prompt": "m", "resolution": "8K"}, "Invalid resolution '8K'"),
    ],
)
async def test_generate_validation_messages(json: dict[str, Any], message: str) -> None:
    fake = FakeAluo()
    async with client(fake) as c:
        r = await c.post("/photo-generate/generate", json=json)
    assert assert_error(r, 400, -1)["message"].startswith(message) and fake.jobs == {}


async def test_generate_balance_checked_against_variant_price() -> None:
    fake = FakeAluo(credits=100)
    async with client(fake) as c:
        ok = await c.post("/photo-generate/generate", json={"prompt": "m", "nVariants": 2})
        r = await c.post("/photo-generate/generate", json={"prompt": "m", "nVariants": 4})
    assert ok.status_code == 200
    assert "below the cost 160" in assert_error(r, 402, 402, "Insufficient credits")["error"]


# -- background -------------------------------------------------------------------------------------


async def test_background_is_synchronous_real_image_charged_at_call() -> None:
    fake = FakeAluo(credit_fields=True, credits=2, background_cost=2)
    async with client(fake) as c:
        r = await c.post("/ai-generate-background", json={"prompt": "白色摄影棚 studio"})
        out = await c.get(r.json()["data"]["url"])
        r402 = await c.post("/ai-generate-background", json={"prompt": "studio"})
        r400 = await c.post("/ai-generate-background", json={})
    assert r.status_code == 200 and r.json()["credits_deducted"] == 2 and set(r.json()["data"]) == {"url"}
    assert out.headers["content-type"] == "image/jpeg" and decode(out.content).format == "JPEG"
    assert_error(r402, 402, 402, "Insufficient credits")
    assert_error(r400, 400, -1, "Prompt is required")
    assert [(ch.amount, ch.what) for ch in fake.charges] == [(2, "background")] and fake.balance == 0


# -- faults -----------------------------------------------------------------------------------------


async def test_fail_next_429_has_retry_after_then_recovers() -> None:
    fake = FakeAluo(polls_until_done=0)
    fake.fail_next("/api/photo-generate/generate", 429, times=2)
    async with client(fake) as c:
        rs = [await c.post("/photo-generate/generate", json={"prompt": "m"}) for _ in range(3)]
    for r in rs[:2]:
        assert_error(r, 429, -1)
        assert r.headers["retry-after"] == "1"
    assert rs[2].status_code == 200 and len(fake.jobs) == 1 and len(fake.requests) == 3


async def test_fail_next_statuses_headers_and_raw_bodies() -> None:
    fake = FakeAluo()
    fake.fail_next("/api/remove-bg", 500)
    fake.fail_next("/api/photo-editor", 429, headers={"Retry-After": "7"})
    fake.fail_next("/api/photo-generate", 502, body="<html>Bad gateway</html>")
    fake.fail_next("/api/ai-generate-background", 401)
    fake.fail_next("/api/photo-editor/status", 402, body={"unexpected": True})
    with pytest.raises(ValueError):
        fake.fail_next("/remove-bg", 500)
    async with client(fake) as c:
        r500 = await c.post("/remove-bg", data={"imageUrl": URL})
        r429 = await c.post("/photo-editor/generate", json={})
        r502 = await c.post("/photo-generate/generate", json={})
        r401 = await c.post("/ai-generate-background", json={"prompt": "x"})
        r402 = await c.get("/photo-editor/status", params={"taskId": "x"})
    assert_error(r500, 500, 500)
    assert_error(r429, 429, -1) and r429.headers["retry-after"] == "7"
    assert r502.status_code == 502 and r502.headers["content-type"].startswith("text/html")
    assert_error(r401, 401, -2)
    assert r402.status_code == 402 and r402.json() == {"unexpected": True}
    assert fake.charges == [] and fake.balance == 1000


async def test_cdn_faults_fail_once_html_and_missing() -> None:
    fake = FakeAluo()
    async with client(fake) as c:
        url = (await c.post("/remove-bg", data={"imageUrl": URL})).json()["data"]["url"]
        fake.fail_cdn_once()
        first = await c.get(url)
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=fake.app)) as anon:
            second = await anon.get(url)  # the CDN needs no key
        fake.cdn_html = True
        html = await c.get(url)
        missing = await c.get("http://fake/cdn/nope.png")
    assert first.status_code == 500 and second.status_code == 200
    assert decode(second.content).format == "PNG" and "authorization" not in fake.requests[-3].headers
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert missing.status_code == 404


async def test_rate_limit_knob_answers_429_with_retry_after() -> None:
    fake = FakeAluo(rate_limit_per_min=2)
    async with client(fake) as c:
        rs = [await c.get("/photo-editor/status", params={"taskId": "x"}) for _ in range(3)]
    assert [r.status_code for r in rs] == [404, 404, 429]
    assert 1 <= int(rs[2].headers["retry-after"]) <= 61


# -- over a real loopback socket ----------------------------------------------------------------------


async def test_over_loopback_urls_use_the_served_port_and_delay_causes_timeouts() -> None:
    fake = FakeAluo(polls_until_done=1)
    with anyio.fail_after(5):
        async with (
            serve(fake.app) as served,
            httpx2.AsyncClient(base_url=FakeAluo.api_base(served), headers=AUTH) as c,
        ):
            r = await c.post("/remove-bg", files={"file": ("p.webp", image_bytes(30, 40, "webp"), "image/webp")})
            url = r.json()["data"]["url"]
            assert url.startswith(f"{served}/cdn/")
            img = decode((await c.get(url)).content)
            assert img.size == (30, 40) and img.mode == "RGBA"
            task = (await c.post("/photo-editor/generate", json={"prompt": "x", "imageUrls": [URL]})).json()
            bodies = await poll(c, "/photo-editor/status", task["data"]["taskId"])
            assert [b["data"]["status"] for b in bodies] == ["PENDING", "SUCCESS"]
            assert bodies[-1]["data"]["images"][0]["url"].startswith(served)
            fake.delay_s = 0.15
            with pytest.raises(httpx2.ReadTimeout):
                await c.get("/photo-editor/status", params={"taskId": "x"}, timeout=0.03)
    assert fake.requests[0].files["file"][0] == "p.webp"


# -- what the seeds do not document stays off by default -----------------------------------------------


async def test_no_credit_fields_unless_the_knob_says_so() -> None:
    fake = FakeAluo(polls_until_done=0)
    async with client(fake) as c:
        bodies = [
            (await c.post("/ai-generate-background", json={"prompt": "studio"})).json(),
            (await c.post("/photo-generate/generate", json={"prompt": "m"})).json(),
        ]
        bodies.append((await c.get("/photo-generate/status", params={"taskId": bodies[1]["data"]["taskId"]})).json())
    for body in bodies:
        assert body["success"] is True and "credits_deducted" not in body and "credits_remaining" not in body
    assert [ch.amount for ch in fake.charges] == [1, 40]  # charged all the same


@pytest.mark.parametrize(("num", "tier", "cost"), [(1, "free", 40), (3, "free", 120), (2, "pro", 70)])
async def test_edits_are_charged_per_output_image(num: int, tier: str, cost: int) -> None:
    fake = FakeAluo(tier=tier, polls_until_done=0)
    async with client(fake) as c:
        r = await c.post("/photo-editor/generate", json={"prompt": "m", "imageUrls": [URL], "numImages": num})
        done = (await c.get("/photo-editor/status", params={"taskId": r.json()["data"]["taskId"]})).json()
    assert len(done["data"]["images"]) == num
    assert [(ch.amount, ch.what) for ch in fake.charges] == [(cost, "edit")]


async def test_an_edit_costing_more_than_the_balance_is_refused() -> None:
    fake = FakeAluo(credits=79)
    async with client(fake) as c:
        r = await c.post("/photo-editor/generate", json={"prompt": "m", "imageUrls": [URL], "numImages": 2})
    assert_error(r, 402, 402, "Insufficient credits")


async def test_background_answer_shape_is_a_knob() -> None:
    fake = FakeAluo(background_shape="images")
    async with client(fake) as c:
        r = await c.post("/ai-generate-background", json={"prompt": "studio"})
        out = await c.get(r.json()["data"]["images"][0]["url"])
    assert set(r.json()["data"]) == {"images"} and out.status_code == 200
