"""The viewer document: viewer.html with viewer.css and viewer.js inlined, one self-contained file.

Its Content-Security-Policy allows exactly that one script and that one style sheet (by hash),
images from data: and blob: URLs, and nothing else: no network, no frames, no forms.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

VIEWER_DIR = Path(__file__).parent


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def viewer_html() -> str:
    """The viewer as one document: CSS and JS inlined, allowed by hash in its CSP, nothing else.

    No network at all (connect-src 'none'); images are data: or blob: URLs made from bytes the
    host passed in.
    """
    css = (VIEWER_DIR / "viewer.css").read_text()
    js = (VIEWER_DIR / "viewer.js").read_text()
    csp = (
        f"default-src 'none'; script-src {_sha256(js)}; style-src {_sha256(css)}; img-src data: blob:; "
        "connect-src 'none'; font-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; "
        "form-action 'none'; base-uri 'none'"
    )
    template = (VIEWER_DIR / "viewer.html").read_text()
    # Plain substitution: the CSS/JS must not be touched by any templating.
    head, _, rest = template.partition("__CSP__")
    out = head + csp + rest
    head, _, rest = out.partition("__CSS__")
    out = head + css + rest
    head, _, rest = out.partition("__JS__")
    return head + js + rest
