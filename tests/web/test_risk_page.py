"""The ``/risk/leverage`` page: tiers, bankroll at risk, kill switch, tier chart and the
audit log of policy decisions, rendered from a store holding decisions made by
:func:`risk.policy.decide` (recorded as :func:`manager.policy.record_policy_day` does)
and one real completed cohort; and the empty states of an empty store.

:func:`seed_policy` is shared with ``tests/api/test_risk.py`` and the browser journey.
"""
from __future__ import annotations

import json
import re
from html import unescape

import pandas as pd
import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from manager.launch import execute_cohort  # noqa: E402
from manager.runner import BarsRequest, CohortRequest  # noqa: E402
from manager.store import open_store  # noqa: E402
from risk.policy import PeriodRecord, decide, decision_id  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402

MARKET = "binance-5m|5m|BTC"
OTHER_MARKET = "binance-1h|1h|BTC"
DAYS = ("2018-01-15", "2018-01-16", "2018-01-17", "2018-01-18")
# per subject, per day: (return, annualised Sharpe, max drawdown, trades)
TRACKS = {
    "parent:camp1": [(0.02, 3.0, 0.01, 10), (0.03, 2.5, 0.01, 8), (-0.01, -1.0, 0.02, 5), (0.01, 0.5, 0.01, 6)],
    "lineage:g001": [(0.01, 2.0, 0.005, 6), (0.02, 0.5, 0.04, 2), (0.02, 3.0, 0.01, 9), (0.02, 4.0, 0.01, 9)],
    "lineage:g002": [(-0.02, -2.0, 0.08, 7), (0.01, 1.0, 0.01, 4), (0.01, 2.0, 0.01, 1), (-0.01, -0.5, 0.02, 4)],
}


def seed_policy(store, *, market: str = MARKET, source: str = "camp1") -> list[dict]:
    """Record every decision of :data:`TRACKS` on ``market`` (12 decisions: 3 subjects x 4 days,
    built as :func:`manager.policy.record_policy_day` builds them); returns the stored docs,
    oldest first."""
    out = []
    for subject, track in TRACKS.items():
        records, tier = [], 2.0
        for day, (ret, sharpe, dd, trades) in zip(DAYS, track):
            end = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            records.append(PeriodRecord(period=day, end=end, tier=tier, ret=ret, pnl=ret * 1000, sharpe=sharpe,
                                        max_drawdown=dd, trades=trades, n_bars=288, bar_mean=ret / 288,
                                        bar_var=1e-6, exposure=1.0, timeframe="5m"))
            d = decide(subject, records)
            doc = {**d.to_dict(), "decision_id": decision_id(market, subject, day), "market": market,
                   "source": source, "decided_at": end}
            stored, _ = store.record_policy_decision(doc)
            out.append(stored)
            tier = d.tier
    return out


def latest_by_subject(docs: list[dict]) -> dict[str, dict]:
    return {d["subject"]: d for d in sorted(docs, key=lambda d: d["period_end"])}


def run_cohort(store) -> str:
    """One small real completed cohort (3 agents, 2018-01-15); its run id."""
    req = CohortRequest(bars=BarsRequest(data=str(BINANCE), start="2018-01-15"), bankroll=1000.0, agents=3, seed=5)
    run_id, _, _ = execute_cohort(req, store)
    return run_id


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture(scope="module")
def policy_store(tmp_path_factory):
    """``(url, docs, run_id)``: decisions on two markets, a completed cohort, the kill switch on."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    url = f"sqlite:///{tmp_path_factory.mktemp('risk-web')}/risk.db"
    with open_store(url) as store:
        docs = seed_policy(store)
        seed_policy(store, market=OTHER_MARKET, source="camp2")
        run_id = run_cohort(store)
        store.set_kill_switch(True, actor="cli:alice", reason="exchange outage drill")
    return url, docs, run_id


def _client(url, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", url)
    services.close_shared_store()
    return TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1")


@pytest.fixture()
def client(policy_store, monkeypatch):
    with _client(policy_store[0], monkeypatch) as c:
        yield c
    services.close_shared_store()


@pytest.fixture()
def empty_client(tmp_path, monkeypatch):
    with _client(f"sqlite:///{tmp_path}/empty.db", monkeypatch) as c:
        yield c
    services.close_shared_store()


def _section(html: str, id_: str) -> str:
    m = re.search(rf'<(section|table)[^>]*id="{id_}".*?</\1>', html, re.S)
    assert m, f"no #{id_} in the page"
    return m.group(0)


def test_nav_links_to_the_page(client):
    html = client.get("/trading/cohorts").text
    assert 'href="/risk/leverage"' in html


def test_tier_table_shows_the_latest_decision_of_each_subject(client, policy_store):
    _, docs, _ = policy_store
    r = client.get(f"/risk/leverage?market={MARKET}")
    assert r.status_code == 200
    table = _section(r.text, "tier-table")
    rows = re.findall(r'<tr data-subject="([^"]+)">(.*?)</tr>', table, re.S)
    assert [s for s, _ in rows][0] == "parent:camp1"  # parents first
    assert sorted(s for s, _ in rows) == sorted(TRACKS)
    latest = latest_by_subject(docs)
    for subject, row in rows:
        text = text_of(row)
        d = latest[subject]
        # the kill switch is on: every tier reads 0x, next is the base tier once it is off
        assert "0×" in re.search(r'class="num tier">(.*?)</td>', row, re.S).group(1)
        assert "2× on the kill switch turned off" in text
        assert f"{d['down_tier']:g}× on {d['down_trigger']}" in text
        # the rule says why it is 0x now, and which stored tier returns when the switch is off
        assert "exchange outage drill" in text and f"the stored tier {d['tier']:g}x returns" in text
        assert "kill_switch" in text


def test_tier_table_without_kill_switch_shows_stored_tiers(policy_store, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/nokill.db"
    with open_store(url) as store:
        docs = seed_policy(store)
    latest = latest_by_subject(docs)
    with _client(url, monkeypatch) as c:
        html = c.get("/risk/leverage").text
    services.close_shared_store()
    table = _section(html, "tier-table")
    for subject, d in latest.items():
        row = re.search(rf'<tr data-subject="{re.escape(subject)}">(.*?)</tr>', table, re.S).group(1)
        text = text_of(row)
        assert f"{d['tier']:g}×" in text_of(re.search(r'class="num tier">(.*?)</td>', row, re.S).group(1))
        assert f"{d['next_tier']:g}× on {d['next_trigger']}" in text
        assert d["trigger"] in text
    assert latest["parent:camp1"]["tier"] == 3.0 and latest["lineage:g001"]["tier"] == 5.0  # the seeded story
    assert "Off (never set)" in html


def test_kill_switch_status_and_history(client):
    html = client.get("/risk/leverage").text
    ks = text_of(_section(html, "kill-switch"))
    assert "ON since" in ks and "cli:alice" in ks and "exchange outage drill" in ks
    history = text_of(_section(html, "kill-switch-history"))
    assert "on cli:alice exchange outage drill" in history
    assert "kill switch ON" in html


def test_bankroll_at_risk_of_the_latest_cohort(client, policy_store):
    _, _, run_id = policy_store
    html = client.get("/risk/leverage").text
    section = _section(html, "bankroll-at-risk")
    assert f'href="/trading/cohorts/{run_id}"' in section
    var = text_of(_section(section, "var-table"))
    for method in ("historical", "cornish_fisher"):
        assert method in var
    assert "95 %" in var and "99 %" in var
    assert "Horizon: one bar" in text_of(section)
    stress = text_of(_section(section, "stress-table"))
    assert "Scenario" in stress and len(re.findall(r"<tr>", _section(section, "stress-table"))) >= 3
    assert "No hard stop fired" in section


def test_chart_figure_holds_every_subject_path(client, policy_store):
    _, docs, _ = policy_store
    html = client.get(f"/risk/leverage?market={MARKET}").text
    assert 'data-figure="fig-tiers"' in html and '<script src="/static/vendor/plotly.min.js"' in html
    fig = json.loads(re.search(r'<script type="application/json" id="fig-tiers">(.*?)</script>', html, re.S).group(1))
    traces = {t["name"]: t for t in fig["data"]}
    assert set(traces) == set(TRACKS)
    for subject in TRACKS:
        path = [d for d in docs if d["subject"] == subject]
        assert traces[subject]["y"] == [d["tier"] for d in path]
        assert traces[subject]["line"]["shape"] == "hv"
    assert "<script>" not in html  # no inline script (CSP script-src 'self')


def test_audit_log_pages_and_rationale(client, policy_store):
    _, docs, _ = policy_store
    html = client.get(f"/risk/leverage?market={MARKET}").text
    log = _section(html, "risk-decisions")
    # newest period first; ties by subject ascending
    expected = sorted(docs, key=lambda d: d["subject"])
    expected = sorted(expected, key=lambda d: d["period_end"], reverse=True)
    ids = re.findall(r'data-decision="([0-9a-f]+)"', log)
    assert ids == [d["decision_id"] for d in expected[:10]]
    assert "12 decisions matching" in text_of(log) and "Page 1 of 2" in text_of(log)
    first = expected[0]
    row = log.split(f'data-decision="{first["decision_id"]}"', 1)[1].split('<tr class="decision"', 1)[0]
    assert "<details" in row and first["rule"] in unescape(row)
    for f in first["rationale"]["figures"]:
        fig_row = text_of(re.search(rf'data-name="{f["name"]}">(.*?)</tr>', row, re.S).group(1))
        assert str(f["value"]) in fig_row and f["unit"] in fig_row and f["sample"] in fig_row
        assert ("yes" if f["annualised"] else "no") in fig_row
    # page 2 through the HTMX partial: the two oldest decisions
    r = client.get(f"/risk/leverage/decisions?market={MARKET.replace('|', '%7C')}&page=2",
                   headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<section id="risk-decisions"')
    assert re.findall(r'data-decision="([0-9a-f]+)"', r.text) == [d["decision_id"] for d in expected[10:]]
    assert "Page 2 of 2" in text_of(r.text) and "<html" not in r.text


def test_audit_log_filters_by_subject(client, policy_store):
    _, docs, _ = policy_store
    r = client.get("/risk/leverage/decisions", params={"market": MARKET, "subject": "lineage:g002"})
    ids = re.findall(r'data-decision="([0-9a-f]+)"', r.text)
    assert ids == [d["decision_id"] for d in reversed([d for d in docs if d["subject"] == "lineage:g002"])]
    assert "/api/risk/decisions?format=csv&amp;market=" in r.text


def test_hard_stop_events_are_listed(client, monkeypatch):
    import manager.policy as mp

    real = mp.leverage_panel

    def with_stop(store, **kw):
        panel = real(store, **kw)
        panel["hard_stops"] = [{"kind": "daily_hard_stop", "time": "2018-01-15T13:05:00Z", "parent_equity": 940.5,
                                "reference_equity": 1000.0, "drawdown": 0.0595, "threshold": 0.05}]
        return panel

    monkeypatch.setattr(mp, "leverage_panel", with_stop)
    table = text_of(_section(client.get("/risk/leverage").text, "hard-stops"))
    assert "2018-01-15 13:05" in table and "940.50" in table and "5.95 %" in table and "5.00 %" in table


def test_empty_store_says_what_to_run(empty_client):
    r = empty_client.get("/risk/leverage")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "No tiers yet: run cohortlab campaign --policy ..." in text
    assert "No decisions yet: run cohortlab campaign --policy ..." in text
    assert "No completed cohort yet" in text
    assert "Off (never set)" in text
    assert 'data-figure="fig-tiers"' not in r.text


def test_out_of_range_page_and_bad_page(client):
    r = client.get(f"/risk/leverage/decisions?market={MARKET.replace('|', '%7C')}&page=9")
    assert "There is no page 9" in text_of(r.text)
    r = client.get("/risk/leverage/decisions?page=x")
    assert r.status_code == 200 and "page 'x' must be a whole number" in unescape(r.text)
