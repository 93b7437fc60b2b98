"""Memory under concurrency: 20 concurrent `remove_background` calls (Aluo, fake on loopback), each
uploading a ~9 MB image, through one `photo-mcp` stdio subprocess; the server's peak RSS.

    python -m tests.benchmarks.bench_memory [--concurrent 20] [--quick]

Two inputs, each against a fresh server: a 9 MB noise PNG (incompressible, ~1770×1770: within
Aluo's 4096 px / 10 MB limits, so it is sent as it is) and a 9 MB 24 MP camera-like JPEG
(6000×4000: fitted to 4096 px before upload). The fake answers with a cut-out of the uploaded
size, which photo-mcp downloads, stores and previews. Peak RSS is the server process's VmHWM
(/proc/<pid>/status), which covers its whole life. "Identical" checks every upload against the
same input fitted alone in this process, and every stored result against what the fake served.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from PIL import Image

from tests.benchmarks.procstats import children, load, sample
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import stdio_params
from tools.core import fitting
from tools.providers.aluo.spec import UPLOAD_LIMITS

TITLE = "### Memory under concurrency: concurrent 9 MB uploads through remove_background (Aluo)"
TARGET_MB = 400


def noise_png(target_bytes: int) -> bytes:
    """An incompressible RGB PNG of about `target_bytes`."""
    side = int((target_bytes / 3) ** 0.5)
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def camera_jpeg(width: int, height: int) -> bytes:
    """A camera-like JPEG (gradient + coloured grain) of ~9 MB at 6000×4000."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    half = (width // 2, height // 2)
    grain = Image.merge("RGB", [Image.effect_noise(half, 40).resize((width, height)) for _ in "RGB"])
    buf = io.BytesIO()
    Image.blend(base, grain, 0.41).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def server_pid() -> int:
    """The photo-mcp subprocess the stdio client started (our only child running `-m server`)."""
    for pid in children():
        try:
            if b"server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise RuntimeError("photo-mcp subprocess not found")


async def one_case(data: bytes, name: str, concurrent: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    work = tmp / "work"
    work.mkdir()
    (work / "warm.png").write_bytes(image_bytes(64, 48, "png"))
    paths = []
    for i in range(concurrent):  # one file per call, as separate users would send
        p = work / f"{i}-{name}"
        p.write_bytes(data)
        paths.append(p)
    fake = FakeAluo(credits=10**9)
    async with serve(fake.app) as served:
        params = stdio_params(
            tmp,
            ALUO_API_KEY=fake.api_key,
            ALUO_BASE_URL=FakeAluo.api_base(served),
            PHOTO_MCP_BACKGROUND_PROVIDERS="aluo",
        )
        async with Client(params) as client:
            pid = server_pid()
            warm = await client.call_tool("remove_background", {"image": str(work / "warm.png"), "provider": "aluo"})
            assert not warm.is_error, warm.content
            idle = sample(pid)
            errors: list[str] = []

            async def call(path: Path) -> None:
                result = await client.call_tool("remove_background", {"image": str(path), "provider": "aluo"})
                if result.is_error:
                    errors.append(result.content[0].text)  # type: ignore[union-attr]

            start = time.monotonic()
            with anyio.fail_after(600):
                async with anyio.create_task_group() as tg:
                    for p in paths:
                        tg.start_soon(call, p)
            elapsed = time.monotonic() - start
            after = sample(pid)
    if errors:
        raise RuntimeError(f"{len(errors)} calls failed: {errors[:2]}")
    uploads = [r for r in fake.requests if r.path == "/api/remove-bg"][1:]
    sent = [len(r.files["file"][2]) for r in uploads]
    alone = fitting.fit(data, UPLOAD_LIMITS, 10**9).data  # the same input, fitted with nothing else running
    served = {body for body, _ in fake.cdn.values()}
    stored = [p.read_bytes() for p in (tmp / "data").rglob("*.png")]
    identical = (
        len(uploads) == concurrent
        and all(r.files["file"][2] == alone for r in uploads)
        and len(stored) == concurrent + 1  # and the warm-up's
        and all(body in served for body in stored)
    )
    return {
        "size_mb": len(data) / 2**20,
        "sent_mb": max(sent) / 2**20,
        "concurrent": concurrent,
        "idle": idle.rss_mb,
        "peak": after.hwm_mb,
        "after": after.rss_mb,
        "seconds": elapsed,
        "identical": identical,
    }


def run(quick: bool, concurrent: int = 20) -> list[str]:
    before = load()
    if quick:
        cases = [("noise PNG", "noise.png", noise_png(1 * 2**20))]
        concurrent = 3
    else:
        cases = [
            ("noise PNG, sent as is", "noise.png", noise_png(9 * 2**20)),
            ("24 MP camera JPEG, fitted to 4096 px", "camera.jpg", camera_jpeg(6000, 4000)),
        ]
    rows = [
        TITLE,
        "",
        "| input | uploaded to Aluo | concurrent calls | server RSS idle | server peak RSS (VmHWM) | RSS after "
        "| wall time | results identical | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, name, data in cases:
        r = anyio.run(one_case, data, name, concurrent)
        rows.append(
            f"| {label} ({r['size_mb']:.1f} MB) | {r['sent_mb']:.1f} MB | {r['concurrent']} | {r['idle']:.0f} MB "
            f"| {r['peak']:.0f} MB | {r['after']:.0f} MB | {r['seconds']:.1f} s "
            f"| {'yes' if r['identical'] else '**no**'} | ≤ {TARGET_MB} MB |"
        )
    rows += ["", f"Load average {before} before, {load()} after."]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    args = parser.parse_args(argv)
    print("\n".join(run(args.quick, args.concurrent)), flush=True)


if __name__ == "__main__":
    main()
