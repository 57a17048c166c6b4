"""``GET /trading/cohorts/{run_id}/agents/{agent_id}``: trades on the candlesticks,
equity, genome and metrics of one agent."""
from __future__ import annotations

import pytest

pytest.importorskip("httpx")

from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import figure, no_external  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_agent_page(client, runs):
    a = runs["a"]
    agent = max(a["report"]["agents"], key=lambda x: x["trades"])
    assert agent["trades"] > 0
    r = client.get(f"/trading/cohorts/{a['run_id']}/agents/{agent['agent_id']}")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert f"Agent <span class=\"mono\">{agent['agent_id']}</span>" in html
    genome = html.split('id="genome"', 1)[1].split("</table>", 1)[0]
    assert agent["genome"]["family"] in genome
    for name in agent["genome"]["params"]:
        assert f"params.{name}" in genome
    metrics = html.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert "Sharpe" in metrics and "Confidence (PSR)" in metrics

    prices = figure(html, "fig-prices")
    candles = [t for t in prices["data"] if t["type"] == "candlestick"]
    traded = {t["symbol"] for t in _agent_trades(client, a["run_id"], agent["agent_id"])}
    assert {c["name"] for c in candles} == traded
    buys = [t for t in prices["data"] if t.get("name") == "buy"]
    sells = [t for t in prices["data"] if t.get("name") == "sell"]
    assert buys and all(t["marker"]["symbol"] == "triangle-up" for t in buys)
    assert sells and all(t["marker"]["symbol"] == "triangle-down" for t in sells)
    trades = _agent_trades(client, a["run_id"], agent["agent_id"])
    n_marks = sum(len(t["x"]) for t in buys + sells)
    assert n_marks == len(trades) + sum(1 for t in trades if t.get("exit_time"))

    equity = figure(html, "fig-agent-equity")
    assert equity["data"][0]["y"][-1] == pytest.approx(agent["final_equity"])


def _agent_trades(client, run_id, agent_id):
    r = client.get(f"/api/cohorts/{run_id}/agents/{agent_id}")
    assert r.status_code == 200
    return r.json()["trades"]
