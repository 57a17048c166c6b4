"""The Plotly figures of the dashboard (:mod:`web.figures`): valid for plotly.py's
schema, laid out like ``make_subplots``, JSON without NaN that cannot close its
``<script>`` element."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("httpx")

from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import figure  # noqa: E402


@pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")
def test_page_figures_are_valid_plotly_figures(client, runs):
    """The figure dicts (built without plotly.graph_objects) pass plotly.py's schema validation."""
    go = pytest.importorskip("plotly.graph_objects")
    a = runs["a"]
    agent = max(a["report"]["agents"], key=lambda x: x["trades"])["agent_id"]
    pages = {f"/trading/cohorts/{a['run_id']}": ("fig-gauges", "fig-equity", "fig-exposure", "fig-baselines"),
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
