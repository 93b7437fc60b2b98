"""Removedo facts, as data (seed 004, providers.md §3): paths, limits, price, the time estimate.

| operation          | credits | basis      | source                                                    |
|--------------------|---------|------------|-----------------------------------------------------------|
| remove_background  | 1       | documented | seed 004, Credit System: "Each API call consumes 1 credit" |

Refunds: the seed's "Credit Refunds" section is empty, so nothing here assumes one.
"""

from __future__ import annotations

import re
from typing import Literal

from tools.core.fitting import FitLimits

Basis = Literal["documented", "estimated"]

SUBMIT_PATH = "/api/v1/remove-bg"
JOB_PATH = "/api/v1/jobs/{job_id}"
WEBHOOK_PATH = "/webhooks/removedo/{secret}"
# Documented: JPEG, PNG or WEBP. Size limits are undocumented; these are the common ones of the
# other background-removal APIs (10 MB read as 10,000,000 bytes, 4096 px), so big photos are fitted first.
LIMITS = FitLimits(max_side=4096, max_bytes=10_000_000, formats=("png", "jpeg", "webp"))
MAX_WAIT_S = 30 * 60.0  # documented estimate: 30-60 s; give up (charged) far beyond it
EXPECTED_S = 45.0  # for the progress fraction when the answer carries no estimate
BAD_POLL_BUDGET = 2  # consecutive status answers that are not JSON tolerated before giving up

# operation -> (credits, basis). The lead's registry reads these.
PRICES: dict[str, tuple[float, Basis]] = {"remove_background": (1, "documented")}
SOURCES: dict[str, str] = {"remove_background": "seed 004, Credit System (1 credit per API call)"}
REFUND_NOTE = "Removedo's documents do not say whether failed jobs are refunded; check your balance at removedo.com"

_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_estimate(value: object) -> tuple[float, float] | None:
    """`estimatedCompletionTime` as (low, high) seconds: "30-60 seconds", "45 s", "1-2 minutes", 45.

    The seed shows one sample string; anything unreadable gives None.
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value), float(value)
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:(?:-|–|to)\s*(\d+(?:\.\d+)?))?\s*([a-z]+?)s?\.?\s*", value.lower())
    if m is None or (m[3] not in _UNITS):
        return None
    unit = _UNITS[m[3]]
    low = float(m[1]) * unit
    high = float(m[2]) * unit if m[2] else low
    return (low, high) if 0 < low <= high else None


# Where result files come from: not documented (providers.md §3), so any public https host.
# The API's own host is always allowed (tools/providers/http.py ResultDownloads).
RESULT_HOSTS: tuple[str, ...] = ()
