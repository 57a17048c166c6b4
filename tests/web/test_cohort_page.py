"""``GET /trading/cohorts/{run_id}``: a completed cohort (badges, figures, the sortable
leaderboard), a running one (progress polling, what its header already says) and a
failed one (the reason)."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("httpx")

from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import figure, no_external, table_rows  # noqa: E402
from web.pages import leaderboard  # noqa: E402
from web.templating import environment  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_cohort_page_completed(client, runs):
    a = runs["a"]
    r = client.get(f"/trading/cohorts/{a['run_id']}")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert '<span class="badge bankroll" title="parent bankroll">1,000 BTC</span>' in html
    assert 'class="badge status-completed"' in html
    assert 'src="/static/vendor/plotly.min.js"' in html and 'src="/static/vendor/htmx.min.js"' in html
    assert 'id="progress"' not in html  # no polling once completed

    equity = figure(html, "fig-equity")
    names = [t["name"] for t in equity["data"]]
    assert names[0] == "parent" and len(names) == 1 + a["agents"]
    assert len(equity["data"][0]["x"]) == a["report"]["window"]["bars"] == 288
    assert equity["data"][0]["y"][-1] == pytest.approx(a["report"]["parent"]["final_equity"])

    exposure = figure(html, "fig-exposure")
    ceilings = [t for t in exposure["data"] if "ceiling" in t["name"]]
    assert len(ceilings) == 2 and all(t["y"] == [a["gross"], a["gross"]] for t in ceilings)
    util = next(t for t in exposure["data"] if t["name"] == "utilisation")
    assert max(util["y"]) == pytest.approx(a["report"]["parent"]["peak_utilisation"], rel=1e-6)

    gauges = figure(html, "fig-gauges")
    assert [t["type"] for t in gauges["data"]] == ["indicator"] * 3
    assert gauges["data"][0]["value"] == pytest.approx(a["report"]["parent"]["max_drawdown"] * 100)

    rows = table_rows(html, "leaderboard")
    assert len(rows) == a["agents"]
    for agent in a["report"]["agents"]:
        assert f'href="/trading/cohorts/{a["run_id"]}/agents/{agent["agent_id"]}"' in html
    assert 'hx-get="/trading/cohorts/' + a["run_id"] + '/leaderboard?sort=roi&amp;order=desc"' in html


def test_cohort_page_of_the_risk_weighted_cohort(client, runs):
    b = runs["b"]
    html = client.get(f"/trading/cohorts/{b['run_id']}").text
    assert "250 BTC" in html and "risk_weighted" in html
    assert len(table_rows(html, "leaderboard")) == b["agents"]


@pytest.mark.parametrize("key, order", [("roi", "asc"), ("roi", "desc"), ("max_drawdown", "asc"),
                                        ("agent_id", "desc"), ("trades", "desc")])
def test_leaderboard_sorts_server_side(client, runs, key, order):
    a = runs["a"]
    r = client.get(f"/trading/cohorts/{a['run_id']}/leaderboard?sort={key}&order={order}",
                   headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    shown = re.findall(r'/agents/([^"]+)"', r.text)
    expected = sorted(a["report"]["agents"], key=lambda x: x[key], reverse=order == "desc")
    assert [x[key] for x in expected] == [next(y[key] for y in a["report"]["agents"] if y["agent_id"] == s)
                                          for s in shown]
    assert 'aria-sort="' + ("ascending" if order == "asc" else "descending") + '"' in r.text
    # clicking the sorted column again flips the order
    flip = "desc" if order == "asc" else "asc"
    assert f"leaderboard?sort={key}&amp;order={flip}" in r.text


def test_running_cohort_polls_progress(client, runs):
    run_id = runs["running"]["run_id"]
    html = client.get(f"/trading/cohorts/{run_id}").text
    assert 'id="progress"' in html and 'hx-trigger="every 1s"' in html
    assert f'hx-get="/trading/cohorts/{run_id}/progress"' in html
    # the run header is stored when the run starts: bankroll, quote, window and seeding show at once
    assert '<span class="badge bankroll" title="parent bankroll">500 BTC</span>' in html
    assert "2018-01-17 00:00 → 2018-01-18 00:00" in html and "<dt>Genomes from</dt><dd title=\"\">random" in html
    assert '<span class="badge neutral" title="allocation policy">equal</span>' in html
    part = client.get(f"/trading/cohorts/{run_id}/progress", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text and 'hx-trigger="every 1s"' in part.text
    assert "HX-Refresh" not in part.headers


def test_completed_progress_asks_for_a_full_refresh(client, runs):
    r = client.get(f"/trading/cohorts/{runs['a']['run_id']}/progress", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Refresh"] == "true"


def test_failed_cohort_shows_the_reason_and_stops_polling(client, runs):
    run_id = runs["failed"]["run_id"]
    for url in (f"/trading/cohorts/{run_id}", f"/trading/cohorts/{run_id}/progress"):
        html = client.get(url).text
        assert "This cohort failed" in html
        assert "MarketDataError: no bars in the window &lt;2030-01-01&gt;" in html  # escaped
        assert "hx-trigger" not in html


def test_leaderboard_rows_mark_failed_and_liquidated_agents_and_escape_text():
    agents = [{"agent_id": "a00", "rank": 1, "family": "sma<cross>", "roi": 0.1, "trades": 3, "failed": True},
              {"agent_id": "a01", "rank": 2, "family": "rsi", "roi": -0.2, "liquidated": True, "breaches": "<b>"},
              {"agent_id": "a02", "rank": None, "family": None, "roi": None, "allocated": 1000.0}]
    context = {"run": {"run_id": "r1"}, **leaderboard.leaderboard_context("r1", agents, "rank", "asc")}
    html = environment().get_template("partials/leaderboard.html").render(context)
    rows = table_rows(html, "leaderboard")
    assert len(rows) == 3
    assert rows[0].startswith('<tr class="row-failed">') and '<span class="badge status-failed">failed</span>' in rows[0]
    assert rows[1].startswith('<tr class="row-liquidated">') and '<span class="badge warn">liquidated</span>' in rows[1]
    assert "sma&lt;cross&gt;" in rows[0] and '<td class="num pos">10.00 %</td>' in rows[0]
    assert '<td class="num neg">-20.00 %</td>' in rows[1] and "&lt;b&gt;" in rows[1] and "<b>" not in rows[1]
    assert '<a href="/trading/cohorts/r1/agents/a02">a02</a>' in rows[2] and '<td class="num">1,000</td>' in rows[2]
    assert "None" not in html


def test_cohort_page_shows_the_random_cohort_histogram_with_the_cohort_marker(client, runs):
    """Issue 10: the cohort against chance -- the histogram of the random cohorts' ROI, the
    cohort's marker, its percentile, cash, buy-and-hold, gross vs net, best agent beside the median."""
    a = runs["a"]
    b = a["report"]["baselines"]
    html = client.get(f"/trading/cohorts/{a['run_id']}").text
    assert 'id="baselines"' in html and "Against chance" in html
    fig = figure(html, "fig-baselines")
    hist = fig["data"][0]
    assert hist["type"] == "histogram" and len(hist["x"]) == b["random"]["cohorts"] == 20
    assert hist["x"] == pytest.approx([100 * v for v in b["random"]["roi"]])
    marker = next(t for t in fig["data"] if t.get("name") == "this cohort")
    assert marker["x"] == pytest.approx([100 * a["report"]["parent"]["roi"]])
    lines = {n["text"].split(" (")[0]: n["x"] for n in fig["layout"]["annotations"]}
    assert lines["cash"] == 0.0 and lines["buy-and-hold"] == pytest.approx(100 * b["buy_and_hold"]["roi"])
    assert f"{b['random']['percentile']:.0f}th pct" in " ".join(n["text"] for n in fig["layout"]["annotations"])
    assert "Best agent (max of 4) · median agent" in html


def test_cohort_listing_has_the_percentile_column(client, runs):
    html = client.get("/trading/cohorts").text
    assert "vs random (pctl)" in html
    pctl = f"{runs['a']['report']['baselines']['random']['percentile']:.0f}"
    assert f'<td class="num baseline-percentile">{pctl}</td>' in html
    r = client.get("/api/experiments/cohorts", params={"format": "csv"})
    header, *rows = r.text.splitlines()
    assert header.split(",")[-1] == "baseline_percentile"
    row = next(x for x in rows if x.startswith(runs["a"]["run_id"]))
    assert float(row.split(",")[-1]) == runs["a"]["report"]["baselines"]["random"]["percentile"]
    api = client.get("/api/experiments/cohorts").json()
    item = next(x for x in api["items"] if x["run_id"] == runs["a"]["run_id"])
    assert item["baseline_percentile"] == runs["a"]["report"]["baselines"]["random"]["percentile"]
