"""No provider key ever leaves the server: not in tool results, errors, progress, MCP log messages,
resources, stderr logs at DEBUG, `doctor` or `call` output, nor in any file of the data dir.

Every provider is configured with distinctive keys (all containing LEAKCANARY; YouCam's secret is
its fake's RSA public key) and served by its fake on loopback. `photo-mcp` runs as a stdio
subprocess with PHOTO_MCP_LOG_LEVEL=DEBUG and runs every tool: successes, and failures in which
the fake *echoes the key it got* back in its error body (401s, 400s, 5xx pages, failed jobs) —
the worst case of a provider that quotes the Authorization header. Then everything the server
produced is searched for the keys.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult

from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.removedo import FakeRemovedo
from tests.fakes.youcam import FakeYouCam, catalog
from tests.support import stdio_params
from tools.providers import local as local_ai

ALUO_KEY = "sk-LEAKCANARY-aluo-6f1d2c3b4a5e9d8c"
REMOVEDO_KEY = "sk_live_LEAKCANARY_removedo_9e8d7c6b"
YOUCAM_KEY = "LEAKCANARYyoucam0123456789abcdef"  # the API key is YouCam's client id
AUTH_TOKEN = "LEAKCANARY-mcp-bearer-token-5a4b3c2d1e"
V1 = "/s2s/v1.0"
HAIR_GROUP, HAIR_STYLE = catalog("hair-style")[0][0], catalog("hair-style")[0][2][0][0]
IMAGE_STYLE = catalog("text-to-image")[0][2][0][0]
LOCAL = local_ai.available()  # the [local] extra: without it the offline tools answer with a setup message


def needles(youcam_secret: str, youcam_tokens: list[str]) -> dict[str, str]:
    """What must never appear: each key, the shared marker, slices of the secret, issued tokens."""
    found = {
        "ALUO_API_KEY": ALUO_KEY,
        "REMOVEDO_API_KEY": REMOVEDO_KEY,
        "YOUCAM_API_KEY": YOUCAM_KEY,
        "PHOTO_MCP_AUTH_TOKEN": AUTH_TOKEN,
        "YOUCAM_SECRET_KEY": youcam_secret,
        "LEAKCANARY marker": "LEAKCANARY",
    }
    n = len(youcam_secret)
    for i, start in enumerate((0, n // 3, n // 2, n - 24)):
        found[f"YOUCAM_SECRET_KEY slice {i}"] = youcam_secret[start : start + 24]
    for i, token in enumerate(youcam_tokens):
        found[f"YouCam access token {i}"] = token
    return found


@asynccontextmanager
async def fakes() -> AsyncIterator[tuple[FakeAluo, FakeYouCam, FakeRemovedo, dict[str, str]]]:
    aluo = FakeAluo(api_key=ALUO_KEY, polls_until_done=1)
    youcam = FakeYouCam(client_id=YOUCAM_KEY, polling_interval_ms=20, polls_until_done=1)
    removedo = FakeRemovedo(api_key=REMOVEDO_KEY, polls_until_done=1)
    async with serve(aluo.app) as a, serve(youcam.app) as y, removedo, serve(removedo.app) as r:
        env = {
            "ALUO_API_KEY": ALUO_KEY,
            "ALUO_BASE_URL": FakeAluo.api_base(a),
            "YOUCAM_API_KEY": YOUCAM_KEY,
            "YOUCAM_SECRET_KEY": youcam.secret_key,
            "YOUCAM_BASE_URL": y,
            "REMOVEDO_API_KEY": REMOVEDO_KEY,
            "REMOVEDO_BASE_URL": r,
            "PHOTO_MCP_AUTH_TOKEN": AUTH_TOKEN,
            "PHOTO_MCP_LOG_LEVEL": "DEBUG",
            "PHOTO_MCP_ALUO_POLL_INTERVAL": "0.02",
            "PHOTO_MCP_REMOVEDO_POLL_INTERVAL": "0.02",
            "PHOTO_MCP_BACKGROUND_PROVIDERS": "aluo,youcam,removedo,local",
        }
        yield aluo, youcam, removedo, env


class Transcript:
    """Everything the server said, labelled by where it came from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.results: dict[str, CallToolResult] = {}

    def add(self, where: str, text: str) -> None:
        self.items.append((where, text))


async def run_tools(client: Client, work: Path, fakes_: tuple[FakeAluo, FakeYouCam, FakeRemovedo], t: Transcript):
    aluo, youcam, removedo = fakes_
    face, ref = str(work / "face.jpg"), str(work / "ref.jpg")
    photo = str(work / "photo.png")

    async def call(label: str, tool: str, args: dict[str, Any], *, ok: bool) -> CallToolResult:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            t.add(f"{label}: progress", message or "")

        with anyio.fail_after(60):
            result = await client.call_tool(tool, args, progress_callback=on_progress)
        t.add(f"{label}: result", result.model_dump_json())
        t.results[label] = result
        text = " ".join(getattr(b, "text", "") for b in result.content)
        assert result.is_error is not ok, f"{label}: expected {'success' if ok else 'an error'}, got: {text[:400]}"
        return result

    # -- successes: every tool, every provider
    for provider in ("aluo", "youcam", "removedo", "local", "auto"):
        ok = LOCAL or provider != "local"
        await call(f"cutout-{provider}", "remove_background", {"image": photo, "provider": provider}, ok=ok)
    await call("edit", "edit_photo", {"prompt": "make it blue", "images": [photo]}, ok=True)
    await call("generate", "generate_product_photo", {"prompt": "a red mug", "variants": 2}, ok=True)
    await call("backdrop", "generate_background", {"prompt": "a marble table"}, ok=True)
    await call("hair", "try_hairstyle", {"image": face, "style_id": HAIR_STYLE, "style_group_id": HAIR_GROUP}, ok=True)
    await call("aging", "simulate_aging", {"image": face}, ok=True)
    await call("makeup", "transfer_makeup", {"image": face, "reference": ref}, ok=True)
    for provider in ("youcam", "local"):
        erase = {"image": photo, "boxes": [[2, 2, 6, 6]], "provider": provider}
        ok = LOCAL or provider != "local"
        await call(f"erase-{provider}", "remove_object", erase, ok=ok)
        await call(f"enhance-{provider}", "enhance_photo", {"image": photo, "scale": 2, "provider": provider}, ok=True)
    await call("colorize", "colorize_photo", {"image": face}, ok=True)
    await call("text-to-image", "generate_image", {"prompt": "a cat", "style_id": IMAGE_STYLE}, ok=True)
    await call("groups", "list_style_groups", {"feature": "hairstyle"}, ok=True)
    await call("styles", "list_styles", {"feature": "hairstyle", "style_group_id": HAIR_GROUP}, ok=True)
    await call("place", "place_on_background", {"image": photo, "background": "white"}, ok=True)
    await call("resize", "resize_image", {"image": photo, "width": 40}, ok=True)
    await call("crop", "crop_image", {"image": photo, "box": [0, 0, 20, 20]}, ok=True)
    await call("convert", "convert_image", {"image": photo, "format": "webp"}, ok=True)
    await call("blur", "blur_background", {"image": photo}, ok=LOCAL)
    await call("colors", "correct_colors", {"image": photo}, ok=LOCAL)
    await call("credits", "check_credits", {"provider": "all"}, ok=True)
    job_id = t.results["edit"].structured_content["job_id"]
    await call("get-job", "get_job", {"job_id": job_id}, ok=True)
    await call("cancel-job", "cancel_job", {"job_id": job_id}, ok=True)

    # -- failures where the provider echoes the key it was sent
    aluo.fail_next(
        "/api/remove-bg",
        401,
        body={
            "code": -2,
            "success": False,
            "message": f"Invalid API key {ALUO_KEY}",
            "error": f"got: Bearer {ALUO_KEY}",
        },
    )
    await call("aluo-401-echo", "remove_background", {"image": photo, "provider": "aluo"}, ok=False)
    aluo.fail_next(
        "/api/photo-editor/generate",
        400,
        body={"code": -1, "success": False, "message": f"bad request for {ALUO_KEY}", "error": ALUO_KEY},
    )
    await call("aluo-400-echo", "edit_photo", {"prompt": "blue", "images": [photo]}, ok=False)
    aluo.fail_next("/api/photo-generate/generate", 500, body=f"<html>upstream failed for Bearer {ALUO_KEY}</html>")
    await call("aluo-500-echo", "generate_product_photo", {"prompt": "a mug"}, ok=False)
    aluo.fail_jobs, aluo.fail_message = True, f"engine refused key {ALUO_KEY}"
    await call("aluo-failed-job-echo", "edit_photo", {"prompt": "blue", "images": [photo]}, ok=False)
    aluo.fail_jobs = False
    aluo.fail_next("/cdn/", 404, body=f"no such object (signed for {ALUO_KEY})", times=10)
    await call("aluo-download-echo", "generate_background", {"prompt": "sky"}, ok=False)

    for status in (400, 401, 402, 403):
        removedo.fail_next("/api/v1/remove-bg", status, body={"error": f"HTTP {status} for key {REMOVEDO_KEY}"})
        await call(f"removedo-{status}-echo", "remove_background", {"image": photo, "provider": "removedo"}, ok=False)
    removedo.fail_next("/api/v1/jobs/", 401, body={"error": f"Invalid API key: {REMOVEDO_KEY}"}, times=10)
    await call("removedo-poll-echo", "remove_background", {"image": photo, "provider": "removedo"}, ok=False)

    echo = {"status": 400, "error": f"client {YOUCAM_KEY} key {youcam.secret_key}", "error_code": "UnknownError"}
    youcam.fail_next(f"{V1}/task/colorize", 400, body=echo)
    await call("youcam-400-echo", "colorize_photo", {"image": face}, ok=False)
    youcam.fail_next(f"{V1}/file/", 500, body=f"<html>proxy error for {YOUCAM_KEY}</html>", times=10)
    await call("youcam-500-echo", "simulate_aging", {"image": str(work / "face2.jpg")}, ok=False)
    youcam.engine_error = "error_no_face"
    await call("youcam-engine-error", "simulate_aging", {"image": face}, ok=False)
    youcam.engine_error = None
    youcam.expire_tokens()
    youcam.fail_next(
        f"{V1}/client/auth", 401, body={**echo, "status": 401, "error_code": "InvalidAccessToken"}, times=2
    )
    await call("youcam-auth-echo", "generate_image", {"prompt": "a dog", "style_id": IMAGE_STYLE}, ok=False)
    youcam.fail_next(f"{V1}/client/credit", 401, body=echo, times=10)
    await call("credits-failing", "check_credits", {"provider": "all"}, ok=True)
    await call("not-found", "get_job", {"job_id": "j_000000000000"}, ok=False)  # fmt: skip


async def read_resources(client: Client, t: Transcript) -> None:
    with anyio.fail_after(60):
        listed = await client.list_resources()
        t.add("resources/list", listed.model_dump_json())
        templates = await client.list_resource_templates()
        t.add("resources/templates/list", templates.model_dump_json())
        uris = [str(r.uri) for r in listed.resources]
        jobs = {(r.structured_content or {}).get("job_id") for r in t.results.values()} - {None}
        uris += [f"photo://jobs/{job_id}" for job_id in sorted(jobs)]
        uris.append(f"photo://styles/hairstyle/{HAIR_GROUP}")
        for uri in uris:
            try:
                read = await client.read_resource(uri)
            except Exception as exc:  # an unknown resource is an error answer: its text counts too
                t.add(f"read {uri}", str(exc))
                continue
            for content in read.contents:
                blob = getattr(content, "blob", None)
                text = base64.b64decode(blob).decode("latin-1") if blob else getattr(content, "text", "")
                t.add(f"read {uri}", text)


def scan(t: Transcript, data_dir: Path, needles_: dict[str, str]) -> list[str]:
    haystacks = list(t.items)
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            haystacks.append((f"file {path.relative_to(data_dir)}", path.read_bytes().decode("latin-1")))
    leaks = []
    for where, text in haystacks:
        for name, needle in needles_.items():
            if needle and needle in text:
                at = text.index(needle)
                leaks.append(f"{name} in {where}: …{text[max(0, at - 80) : at + len(needle) + 20]!r}")
    return leaks


async def test_no_key_leaks_anywhere(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "photo.png").write_bytes(image_bytes(96, 72, "png"))
    (work / "face.jpg").write_bytes(image_bytes(400, 300, "jpeg"))
    (work / "face2.jpg").write_bytes(image_bytes(410, 300, "jpeg"))
    (work / "ref.jpg").write_bytes(image_bytes(300, 300, "jpeg"))
    transcript = Transcript()
    stderr_path = tmp_path / "stderr.log"

    async def on_log(params: Any) -> None:
        transcript.add(f"log notification ({params.level})", json.dumps(params.data, default=str))

    async with fakes() as (aluo, youcam, removedo, env):
        params = stdio_params(tmp_path, **env)
        with stderr_path.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), logging_callback=on_log, log_level="debug") as c:
                await run_tools(c, work, (aluo, youcam, removedo), transcript)
                await read_resources(c, transcript)
        # The CLI paths print too: doctor (keys masked) and a one-shot call that fails with an echo.
        removedo.fail_next("/api/v1/remove-bg", 401, body={"error": f"Invalid API key: {REMOVEDO_KEY}"})
        for name, argv in {
            "doctor": ["doctor"],
            "call": ["call", "remove_background", f"image={work / 'photo.png'}", "provider=removedo"],
        }.items():
            proc = await anyio.run_process([sys.executable, "-m", "server", *argv], env=params.env, check=False)
            transcript.add(f"`photo-mcp {name}` stdout", proc.stdout.decode())
            transcript.add(f"`photo-mcp {name}` stderr", proc.stderr.decode())
            if name == "doctor":
                assert "configured" in proc.stdout.decode() and proc.returncode == 0, proc.stdout.decode()
        youcam_tokens = list(youcam._tokens)
    transcript.add("stderr (DEBUG)", stderr_path.read_text())

    assert len(transcript.results) >= 40
    assert len(stderr_path.read_text()) > 1000, "DEBUG logging produced almost nothing: the check would be empty"
    assert any(r.method == "POST" for r in removedo.requests) and youcam_tokens and aluo.charges
    leaks = scan(transcript, tmp_path / "data", needles(youcam.secret_key, youcam_tokens))
    assert not leaks, "keys leaked:\n" + "\n".join(leaks)


@pytest.mark.parametrize("provider", ["aluo", "removedo"])
def test_the_canary_would_be_found(provider: str) -> None:
    """The scanner finds a key where one is (so an empty result above means something)."""
    t = Transcript()
    t.add("result", json.dumps({"message": f"echo {ALUO_KEY if provider == 'aluo' else REMOVEDO_KEY}"}))
    assert scan(t, Path("/nonexistent"), needles("QUFB" * 10, []))
