"""``GET /trading/cohorts/{run_id}/agents/{agent_id}``: one agent of a completed cohort.

Trades as buy/sell markers on the candlesticks of each traded symbol, the equity
curve, the genome, the metrics and the trade list (rows formatted once in Python:
an agent may have traded hundreds of times).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from manager import display, read_model
from manager.store import NotFound, Store
from web import figures
from web.errors import PageError, html_router
from web.formatting import dt, finite, money, num, pct, sign, text
from web.pages import detail_or_none, store
from web.templating import render

__all__ = ["TradeRow", "agent_page", "genome_rows", "metric_rows", "router", "trade_row"]

router = html_router()

_GENOME_KEYS = ("family", "symbols", "size", "leverage", "stop_loss", "take_profit", "max_hold_bars",
                "generation", "parents", "genome_id")
_METRIC_ROWS = (
    ("rank", "Rank", "int"), ("allocated", "Allocated", "money"), ("final_equity", "Final equity", "money"),
    ("roi", "ROI", "pct"), ("hourly_roi", "Hourly ROI", "pct4"), ("realized_pnl", "Realised PnL", "money"),
    ("unrealized_pnl", "Unrealised PnL", "money"), ("fees", "Fees", "money"), ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"), ("max_drawdown", "Max drawdown", "pct"), ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"), ("utilisation", "Utilisation (mean)", "pct"),
    ("peak_utilisation", "Peak utilisation", "pct"), ("breaches", "Breach attempts", "int"),
    ("liquidated", "Liquidated", "bool"), ("failed", "Failed", "bool"), ("confidence", "Confidence (PSR)", "num"),
)


def genome_rows(genome: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, shown value)`` rows of a genome: the known genes first (fractions as
    percentages, leverage as a multiple), each strategy parameter as ``params.<name>``
    after the family, then anything a newer genome carries."""
    rows: list[tuple[str, str]] = []
    for key in _GENOME_KEYS:
        if key not in genome:
            continue
        value = genome[key]
        if key in ("symbols", "parents"):
            shown = ", ".join(str(v) for v in value) if value else "—"
        elif key in ("size", "stop_loss", "take_profit"):
            shown = pct(value)
        elif key == "leverage":
            shown = f"{num(value, 3)}×"
        else:
            shown = str(value)
        rows.append((key, shown))
        if key == "family":
            for name, pv in (genome.get("params") or {}).items():
                rows.append((f"params.{name}", f"{pv:.6g}" if isinstance(pv, float) else str(pv)))
    for key, value in genome.items():  # anything a newer genome carries
        if key not in _GENOME_KEYS and key != "params":
            rows.append((key, str(value)))
    return rows


def metric_rows(agent: Mapping[str, Any], quote: str,
                annualised: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(label, shown value)`` rows of an agent's metrics (money in ``quote``); Sharpe and
    Sortino say how they were annualised (``annualised``: :func:`manager.display.annualisation`)."""
    rows = []
    for key, label, kind in _METRIC_ROWS:
        if key not in agent:
            continue
        if key in ("sharpe", "sortino") and annualised:
            label = f"{label} ({annualised['short']})"
        elif key == "win_rate" and agent[key] is None:
            label = f"{label} (no closed trade yet)"
        v = agent[key]
        shown = {"money": lambda: f"{money(v)} {quote}".strip(), "pct": lambda: pct(v),
                 "pct4": lambda: pct(v, 4), "num": lambda: num(v, 3), "bool": lambda: "yes" if v else "no",
                 "int": lambda: "—" if v is None else str(v)}[kind]()
        rows.append((label, shown))
    return rows


class TradeRow(NamedTuple):
    """One row of the trade list, formatted once in Python (cheaper than five Jinja
    filters per row when an agent traded hundreds of times)."""

    symbol: str
    side: str
    entry_time: str
    entry_price: str
    exit_time: str
    exit_price: str
    qty: str
    fees: str
    pnl_class: str
    pnl: str
    exit_reason: str


def trade_row(t: Mapping[str, Any]) -> TradeRow:
    """The trade list's row of a round trip ``t`` (an open position's exit time is ``open``;
    prices, fees and PnL with 8 decimals, PnL coloured by its sign as shown)."""
    get = t.get
    pnl = get("pnl")
    return TradeRow(
        symbol=text(get("symbol")), side=text(get("side")), entry_time=dt(get("entry_time")),
        entry_price=num(get("entry_price"), 8), exit_time=dt(get("exit_time")) if get("exit_time") else "open",
        exit_price=num(get("exit_price"), 8), qty=num(get("qty"), 4), fees=num(get("fees"), 8),
        pnl_class=f"num {sign(pnl, 8, 1.0)}", pnl=num(pnl, 8), exit_reason=text(get("exit_reason")))


@router.get("/trading/cohorts/{run_id}/agents/{agent_id}", response_class=HTMLResponse)
def agent_page(request: Request, run_id: str, agent_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """One agent of a completed cohort.

    Raises:
        PageError: 404 for an unknown cohort, or an agent it does not have (yet).
    """
    detail = detail_or_none(db, run_id)
    if detail is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    try:
        data = read_model.agent_detail(db, run_id, agent_id)
    except NotFound:
        raise PageError(404, "Agent not found", f"Cohort {run_id} has no agent {agent_id!r}"
                        + ("" if detail["run"].get("status") == "completed"
                           else f" yet (the cohort is {detail['run'].get('status')})") + ".") from None
    summary = detail.get("summary") or {}
    quote = (detail["run"].get("header") or {}).get("quote") or ""
    annualised = display.annualisation(summary.get("window"))
    agent = data.get("agent") or {}
    trades = data.get("trades") or []
    prices = data.get("prices") or {}
    context = {
        "nav": "cohorts", "charts": True, "run": detail["run"], "agent": agent, "quote": quote,
        "trades": trades, "trade_rows": [trade_row(t) for t in trades], "prices": prices,
        "prices_error": data.get("prices_error"),
        "genome_rows": genome_rows(agent.get("genome") or {}),
        "metric_rows": metric_rows(agent, quote, annualised), "annualised": annualised,
        "figures": {
            "prices": figures.to_json(figures.price_figure(prices, trades, quote)),
            "equity": figures.to_json(figures.agent_equity_figure(data.get("equity") or {}, quote,
                                                                  finite(agent.get("allocated")))),
        },
    }
    return render(request, "agent.html", context)
