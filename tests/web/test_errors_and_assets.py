"""The launch form, HTML error pages (404, 500 without details; the JSON API keeps its
problem documents), the served assets and pages that never reach another host."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("httpx")

from tests.helpers import BINANCE, ROOT  # noqa: E402
from tests.web.html import no_external, parse  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_launch_form_explains_every_field(client):
    r = client.get("/trading/cohorts/new")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert 'data-api="/api/cohorts"' in html
    assert re.search(r'name="bankroll" type="number" min="50" max="100000"', html)
    assert "quote currency of the bars" in html
    assert '<option value="equal" selected>' in html and '<option value="risk_weighted">' in html
    for name in ("agents", "seed", "data", "symbols", "start", "end", "token"):
        assert f'name="{name}"' in html and f'data-field="{name}"' in html
    assert 'name="token" type="password" autocomplete="off"' in html
    assert "never stored" in html


@pytest.mark.parametrize("url, text", [
    ("/trading/cohorts/20990101T000000-deadbeef", "Cohort not found"),
    ("/trading/cohorts/not a run", "Cohort not found"),
    ("/trading/cohorts/{a}/agents/zz99", "Agent not found"),
    ("/trading/cohorts/20990101T000000-deadbeef/agents/a00", "Cohort not found"),
    ("/trading/cohorts/{a}/no-such-page", "Page not found"),
    ("/trading/nothing-here", "Page not found"),
])
def test_not_found_pages_are_html(client, runs, url, text):
    r = client.get(url.format(a=runs["a"]["run_id"]))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and text in r.text and 'href="/trading/cohorts"' in r.text


def test_unexpected_error_is_an_html_500_without_details(client, runs, monkeypatch):
    from manager import read_model

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(read_model, "cohort_detail", boom)
    r = client.get(f"/trading/cohorts/{runs['a']['run_id']}")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in r.text and "secret internal detail" not in r.text


def test_api_errors_stay_problem_documents(client):
    r = client.get("/api/cohorts/20990101T000000-deadbeef")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_assets_are_served_with_their_content_types(client):
    import plotly

    plotly_js = client.get("/static/vendor/plotly.min.js")
    assert plotly_js.status_code == 200
    assert plotly_js.headers["content-type"].startswith("text/javascript")
    local = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert plotly_js.content == local.read_bytes()

    htmx = client.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200, htmx.text
    assert htmx.headers["content-type"].startswith("text/javascript")
    assert b"htmx" in htmx.content[:5000]
    package = json.loads((ROOT / "web" / "node_modules" / "htmx.org" / "package.json").read_text())
    assert package["version"].startswith("2.")

    css = client.get("/static/cohortlab.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/cohortlab.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    for bad in ("/static/nope.css", "/static/..%2Froutes.py", "/static/routes.py"):
        assert client.get(bad).status_code == 404


def test_missing_htmx_says_how_to_install_it(client, tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_WEB_NODE_MODULES", str(tmp_path))
    r = client.get("/static/vendor/htmx.min.js")
    assert r.status_code == 503 and "npm install --prefix web" in r.text
    page = client.get("/trading/cohorts")
    assert page.status_code == 200 and "npm install --prefix web" in page.text


def test_no_page_links_to_another_host(client, runs):
    a = runs["a"]
    agent = a["report"]["agents"][0]["agent_id"]
    urls = ["/trading/cohorts", "/trading/cohorts?page_size=1&page=2", "/trading/cohorts/new",
            f"/trading/cohorts/{a['run_id']}", f"/trading/cohorts/{a['run_id']}/agents/{agent}",
            f"/trading/cohorts/{runs['running']['run_id']}", f"/trading/cohorts/{runs['failed']['run_id']}",
            "/trading/cohorts/nope"]
    for url in urls:
        r = client.get(url)
        assert r.headers["content-type"].startswith("text/html")
        no_external(r.text)
        # every local link and script resolves
        for tag, attr, link in parse(r.text).urls:
            if attr in ("src",) or (tag == "link" and attr == "href"):
                assert client.get(link).status_code == 200, link
