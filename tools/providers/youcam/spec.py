"""YouCam s2s v1.0 facts the client is built on: features, slugs, limits, engine error advice
(shared/providers.md §1.4, §1.5, §1.8).

Slugs marked inferred in providers.md (wig, obj-removal, aging, colorize) or of medium
confidence live in this one table; `YOUCAM_SLUGS` overrides any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tools.core.fitting import FitLimits

MAX_BYTES = 10_000_000 - 1  # "< 10MB", read conservatively (decimal megabytes)
MIN_FACE_WIDTH = 128  # hair features: "face width >= 128" (seed 003 size table)
_HAIR_JPG = FitLimits(1024, MAX_BYTES, ("jpeg",))  # hairstyle generator: jpg only
_FACE = FitLimits(1024, MAX_BYTES, ("jpeg", "png"))
_PHOTO = FitLimits(4096, MAX_BYTES, ("jpeg", "png"))


@dataclass(frozen=True)
class Feature:
    slug: str
    limits: FitLimits | None  # None: no file step (text-to-image)
    output_ext: str  # the default `output_ext`
    cost: float = 1.0  # units per successful task (charged on success only); estimated, see PRICES
    formats: tuple[str, ...] = ()  # other `output_ext` values the seed allows (its Enum)
    face: bool = False  # the face-width / pose limits apply (hair features)

    @property
    def output_formats(self) -> tuple[str, ...]:
        return (self.output_ext, *(f for f in self.formats if f != self.output_ext))


FEATURES: dict[str, Feature] = {
    "hairstyle": Feature("hair-style", _HAIR_JPG, "jpg", face=True),
    "wig": Feature("wig", _FACE, "jpg", face=True),
    "hair_extension": Feature("hair-ext", _FACE, "jpg", face=True),
    "bangs": Feature("hair-bang", _FACE, "jpg", face=True),
    "hair_volume": Feature("hair-vol", _FACE, "jpg", face=True),
    "aging": Feature("aging", _FACE, "jpg"),
    "makeup": Feature("mu-trans-rec", _FACE, "jpg"),
    # seed 003: output_ext Enum "jpg" "webp" (object removal, colorize, enhance), "png" "webp" (SOD)
    "object_removal": Feature("obj-removal", _PHOTO, "jpg", formats=("webp",)),
    "colorize": Feature("colorize", _PHOTO, "jpg", formats=("webp",)),
    "background": Feature("sod", _PHOTO, "png", formats=("webp",)),
    "enhance": Feature("enhance", _PHOTO, "jpg", formats=("webp",)),
    "image_generator": Feature("text-to-image", None, "jpg"),
}
# operation (feature name) -> (units, basis). The seeds give no per-task price: YouCam reports
# nothing per task either (only the balance), so every price here is our estimate.
PRICES: dict[str, tuple[float, Literal["documented", "estimated"]]] = {
    name: (f.cost, "estimated") for name, f in FEATURES.items()
}
PRICE_SOURCE = "estimated: seed 003 documents units and a balance endpoint, but no per-task price"
CATALOG_FEATURES = ("hairstyle", "wig", "hair_extension", "bangs", "hair_volume", "image_generator")
CONTENT_TYPES = {"image/jpeg": "image/jpg", "image/png": "image/png"}


def slug_table(overrides: dict[str, str]) -> dict[str, str]:
    """Feature name -> slug, with `overrides` keyed by feature name or by default slug.

    Raises:
        ValueError: an override names no known feature.
    """
    table = {name: f.slug for name, f in FEATURES.items()}
    by_slug = {f.slug: name for name, f in FEATURES.items()}
    for key, slug in overrides.items():
        name = key if key in table else by_slug.get(key)
        if name is None:
            raise ValueError(f"YOUCAM_SLUGS names an unknown feature {key!r}; known: {', '.join(table)}")
        table[name] = slug
    return table


# Engine error codes (§1.5) -> (advice for the model, whether trying again can help).
ENGINE_ERRORS: dict[str, tuple[str, bool]] = {
    "exceed_max_filesize": ("the file is larger than YouCam accepts (under 10 MB): use a smaller image", False),
    "error_exceed_max_image_size": ("the image is larger than YouCam accepts: downscale it", False),
    "invalid_parameter": ("YouCam rejected a parameter (a mask must be exactly the photo's size)", False),
    "error_download_image": ("YouCam could not fetch the uploaded photo: try again", True),
    "error_download_mask": ("YouCam could not fetch the uploaded mask: try again", True),
    "error_decode_image": ("YouCam could not decode the photo: re-save it as a plain JPEG or PNG", False),
    "error_decode_mask": ("YouCam could not decode the mask: pass a grayscale PNG (white = remove)", False),
    "error_nsfw_content_detected": ("the photo was flagged as NSFW: use a different photo", False),
    "error_no_face": ("no face found: use a clear, front-facing photo of one person", False),
    "error_pose": ("the pose could not be detected: use an upright photo with the head and shoulders visible", False),
    "error_face_parsing": ("the face could not be segmented: use a sharp, well-lit, unobstructed face", False),
    "error_inference": ("the YouCam engine failed on this photo: try again, or use another photo", True),
    "exceed_nsfw_retry_limits": (
        "the results kept being flagged as NSFW: use a different photo, style or prompt",
        False,
    ),
    "error_upload": ("YouCam could not store the result: try again", True),
    "error_multiple_people": ("several people were found: crop the photo to one person", False),
    "error_no_shoulder": ("the shoulders are not visible: use a photo showing head and shoulders", False),
    "error_large_face_angle": (
        "the face is turned too far: use a front-facing photo (yaw within ±45°, pitch ±10°, roll ±15°)",
        False,
    ),
    "unknown_internal_error": ("YouCam had an internal error: try again later", True),
}


def engine_advice(code: str | None, message: str | None) -> tuple[str, bool]:
    if code in ENGINE_ERRORS:
        return ENGINE_ERRORS[code]
    return (f"the YouCam engine failed ({message or code or 'no reason given'})", True)


@dataclass(frozen=True)
class Style:
    """One catalog entry: a style group or a style. Ids exceed 2^53: always ints, never floats."""

    id: int
    title: str
    thumbnail: str | None = None


@dataclass(frozen=True)
class StylePage:
    items: list[Style]
    next_cursor: str | None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def parse_page(result: dict[str, Any]) -> StylePage:
    """A catalog page, read tolerantly (providers.md §4.2): `groups`/`style_groups`/`styles`/
    `templates`; `info.title`/`info.thumb` or flat `title`/`thumb`."""
    raw = next(
        (result[k] for k in ("groups", "style_groups", "styles", "templates") if isinstance(result.get(k), list)), []
    )
    items = []
    for entry in raw:
        if not isinstance(entry, dict) or (sid := _as_int(entry.get("id"))) is None:
            continue
        info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
        title = info.get("title") or entry.get("title") or entry.get("name") or ""
        thumb = info.get("thumb") or entry.get("thumb") or entry.get("thumbnail")
        items.append(Style(sid, str(title), str(thumb) if thumb else None))
    token = result.get("next_token")
    return StylePage(items, str(token) if token not in (None, "", "null") else None)


# Where result files come from: not documented (the seed shows https://…/result.jpg), so any public https host.
# The API's own host is always allowed (tools/providers/http.py ResultDownloads).
RESULT_HOSTS: tuple[str, ...] = ()
