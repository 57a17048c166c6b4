"""The "Grow $X over N days" journey in a real browser (Debian's Chromium driven by Playwright):
a ``uvicorn api.app:app`` subprocess on a SQLite store holding six stored one-day cohort runs on
binance-5m as evidence (:func:`tests.web.test_assistant_pages.seed_evidence`), with users made by
:func:`manager.users.add_user`, the binance-5m folder as the data root and no Celery broker (a
confirmed plan runs its days in the server's process).

Ops (``otto``) signs in, clicks the "Grow $X over N days" quick action on the cohort list, fills
the form (a tiny cohort: 4 agents, 1 GA generation, 2 days), checks the feasibility -- the
prerequisites, the probability (equal to the stored draft's) and the fan chart drawn by plotly.js
-- confirms, and lands on the plan page showing the plan's rows, the running status and the
chart; the page's live part polls while the plan runs, and the first day's actual against plan
appears when its cohort finishes. Every request must stay on the test server and no page may log
a JavaScript error. Screenshots go to the test's tmp dir and ``/tmp/cohortlab-screenshots/``."""
from __future__ import annotations

import time

import pytest

from manager import users
from manager.store import open_store
from tests.api.server import TOKEN, ApiServer
from tests.helpers import BINANCE
from tests.web.test_assistant_pages import seed_evidence
from tests.web.test_browser import CHROMIUM, chromium_browser  # noqa: F401 - fixture
from tests.web.test_browser_promotion import Tab, shot, sign_in

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium"),
    pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}"),
]

DAY_TIMEOUT_S = 240
"""How long the first plan day (a 4-agent cohort with a 1-generation learning cycle) may take."""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``(base url, {name: token}, shots folder, store url)``."""
    folder = tmp_path_factory.mktemp("browser-assistant")
    url = f"sqlite:///{folder}/assistant.db"
    tokens = {}
    with open_store(url) as store:
        _, tokens["otto"] = users.add_user(store, "otto", "ops", actor="test")
        seed_evidence(store)
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1",
                   COHORTLAB_SESSION_SECRET="s" * 48, COHORTLAB_DATA_ROOTS=str(BINANCE.parent),
                   COHORTLAB_DATA_DIR=str(BINANCE)) as srv:
        yield srv.base, tokens, folder / "screenshots", url


def test_grow_journey_from_the_quick_action_to_the_plan_page(chromium_browser, live):  # noqa: F811
    base, tokens, shots, url = live
    tab = Tab(chromium_browser, base)
    page = tab.page
    sign_in(page, base, "otto", tokens["otto"])

    # -- the quick action on the cohort list
    page.goto(f"{base}/trading/cohorts")
    assert page.locator("#quick-actions a").all_inner_texts()[0].startswith("Start intraday cohort")
    shot(page, shots, "assistant-01-quick-actions")
    page.click("#qa-grow")
    page.wait_for_url("**/trading/assistant/grow")

    # -- the form: a tiny plan on two symbols
    page.fill("#g-bankroll", "1000")
    page.fill("#g-days", "2")
    page.select_option("#g-target_kind", "return")
    page.fill("#g-target", "0.3")
    page.fill("#g-data", "binance-5m")
    page.fill("#g-symbols", "ETH_BTC LTC_BTC")
    page.fill("#g-agents", "4")
    page.fill("#g-generations", "1")
    page.click("#grow-check")
    page.wait_for_selector("#feasibility")
    page.wait_for_selector("#chart-fan.js-plotly-plot")  # drawn by plotly.js after the HTMX swap
    assert page.inner_text("#grow-status") == "draft"
    assert page.locator('#prereq-table tr[data-status="pass"]').count() == 4
    with open_store(url) as store:
        (doc,) = store.list_intents()
    prob = doc["feasibility"]["probability"]
    assert page.inner_text("#probability") == f"{prob * 100:.2f} %"
    # band (2 traces, filled), expected path, target
    assert page.evaluate("document.querySelectorAll('#chart-fan .scatterlayer .trace').length") == 4
    assert page.locator("#risk-table tbody tr").count() == 4
    shot(page, shots, "assistant-02-feasibility")

    # -- confirm: the plan page
    page.click("#confirm-button")
    page.wait_for_url(f"**/trading/assistant/intents/{doc['intent_id']}")
    page.wait_for_selector("#chart-plan.js-plotly-plot")
    rows = page.locator("#plan-table tbody tr")
    assert rows.count() == 2
    assert [rows.nth(i).get_attribute("data-day") for i in range(2)] == ["1", "2"]
    assert page.inner_text("#plan-status") in ("running", "completed")
    assert doc["dates"][0] in rows.nth(0).inner_text()
    shot(page, shots, "assistant-03-plan-running")

    # -- the live part polls: day 1's actual against plan appears when its cohort finishes
    deadline = time.monotonic() + DAY_TIMEOUT_S
    while time.monotonic() < deadline:
        with open_store(url) as store:
            stored = store.get_intent(doc["intent_id"])
        if stored.get("reports") or stored["status"] == "failed":
            break
        time.sleep(2)
    assert stored["status"] != "failed", stored.get("reason")
    assert stored.get("reports"), f"day 1 not reported within {DAY_TIMEOUT_S} s"
    page.wait_for_selector('#plan-table tr[data-day="1"][data-reported="yes"]', timeout=20_000)
    page.wait_for_selector("#plan-narratives li[data-day='1']")
    roi = stored["reports"][0]["actual"]["roi"]
    assert page.inner_text('#plan-table tr[data-day="1"] td.actual-return') == f"{roi * 100:.2f} %"
    shot(page, shots, "assistant-04-plan-day1")

    # -- the history links the plan; a toast of a fresh alert appears (HTMX, polled) and is dismissed
    from datetime import datetime, timezone

    with open_store(url) as store:
        store.create_alert({"alert_id": "al-browser-ks", "rule": "kill_switch", "subject": "kill_switch",
                            "severity": "critical", "title": "Kill switch ON by rita: drill", "body": "drill",
                            "created_at": datetime.now(timezone.utc).isoformat()})
    page.click("header nav >> text=Knowledge")
    page.wait_for_url("**/knowledge")
    assert page.locator(f'#knowledge-table a[href="/trading/assistant/intents/{doc["intent_id"]}"]').count() >= 1
    assert page.locator('#knowledge-table tr[data-kind="cohort"]').count() >= 6
    toast = page.locator('#toasts .toast[data-alert="al-browser-ks"]')
    toast.wait_for()
    assert "Kill switch ON by rita" in toast.inner_text()
    shot(page, shots, "assistant-05-knowledge-toast")
    toast.locator("button").click()
    page.wait_for_selector('#toasts .toast[data-alert="al-browser-ks"]', state="detached")
    page.reload()
    page.wait_for_selector("#knowledge-table")
    page.wait_for_timeout(500)  # the toasts' first load has run
    assert page.locator('#toasts .toast[data-alert="al-browser-ks"]').count() == 0  # dismissed for the session

    assert tab.foreign == [] and tab.problems == []
    tab.close()
