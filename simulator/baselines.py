"""Baselines a cohort is reported against: pure computation, no I/O.

What chance and doing nothing would have given on the *same* window, bankroll and
costs (issue 10, "baselines beside every result"):

- **cash**: ROI 0 by definition (the bankroll held, no costs);
- **equal-weight buy-and-hold** (:func:`buy_and_hold`) of the market's symbols;
- **many cohorts in one engine call** (:func:`grouped_cohorts`): C cohorts of n
  agents each (e.g. 20 random cohorts x 30 agents = 600 agents) run as one
  vectorised lockstep run, aggregated per cohort. The random genomes themselves
  are drawn in :mod:`evolution.baselines`;
- **gross of costs** (:func:`gross_config`): the same run with zero fee and
  slippage;
- a **percentile** (:func:`mid_percentile`) of a figure among a sample.

What :func:`grouped_cohorts` leaves out: the engine has one parent, so the C
cohorts run with the parent's *aggregate* ceilings lifted (:func:`lifted_config`:
gross-exposure and per-symbol caps at 100x; costs, each agent's own leverage
ceiling, maintenance margin, shorting and settlement unchanged). Each baseline
cohort is therefore the sum of its agents traded independently; the real
cohort's parent gate may clip its agents' entries (``breaches``), a random
cohort's never. A cohort that the gate clipped hard is compared with baselines
that were not clipped at all.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from simulator.allocation import agent_volatility, allocate
from simulator.cohort import AgentLike, agent_arrays, build_signals
from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from simulator.market import MarketData

__all__ = ["GroupedCohorts", "buy_and_hold", "grouped_cohorts", "gross_config", "lifted_config",
           "mid_percentile", "LIFTED_CEILING"]

#: parent gross and per-symbol ceilings of a baseline run (multiples of parent equity;
#: the engine's maximum), so that no agent's order is clipped by another's exposure
LIFTED_CEILING = 100.0


def lifted_config(config: EngineConfig) -> EngineConfig:
    """``config`` with the parent's aggregate ceilings lifted to :data:`LIFTED_CEILING`
    (agents independent); fee, slippage, agent leverage, margin, shorts and settle kept.
    The daily hard stop is off: one engine call holds many cohorts on one combined
    parent, whose drawdown is no cohort's."""
    return replace(config, max_gross_leverage=LIFTED_CEILING, max_symbol_exposure=LIFTED_CEILING,
                   daily_hard_stop=0.0)


def gross_config(config: EngineConfig) -> EngineConfig:
    """``config`` with ``fee_bps = slippage_bps = 0``: the gross-of-costs run."""
    return replace(config, fee_bps=0.0, slippage_bps=0.0)


#: two ROIs (fractions) closer than this are a tie in :func:`mid_percentile`: the same
#: cohort summed in another order differs in the last bits (~1e-16), far below this
TIE_ATOL = 1e-12


def mid_percentile(value: float, sample: Sequence[float] | np.ndarray, *, atol: float = TIE_ATOL) -> float:
    """Percentile (0..100) of ``value`` among ``sample``, ties counted half.

    ``100 x (#{x < value} + 0.5 x #{x == value}) / len(sample)`` -- the "mean"
    kind of ``scipy.stats.percentileofscore`` -- where ``x == value`` means
    ``|x - value| <= atol`` (:data:`TIE_ATOL`: a cohort identical to one of the
    sample, computed in another summation order, is a tie). A value equal to the
    only element of a sample of 1 is at 50, a value above all 20 elements at 100.

    Raises:
        ValueError: empty sample.
    """
    s = np.asarray(sample, dtype=np.float64)
    if s.size == 0:
        raise ValueError("percentile of an empty sample")
    equal = np.count_nonzero(np.abs(s - value) <= atol)
    below = np.count_nonzero(s < value - atol)
    return float(100.0 * (below + 0.5 * equal) / s.size)


def buy_and_hold(market: MarketData, config: EngineConfig, *, reserve: float = 0.0) -> dict:
    """Equal-weight buy-and-hold of the market's symbols over the traded bars.

    The allocatable capital (bankroll x (1 - reserve); the reserve stays cash as
    in the cohort) is split equally across the S symbols. Each slice buys at the
    open of the first *tradable* traded bar of its symbol, paying adverse
    slippage and the fee on the notional (sized so the slice, fee included, is
    spent: qty = slice / (open x (1 + slip) x (1 + fee))), and is sold at the last
    close with slippage and fee again. Per symbol::

        roi_s = close_last x (1 - slip) x (1 - fee) / (open_first x (1 + slip) x (1 + fee)) - 1

    with ``slip = slippage_bps / 1e4`` and ``fee = fee_bps / 1e4``. A symbol
    never tradable in the window stays cash (roi_s = 0). No rebalancing.

    Args:
        market: bars (trading from ``market.warmup``).
        config: costs (only ``fee_bps`` and ``slippage_bps`` are read).
        reserve: fraction of the bankroll kept as cash, in [0, 1).

    Returns:
        ``{"roi": net ROI of the bankroll (fraction), "gross_roi": the same with
        zero costs, "per_symbol": {symbol: net roi_s}}``.
    """
    slip, fee = config.slippage_bps / 1e4, config.fee_bps / 1e4
    w = market.warmup
    trad = market.tradable[w:]
    last = market.close[-1]
    net, gross, per = [], [], {}
    for s, sym in enumerate(market.symbols):
        rows = np.flatnonzero(trad[:, s])
        if rows.size == 0:
            n_s = g_s = 0.0
        else:
            first = float(market.open[w + rows[0], s])
            g_s = float(last[s]) / first - 1.0
            n_s = float(last[s]) * (1.0 - slip) * (1.0 - fee) / (first * (1.0 + slip) * (1.0 + fee)) - 1.0
        net.append(n_s)
        gross.append(g_s)
        per[sym] = n_s
    k = 1.0 - reserve
    return {"roi": float(k * np.mean(net)), "gross_roi": float(k * np.mean(gross)), "per_symbol": per}


@dataclass(frozen=True)
class GroupedCohorts:
    """C cohorts of n agents run side by side (see :func:`grouped_cohorts`).

    Attributes:
        roi: ``(C,)`` each cohort's parent ROI (fraction of its bankroll).
        agent_roi: ``(C, n)`` each agent's ROI (fraction of its allocation).
        fees: ``(C,)`` fees paid per cohort (quote currency).
    """

    roi: np.ndarray
    agent_roi: np.ndarray
    fees: np.ndarray


def grouped_cohorts(market: MarketData, agents: Sequence[AgentLike], *, cohort_size: int,
                    bankroll: float, config: EngineConfig, allocation: str = "equal",
                    reserve: float = 0.0) -> GroupedCohorts:
    """Run ``len(agents) // cohort_size`` cohorts in **one** engine call.

    Agents ``[c x n, (c + 1) x n)`` form cohort c. Each cohort gets its own
    bankroll, split by ``allocation`` (``equal`` or ``risk_weighted``, weights
    normalised within the cohort) after ``reserve``, exactly as
    :func:`simulator.cohort.simulate_cohort` would split it; the engine runs
    with the aggregate ceilings lifted (:func:`lifted_config`), so a cohort's
    result equals ``simulate_cohort(market, its agents, config=lifted_config(config))``
    up to float summation order (a test checks it). An agent whose strategy
    raises sits out (its allocation stays cash), as in ``simulate_cohort``.

    Args:
        market: bars.
        agents: ``C x n`` genomes.
        cohort_size: n (>= 1); ``len(agents)`` must be a multiple of it.
        bankroll: each cohort's parent bankroll (quote currency).
        config: costs and agent limits (aggregate ceilings are lifted).
        allocation, reserve: as for ``simulate_cohort``.

    Returns:
        :class:`GroupedCohorts`.

    Raises:
        ValueError: no agents or ``len(agents)`` not a multiple of ``cohort_size``.
        AllocationError, EngineError: as ``simulate_cohort``.
    """
    n = int(cohort_size)
    if n < 1 or not agents or len(agents) % n:
        raise ValueError(f"{len(agents)} agents are not whole cohorts of {cohort_size}")
    C = len(agents) // n
    failed: dict[int, str] = {}
    sig, weight = build_signals(market, agents, failed=failed)
    vol = agent_volatility(market.close, weight > 0, market.warmup) if allocation == "risk_weighted" else None
    allocs, bank_total = [], 0
    for c in range(C):
        a, bank = allocate(bankroll, allocation, n_agents=n, reserve=reserve,
                           volatility=None if vol is None else vol[c * n:(c + 1) * n])
        allocs.append(a)
        bank_total += bank
    alloc = np.concatenate(allocs)
    res = run_engine(market, sig, agent_arrays(agents, weight, alloc), bankroll_units=bank_total,
                     config=lifted_config(config))
    final = res.equity[:, -1].reshape(C, n)
    a_units = alloc.reshape(C, n)
    bank = bank_total // C
    reserve_units = bank - a_units.sum(axis=1)  # the cohort's unallocated cash (never traded)
    roi = (final.sum(axis=1) + reserve_units / UNITS) / (bank / UNITS) - 1.0
    initial = a_units / UNITS
    agent_roi = np.divide(final - initial, initial, out=np.zeros_like(final), where=initial > 0)
    fees = res.fee_units.reshape(C, n).sum(axis=1) / UNITS
    return GroupedCohorts(roi=roi, agent_roi=agent_roi, fees=fees)
