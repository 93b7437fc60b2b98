"""The YouCam tools through a real MCP client, against the fake YouCam served on loopback.

Assertions are on what the user sees (results, files, resources, messages, progress) and on
what YouCam sees (tests/fakes/youcam.py records every request, charge and lost task).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import ResourceTemplateReference
from PIL import Image

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.youcam import FakeYouCam, catalog
from tests.support import serve_http, stdio_params
from tools.core.settings import Settings

V1 = "/s2s/v1.0"
HAIR = catalog("hair-style")
GROUP, STYLE = HAIR[1][0], HAIR[1][2][1][0]  # odd ids above 2^53: not exact as floats
assert float(STYLE) != STYLE and float(GROUP) != GROUP


def youcam_settings(tmp_path: Path, fake: FakeYouCam, base: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "youcam_api_key": fake.client_id,
        "youcam_secret_key": fake.secret_key,
        "youcam_base_url": base,
        "allow_private_urls": True,
        "retry_base_delay": 0.01,
    }
    return make_settings(tmp_path, **(values | overrides))


@asynccontextmanager
async def youcam(tmp_path: Path, fake: FakeYouCam | None = None, **overrides: Any) -> AsyncIterator[tuple]:
    fake = fake or FakeYouCam(polling_interval_ms=20)
    async with serve(fake.app) as base, Client(build_server(youcam_settings(tmp_path, fake, base, **overrides))) as c:
        yield fake, c


def _photo(workdir: Path, name: str = "face.png", size: tuple[int, int] = (1500, 1000), fmt: str = "png") -> str:
    path = workdir / name
    path.write_bytes(image_bytes(*size, fmt))
    return str(path)


def _reqs(fake: FakeYouCam, method: str, prefix: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


def _ok(result: Any) -> dict:
    assert not result.is_error, result.content[0].text
    out = result.structured_content
    assert out["status"] == "succeeded", out
    return out


async def _read_back(client: Client, image: dict) -> bytes:
    read = await client.read_resource(image["uri"])
    data = base64.b64decode(read.contents[0].blob)
    assert data == Path(image["path"]).read_bytes()
    return data


async def test_try_hairstyle_end_to_end(tmp_path: Path, workdir: Path) -> None:
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with youcam(tmp_path) as (fake, client):
        result = await client.call_tool(
            "try_hairstyle", {"image": _photo(workdir), "style_id": STYLE}, progress_callback=on_progress
        )
        out = _ok(result)
        credits = await client.call_tool("check_credits", {"provider": "youcam"})
        (image,) = out["images"]
        data = await _read_back(client, image)
    # The group was found from the catalog (style_group_id omitted), ids exact on the wire.
    assert _reqs(fake, "GET", f"{V1}/task/style-group/hair-style")
    (create,) = _reqs(fake, "POST", f"{V1}/file/hair-style")
    assert create.json == {"files": [{"content_type": "image/jpg", "file_name": "src.jpg"}]}
    (put,) = _reqs(fake, "PUT", "/upload/")
    assert put.headers["content-type"] == "image/jpg" and "authorization" not in put.headers
    with Image.open(io.BytesIO(put.body)) as sent:
        assert sent.format == "JPEG" and sent.size == (1024, 683)  # hair: jpg, long side <= 1024
    (run,) = _reqs(fake, "POST", f"{V1}/task/hair-style")
    file_id = next(iter(fake.files))
    assert run.json == {
        "request_id": 0,
        "payload": {
            "file_sets": {"src_ids": [file_id]},
            "actions": [{"id": 0, "params": {"style_group_id": GROUP, "style_ids": [STYLE]}}],
            "output_ext": "jpg",
        },
    }
    assert all(r.headers["authorization"].startswith("Bearer ") for r in _reqs(fake, "GET", f"{V1}/task/hair-style"))
    # What the user gets: a stored JPEG, readable as a resource, 1 unit charged once.
    assert image["mime_type"] == "image/jpeg" and (image["width"], image["height"]) == (1024, 683)
    assert data[:2] == b"\xff\xd8"
    assert out["provider"] == "youcam" and out["credits"] == {"estimated": 1.0, "charged": 1.0}
    assert len(fake.charges) == 1 and fake.balance == 99
    assert [b.type for b in result.content] == ["text", "resource_link", "image"]
    messages = [m or "" for _, m in updates]
    for step in ("uploading to YouCam", "queued at YouCam", "running at YouCam"):
        assert any(m.startswith(step) for m in messages), messages
    assert updates[-1][0] == 100
    row = credits.structured_content["providers"][0]
    assert row["balance"] == 99 and row["spent_today_here"] == 1


async def test_chained_result_reuses_dst_id_and_request_ids_increment(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        first = _ok(await client.call_tool("try_hairstyle", {"image": _photo(workdir), "style_id": STYLE}))
        uri = first["images"][0]["uri"]
        dst = next(c.task_id for c in fake.charges)
        dst_id = next(iter(fake.tasks[dst].results["data"]))["dst_id"]
        other = HAIR[1][2][2][0]
        for style in (other, STYLE):
            _ok(await client.call_tool("try_hairstyle", {"image": uri, "style_id": style, "style_group_id": GROUP}))
    assert len(_reqs(fake, "POST", f"{V1}/file/")) == 1 and len(_reqs(fake, "PUT", "/upload/")) == 1
    runs = [r.json for r in _reqs(fake, "POST", f"{V1}/task/hair-style")]
    assert [r["payload"]["file_sets"]["src_ids"] for r in runs[1:]] == [[dst_id], [dst_id]]
    assert [r["request_id"] for r in runs] == [0, 1, 2]  # one counter per account: every run is new
    assert len(fake.charges) == 3


async def test_lost_reply_is_retried_with_the_same_request_id(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        fake.fail_next(f"{V1}/task/hair-style", 502, after=True)  # the task is created, the answer lost
        out = _ok(await client.call_tool("try_hairstyle", {"image": _photo(workdir), "style_id": STYLE}))
    runs = _reqs(fake, "POST", f"{V1}/task/hair-style")
    assert len(runs) == 2 and runs[0].json == runs[1].json
    assert len(fake.tasks) == 1 and len(fake.charges) == 1 and out["credits"]["charged"] == 1


async def test_token_expiry_mid_session_recovers(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        _ok(await client.call_tool("simulate_aging", {"image": _photo(workdir)}))
        fake.expire_tokens()
        _ok(await client.call_tool("colorize_photo", {"image": _photo(workdir, "bw.jpg", (200, 150), "jpeg")}))
    assert len(_reqs(fake, "POST", f"{V1}/client/auth")) == 2
    assert len(fake.charges) == 2


async def test_a_task_polled_too_late_is_reported_lost_with_nothing_charged(tmp_path: Path, workdir: Path) -> None:
    fake = FakeYouCam(polls_until_done=3, polling_interval_ms=1000, loss_window_s=0.2)
    async with youcam(tmp_path, fake, youcam_max_poll_gap=0.6) as (fake, client):
        result = await client.call_tool("colorize_photo", {"image": _photo(workdir)})
    assert result.is_error
    text = result.structured_content["message"]
    assert "lost the task" in text and "No credits were consumed" in text
    assert fake.lost_tasks == 1 and fake.charges == [] and fake.balance == 100
    assert result.structured_content["credits"]["charged"] == 0


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("error_no_face", "no face found: use a clear, front-facing photo of one person"),
        ("error_multiple_people", "several people were found: crop the photo to one person"),
    ],
)
async def test_engine_errors_become_advice(tmp_path: Path, workdir: Path, code: str, advice: str) -> None:
    async with youcam(tmp_path, FakeYouCam(polling_interval_ms=20, engine_error=code)) as (fake, client):
        result = await client.call_tool("simulate_aging", {"image": _photo(workdir)})
    assert result.is_error
    assert advice in result.content[0].text and "No credits were consumed" in result.content[0].text
    assert fake.charges == []


async def test_out_of_credits_is_clear(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path, FakeYouCam(polling_interval_ms=20, credits=0)) as (fake, client):
        result = await client.call_tool("colorize_photo", {"image": _photo(workdir)})
    assert result.is_error and "too few credits" in result.content[0].text
    assert "Nothing was charged" in result.content[0].text and fake.tasks == {}


async def test_simulate_aging_returns_the_age_series(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        out = _ok(await client.call_tool("simulate_aging", {"image": _photo(workdir)}))
        for image in out["images"]:
            await _read_back(client, image)
    ages = [i["info"]["res_age"] for i in out["images"]]
    assert ages == [20, 32, 45, 60]
    assert [i["info"].get("input_photo", False) for i in out["images"]] == [False, True, False, False]
    details = out["details"]
    assert details["age"] == 32 and details["ages"] == ages and details["num_of_photos"] == 4
    (run,) = _reqs(fake, "POST", f"{V1}/task/aging")
    assert run.json["payload"]["actions"] == [{"id": 0}] and len(fake.charges) == 1


async def test_transfer_makeup_uploads_face_and_reference(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        args = {"image": _photo(workdir), "reference": _photo(workdir, "look.jpg", (300, 400), "jpeg")}
        out = _ok(await client.call_tool("transfer_makeup", args))
    (run,) = _reqs(fake, "POST", f"{V1}/task/mu-trans-rec")
    sets = run.json["payload"]["file_sets"]
    assert set(sets) == {"src_ids", "ref_ids"} and sets["src_ids"] != sets["ref_ids"]
    assert len(_reqs(fake, "PUT", "/upload/")) == 2
    assert out["details"]["recommendation"]["products"][0]["category"] == "lipstick"


async def test_remove_object_renders_boxes_to_a_mask_of_the_source_size(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        out = _ok(await client.call_tool("remove_object", {"image": _photo(workdir), "boxes": [[100, 100, 400, 300]]}))
    (run,) = _reqs(fake, "POST", f"{V1}/task/obj-removal")
    mask_id = run.json["payload"]["file_sets"]["mask_ids"][0]
    with Image.open(io.BytesIO(fake.files[mask_id].data)) as mask:
        assert mask.mode == "L" and mask.size == (1500, 1000) and fake.files[mask_id].content_type == "image/png"
        assert mask.getpixel((200, 200)) == 255 and mask.getpixel((50, 50)) == 0 and mask.getpixel((400, 300)) == 0
    with Image.open(out["images"][0]["path"]) as img:
        assert img.size == (1500, 1000)
        assert img.convert("RGB").getpixel((200, 200)) == pytest.approx((128, 128, 128), abs=6)  # filled


async def test_remove_object_with_a_mask_and_bad_arguments(tmp_path: Path, workdir: Path) -> None:
    src = _photo(workdir, "big.jpg", (4400, 200), "jpeg")  # above 4096: fitted, the mask follows
    mask = Image.new("L", (2200, 100), 0)
    mask.paste(255, (100, 20, 300, 80))
    (workdir / "mask.png").write_bytes(_png(mask))
    async with youcam(tmp_path) as (fake, client):
        _ok(await client.call_tool("remove_object", {"image": src, "mask": str(workdir / "mask.png")}))
        both = await client.call_tool("remove_object", {"image": src, "mask": src, "boxes": [[0, 0, 5, 5]]})
        neither = await client.call_tool("remove_object", {"image": src})
        (workdir / "square.png").write_bytes(_png(Image.new("L", (50, 50), 255)))
        shape = await client.call_tool("remove_object", {"image": src, "mask": str(workdir / "square.png")})
    (run,) = _reqs(fake, "POST", f"{V1}/task/obj-removal")
    sets = run.json["payload"]["file_sets"]
    src_img = Image.open(io.BytesIO(fake.files[sets["src_ids"][0]].data))
    mask_img = Image.open(io.BytesIO(fake.files[sets["mask_ids"][0]].data))
    assert src_img.size == mask_img.size == (4096, 186)
    for bad in (both, neither):
        assert bad.is_error and "exactly one of mask" in bad.content[0].text
    assert shape.is_error and "the mask must have the photo's shape" in shape.content[0].text
    assert len(fake.charges) == 1


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


async def test_colorize_and_enhance(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        colored = _ok(await client.call_tool("colorize_photo", {"image": _photo(workdir, size=(120, 80))}))
        enhanced = _ok(
            await client.call_tool("enhance_photo", {"image": _photo(workdir, "s.jpg", (100, 60), "jpeg"), "scale": 4})
        )
        bad_scale = await client.call_tool("enhance_photo", {"image": _photo(workdir), "scale": 3})
    assert len(colored["images"]) == 2  # colorize may return several
    (image,) = enhanced["images"]
    assert (image["width"], image["height"]) == (400, 240) and enhanced["provider"] == "youcam"
    (run,) = _reqs(fake, "POST", f"{V1}/task/enhance")
    assert run.json["payload"]["actions"][0]["params"] == {"scale": 4}
    assert bad_scale.is_error and not _reqs(fake, "POST", f"{V1}/task/enhance")[1:]
    (put,) = [r for r in _reqs(fake, "PUT", "/upload/") if r.headers["content-type"] == "image/png"]
    assert put.body.startswith(b"\x89PNG")  # photo features take PNG as it is


async def test_remove_background_via_youcam_sod(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        out = _ok(await client.call_tool("remove_background", {"image": _photo(workdir), "provider": "youcam"}))
    (image,) = out["images"]
    assert image["mime_type"] == "image/png" and out["provider"] == "youcam"
    with Image.open(image["path"]) as img:
        assert img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0
    (run,) = _reqs(fake, "POST", f"{V1}/task/sod")
    assert run.json["payload"]["output_ext"] == "png" and len(fake.charges) == 1


async def test_generate_image_has_no_upload(tmp_path: Path) -> None:
    gen = catalog("text-to-image")
    group, style = gen[0][0], gen[0][2][3][0]
    async with youcam(tmp_path) as (fake, client):
        out = _ok(await client.call_tool("generate_image", {"prompt": "a red bicycle", "style_id": style}))
        again = _ok(
            await client.call_tool(
                "generate_image", {"prompt": "a blue bicycle", "style_id": style, "style_group_id": group}
            )
        )
    assert not _reqs(fake, "POST", f"{V1}/file/")
    runs = [r.json for r in _reqs(fake, "POST", f"{V1}/task/text-to-image")]
    assert runs[0]["payload"] == {
        "actions": [{"id": 0, "params": {"prompt": "a red bicycle", "style_group_id": group, "style_ids": [style]}}],
        "output_ext": "jpg",
    }
    assert [r["request_id"] for r in runs] == [0, 1]  # a new run is a new request
    assert out["images"][0]["width"] == 256 and again["images"][0]["id"] != out["images"][0]["id"]


async def test_style_catalog_pages_resources_and_completion(tmp_path: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        groups = await client.call_tool("list_style_groups", {"feature": "hairstyle"})
        first = await client.call_tool("list_styles", {"feature": "hairstyle", "style_group_id": HAIR[0][0]})
        cursor = first.structured_content["next_cursor"]
        second = await client.call_tool(
            "list_styles", {"feature": "hairstyle", "style_group_id": HAIR[0][0], "cursor": cursor}
        )
        again = await client.call_tool("list_styles", {"feature": "hairstyle", "style_group_id": HAIR[0][0]})
        bad = await client.call_tool("list_styles", {"feature": "hairstyle", "style_group_id": 12345})
        doc = json.loads((await client.read_resource("photo://styles/hairstyle")).contents[0].text)
        group_doc = json.loads(
            (await client.read_resource(f"photo://styles/wig/{catalog('wig')[0][0]}")).contents[0].text
        )
        done = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="photo://styles/{feature}/{style_group_id}"),
            {"name": "style_group_id", "value": str(HAIR[1][0])[:8]},
            {"feature": "hairstyle"},
        )
        features = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri="photo://styles/{feature}"),
            {"name": "feature", "value": "ha"},
        )
    assert groups.structured_content["items"] == [{"id": g, "title": t, "thumbnail": None} for g, t, _ in HAIR]
    page1, page2 = first.structured_content["items"], second.structured_content["items"]
    assert [s["id"] for s in page1 + page2] == [s for s, _ in HAIR[0][2]]  # exact big ints, 20 + 5
    assert len(page1) == 20 and second.structured_content["next_cursor"] is None
    assert page1[0]["thumbnail"].endswith("/results/thumb.jpg")
    assert again.structured_content == first.structured_content
    first_group = [
        r for r in _reqs(fake, "GET", f"{V1}/task/style/hair-style") if r.query["style_group_id"] == str(HAIR[0][0])
    ]
    assert len(first_group) == 2  # two pages; the repeat (and the resource) came from the cache
    assert bad.is_error and "list_style_groups" in bad.content[0].text
    assert [g["id"] for g in doc["groups"]] == [g for g, _, _ in HAIR] and len(doc["groups"][0]["styles"]) == 20
    assert doc["groups"][0]["more_styles"] == f"photo://styles/hairstyle/{HAIR[0][0]}"
    assert len(group_doc["styles"]) == 25
    assert done.completion.values == [str(g) for g, _, _ in HAIR if str(g).startswith(str(HAIR[1][0])[:8])]
    assert features.completion.values == ["hairstyle", "hair_extension", "hair_volume"]


async def test_check_credits_sums_unexpired_entries(tmp_path: Path) -> None:
    fake = FakeYouCam(credits=12.5)
    fake.add_credits(3, expires_in_s=86400)
    async with youcam(tmp_path, fake) as (fake, client):
        result = await client.call_tool("check_credits", {"provider": "youcam"})
    row = result.structured_content["providers"][0]
    assert row["balance"] == 15.5 and "15.5 units" in row["detail"]
    assert [e["expired"] for e in row["entries"]] == [True, False, False]
    assert all(len(e["expires"]) == 10 for e in row["entries"])


async def test_unconfigured_youcam_says_what_to_set(tmp_path: Path, workdir: Path) -> None:
    async with Client(build_server(make_settings(tmp_path))) as client:
        result = await client.call_tool("try_hairstyle", {"image": _photo(workdir), "style_id": STYLE})
        styles = await client.call_tool("list_style_groups", {"feature": "wig"})
    for r in (result, styles):
        assert r.is_error and "YOUCAM_API_KEY and YOUCAM_SECRET_KEY" in r.content[0].text


async def test_style_ids_must_be_integers(tmp_path: Path, workdir: Path) -> None:
    async with youcam(tmp_path) as (fake, client):
        result = await client.call_tool("try_hairstyle", {"image": _photo(workdir), "style_id": float(STYLE)})
    assert result.is_error and fake.tasks == {}


async def test_six_concurrent_hairstyle_jobs_under_the_rate_limits(tmp_path: Path, workdir: Path) -> None:
    # The fake's speed, not the machine's, makes the limiter queue jobs: with a poll due every
    # 0.25 s per task, 10 requests/s leave room for about two running tasks, and each task runs
    # for 3 polls, far longer than the six calls take to arrive however busy the machine is.
    fake = FakeYouCam(polling_interval_ms=20, polls_until_done=3, rate_limits=[(10, 1.0)])
    src = _photo(workdir, size=(300, 200))
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    results: list[Any] = []
    async with youcam(tmp_path, fake, youcam_rate_limits="10/1", youcam_max_poll_gap=0.25) as (fake, client):

        async def one(k: int) -> None:
            style = HAIR[0][2][k][0]
            args = {"image": src, "style_id": style, "style_group_id": HAIR[0][0]}
            results.append(await client.call_tool("try_hairstyle", args, progress_callback=on_progress))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for k in range(6):
                    tg.start_soon(one, k)
    assert [r.structured_content["status"] for r in results] == ["succeeded"] * 6
    assert fake.rate_limited == 0 and fake.lost_tasks == 0 and len(fake.charges) == 6
    assert any(m.startswith("waiting for YouCam rate-limit capacity") for m in messages)


async def _until_the_task_exists(client: Client, fake: FakeYouCam, handed_off: Any) -> None:
    """Wait (by the job's outcome, not the clock) until the job has created its task at YouCam."""
    job_id = handed_off.structured_content["job_id"]
    with anyio.fail_after(30):
        while not fake.tasks:
            await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0.2})


async def test_a_job_resumes_after_a_restart(tmp_path: Path, workdir: Path) -> None:
    fake = FakeYouCam(polling_interval_ms=20, polls_until_done=40)
    async with serve(fake.app) as base:
        settings = youcam_settings(tmp_path, fake, base, wait_seconds=0.3)
        async with Client(build_server(settings)) as client:
            first = await client.call_tool("simulate_aging", {"image": _photo(workdir)})
            assert first.structured_content["status"] == "running"
            await _until_the_task_exists(client, fake, first)
        # The server is gone: the task keeps running at YouCam; a new server resumes polling it.
        fake.polls_until_done = 0
        async with Client(build_server(youcam_settings(tmp_path, fake, base))) as client:
            job_id = first.structured_content["job_id"]
            done = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 15})
    out = _ok(done)
    assert len(out["images"]) == 4 and out["message"] == "finished after a server restart"
    assert len(fake.tasks) == 1 and len(fake.charges) == 1


async def test_a_task_lost_during_a_restart_fails_with_nothing_charged(tmp_path: Path, workdir: Path) -> None:
    fake = FakeYouCam(polling_interval_ms=20, polls_until_done=1000, loss_window_s=0.3)
    async with serve(fake.app) as base:
        async with Client(build_server(youcam_settings(tmp_path, fake, base, wait_seconds=0.3))) as client:
            first = await client.call_tool("colorize_photo", {"image": _photo(workdir)})
            await _until_the_task_exists(client, fake, first)
        await anyio.sleep(0.5)  # the loss window passes while no server runs (the condition under test)
        async with Client(build_server(youcam_settings(tmp_path, fake, base))) as client:
            done = await client.call_tool("get_job", {"job_id": first.structured_content["job_id"], "wait_seconds": 10})
    assert done.is_error and done.structured_content["status"] == "failed"
    assert "while this server was restarting" in done.structured_content["message"]
    assert "Nothing was charged" in done.structured_content["message"] and fake.charges == []


async def test_stdio_subprocess_tries_a_hairstyle(tmp_path: Path, workdir: Path) -> None:
    fake = FakeYouCam(polling_interval_ms=20)
    async with serve(fake.app) as base:
        env = {"YOUCAM_API_KEY": fake.client_id, "YOUCAM_SECRET_KEY": fake.secret_key, "YOUCAM_BASE_URL": base}
        with anyio.fail_after(60):
            async with Client(stdio_params(tmp_path, **env)) as client:
                args = {"image": _photo(workdir), "style_id": STYLE, "style_group_id": GROUP}
                out = _ok(await client.call_tool("try_hairstyle", args))
                data = await _read_back(client, out["images"][0])
    assert data[:2] == b"\xff\xd8" and len(fake.charges) == 1


async def test_streamable_http_simulates_aging_with_progress(tmp_path: Path, workdir: Path) -> None:
    fake = FakeYouCam(polling_interval_ms=20)
    updates: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(message or "")

    async with serve(fake.app) as base:
        settings = youcam_settings(tmp_path, fake, base, transport="http", allowed_dirs=[workdir])
        with anyio.fail_after(60):
            async with serve_http(build_server(settings), settings) as url, Client(url + "/mcp") as client:
                result = await client.call_tool(
                    "simulate_aging", {"image": _photo(workdir)}, progress_callback=on_progress
                )
                out = _ok(result)
                await _read_back(client, out["images"][0])
    assert len(out["images"]) == 4 and any(m.startswith("running at YouCam") for m in updates)


async def test_provider_routing_between_youcam_and_local(tmp_path: Path, workdir: Path) -> None:
    """auto falls through from YouCam (a bad key: nothing charged) to the offline backend and says so;
    local object removal either runs or says how to install the optional extra."""
    src = _photo(workdir, size=(120, 80))
    async with youcam(tmp_path, youcam_api_key="B" * 32) as (fake, client):
        auto = await client.call_tool("enhance_photo", {"image": src, "scale": 2})
        local = await client.call_tool("remove_object", {"image": src, "boxes": [[0, 0, 5, 5]], "provider": "local"})
    assert fake.charges == [] and not _reqs(fake, "POST", f"{V1}/task/")
    out = _ok(auto)
    assert out["provider"] == "local" and out["credits"]["charged"] == 0
    assert (out["images"][0]["width"], out["images"][0]["height"]) == (240, 160)
    assert "YouCam refused the sign-in" in out["details"]["skipped"][0]
    if local.is_error:
        assert "photo-mcp[local]" in local.content[0].text
    else:
        assert local.structured_content["provider"] == "local"
    async with Client(build_server(make_settings(tmp_path))) as client:
        unconfigured = await client.call_tool("enhance_photo", {"image": src, "provider": "youcam"})
        offline = _ok(await client.call_tool("enhance_photo", {"image": src, "scale": 1}))  # auto, no keys
    assert unconfigured.is_error and "YOUCAM_API_KEY and YOUCAM_SECRET_KEY" in unconfigured.content[0].text
    assert offline["provider"] == "local"


async def test_one_style_resource_and_style_id_completion(tmp_path: Path) -> None:
    group, _, styles = HAIR[0]
    style_id = styles[3][0]
    template = "photo://styles/{feature}/{style_group_id}/{style_id}"
    async with youcam(tmp_path) as (_fake, client):
        doc = json.loads((await client.read_resource(f"photo://styles/hairstyle/{group}/{style_id}")).contents[0].text)
        completed = await client.complete(
            ResourceTemplateReference(type="ref/resource", uri=template),
            {"name": "style_id", "value": str(style_id)[:10]},
            {"feature": "hairstyle", "style_group_id": str(group)},
        )
        used = await client.call_tool("list_styles", {"feature": "hairstyle", "style_group_id": group})
    assert doc["id"] == style_id and doc["title"] == styles[3][1]
    assert doc["use"] == {
        "tool": "try_hairstyle",
        "arguments": {"style_id": style_id, "style_group_id": group, "kind": "hairstyle"},
    }
    assert str(style_id) in completed.completion.values
    assert all(v.startswith(str(style_id)[:10]) for v in completed.completion.values)
    assert not used.is_error
