"""Fitness of a whole population in one engine run.

Every genome becomes one agent with the same allocation; the parent's gross and
per-symbol ceilings are lifted so agents do not interact, which makes one
lockstep run equivalent to N independent backtests (and N times cheaper in
Python overhead). Costs are the cohort's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from simulator import metrics
from simulator.allocation import allocate
from simulator.cohort import agent_arrays, build_signals
from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from simulator.market import MarketData

#: allocation of each genome during evaluation, quote currency (results are fractions)
EVAL_CAPITAL = 1000.0
#: objectives and their DEAP weights: maximise ROI and Sharpe, minimise max drawdown
OBJECTIVES = ("roi", "sharpe", "max_drawdown")
WEIGHTS = (1.0, 1.0, -1.0)


@dataclass(frozen=True)
class Evaluation:
    """Scores of N genomes on one window (all ``(N,)`` arrays).

    Attributes:
        roi: fraction of the allocation gained.
        sharpe: annualised Sharpe of per-bar returns.
        sharpe_bar: per-bar (non-annualised) Sharpe, the unit of the Deflated
            Sharpe Ratio.
        max_drawdown: positive fraction of peak.
        trades: positions opened.
        returns: ``(N, T)`` per-bar returns (for PSR / DSR).
    """

    roi: np.ndarray
    sharpe: np.ndarray
    sharpe_bar: np.ndarray
    max_drawdown: np.ndarray
    trades: np.ndarray
    returns: np.ndarray

    def objectives(self, i: int, min_trades: int) -> tuple[float, float, float]:
        """Fitness values of genome i in :data:`OBJECTIVES` order; a genome with
        fewer than ``min_trades`` trades gets the worst values (it told us nothing)."""
        if self.trades[i] < min_trades:
            return (-1.0, -100.0, 1.0)
        return (float(self.roi[i]), float(self.sharpe[i]), float(self.max_drawdown[i]))

    def row(self, i: int) -> dict:
        """Plain-float summary of genome i."""
        return {"roi": float(self.roi[i]), "sharpe": float(self.sharpe[i]),
                "max_drawdown": float(self.max_drawdown[i]), "trades": int(self.trades[i])}


def isolated_config(config: EngineConfig) -> EngineConfig:
    """The cohort's costs with the parent's aggregate ceilings lifted (agents independent)."""
    return replace(config, max_gross_leverage=100.0, max_symbol_exposure=100.0, settle=False)


def evaluate(market: MarketData, genomes: Sequence, config: EngineConfig = EngineConfig()) -> Evaluation:
    """Score N genomes on the traded bars of ``market`` in one engine run.

    Args:
        market: bars (warm-up bars feed indicators only).
        genomes: N genomes (see :class:`simulator.cohort.AgentLike`).
        config: costs (fee, slippage, shorts, maintenance margin); the parent's
            aggregate ceilings are ignored, see :func:`isolated_config`.

    Raises:
        StrategyError, AllocationError, EngineError: invalid genomes or settings.
    """
    n = len(genomes)
    sig, weight = build_signals(market, genomes)
    alloc, bank = allocate(EVAL_CAPITAL * n, "equal", n_agents=n)
    res = run_engine(market, sig, agent_arrays(genomes, weight, alloc), bankroll_units=bank,
                     config=isolated_config(config))
    initial = alloc / UNITS
    rets = metrics.bar_returns(res.equity, initial)
    ppy = metrics.annualisation_periods(market.timeframe_s)
    f = res.fills
    opened = (f["symbol"] >= 0) & (f["position"] != 0.0) & (f["position"] == f["qty"])
    trades = np.bincount(f["agent"][opened], minlength=n)
    return Evaluation(
        roi=np.asarray(metrics.roi(res.equity[:, -1], initial), dtype=np.float64),
        sharpe=np.asarray(metrics.sharpe_ratio(rets, ppy), dtype=np.float64),
        sharpe_bar=np.asarray(metrics.sharpe_ratio(rets, 1.0), dtype=np.float64),
        max_drawdown=np.asarray(metrics.max_drawdown(res.equity, initial), dtype=np.float64),
        trades=trades,
        returns=rets,
    )
