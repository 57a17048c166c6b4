"""Plotly figures of the dashboard, built server-side and sent to the page as JSON.

Every function takes plain read-layer data (lists of numbers and ISO timestamps from
:mod:`api.queries`) and returns a figure *dict* (``{"data": [...], "layout": {...}}``)
that :func:`to_json` serialises; the page hands it to ``Plotly.newPlot`` (plotly.js is
served from the installed ``plotly`` package, see :mod:`web.routes`). Nothing here
reads the store or renders HTML.

Units: equity in the bars' quote currency; utilisation and drawdown are fractions
(shown as %); gross exposure is a multiple of parent equity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from plotly.utils import PlotlyJSONEncoder

__all__ = [
    "agent_equity_figure",
    "equity_figure",
    "exposure_figure",
    "gauges_figure",
    "price_figure",
    "to_json",
]

TEMPLATE = "plotly_white"
PARENT_COLOUR = "#1f3b73"
BUY_COLOUR = "#15803d"
SELL_COLOUR = "#b91c1c"
LIMIT_COLOUR = "#b91c1c"
AGENT_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac",
)
MARGIN = {"l": 60, "r": 20, "t": 40, "b": 50}


def to_json(figure: go.Figure | Mapping[str, Any]) -> str:
    """The figure as JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are written as JSON unicode escapes, so no text in a
    figure (an agent id, a symbol) can close the script element.
    """
    fig = figure.to_plotly_json() if isinstance(figure, go.Figure) else dict(figure)
    text = json.dumps(fig, cls=PlotlyJSONEncoder, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _clean(values: Sequence[Any] | None) -> list[float | None]:
    """Numbers with NaN/inf as None (JSON has no NaN; Plotly draws a gap)."""
    out: list[float | None] = []
    for v in values or []:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if math.isfinite(f) else None)
    return out


def _finish(fig: go.Figure, *, title: str | None, height: int) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE, height=height, margin=MARGIN, hovermode="x unified",
        legend={"orientation": "h", "yanchor": "top", "y": -0.1, "x": 0},
        title={"text": title, "x": 0, "font": {"size": 15}} if title else None,
    )
    return fig


def equity_figure(curves: Mapping[str, Any], quote: str, *, max_agents_in_legend: int = 12) -> go.Figure:
    """Parent equity (top) and every agent's equity (bottom) over the traded window.

    Args:
        curves: ``{"timestamps", "parent_equity", "agent_equity": {agent_id: [...]}}``.
        quote: quote currency, for the axis titles.
        max_agents_in_legend: above this many agents only the first ones get a
            legend entry (the others are still drawn and hoverable).
    """
    ts = list(curves.get("timestamps") or [])
    agents: Mapping[str, Sequence[float]] = curves.get("agent_equity") or {}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45],
                        subplot_titles=(f"Parent equity ({quote})", f"Agents' equity ({quote})"))
    fig.add_trace(go.Scatter(x=ts, y=_clean(curves.get("parent_equity")), name="parent", mode="lines",
                             line={"color": PARENT_COLOUR, "width": 2.5}), row=1, col=1)
    for i, (agent_id, values) in enumerate(agents.items()):
        fig.add_trace(go.Scatter(
            x=ts, y=_clean(values), name=str(agent_id), mode="lines", opacity=0.8,
            line={"color": AGENT_COLOURS[i % len(AGENT_COLOURS)], "width": 1},
            showlegend=i < max_agents_in_legend,
        ), row=2, col=1)
    fig.update_yaxes(title_text=quote, row=1, col=1)
    fig.update_yaxes(title_text=quote, row=2, col=1)
    return _finish(fig, title=None, height=560)


def exposure_figure(curves: Mapping[str, Any], limits: Mapping[str, Any]) -> go.Figure:
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
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("Utilisation (capital in positions / allocated)",
                                        "Gross exposure (× parent equity)"))
    fig.add_trace(go.Scatter(x=ts, y=_clean(curves.get("utilisation")), name="utilisation", mode="lines",
                             fill="tozeroy", line={"color": "#4e79a7", "width": 1.5}), row=1, col=1)
    fig.add_trace(go.Scatter(x=ts, y=_clean(curves.get("gross_exposure")), name="gross exposure", mode="lines",
                             fill="tozeroy", line={"color": "#f28e2b", "width": 1.5}), row=2, col=1)
    if gross_cap is not None and ts:
        for row, label in ((1, "ceiling"), (2, "gross ceiling")):
            fig.add_trace(go.Scatter(
                x=[ts[0], ts[-1]], y=[gross_cap, gross_cap], mode="lines", name=f"{label} {gross_cap:g}×",
                line={"color": LIMIT_COLOUR, "dash": "dash", "width": 1.5}, hoverinfo="skip",
                showlegend=row == 2, legendgroup="ceiling",
            ), row=row, col=1)
    if symbol_cap is not None and ts and symbol_cap != gross_cap:
        fig.add_trace(go.Scatter(
            x=[ts[0], ts[-1]], y=[symbol_cap, symbol_cap], mode="lines",
            name=f"per-symbol cap {symbol_cap:g}×", hoverinfo="skip",
            line={"color": "#7c3aed", "dash": "dot", "width": 1.2}), row=2, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(ticksuffix="×", rangemode="tozero", row=2, col=1)
    return _finish(fig, title=None, height=480)


def gauges_figure(parent: Mapping[str, Any], limits: Mapping[str, Any]) -> go.Figure:
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
    fig = go.Figure()
    dd_top = max(0.2, dd * 1.25)
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=dd * 100, title={"text": "Max drawdown"},
        number={"suffix": " %", "valueformat": ".2f"},
        gauge={"axis": {"range": [0, dd_top * 100]}, "bar": {"color": "#b91c1c" if dd > 0.1 else "#f59e0b"},
               "steps": [{"range": [0, 5], "color": "#ecfdf5"}, {"range": [5, 10], "color": "#fef3c7"},
                         {"range": [10, dd_top * 100], "color": "#fee2e2"}]},
        domain={"x": [0.0, 0.3], "y": [0, 1]},
    ))
    util_top = max(cap, util) * 1.2
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=util * 100, title={"text": "Peak utilisation"},
        number={"suffix": " %", "valueformat": ".1f"},
        gauge={"axis": {"range": [0, util_top * 100]}, "bar": {"color": "#4e79a7"},
               "threshold": {"line": {"color": LIMIT_COLOUR, "width": 3}, "thickness": 0.85, "value": cap * 100}},
        domain={"x": [0.35, 0.65], "y": [0, 1]},
    ))
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=breaches, title={"text": "Breach attempts"},
        gauge={"axis": {"range": [0, max(10, breaches * 1.25)]},
               "bar": {"color": "#b91c1c" if breaches else "#15803d"}},
        domain={"x": [0.7, 1.0], "y": [0, 1]},
    ))
    fig.update_layout(template=TEMPLATE, height=220, margin={"l": 30, "r": 30, "t": 50, "b": 10})
    return fig


def price_figure(prices: Mapping[str, Mapping[str, Any]], trades: Sequence[Mapping[str, Any]],
                 quote: str) -> go.Figure:
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
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06 if rows > 1 else 0.0,
                        subplot_titles=[f"{s} ({quote})" for s in symbols] or None)
    for row, symbol in enumerate(symbols, start=1):
        p = prices.get(symbol) or {}
        ts = list(p.get("timestamps") or [])
        if ts and p.get("open") is not None:
            fig.add_trace(go.Candlestick(
                x=ts, open=_clean(p.get("open")), high=_clean(p.get("high")), low=_clean(p.get("low")),
                close=_clean(p.get("close")), name=symbol, showlegend=False,
                increasing={"line": {"color": "#64748b"}}, decreasing={"line": {"color": "#cbd5e1"}},
            ), row=row, col=1)
        elif ts:
            fig.add_trace(go.Scatter(x=ts, y=_clean(p.get("close")), name=symbol, mode="lines",
                                     showlegend=False, line={"color": "#64748b"}), row=row, col=1)
        buys: dict[str, list] = {"x": [], "y": [], "text": []}
        sells: dict[str, list] = {"x": [], "y": [], "text": []}
        for t in trades:
            if str(t.get("symbol")) != symbol:
                continue
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
            fig.add_trace(go.Scatter(
                x=marks["x"], y=marks["y"], text=marks["text"], mode="markers", name=name,
                legendgroup=name, showlegend=row == 1,
                marker={"symbol": symbol_shape, "size": 12, "color": colour, "line": {"width": 1, "color": "#111"}},
                hovertemplate="%{x}<br>%{y:.8g}<br>%{text}<extra>" + name + "</extra>",
            ), row=row, col=1)
    fig.update_xaxes(rangeslider_visible=False)
    return _finish(fig, title=None, height=max(320, 260 * rows))


def agent_equity_figure(equity: Mapping[str, Any], quote: str, allocated: float | None = None) -> go.Figure:
    """An agent's equity curve, with its allocation as a dashed line when known."""
    ts = list(equity.get("timestamps") or [])
    fig = go.Figure(go.Scatter(x=ts, y=_clean(equity.get("values")), name="equity", mode="lines",
                               line={"color": PARENT_COLOUR, "width": 2}))
    if allocated is not None and ts:
        fig.add_trace(go.Scatter(x=[ts[0], ts[-1]], y=[allocated, allocated], mode="lines", name="allocated",
                                 hoverinfo="skip", line={"color": "#94a3b8", "dash": "dash", "width": 1}))
    fig.update_yaxes(title_text=quote)
    _finish(fig, title=f"Equity ({quote})", height=320)
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1})
    return fig


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
