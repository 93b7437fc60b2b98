"""The Aluo tools through MCP against the fake Aluo served on loopback: what the user sees
(results, files, progress, credits, error text) and what Aluo saw on the wire."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult
from PIL import Image

from server.app import build_server
from tests.conftest import make_settings
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import serve_http, stdio_params

Progress = list[tuple[float, float | None, str | None]]


def aluo_settings(tmp_path: Path, fake: FakeAluo, base: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "aluo_api_key": fake.api_key,
        "aluo_base_url": FakeAluo.api_base(base),
        "allow_private_urls": True,
        "retry_base_delay": 0.01,
        "aluo_poll_interval": 0.02,
        "background_providers": ["aluo"],
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


@asynccontextmanager
async def connected(tmp_path: Path, fake: FakeAluo, **overrides: Any) -> AsyncIterator[tuple[Client, str]]:
    async with (
        serve(fake.app) as base,
        Client(build_server(aluo_settings(tmp_path, fake, base, **overrides))) as client,
    ):
        yield client, base


async def call(client: Client, tool: str, args: dict[str, Any], progress: Progress | None = None) -> CallToolResult:
    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if progress is not None:
            progress.append((value, total, message))

    with anyio.fail_after(30):
        return await client.call_tool(tool, args, progress_callback=on_progress)


async def read_back(client: Client, image: dict[str, Any]) -> Image.Image:
    """Read a result resource and check it is the file on disk; return it decoded."""
    read = await client.read_resource(image["uri"])
    (contents,) = read.contents
    data = base64.b64decode(contents.blob)
    assert contents.mime_type == image["mime_type"]
    assert data == Path(image["path"]).read_bytes() and len(data) == image["bytes"]
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.size == (image["width"], image["height"])
    return img


def api_requests(fake: FakeAluo, path: str, method: str = "POST") -> list[Any]:
    return [r for r in fake.requests if r.path == path and r.method == method]


async def credits(client: Client) -> dict[str, Any]:
    report = (await client.call_tool("check_credits", {"provider": "aluo"})).structured_content
    return report["providers"][0]


def error_text(result: CallToolResult) -> str:
    assert result.is_error, result.content
    return result.content[0].text


# -- happy paths ------------------------------------------------------------------------------------


async def test_edit_photo_uploads_files_streams_progress_and_reads_back(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(polls_until_done=4)
    (workdir / "shoe.jpg").write_bytes(image_bytes(90, 60, "jpeg"))
    (workdir / "logo.png").write_bytes(image_bytes(30, 30, "png", transparent=True))
    progress: Progress = []
    async with connected(tmp_path, fake) as (client, _):
        before = await credits(client)
        result = await call(
            client,
            "edit_photo",
            {
                "prompt": "Put the logo on the shoe",
                "images": [str(workdir / "shoe.jpg"), str(workdir / "logo.png")],
                "aspect_ratio": "4:5",
                "output_format": "jpeg",
                "num_images": 2,
            },
            progress,
        )
        assert not result.is_error, result.content
        out = result.structured_content
        imgs = [await read_back(client, image) for image in out["images"]]
        after = await credits(client)
    assert out["status"] == "succeeded" and out["provider"] == "aluo" and out["operation"] == "edit_photo"
    assert [i.format for i in imgs] == ["JPEG", "JPEG"] and imgs[0].size == (51, 64)  # 4:5 at the fake's 64 px
    assert all(Path(i["path"]).is_file() for i in out["images"])
    assert [b.type for b in result.content] == ["text", "resource_link", "resource_link", "image", "image"]
    assert "80 credits" in result.content[0].text  # 40 per output image
    # What Aluo saw: one multipart submit with file parts and the documented fields.
    (post,) = api_requests(fake, "/api/photo-editor/generate")
    assert sorted(post.files) == ["file0", "file1"]
    assert post.files["file0"][0] == "shoe.jpg" and post.files["file0"][2] == (workdir / "shoe.jpg").read_bytes()
    assert post.form == {
        "prompt": "Put the logo on the shoe",
        "aspectRatio": "4:5",
        "outputFormat": "jpeg",
        "numImages": "2",
    }
    assert len(api_requests(fake, "/api/photo-editor/status", "GET")) == 5
    # Progress arrived while Aluo was polled, and ended at 100.
    messages = [m or "" for _, _, m in progress]
    assert any("running on Aluo (pending" in m for m in messages), messages
    values = [v for v, _, _ in progress]
    assert values == sorted(values) and progress[-1][:2] == (100, 100)
    # Charges: the fake, the tool's credits and the ledger agree.
    assert [c.amount for c in fake.charges] == [80]
    assert out["credits"] == {"estimated": 80, "charged": 80}
    assert out["details"]["aluo_task_id"] == fake.charges[0].task_id
    # Aluo documents no balance field: unknown before and after (this server's ledger still counts).
    assert before["balance"] is None and "no balance endpoint" in before["detail"]
    assert after["balance"] is None and fake.balance == 920 and after["spent_today_here"] == 80


async def test_edit_photo_passes_urls_through_without_downloading(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=1)
    async with connected(tmp_path, fake) as (client, base):
        urls = [f"{base}/cdn/product.jpg", f"{base}/cdn/style.png"]
        result = await call(client, "edit_photo", {"prompt": "Match the style", "images": urls})
        assert not result.is_error, result.content
        (image,) = result.structured_content["images"]
        img = await read_back(client, image)
    (post,) = api_requests(fake, "/api/photo-editor/generate")
    assert post.json == {"prompt": "Match the style", "imageUrls": urls, "outputFormat": "png", "numImages": 1}
    assert not any(r.path in ("/cdn/product.jpg", "/cdn/style.png") for r in fake.requests)  # nothing fetched
    assert img.format == "PNG" and img.size == (64, 64)
    assert result.structured_content["credits"]["charged"] == 40


async def test_generate_product_photo_variants_format_ratio_and_resolution(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=2)
    progress: Progress = []
    async with connected(tmp_path, fake) as (client, _):
        result = await call(
            client,
            "generate_product_photo",
            {"prompt": "A red mug", "aspect_ratio": "16:9", "variants": 4, "output_format": "webp", "resolution": "2K"},
            progress,
        )
        assert not result.is_error, result.content
        out = result.structured_content
        imgs = [await read_back(client, image) for image in out["images"]]
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
    (post,) = api_requests(fake, "/api/photo-generate/generate")
    assert post.json == {
        "prompt": "A red mug",
        "size": "16:9",
        "nVariants": 4,
        "outputFormat": "webp",
        "resolution": "2K",
    }
    assert len(imgs) == 4 and all(i.format == "WEBP" and i.size == (128, 72) for i in imgs)
    assert len({i["id"] for i in out["images"]}) == 4 and {i["uri"] for i in out["images"]} <= listed
    assert out["credits"] == {"estimated": 160, "charged": 160} and [c.amount for c in fake.charges] == [160]
    assert any("running on Aluo" in (m or "") for _, _, m in progress)


async def test_generate_background_charges_what_aluo_reports(tmp_path: Path) -> None:
    fake = FakeAluo(background_cost=2, credit_fields=True)  # an answer that says what it deducted
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_background", {"prompt": "soft grey studio backdrop"})
        assert not result.is_error, result.content
        (image,) = result.structured_content["images"]
        img = await read_back(client, image)
        after = await credits(client)
    assert [r.json for r in api_requests(fake, "/api/ai-generate-background")] == [
        {"prompt": "soft grey studio backdrop"}
    ]
    assert img.format == "JPEG"
    assert result.structured_content["credits"] == {"estimated": 1, "charged": 2}
    assert after["balance"] == 998 and after["spent_today_here"] == 2


async def test_remove_background_on_aluo_with_a_file_and_with_a_url(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(remove_bg_cost=1)
    (workdir / "mug.png").write_bytes(image_bytes(70, 50, "png"))
    async with connected(tmp_path, fake) as (client, base):
        from_file = await call(client, "remove_background", {"image": str(workdir / "mug.png"), "provider": "aluo"})
        url = f"{base}/cdn/remote-mug.jpg"
        from_url = await call(client, "remove_background", {"image": url, "provider": "auto"})
        for result in (from_file, from_url):
            assert not result.is_error, result.content
            assert result.structured_content["provider"] == "aluo"
        cut = await read_back(client, from_file.structured_content["images"][0])
    assert cut.mode == "RGBA" and cut.size == (70, 50) and cut.getpixel((0, 0))[3] == 0
    first, second = api_requests(fake, "/api/remove-bg")
    assert first.files["file"][2] == (workdir / "mug.png").read_bytes() and first.form == {}
    assert second.form == {"imageUrl": url} and second.files == {}
    assert not any(r.path == "/cdn/remote-mug.jpg" for r in fake.requests)
    assert [c.amount for c in fake.charges] == [1, 1]
    assert from_file.structured_content["credits"]["charged"] == 1


async def test_a_photo_result_chains_into_an_edit(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    async with connected(tmp_path, fake) as (client, _):
        bg = await call(client, "generate_background", {"prompt": "beach"})
        uri = bg.structured_content["images"][0]["uri"]
        edited = await call(client, "edit_photo", {"prompt": "Add a parasol", "images": [uri]})
        assert not edited.is_error, edited.content
    (post,) = api_requests(fake, "/api/photo-editor/generate")
    assert post.files["file0"][2] == Path(bg.structured_content["images"][0]["path"]).read_bytes()


# -- errors the user sees ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("edit_photo", {"prompt": "x", "images": ["https://example.com/a.png"]}),
        ("generate_product_photo", {"prompt": "x"}),
        ("generate_background", {"prompt": "x"}),
        ("remove_background", {"image": "https://example.com/a.png", "provider": "aluo"}),
    ],
)
async def test_without_a_key_every_tool_names_the_variable(tmp_path: Path, tool: str, args: dict[str, Any]) -> None:
    async with Client(build_server(make_settings(tmp_path))) as client:
        result = await call(client, tool, args)
    assert "ALUO_API_KEY" in error_text(result)


async def test_a_rejected_key(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with connected(tmp_path, fake, aluo_api_key="sk-not-the-right-key") as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug"})
    text = error_text(result)
    assert "the key was rejected, check ALUO_API_KEY" in text and "sk-not-the-right-key" not in text
    assert result.structured_content["credits"]["charged"] == 0 and fake.charges == []


async def test_insufficient_credits(tmp_path: Path) -> None:
    fake = FakeAluo(credits=100)
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug", "variants": 4})
        spent = (await credits(client))["spent_today_here"]
    text = error_text(result)
    assert "insufficient credits" in text and "Top up" in text and "lower variants" in text
    assert fake.charges == [] and fake.jobs == {} and spent == 0


async def test_aluos_400_message_is_forwarded(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_background", {"prompt": "   "})
    assert "Aluo refused the background generation: Prompt is required" in error_text(result)
    assert fake.charges == []


async def test_a_failed_edit_charges_nothing(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=1, fail_jobs=True)
    async with connected(tmp_path, fake) as (client, base):
        result = await call(client, "edit_photo", {"prompt": "x", "images": [f"{base}/cdn/a.png"]})
        after = await credits(client)
    text = error_text(result)
    assert "Image generation failed" in text and "The edit failed and no credits were charged" in text
    assert result.structured_content["status"] == "failed" and result.structured_content["credits"]["charged"] == 0
    assert fake.charges == [] and after["spent_today_here"] == 0


async def test_500_on_generate_is_not_resent_and_charges_nothing(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/photo-generate/generate", 500, times=3)
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug"})
    assert "HTTP 500" in error_text(result) and "not re-sent" in error_text(result)
    assert len(api_requests(fake, "/api/photo-generate/generate")) == 1 and fake.jobs == {}
    assert result.structured_content["credits"]["charged"] == 0


async def test_429_then_success_charges_once(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    fake.fail_next("/api/photo-generate/generate", 429, headers={"Retry-After": "0"})
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug", "variants": 2})
        spent = (await credits(client))["spent_today_here"]
    assert not result.is_error, result.content
    assert len(api_requests(fake, "/api/photo-generate/generate")) == 2 and len(fake.jobs) == 1
    assert [c.amount for c in fake.charges] == [80] and result.structured_content["credits"]["charged"] == 80
    assert spent == 80


async def test_429_that_persists_says_when_to_try_again(tmp_path: Path) -> None:
    fake = FakeAluo()
    fake.fail_next("/api/photo-editor/generate", 429, headers={"Retry-After": "90"})
    async with connected(tmp_path, fake) as (client, base):
        result = await call(client, "edit_photo", {"prompt": "x", "images": [f"{base}/cdn/a.png"]})
    assert "try again in 90 s" in error_text(result) and fake.jobs == {}


async def test_aluo_unreachable(tmp_path: Path) -> None:
    fake = FakeAluo()
    async with serve(fake.app) as base:
        pass  # the port is closed again: nothing listens there
    settings = aluo_settings(tmp_path, fake, base)
    async with Client(build_server(settings)) as client:
        result = await call(client, "generate_background", {"prompt": "studio"})
    assert "unreachable" in error_text(result) and "Nothing was charged" in error_text(result)


async def test_a_cdn_error_page_is_not_saved_and_the_charge_is_recorded_once(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=0)
    fake.cdn_html = True
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug"})
        spent = (await credits(client))["spent_today_here"]
    assert "not an image" in error_text(result)
    assert result.structured_content["credits"]["charged"] == 40 and spent == 40 and len(fake.charges) == 1
    # The page was written while it was probed; nothing of it is left, under any name.
    assert [p.name for p in (tmp_path / "data" / "results").iterdir()] == []


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("generate_product_photo", {"prompt": "mug", "variants": 3}),
        ("generate_product_photo", {"prompt": "mug", "aspect_ratio": "7:3"}),
        ("generate_product_photo", {"prompt": "mug", "resolution": "8K"}),
        ("generate_product_photo", {"prompt": "mug", "output_format": "gif"}),
        ("edit_photo", {"prompt": "x", "images": []}),
        ("edit_photo", {"prompt": "x", "images": [f"https://example.com/{i}.png" for i in range(6)]}),
        ("edit_photo", {"prompt": "x", "images": ["https://example.com/a.png"], "num_images": 5}),
        ("edit_photo", {"prompt": "", "images": ["https://example.com/a.png"]}),
    ],
)
async def test_invalid_values_are_refused_before_any_request(tmp_path: Path, tool: str, args: dict[str, Any]) -> None:
    fake = FakeAluo()
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, tool, args)
    assert result.is_error
    assert fake.requests == []


async def test_the_jpg_alias_is_sent_as_the_documented_jpeg(tmp_path: Path) -> None:
    """Aluo's enum is jpeg ("jpg" is rejected by its API): the alias is taken and sent correctly."""
    fake = FakeAluo(polls_until_done=0)
    async with connected(tmp_path, fake) as (client, _):
        result = await call(client, "generate_product_photo", {"prompt": "mug", "output_format": "jpg"})
    assert not result.is_error, result.content
    (post,) = api_requests(fake, "/api/photo-generate/generate")
    assert post.json["outputFormat"] == "jpeg"


# -- jobs that outlive a call -----------------------------------------------------------------------


async def test_a_long_edit_hands_off_and_resumes_after_a_restart_without_paying_twice(tmp_path: Path) -> None:
    fake = FakeAluo(polls_until_done=10_000)
    async with serve(fake.app) as base:
        settings = aluo_settings(tmp_path, fake, base, wait_seconds=0.3)
        async with Client(build_server(settings)) as client:
            first = await call(client, "edit_photo", {"prompt": "x", "images": [f"{base}/cdn/a.png"]})
            assert first.structured_content["status"] == "running" and "get_job" in first.content[0].text
            job_id = first.structured_content["job_id"]
        # The server stopped mid-poll; the task finishes at Aluo while it is down.
        fake.polls_until_done = 0
        async with Client(build_server(aluo_settings(tmp_path, fake, base, wait_seconds=10))) as client:
            done = await call(client, "get_job", {"job_id": job_id, "wait_seconds": 10})
            assert done.structured_content["status"] == "succeeded", done.content
            await read_back(client, done.structured_content["images"][0])
    assert len(api_requests(fake, "/api/photo-editor/generate")) == 1
    assert [c.amount for c in fake.charges] == [40] and done.structured_content["credits"]["charged"] == 40


# -- real transports --------------------------------------------------------------------------------


async def test_stdio_subprocess_generates_and_edits_against_the_fake(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(polls_until_done=2)
    (workdir / "mug.png").write_bytes(image_bytes(50, 50, "png"))
    progress: Progress = []
    async with serve(fake.app) as base:
        params = stdio_params(
            tmp_path,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(base),
            PHOTO_MCP_ALUO_POLL_INTERVAL="0.05",
        )
        with anyio.fail_after(60):
            async with Client(params) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"edit_photo", "generate_product_photo", "generate_background"} <= names
                generated = await call(client, "generate_product_photo", {"prompt": "mug", "variants": 2}, progress)
                assert not generated.is_error, generated.content
                edited = await call(
                    client, "edit_photo", {"prompt": "Make it blue", "images": [str(workdir / "mug.png")]}
                )
                assert not edited.is_error, edited.content
                img = await read_back(client, edited.structured_content["images"][0])
    assert len(generated.structured_content["images"]) == 2 and img.format == "PNG"
    assert any("running on Aluo" in (m or "") for _, _, m in progress)
    assert [c.amount for c in fake.charges] == [80, 40]
    assert generated.structured_content["credits"]["charged"] == 80


async def test_streamable_http_edit_and_remove_background(tmp_path: Path, workdir: Path) -> None:
    fake = FakeAluo(polls_until_done=2)
    (workdir / "mug.jpg").write_bytes(image_bytes(60, 40, "jpeg"))
    progress: Progress = []
    async with serve(fake.app) as fake_base:
        settings = aluo_settings(tmp_path, fake, fake_base, transport="http")
        async with serve_http(build_server(settings), settings) as base, Client(base + "/mcp") as client:
            edited = await call(
                client, "edit_photo", {"prompt": "x", "images": [f"{fake_base}/cdn/a.png"], "num_images": 2}, progress
            )
            cut = await call(client, "remove_background", {"image": str(workdir / "mug.jpg"), "provider": "aluo"})
            for result in (edited, cut):
                assert not result.is_error, result.content
            cut_img = await read_back(client, cut.structured_content["images"][0])
    assert len(edited.structured_content["images"]) == 2
    assert any("running on Aluo" in (m or "") for _, _, m in progress)
    assert cut_img.mode == "RGBA" and cut_img.size == (60, 40)
    assert [c.amount for c in fake.charges] == [80, 1]  # the edit made two images
