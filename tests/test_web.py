"""The operators' dashboard (``web/``): pages, partials, figures, errors and assets.

Pages are requested through FastAPI's ``TestClient`` from the real application
(:func:`api.app.create_app`) reading a temporary SQLite store that two small real
cohorts on ``../shared/data/binance-5m`` were written into (one day, a few agents
each, different days, bankrolls and allocation policies).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api import deps  # noqa: E402
from api.app import create_app  # noqa: E402
from manager.runner import BarsRequest, CohortRequest  # noqa: E402
from manager.launch import execute_cohort
from manager.store import open_store  # noqa: E402
from simulator.engine import EngineConfig  # noqa: E402
from web.routes import LEADERBOARD_COLUMNS  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-5m"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"bar data not found at {DATA}")


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store with two completed cohorts, a running one and a failed one."""
    url = f"sqlite:///{tmp_path_factory.mktemp('web')}/web.db"
    runs = {}
    with open_store(url) as store:
        for name, day, bankroll, agents, allocation, gross in (
                ("a", "2018-01-15", 1000.0, 4, "equal", 1.0),
                ("b", "2018-01-16", 250.0, 3, "risk_weighted", 0.8)):
            req = CohortRequest(bars=BarsRequest(data=str(DATA), start=day), bankroll=bankroll, agents=agents,
                                seed=11, allocation=allocation, engine=EngineConfig(max_gross_leverage=gross))
            run_id, _, report = execute_cohort(req, store)
            runs[name] = {"run_id": run_id, "report": report, "day": day, "bankroll": bankroll,
                          "agents": agents, "gross": gross}
        doc = {"kind": "cohort", "config": {"request": {"bankroll": 500.0, "allocation": "equal"}},
               "genomes": [], "data_label": str(DATA)}
        runs["running"] = {"run_id": store.create_run(dict(doc))}
        failed = store.create_run(dict(doc))
        store.fail_run(failed, "MarketDataError: no bars in the window <2030-01-01>")
        runs["failed"] = {"run_id": failed}
    return url, runs


@pytest.fixture()
def client(stored, monkeypatch):
    url, _ = stored
    monkeypatch.setenv("COHORTLAB_STORE", url)
    deps.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c
    deps.close_shared_store()


@pytest.fixture()
def runs(stored):
    return stored[1]


class _Links(HTMLParser):
    """Collects every URL-valued attribute and the JSON of figure script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href", "action", "hx-get", "hx-post", "data-api", "formaction"):
            if a.get(name):
                self.urls.append((tag, name, a[name]))
        if tag == "script" and a.get("type") == "application/json":
            self._script = a.get("id")
            self.scripts[self._script] = ""

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def parse(html: str) -> _Links:
    p = _Links()
    p.feed(html)
    return p


def figure(html: str, fig_id: str) -> dict:
    return json.loads(parse(html).scripts[fig_id])


def table_rows(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)


def _no_external(html: str) -> None:
    for tag, attr, url in parse(html).urls:
        assert not re.match(r"^(https?:)?//", url, re.I), f"<{tag} {attr}={url!r}> leaves this host"
    for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", html):
        assert src.startswith("/static/"), src
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html, re.I)


# ----------------------------------------------------------------- list


def test_list_page_shows_cohorts_with_badges_links_and_export(client, runs):
    r = client.get("/trading/cohorts")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<html" in html and 'id="cohort-table"' in html
    for name in ("a", "b"):
        assert f'href="/trading/cohorts/{runs[name]["run_id"]}"' in html
    assert 'class="badge status-completed"' in html
    assert 'class="badge status-running"' in html
    assert 'class="badge status-failed"' in html and "no bars in the window" in html  # reason as title
    assert "1,000 BTC" in html and "250 BTC" in html
    assert "2018-01-15" in html and "2018-01-16" in html
    assert 'href="/api/experiments/cohorts?format=csv"' in html  # every row, no page size
    assert 'hx-get="/trading/cohorts"' in html  # the filter form swaps the table
    _no_external(html)


@pytest.mark.parametrize("query, expect, not_expect", [
    ("date=2018-01-16", ["b"], ["a"]),
    ("bankroll=1000", ["a"], ["b"]),
    ("date=2018-01-15&bankroll=1000", ["a"], ["b"]),
    ("date=2018-01-15&bankroll=250", [], ["a", "b"]),
])
def test_filters(client, runs, query, expect, not_expect):
    r = client.get(f"/trading/cohorts?{query}")
    assert r.status_code == 200
    for name in expect:
        assert runs[name]["run_id"] in r.text
    for name in not_expect:
        assert runs[name]["run_id"] not in r.text
    if not expect:
        assert "No cohorts match these filters." in r.text
        assert "No cohorts yet" not in r.text
    # the CSV export carries the filters
    csv_href = re.search(r'id="export-csv" href="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    for part in query.split("&"):
        assert part in csv_href
    assert csv_href.startswith("/api/experiments/cohorts?format=csv")


def test_bad_filters_are_explained_not_errors(client):
    r = client.get("/trading/cohorts?date=15.01.2018&bankroll=-3")
    assert r.status_code == 200
    assert "is not a day (use YYYY-MM-DD)" in r.text and "is not a positive amount" in r.text


def test_pagination_partial(client, runs):
    full = client.get("/trading/cohorts?page_size=1")
    assert "<html" in full.text and "Page 1 of 4" in full.text
    r = client.get("/trading/cohorts?page_size=1&page=2", headers={"HX-Request": "true", "HX-Target": "cohort-table"})
    assert r.status_code == 200
    html = r.text
    assert "<html" not in html and html.lstrip().startswith('<section id="cohort-table"')
    assert "Page 2 of 4" in html
    assert len(table_rows(html, "cohort-table")) == 1
    # newer and older links swap the table and keep the page size
    assert 'hx-get="/trading/cohorts?page_size=1&amp;page=1"' in html
    assert 'hx-get="/trading/cohorts?page_size=1&amp;page=3"' in html
    assert 'hx-target="#cohort-table"' in html and 'hx-push-url="true"' in html
    # the four stored cohorts appear once each over the pages, newest first
    seen = []
    for page in range(1, 5):
        part = client.get(f"/trading/cohorts?page_size=1&page={page}", headers={"HX-Request": "true"}).text
        seen += re.findall(r'<a href="/trading/cohorts/([^"/]+)">', part)
    assert sorted(seen) == sorted(r_["run_id"] for r_ in runs.values())
    # a history restore gets the whole page
    restore = client.get("/trading/cohorts?page_size=1&page=2",
                         headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text


def test_empty_state(tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path}/empty.db")
    deps.close_shared_store()
    try:
        with TestClient(create_app()) as c:
            r = c.get("/trading/cohorts")
    finally:
        deps.close_shared_store()
    assert r.status_code == 200
    assert "No cohorts yet — launch one" in r.text
    assert 'href="/trading/cohorts/new"' in r.text
    assert "0 cohorts" in r.text


# ----------------------------------------------------------------- cohort page


def test_cohort_page_completed(client, runs):
    a = runs["a"]
    r = client.get(f"/trading/cohorts/{a['run_id']}")
    assert r.status_code == 200
    html = r.text
    _no_external(html)
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
    assert "500 BTC" not in html  # no quote known before the report; the amount is still shown
    assert "500" in html
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
    from web import routes

    agents = [{"agent_id": "a00", "rank": 1, "family": "sma<cross>", "roi": 0.1, "trades": 3, "failed": True},
              {"agent_id": "a01", "rank": 2, "family": "rsi", "roi": -0.2, "liquidated": True, "breaches": "<b>"},
              {"agent_id": "a02", "rank": None, "family": None, "roi": None, "allocated": 1000.0}]
    context = {"run": {"run_id": "r1"}, **routes._leaderboard_context("r1", agents, "rank", "asc")}
    html = routes._env().get_template("partials/leaderboard.html").render(context)
    rows = table_rows(html, "leaderboard")
    assert len(rows) == 3
    assert rows[0].startswith('<tr class="row-failed">') and '<span class="badge status-failed">failed</span>' in rows[0]
    assert rows[1].startswith('<tr class="row-liquidated">') and '<span class="badge warn">liquidated</span>' in rows[1]
    assert "sma&lt;cross&gt;" in rows[0] and '<td class="num pos">10.00 %</td>' in rows[0]
    assert '<td class="num neg">-20.00 %</td>' in rows[1] and "&lt;b&gt;" in rows[1] and "<b>" not in rows[1]
    assert '<a href="/trading/cohorts/r1/agents/a02">a02</a>' in rows[2] and '<td class="num">1,000</td>' in rows[2]
    assert "None" not in html


# ----------------------------------------------------------------- agent page


def test_agent_page(client, runs):
    a = runs["a"]
    agent = max(a["report"]["agents"], key=lambda x: x["trades"])
    assert agent["trades"] > 0
    r = client.get(f"/trading/cohorts/{a['run_id']}/agents/{agent['agent_id']}")
    assert r.status_code == 200
    html = r.text
    _no_external(html)
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


# ----------------------------------------------------------------- figures


def test_page_figures_are_valid_plotly_figures(client, runs):
    """The figure dicts (built without plotly.graph_objects) pass plotly.py's schema validation."""
    go = pytest.importorskip("plotly.graph_objects")
    a = runs["a"]
    agent = max(a["report"]["agents"], key=lambda x: x["trades"])["agent_id"]
    pages = {f"/trading/cohorts/{a['run_id']}": ("fig-gauges", "fig-equity", "fig-exposure"),
             f"/trading/cohorts/{a['run_id']}/agents/{agent}": ("fig-prices", "fig-agent-equity")}
    for url, ids in pages.items():
        html = client.get(url).text
        for fig_id in ids:
            fig = figure(html, fig_id)
            go.Figure(fig)  # raises ValueError on any property plotly.js does not know
            assert fig["layout"]["template"]["layout"]["plot_bgcolor"] == "white"  # plotly_white


@pytest.mark.parametrize("rows, spacing, heights", [(1, 0.0, None), (2, 0.08, [0.55, 0.45]), (2, 0.1, None),
                                                    (3, 0.06, None), (5, 0.06, None)])
def test_subplot_rows_are_laid_out_as_make_subplots_did(rows, spacing, heights):
    pytest.importorskip("plotly")
    from plotly.subplots import make_subplots

    from web import figures

    titles = [f"row {i}" for i in range(1, rows + 1)]
    layout: dict = {}
    refs = figures._rows(layout, rows, spacing=spacing, heights=heights, titles=titles)
    expected = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=spacing, row_heights=heights,
                             subplot_titles=titles).to_plotly_json()["layout"]
    for key, axis in expected.items():
        if key.startswith(("xaxis", "yaxis")):
            assert set(layout[key]) == set(axis), key
            for name, value in axis.items():
                assert layout[key][name] == (pytest.approx(value) if name == "domain" else value), (key, name)
    assert [(n["text"], n["y"]) for n in layout["annotations"]] == \
        [(n["text"], pytest.approx(n["y"])) for n in expected["annotations"]]
    assert refs[-1] == {"xaxis": f"x{rows}" if rows > 1 else "x", "yaxis": f"y{rows}" if rows > 1 else "y"}


def test_figure_json_has_no_nan_and_cannot_close_the_script():
    import numpy as np

    from web import figures

    curves = {"timestamps": ["2018-01-15T00:00:00Z", "2018-01-15T00:05:00Z", "2018-01-15T00:10:00Z"],
              "parent_equity": [1.0, float("nan"), 2.0], "agent_equity": {"</script><b>&": np.array([1.0, np.inf, 3.0])},
              "utilisation": [0.1, None, "x"], "gross_exposure": np.array([0.1, 0.2, np.nan])}
    equity = figures.equity_figure(curves, "BTC")
    assert equity["data"][0]["y"] == [1.0, None, 2.0] and equity["data"][1]["y"] == [1.0, None, 3.0]
    assert figures.exposure_figure(curves, {})["data"][0]["y"] == [0.1, None, None]
    text = figures.to_json(equity)
    assert "NaN" not in text and "Infinity" not in text and "<" not in text and "&" not in text
    assert json.loads(text)["data"][1]["name"] == "</script><b>&"
    # non-finite numbers that bypass the cleaning (a hand-made figure, numpy values) still become null
    raw = {"data": [{"type": "scatter", "y": [float("nan"), np.float64(1.5), np.array([np.inf, 2.0])]}], "layout": {}}
    assert json.loads(figures.to_json(raw))["data"][0]["y"] == [None, 1.5, [None, 2.0]]


def test_shared_timestamps_are_encoded_once_per_figure_and_the_figure_is_left_alone():
    from web import figures

    ts = [f"2018-01-15T{h:02d}:{m:02d}:00Z" for h in range(2) for m in range(0, 60, 5)]
    curves = {"timestamps": ts, "parent_equity": [1.0] * len(ts),
              "agent_equity": {f"a{i:02d}": [float(i)] * len(ts) for i in range(3)}}
    fig = figures.equity_figure(curves, "BTC")
    decoded = json.loads(figures.to_json(fig))
    assert [t["x"] for t in decoded["data"]] == [ts] * 4
    assert decoded == json.loads(json.dumps(fig))
    assert all(t["x"] == ts for t in fig["data"])  # the figure dict is not modified


# ----------------------------------------------------------------- launch form


def test_launch_form_explains_every_field(client):
    r = client.get("/trading/cohorts/new")
    assert r.status_code == 200
    html = r.text
    _no_external(html)
    assert 'data-api="/api/cohorts"' in html
    assert re.search(r'name="bankroll" type="number" min="50" max="100000"', html)
    assert "quote currency of the bars" in html
    assert '<option value="equal" selected>' in html and '<option value="risk_weighted">' in html
    for name in ("agents", "seed", "data", "symbols", "start", "end", "token"):
        assert f'name="{name}"' in html and f'data-field="{name}"' in html
    assert 'name="token" type="password" autocomplete="off"' in html
    assert "never stored" in html


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("url, text", [
    ("/trading/cohorts/20990101T000000-deadbeef", "Cohort not found"),
    ("/trading/cohorts/not a run", "Cohort not found"),
    ("/trading/cohorts/{a}/agents/zz99", "Agent not found"),
    ("/trading/cohorts/20990101T000000-deadbeef/agents/a00", "Cohort not found"),
    ("/trading/cohorts/{a}/no-such-page", "Page not found"),
    ("/trading/nothing-here", "Page not found"),
])
def test_not_found_pages_are_html(client, runs, url, text):
    r = client.get(url.format(a=runs["a"]["run_id"]))
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text and text in r.text and 'href="/trading/cohorts"' in r.text


def test_unexpected_error_is_an_html_500_without_details(client, runs, monkeypatch):
    from api import queries

    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(queries, "cohort_detail", boom)
    r = client.get(f"/trading/cohorts/{runs['a']['run_id']}")
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in r.text and "secret internal detail" not in r.text


def test_api_errors_stay_problem_documents(client):
    r = client.get("/api/cohorts/20990101T000000-deadbeef")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


# ----------------------------------------------------------------- assets


def test_assets_are_served_with_their_content_types(client):
    import plotly

    plotly_js = client.get("/static/vendor/plotly.min.js")
    assert plotly_js.status_code == 200
    assert plotly_js.headers["content-type"].startswith("text/javascript")
    local = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert plotly_js.content == local.read_bytes()

    htmx = client.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200, htmx.text
    assert htmx.headers["content-type"].startswith("text/javascript")
    assert b"htmx" in htmx.content[:5000]
    package = json.loads((Path(__file__).resolve().parents[1] / "web" / "node_modules" / "htmx.org"
                          / "package.json").read_text())
    assert package["version"].startswith("2.")

    css = client.get("/static/cohortlab.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/cohortlab.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    for bad in ("/static/nope.css", "/static/..%2Froutes.py", "/static/routes.py"):
        assert client.get(bad).status_code == 404


def test_missing_htmx_says_how_to_install_it(client, tmp_path, monkeypatch):
    monkeypatch.setenv("COHORTLAB_WEB_NODE_MODULES", str(tmp_path))
    r = client.get("/static/vendor/htmx.min.js")
    assert r.status_code == 503 and "npm install --prefix web" in r.text
    page = client.get("/trading/cohorts")
    assert page.status_code == 200 and "npm install --prefix web" in page.text


def test_no_page_links_to_another_host(client, runs):
    a = runs["a"]
    agent = a["report"]["agents"][0]["agent_id"]
    urls = ["/trading/cohorts", "/trading/cohorts?page_size=1&page=2", "/trading/cohorts/new",
            f"/trading/cohorts/{a['run_id']}", f"/trading/cohorts/{a['run_id']}/agents/{agent}",
            f"/trading/cohorts/{runs['running']['run_id']}", f"/trading/cohorts/{runs['failed']['run_id']}",
            "/trading/cohorts/nope"]
    for url in urls:
        r = client.get(url)
        assert r.headers["content-type"].startswith("text/html")
        _no_external(r.text)
        # every local link and script resolves
        for tag, attr, link in parse(r.text).urls:
            if attr in ("src",) or (tag == "link" and attr == "href"):
                assert client.get(link).status_code == 200, link


# ----------------------------------------------------------------- displays that do not mislead


@pytest.fixture(scope="module")
def displays(tmp_path_factory):
    """A store with a real two-hour cohort of 30 agents (several hold positions they never
    closed), 450 listed cohorts (300 on a 1,000 bankroll), and one completed cohort whose
    parent ROI is -4e-7 (shown to 2 decimals of a percent, that is 0)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('displays')}/displays.db"
    with open_store(url) as store:
        req = CohortRequest(bars=BarsRequest(data=str(DATA), start="2018-01-15T00:00", end="2018-01-15T02:00"),
                            bankroll=1000.0, agents=30, seed=7)
        run_id, _, report = execute_cohort(req, store)
        for i in range(450):
            day, bankroll = ("2018-02-01", 1000.0) if i % 3 else ("2018-02-02", 250.0)
            store.create_run({"kind": "cohort", "genomes": [], "data_label": "SYNTHETIC",
                              "config": {"request": {"bankroll": bankroll, "bars": {"start": day}}}})
        tiny = store.create_run({"kind": "cohort", "genomes": [], "data_label": "SYNTHETIC",
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
    deps.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c
    deps.close_shared_store()


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
    win = [c for c, _, _ in LEADERBOARD_COLUMNS].index("win_rate") - 3  # cells after rank, agent, family
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
    assert '<span class="label">ROI</span><span class="value ">0.00 %</span>' in page
    assert '<span class="label">Sharpe</span><span class="value">0.00</span>' in page
    assert "-0.00" not in page
    from web import routes

    row = routes._leaderboard_row("r1", {"agent_id": "a0", "rank": 1, "roi": -4e-7, "sharpe": -0.004,
                                         "allocated": -1e-12, "win_rate": None})
    assert '<td class="num ">0.00 %</td>' in row.numbers and '<td class="num">0.00</td>' in row.numbers
    assert "-0" not in row.numbers and "e-" not in row.numbers
    trade = routes._trade_row({"pnl": -4e-10})
    assert (trade.pnl, trade.pnl_class.strip()) == ("0.00000000", "num")
    assert routes._trade_row({"pnl": -4e-8}).pnl_class == "num neg"


def _csv(response) -> list[dict]:
    import csv
    import io

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


def test_cohort_export_reads_page_by_page_and_yields_each_cohort_once(tmp_path):
    from api import queries

    with open_store(f"sqlite:///{tmp_path}/export.db") as store:
        ids = [store.create_run({"kind": "cohort", "genomes": [], "data_label": "x", "config": {}})
               for _ in range(25)]
        calls = []
        lister = store.list_cohort_summaries

        def counted(**kwargs):
            calls.append(kwargs)
            return lister(**kwargs)

        store.list_cohort_summaries = counted  # type: ignore[method-assign]
        total, rows = queries.cohort_export(store, batch=10)
        assert total == 25 and len(calls) == 1  # the first page is read at once, the rest lazily
        first = [next(rows)["run_id"] for _ in range(12)]
        for _ in range(3):  # cohorts created while the export is read push the rest down
            store.create_run({"kind": "cohort", "genomes": [], "data_label": "x", "config": {}})
        rest = [r["run_id"] for r in rows]
        assert first + rest == ids[::-1]  # every cohort once, newest first, none repeated
        # 28 cohorts by the third page: it comes back short (8 rows, 3 already seen) and ends the export
        assert [c["offset"] for c in calls] == [0, 10, 20] and all(c["limit"] == 10 for c in calls)
        with pytest.raises(queries.QueryError):
            queries.cohort_export(store, batch=0)
