"""Fitness of a whole population in one engine run, scored on folds.

Every genome becomes one agent with the same allocation; the parent's gross and
per-symbol ceilings are lifted so agents do not interact, which makes one
lockstep run equivalent to N independent backtests (and N times cheaper in
Python overhead). Costs are the cohort's.

Fold scoring (:func:`score`, issue 10 part 3). The GA does not rank genomes on
one Sharpe over the whole training window, which one lucky stretch can carry.
The traded bars of the training window, ``T`` of them, are split into

* an inner **validation tail**, the last ``validation_bars`` bars (used only
  for early stopping, never for ranking; 0 when early stopping is off), and
* the **fit part**, the first ``T_fit = T - validation_bars`` bars, cut into
  ``K`` contiguous **folds** of (almost) equal length (``numpy.array_split``).

The engine runs once over the whole window; fold and tail figures are slices of
its per-bar returns. **A fold boundary does not reset positions**: a position
opened in fold k is still held (and its return counted) in fold k+1, and the
tail starts with whatever the fit part left open — exactly what a genome that
traded the whole window did, and one engine call instead of K + 1.

For genome i and fold k:

* ``r'_t = r_t - c * notional_t / E_{t-1}``: the engine's per-bar return (net of
  fees and slippage) minus a **turnover cost** ``c = turnover_cost_bps / 1e4``
  on the quote value traded at that bar's open, relative to the equity before
  it (``E_{-1}`` = the allocation). Churning pays it on every fill, so a genome
  whose edge is thinner than the stress cost scores below one that trades less.
* ``SR_k = mean(r'_fold k) / std(r'_fold k, ddof=1) * sqrt(bars per year)``
  (annualised, 0 for a flat fold, :func:`simulator.metrics.sharpe_ratio`).
* the **robust Sharpe** ``aggregate_k SR_k`` with ``aggregate`` = ``median``
  (default) or ``min``.
* **idleness**: a genome that opened fewer than ``min_fold_trades`` positions in
  any fold, or fewer than ``min_trades`` over the fit part, gets the worst
  fitness ``WORST = (-1, -100, 1)`` — doing nothing in a third of the window is
  not evidence, and cannot be rewarded by a Sharpe of 0 beating losers.

Fitness objectives (DEAP weights :data:`WEIGHTS`): ROI of ``r'`` over the fit
part, the robust Sharpe, and the max drawdown of ``r'`` over the fit part.
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
#: fitness of a genome that traded too little (in OBJECTIVES order)
WORST = (-1.0, -100.0, 1.0)
#: robust aggregates of the per-fold Sharpe ratios
AGGREGATES = ("median", "min")


class ScoringError(ValueError):
    """Bad fold-scoring settings; the message names the value and what is allowed."""


@dataclass(frozen=True)
class Evaluation:
    """Scores of N genomes on one window (all ``(N,)`` arrays unless noted).

    Attributes:
        roi: fraction of the allocation gained.
        sharpe: annualised Sharpe of per-bar returns.
        sharpe_bar: per-bar (non-annualised) Sharpe, the unit of the Deflated
            Sharpe Ratio.
        max_drawdown: positive fraction of peak.
        trades: positions opened.
        returns: ``(N, T) float64`` per-bar returns net of the engine's fees and
            slippage, T = traded bars of the window (for PSR / DSR / folds).
        notional: ``(N, T) float64`` quote value traded at each bar's open (sum
            of ``|notional|`` of its fills), quote currency.
        opened: ``(N, T) int64`` positions opened at each bar.
        initial: ``(N,) float64`` allocation of each genome, quote currency.
        periods_per_year: bars per year of the window's timeframe.
    """

    roi: np.ndarray
    sharpe: np.ndarray
    sharpe_bar: np.ndarray
    max_drawdown: np.ndarray
    trades: np.ndarray
    returns: np.ndarray
    notional: np.ndarray | None = None
    opened: np.ndarray | None = None
    initial: np.ndarray | None = None
    periods_per_year: float = 1.0

    def objectives(self, i: int, min_trades: int) -> tuple[float, float, float]:
        """Whole-window fitness values of genome i in :data:`OBJECTIVES` order; a
        genome with fewer than ``min_trades`` trades gets :data:`WORST` (it told
        us nothing). The GA itself uses :func:`score` (folds)."""
        if self.trades[i] < min_trades:
            return WORST
        return (float(self.roi[i]), float(self.sharpe[i]), float(self.max_drawdown[i]))

    def row(self, i: int) -> dict:
        """Plain-float summary of genome i."""
        return {"roi": float(self.roi[i]), "sharpe": float(self.sharpe[i]),
                "max_drawdown": float(self.max_drawdown[i]), "trades": int(self.trades[i])}


@dataclass(frozen=True)
class Scoring:
    """How :func:`score` turns one evaluation into fitness (module docstring).

    Attributes:
        folds: K, contiguous folds of the fit part (>= 1; issue 10 asks >= 3).
        aggregate: ``median`` or ``min`` of the per-fold Sharpe ratios.
        min_fold_trades: positions a genome must open in every fold (>= 0).
        min_trades: positions it must open over the whole fit part (>= 0).
        turnover_cost_bps: stress cost on traded notional, basis points, on top
            of the engine's fees and slippage (>= 0).
        validation_share: fraction of the window's bars held out as the inner
            validation tail, in [0, 0.5]; 0 = none.
    """

    folds: int = 3
    aggregate: str = "median"
    min_fold_trades: int = 1
    min_trades: int = 2
    turnover_cost_bps: float = 5.0
    validation_share: float = 0.2

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ScoringError(f"fold aggregate {self.aggregate!r} unknown; allowed: {', '.join(AGGREGATES)}")
        if int(self.folds) < 1:
            raise ScoringError(f"folds={self.folds} must be >= 1")
        if int(self.min_fold_trades) < 0 or int(self.min_trades) < 0:
            raise ScoringError(f"min_fold_trades={self.min_fold_trades} and min_trades={self.min_trades} "
                               f"must be >= 0")
        if not (0.0 <= float(self.turnover_cost_bps) < 1e4):
            raise ScoringError(f"turnover_cost_bps={self.turnover_cost_bps} must be in [0, 10000)")
        if not (0.0 <= float(self.validation_share) <= 0.5):
            raise ScoringError(f"validation_share={self.validation_share} must be in [0, 0.5]")

    def layout(self, n_bars: int, *, holdout: bool = True) -> tuple[int, list[tuple[int, int]]]:
        """``(validation_bars, folds)`` for a window of ``n_bars`` traded bars.

        The tail is ``floor(validation_share * n_bars)`` bars when ``holdout``
        (else 0), but never leaves the fit part fewer than 2 bars per fold;
        the fit part is cut into ``min(folds, T_fit // 2)`` (>= 1) contiguous
        ``[start, stop)`` bar ranges by :func:`numpy.array_split`.
        """
        k = max(int(self.folds), 1)
        val = int(np.floor(self.validation_share * n_bars)) if holdout else 0
        val = max(0, min(val, n_bars - 2 * k))
        fit = n_bars - val
        k = max(1, min(k, fit // 2))
        edges = np.array_split(np.arange(fit), k)
        return val, [(int(e[0]), int(e[-1]) + 1) for e in edges if len(e)]


@dataclass(frozen=True)
class Scores:
    """Fold scores of N genomes (all ``(N,)`` arrays unless noted).

    Attributes:
        fitness: ``(N, 3)`` objectives in :data:`OBJECTIVES` order
            (:data:`WORST` rows for idle genomes).
        robust_sharpe: aggregate of ``fold_sharpe`` (before the idleness rule).
        fold_sharpe: ``(N, K)`` annualised Sharpe of ``r'`` per fold.
        fold_trades: ``(N, K)`` positions opened per fold.
        idle: ``(N,) bool`` genomes that got :data:`WORST`.
        turnover: quote value traded per day over the whole window, as a
            multiple of the allocation (2.0 = a full position opened and closed
            every day).
        validation_sharpe: annualised Sharpe of the plain returns ``r`` on the
            inner validation tail (0.0 when there is no tail).
        folds: the K ``[start, stop)`` bar ranges; ``validation_bars``: tail length.
    """

    fitness: np.ndarray
    robust_sharpe: np.ndarray
    fold_sharpe: np.ndarray
    fold_trades: np.ndarray
    idle: np.ndarray
    turnover: np.ndarray
    validation_sharpe: np.ndarray
    folds: tuple
    validation_bars: int

    def stats(self, i: int) -> dict:
        """Plain-float fold figures of genome i (stored beside the window stats)."""
        return {"fitness_sharpe": float(self.fitness[i, 1]),
                "fold_sharpe": [float(x) for x in self.fold_sharpe[i]],
                "fold_trades": [int(x) for x in self.fold_trades[i]],
                "turnover": float(self.turnover[i]), "idle": bool(self.idle[i]),
                "validation_sharpe": float(self.validation_sharpe[i])}


def penalised_returns(ev: Evaluation, turnover_cost_bps: float) -> np.ndarray:
    """``(N, T)`` returns net of the turnover stress cost: ``r_t - c * notional_t /
    E_{t-1}`` with ``c = turnover_cost_bps / 1e4`` and ``E_{t-1}`` the equity
    before bar t (the allocation for t = 0; a bar after equity 0 pays nothing)."""
    r = ev.returns
    if turnover_cost_bps <= 0 or ev.notional is None:
        return r
    eq = ev.initial[:, None] * np.cumprod(1.0 + r, axis=1)
    prev = np.concatenate([ev.initial[:, None], eq[:, :-1]], axis=1)
    frac = np.divide(ev.notional, prev, out=np.zeros_like(r), where=prev > 0)
    return r - turnover_cost_bps / 1e4 * frac


def score(ev: Evaluation, scoring: Scoring = Scoring(), *, holdout: bool = True) -> Scores:
    """Fold fitness of the N genomes of one evaluation (module docstring).

    Args:
        ev: :func:`evaluate` of the whole training window.
        scoring: folds, aggregate, idleness and turnover settings.
        holdout: carve the inner validation tail (``False`` when early
            stopping is off: the folds then cover the whole window).

    Returns:
        :class:`Scores`.
    """
    n, t = ev.returns.shape
    val, folds = scoring.layout(t, holdout=holdout)
    fit = t - val
    rp = penalised_returns(ev, scoring.turnover_cost_bps)
    ppy = ev.periods_per_year
    fold_sharpe = np.zeros((n, len(folds)))
    fold_trades = np.zeros((n, len(folds)), dtype=np.int64)
    opened = ev.opened if ev.opened is not None else np.zeros((n, t), dtype=np.int64)
    for k, (a, b) in enumerate(folds):
        fold_sharpe[:, k] = np.atleast_1d(metrics.sharpe_ratio(rp[:, a:b], ppy))
        fold_trades[:, k] = opened[:, a:b].sum(axis=1)
    agg = np.median if scoring.aggregate == "median" else np.min
    robust = agg(fold_sharpe, axis=1)
    growth = np.cumprod(1.0 + rp[:, :fit], axis=1)
    roi = growth[:, -1] - 1.0 if fit else np.zeros(n)
    peak = np.maximum.accumulate(np.maximum(growth, 1.0), axis=1)
    mdd = np.clip((1.0 - growth / peak).max(axis=1), 0.0, 1.0) if fit else np.zeros(n)
    idle = (fold_trades < scoring.min_fold_trades).any(axis=1) | (fold_trades.sum(axis=1) < scoring.min_trades)
    fitness = np.column_stack([roi, robust, mdd])
    fitness[idle] = WORST
    days = max(t / ev.periods_per_year * 365.0, 1e-12)  # window length in days
    traded = ev.notional.sum(axis=1) if ev.notional is not None else np.zeros(n)
    turnover = np.divide(traded, ev.initial * days, out=np.zeros(n), where=ev.initial > 0) \
        if ev.initial is not None else np.zeros(n)
    vsharpe = np.atleast_1d(metrics.sharpe_ratio(ev.returns[:, fit:], ppy)) if val >= 2 else np.zeros(n)
    return Scores(fitness=fitness, robust_sharpe=robust, fold_sharpe=fold_sharpe, fold_trades=fold_trades,
                  idle=idle, turnover=turnover, validation_sharpe=vsharpe, folds=tuple(folds),
                  validation_bars=val)


def isolated_config(config: EngineConfig) -> EngineConfig:
    """The cohort's costs with the parent's aggregate ceilings lifted (agents independent)
    and the daily hard stop off (it acts on a parent's equity; here every genome shares one
    combined parent, whose drawdown is no cohort's)."""
    return replace(config, max_gross_leverage=100.0, max_symbol_exposure=100.0, settle=False,
                   daily_hard_stop=0.0)


def evaluate(market: MarketData, genomes: Sequence, config: EngineConfig = EngineConfig()) -> Evaluation:
    """Score N genomes on the traded bars of ``market`` in one engine run.

    Args:
        market: bars (warm-up bars feed indicators only).
        genomes: N genomes (see :class:`simulator.cohort.AgentLike`).
        config: costs (fee, slippage, shorts, maintenance margin); the parent's
            aggregate ceilings are ignored, see :func:`isolated_config`.

    Returns:
        :class:`Evaluation` over the T traded bars (``market.n_trading_bars``).

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
    t = rets.shape[1]
    traded = f["symbol"] >= 0
    opened = traded & (f["position"] != 0.0) & (f["position"] == f["qty"])
    col = f["bar"] - market.warmup  # a fill at the open of bar b moves the return of bar b
    ok = (col >= 0) & (col < t)
    notional = np.zeros((n, t))
    np.add.at(notional, (f["agent"][traded & ok], col[traded & ok]),
              np.abs(f["notional_units"][traded & ok]) / UNITS)
    opened_bars = np.zeros((n, t), dtype=np.int64)
    np.add.at(opened_bars, (f["agent"][opened & ok], col[opened & ok]), 1)
    trades = np.bincount(f["agent"][opened], minlength=n)
    return Evaluation(
        roi=np.asarray(metrics.roi(res.equity[:, -1], initial), dtype=np.float64),
        sharpe=np.asarray(metrics.sharpe_ratio(rets, ppy), dtype=np.float64),
        sharpe_bar=np.asarray(metrics.sharpe_ratio(rets, 1.0), dtype=np.float64),
        max_drawdown=np.asarray(metrics.max_drawdown(res.equity, initial), dtype=np.float64),
        trades=trades,
        returns=rets,
        notional=notional,
        opened=opened_bars,
        initial=np.asarray(initial, dtype=np.float64),
        periods_per_year=float(ppy),
    )
