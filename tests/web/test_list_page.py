"""``GET /trading/cohorts``: the cohort list, its filters, pages (HTMX partials) and
the empty state."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import no_external, table_rows  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_list_page_shows_cohorts_with_badges_links_and_export(client, runs):
    r = client.get("/trading/cohorts")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<html" in html and 'id="cohort-table"' in html
    for name in ("a", "b"):
        assert f'href="/trading/cohorts/{runs[name]["run_id"]}"' in html
    assert 'class="badge status-completed"' in html
    assert 'class="badge status-running"' in html
    assert 'class="badge status-failed"' in html and "no bars in the window" in html  # reason as title
    assert "1,000 BTC" in html and "250 BTC" in html
    assert "2018-01-15" in html and "2018-01-16" in html
    assert 'href="/api/experiments/cohorts?format=csv"' in html  # every row, no page size
    assert 'hx-get="/trading/cohorts"' in html  # the filter form swaps the table
    no_external(html)


@pytest.mark.parametrize("query, expect, not_expect", [
    ("date=2018-01-16", ["b"], ["a"]),
    ("bankroll=1000", ["a"], ["b"]),
    ("date=2018-01-15&bankroll=1000", ["a"], ["b"]),
    ("date=2018-01-15&bankroll=250", [], ["a", "b"]),
])
def test_filters(client, runs, query, expect, not_expect):
    r = client.get(f"/trading/cohorts?{query}")
    assert r.status_code == 200
    for name in expect:
        assert runs[name]["run_id"] in r.text
    for name in not_expect:
        assert runs[name]["run_id"] not in r.text
    if not expect:
        assert "No cohorts match these filters." in r.text
        assert "No cohorts yet" not in r.text
    # the CSV export carries the filters
    csv_href = re.search(r'id="export-csv" href="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    for part in query.split("&"):
        assert part in csv_href
    assert csv_href.startswith("/api/experiments/cohorts?format=csv")


def test_bad_filters_are_explained_not_errors(client):
    r = client.get("/trading/cohorts?date=15.01.2018&bankroll=-3")
    assert r.status_code == 200
    assert "is not a day (use YYYY-MM-DD)" in r.text and "is not a positive amount" in r.text


def test_pagination_partial(client, runs):
    full = client.get("/trading/cohorts?page_size=1")
    assert "<html" in full.text and "Page 1 of 4" in full.text
    r = client.get("/trading/cohorts?page_size=1&page=2", headers={"HX-Request": "true", "HX-Target": "cohort-table"})
    assert r.status_code == 200
    html = r.text
    assert "<html" not in html and html.lstrip().startswith('<section id="cohort-table"')
    assert "Page 2 of 4" in html
    assert len(table_rows(html, "cohort-table")) == 1
    # newer and older links swap the table and keep the page size
    assert 'hx-get="/trading/cohorts?page_size=1&amp;page=1"' in html
    assert 'hx-get="/trading/cohorts?page_size=1&amp;page=3"' in html
    assert 'hx-target="#cohort-table"' in html and 'hx-push-url="true"' in html
    # the four stored cohorts appear once each over the pages, newest first
    seen = []
    for page in range(1, 5):
        part = client.get(f"/trading/cohorts?page_size=1&page={page}", headers={"HX-Request": "true"}).text
        seen += re.findall(r'<a href="/trading/cohorts/([^"/]+)">', part)
    assert sorted(seen) == sorted(r_["run_id"] for r_ in runs.values())
    # a history restore gets the whole page
    restore = client.get("/trading/cohorts?page_size=1&page=2",
                         headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_empty_state(tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path}/empty.db")
    services.close_shared_store()
    try:
        with TestClient(create_app(), base_url="http://127.0.0.1") as c:
            r = c.get("/trading/cohorts")
    finally:
        services.close_shared_store()
    assert r.status_code == 200
    assert "No cohorts yet — launch one" in r.text
    assert 'href="/trading/cohorts/new"' in r.text
    assert "0 cohorts" in r.text
