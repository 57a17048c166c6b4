"""One cohort day: N agents' signals -> lockstep engine -> scored results.

Pure computation: no I/O. The manager persists and prints what
:func:`simulate_cohort` returns; the backtest is a cohort of one.

An *agent* here is anything with the genome attributes ``family``, ``params``,
``symbols``, ``size``, ``stop_loss``, ``take_profit``, ``max_hold_bars`` and
``leverage`` (an :class:`evolution.genome.Genome` is one); the simulator does
not import :mod:`evolution`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
from numba import njit

from simulator import metrics
from simulator.allocation import agent_volatility, allocate, symbol_mask
from simulator.engine import AgentArrays, EngineConfig, EngineError, EngineResult, run_engine
from simulator.kernel import KIND_NAMES, UNITS
from simulator.ledger import Transaction, build_journal, final_state, verify_journal
from simulator.market import MarketData
from simulator.strategies.registry import get_strategy


class AgentLike(Protocol):
    """The genome attributes the simulator reads (see :class:`evolution.genome.Genome`)."""

    family: str
    params: dict
    symbols: tuple[str, ...]
    size: float
    stop_loss: float
    take_profit: float
    max_hold_bars: int
    leverage: float


def build_signals(market: MarketData, agents: Sequence[AgentLike], *,
                  failed: dict[int, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Target signals and per-symbol weights of N agents.

    Each family computes the targets of all its agents in one batch call, so an
    indicator configuration shared by several agents is computed once.

    Args:
        market: the bars.
        agents: N genomes.
        failed: when given, an agent whose strategy raises is sat out instead of
            failing the call: its signals and weights stay 0 and ``failed[i]``
            gets the error text (the batch is retried agent by agent to find
            which ones fail).

    Returns:
        ``(signals (N, T, S) float64 in [-1, 1], weight (N, S) float64)`` where
        weight = size x leverage / (number of the agent's symbols) on the agent's
        symbols and 0 elsewhere; signals are 0 outside each agent's symbols.

    Raises:
        StrategyError: unknown family or invalid parameters (without ``failed``).
        AllocationError: an agent trades a symbol the market lacks.
    """
    N = len(agents)
    T, S = market.close.shape
    mask = symbol_mask([a.symbols for a in agents], market.symbols)
    sig = np.zeros((N, T, S), dtype=np.float64)
    by_family: dict[str, list[int]] = {}
    for i, a in enumerate(agents):
        by_family.setdefault(a.family, []).append(i)
    for family, idx in by_family.items():
        try:
            strat = get_strategy(family)
            targets = strat.targets(market, [strat.validate(agents[i].params) for i in idx])
            sig[idx] = targets * mask[idx][:, None, :]
        except Exception:
            if failed is None:
                raise
            for i in idx:  # find the agents that fail; the others keep their signals
                try:
                    strat = get_strategy(family)
                    sig[i] = strat.targets(market, [strat.validate(agents[i].params)])[0] * mask[i][None, :]
                except Exception as exc:  # noqa: BLE001 - any agent error sits the agent out
                    failed[i] = f"{type(exc).__name__}: {exc}"
                    sig[i] = 0.0
    k = mask.sum(axis=1).clip(min=1)
    size = np.array([a.size for a in agents], dtype=np.float64)
    lev = np.array([a.leverage for a in agents], dtype=np.float64)
    weight = mask * (size * lev / k)[:, None]
    if failed:
        weight[list(failed)] = 0.0
    return sig, weight


def agent_arrays(agents: Sequence[AgentLike], weight: np.ndarray, allocation: np.ndarray,
                 leverage_caps: np.ndarray | None = None) -> AgentArrays:
    """The engine's per-agent arrays from genomes, their ``(N, S)`` weights (see
    :func:`build_signals`) and ``(N,)`` allocations in 1e-8 units. ``leverage_caps``
    ``(N,)`` (multiples of agent equity), when given, lowers each agent's leverage
    ceiling to ``min(gene, cap)`` (a policy tier); the gene still sizes its orders."""
    lev = np.array([a.leverage for a in agents], dtype=np.float64)
    if leverage_caps is not None:
        lev = np.minimum(lev, np.asarray(leverage_caps, dtype=np.float64))
    return AgentArrays(
        weight=weight,
        leverage=lev,
        stop_loss=np.array([a.stop_loss for a in agents], dtype=np.float64),
        take_profit=np.array([a.take_profit for a in agents], dtype=np.float64),
        max_hold_bars=np.array([a.max_hold_bars for a in agents], dtype=np.int64),
        allocation=allocation,
    )


@dataclass
class CohortResult:
    """A finished cohort run (engine output, scores, trades, ledger)."""

    market: MarketData
    agents: list
    agent_ids: list[str]
    config: EngineConfig
    allocation_policy: str
    reserve: float
    engine: EngineResult
    scores: list[dict]
    parent: dict
    hourly: list[dict]
    trades: list[dict]
    journal: list[Transaction] = field(default_factory=list)
    state: dict = field(default_factory=dict)
    ledger_ok: bool = False
    failed_agents: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def leaderboard(self) -> list[dict]:
        """Agent scores ranked by ROI, then Sharpe (best first), with ``rank``."""
        ranked = sorted(self.scores, key=lambda r: (-r["roi"], -r["sharpe"], r["agent_id"]))
        return [{"rank": i + 1, **r} for i, r in enumerate(ranked)]


def _iso(ts) -> str:
    return str(np.datetime64(ts, "s")) + "Z"


@njit(cache=True)
def _round_trip_kernel(agent, symbol, qty, price, fee_units, realized_units, position, bar, kind, n_keys, S):
    """Accumulate the round trips of the fills in execution order (see :func:`round_trips`).

    Returns per-trade arrays in order of opening, and the trade indices in order of closing."""
    F = len(agent)
    slot = np.full(n_keys, -1, np.int64)
    t_agent = np.empty(F, np.int64)
    t_sym = np.empty(F, np.int64)
    t_long = np.empty(F, np.bool_)
    t_entry = np.empty(F, np.int64)
    t_exit = np.full(F, -1, np.int64)
    t_kind = np.full(F, -1, np.int64)
    f64 = np.zeros((7, F))  # in_qty, in_val, out_qty, out_val, qty (max held), fees, realized
    closed = np.empty(F, np.int64)
    n_closed = 0
    nt = 0
    for j in range(F):
        s = symbol[j]
        if s < 0:
            continue
        a = agent[j]
        key = a * S + s
        t = slot[key]
        q = qty[j]
        if t < 0:
            t = nt
            nt += 1
            slot[key] = t
            t_agent[t] = a
            t_sym[t] = s
            t_long[t] = q > 0
            t_entry[t] = bar[j]
        aq = abs(q)
        if (q > 0) == t_long[t]:
            f64[0, t] += aq
            f64[1, t] += aq * price[j]
        else:
            f64[2, t] += aq
            f64[3, t] += aq * price[j]
        f64[4, t] = max(f64[4, t], abs(position[j]))
        f64[5, t] += fee_units[j] / UNITS
        f64[6, t] += realized_units[j] / UNITS
        if position[j] == 0.0:
            t_exit[t] = bar[j]
            t_kind[t] = kind[j]
            closed[n_closed] = t
            n_closed += 1
            slot[key] = -1
    return (t_agent[:nt], t_sym[:nt], t_long[:nt], t_entry[:nt], t_exit[:nt], t_kind[:nt],
            f64[:, :nt], closed[:n_closed])


def round_trips(result: EngineResult, market: MarketData, agent_ids: Sequence[str]) -> list[dict]:
    """Round-trip trades from the fills: a trade opens when a position leaves 0
    and closes when it returns to 0 (a flip closes one trade and opens another).

    Each dict: ``agent_id, symbol, side, entry_time, entry_price`` (average, after
    slippage), ``exit_time, exit_price`` (average; for a trade still open at the
    end: ``None`` and the last close), ``qty`` (largest absolute quantity held),
    ``fees`` and ``pnl`` (realised minus all fees; marked at the last close when
    open), ``exit_reason``, ``open`` (bool). Sorted by entry time, agent id and
    symbol (ties in the order closed trades closed, then open trades opened).
    """
    f = result.fills
    S = len(market.symbols)
    ids = list(agent_ids)
    (t_agent, t_sym, t_long, t_entry, t_exit, t_kind, acc, closed) = _round_trip_kernel(
        np.asarray(f["agent"], np.int64), np.asarray(f["symbol"], np.int64),
        np.asarray(f["qty"], np.float64), np.asarray(f["price"], np.float64),
        np.asarray(f["fee_units"], np.int64), np.asarray(f["realized_units"], np.int64),
        np.asarray(f["position"], np.float64), np.asarray(f["bar"], np.int64),
        np.asarray(f["kind"], np.int64), max(len(ids) * S, 1), max(S, 1))
    in_qty, in_val, out_qty, out_val, qmax, fees, realized = acc
    is_open = t_exit < 0
    order = np.concatenate((closed, np.flatnonzero(is_open)))  # closed as they closed, then open ones
    if not len(order):
        return []
    last_close = np.asarray(market.close[-1], np.float64)
    a_o, s_o = t_agent[is_open], t_sym[is_open]
    pos = np.asarray(result.qty, np.float64)[a_o, s_o]
    basis = np.asarray(result.basis_units)[a_o, s_o] / UNITS
    unreal = pos * last_close[s_o] - basis
    with np.errstate(divide="ignore", invalid="ignore"):
        exit_price = out_val / out_qty
    exit_price[is_open] = last_close[s_o]
    pnl = realized - fees
    pnl[is_open] = realized[is_open] + unreal - fees[is_open]
    times = np.array([t + "Z" for t in np.datetime_as_string(
        np.asarray(market.timestamps).astype("datetime64[s]"), unit="s").tolist()])
    _, time_rank = np.unique(times, return_inverse=True)
    _, agent_rank = np.unique(np.array(ids, dtype=object).astype(str), return_inverse=True)
    _, sym_rank = np.unique(np.array(list(market.symbols), dtype=object).astype(str), return_inverse=True)
    o = order[np.lexsort((np.arange(len(order)), sym_rank[t_sym[order]], agent_rank[t_agent[order]],
                          time_rank[t_entry[order]]))]
    tl = times.tolist()
    syms = list(market.symbols)
    with np.errstate(divide="ignore", invalid="ignore"):
        entry_price = in_val / in_qty
    return [
        {"agent_id": ids[a], "symbol": syms[s], "side": "long" if lg else "short",
         "entry_time": tl[eb], "entry_price": ep,
         "exit_time": None if xb < 0 else tl[xb], "exit_price": xp, "qty": q,
         "fees": fe, "pnl": pn, "exit_reason": None if xb < 0 else KIND_NAMES[k], "open": xb < 0}
        for a, s, lg, eb, ep, xb, xp, q, fe, pn, k in zip(
            t_agent[o].tolist(), t_sym[o].tolist(), t_long[o].tolist(), t_entry[o].tolist(),
            entry_price[o].tolist(), t_exit[o].tolist(), exit_price[o].tolist(), qmax[o].tolist(),
            fees[o].tolist(), pnl[o].tolist(), t_kind[o].tolist())
    ]


def score_agents(result: EngineResult, market: MarketData, agents: Sequence[AgentLike],
                 agent_ids: Sequence[str], trades: Sequence[dict]) -> list[dict]:
    """Per-agent metrics (the leaderboard columns and the JSON report's agent rows).

    Sharpe/Sortino annualised from the timeframe (:func:`simulator.metrics.annualisation_periods`);
    confidence = Probabilistic Sharpe Ratio vs a zero benchmark (Bailey & López
    de Prado, 2012); utilisation = gross position value / allocation.
    """
    ppy = metrics.annualisation_periods(market.timeframe_s)
    alloc = result.allocation_units / UNITS
    eq = result.equity
    rets = metrics.bar_returns(eq, alloc)
    sharpe = metrics.sharpe_ratio(rets, ppy)
    sortino = metrics.sortino_ratio(rets, ppy)
    mdd = metrics.max_drawdown(eq, alloc)
    psr = metrics.probabilistic_sharpe_ratio(rets)
    final = eq[:, -1]
    roi = metrics.roi(final, alloc)
    hours = market.n_trading_bars * market.timeframe_s / 3600.0
    hroi = metrics.hourly_roi(final, alloc, hours)
    u_mean, u_peak = metrics.utilisation(result.position_value, alloc)
    last_close = market.close[-1]
    by_agent: dict[str, list[float]] = {aid: [] for aid in agent_ids}
    counts: dict[str, int] = {aid: 0 for aid in agent_ids}
    for t in trades:
        counts[t["agent_id"]] += 1
        if not t["open"]:
            by_agent[t["agent_id"]].append(t["pnl"])
    rows = []
    for i, (aid, ag) in enumerate(zip(agent_ids, agents)):
        unreal = float(np.sum(result.qty[i] * last_close) - result.basis_units[i].sum() / UNITS)
        rows.append({
            "agent_id": aid,
            "family": ag.family,
            "genome": ag.to_dict() if hasattr(ag, "to_dict") else dict(vars(ag)),
            "allocated": float(alloc[i]),
            "final_equity": float(final[i]),
            "roi": float(roi[i]),
            "hourly_roi": float(hroi[i]),
            "realized_pnl": float(result.realized_units[i] / UNITS),
            "unrealized_pnl": unreal,
            "fees": float(result.fee_units[i] / UNITS),
            "sharpe": float(sharpe[i]),
            "sortino": float(sortino[i]),
            "max_drawdown": float(mdd[i]),
            "trades": counts[aid],
            "win_rate": metrics.win_rate(np.asarray(by_agent[aid], dtype=np.float64)),
            "utilisation": float(u_mean[i]),
            "peak_utilisation": float(u_peak[i]),
            "breaches": int(result.breaches[i]),
            "liquidated": bool(result.liquidated[i]),
            "confidence": float(psr[i]),
        })
    return rows


def parent_summary(result: EngineResult, market: MarketData) -> tuple[dict, list[dict]]:
    """Parent-bankroll figures and the hourly roll-up.

    ``peak_gross_exposure`` is the largest sum of |position value| at a close as a
    fraction of parent equity; ``peak_utilisation`` is the same gross value as a
    fraction of the capital allocated to agents.
    """
    bankroll = result.bankroll_units / UNITS
    pe = result.parent_equity
    gross = result.position_value.sum(axis=0)
    exposure = np.divide(gross, pe, out=np.zeros_like(gross), where=pe > 0)
    allocated = result.allocation_units.sum() / UNITS
    util = gross / allocated if allocated > 0 else np.zeros_like(gross)
    prev = np.concatenate(([bankroll], pe[:-1]))
    hourly = metrics.hourly_rollup(result.timestamps, pe - prev, exposure)
    ppy = metrics.annualisation_periods(market.timeframe_s)
    rets = metrics.bar_returns(pe, bankroll)
    parent = {
        "bankroll": bankroll,
        "final_equity": float(pe[-1]),
        "roi": float(metrics.roi(float(pe[-1]), bankroll)),
        "max_drawdown": float(metrics.max_drawdown(pe, bankroll)),
        "sharpe": float(metrics.sharpe_ratio(rets, ppy)),
        "peak_gross_exposure": float(exposure.max(initial=0.0)),
        "mean_gross_exposure": float(exposure.mean()) if len(exposure) else 0.0,
        "peak_utilisation": float(util.max(initial=0.0)),
        "unallocated_cash": float(result.unallocated_units / UNITS),
        "breaches": int(result.breaches.sum()),
        "liquidations": int(result.liquidated.sum()),
        "fees": float(result.fee_units.sum() / UNITS),
    }
    return parent, hourly


def hard_stop_events(result: EngineResult, market: MarketData, threshold: float) -> list[dict]:
    """The daily hard stops of a run (:attr:`EngineResult.hard_stop_bars`) as report events.

    Each dict: ``kind`` (``"daily_hard_stop"``), ``time`` (ISO UTC open time of the bar
    whose close triggered it), ``parent_equity`` at that close and ``reference_equity``
    (the parent equity at the last close of the previous UTC day in the traded window,
    the bankroll on the first day), both in the quote currency, ``drawdown``
    (1 - parent / reference, a fraction) and ``threshold`` (the configured fraction).
    """
    bars = np.asarray(result.hard_stop_bars, dtype=np.int64)
    if not len(bars):
        return []
    pe = result.parent_equity
    days = np.asarray(result.timestamps).astype("datetime64[D]")
    bankroll = result.bankroll_units / UNITS
    events = []
    for b in bars.tolist():
        tt = b - market.warmup
        j = int(np.searchsorted(days, days[tt], side="left")) - 1
        ref = float(pe[j]) if j >= 0 else float(bankroll)
        eq = float(pe[tt])
        events.append({"kind": "daily_hard_stop", "time": _iso(result.timestamps[tt]), "bar": int(b),
                       "parent_equity": eq, "reference_equity": ref,
                       "drawdown": float(1.0 - eq / ref) if ref > 0 else 0.0, "threshold": float(threshold)})
    return events


def simulate_cohort(
    market: MarketData,
    agents: Sequence[AgentLike],
    *,
    bankroll: float,
    config: EngineConfig = EngineConfig(),
    allocation: str = "equal",
    reserve: float = 0.0,
    agent_ids: Sequence[str] | None = None,
    with_ledger: bool = True,
    leverage_caps: np.ndarray | None = None,
) -> CohortResult:
    """Run a cohort of agents over the traded bars of ``market`` and score it.

    Args:
        market: bars (history before ``market.warmup`` feeds indicators and the
            risk-weighted allocation only).
        agents: N genomes (see :class:`AgentLike`).
        bankroll: parent bankroll in the market's quote currency.
        config: costs and parent limits.
        allocation: ``equal`` or ``risk_weighted``.
        reserve: fraction of the bankroll left unallocated.
        agent_ids: names used in reports and ledger accounts (default ``a00``..).
        with_ledger: build and verify the ledger journal (the benchmark skips it).
        leverage_caps: ``(N,)`` per-agent leverage ceilings from the policy
            (multiples of agent equity; None = each genome's own leverage gene).

    An agent whose strategy raises does not fail the cohort: it is sat out (no
    orders, its allocation stays cash), flagged ``failed`` in its score row and
    listed in ``failed_agents`` with the error.

    Raises:
        StrategyError, AllocationError, EngineError: bad agents or settings.
    """
    ids = list(agent_ids) if agent_ids is not None else [f"a{i:02d}" for i in range(len(agents))]
    failed: dict[int, str] = {}
    sig, weight = build_signals(market, agents, failed=failed)
    vol = None
    if allocation == "risk_weighted":
        vol = agent_volatility(market.close, weight > 0, market.warmup)
    alloc, bank_units = allocate(bankroll, allocation, n_agents=len(agents), reserve=reserve,
                                 volatility=vol)
    if leverage_caps is not None and np.shape(leverage_caps) != (len(agents),):
        raise EngineError(f"leverage_caps has shape {np.shape(leverage_caps)}, expected ({len(agents)},)")
    eng = run_engine(market, sig, agent_arrays(agents, weight, alloc, leverage_caps), bankroll_units=bank_units,
                     config=config)
    trades = round_trips(eng, market, ids)
    scores = score_agents(eng, market, agents, ids, trades)
    for i, row in enumerate(scores):
        row["failed"] = i in failed
    parent, hourly = parent_summary(eng, market)
    parent["failed_agents"] = len(failed)
    parent["hard_stops"] = int(len(eng.hard_stop_bars))
    res = CohortResult(market, list(agents), ids, config, allocation, reserve, eng, scores, parent,
                       hourly, trades,
                       failed_agents=[{"agent_id": ids[i], "family": agents[i].family, "error": err}
                                      for i, err in sorted(failed.items())],
                       events=hard_stop_events(eng, market, config.daily_hard_stop))
    if with_ledger:
        res.journal = build_journal(eng, market.timestamps, market.symbols, ids)
        res.state = final_state(eng, market.symbols, ids, market.close[-1])
        res.ledger_ok = verify_journal(res.journal, res.state).ok
    return res
