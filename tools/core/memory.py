"""Image memory: where the C allocator puts decoded images.

Decoded images are large and short-lived. glibc serves an allocation above its mmap threshold
with a mapping of its own, returned to the OS when freed but page-faulted in afresh every time
(~1.7 µs per 4 KB page here); below it, from a heap, where freed memory is reused warm, and
given back only when more than the trim threshold lies free at the heap's end.

`tune_allocator` puts the mmap threshold at 8 MB. A whole-size decode (a 24 MP photo is ~100 MB,
its 4096 px fit ~45 MB) still goes back to the OS the moment it is freed, so 20 concurrent calls
cannot leave the process at its high-water mark (1.7 GB with glibc's own, growing threshold);
the buffers of an ordinary edit (a 5 MB input, its quarter-scale decode, the 1024 px result and
its preview) are reused instead of faulting in ~6,400 new pages per call, 10 ms of a 24 MP
resize at the 128 KB threshold used before. Each heap keeps up to 24 MB free for the next call
(a worker thread's heap is not trimmed by `malloc_trim`, only by this threshold), and there are
as many heaps as cores, not glibc's eight per core: the 14 threads of a loaded HTTP server
otherwise each kept their own (210 MB after the load test instead of 129 MB).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

MMAP_THRESHOLD = 8 * 2**20
TRIM_THRESHOLD = 24 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # mallopt(3)


def tune_allocator() -> bool:
    """Set glibc's thresholds and heap count for this process, before it starts threads (see the
    module docstring); False where the C library is not glibc (nothing is changed)."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        heaps = max(2, os.cpu_count() or 2)
        settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, heaps))
        return all(libc.mallopt(option, value) for option, value in settings)
    return False
