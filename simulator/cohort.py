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

from simulator import metrics
from simulator.allocation import agent_volatility, allocate, symbol_mask
from simulator.engine import AgentArrays, EngineConfig, EngineResult, run_engine
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


def agent_arrays(agents: Sequence[AgentLike], weight: np.ndarray, allocation: np.ndarray) -> AgentArrays:
    """The engine's per-agent arrays from genomes, their ``(N, S)`` weights (see
    :func:`build_signals`) and ``(N,)`` allocations in 1e-8 units."""
    return AgentArrays(
        weight=weight,
        leverage=np.array([a.leverage for a in agents], dtype=np.float64),
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

    def leaderboard(self) -> list[dict]:
        """Agent scores ranked by ROI, then Sharpe (best first), with ``rank``."""
        ranked = sorted(self.scores, key=lambda r: (-r["roi"], -r["sharpe"], r["agent_id"]))
        return [{"rank": i + 1, **r} for i, r in enumerate(ranked)]


def _iso(ts) -> str:
    return str(np.datetime64(ts, "s")) + "Z"


def round_trips(result: EngineResult, market: MarketData, agent_ids: Sequence[str]) -> list[dict]:
    """Round-trip trades from the fills: a trade opens when a position leaves 0
    and closes when it returns to 0 (a flip closes one trade and opens another).

    Each dict: ``agent_id, symbol, side, entry_time, entry_price`` (average, after
    slippage), ``exit_time, exit_price`` (average; for a trade still open at the
    end: ``None`` and the last close), ``qty`` (largest absolute quantity held),
    ``fees`` and ``pnl`` (realised minus all fees; marked at the last close when
    open), ``exit_reason``, ``open`` (bool).
    """
    f = result.fills
    open_trades: dict[tuple[int, int], dict] = {}
    trades: list[dict] = []
    last_close = market.close[-1]
    for j in np.flatnonzero(f["symbol"] >= 0):
        a, s = int(f["agent"][j]), int(f["symbol"][j])
        q, px = float(f["qty"][j]), float(f["price"][j])
        fee = f["fee_units"][j] / UNITS
        key = (a, s)
        tr = open_trades.get(key)
        if tr is None:
            tr = {"agent_id": agent_ids[a], "symbol": market.symbols[s],
                  "side": "long" if q > 0 else "short",
                  "entry_time": _iso(market.timestamps[f["bar"][j]]),
                  "_in_qty": 0.0, "_in_val": 0.0, "_out_qty": 0.0, "_out_val": 0.0,
                  "qty": 0.0, "fees": 0.0, "_realized": 0.0}
            open_trades[key] = tr
        opening = (q > 0) == (tr["side"] == "long")
        if opening:
            tr["_in_qty"] += abs(q)
            tr["_in_val"] += abs(q) * px
        else:
            tr["_out_qty"] += abs(q)
            tr["_out_val"] += abs(q) * px
        tr["qty"] = max(tr["qty"], abs(float(f["position"][j])))
        tr["fees"] += fee
        tr["_realized"] += f["realized_units"][j] / UNITS
        if f["position"][j] == 0.0:
            tr.update(exit_time=_iso(market.timestamps[f["bar"][j]]),
                      exit_price=tr["_out_val"] / tr["_out_qty"],
                      exit_reason=KIND_NAMES[int(f["kind"][j])], open=False,
                      pnl=tr["_realized"] - tr["fees"])
            trades.append(tr)
            del open_trades[key]
    for (a, s), tr in open_trades.items():
        pos = float(result.qty[a, s])
        basis = result.basis_units[a, s] / UNITS
        unreal = pos * last_close[s] - basis
        tr.update(exit_time=None, exit_price=float(last_close[s]), exit_reason=None, open=True,
                  pnl=tr["_realized"] + unreal - tr["fees"])
        trades.append(tr)
    out = []
    for tr in trades:
        out.append({
            "agent_id": tr["agent_id"], "symbol": tr["symbol"], "side": tr["side"],
            "entry_time": tr["entry_time"], "entry_price": tr["_in_val"] / tr["_in_qty"],
            "exit_time": tr["exit_time"], "exit_price": tr["exit_price"], "qty": tr["qty"],
            "fees": tr["fees"], "pnl": tr["pnl"], "exit_reason": tr["exit_reason"],
            "open": tr["open"],
        })
    out.sort(key=lambda t: (t["entry_time"], t["agent_id"], t["symbol"]))
    return out


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
    eng = run_engine(market, sig, agent_arrays(agents, weight, alloc), bankroll_units=bank_units,
                     config=config)
    trades = round_trips(eng, market, ids)
    scores = score_agents(eng, market, agents, ids, trades)
    for i, row in enumerate(scores):
        row["failed"] = i in failed
    parent, hourly = parent_summary(eng, market)
    parent["failed_agents"] = len(failed)
    res = CohortResult(market, list(agents), ids, config, allocation, reserve, eng, scores, parent,
                       hourly, trades,
                       failed_agents=[{"agent_id": ids[i], "family": agents[i].family, "error": err}
                                      for i, err in sorted(failed.items())])
    if with_ledger:
        res.journal = build_journal(eng, market.timestamps, market.symbols, ids)
        res.state = final_state(eng, market.symbols, ids, market.close[-1])
        res.ledger_ok = verify_journal(res.journal, res.state).ok
    return res
