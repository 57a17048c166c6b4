"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

``uvicorn api.app:app`` runs as a subprocess (:class:`tests.api.server.ApiServer`) on a
free 127.0.0.1 port with a temporary SQLite store and ``COHORTLAB_API_TOKEN``; no
broker, so cohorts run in the API process's job threads. The browser
(``/usr/bin/chromium``, headless, Playwright's own browser download is never used)
then does what an operator does: launches a cohort from the form (first with a wrong
token and a bankroll below the minimum, to see the errors next to the fields),
watches its progress until the charts appear, sorts the leaderboard, opens an agent
with trades (buy and sell markers on the price chart), exports the cohort list as
CSV, launches a cohort that fails and reads the reason, and opens an unknown cohort
(404 page). It also opens the API docs (Swagger UI at ``/docs``, ReDoc at
``/redoc``), which must render every operation from local assets only.

Every request the browser makes must go to the test server (anything else is
aborted and fails the test) and no page may log a JavaScript error. A PNG of
each page is saved to ``test-artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.api.server import TOKEN, ApiServer
from tests.helpers import BINANCE, ROOT

CHROMIUM = Path("/usr/bin/chromium")
DATA = BINANCE
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium"),
    pytest.mark.skipif(not DATA.is_dir(), reason=f"bar data not found at {DATA}"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a uvicorn subprocess serving ``api.app:app`` on an empty temporary store."""
    folder = tmp_path_factory.mktemp("browser")
    with ApiServer(folder, COHORTLAB_STORE=f"sqlite:///{folder}/browser.db", COHORTLAB_API_TOKEN=TOKEN,
                   PYTHONUNBUFFERED="1") as srv:
        yield srv.base


@pytest.fixture(scope="module")
def chromium_browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROME_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def tab(chromium_browser, server):
    """A page that may only talk to the test server and must not log JS errors."""
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    host = urlparse(server).netloc
    foreign: list[str] = []
    problems: list[str] = []

    def route(r):
        url = r.request.url
        if urlparse(url).netloc == host:
            r.continue_()
        else:
            foreign.append(url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # expected error statuses (422/401 of the form, the 404 page) log "Failed to load resource"
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and "Failed to load resource" not in m.text else None)
    yield page
    context.close()
    assert not foreign, f"the browser tried to reach other hosts: {foreign}"
    assert not problems, problems


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def plotted_traces(page) -> int:
    return page.evaluate("document.querySelectorAll('.js-plotly-plot .trace').length")


def test_operator_flow(tab, server):
    page = tab

    # -- the empty list invites a launch
    page.goto(server + "/trading/cohorts")
    assert "No cohorts yet — launch one" in page.inner_text("#cohort-table")
    shot(page, "01-cohorts-empty")
    page.click("#cohort-table >> text=Launch a cohort")
    page.wait_for_url("**/trading/cohorts/new")

    # -- the form: a wrong token, then a bankroll below the minimum, each shown at its field
    page.fill("#f-bankroll", "1000")
    page.fill("#f-agents", "5")
    page.select_option("#f-allocation", "risk_weighted")
    page.fill("#f-seed", "3")
    page.fill("#f-data", DATA.name)
    page.fill("#f-start", "2018-01-15")
    page.fill("#f-token", "not-the-token")
    page.click("#launch")
    page.wait_for_selector('.field[data-field="token"].invalid')
    assert "wrong bearer token" in page.inner_text('.field[data-field="token"] .field-error')

    page.fill("#f-token", TOKEN)
    page.fill("#f-bankroll", "10")
    page.click("#launch")
    page.wait_for_selector('.field[data-field="bankroll"].invalid')
    assert "50" in page.inner_text('.field[data-field="bankroll"] .field-error')
    assert page.inner_text('.field[data-field="token"] .field-error') == ""
    shot(page, "02-launch-form-errors")

    # -- a valid launch opens the cohort page with live progress, then the full view
    page.fill("#f-bankroll", "1000")
    first_html: dict[str, str] = {}

    def keep_first(response):
        if "/trading/cohorts/2" in response.url and response.request.resource_type == "document" \
                and "doc" not in first_html:
            first_html["doc"] = response.text()

    page.on("response", keep_first)
    submitted = time.monotonic()
    page.click("#launch")
    page.wait_for_url("**/trading/cohorts/2*?job=*")
    run_id = urlparse(page.url).path.rsplit("/", 1)[-1]
    if 'id="progress"' in first_html.get("doc", ""):
        page.wait_for_selector("#progress")
        shot(page, "03-cohort-progress")
        progress_seen = True
    else:
        progress_seen = False
    # wait_for_selector, not wait_for_function: the pages' CSP forbids the eval the latter uses
    page.wait_for_selector(".js-plotly-plot .trace", state="attached", timeout=180_000)
    page.wait_for_load_state("networkidle")
    page.remove_listener("response", keep_first)
    if not progress_seen:  # only acceptable when the run finished before the page first rendered
        job = json.loads(urllib.request.urlopen(f"{server}/api/jobs/{run_id}").read())
        assert job["state"] == "completed" and job["elapsed_s"] < time.monotonic() - submitted
    assert page.locator("#progress").count() == 0
    assert "completed" in page.inner_text(".badges")
    assert "1,000 BTC" in page.inner_text(".badge.bankroll")
    for chart in ("#chart-gauges", "#chart-equity", "#chart-exposure"):
        assert page.locator(f"{chart}.js-plotly-plot").count() == 1, chart
        assert page.evaluate(f"document.querySelectorAll('{chart} .trace, {chart} .indicator').length") > 0
    assert plotted_traces(page) >= 1 + 5  # parent + agents (+ exposure, ceilings)
    # the ceiling lines are drawn on the exposure chart
    assert page.evaluate("document.getElementById('chart-exposure').data"
                         ".filter(t => t.name.includes('ceiling')).length") == 2
    rows = page.locator("#leaderboard tbody tr")
    assert rows.count() == 5
    shot(page, "04-cohort")

    # -- sort the leaderboard by ROI (HTMX swap), ascending after a second click
    page.click("#leaderboard th >> text=ROI")
    page.wait_for_selector('#leaderboard th.sorted[aria-sort="descending"] >> text=ROI')
    page.click("#leaderboard th >> text=ROI")
    page.wait_for_selector('#leaderboard th.sorted[aria-sort="ascending"] >> text=ROI')
    rois = page.eval_on_selector_all("#leaderboard tbody tr td:nth-child(6)",
                                     "els => els.map(e => parseFloat(e.textContent))")
    assert rois == sorted(rois)

    # -- an agent with trades: markers on the price chart, equity, genome, metrics
    page.click("#leaderboard th >> text=Trades")
    page.wait_for_selector('#leaderboard th.sorted[aria-sort="descending"] >> text=Trades')
    top = page.locator("#leaderboard tbody tr").first
    assert int(top.locator("td").nth(9).inner_text()) > 0
    top.locator("td a").first.click()
    page.wait_for_url("**/agents/*")
    page.wait_for_selector("#chart-prices .trace", state="attached")
    markers = page.evaluate("document.querySelectorAll('#chart-prices .scatterlayer .trace .points path').length")
    assert markers > 0
    names = page.evaluate("document.getElementById('chart-prices').data.map(t => t.type + ':' + t.name)")
    assert any(n.startswith("candlestick:") for n in names)
    assert "scatter:buy" in names and "scatter:sell" in names
    assert page.evaluate("document.getElementById('chart-agent-equity').data[0].y.length") > 100
    assert "params." in page.inner_text("#genome")
    assert "Sharpe" in page.inner_text("#metrics")
    shot(page, "05-agent")

    # -- the list shows the cohort; the CSV export downloads it
    page.goto(server + "/trading/cohorts")
    assert run_id in page.inner_text("#cohort-table")
    shot(page, "06-cohorts")
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    text = Path(download.path()).read_text()
    table = list(csv.DictReader(io.StringIO(text)))
    assert table and "run_id" in table[0] and "bankroll" in table[0]
    assert any(row["run_id"] == run_id for row in table)

    # -- the date filter narrows the list through an HTMX swap
    page.fill('input[name="date"]', "2018-01-16")
    page.wait_for_selector("#cohort-table >> text=No cohorts match these filters.")
    assert "date=2018-01-16" in page.url

    # -- a cohort that fails shows why
    page.goto(server + "/trading/cohorts/new")
    page.fill("#f-data", DATA.name)
    page.fill("#f-start", "2030-01-01")
    page.fill("#f-agents", "2")
    page.fill("#f-token", TOKEN)
    page.click("#launch")
    page.wait_for_url("**/trading/cohorts/2*?job=*")
    page.wait_for_selector("#progress.failed", timeout=120_000)
    assert page.inner_text("#progress .reason").strip()
    assert "failed" in page.inner_text(".badges")
    shot(page, "07-cohort-failed")

    # -- an unknown cohort is a 404 page
    response = page.goto(server + "/trading/cohorts/20990101T000000-deadbeef")
    assert response.status == 404
    assert "Cohort not found" in page.inner_text("main")
    shot(page, "08-not-found")


def test_api_docs_render_offline(tab, server):
    """Swagger UI (``/docs``) and ReDoc (``/redoc``) render the API from local assets only
    (the ``tab`` fixture aborts and reports every request to another host)."""
    page = tab
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # -- Swagger UI: every operation, a known route, and its parameters once expanded
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    cohorts = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/api/experiments/cohorts"])')
    cohorts.wait_for(state="visible")
    assert page.locator(".swagger-ui .opblock").count() >= 8
    assert page.locator(".swagger-ui .opblock-post").count() >= 1  # POST /api/cohorts
    cohorts.locator(".opblock-summary").click()
    page.wait_for_selector('.opblock-get.is-open .parameters tr[data-param-name="page_size"]')
    page.wait_for_load_state("networkidle")
    shot(page, "09-api-docs-swagger")

    # -- ReDoc: the operations are rendered from the same schema
    page.goto(server + "/redoc")
    page.wait_for_selector('[data-section-id^="operation/"]')
    assert page.locator('[data-section-id^="operation/"]').count() >= 8
    page.get_by_text("/api/experiments/cohorts").first.wait_for()
    page.wait_for_load_state("networkidle")
    shot(page, "10-api-docs-redoc")

    host = urlparse(server).netloc
    assert requested and all(urlparse(url).netloc == host or url.startswith(("data:", "blob:"))
                             for url in requested), requested
    for asset in ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/redoc/redoc.standalone.js",
                  "/openapi.json"):
        assert server + asset in requested, (asset, requested)
