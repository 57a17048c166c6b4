"""The Day-3 promotion journey in a real browser (Debian's Chromium driven by Playwright):
a ``uvicorn api.app:app`` subprocess on a copy of the shared campaign's store
(:mod:`tests.api.campaign_store`, reviewed under ``RELAXED``) with users made by
:func:`manager.users.add_user`.

Ops (``otto``) signs in, opens the campaign page from the nav, opens the review modal,
proposes the candidate and signs the ops step; a viewer (``vera``, a new browser context)
opens the Day-3 cohort page's modal and sees the Approve button disabled with its reason;
risk (``rita``, another context) sees the ops signature and signs the risk step. Every
request must stay on the test server and no page may log a JavaScript error. Screenshots go
to the test's tmp dir and are copied to ``/tmp/cohortlab-screenshots/`` (printed; never
committed)."""
from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from manager import users
from manager.store import open_store
from tests.api.campaign_store import BEST, PROMOTER_ENV, copy_to
from tests.api.server import TOKEN, ApiServer
from tests.web.test_browser import CHROMIUM, chromium_browser  # noqa: F401 - fixture

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install -y chromium"),
]

COPY_TO = Path("/tmp/cohortlab-screenshots")


@pytest.fixture(scope="module")
def live(tmp_path_factory, campaign):
    """``(base url, {name: token}, shots folder)``: the server on a copy of the campaign's store."""
    folder = tmp_path_factory.mktemp("browser-promotion")
    url = copy_to(campaign, folder / "promotion.db")
    tokens = {}
    with open_store(url) as store:
        for name, role in (("otto", "ops"), ("rita", "risk"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN, PYTHONUNBUFFERED="1",
                   COHORTLAB_SESSION_SECRET="s" * 48, **PROMOTER_ENV) as srv:
        yield srv.base, tokens, folder / "screenshots"


class Tab:
    """A browser context of its own (one user's session) whose page may only talk to the test
    server and must not log JavaScript errors."""

    def __init__(self, browser, base: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1700})
        self.foreign: list[str] = []
        self.problems: list[str] = []
        host = urlparse(base).netloc

        def route(r):
            if urlparse(r.request.url).netloc == host:
                r.continue_()
            else:
                self.foreign.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                     if m.type == "error" and "Failed to load resource" not in m.text else None)

    def close(self) -> None:
        self.context.close()
        assert not self.foreign, f"the browser tried to reach other hosts: {self.foreign}"
        assert not self.problems, self.problems


def sign_in(page, base, name, token):
    page.goto(base + "/signin")
    page.fill("#f-name", name)
    page.fill("#f-signin-token", token)
    page.click("#signin")
    page.wait_for_selector(f"#session-user:has-text('{name}')")


def shot(page, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    modal = page.locator(".modal")
    if modal.count():  # the modal is fixed over the page: its own picture, whole
        modal.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    COPY_TO.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, COPY_TO / path.name)
    print(f"screenshot: {path} (copy: {COPY_TO / path.name})")
    return path


def open_modal(page, selector):
    page.click(selector)
    page.wait_for_selector("#promotion-modal #checklist-table")
    page.wait_for_selector("#chart-promotion.js-plotly-plot")  # drawn by plotly.js after the swap


def test_day3_promotion_journey(chromium_browser, live, campaign):  # noqa: F811
    base, tokens, shots = live

    # -- ops proposes and signs the ops step
    ops = Tab(chromium_browser, base)
    page = ops.page
    sign_in(page, base, "otto", tokens["otto"])
    page.click("header nav >> text=Campaigns")
    page.wait_for_url("**/trading/campaigns")
    page.click(f"#campaign-table a:has-text('{campaign.campaign_id}')")
    page.wait_for_url(f"**/trading/campaigns/{campaign.campaign_id}")
    assert page.locator("#day-table tbody tr").count() == 3
    shot(page, shots, "promotion-01-campaign")
    open_modal(page, "#day-table .review-button")
    assert page.locator("#checklist-table tr.fail").count() == 0
    assert page.locator("#checklist-table tr.pass").count() == 9
    assert page.inner_text("#promotion-title").endswith(BEST)
    assert "BTC" in page.inner_text("#allocation-amount")
    assert page.locator("#allocation-var tbody tr").count() == 4
    assert page.locator("#propose-button").is_enabled()
    shot(page, shots, "promotion-02-modal-ops")
    page.fill("#promotion-notes", "a06 passes every guard rail; holdout confirmed")
    page.click("#propose-button")
    page.wait_for_selector("#promotion-flash:has-text('Proposed a06')")
    assert page.inner_text("#promotion-status") == "proposed"
    page.fill("#promotion-notes", "ops: checked liquidity and the VaR of the allocation")
    page.click("#approve-button")
    page.wait_for_selector("#promotion-flash:has-text('is now ops_approved')")
    assert page.locator("#approve-button").is_disabled()
    assert page.inner_text("#approve-reason") == "you signed the ops step; another user must sign"
    shot(page, shots, "promotion-03-ops-signed")
    page.click("[data-close-modal]")
    assert page.locator("#promotion-modal").count() == 0
    ops.close()

    # -- a viewer sees the disabled button and why
    viewer = Tab(chromium_browser, base)
    page = viewer.page
    sign_in(page, base, "vera", tokens["vera"])
    page.goto(f"{base}/trading/cohorts/{campaign.day3}")
    open_modal(page, "#review-promotion")
    assert page.locator("#approve-button").is_disabled()
    assert page.inner_text("#approve-reason") == "viewer: needs role risk to sign risk_approved"
    assert page.locator("#reject-button").is_disabled()
    shot(page, shots, "promotion-04-viewer-disabled")
    viewer.close()

    # -- risk sees the ops signature and signs the risk step
    risk = Tab(chromium_browser, base)
    page = risk.page
    sign_in(page, base, "rita", tokens["rita"])
    page.goto(f"{base}/trading/campaigns/{campaign.campaign_id}")
    open_modal(page, "#day-table .review-button")
    signers = page.locator("#signature-table tbody tr")
    assert signers.count() == 2
    assert signers.nth(1).locator("td.user").inner_text() == "otto"
    assert signers.nth(1).locator("td.role").inner_text() == "ops"
    assert "checked liquidity" in signers.nth(1).locator("td.notes").inner_text()
    assert page.locator("#approve-button").is_enabled()
    shot(page, shots, "promotion-05-risk-sees-ops")
    page.fill("#promotion-notes", "risk: allocation within limits")
    page.click("#approve-button")
    page.wait_for_selector("#promotion-flash:has-text('is now risk_approved')")
    assert page.inner_text("#promotion-status") == "risk_approved"
    assert page.locator("#signature-table tbody tr").count() == 3
    shot(page, shots, "promotion-06-risk-approved")
    risk.close()
