"""The viewer in a real browser, hosted by the official AppBridge, on results of the real server.

Each test asserts what a person sees or gets: the picture on screen (decoded, not blank), the
comparison slider moving, the message a variant choice sends, the downloaded bytes, a running
job's progress and its cancel, and a photo dropped on the drop zone becoming an image the tools
accept.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import anyio
from mcp import Client
from PIL import Image

from tests.apps.harness import apps_client_extension, browser_host
from tests.fakes.aluo import FakeAluo
from tests.fakes.loopback import serve
from tests.fakes.youcam import FakeYouCam
from tests.support import stdio_params

RED, BLUE = (220, 30, 30), (30, 60, 220)


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def _red_square(path: Path, side: int = 120) -> Path:
    Image.new("RGB", (side, side), RED).save(path)
    return path


async def test_gallery_slider_and_download_of_a_local_edit(tmp_path: Path, workdir: Path, host_bundle: str) -> None:
    photo = _red_square(workdir / "red.png")
    args = {"image": str(photo), "background": "#1e3cdc", "aspect_ratio": "1:1", "margin": 0.25, "cut_out": False}
    with anyio.fail_after(120):
        async with Client(stdio_params(tmp_path), extensions=[apps_client_extension()]) as client:
            result = await client.call_tool("place_on_background", args)
            assert not result.is_error, result.content
            (image,) = result.structured_content["images"]
            async with browser_host(client, host_bundle) as host:
                view = await host.open("place_on_background", args, result)

                # The full-size result is on screen: decoded at its real size, and not blank.
                card = view.locator(".card img")
                await view.wait_for_selector(".card img[data-full='1']")
                assert await card.evaluate("i => [i.complete, i.naturalWidth, i.naturalHeight]") == [
                    True,
                    image["width"],
                    image["height"],
                ]
                await view.wait_for_selector("#compare:not([hidden])")  # the layout is final
                shot = await host.pixels(card)
                w, h = shot.size
                scale = min(w / image["width"], h / image["height"])  # object-fit: contain
                left = (w - image["width"] * scale) / 2
                edge = int(left + image["width"] * scale * 0.05)
                assert _near(shot.getpixel((w // 2, h // 2)), RED) and _near(shot.getpixel((edge, h // 2)), BLUE)
                meta = await view.locator(".card .meta").inner_text()
                assert f"{image['width']}×{image['height']}" in meta and "local" in meta

                # Before/after: the input (all red) left of the divider, the result right of it.
                await view.wait_for_selector("#compare:not([hidden])")
                frame = view.locator("#frame")
                box = await frame.bounding_box()
                y = box["y"] + box["height"] / 2
                probe = (int(box["width"] * 0.1), int(box["height"] / 2))
                await host.page.mouse.click(box["x"] + box["width"] * 0.9, y)
                assert float(await view.locator("#compare").get_attribute("data-split")) > 85
                assert _near((await host.pixels(frame)).getpixel(probe), RED)  # "before" shows at 10 %
                await host.page.mouse.move(box["x"] + box["width"] * 0.6, y)
                await host.page.mouse.down()
                await host.page.mouse.move(box["x"] + box["width"] * 0.03, y, steps=5)
                await host.page.mouse.up()
                assert float(await view.locator("#compare").get_attribute("data-split")) < 6
                assert _near((await host.pixels(frame)).getpixel(probe), BLUE)  # now "after" does

                # Download: the full-size file's bytes, through the host (the sandbox blocks downloads).
                await view.locator(".card .download").click()
                entry = await host.wait_for("download")
                (content,) = entry["params"]["contents"]
                assert content["type"] == "resource" and content["resource"]["uri"] == image["uri"]
                data = base64.b64decode(content["resource"]["blob"])
    assert data == Path(image["path"]).read_bytes() and len(data) == image["bytes"]
    assert not [e for e in host.log if e["kind"] == "message"]  # looking is not choosing


async def test_choosing_a_variant_tells_the_conversation_which_result(
    tmp_path: Path, workdir: Path, host_bundle: str
) -> None:
    photo = _red_square(workdir / "mug.png", 64)
    fake = FakeAluo(polls_until_done=1)
    args = {"prompt": "Make it blue", "images": [str(photo)], "num_images": 2}
    async with serve(fake.app) as base:
        env = {"ALUO_API_KEY": fake.api_key, "ALUO_BASE_URL": FakeAluo.api_base(base)}
        env["PHOTO_MCP_ALUO_POLL_INTERVAL"] = "0.05"
        with anyio.fail_after(120):
            async with Client(stdio_params(tmp_path, **env), extensions=[apps_client_extension()]) as client:
                result = await client.call_tool("edit_photo", args)
                assert not result.is_error, result.content
                first, second = result.structured_content["images"]
                async with browser_host(client, host_bundle) as host:
                    view = await host.open("edit_photo", args, result)
                    await view.wait_for_selector(f".card[data-id='{second['id']}'] img[data-full='1']")
                    assert await view.locator(".card").count() == 2
                    assert "aluo" in await view.locator(f".card[data-id='{second['id']}'] .meta").inner_text()
                    await view.wait_for_selector("#compare:not([hidden])")  # it edited an input
                    await view.locator(f".card[data-id='{second['id']}'] .use").click()
                    entry = await host.wait_for("message")
                    chosen = await view.locator(".card.chosen").get_attribute("data-id")
                    compared = await view.locator("#after-img").get_attribute("src")
                    second_src = await view.locator(f".card[data-id='{second['id']}'] img").get_attribute("src")
    (block,) = entry["params"]["content"]
    assert entry["params"]["role"] == "user" and block["type"] == "text"
    assert second["uri"] in block["text"] and first["id"] not in block["text"]
    assert chosen == second["id"] and compared == second_src  # the slider now compares the chosen one


async def test_running_job_shows_progress_and_cancel_stops_it(tmp_path: Path, workdir: Path, host_bundle: str) -> None:
    photo = workdir / "old.jpg"
    Image.new("L", (256, 256), 128).convert("RGB").save(photo)
    # YouCam's progress climbs 5 % a poll (one a second here) up to 85 %: room for several updates.
    fake = FakeYouCam(polling_interval_ms=1000, polls_until_done=10**9)
    args = {"image": str(photo)}
    async with serve(fake.app) as base:
        env = {"YOUCAM_API_KEY": fake.client_id, "YOUCAM_SECRET_KEY": fake.secret_key, "YOUCAM_BASE_URL": base}
        with anyio.fail_after(120):
            params = stdio_params(tmp_path, PHOTO_MCP_WAIT_SECONDS="0.5", **env)
            async with Client(params, extensions=[apps_client_extension()]) as client:
                async with browser_host(client, host_bundle) as host:  # the browser first: the job runs now
                    result = await client.call_tool("colorize_photo", args)
                    assert result.structured_content["status"] == "running", result.content
                    job_id = result.structured_content["job_id"]
                    view = await host.open("colorize_photo", args, result)
                    job = view.locator("#job")
                    await view.wait_for_selector("#job:not([hidden])")
                    first = int(await job.get_attribute("data-progress"))
                    # The bar moves as the provider reports progress (the view long-polls job_status).
                    moved = "(p) => Number(document.getElementById('job').dataset.progress) > p"
                    await view.wait_for_function(moved, arg=first)
                    width = await view.locator("#fill").evaluate("e => e.getBoundingClientRect().width")
                    assert width > 0
                    await view.locator("#cancel").click()
                    said = "(id) => document.getElementById('status').textContent.includes(`Job ${id} cancelled`)"
                    await view.wait_for_function(said, arg=job_id)
                    status_text = await view.locator("#status").inner_text()
                done = await client.call_tool("get_job", {"job_id": job_id})
    assert done.structured_content["status"] == "cancelled"
    assert job_id in status_text
    assert any(c["name"] == "job_status" for c in host.calls) and any(c["name"] == "cancel_job" for c in host.calls)
    assert not fake.charges  # stopped before YouCam finished: nothing charged


async def test_a_photo_dropped_on_the_drop_zone_becomes_an_upload_the_tools_accept(
    tmp_path: Path, host_bundle: str
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), BLUE).save(buf, "JPEG", quality=90)
    photo = buf.getvalue()
    with anyio.fail_after(120):
        async with Client(stdio_params(tmp_path), extensions=[apps_client_extension()]) as client:
            picked = await client.call_tool("pick_image", {"purpose": "the product to cut out"})
            assert picked.structured_content["mode"] == "picker"
            async with browser_host(client, host_bundle) as host:
                view = await host.open("pick_image", {"purpose": "the product to cut out"}, picked)
                await view.wait_for_selector("#picker:not([hidden])")
                assert "the product to cut out" in await view.locator("#picker-purpose").inner_text()
                transfer = await view.evaluate_handle(
                    """([data, name]) => {
                        const bin = atob(data), bytes = new Uint8Array(bin.length);
                        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
                        const dt = new DataTransfer();
                        dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
                        return dt;
                    }""",
                    [base64.b64encode(photo).decode(), "my shoe.jpg"],
                )
                await view.locator("#drop").dispatch_event("dragover", {"dataTransfer": transfer})
                await view.locator("#drop").dispatch_event("drop", {"dataTransfer": transfer})
                entry = await host.wait_for("message")
                await view.wait_for_selector(".card img")
                shown = await view.locator(".card img").evaluate("i => i.decode().then(() => i.naturalWidth)")
            text = entry["params"]["content"][0]["text"]
            uri = re.search(r"photo://uploads/[0-9a-f]+", text)[0]
            resized = await client.call_tool("resize_image", {"image": uri, "max_side": 60})
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            read = await client.read_resource(uri)
    assert "my shoe.jpg" in text and shown == 300
    assert not resized.is_error, resized.content
    assert resized.structured_content["images"][0]["width"] == 60
    assert uri in listed and base64.b64decode(read.contents[0].blob) == photo


async def test_a_big_result_is_shown_bounded_but_downloaded_whole(
    tmp_path: Path, workdir: Path, host_bundle: str
) -> None:
    photo = _red_square(workdir / "small.png", 64)
    args = {"image": str(photo), "width": 2600, "output_format": "jpeg"}
    with anyio.fail_after(120):
        async with Client(stdio_params(tmp_path), extensions=[apps_client_extension()]) as client:
            result = await client.call_tool("resize_image", args)
            (image,) = result.structured_content["images"]
            async with browser_host(client, host_bundle) as host:
                view = await host.open("resize_image", args, result)
                await view.wait_for_selector(".card img[data-full='1']")
                shown = await view.locator(".card img").evaluate("i => i.decode().then(() => i.naturalWidth)")
                await view.locator(".card .download").click()
                entry = await host.wait_for("download")
    data = base64.b64decode(entry["params"]["contents"][0]["resource"]["blob"])
    assert image["width"] == 2600 and shown == 2048  # a bounded copy on screen...
    assert data == Path(image["path"]).read_bytes()  # ...and the whole file when downloaded


async def test_the_view_opens_as_the_call_starts_and_fills_in_when_it_ends(
    tmp_path: Path, workdir: Path, host_bundle: str
) -> None:
    photo = _red_square(workdir / "red.png", 80)
    args = {"image": str(photo), "max_side": 40}
    client = Client(stdio_params(tmp_path), extensions=[apps_client_extension()])
    with anyio.fail_after(120):
        async with client, browser_host(client, host_bundle) as host:
            view = await host.open("resize_image", args, None)  # the call is still running
            await view.wait_for_function("() => document.getElementById('status').textContent.length > 0")
            waiting = await view.locator("#status").inner_text()
            assert not await view.locator(".card").count()
            result = await client.call_tool("resize_image", args)
            await host.send_result(result)
            await view.wait_for_selector(".card img[data-full='1']")
            facts = await view.locator("#facts").inner_text()
            # A host that drops structuredContent: the gallery comes from the resource links.
            (image,) = result.structured_content["images"]
            bare = await host.open("resize_image", args, result.model_copy(update={"structured_content": None}))
            await bare.wait_for_selector(f".card[data-id='{image['id']}'] img[data-full='1']")
            bare_meta = await bare.locator(".card .meta").inner_text()
    assert "Working on resize_image" in waiting
    assert bare_meta.startswith(f"{image['width']}×{image['height']} · ") and "local" in bare_meta
    assert facts.startswith("succeeded") and "no credits charged" in facts


async def test_a_pasted_picture_is_uploaded_too(tmp_path: Path, host_bundle: str) -> None:
    photo = io.BytesIO()
    Image.new("RGB", (90, 60), RED).save(photo, "PNG")
    client = Client(stdio_params(tmp_path), extensions=[apps_client_extension()])
    with anyio.fail_after(120):
        async with client, browser_host(client, host_bundle) as host:
            picked = await client.call_tool("pick_image", {})
            view = await host.open("pick_image", {}, picked)
            await view.wait_for_selector("#picker:not([hidden])")
            await view.evaluate(
                """(data) => {
                    const bin = atob(data), bytes = new Uint8Array(bin.length);
                    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
                    const dt = new DataTransfer();
                    dt.items.add(new File([bytes], "clipboard.png", { type: "image/png" }));
                    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, cancelable: true }));
                }""",
                base64.b64encode(photo.getvalue()).decode(),
            )
            entry = await host.wait_for("message")
    uri = re.search(r"photo://uploads/[0-9a-f]+", entry["params"]["content"][0]["text"])[0]
    assert "90×60" in entry["params"]["content"][0]["text"] and uri
