"""One cohort over HTTP: ``GET /api/cohorts/{run_id}`` (report, curves, limits, header),
its agents and its ledger (see ``conftest.py`` for the server)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_cohort_detail(client, runs):
    run = runs[1]
    r = client.get(f"/api/cohorts/{run['run_id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["run"]["run_id"] == run["run_id"] and body["run"]["status"] == "completed"
    assert body["run"]["data_label"] == BINANCE.name and body["run"]["finished_at"]
    header = body["run"]["header"]  # the typed header the runner wrote, not worked out from the request
    assert {k: v for k, v in header.items() if k not in ("market", "seeded_from")} == {
        "day": "2018-01-16", "window_start": "2018-01-16T00:00:00Z", "window_end": "2018-01-17T00:00:00Z",
        "bankroll": 500.0, "quote": "BTC", "agents": 6, "data_label": BINANCE.name}
    assert header["market"] == "binance-5m|5m|BTC" and header["seeded_from"] == body["summary"]["seeded_from"]
    summary = body["summary"]
    assert summary["parent"]["final_equity"] == pytest.approx(run["report"]["parent"]["final_equity"])
    assert [a["agent_id"] for a in summary["agents"]] == [a["agent_id"] for a in run["report"]["agents"]]
    assert "final_state" not in summary
    curves = body["curves"]
    bars = run["report"]["window"]["bars"]
    assert len(curves["timestamps"]) == len(curves["parent_equity"]) == bars == 288
    assert curves["timestamps"][0] == "2018-01-16T00:00:00Z" and curves["timestamps"][-1] == "2018-01-16T23:55:00Z"
    assert sorted(curves["agent_equity"]) == sorted(a["agent_id"] for a in summary["agents"])
    assert all(len(v) == bars for v in curves["agent_equity"].values())
    assert curves["parent_equity"][-1] == pytest.approx(summary["parent"]["final_equity"])
    assert len(curves["gross_exposure"]) == len(curves["utilisation"]) == bars
    assert max(curves["gross_exposure"]) == pytest.approx(summary["parent"]["peak_gross_exposure"])
    assert max(curves["utilisation"]) == pytest.approx(summary["parent"]["peak_utilisation"])
    assert body["limits"] == {"max_gross_leverage": 0.8, "max_symbol_exposure": 1.0}
    assert max(curves["gross_exposure"]) <= 0.8 + 1e-6


def test_agent_detail_has_trades_equity_and_prices(client, runs):
    run = next(r for r in runs if any(a["trades"] for a in r["report"]["agents"]))
    agent = next(a for a in run["report"]["agents"] if a["trades"])
    r = client.get(f"/api/cohorts/{run['run_id']}/agents/{agent['agent_id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent"]["agent_id"] == agent["agent_id"] and body["agent"]["genome"]["family"] == agent["family"]
    trades = body["trades"]
    assert len(trades) == agent["trades"] and all(t["agent_id"] == agent["agent_id"] for t in trades)
    assert len(body["equity"]["timestamps"]) == len(body["equity"]["values"]) == 288
    assert body["equity"]["values"][-1] == pytest.approx(agent["final_equity"])
    traded = {t["symbol"] for t in trades}
    assert set(body["prices"]) == traded and body["prices_error"] is None
    for symbol, bars in body["prices"].items():
        n = len(bars["timestamps"])
        assert n == 288 and all(len(bars[k]) == n for k in ("open", "high", "low", "close"))
        assert bars["timestamps"] == body["equity"]["timestamps"]
        assert all(h >= lo for h, lo in zip(bars["high"], bars["low"]))
    t = trades[0]  # the fill happened at a bar's open (plus slippage): near that bar's open price
    bars = body["prices"][t["symbol"]]
    i = bars["timestamps"].index(t["entry_time"])
    assert t["entry_price"] == pytest.approx(bars["open"][i], rel=1e-3)


def test_ledger_pages_add_up_to_the_journal(client, runs):
    run = runs[0]
    first = client.get(f"/api/cohorts/{run['run_id']}/ledger", params={"page_size": 10}).json()
    total = run["report"]["ledger"]["transactions"]
    assert first["total"] == total and first["pages"] == -(-total // 10) and first["next_page"] == 2
    txns, page = [], 1
    while page is not None:
        p = client.get(f"/api/cohorts/{run['run_id']}/ledger", params={"page": page, "page_size": 10}).json()
        txns += p["items"]
        page = p["next_page"]
    assert [t["seq"] for t in txns] == list(range(total))
    for t in txns:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0
    assert txns[0]["kind"] == "deposit"
