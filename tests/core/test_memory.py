"""Image memory (tools/core/memory.py), measured in a process of its own with the allocator tuned
as the server tunes it: one call's buffers are reused warm by the next, and a whole-size decode's
memory goes back to the OS when it is freed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, resource, sys
import anyio
from tools.core import images, memory

assert memory.tune_allocator(), "glibc expected"

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

def work():
    # What one edit holds: a 5 MB input, a 6 MB decode, two smaller buffers (all below 8 MB).
    bufs = [bytearray(n << 20) for n in (5, 6, 4, 3)]
    del bufs

def whole_size_decode():
    bytearray(40 << 20)  # a 10 MP RGBA image: a mapping of its own

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

async def main():
    out = {}
    await images.in_worker(work)  # warm: the heap now holds one call's worth
    before = faults()
    await images.in_worker(work)
    out["faults_second_call"] = faults() - before
    base, big = rss_mb(), faults()
    await images.in_worker(whole_size_decode)
    out["faults_big"] = faults() - big
    out["rss_after_big_mb"] = rss_mb() - base
    print(json.dumps(out))

anyio.run(main)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_an_edits_buffers_are_reused_and_a_whole_size_decode_goes_back_to_the_os() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # 18 MB of buffers would be ~4,600 fresh pages; reused, they fault in next to none.
    assert out["faults_second_call"] < 200, out
    # 40 MB is mapped on its own: faulted in (~10,000 pages) and given back to the OS when freed.
    assert out["faults_big"] > 9000, out
    assert out["rss_after_big_mb"] < 4, out
