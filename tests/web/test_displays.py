"""Displays that do not mislead, on a store with a real two-hour cohort of 30 agents,
450 listed cohorts and one whose parent ROI rounds to zero: a win rate without a
closed trade is "—", Sharpe says how it was annualised, values that round to zero
are a neutral 0, and the CSV export has every matching row, not one page."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from manager.launch import execute_cohort  # noqa: E402
from manager.report import LEADERBOARD_COLUMNS  # noqa: E402
from manager.runner import BarsRequest, CohortRequest  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import table_rows  # noqa: E402
from web.pages.agent import trade_row  # noqa: E402
from web.pages.leaderboard import leaderboard_row  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def _header(day: str, bankroll: float) -> dict:
    """The header the runner writes for a one-day SYNTHETIC cohort on ``day``."""
    end = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    return {"day": day, "window_start": f"{day}T00:00:00Z", "window_end": f"{end}T00:00:00Z", "bankroll": bankroll,
            "quote": "BTC", "agents": 0, "data_label": "SYNTHETIC", "market": "SYNTHETIC|5m|BTC",
            "seeded_from": "random"}


@pytest.fixture(scope="module")
def displays(tmp_path_factory):
    """A store with a real two-hour cohort of 30 agents (several hold positions they never
    closed), 450 listed cohorts (300 on a 1,000 bankroll), and one completed cohort whose
    parent ROI is -4e-7 (shown to 2 decimals of a percent, that is 0)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('displays')}/displays.db"
    with open_store(url) as store:
        req = CohortRequest(bars=BarsRequest(data=str(BINANCE), start="2018-01-15T00:00", end="2018-01-15T02:00"),
                            bankroll=1000.0, agents=30, seed=7)
        run_id, _, report = execute_cohort(req, store)
        for i in range(450):
            day, bankroll = ("2018-02-01", 1000.0) if i % 3 else ("2018-02-02", 250.0)
            store.create_run({"kind": "cohort", "genomes": [], "data_label": "SYNTHETIC",
                              "header": _header(day, bankroll),
                              "config": {"request": {"bankroll": bankroll, "bars": {"start": day}}}})
        tiny = store.create_run({"kind": "cohort", "genomes": [], "data_label": "SYNTHETIC",
                                 "header": {**_header("2018-02-03", 1000.0), "window_end": "2018-02-03T12:00:00Z"},
                                 "config": {"request": {"bankroll": 1000.0, "bars": {"start": "2018-02-03"}}}})
        window = {"start": "2018-02-03T00:00:00Z", "end": "2018-02-03T12:00:00Z", "timeframe": "5m", "bars": 144,
                  "symbols": ["ETH_BTC"]}
        parent = {"final_equity": 999.9996, "roi": -4e-7, "max_drawdown": 1e-6, "peak_gross_exposure": 0.1,
                  "peak_utilisation": 0.1, "unallocated_cash": 0.0, "breaches": 0, "sharpe": -0.004,
                  "mean_gross_exposure": 0.05, "liquidations": 0, "fees": 0.0004, "failed_agents": []}
        store.complete_run(tiny, summary={"run_id": tiny, "bankroll": 1000.0, "allocation": "equal", "quote": "BTC",
                                          "window": window, "parent": parent, "agents": [], "hourly": [],
                                          "failed_agents": [], "data": "SYNTHETIC"},
                           agents=[], trades=[], ledger=[], curves={}, timings={})
    return url, {"run_id": run_id, "report": report, "tiny": tiny}


@pytest.fixture()
def displays_client(displays, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", displays[0])
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c
    services.close_shared_store()


def test_win_rate_without_a_closed_trade_is_a_dash_and_sharpe_says_it_is_annualised(displays, displays_client):
    run = displays[1]
    agents = run["report"]["agents"]
    open_only = [a for a in agents if a["trades"] > 0 and a["win_rate"] is None]
    assert open_only, "expected agents that traded but closed nothing in two hours"
    html = displays_client.get(f"/trading/cohorts/{run['run_id']}").text
    label = "annualised from 2 h, 24 bars of 5m"
    assert f'<span class="note">{label}</span>' in html  # the parent's Sharpe tile
    assert f"<caption>Sharpe and Sortino are {label}: per-bar ratio × √105,120 (bars in a 365-day year)." in html
    headers = html.split('id="leaderboard"', 1)[1].split("</thead>", 1)[0]
    assert headers.count(f'<span class="note">{label}</span>') == 2  # under the Sharpe and Sortino headers
    win = [c.key for c in LEADERBOARD_COLUMNS].index("win_rate") - 3  # cells after rank, agent, family
    cells = {}
    for row in table_rows(html, "leaderboard"):
        agent_id = re.search(r"/agents/(a\d+)\"", row).group(1)
        cells[agent_id] = re.findall(r'<td class="num[^"]*">([^<]*)</td>', row)[1:]  # without rank
    for a in agents:
        assert cells[a["agent_id"]][win] == ("—" if a["win_rate"] is None else f"{a['win_rate'] * 100:.0f} %")
    # the sort partial carries the same caption
    partial = displays_client.get(f"/trading/cohorts/{run['run_id']}/leaderboard?sort=sharpe&order=asc",
                                  headers={"HX-Request": "true"}).text
    assert "<caption>Sharpe and Sortino are " + label in partial

    agent = open_only[0]
    page = displays_client.get(f"/trading/cohorts/{run['run_id']}/agents/{agent['agent_id']}").text
    assert ('<span class="label">Win rate</span><span class="value">—</span><span class="note">no closed trade '
            'yet</span>') in page
    metrics = page.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert "<th>Win rate (no closed trade yet)</th><td class=\"num\">—</td>" in metrics
    assert f"<th>Sharpe ({label})</th>" in metrics and f"<th>Sortino ({label})</th>" in metrics
    assert page.count(f'<span class="note">{label}</span>') == 2  # Sharpe and Sortino tiles
    assert "0 %" not in metrics.split("Win rate", 1)[1].split("</tr>", 1)[0]


def test_values_that_round_to_zero_show_as_a_neutral_zero(displays, displays_client):
    tiny = displays[1]["tiny"]
    listing = displays_client.get("/trading/cohorts").text  # the newest cohort: first row of page 1
    row = next(r for r in table_rows(listing, "cohort-table") if tiny in r)
    assert '<td class="num ">0.00 %</td>' in row and "-0.00" not in row and '"num neg"' not in row
    page = displays_client.get(f"/trading/cohorts/{tiny}").text
    assert '<span class="badge bankroll" title="parent bankroll">1,000 BTC</span>' in page
    assert '<span class="label">ROI</span><span class="value ">0.00 %</span>' in page
    assert '<span class="label">Sharpe</span><span class="value">0.00</span>' in page
    assert "-0.00" not in page
    row = leaderboard_row("r1", {"agent_id": "a0", "rank": 1, "roi": -4e-7, "sharpe": -0.004,
                            "allocated": -1e-12, "win_rate": None})
    assert '<td class="num ">0.00 %</td>' in row.numbers and '<td class="num">0.00</td>' in row.numbers
    assert "-0" not in row.numbers and "e-" not in row.numbers
    trade = trade_row({"pnl": -4e-10})
    assert (trade.pnl, trade.pnl_class.strip()) == ("0.00000000", "num")
    assert trade_row({"pnl": -4e-8}).pnl_class == "num neg"


def _csv(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_export_has_every_matching_row_not_one_page(displays, displays_client):
    """More cohorts than the API's largest page (200): the export streams all of them."""
    every = displays_client.get("/api/experiments/cohorts", params={"format": "csv"})
    rows = _csv(every)
    assert len(rows) == int(every.headers["x-total-count"]) == 452
    assert len({r["run_id"] for r in rows}) == 452
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    # the dashboard's link carries the filters and gets all their rows
    html = displays_client.get("/trading/cohorts?bankroll=1000").text
    href = re.search(r'id="export-csv" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "page_size" not in href and "page=" not in href
    linked = displays_client.get(href)
    rows = _csv(linked)
    assert len(rows) == int(linked.headers["x-total-count"]) == 302  # 300 listed, the 2-hour run, the tiny one
    assert all(r["bankroll"] == "1000.0" for r in rows)
    # paging parameters do not cut the CSV
    rows = _csv(displays_client.get("/api/experiments/cohorts",
                                    params={"format": "csv", "date": "2018-02-02", "page": 3, "page_size": 5}))
    assert len(rows) == 150
