"""Icons for menus: the server's and one per kind of tool, as small SVG data URIs (no network).

Each is a 24×24 stroke drawing (no script, no external references), base64-encoded so that
hosts that only accept `data:` URIs of a declared type show it as it is.
"""

from __future__ import annotations

import base64

from mcp_types import Icon

_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{color}" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{body}</svg>'
)
_DRAWINGS = {
    # a photo frame with a mountain and a sun
    "server": '<rect x="3" y="4" width="18" height="16" rx="2"/><circle cx="9" cy="10" r="2"/>'
    '<path d="m21 17-5-5-9 8"/>',
    "cutout": '<circle cx="6" cy="6" r="3"/><circle cx="6" cy="18" r="3"/><path d="M20 4 8.1 15.9M14.5 14.5 20 20'
    'M8.1 8.1 12 12"/>',
    "sparkle": '<path d="M12 3v4M12 17v4M3 12h4M17 12h4M6 6l2.5 2.5M15.5 15.5 18 18M6 18l2.5-2.5M15.5 8.5 18 6"/>',
    "wand": '<path d="m15 4 5 5L9 20l-5-5zM13 6l5 5M5 3v3M3.5 4.5h3M19 15v3M17.5 16.5h3"/>',
    "face": '<circle cx="12" cy="12" r="9"/><path d="M8.5 14.5a4.5 4.5 0 0 0 7 0M9 9.5h.01M15 9.5h.01"/>',
    "hair": '<path d="M4 20c0-9 3.5-16 8-16s8 7 8 16M8 20c0-6 1.5-11 4-11s4 5 4 11"/>',
    "crop": '<path d="M6 2v14a2 2 0 0 0 2 2h14M18 22V8a2 2 0 0 0-2-2H2"/>',
    "palette": '<circle cx="12" cy="12" r="9"/><circle cx="8" cy="10" r="1"/><circle cx="12" cy="7.5" r="1"/>'
    '<circle cx="16" cy="10" r="1"/><path d="M12 21a3 3 0 0 1 0-6h2"/>',
    "coin": '<circle cx="12" cy="12" r="9"/><path d="M12 7v10M15 9.5c-.5-1-1.6-1.5-3-1.5-1.7 0-3 .8-3 2s1.3 1.7 3 2'
    ' 3 .8 3 2-1.3 2-3 2c-1.4 0-2.5-.5-3-1.5"/>',
    "clock": '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
    "upload": '<path d="M12 16V4M7 9l5-5 5 5M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3"/>',
}
# Which drawing each tool module / tool gets.
_BY_MODULE = {
    "tools.background": "cutout",
    "tools.edit": "wand",
    "tools.generate": "sparkle",
    "tools.hair": "hair",
    "tools.face": "face",
    "tools.restore": "wand",
    "tools.styles": "palette",
    "tools.local": "crop",
    "tools.account": "coin",
    "tools.jobs": "clock",
}
_BY_TOOL = {"pick_image": "upload", "place_on_background": "cutout", "blur_background": "face"}


def icon(name: str, color: str = "#2563eb") -> Icon:
    svg = _SVG.format(color=color, body=_DRAWINGS[name])
    src = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return Icon(src=src, mime_type="image/svg+xml", sizes=["any"])


SERVER_ICONS = [icon("server")]


def icons_for(tool_name: str, module: str | None = None) -> list[Icon] | None:
    """The icon of a tool, by its name or the module that defines it."""
    drawing = _BY_TOOL.get(tool_name) or _BY_MODULE.get(module or "")
    return [icon(drawing)] if drawing else None
