"""Reports of a cohort run and a backtest: the JSON documents users and later
stages (dashboard, campaigns) read, plus CSV export of the leaderboard."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from simulator.cohort import CohortResult


class LeaderboardColumn(NamedTuple):
    """One column of a cohort leaderboard (a row is :meth:`CohortResult.leaderboard`'s dict).

    Attributes:
        key: the row field shown (``roi`` is a fraction, money in the run's quote currency).
        header: the column heading.
        numeric: a number (right-aligned, sorted numerically) rather than text.
        ascending: the column's best-first order is ascending (smaller is better:
            rank, drawdown, breaches; text: agent id, family); else descending.
    """

    key: str
    header: str
    numeric: bool
    ascending: bool = False


LEADERBOARD_COLUMNS: tuple[LeaderboardColumn, ...] = (
    LeaderboardColumn("rank", "#", True, ascending=True),
    LeaderboardColumn("agent_id", "Agent", False, ascending=True),
    LeaderboardColumn("family", "Family", False, ascending=True),
    LeaderboardColumn("allocated", "Allocated", True),
    LeaderboardColumn("final_equity", "Final equity", True),
    LeaderboardColumn("roi", "ROI", True),
    LeaderboardColumn("sharpe", "Sharpe", True),
    LeaderboardColumn("sortino", "Sortino", True),
    LeaderboardColumn("max_drawdown", "Max DD", True, ascending=True),
    LeaderboardColumn("trades", "Trades", True),
    LeaderboardColumn("win_rate", "Win rate", True),
    LeaderboardColumn("utilisation", "Utilisation", True),
    LeaderboardColumn("breaches", "Breaches", True, ascending=True),
    LeaderboardColumn("confidence", "Confidence", True),
)
"""The leaderboard's columns, in display order (the dashboard's table and its sort keys)."""


def _iso(ts) -> str:
    return str(np.datetime64(ts, "s")) + "Z"


def window(result: CohortResult) -> dict:
    """``{"start", "end", "timeframe", "bars", "symbols"}`` of the traded bars
    (``end`` exclusive: open time of the last bar + one timeframe)."""
    m = result.market
    ts = result.engine.timestamps
    end = ts[-1] + np.timedelta64(m.timeframe_s, "s")
    return {"start": _iso(ts[0]), "end": _iso(end), "timeframe": m.timeframe,
            "bars": int(len(ts)), "symbols": list(m.symbols)}


def cohort_report(run_id: str, seed: int | None, result: CohortResult) -> dict:
    """The ``--json`` report of ``cohortlab run``.

    Keys: ``run_id, seed, bankroll, allocation, window, parent, agents`` (ranked
    best first), ``hourly, ledger`` plus ``data`` (source label, ``SYNTHETIC``
    for generated bars), ``quote`` (currency of every money figure) and
    ``settings`` (costs and limits, ``daily_hard_stop`` included) and ``events``
    (the daily hard stops, see :func:`simulator.cohort.hard_stop_events`; empty when
    none fired). Fractions are fractions (0.05 = 5 %).
    """
    p = result.parent
    parent = {k: p[k] for k in ("final_equity", "roi", "max_drawdown", "peak_gross_exposure",
                                "peak_utilisation", "unallocated_cash", "breaches")}
    parent.update({k: p[k] for k in ("sharpe", "mean_gross_exposure", "liquidations", "fees", "failed_agents")})
    parent["hard_stops"] = len(result.events)  # daily hard stops fired (the ``events``)
    cfg = result.config
    return {
        "run_id": run_id,
        "seed": seed,
        "bankroll": p["bankroll"],
        "allocation": result.allocation_policy,
        "window": window(result),
        "parent": parent,
        "agents": result.leaderboard(),
        "hourly": result.hourly,
        "ledger": {"transactions": len(result.journal), "balanced": bool(result.ledger_ok)},
        "failed_agents": result.failed_agents,
        "events": list(result.events),
        "data": result.market.label(),
        "quote": result.market.quote,
        "settings": {
            "reserve": result.reserve, "fee_bps": cfg.fee_bps, "slippage_bps": cfg.slippage_bps,
            "max_gross_leverage": cfg.max_gross_leverage,
            "max_symbol_exposure": cfg.max_symbol_exposure,
            "maintenance_margin": cfg.maintenance_margin, "allow_short": cfg.allow_short,
            "settle": cfg.settle, "daily_hard_stop": cfg.daily_hard_stop,
        },
    }


def backtest_report(result: CohortResult) -> dict:
    """The ``--json`` report of ``cohortlab backtest``: ``final_equity``,
    ``total_return`` (fraction), ``trades`` (symbol, entry/exit time and price,
    qty, fees, pnl; an open position is marked at the last close with
    ``exit_time`` null), ``data``/``quote``/``window``/``metrics`` and ``events``
    (daily hard stops, as in :func:`cohort_report`)."""
    agent = result.scores[0]
    trades = [{k: t[k] for k in ("symbol", "entry_time", "entry_price", "exit_time", "exit_price",
                                 "qty", "fees", "pnl")} for t in result.trades]
    return {
        "final_equity": result.parent["final_equity"],
        "total_return": result.parent["roi"],
        "trades": trades,
        "data": result.market.label(),
        "quote": result.market.quote,
        "window": window(result),
        "metrics": {k: agent[k] for k in ("sharpe", "sortino", "max_drawdown", "win_rate", "fees",
                                           "realized_pnl", "unrealized_pnl", "utilisation",
                                           "confidence")},
        "ledger": {"transactions": len(result.journal), "balanced": bool(result.ledger_ok)},
        "events": list(result.events),
    }


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number {obj} in report")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_json(path: str | Path, report: dict) -> Path:
    """Write ``report`` as JSON (finite numbers only); creates parent folders."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_finite(report), indent=2) + "\n")
    return out


def write_leaderboard_csv(path: str | Path, agents: list[dict]) -> Path:
    """Write the leaderboard (one row per agent, every scalar column) as CSV."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cols = [k for k in agents[0] if not isinstance(agents[0][k], (dict, list))] if agents else []
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(agents)
    return out


def csv_chunks(items: Iterable[dict], fields: Sequence[str], rows_per_chunk: int = 500) -> Iterator[str]:
    """``items`` as CSV text (header ``fields``; None as an empty cell) in chunks of
    ``rows_per_chunk`` rows, header first: what the API streams and the CLI writes."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    n = 0
    for row in items:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in fields])
        n += 1
        if n % rows_per_chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
