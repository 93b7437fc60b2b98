"""YouCam concurrency at the rate-limit ceiling: N concurrent hairstyle jobs through photo-mcp
(MCP in-process, `try_hairstyle`) vs a naive client that polls each task every `polling_interval`
on its own, both against the fake YouCam enforcing the documented limits, time-scaled.

    python -m tests.benchmarks.bench_youcam [--scale 5] [--levels 1,3,6,12,24] [--polls 5] [--quick]

Time scale: every duration is divided by `--scale` on both sides — the fake's windows
(100/60 s, 100/300 s per token), its 10 s loss window and `polling_interval` (1000 ms), and our
YOUCAM_RATE_LIMITS and YOUCAM_MAX_POLL_GAP (8 s); the limiter's proof looks ahead as far as the
(scaled) windows need. Times in
the table are scaled back to real seconds (measured × scale).

Which requests count (tests/fakes/youcam.py): the limits apply to authenticated API requests
that are not refused — file create, run task, task status, catalogs, credit. The sign-in, the
presigned PUT and the result downloads do not count. A hairstyle job (style group given, a photo
not uploaded before) therefore costs R = 1 file create + 1 run + (p + 1) polls = p + 3 counted
requests, where p = the fake's `polls_until_done` (p "running" answers, then "success").

Theoretical minimum for N jobs: a job takes at least p·I from its run to its final poll (the
first poll right after the run, then one per polling_interval I). No job can usefully straddle a
full window (keeping a task alive across S seconds costs S/10 extra polls), so each window
(C requests per S s) completes at most ⌊C/R⌋ jobs per S seconds:

    T_min(N) = max over windows (C, S) of  (⌈N / ⌊C/R⌋⌉ − 1) · S  +  p · I

(request round trips of a few ms are ignored).
"""

from __future__ import annotations

import argparse
import base64
import math
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from mcp import Client

from server.app import build_server
from tests.benchmarks.procstats import load
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.fakes.youcam import FakeYouCam, catalog
from tools.core.settings import Settings
from tools.providers.youcam.limits import Window

TITLE = "### YouCam concurrency at the rate-limit ceiling: photo-mcp vs a naive poll-every-interval client"
LIMITS = [(100, 60.0), (100, 300.0)]  # per token: the documented 100/min and 100 per 5 min
LOSS_S, GAP_S, INTERVAL_MS = 10.0, 8.0, 1000
V1 = "/s2s/v1.0"
HAIR = catalog("hair-style")
GROUP, STYLE = HAIR[0][0], HAIR[0][2][0][0]


def requests_per_job(polls: int) -> int:
    return polls + 3


def t_min(n: int, polls: int, interval_s: float, limits: list[tuple[int, float]]) -> float:
    """The formula in the module docstring, in the given time unit."""
    r = requests_per_job(polls)
    return max((math.ceil(n / (c // r)) - 1) * s for c, s in limits) + polls * interval_s


class Timeline:
    """ASGI wrapper: when each request reached the fake (method, path, task_id)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.events: list[tuple[float, str, str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = dict(q.split("=", 1) for q in scope["query_string"].decode().split("&") if "=" in q)
            self.events.append((time.monotonic(), scope["method"], scope["path"], query.get("task_id", "")))
        await self.app(scope, receive, send)

    def max_poll_gap(self) -> float:
        """The longest time between two polls of one task (status GETs, 429s included)."""
        last: dict[str, float] = {}
        worst = 0.0
        for t, method, path, task in self.events:
            if method == "GET" and path.startswith(f"{V1}/task/hair-style") and task:
                if task in last:
                    worst = max(worst, t - last[task])
                last[task] = t
        return worst

    def peak_running(self) -> int:
        """Most tasks between their first and last poll at the same time."""
        spans: dict[str, list[float]] = defaultdict(list)
        for t, method, path, task in self.events:
            if method == "GET" and path.startswith(f"{V1}/task/hair-style") and task:
                spans[task].append(t)
        edges = sorted([(min(v), 1) for v in spans.values()] + [(max(v), -1) for v in spans.values()])
        peak = cur = 0
        for _, d in edges:
            cur += d
            peak = max(peak, cur)
        return peak


@dataclass
class Level:
    n: int
    completed: int = 0
    failed: int = 0
    rate_limited: int = 0
    lost: int = 0
    seconds: float = 0.0
    max_gap: float = 0.0
    peak: int = 0
    requests: int = 0
    notes: list[str] = field(default_factory=list)


def _fake(scale: float, polls: int) -> FakeYouCam:
    return FakeYouCam(
        credits=10_000,
        polls_until_done=polls,
        polling_interval_ms=max(1, round(INTERVAL_MS / scale)),
        loss_window_s=LOSS_S / scale,
        rate_limits=[(c, s / scale) for c, s in LIMITS],
    )


def _photos(work: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):  # distinct photos: each job uploads its own (the same one is uploaded once per 12 h)
        p = work / f"face-{i}.jpg"
        p.write_bytes(image_bytes(480 + i, 360, "jpeg"))
        paths.append(p)
    return paths


def _settle(fake: FakeYouCam, timeline: Timeline, level: Level, scale: float) -> None:
    level.rate_limited = fake.rate_limited
    level.lost = fake.lost_tasks
    level.max_gap = timeline.max_poll_gap() * scale
    level.peak = timeline.peak_running()
    level.requests = len(timeline.events)


async def run_ours(n: int, scale: float, polls: int, tmp: Path) -> Level:
    fake = _fake(scale, polls)
    timeline = Timeline(fake.app)
    level = Level(n)
    work = Path(tempfile.mkdtemp(prefix=f"ours-{n}-", dir=tmp)) / "work"
    work.mkdir()
    photos = _photos(work, n)
    rate_limits = ",".join(f"{c}/{s / scale:g}" for c, s in LIMITS)
    async with serve(timeline) as base:
        settings = Settings(
            _env_file=None,
            data_dir=work.parent / "data",
            allowed_dirs=[work],
            wait_seconds=3600,
            allow_private_urls=True,
            youcam_api_key=fake.client_id,
            youcam_secret_key=fake.secret_key,
            youcam_base_url=base,
            youcam_rate_limits=rate_limits,
            youcam_max_poll_gap=GAP_S / scale,
        )
        # The limiter's proof looks as far ahead as its (scaled) windows need: nothing else to scale.
        server = build_server(settings)
        async with Client(server) as client:
            # Warm-up without a single request to YouCam: open the client, fail on a missing file.
            missing = {"image": str(work / "missing.jpg"), "style_id": STYLE, "style_group_id": GROUP}
            assert (await client.call_tool("try_hairstyle", missing)).is_error
            await client.call_tool("resize_image", {"image": str(photos[0]), "max_side": 64})
            assert not timeline.events

            async def job(photo: Path) -> None:
                args = {"image": str(photo), "style_id": STYLE, "style_group_id": GROUP}
                result = await client.call_tool("try_hairstyle", args)
                out = result.structured_content or {}
                if not result.is_error and out.get("status") == "succeeded":
                    level.completed += 1
                else:
                    level.failed += 1
                    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
                    level.notes.append(text[:200])

            start = time.monotonic()
            with anyio.fail_after(max(600.0, 20 * t_min(n, polls, 1.0, LIMITS) / scale)):
                async with anyio.create_task_group() as tg:
                    for p in photos:
                        tg.start_soon(job, p)
            level.seconds = (time.monotonic() - start) * scale
        _settle(fake, timeline, level, scale)
    return level


def _id_token(fake: FakeYouCam) -> str:
    key = serialization.load_der_public_key(base64.b64decode(fake.secret_key))
    msg = f"client_id={fake.client_id}&timestamp={int(time.time() * 1000)}".encode()
    return base64.b64encode(key.encrypt(msg, padding.PKCS1v15())).decode()  # type: ignore[union-attr]


async def naive_job(http: httpx2.AsyncClient, auth: dict[str, str], data: bytes, i: int, interval: float) -> str:
    """Upload, run, then poll every polling_interval until done; on a 429 just try again next
    interval. Returns "completed", "lost" or "failed"."""

    async def call(method: str, path: str, **kw: Any) -> httpx2.Response:
        while True:
            r = await http.request(method, V1 + path, headers=auth, **kw)
            if r.status_code != 429:
                return r
            await anyio.sleep(interval)

    files = [{"content_type": "image/jpg", "file_name": "src.jpg"}]
    entry = (await call("POST", "/file/hair-style", json={"files": files})).json()["result"]["files"][0]
    put = entry["requests"][0]
    (await http.put(put["url"], content=data, headers=put["headers"])).raise_for_status()
    payload = {
        "file_sets": {"src_ids": [entry["file_id"]]},
        "actions": [{"id": 0, "params": {"style_group_id": GROUP, "style_ids": [STYLE]}}],
        "output_ext": "jpg",
    }
    task_id = (await call("POST", "/task/hair-style", json={"request_id": i, "payload": payload})).json()["result"][
        "task_id"
    ]
    while True:
        await anyio.sleep(interval)
        r = await http.get(V1 + "/task/hair-style", params={"task_id": task_id}, headers=auth)
        if r.status_code == 429:
            continue
        if r.status_code == 400 and "invalid task id" in r.text.lower():
            return "lost"
        result = r.json()["result"]
        interval = result.get("polling_interval", interval * 1000) / 1000
        if result["status"] == "success":
            for item in result["results"][0]["data"]:
                (await http.get(item["url"])).raise_for_status()
            return "completed"
        if result["status"] == "error":
            return "failed"


async def run_naive(n: int, scale: float, polls: int, tmp: Path) -> Level:
    fake = _fake(scale, polls)
    timeline = Timeline(fake.app)
    level = Level(n)
    datas = [image_bytes(480 + i, 360, "jpeg") for i in range(n)]
    async with serve(timeline) as base, httpx2.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(f"{V1}/client/auth", json={"client_id": fake.client_id, "id_token": _id_token(fake)})
        auth = {"Authorization": f"Bearer {r.json()['result']['access_token']}"}
        outcomes: list[str] = []

        async def job(i: int) -> None:
            outcomes.append(await naive_job(http, auth, datas[i], i, INTERVAL_MS / scale / 1000))

        start = time.monotonic()
        with anyio.fail_after(max(600.0, 20 * t_min(n, polls, 1.0, LIMITS) / scale)):
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(job, i)
        level.seconds = (time.monotonic() - start) * scale
    level.completed = outcomes.count("completed")
    level.failed = len(outcomes) - level.completed
    _settle(fake, timeline, level, scale)
    return level


async def measure(levels: list[int], scale: float, polls: int) -> list[tuple[Level, Level]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-youcam-"))
    rows = []
    for n in levels:
        ours = await run_ours(n, scale, polls, tmp)
        naive = await run_naive(n, scale, polls, tmp)
        rows.append((ours, naive))
    return rows


def report(rows: list[tuple[Level, Level]], scale: float, polls: int, loads: tuple[str, str]) -> list[str]:
    interval = INTERVAL_MS / 1000
    out = [
        TITLE,
        "",
        "| jobs | client | completed | 429s | lost tasks | longest poll gap | peak running | total time "
        "| theoretical min | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ours, naive in rows:
        tm = t_min(ours.n, polls, interval, LIMITS)
        for name, lv in (("photo-mcp", ours), ("naive", naive)):
            ratio = f"{lv.seconds / tm:.2f}×" if lv.completed == lv.n else "n/a (jobs failed)"
            out.append(
                f"| {lv.n} | {name} | {lv.completed}/{lv.n} | {lv.rate_limited} | {lv.lost} | {lv.max_gap:.1f} s "
                f"| {lv.peak} | {lv.seconds:.1f} s | {tm:.1f} s | {ratio} |"
            )
    r = requests_per_job(polls)
    out += [
        "",
        f"Fake YouCam: limits {', '.join(f'{c}/{s:g} s' for c, s in LIMITS)} per token, loss window {LOSS_S:g} s, "
        f"polling_interval {INTERVAL_MS} ms, {polls} 'running' answers before 'success' (p = {polls}); "
        f"R = p + 3 = {r} counted requests per job. All durations divided by {scale:g} while running "
        "(YOUCAM_RATE_LIMITS and YOUCAM_MAX_POLL_GAP too); times shown × "
        f"{scale:g}. T_min(N) = max over windows (C, S) of (⌈N / ⌊C/R⌋⌉ − 1)·S + p·I. Targets for photo-mcp: "
        "0 429s, 0 lost tasks, ratio ≤ 1.10. Load average "
        f"{loads[0]} before, {loads[1]} after.",
    ]
    windows = [Window(c, s) for c, s in LIMITS]
    per = {w: math.ceil(w.guarded / GAP_S) for w in windows}
    k_star = min((w.count // (2 + per[w]) for w in windows), default=0)
    out.append(
        "The limiter's proof (limits.py): a task that never ends needs "
        + ", ".join(f"⌈{w.guarded:g} / {GAP_S:g}⌉ = {per[w]} polls per {w.seconds:g} s window" for w in windows)
        + f", so at most k* = {k_star} tasks (each with its file create and run-task) can be kept pollable "
        "forever: no scheduler polling every 8 s that must never lose a task of unknown length can run more at once."
    )
    for ours, _ in rows:
        if ours.notes:
            out.append(f"photo-mcp failures at {ours.n} jobs: {ours.notes[:3]}")
    return out


def run(quick: bool, scale: float = 5.0, levels: list[int] | None = None, polls: int = 5) -> list[str]:
    if quick:
        scale, levels, polls = 20.0, [1, 3], 2
    levels = levels or [1, 3, 6, 12, 24]
    before = load()
    rows = anyio.run(measure, levels, scale, polls)
    return report(rows, scale, polls, (before, load()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=5.0, help="divide every duration by this")
    parser.add_argument("--levels", default="1,3,6,12,24", help="concurrent jobs per level")
    parser.add_argument("--polls", type=int, default=5, help="'running' answers before success (p)")
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    print("\n".join(run(args.quick, args.scale, levels, args.polls)), flush=True)


if __name__ == "__main__":
    main()
