"""The assistant's dashboard pages (issue 15), rendered by the whole app on a real SQLite store:
the quick actions of ``/trading/cohorts``; the "Grow $X over N days" form whose feasibility
figures (probability, fan chart, VaR/CVaR) are checked against :mod:`manager.feasibility` run
here on the same evidence and against a bootstrap written out here; role gating, CSRF and the
refusal; confirmation and the plan page (plan against actual day by day); the toasts; and the
``/knowledge`` history with its filters, links and CSV / PDF exports.

The evidence is six completed one-day cohort runs stored on ``binance-5m|5m|BTC`` (2018-01-10 ..
2018-01-15, parent ROIs :data:`ROIS`); plans replay the real binance-5m bars (no day is run here:
confirmation's dispatch is replaced by a recorder)."""
from __future__ import annotations

import csv
import io
import re
import shutil
from html import unescape

import numpy as np
import pytest

pytest.importorskip("httpx")

from manager import deployments as D  # noqa: E402
from manager import intents, knowledge, users  # noqa: E402
from manager.feasibility import assess, cohort_daily_returns  # noqa: E402
from manager.store import open_store  # noqa: E402
from risk.var import historical_cvar, historical_var  # noqa: E402
from tests.api.deployment_store import deploy  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import figure, no_external, parse, table_rows  # noqa: E402
from tests.web import session  # noqa: E402
from tests.web.session import app_client  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

MARKET = "binance-5m|5m|BTC"
ROIS = [0.004, -0.002, 0.006, 0.001, 0.003, -0.001]
ROLES = {"otto": "ops", "vera": "viewer", "rita": "risk", "ada": "admin"}
FORM = {"bankroll": "1000", "days": "3", "target_kind": "return", "target": "0.5", "risk_appetite": "medium",
        "data": "binance-5m", "symbols": "ETH_BTC LTC_BTC", "agents": "4", "generations": "1"}


def seed_evidence(store, rois=ROIS, first_day=10) -> list[str]:
    """Completed one-day cohort runs on :data:`MARKET` (what a campaign day stores), one per ROI."""
    ids = []
    for i, roi in enumerate(rois):
        day, nxt = f"2018-01-{first_day + i:02d}", f"2018-01-{first_day + i + 1:02d}"
        header = {"day": day, "window_start": f"{day}T00:00:00Z", "window_end": f"{nxt}T00:00:00Z",
                  "bankroll": 1000.0, "quote": "BTC", "agents": 4, "data_label": str(BINANCE), "market": MARKET,
                  "seeded_from": "random"}
        rid = store.create_run({"kind": "cohort", "header": header, "genomes": [], "data_label": str(BINANCE),
                                "config": {"request": {"bankroll": 1000.0}}})
        store.complete_run(rid, summary={"parent": {"roi": roi}}, agents=[], trades=[], ledger=[], curves={},
                           timings={})
        ids.append(rid)
    return ids


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """``(path, tokens, facts)``: users, the evidence, a Day-3 go/no-go on a campaign, a leverage
    step down, a rolled-back deployment (its promotion too) and a knowledge entry."""
    path = tmp_path_factory.mktemp("web-assistant") / "template.db"
    tokens, facts = {}, {}
    with open_store(f"sqlite:///{path}") as store:
        for name, role in ROLES.items():
            _, tokens[name] = users.add_user(store, name, role, actor="test")
        facts["runs"] = seed_evidence(store)
        store.save_campaign({"campaign_id": "camp-kb", "market": MARKET, "run_ids": facts["runs"][:3],
                             "created_at": "2018-01-13T00:10:00Z",
                             "report": {"days": [{"date": f"2018-01-{10 + i}", "run_id": r}
                                                 for i, r in enumerate(facts["runs"][:3])]},
                             "go_no_go": {"3": {"decision": "no_go", "at": "2018-01-13T00:05:00+00:00",
                                                "blocking": ["no candidate passes the holdout"]}}})
        store.record_policy_decision({
            "decision_id": "dec-kb-1", "market": MARKET, "subject": "parent:camp-kb", "subject_kind": "parent",
            "period": "2018-01-12", "period_end": "2018-01-13T00:00:00Z", "previous_tier": 2.0, "tier": 1.0,
            "next_tier": 1.0, "trigger": "drawdown", "next_trigger": "", "rule": "drawdown above 5 %: step down",
            "rationale": {}, "config": {}, "source": facts["runs"][2], "decided_at": "2018-01-13T00:01:00Z"})
        store.record_policy_decision({
            "decision_id": "dec-kb-0", "market": MARKET, "subject": "parent:camp-kb", "subject_kind": "parent",
            "period": "2018-01-11", "period_end": "2018-01-12T00:00:00Z", "previous_tier": 2.0, "tier": 2.0,
            "next_tier": 2.0, "trigger": "hold", "next_trigger": "", "rule": "no change", "rationale": {},
            "config": {}, "source": facts["runs"][1], "decided_at": "2018-01-12T00:01:00Z"})
        dep = deploy(store, steps=4, campaign_id="camp-kb")
        D.rollback(store, dep["deployment_id"], "manual", market=D.deployment_market(dep),
                   actor=users.Principal("rita", "risk"), notes="kb drill")
        facts["deployment"], facts["promotion"] = dep["deployment_id"], dep["promotion_id"]
        entry = knowledge.log_entry(store, "assistant.fund_tomorrow", "what should I fund tomorrow?",
                                    "Nothing passes: hold.", market=MARKET,
                                    links=[knowledge.link("campaign", "camp-kb"),
                                           knowledge.link("promotion", dep["promotion_id"]),
                                           knowledge.link("run", facts["runs"][0])],
                                    created_at="2018-01-14T08:00:00Z")
        facts["entry"] = entry["entry_id"]
    return path, tokens, facts


@pytest.fixture()
def env(template, tmp_path, monkeypatch):
    """``(store url, tokens, facts, started)`` on a fresh copy of :func:`template`; confirmation's
    dispatch is recorded in ``started`` instead of running the days."""
    path, tokens, facts = template
    shutil.copy(path, tmp_path / "assistant.db")
    url = f"sqlite:///{tmp_path / 'assistant.db'}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.setenv("COHORTLAB_DATA_ROOTS", str(BINANCE.parent))
    monkeypatch.setenv("COHORTLAB_DATA_DIR", str(BINANCE))
    monkeypatch.delenv("COHORTLAB_API_TOKEN", raising=False)
    started: list[str] = []
    monkeypatch.setattr(intents, "start_plan", lambda doc: started.append(doc["intent_id"]) or {"mode": "test"})
    return url, tokens, facts, started


@pytest.fixture()
def client(env):
    with app_client() as c:
        yield c


def sign_in(client, tokens, name) -> str:
    """Sign ``name`` in; returns the session's CSRF token."""
    return session.sign_in(client, tokens, name, "/trading/assistant/grow")


def page_csrf(client) -> str:
    return session.page_csrf(client, "/trading/assistant/grow")


def post(client, path, data, csrf):
    return client.post(path, data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})


def text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def intents_in(url) -> list[dict]:
    with open_store(url) as store:
        return store.list_intents()


# ----------------------------------------------------------------- quick actions and the form


def test_quick_actions_on_the_cohort_list(client):
    html = client.get("/trading/cohorts").text
    links = {a: h for a, h in re.findall(r'<a class="quick" id="(qa-[a-z]+)" href="([^"]+)"', html)}
    assert links == {"qa-start": "/trading/cohorts/new", "qa-review": "/trading/campaigns",
                     "qa-grow": "/trading/assistant/grow"}
    assert "Start intraday cohort" in html and "Review Day-3 promotion" in html and "Grow $X over N days" in html
    for href in links.values():
        assert client.get(href).status_code == 200


def test_grow_form_has_defaults_and_posts_over_htmx(client):
    r = client.get("/trading/assistant/grow", params={"bankroll": "500", "days": "7"})
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert 'hx-post="/trading/assistant/grow"' in html and 'hx-target="#grow-result"' in html
    assert re.search(r'id="g-bankroll"[^>]*value="500"', html) and re.search(r'id="g-days"[^>]*value="7"', html)
    assert re.search(r'id="g-target"[^>]*value="2"', html)  # default: +2 %
    assert '<option value="binance-5m">' in html  # the data folders by name, never a server path
    assert str(BINANCE.parent) not in html
    assert "<script>" not in html and " onclick=" not in html  # CSP: no inline scripts or handlers


# ----------------------------------------------------------------- feasibility against an independent computation


def test_feasibility_figures_match_manager_feasibility_and_an_independent_bootstrap(client, env):
    url, tokens, _, _ = env
    csrf = sign_in(client, tokens, "otto")
    r = post(client, "/trading/assistant/grow", FORM, csrf)
    assert r.status_code == 200, r.text
    html = r.text
    (doc,) = intents_in(url)
    assert doc["status"] == "draft" and doc["start"] == "2018-01-16" and doc["actor"] == "user:otto"
    assert f'data-intent="{doc["intent_id"]}"' in html and 'id="grow-status">draft<' in html
    # prerequisites: each named with pass/fail
    rows = table_rows(html, "prereq-table")
    assert [re.search(r'data-check="(\w+)" data-status="(\w+)"', row).groups() for row in rows] == [
        ("data", "pass"), ("store", "pass"), ("broker", "pass"), ("kill_switch", "pass")]

    # the same assessment, recomputed here from the store's evidence (point in time: before the start)
    with open_store(url) as store:
        ev = cohort_daily_returns(store, MARKET, before="2018-01-16T00:00:00+00:00")
    assert sorted(ev.returns.tolist()) == sorted(ROIS)
    feas = assess(ev, bankroll=1000.0, target_return=0.005, days=3, risk_appetite="medium", seed=7, quote="BTC")
    prob = float(re.search(r'id="probability" data-value="([^"]+)"', html).group(1))
    assert prob == feas["probability"]
    assert f">{feas['probability'] * 100:.2f} %</strong>" in html

    # an independent bootstrap: numpy's default_rng(7) draws day indices, paths compounded here
    r_ = np.asarray(ev.returns)
    idx = np.random.default_rng(7).integers(0, r_.size, size=(10_000, 3))
    equity = 1000.0 * np.cumprod(1.0 + r_[idx], axis=1)
    assert prob == pytest.approx(float(np.mean(equity[:, -1] >= 1005.0 - 1e-9)), abs=1e-12)

    # the fan chart: day 0 = the bankroll, then the expected path and its 5-95 % band per day, the target
    fig = figure(html, "fig-fan")
    by = {t["name"]: t for t in fig["data"]}
    assert by["expected (bootstrap mean)"]["x"] == [0, 1, 2, 3]
    assert by["expected (bootstrap mean)"]["y"] == pytest.approx([1000.0] + equity.mean(axis=0).tolist())
    assert by["5-95 % band"]["y"] == pytest.approx([1000.0] + np.quantile(equity, 0.05, axis=0).tolist())
    assert by["95th percentile"]["y"] == pytest.approx([1000.0] + np.quantile(equity, 0.95, axis=0).tolist())
    assert by["5-95 % band"]["fill"] == "tonexty"
    assert by["target 1,005.00"]["y"] == pytest.approx([1005.0, 1005.0])
    assert [p["expected"] for p in feas["path"]] == pytest.approx(by["expected (bootstrap mean)"]["y"][1:])

    # bankroll at risk: one day and the whole plan, 95 and 99 %, with horizon and sample stated
    risk = {re.search(r'data-risk="([^"]+)"', row).group(1): row for row in table_rows(html, "risk-table")}
    assert set(risk) == {"one_day-95", "one_day-99", "plan-95", "plan-99"}
    one_day = r_[idx][:, 0]
    final = equity[:, -1] / 1000.0 - 1.0
    for key, draws, level in (("one_day-95", one_day, 0.95), ("plan-99", final, 0.99)):
        row = risk[key]
        assert re.search(r'class="num var">([^<]+)<', row).group(1) == f"{historical_var(draws, level) * 100:.2f} %"
        assert re.search(r'class="num cvar">([^<]+)<', row).group(1) == f"{historical_cvar(draws, level) * 100:.2f} %"
        assert "bootstrap" in row and "positive = loss" in row
    assert "one day" in risk["one_day-95"] and "3 day(s)" in risk["plan-95"]

    # the confirm step carries the draft's token
    assert re.search(r'name="confirm_token" value="([0-9a-f]{64})"', html).group(1) == doc["confirm_token"]
    assert f'hx-post="/trading/assistant/intents/{doc["intent_id"]}/confirm"' in html


def test_an_implausible_target_is_refused_with_its_figures_and_no_confirm(client, env):
    url, tokens, _, _ = env
    csrf = sign_in(client, tokens, "otto")
    r = post(client, "/trading/assistant/grow", {**FORM, "target": "40", "days": "2"}, csrf)
    assert r.status_code == 200
    (doc,) = intents_in(url)
    assert doc["status"] == "refused"
    refusal = text(re.search(r'id="grow-refusal"[^>]*>(.*?)</p>', r.text, re.S).group(1))
    assert refusal == text(doc["narrative"])
    assert refusal.startswith("Refused: needs 18.32 %/day (40.00 % over 2 day(s))")
    assert "6 cohort days on binance-5m|5m|BTC returned 0.18 % +/- 0.31 %/day" in refusal
    assert 'id="confirm-button"' not in r.text and "confirm_token" not in r.text


def test_bad_fields_are_named_and_nothing_is_drafted(client, env):
    url, tokens, _, _ = env
    csrf = sign_in(client, tokens, "otto")
    for bad, field in (({"bankroll": "10"}, "bankroll"), ({"days": "91"}, "days"), ({"days": "x"}, "days"),
                       ({"target_kind": "amount", "target": "900"}, "target"), ({"data": "nope"}, "data")):
        r = post(client, "/trading/assistant/grow", {**FORM, **bad}, csrf)
        assert r.status_code == 422, bad
        assert re.search(rf'<li data-field="{field}">', r.text), (bad, r.text)
    assert intents_in(url) == []


# ----------------------------------------------------------------- roles and CSRF


@pytest.mark.parametrize("caller, status", [("viewer", 403), ("risk", 403), ("ops", 200), ("admin", 200),
                                            ("signed out", 401)])
def test_drafting_and_confirming_need_the_launch_role(client, env, caller, status):
    url, tokens, _, started = env
    name = {"viewer": "vera", "risk": "rita", "ops": "otto", "admin": "ada"}.get(caller)
    csrf = sign_in(client, tokens, name) if name else page_csrf(client)
    r = post(client, "/trading/assistant/grow", FORM, csrf)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    if status != 200:
        assert "Nothing was drafted" in r.text and intents_in(url) == []
    # confirming someone else's draft needs the same role
    with open_store(url) as store:
        doc = intents.draft_grow(store, intents.GrowInput(bankroll=1000.0, days=2, target_return=0.001,
                                                          data=str(BINANCE), symbols=["ETH_BTC"], n_paths=500))
    r = post(client, f"/trading/assistant/intents/{doc['intent_id']}/confirm", {"confirm_token": doc["confirm_token"]},
             csrf)
    if status == 200:
        assert r.status_code == 200 and r.headers["HX-Redirect"] == f"/trading/assistant/intents/{doc['intent_id']}"
        assert started == [doc["intent_id"]]
    else:
        assert r.status_code == status and "Nothing was started" in r.text and started == []
        with open_store(url) as store:
            assert store.get_intent(doc["intent_id"])["status"] == "draft"


def test_posts_without_the_csrf_token_are_refused(client, env):
    url, tokens, _, started = env
    sign_in(client, tokens, "otto")
    r = client.post("/trading/assistant/grow", data=FORM, headers={"HX-Request": "true"})
    assert r.status_code == 403 and "CSRF" in r.text
    assert client.post("/trading/assistant/grow", data={**FORM, "csrf_token": "forged"}).status_code == 403
    assert intents_in(url) == []
    with open_store(url) as store:
        doc = intents.draft_grow(store, intents.GrowInput(bankroll=1000.0, days=2, target_return=0.001,
                                                          data=str(BINANCE), n_paths=500))
    r = client.post(f"/trading/assistant/intents/{doc['intent_id']}/confirm",
                    data={"confirm_token": doc["confirm_token"]})
    assert r.status_code == 403 and started == []
    assert client.post("/toasts/dismiss", data={"alert_id": "all"}).status_code == 403


# ----------------------------------------------------------------- confirm and the plan page


def test_confirm_then_the_plan_page_shows_plan_and_actual_day_by_day(client, env):
    url, tokens, _, started = env
    csrf = sign_in(client, tokens, "otto")
    post(client, "/trading/assistant/grow", FORM, csrf)
    (doc,) = intents_in(url)
    iid = doc["intent_id"]
    # a stale token: refused with the reason, nothing starts
    r = post(client, f"/trading/assistant/intents/{iid}/confirm", {"confirm_token": "0" * 64}, csrf)
    assert r.status_code == 409 and "does not match the draft" in r.text and started == []
    # without HTMX: a 303 to the plan page
    r = client.post(f"/trading/assistant/intents/{iid}/confirm",
                    data={"confirm_token": doc["confirm_token"], "csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"] == f"/trading/assistant/intents/{iid}"
    assert started == [iid]
    r = client.get(f"/trading/assistant/intents/{iid}")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert 'id="plan-status">running<' in html
    assert f'hx-get="/trading/assistant/intents/{iid}/live"' in html and 'hx-trigger="every 5s"' in html
    with open_store(url) as store:
        plan = store.get_intent(iid)["plan"]
    rows = table_rows(html, "plan-table")
    assert [re.search(r'data-day="(\d+)"', row).group(1) for row in rows] == ["1", "2", "3"]
    for row, p in zip(rows, plan):
        assert p["date"] in row and f'href="/trading/cohorts/{p["run_id"]}"' in row
        assert re.search(r'class="num planned-equity">([^<]+)<', row).group(1) == f"{p['expected_equity']:,.2f}"
        assert 'data-reported="no"' in row
    assert 'id="no-narratives"' in html
    fig = figure(html, "fig-plan")
    assert [t["name"] for t in fig["data"]] == ["95th percentile", "5-95 % band", "expected (bootstrap mean)",
                                                "target 1,005.00"]

    # day 1 reported (the shape run_intent_day appends): actual against plan, narrative, chart
    p1 = plan[0]
    end = 1000.0 * 1.0042
    with open_store(url) as store:
        store.add_intent_report(iid, {"day": 1, "date": p1["date"], "run_id": p1["run_id"], "plan": p1,
                                      "actual": {"roi": 0.0042, "start_equity": 1000.0, "end_equity": end,
                                                 "max_drawdown": 0.01, "tier": 2.0,
                                                 "within_band": p1["p05"] <= end <= p1["p95"]},
                                      "baselines": {"random_percentile": None, "buy_and_hold_roi": 0.001,
                                                    "cash_roi": 0.0},
                                      "cumulative": {"planned_equity": p1["expected_equity"], "actual_equity": end},
                                      "narrative": "Day 1/3: the cohort returned 0.42 %."})
    r = client.get(f"/trading/assistant/intents/{iid}/live", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="intent-live"')
    row = table_rows(r.text, "plan-table")[0]
    assert 'data-reported="yes"' in row and ">0.42 %<" in row and f">{end:,.2f}<" in row
    assert f">{end - p1['expected_equity']:,.2f}<" in row
    assert "Day 1/3: the cohort returned 0.42 %." in r.text
    actual = {t["name"]: t for t in figure(r.text, "fig-plan")["data"]}["actual"]
    assert actual["x"] == [0, 1] and actual["y"] == pytest.approx([1000.0, end])
    # finished: the live part carries no trigger (polling stops)
    with open_store(url) as store:
        store.update_intent(iid, {"status": "failed", "reason": "day 2: drill"})
    r = client.get(f"/trading/assistant/intents/{iid}/live", headers={"HX-Request": "true"})
    assert "hx-trigger" not in r.text.split(">", 1)[0] and "day 2: drill" in r.text
    assert client.get("/trading/assistant/intents/int-000000000000").status_code == 404


# ----------------------------------------------------------------- toasts


def test_toasts_show_recent_alerts_and_dismiss_per_session(client, env):
    url, tokens, facts, _ = env
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat()
    with open_store(url) as store:
        for rule, subject in (("kill_switch", "kill_switch"), ("rollback", facts["deployment"]),
                              ("parent_drawdown", "run-x")):
            store.create_alert({"alert_id": f"al-{rule}", "rule": rule, "subject": subject, "severity": "critical",
                                "title": f"{rule} happened", "body": "b", "created_at": now})
    assert client.get("/toasts").text.strip() == ""  # signed out: nothing
    csrf = sign_in(client, tokens, "otto")
    html = client.get("/toasts").text
    shown = re.findall(r'data-alert="([^"]+)" data-rule="([^"]+)"', html)
    # the two raised here and the template's own rollback alert (raised by D.rollback), newest first
    assert {("al-kill_switch", "kill_switch"), ("al-rollback", "rollback")} < set(shown)
    assert {rule for _, rule in shown} == {"kill_switch", "rollback"}
    assert "parent_drawdown" not in html  # not a toast rule
    assert 'hx-post="/toasts/dismiss"' in html
    r = post(client, "/toasts/dismiss", {"alert_id": "al-rollback"}, csrf)
    assert r.status_code == 200 and "al-rollback" not in r.text and "al-kill_switch" in r.text
    assert "al-rollback" not in client.get("/toasts").text
    r = post(client, "/toasts/dismiss", {"alert_id": "all"}, csrf)
    assert 'data-alert="' not in r.text
    base = client.get("/trading/cohorts").text
    assert '<div id="toasts"' in base and 'hx-get="/toasts"' in base and 'hx-trigger="load, every 15s"' in base


def test_pending_approvals_count_for_the_role(env):
    from manager.assistant_views import pending_approvals

    url = env[0]
    chain = {"steps": [{"role": "ops", "status": "ops_approved"}, {"role": "risk", "status": "risk_approved"}]}

    class Fake:
        def list_promotions(self, limit=200):
            return [{"promotion_id": "p1", "status": "proposed", "chain": chain, "steps": []},
                    {"promotion_id": "p2", "status": "ops_approved", "chain": chain, "steps": [{"kind": "approve"}]},
                    {"promotion_id": "p3", "status": "risk_approved", "chain": chain,
                     "steps": [{"kind": "approve"}, {"kind": "approve"}]},
                    {"promotion_id": "p4", "status": "rejected", "chain": chain, "steps": []}]

    assert [p["promotion_id"] for p in pending_approvals(Fake(), "ops")] == ["p1"]
    assert [p["promotion_id"] for p in pending_approvals(Fake(), "risk")] == ["p2"]
    assert [p["promotion_id"] for p in pending_approvals(Fake(), "admin")] == ["p1", "p2"]
    assert pending_approvals(Fake(), "viewer") == [] and url


# ----------------------------------------------------------------- /knowledge


def _items(html):
    return [(re.search(r'data-kind="([^"]+)"', row).group(1), row) for row in table_rows(html, "knowledge-table")]


def test_knowledge_history_merges_every_kind_with_links(client, env):
    url, tokens, facts, _ = env
    csrf = sign_in(client, tokens, "otto")
    post(client, "/trading/assistant/grow", FORM, csrf)
    (doc,) = intents_in(url)
    r = client.get("/knowledge")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert '<a href="/knowledge" aria-current="page">Knowledge</a>' in html
    items = _items(html)
    kinds = {k for k, _ in items}
    assert kinds == {"cohort", "bankroll", "day3", "leverage", "rollback", "assistant"}
    hrefs = {h for _, _, h in parse(html).urls if h.startswith("/trading/")}
    for rid in facts["runs"]:
        assert f"/trading/cohorts/{rid}" in hrefs
    assert f"/trading/assistant/intents/{doc['intent_id']}" in hrefs
    assert f"/trading/deployments/{facts['deployment']}" in hrefs and "/trading/campaigns/camp-kb" in hrefs
    day3 = [row for k, row in items if k == "day3"]
    assert any("Day-3 go/no-go of campaign camp-kb: no_go" in row and "no candidate passes the holdout" in row
               for row in day3)
    assert any(f"promotion {facts['promotion']}" in row and f'href="/trading/deployments/{facts["deployment"]}"' in row
               for row in day3)
    (lev,) = [row for k, row in items if k == "leverage"]  # only the decision that changed the tier
    assert "parent:camp-kb: 2x -&gt; 1x (drawdown)" in lev and f'href="/trading/cohorts/{facts["runs"][2]}"' in lev
    (rb,) = [row for k, row in items if k == "rollback"]
    assert "manual" in rb and "kb drill" in rb
    (kb,) = [row for k, row in items if k == "assistant"]
    # a promotion link goes to its campaign's page (where its review lives)
    assert f'<a href="/trading/campaigns/camp-kb" data-link="promotion">promotion {facts["promotion"]}</a>' in kb
    # every link resolves to a page
    for href in sorted(hrefs):
        assert client.get(href).status_code == 200, href


def test_knowledge_filters_by_kind_date_and_market(client, env):
    url, _, facts, _ = env
    only = _items(client.get("/knowledge", params={"kind": "leverage,day3"}).text)
    assert {k for k, _ in only} == {"leverage", "day3"}
    cohorts = _items(client.get("/knowledge", params={"kind": "cohort", "start": "2018-01-11",
                                                      "end": "2018-01-13"}).text)
    assert sorted(re.search(r'data-id="([^"]+)"', row).group(1) for _, row in cohorts) == sorted(facts["runs"][1:4])
    assert 'id="knowledge-empty"' in client.get("/knowledge", params={"market": "coinbase-1m|1m|USD"}).text
    assert {k for k, _ in _items(client.get("/knowledge", params={"market": MARKET}).text)} >= {"cohort", "leverage"}
    assert client.get("/knowledge", params={"kind": "gossip"}).status_code == 400
    assert client.get("/knowledge", params={"start": "13/01/2018"}).status_code == 400


def test_knowledge_csv_and_pdf_exports(client, env):
    url, _, facts, _ = env
    r = client.get("/knowledge/export.csv", params={"kind": "cohort", "start": "2018-01-11", "end": "2018-01-13"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == list(knowledge.HISTORY_FIELDS)
    assert sorted(row["links"] for row in rows) == sorted(f"run:{rid}=/trading/cohorts/{rid}"
                                                          for rid in facts["runs"][1:4])
    assert {row["market"] for row in rows} == {MARKET} and {row["kind"] for row in rows} == {"cohort"}
    assert sorted(row["date"] for row in rows) == ["2018-01-11", "2018-01-12", "2018-01-13"]
    everything = list(csv.DictReader(io.StringIO(client.get("/knowledge/export.csv").text)))
    with open_store(url) as store:
        assert len(everything) == knowledge.history(store)["total"]
    pytest.importorskip("weasyprint")
    r = client.get("/knowledge/export.pdf", params={"kind": "rollback"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")


def test_entries_for_day_feed_the_daily_report(env):
    url, _, facts, _ = env
    from manager import reports

    with open_store(url) as store:
        got = knowledge.entries_for_day(store, "2018-01-14")
        assert [e["title"] for e in got] == ["what should I fund tomorrow?"]
        assert got[0]["text"] == "Nothing passes: hold." and f"promotion:{facts['promotion']}" in got[0]["links"]
        assert knowledge.entries_for_day(store, "2018-01-15") == []
        assert reports.knowledge_entries(store, "2018-01-14") == got
