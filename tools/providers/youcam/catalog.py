"""YouCam style catalogs (hair features and text-to-image) and the credit balance.

    GET /s2s/v1.0/task/style-group/{slug}?page_size=&starting_token=
    GET /s2s/v1.0/task/style/{slug}?style_group_id=&page_size=&starting_token=
    GET /s2s/v1.0/client/credit

Pages are cached for `catalog_ttl` seconds; listings are read tolerantly (spec.parse_page).
"""

from __future__ import annotations

import time
from typing import Any

from tools.core.errors import InvalidInput
from tools.providers.base import Balance
from tools.providers.youcam.files import YouCamFiles
from tools.providers.youcam.spec import Style, StylePage, parse_page
from tools.providers.youcam.wire import error_code


class YouCamCatalog(YouCamFiles):
    _catalog_ttl: float
    _catalog: dict[tuple[Any, ...], tuple[float, StylePage]]

    async def _catalog_page(self, kind: str, feature: str, group_id: int | None, cursor: str | None) -> StylePage:
        slug = self.slug(feature)
        key = (kind, slug, group_id, cursor or "")
        hit = self._catalog.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        params: dict[str, str] = {"page_size": "20"}
        if group_id is not None:
            params["style_group_id"] = str(group_id)
        if cursor:
            params["starting_token"] = cursor
        response = await self._api("GET", f"/task/{kind}/{slug}", kind="other", params=params)
        if response.status_code == 400 and error_code(response) not in ("InvalidStyleGroup", "InvalidStyle") and cursor:
            raise InvalidInput("That cursor is not valid for this listing; start again without a cursor.")
        if response.status_code == 400 and error_code(response) == "InvalidStyleGroup":
            raise InvalidInput(f"{group_id} is not a {feature} style group: call list_style_groups('{feature}').")
        page = parse_page(self._json(response, "style catalog").get("result") or {})
        self._catalog[key] = (time.monotonic() + self._catalog_ttl, page)
        return page

    async def style_groups(self, feature: str, cursor: str | None = None) -> StylePage:
        return await self._catalog_page("style-group", feature, None, cursor)

    async def styles(self, feature: str, style_group_id: int, cursor: str | None = None) -> StylePage:
        return await self._catalog_page("style", feature, style_group_id, cursor)

    async def _all(self, feature: str, group_id: int | None) -> list[Style]:
        items, cursor = [], None
        for _ in range(50):
            page = await (
                self.styles(feature, group_id, cursor) if group_id is not None else self.style_groups(feature, cursor)
            )
            items += page.items
            if not (cursor := page.next_cursor):
                break
        return items

    async def all_style_groups(self, feature: str) -> list[Style]:
        return await self._all(feature, None)

    async def all_styles(self, feature: str, style_group_id: int) -> list[Style]:
        return await self._all(feature, style_group_id)

    async def find_style_group(self, feature: str, style_id: int) -> int:
        """The group holding `style_id`, from the (cached) catalog.

        Raises:
            InvalidInput: no group of `feature` holds it.
        """
        for group in await self.all_style_groups(feature):
            if any(s.id == style_id for s in await self.all_styles(feature, group.id)):
                return group.id
        raise InvalidInput(
            f"Style {style_id} is not in YouCam's {feature} catalog: pick an id from list_styles('{feature}', ...)."
        )

    async def balance(self) -> Balance:
        """GET client/credit: the sum of unexpired `amount_dec`, with each entry's expiry date."""
        body = self._json(await self._api("GET", "/client/credit", kind="other"), "credit")
        raw = body.get("results")
        if not isinstance(raw, list):
            raw = (body.get("result") or {}).get("results") or []
        now_ms, total, entries, soonest = time.time() * 1000, 0.0, [], None
        for e in raw:
            if not isinstance(e, dict):
                continue
            amount = float(e.get("amount_dec", e.get("amount", 0)) or 0)
            expiry = e.get("expiry")
            expired = isinstance(expiry, int | float) and expiry <= now_ms
            expires = time.strftime("%Y-%m-%d", time.gmtime(expiry / 1000)) if isinstance(expiry, int | float) else None
            entries.append({"type": e.get("type"), "amount": amount, "expires": expires, "expired": expired})
            if not expired:
                total += amount
                if expires and amount > 0 and (soonest is None or expires < soonest):
                    soonest = expires
        detail = f"{total:g} units (sum of unexpired credits)" + (
            f"; the soonest expire on {soonest}" if soonest else ""
        )
        return Balance(round(total, 4), detail, entries)
