"""Plotly figures of the dashboard, built server-side and sent to the page as JSON.

Every function takes plain read-layer data (lists of numbers and ISO timestamps from
:mod:`manager.read_model`) and returns a figure *dict* (``{"data": [...], "layout": {...}}``)
that :func:`to_json` serialises; the page hands it to ``Plotly.newPlot`` (plotly.js is
served from the installed ``plotly`` package, see :mod:`web.assets`). Nothing here
reads the store or renders HTML.

The figures are plain dicts in the Plotly JSON figure schema, not
``plotly.graph_objects``: building and validating graph objects (and
``make_subplots``) took ~80 ms of a cohort page; the dicts take well under 1 ms.
Subplots are axes with ``domain``s (:func:`_rows` lays them out as
``make_subplots`` did), gauges and candlesticks are ordinary trace dicts.
``tests/test_web.py`` checks every figure against plotly.py's schema.

Units: equity in the bars' quote currency; utilisation and drawdown are fractions
(shown as %); gross exposure is a multiple of parent equity.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "agent_equity_figure",
    "baseline_figure",
    "deployment_figure",
    "equity_figure",
    "exposure_figure",
    "fan_figure",
    "gauges_figure",
    "plan_figure",
    "price_figure",
    "promotion_figure",
    "tier_figure",
    "to_json",
]

Figure = dict[str, Any]
"""A figure in the Plotly JSON schema: ``{"data": [trace, ...], "layout": {...}}``."""

PARENT_COLOUR = "#1f3b73"
BUY_COLOUR = "#15803d"
SELL_COLOUR = "#b91c1c"
LIMIT_COLOUR = "#b91c1c"
AGENT_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac",
)
MARGIN = {"l": 60, "r": 20, "t": 40, "b": 50}
_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "ticks": "", "title": {"standoff": 15},
         "zerolinecolor": "#EBF0F8", "automargin": True, "zerolinewidth": 2}
TEMPLATE: dict[str, Any] = {
    "data": {"scatter": [{"fillpattern": {"fillmode": "overlay", "size": 10, "solidity": 0.2}, "type": "scatter"}]},
    "layout": {
        "autotypenumbers": "strict",
        "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880",
                     "#FF97FF", "#FECB52"],
        "font": {"color": "#2a3f5f"}, "hovermode": "closest", "hoverlabel": {"align": "left"},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "xaxis": _AXIS, "yaxis": _AXIS,
        "shapedefaults": {"line": {"color": "#2a3f5f"}},
        "annotationdefaults": {"arrowcolor": "#2a3f5f", "arrowhead": 0, "arrowwidth": 1},
        "title": {"x": 0.05},
    },
}
"""The parts of plotly.py's ``plotly_white`` template that 2-D cartesian charts and
indicators use (plotly.js has no named templates: a figure carries its template).
Shared by every figure: never mutate it."""


def to_json(figure: Mapping[str, Any]) -> str:
    """The figure as JSON that is safe inside ``<script type="application/json">``.

    NaN and infinities become ``null`` (JSON has neither; Plotly draws a gap).
    ``<``, ``>`` and ``&`` are written as JSON unicode escapes, so no text in a
    figure (an agent id, a symbol) can close the script element.

    A long ``x`` list that several traces share (the timestamps of every agent's
    equity curve) is encoded once and pasted in for each of them.
    """
    fig = figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure
    fig, shared = _share_x(fig)
    text = _dumps(fig)
    for token, values in shared.items():
        text = text.replace(f'"{token}"', _dumps(values))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError:  # a non-finite float somewhere: rare, so only then walk the value
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False, default=_json_default)


def _share_x(fig: Any) -> tuple[Any, dict[str, list]]:
    """``fig`` with each long ``x`` list used by more than one trace replaced by a
    unique token (a shallow copy; ``fig`` itself is left alone), and the lists by token."""
    data = fig.get("data") if isinstance(fig, Mapping) else None
    if not isinstance(data, list):
        return fig, {}
    users: dict[int, int] = {}
    for trace in data:
        x = trace.get("x") if isinstance(trace, Mapping) else None
        if type(x) is list and len(x) >= 32:
            users[id(x)] = users.get(id(x), 0) + 1
    repeated = {key for key, n in users.items() if n > 1}
    if not repeated:
        return fig, {}
    shared: dict[str, list] = {}
    tokens: dict[int, str] = {}
    traces = []
    for trace in data:
        x = trace.get("x") if isinstance(trace, Mapping) else None
        if x is not None and id(x) in repeated:
            if id(x) not in tokens:
                tokens[id(x)] = token = f"@shared-x-{uuid.uuid4().hex}@"
                shared[token] = x
            trace = {**trace, "x": tokens[id(x)]}
        traces.append(trace)
    return {**fig, "data": traces}, shared


def _json_default(value: Any) -> Any:
    """numpy arrays/scalars, datetimes and Decimals, should one reach a figure."""
    if hasattr(value, "tolist"):  # numpy array or scalar
        return _finite(value.tolist())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _finite(float(value))
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _clean(values: Sequence[Any] | None) -> list[float | None]:
    """Numbers with NaN/inf as None (JSON has no NaN; Plotly draws a gap)."""
    if values is None:
        return []
    if hasattr(values, "tolist"):  # a numpy array
        values = values.tolist()
    if set(map(type, values)) == {float} and math.isfinite(sum(values)):  # the read layer's usual case
        return list(values)
    out: list[float | None] = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if math.isfinite(f) else None)
    return out


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    """The layout every cartesian figure shares (what ``_finish`` set on a ``go.Figure``)."""
    layout: dict[str, Any] = {
        "template": TEMPLATE, "height": height, "margin": dict(MARGIN), "hovermode": "x unified",
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.1, "x": 0},
    }
    layout.update(extra)
    return layout


def _rows(layout: dict[str, Any], rows: int, *, spacing: float, heights: Sequence[float] | None = None,
          titles: Sequence[str] | None = None, shared_x: bool = True) -> list[dict[str, str]]:
    """Stacked subplots (one column) in ``layout``, as ``make_subplots(rows, 1, ...)`` lays them out.

    Row 1 is the top one; its axes are ``x``/``y``, row ``i`` uses ``x{i}``/``y{i}``
    (layout keys ``xaxis{i}``/``yaxis{i}``). With ``shared_x`` every x axis matches
    the bottom one and only the bottom one shows tick labels. ``titles`` become
    annotations just above each row. Returns ``{"xaxis", "yaxis"}`` references per
    row, to put on its traces.
    """
    weights = list(heights) if heights else [1.0] * rows
    total = sum(weights)
    available = 1.0 - spacing * (rows - 1)
    refs: list[dict[str, str]] = []
    bottom_x = "x" if rows == 1 else f"x{rows}"
    top = 1.0
    for i in range(1, rows + 1):
        suffix = "" if i == 1 else str(i)
        height = available * weights[i - 1] / total
        bottom = 0.0 if i == rows else max(0.0, top - height)
        x_ref, y_ref = f"x{suffix}", f"y{suffix}"
        xaxis: dict[str, Any] = {"anchor": y_ref, "domain": [0.0, 1.0]}
        if shared_x and i < rows:
            xaxis.update(matches=bottom_x, showticklabels=False)
        layout[f"xaxis{suffix}"] = xaxis
        layout[f"yaxis{suffix}"] = {"anchor": x_ref, "domain": [round(bottom, 12), round(top, 12)]}
        if titles:
            layout.setdefault("annotations", []).append({
                "text": titles[i - 1], "x": 0.5, "xref": "paper", "xanchor": "center", "y": round(top, 12),
                "yref": "paper", "yanchor": "bottom", "showarrow": False, "font": {"size": 16}})
        refs.append({"xaxis": x_ref, "yaxis": y_ref})
        top = bottom - spacing
    return refs


def equity_figure(curves: Mapping[str, Any], quote: str, *, max_agents_in_legend: int = 12) -> Figure:
    """Parent equity (top) and every agent's equity (bottom) over the traded window.

    Args:
        curves: ``{"timestamps", "parent_equity", "agent_equity": {agent_id: [...]}}``.
        quote: quote currency, for the axis titles.
        max_agents_in_legend: above this many agents only the first ones get a
            legend entry (the others are still drawn and hoverable).
    """
    ts = list(curves.get("timestamps") or [])
    agents: Mapping[str, Sequence[float]] = curves.get("agent_equity") or {}
    layout = _layout(560)
    top, bottom = _rows(layout, 2, spacing=0.08, heights=(0.55, 0.45),
                        titles=(f"Parent equity ({quote})", f"Agents' equity ({quote})"))
    layout["yaxis"]["title"] = {"text": quote}
    layout["yaxis2"]["title"] = {"text": quote}
    data: list[dict[str, Any]] = [{
        "type": "scatter", "x": ts, "y": _clean(curves.get("parent_equity")), "name": "parent", "mode": "lines",
        "line": {"color": PARENT_COLOUR, "width": 2.5}, **top}]
    for i, (agent_id, values) in enumerate(agents.items()):
        data.append({
            "type": "scatter", "x": ts, "y": _clean(values), "name": str(agent_id), "mode": "lines", "opacity": 0.8,
            "line": {"color": AGENT_COLOURS[i % len(AGENT_COLOURS)], "width": 1},
            "showlegend": i < max_agents_in_legend, **bottom})
    return {"data": data, "layout": layout}


def baseline_figure(baselines: Mapping[str, Any]) -> Figure:
    """The random-cohort distribution: a histogram of the random cohorts' ROI (%) with the
    cohort's ROI, cash (0) and buy-and-hold as vertical markers.

    Args:
        baselines: a report's ``baselines`` object (:func:`manager.baselines.cohort_baselines`):
            ``random.roi`` (fractions), ``random.percentile``, ``cohort.roi``,
            ``buy_and_hold.roi``.
    """
    rnd = baselines.get("random") or {}
    rois = [None if v is None else 100.0 * v for v in _clean(rnd.get("roi"))]
    cohort = _num((baselines.get("cohort") or {}).get("roi"))
    bh = _num((baselines.get("buy_and_hold") or {}).get("roi"))
    layout = _layout(340, hovermode="closest", bargap=0.05, showlegend=True,
                     xaxis={"title": {"text": "ROI over the window (%)"}},
                     yaxis={"title": {"text": "random cohorts"}})
    shapes, notes = [], []
    pct = _num(rnd.get("percentile"))
    for value, label, colour in ((cohort, f"cohort ({pct:.0f}th pct)" if pct is not None else "cohort",
                                  PARENT_COLOUR),
                                 (0.0, "cash", "#6b7280"), (bh, "buy-and-hold", BUY_COLOUR)):
        if value is None:
            continue
        x = 100.0 * value
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                       "line": {"color": colour, "width": 3 if label.startswith("cohort") else 1.5,
                                "dash": "solid" if label.startswith("cohort") else "dot"}})
        notes.append({"x": x, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom", "text": label,
                      "showarrow": False, "font": {"color": colour}})
    layout["shapes"], layout["annotations"] = shapes, notes
    data = [{"type": "histogram", "x": rois, "name": f"{len(rois)} random cohorts",
             "marker": {"color": "#bab0ac"}, "nbinsx": max(5, min(30, len(rois)))}]
    if cohort is not None:
        data.append({"type": "scatter", "x": [100.0 * cohort], "y": [0], "mode": "markers",
                     "name": "this cohort", "marker": {"color": PARENT_COLOUR, "size": 12, "symbol": "diamond"}})
    return {"data": data, "layout": layout}


def exposure_figure(curves: Mapping[str, Any], limits: Mapping[str, Any]) -> Figure:
    """Utilisation (top) and gross exposure (bottom) over time, with their ceilings.

    Utilisation is capital in positions / capital allocated; gross exposure is a
    multiple of parent equity. The ceiling of both is the parent's gross-exposure
    ceiling ``limits["max_gross_leverage"]`` (capital in positions may not exceed
    that multiple of parent equity); ``limits["max_symbol_exposure"]`` (per-symbol
    cap, fraction of parent equity) is drawn dotted on the gross-exposure panel.
    """
    ts = list(curves.get("timestamps") or [])
    gross_cap = _num(limits.get("max_gross_leverage"))
    symbol_cap = _num(limits.get("max_symbol_exposure"))
    layout = _layout(480)
    rows = _rows(layout, 2, spacing=0.1, titles=("Utilisation (capital in positions / allocated)",
                                                 "Gross exposure (× parent equity)"))
    layout["yaxis"].update(tickformat=".0%", rangemode="tozero")
    layout["yaxis2"].update(ticksuffix="×", rangemode="tozero")
    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": ts, "y": _clean(curves.get("utilisation")), "name": "utilisation", "mode": "lines",
         "fill": "tozeroy", "line": {"color": "#4e79a7", "width": 1.5}, **rows[0]},
        {"type": "scatter", "x": ts, "y": _clean(curves.get("gross_exposure")), "name": "gross exposure",
         "mode": "lines", "fill": "tozeroy", "line": {"color": "#f28e2b", "width": 1.5}, **rows[1]},
    ]
    if gross_cap is not None and ts:
        for row, label in ((1, "ceiling"), (2, "gross ceiling")):
            data.append({
                "type": "scatter", "x": [ts[0], ts[-1]], "y": [gross_cap, gross_cap], "mode": "lines",
                "name": f"{label} {gross_cap:g}×", "line": {"color": LIMIT_COLOUR, "dash": "dash", "width": 1.5},
                "hoverinfo": "skip", "showlegend": row == 2, "legendgroup": "ceiling", **rows[row - 1]})
    if symbol_cap is not None and ts and symbol_cap != gross_cap:
        data.append({
            "type": "scatter", "x": [ts[0], ts[-1]], "y": [symbol_cap, symbol_cap], "mode": "lines",
            "name": f"per-symbol cap {symbol_cap:g}×", "hoverinfo": "skip",
            "line": {"color": "#7c3aed", "dash": "dot", "width": 1.2}, **rows[1]})
    return {"data": data, "layout": layout}


def gauges_figure(parent: Mapping[str, Any], limits: Mapping[str, Any]) -> Figure:
    """Risk gauges: max drawdown, peak utilisation (against the ceiling), breaches.

    Args:
        parent: the stored report's ``parent`` figures (``max_drawdown``,
            ``peak_utilisation``, ``breaches``).
        limits: ``{"max_gross_leverage", ...}``.
    """
    dd = _num(parent.get("max_drawdown")) or 0.0
    util = _num(parent.get("peak_utilisation")) or 0.0
    breaches = int(_num(parent.get("breaches")) or 0)
    cap = _num(limits.get("max_gross_leverage")) or 1.0
    dd_top = max(0.2, dd * 1.25)
    util_top = max(cap, util) * 1.2
    data = [
        {"type": "indicator", "mode": "gauge+number", "value": dd * 100, "title": {"text": "Max drawdown"},
         "number": {"suffix": " %", "valueformat": ".2f"},
         "gauge": {"axis": {"range": [0, dd_top * 100]}, "bar": {"color": "#b91c1c" if dd > 0.1 else "#f59e0b"},
                   "steps": [{"range": [0, 5], "color": "#ecfdf5"}, {"range": [5, 10], "color": "#fef3c7"},
                             {"range": [10, dd_top * 100], "color": "#fee2e2"}]},
         "domain": {"x": [0.0, 0.3], "y": [0, 1]}},
        {"type": "indicator", "mode": "gauge+number", "value": util * 100, "title": {"text": "Peak utilisation"},
         "number": {"suffix": " %", "valueformat": ".1f"},
         "gauge": {"axis": {"range": [0, util_top * 100]}, "bar": {"color": "#4e79a7"},
                   "threshold": {"line": {"color": LIMIT_COLOUR, "width": 3}, "thickness": 0.85,
                                 "value": cap * 100}},
         "domain": {"x": [0.35, 0.65], "y": [0, 1]}},
        {"type": "indicator", "mode": "gauge+number", "value": breaches, "title": {"text": "Breach attempts"},
         "gauge": {"axis": {"range": [0, max(10, breaches * 1.25)]},
                   "bar": {"color": "#b91c1c" if breaches else "#15803d"}},
         "domain": {"x": [0.7, 1.0], "y": [0, 1]}},
    ]
    return {"data": data, "layout": {"template": TEMPLATE, "height": 220,
                                     "margin": {"l": 30, "r": 30, "t": 50, "b": 10}}}


def price_figure(prices: Mapping[str, Mapping[str, Any]], trades: Sequence[Mapping[str, Any]],
                 quote: str) -> Figure:
    """One candlestick panel per traded symbol with the agent's trades as markers.

    A buy is a green upward triangle, a sell a red downward one: a long trade buys
    at ``entry_time``/``entry_price`` and sells at ``exit_time``/``exit_price``; a
    short trade the other way round. A trade still open at the end has no exit
    marker.

    Args:
        prices: ``{symbol: {"timestamps", "open", "high", "low", "close"}}``.
        trades: the agent's trades (``symbol, side, entry_time, entry_price,
            exit_time, exit_price, qty, pnl``).
        quote: quote currency, for the axis titles.
    """
    symbols = list(prices) or sorted({str(t.get("symbol")) for t in trades})
    rows = max(1, len(symbols))
    layout = _layout(max(320, 260 * rows))
    # make_subplots' 0.06 between panels, narrower when that would leave the panels no room
    refs = _rows(layout, rows, spacing=min(0.06, 0.5 / (rows - 1)) if rows > 1 else 0.0,
                 titles=[f"{s} ({quote})" for s in symbols] or None)
    for key in list(layout):
        if key.startswith("xaxis"):
            layout[key]["rangeslider"] = {"visible": False}
    by_symbol: dict[str, list[Mapping[str, Any]]] = {}
    for t in trades:
        by_symbol.setdefault(str(t.get("symbol")), []).append(t)
    data: list[dict[str, Any]] = []
    for row, symbol in enumerate(symbols, start=1):
        axes = refs[row - 1]
        p = prices.get(symbol) or {}
        ts = list(p.get("timestamps") or [])
        if ts and p.get("open") is not None:
            data.append({
                "type": "candlestick", "x": ts, "open": _clean(p.get("open")), "high": _clean(p.get("high")),
                "low": _clean(p.get("low")), "close": _clean(p.get("close")), "name": symbol, "showlegend": False,
                "increasing": {"line": {"color": "#64748b"}}, "decreasing": {"line": {"color": "#cbd5e1"}}, **axes})
        elif ts:
            data.append({"type": "scatter", "x": ts, "y": _clean(p.get("close")), "name": symbol, "mode": "lines",
                         "showlegend": False, "line": {"color": "#64748b"}, **axes})
        buys: dict[str, list] = {"x": [], "y": [], "text": []}
        sells: dict[str, list] = {"x": [], "y": [], "text": []}
        for t in by_symbol.get(symbol, ()):
            short = str(t.get("side", "long")).lower() in ("short", "sell")
            qty = _num(t.get("qty"))
            pnl = _num(t.get("pnl"))
            entry = buys if not short else sells
            entry["x"].append(t.get("entry_time"))
            entry["y"].append(_num(t.get("entry_price")))
            entry["text"].append(f"{'short' if short else 'long'} entry, qty {qty:.6g}" if qty is not None else "entry")
            if t.get("exit_time"):
                exit_ = sells if not short else buys
                exit_["x"].append(t.get("exit_time"))
                exit_["y"].append(_num(t.get("exit_price")))
                exit_["text"].append(f"exit ({t.get('exit_reason') or 'close'}), PnL {pnl:.6g} {quote}"
                                     if pnl is not None else "exit")
        for marks, name, colour, symbol_shape in ((buys, "buy", BUY_COLOUR, "triangle-up"),
                                                  (sells, "sell", SELL_COLOUR, "triangle-down")):
            data.append({
                "type": "scatter", "x": marks["x"], "y": marks["y"], "text": marks["text"], "mode": "markers",
                "name": name, "legendgroup": name, "showlegend": row == 1,
                "marker": {"symbol": symbol_shape, "size": 12, "color": colour, "line": {"width": 1, "color": "#111"}},
                "hovertemplate": "%{x}<br>%{y:.8g}<br>%{text}<extra>" + name + "</extra>", **axes})
    return {"data": data, "layout": layout}


def agent_equity_figure(equity: Mapping[str, Any], quote: str, allocated: float | None = None) -> Figure:
    """An agent's equity curve, with its allocation as a dashed line when known."""
    ts = list(equity.get("timestamps") or [])
    data: list[dict[str, Any]] = [{"type": "scatter", "x": ts, "y": _clean(equity.get("values")), "name": "equity",
                                   "mode": "lines", "line": {"color": PARENT_COLOUR, "width": 2}}]
    allocated = _num(allocated)
    if allocated is not None and ts:
        data.append({"type": "scatter", "x": [ts[0], ts[-1]], "y": [allocated, allocated], "mode": "lines",
                     "name": "allocated", "hoverinfo": "skip",
                     "line": {"color": "#94a3b8", "dash": "dash", "width": 1}})
    layout = _layout(320, title={"text": f"Equity ({quote})", "x": 0, "font": {"size": 15}},
                     legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
                     yaxis={"title": {"text": quote}})
    return {"data": data, "layout": layout}


def tier_figure(paths: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """Leverage tiers over time: one step line per subject (the parent thicker, drawn first).

    A decision's tier applies from the end of the period it decided on, so each point is
    at ``period_end`` and the line holds its value until the next decision (``hv`` steps).

    Args:
        paths: ``{subject: [{"period", "period_end", "tier", "trigger"}, ...]}`` oldest first
            (the ``tier_paths`` of :func:`manager.policy.leverage_panel`); tiers are multiples
            of equity.
    """
    order = sorted(paths, key=lambda s: (not str(s).startswith("parent:"), str(s)))
    data: list[dict[str, Any]] = []
    for i, subject in enumerate(order):
        points = list(paths.get(subject) or [])
        parent = str(subject).startswith("parent:")
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": str(subject),
            "x": [p.get("period_end") for p in points], "y": _clean([p.get("tier") for p in points]),
            "text": [f"{p.get('period')}: {p.get('trigger')}" for p in points],
            "line": {"shape": "hv", "width": 3 if parent else 1.5,
                     "color": PARENT_COLOUR if parent else AGENT_COLOURS[i % len(AGENT_COLOURS)]},
            "marker": {"size": 6},
            "hovertemplate": "%{y:g}× from %{x}<br>%{text}<extra>" + str(subject).replace("<", "") + "</extra>"})
    layout = _layout(360, hovermode="closest", yaxis={"title": {"text": "tier (× equity)"}, "rangemode": "tozero",
                                                      "ticksuffix": "×"},
                     xaxis={"title": {"text": "in force from (UTC)"}})
    return {"data": data, "layout": layout}


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def promotion_figure(curves: Mapping[str, Any], quote: str, baselines: Mapping[str, Any] | None = None,
                     agent_id: str = "candidate") -> Figure:
    """The Day-3 candidate's equity over its ranking day, rescaled to the proposed allocation,
    against its baselines: cash (the allocation held), equal-weight buy-and-hold of its symbols,
    and -- when the day ran random-genome baselines -- the random cohorts' median and 5th-95th
    percentile ROI at the end of the day (horizontal lines).

    Args:
        curves: ``{"timestamps", "agent", "cash", "buy_and_hold"}`` in the quote currency
            (:func:`manager.campaign_views.allocation_risk`).
        quote: quote currency, for the axis title.
        baselines: the day's report ``baselines`` (``random.median``, ``p5``, ``p95``), or None.
        agent_id: the candidate's id (legend).
    """
    ts = list(curves.get("timestamps") or [])
    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": ts, "y": _clean(curves.get("agent")), "name": f"{agent_id} (at the allocation)",
         "mode": "lines", "line": {"color": PARENT_COLOUR, "width": 2.5}},
        {"type": "scatter", "x": ts, "y": _clean(curves.get("cash")), "name": "cash", "mode": "lines",
         "hoverinfo": "skip", "line": {"color": "#6b7280", "dash": "dot", "width": 1.5}}]
    if curves.get("buy_and_hold"):
        data.append({"type": "scatter", "x": ts, "y": _clean(curves.get("buy_and_hold")),
                     "name": "buy-and-hold (equal weight)", "mode": "lines",
                     "line": {"color": BUY_COLOUR, "dash": "dash", "width": 1.5}})
    rnd = (baselines or {}).get("random") or {}
    cash = _clean(curves.get("cash"))
    amount = cash[0] if cash else None
    if ts and amount is not None:
        for key, label in (("median", "random genomes: median"), ("p5", "random: 5th pct"),
                           ("p95", "random: 95th pct")):
            roi = _num(rnd.get(key))
            if roi is not None:
                data.append({"type": "scatter", "x": [ts[0], ts[-1]], "y": [amount * (1 + roi)] * 2,
                             "mode": "lines", "name": label, "hoverinfo": "name+y",
                             "line": {"color": "#bab0ac", "dash": "solid" if key == "median" else "dot",
                                      "width": 1.2}})
    layout = _layout(320, yaxis={"title": {"text": quote}},
                     legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0})
    return {"data": data, "layout": layout}


def deployment_figure(series: Mapping[str, Any], quote: str, allocation: float | None,
                      max_drawdown: float | None) -> Figure:
    """A micro-live deployment's equity at each bar close against its allocation and its
    drawdown rollback level.

    The rollback fires when equity falls more than ``max_drawdown`` below its running peak,
    the peak including the allocation (:func:`risk.rollback.evaluate`), so the level is
    ``running peak x (1 - max_drawdown)``: flat at ``allocation x (1 - max_drawdown)`` until
    equity makes a new high, then stepping up with the peak (drawn as an ``hv`` step line).

    Args:
        series: ``{"timestamps", "equity", "floor"}`` (:func:`manager.deployment_views.deployment_view`):
            ISO times, equity and the rollback level at each bar close, quote currency.
        quote: quote currency (axis title).
        allocation: the deployment's allocation, quote currency (a dashed horizontal line).
        max_drawdown: the rollback threshold, a fraction (legend text).
    """
    ts = list(series.get("timestamps") or [])
    data: list[dict[str, Any]] = [{"type": "scatter", "x": ts, "y": _clean(series.get("equity")), "name": "equity",
                                   "mode": "lines", "line": {"color": PARENT_COLOUR, "width": 2}}]
    allocation = _num(allocation)
    if allocation is not None and ts:
        data.append({"type": "scatter", "x": [ts[0], ts[-1]], "y": [allocation, allocation], "mode": "lines",
                     "name": "allocation", "hoverinfo": "name+y",
                     "line": {"color": "#94a3b8", "dash": "dash", "width": 1.2}})
    dd = _num(max_drawdown)
    if series.get("floor") and ts:
        label = f"rollback level: running peak × (1 − {dd:.2%})" if dd is not None else "rollback level"
        data.append({"type": "scatter", "x": ts, "y": _clean(series.get("floor")), "mode": "lines", "name": label,
                     "hoverinfo": "name+y", "line": {"color": LIMIT_COLOUR, "dash": "dot", "width": 1.5,
                                                     "shape": "hv"}})
    layout = _layout(340, yaxis={"title": {"text": quote}},
                     legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0})
    return {"data": data, "layout": layout}


def fan_figure(path: Sequence[Mapping[str, Any]], bankroll: float, target_amount: float | None, quote: str,
               actual: Sequence[float | None] | None = None) -> Figure:
    """A grow plan's fan chart: the bootstrap's expected equity per day with its 5-95 % band,
    the target as a dashed line and -- on the plan page -- the actual equity of the days run.

    Day 0 is the bankroll; day ``d`` is the equity at the end of the plan's ``d``-th day.

    Args:
        path: per day ``{"day", "expected", "p05", "p95"}`` in the quote currency (the
            ``feasibility.path`` of :func:`manager.feasibility.assess`).
        bankroll: the starting bankroll (day 0), quote currency.
        target_amount: the equity to reach, or None.
        quote: quote currency (axis title).
        actual: the actual equity at the end of each day (None: not run yet), or None.
    """
    days = [0] + [int(p.get("day") or i + 1) for i, p in enumerate(path)]
    start = _num(bankroll)

    def series(key: str) -> list[float | None]:
        return [start] + _clean([p.get(key) for p in path])

    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": days, "y": series("p95"), "name": "95th percentile", "mode": "lines",
         "line": {"color": "rgba(31,59,115,0.25)", "width": 1}, "hovertemplate": "95th pct: %{y:,.2f}<extra></extra>"},
        {"type": "scatter", "x": days, "y": series("p05"), "name": "5-95 % band", "mode": "lines", "fill": "tonexty",
         "fillcolor": "rgba(31,59,115,0.15)", "line": {"color": "rgba(31,59,115,0.25)", "width": 1},
         "hovertemplate": "5th pct: %{y:,.2f}<extra></extra>"},
        {"type": "scatter", "x": days, "y": series("expected"), "name": "expected (bootstrap mean)",
         "mode": "lines+markers", "line": {"color": PARENT_COLOUR, "width": 2.5}, "marker": {"size": 5}}]
    target = _num(target_amount)
    if target is not None:
        data.append({"type": "scatter", "x": [days[0], days[-1]], "y": [target, target], "mode": "lines",
                     "name": f"target {target:,.2f}", "hoverinfo": "name",
                     "line": {"color": LIMIT_COLOUR, "dash": "dash", "width": 1.5}})
    if actual is not None:
        done = [(d, _num(v)) for d, v in zip(days[1:], actual) if _num(v) is not None]
        if done:
            data.append({"type": "scatter", "x": [0] + [d for d, _ in done], "y": [start] + [v for _, v in done],
                         "mode": "lines+markers", "name": "actual", "line": {"color": BUY_COLOUR, "width": 2.5},
                         "marker": {"size": 7}})
    layout = _layout(340, yaxis={"title": {"text": f"equity ({quote})" if quote else "equity"}},
                     xaxis={"title": {"text": "day of the plan"}, **({"dtick": 1} if len(days) <= 31 else {})},
                     legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    return {"data": data, "layout": layout}


def plan_figure(rows: Sequence[Mapping[str, Any]], bankroll: float, target_amount: float | None,
                quote: str) -> Figure:
    """The plan page's chart: :func:`fan_figure` of the stored daily plan (``expected_equity``,
    ``p05``, ``p95`` per day) with the actual equity of each reported day.

    Args:
        rows: ``intent_view(...)["progress"]["rows"]``: ``{"day", "plan": {...}, "actual": report | None}``.
    """
    path = [{"day": r["day"], "expected": (r.get("plan") or {}).get("expected_equity"),
             "p05": (r.get("plan") or {}).get("p05"), "p95": (r.get("plan") or {}).get("p95")} for r in rows]
    actual = [((r.get("actual") or {}).get("actual") or {}).get("end_equity") if r.get("actual") else None
              for r in rows]
    return fan_figure(path, bankroll, target_amount, quote, actual=actual)
