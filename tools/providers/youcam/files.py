"""YouCam inputs: fit each image to its feature's limits, reuse what YouCam already holds, upload.

    POST /s2s/v1.0/file/{slug}   -> file_id + a presigned request (method, url, headers)
    PUT  <presigned url>         the bytes, its headers verbatim, no Authorization

A `photo://` result that came from YouCam reuses its `dst_id` (kept 30 days), and the same
bytes uploaded for the same feature within half a day reuse the earlier file id (uploads are
kept one day). Face features (seed 003 size table: face width >= 128 px) are refused before
upload when the fitted photo is too narrow to hold such a face.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from PIL import Image

from tools.core import fitting, images
from tools.core.errors import InvalidInput, ProviderError
from tools.core.fitting import Encoded
from tools.core.refs import ImageSource
from tools.providers.base import JobHooks
from tools.providers.http import send
from tools.providers.youcam.limits import Ticket
from tools.providers.youcam.spec import CONTENT_TYPES, FEATURES, MIN_FACE_WIDTH
from tools.providers.youcam.wire import YouCamWire

UPLOAD_TTL_S = 12 * 3600.0  # uploads are kept 1 day
DST_REUSE_S = 29 * 86400.0  # results are kept 30 days


@dataclass
class Input:
    key: str  # src_ids | ref_ids | mask_ids
    source: ImageSource | None
    size: tuple[int, int]
    encoded: Encoded | None = None
    reuse: str | None = None  # a YouCam file id already on the server (dst_id)
    shrunk: float = 1.0  # fitted width / original width


class YouCamFiles(YouCamWire):
    """Preparing and uploading task inputs; the client in client.py builds on it."""

    slugs: dict[str, str]
    _max_pixels: int
    _uploads: dict[tuple[str, str], tuple[str, float]]

    def slug(self, feature: str) -> str:
        return self.slugs[feature]

    async def _prepare(self, feature: str, key: str, source: ImageSource) -> Input:
        """Reuse a YouCam result's dst_id when it fits the feature, else fit the image for upload.

        Raises:
            InvalidInput: the image is unusable, or too narrow for a face feature's face limit.
        """
        limits = FEATURES[feature].limits
        assert limits is not None
        rec = source.result
        dst = (rec.meta.get("provider_ref") or {}).get("dst_id") if rec is not None else None
        if rec is not None and rec.provider == self.name and isinstance(dst, str) and dst:
            fits = (
                max(rec.width, rec.height) <= (limits.max_side or 1 << 30)
                and rec.bytes <= (limits.max_bytes or 1 << 60)
                and rec.mime_type in {images.MIME_OF[f] for f in limits.formats}
                and time.time() - rec.created_at < DST_REUSE_S
            )
            if fits:
                return Input(key, source, (rec.width, rec.height), reuse=dst)
        inp = await self._fit(key, source, limits)
        if FEATURES[feature].face and key == "src_ids":
            _check_face_room(inp)
        return inp

    async def _fit(self, key: str, source: ImageSource, limits: fitting.FitLimits) -> Input:
        load = await source.reader()  # a file is read once a worker is free to fit it

        def work() -> tuple[images.ImageInfo, Encoded]:
            data = load()
            return images.probe(data, self._max_pixels), fitting.fit(data, limits, self._max_pixels)

        info, enc = await images.in_worker(work)
        # `info` is as displayed (EXIF orientation applied), like the fitted image.
        return Input(key, source, (enc.width, enc.height), encoded=enc, shrunk=enc.width / max(1, info.width))

    def _cached(self, slug: str, inp: Input) -> str | None:
        if inp.encoded is None:
            return None
        hit = self._uploads.get((slug, hashlib.sha256(inp.encoded.data).hexdigest()))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    async def _file_id(
        self, feature: str, inp: Input, ticket: Ticket, hooks: JobHooks, fresh: bool
    ) -> tuple[str, bool]:
        """(file id, whether it was reused rather than uploaded just now)."""
        slug = self.slug(feature)
        if not fresh:
            if inp.reuse:
                return inp.reuse, True
            if cached := self._cached(slug, inp):
                return cached, True
        if inp.encoded is None:
            assert inp.source is not None
            limits = FEATURES[feature].limits
            assert limits is not None
            inp.encoded = (await self._fit(inp.key, inp.source, limits)).encoded
        enc = inp.encoded
        assert enc is not None
        await hooks.progress("uploading to YouCam", 0.1)
        ctype = CONTENT_TYPES[enc.mime_type]
        files = [{"content_type": ctype, "file_name": f"{inp.key.split('_')[0]}.{enc.extension}"}]
        body = self._json(
            await self._api("POST", f"/file/{slug}", kind="file", ticket=ticket, json={"files": files}), "file upload"
        )
        try:
            entry = body["result"]["files"][0]
            file_id, put = str(entry["file_id"]), entry["requests"][0]
            method, url = str(put.get("method") or "PUT"), str(put["url"])
            headers = {str(k): str(v) for k, v in (put.get("headers") or {}).items()}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderError(
                "YouCam's file-create answer was not understood. Nothing was charged.", provider=self.name
            ) from None
        # The presigned URL: its method and headers verbatim (they are signed), no Authorization.
        response = await send(
            self._http,
            method,
            url,
            provider=self.name,
            idempotent=True,
            policy=self._policy,
            content=enc.data,
            headers=headers,
        )
        if response.status_code >= 300:
            raise ProviderError(
                f"Uploading the image to YouCam's storage failed (HTTP {response.status_code}). Nothing was charged; "
                "try again.",
                provider=self.name,
                retryable=True,
            )
        self._uploads[(slug, hashlib.sha256(enc.data).hexdigest())] = (file_id, time.monotonic() + UPLOAD_TTL_S)
        return file_id, False


def face_advice(shrunk: float) -> str:
    """What to tell the user when YouCam finds no usable face in a photo fitted by `shrunk`."""
    if shrunk >= 0.999:
        return f"make sure the face is at least {MIN_FACE_WIDTH} px wide"
    need = math.ceil(MIN_FACE_WIDTH / shrunk)
    return (
        f"the photo was reduced to YouCam's 1024 px limit, so the face must be at least {need} px wide in the "
        f"original to stay {MIN_FACE_WIDTH} px wide: crop the photo closer to the face"
    )


def _check_face_room(inp: Input) -> None:
    # The face can be no wider than the photo: a fitted photo narrower than the face limit cannot pass.
    width = inp.size[0]
    if width < MIN_FACE_WIDTH:
        raise InvalidInput(
            f"This photo is {width} px wide after fitting to YouCam's limits, so it cannot hold a face "
            f"{MIN_FACE_WIDTH} px wide (YouCam's minimum for hair and face features). Use a larger photo, "
            "or crop a wide photo to the person. Nothing was sent or charged."
        )


def fit_mask(mask_png: bytes, size: tuple[int, int], max_pixels: int) -> Encoded:
    """The mask as a grayscale PNG of exactly `size` (the uploaded photo's size)."""
    mask = images.decode(mask_png, max_pixels).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return Encoded(images.encode(mask, "png"), "image/png", *size)
