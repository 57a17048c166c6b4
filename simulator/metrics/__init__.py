"""Performance metrics of equity curves, vectorised over agents.

Pure numpy (plus :mod:`math` / :mod:`statistics` for the normal CDF and
quantile); no pandas, no I/O.

Layout
    Every 2-D array is ``(N, T)``: one row per agent, one column per bar, in bar
    order. Every function that reduces over bars also accepts a 1-D ``(T,)``
    series for a single agent and then returns a plain Python ``float`` (or a
    tuple of floats) instead of an ``(N,)`` array.

Units
    Returns, ROI, drawdown, utilisation and gross exposure are **fractions**
    (0.12 = 12 %). Money (equity, PnL, position value) is in the quote currency.
    Sharpe and Sortino are **annualised** with ``periods_per_year`` (see
    :func:`annualisation_periods`); the Probabilistic and Deflated Sharpe Ratios
    work on the **per-bar** (non-annualised) Sharpe.

Finite by construction
    Results go into JSON reports, so no function returns NaN or inf (the one
    undefined figure, :func:`win_rate` with no closed trade, is ``None``: JSON
    ``null``, shown as "—"). Degenerate
    but legal inputs (too few bars, zero variance, a liquidated agent whose
    equity stays at 0, no trades) map to documented finite values. Inputs that
    break the engine's invariants (NaN/inf, negative equity, money on a zero
    allocation) raise :class:`MetricsError` instead of being papered over.
    One rule is a convention rather than a limit: a return from a zero base
    counts as 0 (see :func:`bar_returns`).

Rules for degenerate cases (also in each docstring)
    * ``bar_returns``: 0.0 for a bar whose previous equity is 0.
    * ``sharpe_ratio``: 0.0 with fewer than 2 returns or zero standard deviation.
    * ``sortino_ratio``: 0.0 with fewer than 2 returns; with no downside at all
      (downside deviation 0) 0.0 if the mean is <= 0, else ``cap``; every value
      is capped above at ``cap`` (default :data:`SORTINO_CAP`).
    * ``probabilistic_sharpe_ratio``: 0.0 ("no evidence of skill") with fewer
      than 3 returns or zero variance; a non-positive radicand takes the limit
      (1.0 / 0.5 / 0.0 for SR above / equal to / below the benchmark).
    * ``expected_max_sharpe``: 0.0 for one trial or ``var_sr <= 0`` (so the
      deflated Sharpe ratio equals the PSR against 0); floored at 0.0.
      ``n_trials < 1`` is an error.
    * ``deflated_sharpe_ratio`` / ``dsr_from_moments``: the PSR rules above,
      against the benchmark ``expected_max_sharpe(n_trials, var_sr)``.
    * ``max_drawdown``: 0.0 for no bars, a never-falling curve, or a curve that
      is 0 from the start; 1.0 for an agent whose equity reaches 0.
    * ``roi`` / ``hourly_roi``: 0.0 when ``initial`` is 0 (and ``final`` is 0);
      ``hourly_roi`` is 0.0 when ``hours`` is 0.
    * ``win_rate``: ``None`` with no (closed) trade: a rate of nothing is not 0 %.
    * ``utilisation``: 0.0 with no bars or a zero allocation with no positions.

Modules
    The package is a facade: import the functions from ``simulator.metrics``.
    They live in

    * :mod:`simulator.metrics.performance`: bar returns, Sharpe, Sortino,
      drawdown, ROI, hourly ROI, win rate, utilisation;
    * :mod:`simulator.metrics.overfitting`: the Probabilistic and Deflated
      Sharpe Ratios and the expected maximum Sharpe of N trials, the
      Probability of Backtest Overfitting (CSCV), the effective number of
      trials and the rank correlation (its docstring documents the choices of
      N, effective N and V[SR] with their sources);
    * :mod:`simulator.metrics.rollups`: the per-clock-hour roll-up;
    * :mod:`simulator.metrics.common`: :class:`MetricsError` and the shared
      input checks.
"""
from __future__ import annotations

from simulator.metrics.common import MetricsError
from simulator.metrics.overfitting import (
    EULER_MASCHERONI,
    deflated_sharpe_ratio,
    dsr_from_moments,
    EFFECTIVE_N_DISTANCE,
    PBO_BLOCKS,
    cscv_sharpes,
    effective_trials,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    psr_from_moments,
    rank_correlation,
)
from simulator.metrics.performance import (
    SECONDS_PER_YEAR,
    SORTINO_CAP,
    annualisation_periods,
    bar_returns,
    downside_deviation,
    drawdown_curve,
    hourly_roi,
    max_drawdown,
    roi,
    sharpe_ratio,
    sortino_ratio,
    utilisation,
    win_rate,
)
from simulator.metrics.rollups import hourly_rollup

__all__ = [
    "MetricsError",
    "SORTINO_CAP",
    "SECONDS_PER_YEAR",
    "annualisation_periods",
    "bar_returns",
    "sharpe_ratio",
    "downside_deviation",
    "sortino_ratio",
    "max_drawdown",
    "drawdown_curve",
    "psr_from_moments",
    "probabilistic_sharpe_ratio",
    "EULER_MASCHERONI",
    "expected_max_sharpe",
    "dsr_from_moments",
    "deflated_sharpe_ratio",
    "PBO_BLOCKS",
    "EFFECTIVE_N_DISTANCE",
    "cscv_sharpes",
    "probability_of_backtest_overfitting",
    "effective_trials",
    "rank_correlation",
    "roi",
    "hourly_roi",
    "win_rate",
    "utilisation",
    "hourly_rollup",
]
