"""``cohortlab risk report RUN_ID``: the parent's bankroll at risk (VaR/CVaR),
stress scenarios on the run's end-of-run positions and ceilings, and each
agent's Kelly leverage, from what the store holds for a completed run.

Sources: :mod:`risk.var` (historical and Cornish-Fisher VaR/CVaR of the parent's
per-bar returns), :mod:`risk.stress` (shocks of -10 % and -30 % to every symbol
at the next open, and a replay of the worst clock hour of the run's bars),
:mod:`risk.kelly` (per-agent fractional Kelly leverage from its per-bar returns
and mean gross exposure).
"""
from __future__ import annotations


import numpy as np

from manager.runner import BarsRequest, load_bars
from manager.store import Store
from manager.times import RunError
from risk.kelly import kelly_leverage
from risk.stress import standard_scenarios
from risk.var import value_at_risk
from simulator import metrics

__all__ = ["risk_report"]


def _positions(state: dict, symbols: list[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    agents = list(state["agents"])
    qty = np.zeros((len(agents), len(symbols)))
    cash = np.zeros(len(agents))
    for i, aid in enumerate(agents):
        a = state["agents"][aid]
        cash[i] = float(a["cash"])
        for sym, p in (a.get("positions") or {}).items():
            if sym in symbols:
                qty[i, symbols.index(sym)] = float(p["qty"])
    prices = np.array([float(state["last_close"][s]) for s in symbols])
    return agents, qty, cash, prices


def _ceilings(run: dict, agents: list[str]) -> np.ndarray:
    """``(N,)`` each agent's leverage ceiling in the run: the policy's or kill switch's
    ceilings when it traded under them, else its genome's leverage gene."""
    stored = ((run.get("config") or {}).get("ceilings") or {}).get("agents")
    if stored and len(stored) == len(agents):
        return np.asarray(stored, dtype=float)
    genomes = run.get("genomes") or []
    return np.array([float(g.get("leverage", 1.0)) for g in genomes][:len(agents)] + [1.0] * (len(agents) - len(genomes)))


def risk_report(store: Store, run_id: str, *, window: int | None = None, levels=(0.95, 0.99),
                kelly_fraction: float = 0.5, maintenance_margin: float | None = None) -> dict:
    """The risk report of a completed run.

    Args:
        store: where the run is.
        run_id: a completed cohort or backtest run.
        window: VaR over the last ``window`` per-bar parent returns (None = the whole run).
        levels: VaR/CVaR confidence levels.
        kelly_fraction: fraction of the Kelly leverage reported as the cap (0.5 = half Kelly).
        maintenance_margin: for the liquidation test (default: the run's own).

    Returns:
        ``{"run_id", "quote", "bankroll", "var": {...}, "stress": [...], "kelly": [...],
        "worst_hour_note"}``; VaR's horizon is one bar of the run's timeframe,
        its sample the run's traded bars (or the window), not annualised.

    Raises:
        RunError: the run is not completed (nothing to measure).
        RunNotFound: no such run.
    """
    run = store.get_run(run_id)
    summary = run.get("summary")
    if run.get("status") != "completed" or not summary:
        raise RunError(f"run {run_id} is {run.get('status')!r}; a risk report needs a completed run")
    state = summary["final_state"]
    bankroll = float(state["bankroll"])
    curves = store.get_curves(run_id)
    parent = np.asarray(curves["parent_equity"], dtype=float)
    rets = metrics.bar_returns(parent, bankroll)
    var = value_at_risk(rets, bankroll, levels=levels, window=window)

    symbols = list(state["last_close"])
    agents, qty, cash, prices = _positions(state, symbols)
    request = (run.get("config") or {}).get("request") or {}
    engine = request.get("engine") or {}
    mm = float(maintenance_margin if maintenance_margin is not None else engine.get("maintenance_margin", 0.05))
    unalloc = float(state["unallocated_cash"])
    timestamps = close = None
    note = None
    header = run.get("header") or {}
    try:  # the run's own traded window of its own data (a campaign day's request holds no bars)
        label = header.get("data_label") or run.get("data_label")
        synthetic = label == "SYNTHETIC"
        bars = BarsRequest(data=None if synthetic else label, symbols=symbols, start=header.get("window_start"),
                           end=header.get("window_end"), warmup_bars=0,
                           quote=(request.get("bars") or {}).get("quote"),
                           seed=int((request.get("bars") or {}).get("seed") or 0))
        market = load_bars(bars) if label else None
        if market is not None:
            cols = [market.symbols.index(s) for s in symbols if s in market.symbols]
            if len(cols) == len(symbols):
                w = market.warmup
                timestamps, close = market.timestamps[w:], market.close[w:, cols]
    except Exception as exc:  # the bars moved or are gone: the shocks still apply
        note = f"worst-hour replay skipped: the run's bars could not be reloaded ({type(exc).__name__})"
    scenarios = standard_scenarios(qty, prices, cash, mm, timestamps, close, unallocated=unalloc)
    stress = [s.to_dict() for s in scenarios]
    # the same shocks with every agent at its ceiling (its tier or leverage gene), long in its symbols
    caps = _ceilings(run, agents)
    equity = cash + (qty * prices).sum(axis=1)
    genomes = run.get("genomes") or []
    held = np.zeros_like(qty)
    for i in range(len(agents)):
        syms = [symbols.index(x) for x in (genomes[i].get("symbols") if i < len(genomes) else []) if x in symbols]
        for j in syms:
            held[i, j] = caps[i] * max(equity[i], 0.0) / len(syms) / prices[j]
    at_cap_cash = equity - (held * prices).sum(axis=1)
    for s in standard_scenarios(held, prices, at_cap_cash, mm, timestamps, close, unallocated=unalloc):
        d = s.to_dict()
        d["name"] = f"{d['name']}, every agent at its ceiling"
        stress.append(d)

    eq = np.asarray(curves["equity"], dtype=float)
    pv = np.asarray(curves["position_value"], dtype=float)
    alloc = {r["agent_id"]: r for r in store.get_agents(run_id)}
    kelly = []
    for i, aid in enumerate(agents):
        init = float((alloc.get(aid) or {}).get("allocated") or 0.0)
        r = metrics.bar_returns(eq[i], init) if init > 0 else np.zeros(eq.shape[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            expo = float(np.nanmean(np.where(eq[i] > 0, pv[i] / np.where(eq[i] > 0, eq[i], 1.0), 0.0)))
        est = kelly_leverage(float(r.mean()) if r.size else 0.0, float(r.var(ddof=1)) if r.size > 1 else 0.0,
                             expo, fraction=kelly_fraction, n_bars=int(r.size))
        kelly.append({"agent_id": aid, **est.to_dict()})
    return {"run_id": run_id, "quote": (run.get("header") or {}).get("quote"), "bankroll": bankroll,
            "var": var, "stress": stress, "kelly": kelly, "worst_hour_note": note,
            "positions_at": "the run's last close (end-of-run positions); the scenarios named 'at its ceiling' "
                            "hold each agent long at its leverage ceiling (tier or gene) x its equity instead",
            "ceilings": caps.tolist(), "maintenance_margin": mm}
