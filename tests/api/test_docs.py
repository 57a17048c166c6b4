"""The API docs (``/docs``, ``/redoc``; :mod:`api.docs`) load nothing from another host.

Requests go through FastAPI's ``TestClient`` to the real application
(:func:`api.app.create_app`); the assets are the ones ``npm install --prefix web``
put into ``web/node_modules``. The browser side (the pages really render, with
every outside request aborted) is in ``tests/web/test_browser.py``.
"""

from __future__ import annotations

import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("httpx")
from dockerfile_parse import DockerfileParser  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api import docs  # noqa: E402
from api.app import create_app  # noqa: E402
from tests.helpers import ROOT  # noqa: E402

NODE_MODULES = ROOT / "web" / "node_modules"


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path}/docs.db")
    monkeypatch.delenv("COHORTLAB_WEB_NODE_MODULES", raising=False)
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c


class _Refs(HTMLParser):
    """Every URL-valued attribute of a page (``src``, ``href``, ``spec-url``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and (name in ("src", "href", "action", "srcset", "poster", "data") or name.endswith("-url")):
                self.refs.append((tag, name, value))


def refs(html: str) -> list[tuple[str, str, str]]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


@pytest.mark.parametrize("page, expect", [
    ("/docs", {("link", "href", docs.SWAGGER_CSS), ("link", "href", docs.FAVICON), ("script", "src", docs.SWAGGER_JS)}),
    ("/redoc", {("link", "href", docs.FAVICON), ("script", "src", docs.REDOC_JS),
                ("redoc", "spec-url", "/openapi.json")}),
])
def test_docs_pages_load_every_asset_from_this_host(client, page, expect):
    r = client.get(page)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    found = refs(html)
    assert expect <= set(found), found
    for tag, attr, url in found:
        # a path on this host: not absolute (http://, https://), not protocol-relative (//host)
        assert url.startswith("/") and not url.startswith("//"), f"<{tag} {attr}={url!r}> leaves this host"
        asset = client.get(url)
        assert asset.status_code == 200, (url, asset.text[:300])
        assert asset.content, url
    # nothing else on the page names another host (CDN, Google fonts, the Swagger validator)
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html
    assert "fonts.googleapis" not in html and "cdn." not in html


def test_swagger_ui_is_configured_for_this_host(client):
    html = client.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert '"validatorUrl": null' in html  # no online validator badge (an image from another host)
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "swaggerUIRedirectOauth2" in redirect.text
    assert client.get("/openapi.json").status_code == 200


def test_docs_assets_are_the_npm_packages(client):
    for url, (package, name, media) in docs.DOCS_ASSETS.items():
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert r.headers["content-type"] == media or r.headers["content-type"].startswith(media.split(";")[0])
        original = (NODE_MODULES / package / name).read_bytes()
        expected = original
        for old, new in docs.REWRITES.get(url, ()):
            assert original.count(old) == 1, (url, old)  # the package still has what is rewritten
            expected = expected.replace(old, new)
        assert r.content == expected, url
        assert r.headers["x-content-type-options"] == "nosniff"
    versions = {package: json.loads((NODE_MODULES / package / "package.json").read_text())["version"]
                for package in ("swagger-ui-dist", "redoc")}
    assert versions["swagger-ui-dist"].startswith("5."), versions
    assert versions["redoc"].startswith("2."), versions  # the major FastAPI's get_redoc_html is written for
    declared = json.loads((ROOT / "web" / "package.json").read_text())["dependencies"]
    assert {"htmx.org", "swagger-ui-dist", "redoc"} <= set(declared)
    assert client.get("/static/vendor/redoc/nope.js").status_code == 404
    assert client.get("/static/vendor/swagger-ui/index.html").status_code == 404


def test_redoc_no_longer_fetches_its_logo_from_a_cdn(client):
    # ReDoc 2 always draws the Redocly logo from cdn.redoc.ly; the served bundle points it at
    # an empty data: URL instead, which ReDoc's own onError handler then hides
    body = client.get(docs.REDOC_JS).content
    assert b"cdn.redoc.ly" not in body
    assert b'src:"data:,"' in body and b"API docs by Redocly" in body


def test_docs_routes_are_not_part_of_the_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/static"))], list(paths)
    assert "/api/experiments/cohorts" in paths


def test_missing_docs_assets_say_how_to_install_them(client, tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_WEB_NODE_MODULES", str(tmp_path / "empty"))
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 503 and "npm install --prefix web" in r.text, page
        assert r.headers["content-type"].startswith("text/html")
        assert not re.search(r"(?:https?:)?//", r.text)
    for url in docs.DOCS_ASSETS:
        r = client.get(url)
        assert r.status_code == 503 and "npm install --prefix web" in r.text, url


def test_a_wheel_and_the_image_ship_the_docs_assets():
    """pyproject's package-data puts the served files into an installed wheel (``web/...``),
    and the Dockerfile copies them from its npm stage before ``pip install``."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["web"]
    copied = set()
    for ins in DockerfileParser(path=str(ROOT / "Dockerfile")).structure:
        words = ins["value"].split()
        if ins["instruction"] == "COPY" and "--from=assets" in words:
            sources, dest = [w for w in words if not w.startswith("--")][:-1], words[-1]
            for source in sources:
                rel = source.removeprefix("/web/")
                target = dest + Path(source).name if dest.endswith("/") else dest
                assert target == "web/" + rel, (source, dest)
                copied.add(rel)
    for package, name, _ in docs.DOCS_ASSETS.values():
        rel = f"node_modules/{package}/{name}"
        assert rel in package_data, f"{rel} is missing from pyproject's package-data"
        assert rel in copied, f"{rel} is not copied into the image"
        assert (NODE_MODULES / package / name).is_file(), rel
