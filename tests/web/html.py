"""Helpers of the dashboard tests that read HTML (not fixtures): links, figures, table rows."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser


class Links(HTMLParser):
    """Collects every URL-valued attribute and the JSON of figure script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href", "action", "hx-get", "hx-post", "data-api", "formaction"):
            if a.get(name):
                self.urls.append((tag, name, a[name]))
        if tag == "script" and a.get("type") == "application/json":
            self._script = a.get("id")
            self.scripts[self._script] = ""

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def parse(html: str) -> Links:
    """The URL-valued attributes and figure scripts of a page."""
    p = Links()
    p.feed(html)
    return p


def figure(html: str, fig_id: str) -> dict:
    """The Plotly figure in the ``<script type="application/json" id=fig_id>`` of a page."""
    return json.loads(parse(html).scripts[fig_id])


def table_rows(html: str, table_id: str) -> list[str]:
    """The ``<tr>`` elements of the body of table ``table_id``."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def no_external(html: str) -> None:
    """Fail when the page links or loads anything from another host."""
    for tag, attr, url in parse(html).urls:
        assert not re.match(r"^(https?:)?//", url, re.I), f"<{tag} {attr}={url!r}> leaves this host"
    for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html):
        assert src.startswith("/static/"), src
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html, re.I)
