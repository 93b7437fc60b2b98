"""Per-call overhead: `remove_background` via Aluo through MCP over stdio, vs a bare httpx2 script
doing the same HTTP sequence (multipart upload to /api/remove-bg, JSON answer, result download
from /cdn, file write), both against the fake Aluo on loopback (TCP_NODELAY, zero latency).

    python -m tests.benchmarks.bench_overhead [--calls 50] [--rounds 3] [--quick]

photo-mcp's side includes all of its per-call work: the JSON-RPC round trip over stdio, the job
(SQLite rows), sniffing the input, writing the result atomically (fsync) and indexing it, and the
inline preview (decode, downscale, encode, base64). Two inputs: a tiny PNG (the fixed cost) and a
1024×768 JPEG photo (adds the preview of a 1024×768 cut-out). The bare script runs in its own
process, as photo-mcp does, so both sides pay the same loopback hops to the fake. Blocks of calls
alternate between the sides so machine noise hits them alike.

A third side is the floor: a bare `MCPServer` over stdio whose one tool does the bare script's
HTTP sequence (tests/benchmarks/bare_mcp_cutout.py). What it adds over the bare script is MCP's
own cost over stdio, which no MCP server can avoid. A fourth keeps photo-mcp's output contract
on top of that (tests/benchmarks/contract_mcp_cutout.py: the file written whole with fsync, its
pixels decoded for the preview, the summary, link, inline image and structured result): what it
adds is the contract's cost, and what photo-mcp adds beyond it is ours (the job's row, the
ledger, the result index, the sandbox, fitting, routing, the middleware).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from PIL import Image, ImageFilter

from tests.benchmarks.procstats import load
from tests.fakes.aluo import FakeAluo
from tests.fakes.images import image_bytes
from tests.fakes.loopback import serve
from tests.support import server_env, stdio_params

ROOT = Path(__file__).resolve().parents[2]
TITLE = "### Per-call overhead: remove_background via Aluo over stdio vs a bare httpx2 script"


def photo_jpeg(width: int, height: int) -> bytes:
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.effect_noise((width // 4, height // 4), 50).resize((width, height)).convert("RGB")
    buf = io.BytesIO()
    Image.blend(base, noise, 0.3).filter(ImageFilter.SMOOTH).save(buf, "JPEG", quality=90)
    return buf.getvalue()


async def bare_script(api: str, key: str, src: Path, mime: str, out_dir: Path, warmup: int, calls: int) -> dict:
    """The baseline, run in its own process like photo-mcp: what a hand-written httpx2 script does
    for each cut-out, on one keep-alive client. Returns the per-call times and the block's total."""
    auth = {"Authorization": f"Bearer {key}"}
    times: list[float] = []
    async with httpx2.AsyncClient(timeout=30) as http:
        for i in range(warmup + calls):
            t0 = time.perf_counter()
            if i == warmup:
                start, cpu0 = t0, time.process_time()
            data = src.read_bytes()
            r = await http.post(f"{api}/remove-bg", files={"file": (src.name, data, mime)}, headers=auth)
            r.raise_for_status()
            result = await http.get(r.json()["data"]["url"])
            result.raise_for_status()
            (out_dir / f"cutout-{i}.png").write_bytes(result.content)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return {"times": times, "total": time.perf_counter() - start, "cpu": time.process_time() - cpu0}


async def _bare_block(api: str, key: str, src: Path, mime: str, out_dir: Path, warmup: int, calls: int):
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_overhead", "--bare-worker"]
    cmd += [json.dumps([api, key, str(src), mime, str(out_dir), warmup, calls])]
    proc = await anyio.run_process(cmd, cwd=ROOT)
    out = json.loads(proc.stdout)
    return out["times"], out["total"]


def bare_mcp_params(
    tmp: Path, api: str, key: str, out_dir: Path, module: str = "bare_mcp_cutout"
) -> StdioServerParameters:
    """The floor: a bare MCPServer whose tool does the bare script's HTTP sequence (its own process);
    `module="contract_mcp_cutout"`: the same, keeping photo-mcp's output contract."""
    env = server_env(tmp, BARE_API=api, BARE_KEY=key, BARE_OUT=str(out_dir), PYTHONPATH=str(ROOT))
    return StdioServerParameters(command=sys.executable, args=["-m", f"tests.benchmarks.{module}"], env=env)


async def _ours(client: Client, src: Path) -> None:
    result = await client.call_tool("remove_background", {"image": str(src), "provider": "aluo"})
    if result.is_error:
        raise RuntimeError(f"remove_background failed: {result.content[0].text}")  # type: ignore[union-attr]


async def _ours_block(client: Client, src: Path, warmup: int, calls: int) -> tuple[list[float], float]:
    for _ in range(warmup):
        await _ours(client, src)
    times = []
    start = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        await _ours(client, src)
        times.append(time.perf_counter() - t0)
    return times, time.perf_counter() - start


async def measure(calls: int, rounds: int, warmup: int, cases: list[tuple[str, str, bytes, str]]) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work, bare_out, mcp_out, contract_out = tmp / "work", tmp / "bare", tmp / "bare-mcp", tmp / "contract"
    for d in (work, bare_out, mcp_out, contract_out):
        d.mkdir()
    fake = FakeAluo(credits=10**9)
    rows = []
    async with serve(fake.app) as served:
        api = FakeAluo.api_base(served)
        params = stdio_params(tmp, ALUO_API_KEY=fake.api_key, ALUO_BASE_URL=api, PHOTO_MCP_BACKGROUND_PROVIDERS="aluo")
        floor = bare_mcp_params(tmp, api, fake.api_key, mcp_out)
        kept = bare_mcp_params(tmp, api, fake.api_key, contract_out, "contract_mcp_cutout")
        async with Client(params) as client, Client(floor) as bare_mcp, Client(kept) as contract:
            servers = {"ours": client, "mcp": bare_mcp, "contract": contract}
            for label, name, data, mime in cases:
                src = work / name
                src.write_bytes(data)
                sides = ("bare", "mcp", "contract", "ours")
                times: dict[str, list[float]] = {side: [] for side in sides}
                totals: dict[str, list[float]] = {side: [] for side in sides}
                before = len(fake.charges)
                for r in range(rounds):  # rotate which side goes first
                    for side in sides[r % 4 :] + sides[: r % 4]:
                        if side == "bare":
                            t, total = await _bare_block(api, fake.api_key, src, mime, bare_out, warmup, calls)
                        else:
                            t, total = await _ours_block(servers[side], src, warmup, calls)
                        times[side] += t
                        totals[side].append(total)
                assert len(fake.charges) - before == len(sides) * (calls + warmup) * rounds  # every call reached it
                row: dict = {"label": label}
                for side in sides:
                    row[side] = statistics.median(times[side])
                    row[f"{side}_total"] = statistics.mean(totals[side])
                rows.append(row)
    return rows


def report(rows: list[dict], calls: int, rounds: int, load_start: str, load_end: str) -> list[str]:
    out = [
        TITLE,
        "",
        "| input | photo-mcp median | bare httpx2 median | overhead per call | ratio "
        "| floor: bare MCPServer + httpx2 | MCP's own share | floor keeping the output contract "
        "| the contract's share | ours beyond it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['label']} | {r['ours'] * 1000:.1f} ms | {r['bare'] * 1000:.1f} ms | "
            f"{(r['ours'] - r['bare']) * 1000:+.1f} ms | {r['ours_total'] / r['bare_total']:.2f}× | "
            f"{r['mcp'] * 1000:.1f} ms ({r['mcp_total'] / r['bare_total']:.2f}×) | "
            f"{(r['mcp'] - r['bare']) * 1000:+.1f} ms | "
            f"{r['contract'] * 1000:.1f} ms ({r['contract_total'] / r['bare_total']:.2f}×) | "
            f"{(r['contract'] - r['mcp']) * 1000:+.1f} ms | {(r['ours'] - r['contract']) * 1000:+.1f} ms |"
        )
    out.append("| target | | | ≤ 4 ms | ≤ 1.5× | | | | | |")
    out += [
        "",
        f"{calls} sequential calls per block, {rounds} block(s) per side, medians over all calls (ratios: "
        f"block totals); load average {load_start} before, {load_end} after.",
    ]
    return out


def run(quick: bool, calls: int = 50, rounds: int = 3) -> list[str]:
    if quick:
        calls, rounds = 4, 1
    cases = [("64×48 PNG", "small.png", image_bytes(64, 48, "png"), "image/png")]
    if not quick:
        cases.append(("1024×768 JPEG photo", "photo.jpg", photo_jpeg(1024, 768), "image/jpeg"))
    load_start = load()
    rows = anyio.run(measure, calls, rounds, 1 if quick else 3, cases)
    return report(rows, calls, rounds, load_start, load())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="sequential calls per block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per side (the order rotates)")
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke mode)")
    parser.add_argument("--bare-worker", metavar="JSON", help=argparse.SUPPRESS)  # the baseline's own process
    args = parser.parse_args(argv)
    if args.bare_worker:
        api, key, src, mime, out_dir, warmup, calls = json.loads(args.bare_worker)
        result = anyio.run(bare_script, api, key, Path(src), mime, Path(out_dir), warmup, calls)
        print(json.dumps(result))
        return
    print("\n".join(run(args.quick, args.calls, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
