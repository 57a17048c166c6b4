"""The micro-live deployment journey in a real browser (Debian's Chromium driven by Playwright):
a ``uvicorn api.app:app`` subprocess on a SQLite store holding a deployment started and
stepped on real binance-5m bars (:mod:`tests.api.deployment_store`), with users made by
:func:`manager.users.add_user`.

A viewer (``vera``) opens the deployment and sees Rollback disabled with its reason. Ops
(``otto``, another browser context) follows the nav link to the deployments list, opens the
running deployment, sees the equity chart drawn by plotly.js (equity, allocation, rollback
level) and the timer, fills the notes, clicks Rollback (confirming the dialog) and sees the
status become ``rolled_back``, the manual incident listed with his notes and the live polling
stop. Every request must stay on the test server and no page may log a JavaScript error."""
from __future__ import annotations

import pytest

from manager import users
from manager.store import open_store
from tests.api.deployment_store import deploy
from tests.api.server import TOKEN, ApiServer
from tests.helpers import BINANCE
from tests.web.test_browser import CHROMIUM, chromium_browser  # noqa: F401 - fixture
from tests.web.test_browser_promotion import Tab, shot, sign_in

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium"),
    pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}"),
]

STEPS = 40


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """``(base url, deployment id, {name: token}, shots folder, store url)``."""
    folder = tmp_path_factory.mktemp("browser-deployments")
    url = f"sqlite:///{folder}/deployments.db"
    tokens = {}
    with open_store(url) as store:
        for name, role in (("otto", "ops"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
        dep = deploy(store, steps=STEPS)["deployment_id"]
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1",
                   COHORTLAB_SESSION_SECRET="s" * 48) as srv:
        yield srv.base, dep, tokens, folder / "screenshots", url


def test_deployment_rollback_journey(chromium_browser, live):  # noqa: F811
    base, dep, tokens, shots, url = live

    # -- a viewer sees the deployment but may not roll it back
    viewer = Tab(chromium_browser, base)
    page = viewer.page
    sign_in(page, base, "vera", tokens["vera"])
    page.goto(f"{base}/trading/deployments/{dep}")
    assert page.locator("#rollback-button").is_disabled()
    assert page.inner_text("#rollback-reason") == "viewer: needs role admin or ops or risk to rollback"
    viewer.close()

    # -- ops opens the list, then the running deployment
    ops = Tab(chromium_browser, base)
    page = ops.page
    sign_in(page, base, "otto", tokens["otto"])
    page.click("header nav >> text=Deployments")
    page.wait_for_url("**/trading/deployments")
    row = page.locator(f'#deployment-table tr[data-deployment="{dep}"]')
    assert row.get_attribute("data-status") == "running"
    assert row.locator("td.timer").inner_text().startswith("2d ")
    shot(page, shots, "deployments-01-list")
    row.locator(f"a:has-text('{dep}')").click()
    page.wait_for_url(f"**/trading/deployments/{dep}")
    page.wait_for_selector("#chart-deployment.js-plotly-plot")  # drawn by plotly.js
    assert page.evaluate("document.querySelectorAll('#chart-deployment .scatterlayer .trace').length") == 3
    assert page.inner_text("#deployment-status") == "running"
    assert page.inner_text("#time-left").startswith("2d ")
    assert page.locator("#deployment-live").get_attribute("hx-trigger") == "every 5s"
    assert page.locator("#rollback-button").is_enabled()
    assert page.locator("#extend-button").is_disabled()  # ops may not re-approve the timer
    shot(page, shots, "deployments-02-running")

    # -- notes, Rollback, confirm
    page.fill("#deployment-notes", "drill: rolling back from the dashboard")
    page.once("dialog", lambda d: d.accept())
    page.click("#rollback-button")
    page.wait_for_selector("#deployment-flash:has-text('Rolled back')")
    assert page.inner_text("#deployment-status") == "rolled_back"
    incident = page.locator('#incident-table tr[data-trigger="manual"]')
    assert incident.count() == 1
    assert "otto (ops): drill: rolling back from the dashboard" in incident.locator("td.by").inner_text()
    assert page.locator("#deployment-live").get_attribute("hx-trigger") is None  # polling stopped
    assert page.locator("#rollback-button").is_disabled()
    shot(page, shots, "deployments-03-rolled-back")
    ops.close()

    with open_store(url) as store:
        doc = store.get_deployment(dep)
        assert doc["status"] == "rolled_back" and doc["rollback"]["by"] == "otto"
        assert [i["trigger"] for i in store.list_incidents(dep)] == ["manual"]
