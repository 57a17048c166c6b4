"""The ``/risk/leverage`` page in a real browser (Debian's Chromium driven by Playwright),
served by a ``uvicorn api.app:app`` subprocess (:class:`tests.api.server.ApiServer`) on a
store holding the decisions of :func:`tests.web.test_risk_page.seed_policy`: the operator
follows the nav link, reads the tier table, sees the tier chart drawn by plotly.js,
expands a decision's rationale and pages the audit log (HTMX). Requests to other hosts
are aborted and fail the test, as do JavaScript errors."""
from __future__ import annotations

import re

import pytest

from manager.store import open_store
from tests.api.server import TOKEN, ApiServer
from tests.web.test_browser import CHROMIUM, chromium_browser, shot, tab  # noqa: F401 - fixtures
from tests.web.test_risk_page import latest_by_subject, seed_policy

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-risk")
    url = f"sqlite:///{folder}/risk.db"
    with open_store(url) as store:
        docs = seed_policy(store)
    return folder, url, docs


@pytest.fixture(scope="module")
def server(seeded):
    folder, url, _ = seeded
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1") as srv:
        yield srv.base


def test_leverage_page_journey(tab, server, seeded):
    page = tab
    _, _, docs = seeded
    expected = sorted(sorted(docs, key=lambda d: d["subject"]), key=lambda d: d["period_end"], reverse=True)

    page.goto(server + "/trading/cohorts")
    page.click("header nav >> text=Leverage")
    page.wait_for_url("**/risk/leverage")

    # -- the tier table: one row per subject, parent first, with its next tier and trigger
    rows = page.locator("#tier-table tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).get_attribute("data-subject") == "parent:camp1"
    latest = latest_by_subject(docs)
    g001 = page.locator('#tier-table tr[data-subject="lineage:g001"]')
    assert g001.locator("td.tier").inner_text().strip() == f"{latest['lineage:g001']['tier']:g}×"
    assert latest["lineage:g001"]["next_trigger"] in g001.locator("td.next").inner_text()

    # -- the chart is drawn by plotly.js from the embedded figure (one trace per subject)
    page.wait_for_selector("#chart-tiers.js-plotly-plot")
    assert page.evaluate("document.querySelectorAll('#chart-tiers .scatterlayer .trace').length") == 3
    shot(page, "risk-01-leverage")

    # -- expand the newest decision's rationale
    first = page.locator(f'tr[data-decision="{expected[0]["decision_id"]}"]')
    figures = first.locator("details.rationale table.figures")
    assert not figures.is_visible()
    first.locator("details.rationale summary").click()
    assert figures.is_visible()
    sharpe = first.locator('tr.figure[data-name="sharpe"] td').all_inner_texts()
    stored = next(f for f in expected[0]["rationale"]["figures"] if f["name"] == "sharpe")
    assert sharpe[:4] == ["sharpe", str(stored["value"]), stored["unit"], "yes"]  # name, value, unit, annualised
    assert sharpe[4] == stored["sample"]
    shot(page, "risk-02-rationale")

    # -- page the audit log: the HTMX swap replaces the table with the two oldest decisions
    assert "Page 1 of 2" in page.inner_text("#risk-decisions")
    page.click("#risk-decisions a[rel=next]")
    page.wait_for_selector("#risk-decisions .pageinfo:has-text('Page 2 of 2')")
    ids = page.eval_on_selector_all("#risk-decisions tr.decision", "els => els.map(e => e.dataset.decision)")
    assert ids == [d["decision_id"] for d in expected[10:]]
    assert page.url.endswith("/risk/leverage")  # a swap, not a navigation
    page.click("#risk-decisions a[rel=prev]")
    page.wait_for_selector("#risk-decisions .pageinfo:has-text('Page 1 of 2')")
    assert re.search(r"12 decisions", page.inner_text("#risk-decisions"))
    assert page.locator("#risk-decisions details[open]").count() == 0  # the swapped-in rows start collapsed
    shot(page, "risk-03-page-2")
