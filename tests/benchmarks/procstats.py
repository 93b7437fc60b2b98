"""What the benchmarks read about processes and the machine, from /proc (Linux)."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    rss_mb: float  # VmRSS
    hwm_mb: float  # VmHWM: peak RSS since the process started
    threads: int
    fds: int  # open file descriptors


def sample(pid: int) -> Sample:
    """RSS, peak RSS, threads and open files of `pid`.

    Raises:
        OSError: the process is gone (or /proc is not there).
    """
    fields: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()

    def mb(key: str) -> float:
        return int(fields.get(key, "0 kB").split()[0]) / 1024

    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Sample(mb("VmRSS"), mb("VmHWM"), int(fields.get("Threads", "0")), fds)


def children(pid: int | None = None) -> list[int]:
    """Direct child processes of `pid` (default: this process)."""
    pid = pid or os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
