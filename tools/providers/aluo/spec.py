"""Aluo facts, as data: upload limits, plans and prices (each with its basis and source).

Prices (credits) per plan. `basis` is "documented" when a seed gives the number, "estimated"
when none does (seed 000 only says "All business APIs consume credits"; its remove-bg and
ai-generate-background sections show "Credit Cost" with no amount).

| operation                   | Free | PRO | basis      | source                                             |
|-----------------------------|------|-----|------------|----------------------------------------------------|
| remove_background           | 1    | 1   | estimated  | seed 000 (no amount given)                         |
| generate_background         | 1    | 1   | estimated  | seed 000 (no amount given)                         |
| edit_photo (per edit)       | 40   | 35  | documented | seed 001 "Credits & Processing Time": credits/edit |
| generate_product_photo:1/2/4| 40/80/160 | 35/70/140 | documented | seed 002 "Credits & Processing Time"      |

An edit asking for several output images is estimated at the per-edit price times the
number of images (seed 002 bills generation per image; seed 001 is silent on numImages).
"""

from __future__ import annotations

from typing import Literal

from tools.core.fitting import FitLimits

Plan = Literal["free", "pro"]
Basis = Literal["documented", "estimated"]

# remove-bg documents PNG/JPG/WebP "Maximum file size: 10MB" and "up to 4096x4096"; the editor
# uses the same. "10MB" read conservatively as 10,000,000 bytes.
MAX_UPLOAD_BYTES = 10_000_000
UPLOAD_LIMITS = FitLimits(max_side=4096, max_bytes=MAX_UPLOAD_BYTES, formats=("png", "jpeg", "webp"))
MAX_EDIT_IMAGES = 5
VARIANTS = (1, 2, 4)

# operation -> (credits, basis), per plan. The lead's registry reads these.
PRICES: dict[Plan, dict[str, tuple[float, Basis]]] = {
    "free": {
        "remove_background": (1, "estimated"),
        "generate_background": (1, "estimated"),
        "edit_photo": (40, "documented"),
        "generate_product_photo:1": (40, "documented"),
        "generate_product_photo:2": (80, "documented"),
        "generate_product_photo:4": (160, "documented"),
    },
    "pro": {
        "remove_background": (1, "estimated"),
        "generate_background": (1, "estimated"),
        "edit_photo": (35, "documented"),
        "generate_product_photo:1": (35, "documented"),
        "generate_product_photo:2": (70, "documented"),
        "generate_product_photo:4": (140, "documented"),
    },
}
SOURCES: dict[str, str] = {
    "remove_background": "seed 000 (Credit Cost shown without an amount)",
    "generate_background": "seed 000 (Credit Cost shown without an amount)",
    "edit_photo": "seed 001, Credits & Processing Time (per edit)",
    "generate_product_photo": "seed 002, Credits & Processing Time (per variant count)",
}

# Kept for the tool modules that import them (Free plan).
EDIT_PRICE = PRICES["free"]["edit_photo"][0]
GENERATE_PRICE = {n: PRICES["free"][f"generate_product_photo:{n}"][0] for n in VARIANTS}


def edit_price(num_images: int = 1, plan: Plan = "free") -> tuple[float, Basis]:
    """An edit's price: per edit as documented, times the output images (an estimate beyond one)."""
    credits, basis = PRICES[plan]["edit_photo"]
    return credits * max(1, num_images), basis if num_images <= 1 else "estimated"


def generate_price(variants: int = 1, plan: Plan = "free") -> tuple[float, Basis]:
    """A product-photo generation's price for 1, 2 or 4 variants (other counts: per variant, estimated)."""
    key = f"generate_product_photo:{variants}"
    if key in PRICES[plan]:
        return PRICES[plan][key]
    return PRICES[plan]["generate_product_photo:1"][0] * variants, "estimated"


def call_price(
    operation: Literal["remove_background", "generate_background"], plan: Plan = "free"
) -> tuple[float, Basis]:
    return PRICES[plan][operation]


# Where result files come from: the seeds' examples download from https://cdn.aluo.ai/… (providers.md §2).
# A name allows its subdomains; the API's own host is always allowed (tools/providers/http.py ResultDownloads).
RESULT_HOSTS: tuple[str, ...] = ("aluo.ai",)
