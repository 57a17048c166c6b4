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
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

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
    "roi",
    "hourly_roi",
    "win_rate",
    "utilisation",
    "hourly_rollup",
]

#: Upper cap of the annualised Sortino ratio, and its value for a series with
#: a positive mean and no losing bar at all (where the ratio is +inf). With
#: 5-minute bars (105,120 a year) it corresponds to a per-bar Sortino of ~3.1,
#: i.e. "practically no downside"; it keeps reports finite and ranks such a
#: series above every series that has a real downside below the cap.
SORTINO_CAP = 1000.0

#: Seconds in the 365-day year used for annualisation (crypto trades 24/7).
SECONDS_PER_YEAR = 365 * 24 * 3600


class MetricsError(ValueError):
    """Input that no metric can be computed from (shape, NaN/inf, negative money)."""


# --------------------------------------------------------------------------- helpers


def _rows(x, name: str) -> tuple[np.ndarray, bool]:
    """``x`` as a finite ``(N, T) float64`` array and whether it was 1-D."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr, one = arr[None, :], True
    elif arr.ndim == 2:
        one = False
    else:
        raise MetricsError(f"{name}: expected a (T,) or (N, T) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name}: contains NaN or inf")
    return arr, one


def _per_row(x, name: str, n: int, one: bool) -> np.ndarray:
    """``x`` (scalar, or ``(N,)``) as a finite ``(n,) float64`` array."""
    arr = np.asarray(x, dtype=np.float64)
    if one and arr.ndim != 0:
        raise MetricsError(f"{name}: must be a scalar for a 1-D series, got shape {arr.shape}")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise MetricsError(f"{name}: expected shape ({n},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise MetricsError(f"{name}: contains NaN or inf")
    return arr


def _out(values: np.ndarray, one: bool):
    """``(N,)`` result, or a Python float for a 1-D input."""
    return float(values[0]) if one else values


def _check_ppy(periods_per_year) -> float:
    ppy = float(periods_per_year)
    if not math.isfinite(ppy) or ppy <= 0:
        raise MetricsError(f"periods_per_year must be a positive finite number, got {periods_per_year!r}")
    return ppy


def _non_constant(r: np.ndarray) -> np.ndarray:
    """``(N,) bool``: rows that are not all equal.

    Needed because the floating-point standard deviation of identical values can
    be a residue of ~1e-18 instead of 0, which would turn "undefined" into an
    arbitrary huge ratio.
    """
    return r.max(axis=1) != r.min(axis=1)


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise: Φ(z) = erfc(−z/√2) / 2 (exact identity)."""
    flat = [0.5 * math.erfc(-v / math.sqrt(2.0)) for v in np.ravel(z).tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(np.shape(z))


# --------------------------------------------------------------------------- returns


def annualisation_periods(timeframe_s: float) -> float:
    """Bars per year for a bar length, for annualising Sharpe and Sortino.

    Args:
        timeframe_s: bar length in seconds (300 for 5-minute bars).

    Returns:
        ``SECONDS_PER_YEAR / timeframe_s`` (365 days of 24 h, since crypto markets
        never close): 105,120 for 5-minute bars, 8,760 for hourly bars.

    Raises:
        MetricsError: ``timeframe_s`` is not a positive finite number.
    """
    tf = float(timeframe_s)
    if not math.isfinite(tf) or tf <= 0:
        raise MetricsError(f"timeframe_s must be a positive finite number, got {timeframe_s!r}")
    return SECONDS_PER_YEAR / tf


def bar_returns(equity, initial) -> np.ndarray:
    """Simple return of every bar of equity curves.

    ``r[:, t] = equity[:, t] / equity[:, t-1] - 1`` with ``equity[:, -1]`` taken
    to be ``initial`` (the standard simple-return definition).

    Args:
        equity: ``(N, T) float64`` equity (account value) at each bar close, in
            the quote currency, ``>= 0``; or ``(T,)`` for one agent.
        initial: ``(N,)`` equity before the first bar (the allocation), ``>= 0``;
            a scalar for 1-D ``equity``.

    Returns:
        ``(N, T) float64`` per-bar returns as fractions (``(T,)`` for 1-D input).
        A bar whose previous equity is 0 has return **0.0**, never NaN/inf:
        for 0 followed by 0 (an agent that was liquidated, or never funded) that
        is the true return; 0 followed by a positive value (the engine clamps a
        liquidating agent's mark-to-market value at 0 on a gap, and the
        liquidation fill at the next open can recover a little) has no defined
        simple return and is counted as 0.0. ROI (:func:`roi`) still sees the
        recovered value.

    Raises:
        MetricsError: bad shapes, NaN/inf, or negative equity or initial.
    """
    eq, one = _rows(equity, "equity")
    init = _per_row(initial, "initial", eq.shape[0], one)
    if (eq < 0).any() or (init < 0).any():
        raise MetricsError("equity and initial must be >= 0")
    prev = np.concatenate([init[:, None], eq[:, :-1]], axis=1)
    dead = prev == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(dead, 0.0, eq / np.where(dead, 1.0, prev) - 1.0)
    return r[0] if one else r


# --------------------------------------------------------------------------- ratios


def sharpe_ratio(returns, periods_per_year: float):
    """Annualised Sharpe ratio with a risk-free rate of 0.

    ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``: Sharpe (1994), "The
    Sharpe Ratio", in the convention of empyrical's ``sharpe_ratio`` with
    ``risk_free=0``.

    Args:
        returns: ``(N, T) float64`` per-bar simple returns (fractions), or ``(T,)``.
        periods_per_year: bars per year (see :func:`annualisation_periods`).

    Returns:
        ``(N,) float64`` annualised Sharpe ratios (a float for 1-D input).
        **0.0** where there are fewer than 2 returns or every return of the row
        is equal (std 0), where empyrical gives NaN/inf: reports must be finite,
        and a series without variation carries no risk-adjusted evidence.

    Raises:
        MetricsError: bad shape, NaN/inf, or a non-positive ``periods_per_year``.
    """
    r, one = _rows(returns, "returns")
    ppy = _check_ppy(periods_per_year)
    out = np.zeros(r.shape[0])
    if r.shape[1] >= 2:
        std = r.std(axis=1, ddof=1)
        ok = _non_constant(r) & (std > 0)
        out[ok] = r[ok].mean(axis=1) / std[ok] * math.sqrt(ppy)
    return _out(out, one)


def downside_deviation(returns):
    """Per-bar downside deviation below a target of 0.

    ``sqrt(mean(min(r, 0)^2))`` over all bars (not only the losing ones):
    Sortino & Price (1994), "Performance Measurement in a Downside Risk
    Framework"; the convention of empyrical's ``downside_risk`` before
    annualisation (multiply by ``sqrt(periods_per_year)`` to annualise).

    Args:
        returns: ``(N, T) float64`` per-bar returns (fractions), or ``(T,)``.

    Returns:
        ``(N,) float64`` per-bar downside deviation, ``>= 0`` (a float for 1-D
        input); 0.0 with no bars.

    Raises:
        MetricsError: bad shape or NaN/inf.
    """
    r, one = _rows(returns, "returns")
    out = np.zeros(r.shape[0])
    if r.shape[1] >= 1:
        out = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=1))
    return _out(out, one)


def sortino_ratio(returns, periods_per_year: float, cap: float = SORTINO_CAP):
    """Annualised Sortino ratio with a target return of 0.

    ``mean(r) * P / (downside_deviation(r) * sqrt(P))`` with
    ``P = periods_per_year``: Sortino & Price (1994), in the convention of
    empyrical's ``sortino_ratio`` (annualised mean over annualised downside
    deviation, ``required_return=0``).

    Args:
        returns: ``(N, T) float64`` per-bar returns (fractions), or ``(T,)``.
        periods_per_year: bars per year (see :func:`annualisation_periods`).
        cap: upper cap of the result, ``> 0`` (default :data:`SORTINO_CAP`).

    Returns:
        ``(N,) float64`` annualised Sortino ratios (a float for 1-D input),
        always finite. Rules where empyrical gives NaN/inf:

        * fewer than 2 returns: **0.0** (as :func:`sharpe_ratio`);
        * no downside at all (downside deviation 0) and mean <= 0 (all returns
          0): **0.0**;
        * no downside at all and mean > 0 (the ratio is +inf): **cap**;
        * otherwise ``min(ratio, cap)``. No lower cap is needed: since
          ``mean(r) >= -downside_deviation(r)``, the ratio is always
          ``>= -sqrt(periods_per_year)``.

    Raises:
        MetricsError: bad shape, NaN/inf, non-positive ``periods_per_year`` or
            ``cap``.
    """
    r, one = _rows(returns, "returns")
    ppy = _check_ppy(periods_per_year)
    cap = float(cap)
    if not math.isfinite(cap) or cap <= 0:
        raise MetricsError(f"cap must be a positive finite number, got {cap!r}")
    out = np.zeros(r.shape[0])
    if r.shape[1] >= 2:
        mean = r.mean(axis=1)
        dd = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=1))
        has_dd = dd > 0
        out[has_dd] = mean[has_dd] / dd[has_dd] * math.sqrt(ppy)
        out[~has_dd & (mean > 0)] = cap
        out = np.minimum(out, cap)
    return _out(out, one)


# --------------------------------------------------------------------------- drawdown


def drawdown_curve(equity, initial) -> np.ndarray:
    """Drawdown at every bar: fall from the running peak as a positive fraction.

    ``dd[:, t] = 1 - equity[:, t] / max(initial, equity[:, :t+1])``, the standard
    definition (Magdon-Ismail & Atiya 2004, "Maximum drawdown"), 0.0 while the
    peak is 0 (an agent that was never funded).

    Args:
        equity: ``(N, T) float64`` equity at each bar close (quote currency,
            ``>= 0``), or ``(T,)``.
        initial: ``(N,)`` equity before the first bar, ``>= 0`` (scalar for 1-D).

    Returns:
        ``(N, T) float64`` drawdowns in ``[0, 1]`` (``(T,)`` for 1-D input).

    Raises:
        MetricsError: bad shapes, NaN/inf, or negative equity or initial.
    """
    eq, one = _rows(equity, "equity")
    init = _per_row(initial, "initial", eq.shape[0], one)
    if (eq < 0).any() or (init < 0).any():
        raise MetricsError("equity and initial must be >= 0")
    peak = np.maximum(np.maximum.accumulate(eq, axis=1), init[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - eq / np.where(peak > 0, peak, 1.0), 0.0)
    dd = np.clip(dd, 0.0, 1.0)
    return dd[0] if one else dd


def max_drawdown(equity, initial):
    """Maximum drawdown: largest peak-to-trough fall as a positive fraction of the peak.

    ``max_t (1 - equity_t / max(initial, equity_0..t))``: Magdon-Ismail & Atiya
    (2004); equals ``-empyrical.max_drawdown(bar_returns(equity, initial))``
    (empyrical reports it as a negative number and anchors the peak at the
    starting value, as here).

    Args:
        equity: ``(N, T) float64`` equity at each bar close (quote currency,
            ``>= 0``), or ``(T,)``.
        initial: ``(N,)`` equity before the first bar, ``>= 0``; the peak
            includes it (scalar for 1-D).

    Returns:
        ``(N,) float64`` in ``[0, 1]`` (0.12 = 12 %; a float for 1-D input).
        0.0 for a never-falling curve, for no bars, or for a curve that is 0
        from the start; 1.0 for an agent whose equity reaches 0.

    Raises:
        MetricsError: bad shapes, NaN/inf, or negative equity or initial.
    """
    dd = drawdown_curve(equity, initial)
    one = dd.ndim == 1
    dd2 = dd[None, :] if one else dd
    out = dd2.max(axis=1) if dd2.shape[1] else np.zeros(dd2.shape[0])
    return _out(out, one)


# --------------------------------------------------------------------------- PSR


def psr_from_moments(sr, n, skewness, kurtosis, sr_benchmark=0.0):
    """Probabilistic Sharpe Ratio from the sample moments of a return series.

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
    Journal of Risk 15(2), eq. for PSR::

        PSR = Φ( (SR̂ − SR*) · sqrt(n − 1) / sqrt(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

    the probability that the true Sharpe ratio exceeds ``SR*``.

    Args:
        sr: SR̂, the **per-bar** (non-annualised) Sharpe ratio; scalar or ``(N,)``.
        n: number of returns SR̂ was estimated from; scalar or ``(N,)``.
        skewness: γ3, sample skewness; scalar or ``(N,)``.
        kurtosis: γ4, sample **non-excess** kurtosis (3 for a normal
            distribution; ``scipy.stats.kurtosis(fisher=False)``), ``>= 1``;
            scalar or ``(N,)``.
        sr_benchmark: SR*, per-bar benchmark Sharpe; scalar or ``(N,)``.

    Returns:
        PSR in ``[0, 1]``: a float if every argument is a scalar, else an array
        of the broadcast shape. Degenerate cases:

        * ``n < 3``: **0.0** (no evidence of skill; see
          :func:`probabilistic_sharpe_ratio`);
        * radicand ``1 − γ3·SR̂ + (γ4 − 1)/4·SR̂² <= 0``: the standard error of
          SR̂ is taken as 0 and the limit is returned: **1.0** if SR̂ > SR*,
          **0.5** if equal, **0.0** if below. (For moments of one real sample
          the radicand is ``>= (1 − γ3·SR̂/2)² >= 0`` by Pearson's inequality
          γ4 >= 1 + γ3², so it is only reached at that boundary, through
          rounding, or with inconsistent moments.)

    Raises:
        MetricsError: NaN/inf arguments, or ``kurtosis < 1`` (impossible for
            non-excess kurtosis; usually excess kurtosis passed by mistake).
    """
    scalar = all(np.ndim(a) == 0 for a in (sr, n, skewness, kurtosis, sr_benchmark))
    try:
        sr_, n_, g3, g4, bench = np.broadcast_arrays(
            *(np.asarray(a, dtype=np.float64) for a in (sr, n, skewness, kurtosis, sr_benchmark))
        )
    except ValueError as exc:
        raise MetricsError(f"psr_from_moments: arguments do not broadcast: {exc}") from None
    for name, a in (("sr", sr_), ("n", n_), ("skewness", g3), ("kurtosis", g4), ("sr_benchmark", bench)):
        if not np.isfinite(a).all():
            raise MetricsError(f"{name}: contains NaN or inf")
    if (g4 < 1).any():
        raise MetricsError("kurtosis must be the non-excess kurtosis (>= 1); got a value below 1")
    out = _psr_core(sr_, n_, g3, g4, bench)
    return float(out) if scalar else out


def _psr_core(sr, n, g3, g4, bench) -> np.ndarray:
    sr, n, g3, g4, bench = np.broadcast_arrays(sr, n, g3, g4, bench)
    out = np.zeros(sr.shape)
    ok = n >= 3
    if not ok.any():
        return out
    rad = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    diff = sr - bench
    pos = ok & (rad > 0)
    z = np.zeros(sr.shape)
    z[pos] = diff[pos] * np.sqrt(n[pos] - 1.0) / np.sqrt(rad[pos])
    lim = ok & ~pos
    z[lim] = np.where(diff[lim] > 0, np.inf, np.where(diff[lim] < 0, -np.inf, 0.0))
    out[ok] = _norm_cdf(z[ok])
    return out


def probabilistic_sharpe_ratio(returns, sr_benchmark=0.0):
    """Probabilistic Sharpe Ratio (the cohort's "confidence" score).

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier"::

        PSR = Φ( (SR̂ − SR*) · sqrt(n − 1) / sqrt(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

    computed per row from the sample itself: ``n`` = number of returns,
    SR̂ = ``mean / std(ddof=1)`` per bar (not annualised, risk-free 0, the same
    Sharpe as :func:`sharpe_ratio` before annualisation), γ3 = ``m3 / m2^1.5``
    and γ4 = ``m4 / m2^2`` with central moments ``m_k = mean((r − mean)^k)``
    (``scipy.stats.skew`` and ``scipy.stats.kurtosis(fisher=False)`` with their
    default ``bias=True``).

    Args:
        returns: ``(N, T) float64`` per-bar returns (fractions), or ``(T,)``.
        sr_benchmark: SR*, the **per-bar** benchmark Sharpe; scalar, or ``(N,)``
            for 2-D input. Divide an annualised benchmark by
            ``sqrt(periods_per_year)``.

    Returns:
        ``(N,) float64`` probabilities in ``[0, 1]`` (a float for 1-D input).
        **0.0** with fewer than 3 returns or zero variance (all returns equal,
        e.g. an agent that never traded): the score gates promotion, and such a
        series gives no evidence that the true Sharpe beats the benchmark. A
        non-positive radicand follows :func:`psr_from_moments` (limit 1.0 / 0.5
        / 0.0).

    Raises:
        MetricsError: bad shapes or NaN/inf in ``returns`` or ``sr_benchmark``.
    """
    r, one = _rows(returns, "returns")
    nrow, t = r.shape
    bench = _per_row(sr_benchmark, "sr_benchmark", nrow, one)
    out = np.zeros(nrow)
    if t >= 3:
        mean = r.mean(axis=1)
        d = r - mean[:, None]
        m2 = np.mean(d**2, axis=1)
        ok = _non_constant(r) & (m2 > 0)
        if ok.any():
            d, m2, mean = d[ok], m2[ok], mean[ok]
            z = d / np.sqrt(m2)[:, None]  # standardised; avoids m2**1.5 underflow
            g3 = np.mean(z**3, axis=1)
            g4 = np.mean(z**4, axis=1)
            sr = mean / np.sqrt(m2 * t / (t - 1.0))  # std with ddof=1
            out[ok] = _psr_core(sr, np.full(sr.shape, float(t)), g3, g4, bench[ok])
    return _out(out, one)


# --------------------------------------------------------------------------- money


def roi(final, initial):
    """Return on investment: ``(final − initial) / initial``, a fraction.

    Args:
        final: equity at the end (quote currency, ``>= 0``); scalar or array.
        initial: equity at the start (``>= 0``); scalar or array broadcastable
            with ``final``.

    Returns:
        ROI as a fraction (0.05 = +5 %; −1.0 = everything lost): a float if both
        arguments are scalars, else an array. **0.0** where ``initial`` is 0 and
        ``final`` is 0 (never funded).

    Raises:
        MetricsError: NaN/inf, negative values, or ``final > 0`` with
            ``initial == 0`` (infinite ROI).
    """
    scalar = np.ndim(final) == 0 and np.ndim(initial) == 0
    f, i = np.broadcast_arrays(np.asarray(final, dtype=np.float64), np.asarray(initial, dtype=np.float64))
    if not (np.isfinite(f).all() and np.isfinite(i).all()):
        raise MetricsError("roi: final and initial must be finite")
    if (f < 0).any() or (i < 0).any():
        raise MetricsError("roi: final and initial must be >= 0")
    if ((i == 0) & (f != 0)).any():
        raise MetricsError("roi: final > 0 with initial == 0 (infinite ROI)")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(i > 0, (f - i) / np.where(i > 0, i, 1.0), 0.0)
    return float(out) if scalar else out


def hourly_roi(final, initial, hours):
    """Geometric ROI per hour: ``(1 + ROI) ** (1 / hours) − 1``.

    The constant hourly rate that, compounded over ``hours``, turns ``initial``
    into ``final`` (standard compound-growth rate; computed as
    ``expm1(ln(final / initial) / hours)`` for accuracy at small rates).

    Args:
        final: equity at the end (quote currency, ``>= 0``); scalar or array.
        initial: equity at the start (``>= 0``); scalar or array.
        hours: elapsed time in hours (may be fractional), ``>= 0``; scalar or
            array; all three broadcast together.

    Returns:
        Per-hour rate as a fraction: a float if all arguments are scalars, else
        an array. **0.0** where ``hours`` is 0 or ``initial`` is 0 (see
        :func:`roi`); −1.0 for a total loss over a positive duration.

    Raises:
        MetricsError: NaN/inf, negative ``hours``, or anything :func:`roi` rejects.
    """
    scalar = np.ndim(final) == 0 and np.ndim(initial) == 0 and np.ndim(hours) == 0
    h = np.asarray(hours, dtype=np.float64)
    if not np.isfinite(h).all() or (h < 0).any():
        raise MetricsError("hourly_roi: hours must be finite and >= 0")
    total = np.asarray(roi(final, initial), dtype=np.float64)
    f, i, total, h = np.broadcast_arrays(
        np.asarray(final, dtype=np.float64), np.asarray(initial, dtype=np.float64), total, h
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        # ln(final / initial): log1p(ROI) is exact near 0; log(f) - log(i) keeps
        # precision (and avoids underflow of f / i) far from it; -inf for f == 0.
        growth = np.where(np.abs(total) < 0.5, np.log1p(total), np.log(f) - np.log(i))
        out = np.where((h > 0) & (i > 0), np.expm1(growth / np.where(h > 0, h, 1.0)), 0.0)
    return float(out) if scalar else out


def win_rate(pnls) -> float | None:
    """Fraction of round-trip trades that made money: ``count(pnl > 0) / count``.

    Args:
        pnls: ``(K,) float64`` realised PnL of each closed round-trip trade
            (quote currency, after fees). A trade with PnL exactly 0 is not a
            win. Positions still open are not trades yet: leave them out.

    Returns:
        Win rate in ``[0, 1]`` as a float; **None** with no trades (undefined,
        not 0 %: an agent whose positions are all still open has lost nothing
        yet). Reports carry it as JSON ``null``, tables show "—", CSV an empty
        cell.

    Raises:
        MetricsError: ``pnls`` is not 1-D or contains NaN/inf.
    """
    p = np.asarray(pnls, dtype=np.float64)
    if p.ndim != 1:
        raise MetricsError(f"pnls: expected a (K,) array, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise MetricsError("pnls: contains NaN or inf")
    if p.size == 0:
        return None
    return float(np.count_nonzero(p > 0) / p.size)


def utilisation(position_value, allocated):
    """Capital in positions relative to capital allocated, mean and peak over bars.

    ``u[:, t] = position_value[:, t] / allocated`` (the architecture's
    "utilisation": capital in positions / capital allocated; above 1 with
    leverage).

    Args:
        position_value: ``(N, T) float64`` gross value of each agent's open
            positions at each bar, ``sum(|qty · price|)`` in the quote currency,
            ``>= 0``; or ``(T,)`` for one agent.
        allocated: ``(N,)`` capital allocated to each agent (quote currency,
            ``>= 0``); scalar for 1-D input.

    Returns:
        ``(mean (N,), peak (N,))`` float64 fractions, or ``(mean, peak)`` floats
        for 1-D input. **0.0** with no bars, and for an agent with 0 allocated
        and no positions.

    Raises:
        MetricsError: bad shapes, NaN/inf, negative values, or positions held on
            a zero allocation (infinite utilisation).
    """
    pv, one = _rows(position_value, "position_value")
    alloc = _per_row(allocated, "allocated", pv.shape[0], one)
    if (pv < 0).any() or (alloc < 0).any():
        raise MetricsError("position_value and allocated must be >= 0")
    zero = alloc == 0
    if (pv[zero] > 0).any():
        raise MetricsError("positions held by an agent with 0 allocated (infinite utilisation)")
    u = pv / np.where(zero, 1.0, alloc)[:, None]
    if u.shape[1] == 0:
        mean = peak = np.zeros(u.shape[0])
    else:
        mean, peak = u.mean(axis=1), u.max(axis=1)
    if one:
        return float(mean[0]), float(peak[0])
    return mean, peak


# --------------------------------------------------------------------------- rollups


def hourly_rollup(timestamps, pnl, gross_exposure) -> list[dict]:
    """Per-UTC-clock-hour summary of the parent's PnL and gross exposure.

    Args:
        timestamps: ``(T,) datetime64[ns]`` UTC bar times, non-decreasing.
        pnl: ``(T,) float64`` parent PnL of each bar (quote currency).
        gross_exposure: ``(T,) float64`` parent gross exposure at each bar as a
            fraction of parent equity, ``>= 0``.

    Returns:
        One dict per clock hour (``HH:00:00`` to ``HH:59:59.999…`` UTC) that has
        at least one bar, in time order::

            {"hour": "2018-01-15T03:00:00Z",   # start of the hour, ISO 8601 UTC
             "pnl": float,                      # sum of pnl over the hour's bars
             "gross_exposure": float}           # mean over the hour's bars

        with plain Python ``str`` / ``float`` values (JSON-ready). Hours with no
        bars are omitted; ``[]`` for no bars.

    Raises:
        MetricsError: arrays not 1-D or of different lengths, NaT, timestamps
            decreasing, NaN/inf values, or negative gross exposure.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    p = np.asarray(pnl, dtype=np.float64)
    g = np.asarray(gross_exposure, dtype=np.float64)
    if ts.ndim != 1 or p.ndim != 1 or g.ndim != 1:
        raise MetricsError("hourly_rollup: timestamps, pnl and gross_exposure must be 1-D")
    if not len(ts) == len(p) == len(g):
        raise MetricsError(
            f"hourly_rollup: lengths differ (timestamps {len(ts)}, pnl {len(p)}, gross_exposure {len(g)})"
        )
    if len(ts) == 0:
        return []
    if np.isnat(ts).any():
        raise MetricsError("hourly_rollup: timestamps contain NaT")
    if (ts[1:] < ts[:-1]).any():
        raise MetricsError("hourly_rollup: timestamps must be non-decreasing")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise MetricsError("hourly_rollup: pnl and gross_exposure must be finite")
    if (g < 0).any():
        raise MetricsError("hourly_rollup: gross_exposure must be >= 0")
    hours = ts.astype("datetime64[h]")  # floors to the clock hour
    starts = np.flatnonzero(np.concatenate([[True], hours[1:] != hours[:-1]]))
    counts = np.diff(np.append(starts, len(ts)))
    pnl_sum = np.add.reduceat(p, starts)
    exp_mean = np.add.reduceat(g, starts) / counts
    labels = np.datetime_as_string(hours[starts], unit="s")
    return [
        {"hour": f"{label}Z", "pnl": float(s), "gross_exposure": float(e)}
        for label, s, e in zip(labels.tolist(), pnl_sum.tolist(), exp_mean.tolist())
    ]


# --------------------------------------------------------------------------- DSR

#: Euler–Mascheroni constant γ, used by :func:`expected_max_sharpe`.
EULER_MASCHERONI = 0.5772156649015329

_STD_NORMAL = NormalDist()


def _upper_quantile(p: float) -> float:
    """Φ⁻¹(1 − p) for ``0 < p < 1``, computed as −Φ⁻¹(p).

    The identity is exact and keeps full precision for tiny ``p`` (huge trial
    counts), where ``1 − p`` would round to 1 and Φ⁻¹ to +inf.
    """
    return -_STD_NORMAL.inv_cdf(p)


def _sr0_core(n: np.ndarray, v: np.ndarray) -> np.ndarray:
    """SR*_0 elementwise for validated ``n >= 1`` and finite ``v`` (same shape)."""
    vals = []
    for trials, var in zip(n.ravel().tolist(), v.ravel().tolist()):
        if trials == 1.0 or var <= 0.0:
            vals.append(0.0)
            continue
        inv = 1.0 / trials  # in (0, 1); (1/N)/e cannot overflow like 1/(N·e)
        z = (1.0 - EULER_MASCHERONI) * _upper_quantile(inv) + EULER_MASCHERONI * _upper_quantile(inv / math.e)
        vals.append(max(0.0, math.sqrt(var) * z))
    return np.asarray(vals, dtype=np.float64).reshape(n.shape)


def expected_max_sharpe(n_trials, var_sr):
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials, SR*_0.

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
    Selection Bias, Backtest Overfitting and Non-Normality", Journal of
    Portfolio Management 40(5)::

        SR*_0 = sqrt(V[SR_n]) · ((1 − γ) Φ⁻¹(1 − 1/N) + γ Φ⁻¹(1 − 1/(N·e)))

    with γ the Euler–Mascheroni constant: the Sharpe ratio that the best of
    ``N`` independent trials is expected to reach by luck alone when every
    trial's true Sharpe is 0 and the estimated Sharpes vary across trials with
    variance ``V[SR_n]``. It is the benchmark of :func:`deflated_sharpe_ratio`.

    Args:
        n_trials: N, the number of trials (strategy configurations, genomes,
            parameter sets) tried before selecting the one being assessed,
            ``>= 1``; an effective (non-integer) number of independent trials
            is accepted. Scalar or array.
        var_sr: V[SR_n], the variance **across trials** of their estimated
            **per-bar** (non-annualised) Sharpe ratios. For annualised Sharpes
            divide their variance by ``periods_per_year`` (a standard deviation
            by ``sqrt(periods_per_year)``). Scalar or array; broadcasts with
            ``n_trials``.

    Returns:
        SR*_0 in the units of the Sharpes whose variance was given (per bar),
        ``>= 0`` and finite: a float if both arguments are scalars, else an
        array of the broadcast shape. Degenerate cases:

        * ``n_trials == 1``: **0.0** (no selection, nothing to deflate; the
          formula's Φ⁻¹(0) = −inf is its limit, not a value);
        * ``var_sr <= 0``: **0.0** (trials that do not vary cannot be selected
          on luck);
        * the approximation dips below 0 for effective trial counts just above
          1 (below about 1.3); the expected maximum of zero-mean trials is
          never below the mean of one of them (0), so the result is floored at
          **0.0**. For integer ``N >= 2`` the floor never binds.

    Raises:
        MetricsError: NaN/inf arguments, ``n_trials < 1``, or shapes that do
            not broadcast.
    """
    scalar = np.ndim(n_trials) == 0 and np.ndim(var_sr) == 0
    try:
        n, v = np.broadcast_arrays(np.asarray(n_trials, dtype=np.float64), np.asarray(var_sr, dtype=np.float64))
    except ValueError as exc:
        raise MetricsError(f"expected_max_sharpe: arguments do not broadcast: {exc}") from None
    for name, a in (("n_trials", n), ("var_sr", v)):
        if not np.isfinite(a).all():
            raise MetricsError(f"{name}: contains NaN or inf")
    if (n < 1).any():
        raise MetricsError(f"n_trials must be >= 1 (the selected trial counts), got min {float(n.min())!r}")
    out = _sr0_core(n, v)
    return float(out) if scalar else out


def dsr_from_moments(sr, n, skewness, kurtosis, n_trials, var_sr):
    """Deflated Sharpe Ratio from the sample moments of a return series.

    Bailey & López de Prado (2014): the Probabilistic Sharpe Ratio
    (:func:`psr_from_moments`) of the selected strategy against the benchmark
    SR*_0 = :func:`expected_max_sharpe` ``(n_trials, var_sr)`` instead of 0::

        DSR = Φ( (SR̂ − SR*_0) · sqrt(n − 1) / sqrt(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

    the probability that the true Sharpe ratio is positive after correcting for
    having picked the best of ``n_trials`` trials.

    Args:
        sr: SR̂, the **per-bar** (non-annualised) Sharpe ratio; scalar or array.
        n: number of returns SR̂ was estimated from; scalar or array.
        skewness: γ3, sample skewness; scalar or array.
        kurtosis: γ4, sample **non-excess** kurtosis (3 for a normal
            distribution), ``>= 1``; scalar or array.
        n_trials: number of trials the strategy was selected from, ``>= 1``;
            scalar or array.
        var_sr: variance across trials of their **per-bar** Sharpe ratios;
            scalar or array. All six arguments broadcast together.

    Returns:
        DSR in ``[0, 1]``: a float if every argument is a scalar, else an
        array. ``n_trials == 1`` or ``var_sr <= 0`` give SR*_0 = 0, i.e. DSR =
        PSR against 0; otherwise DSR <= PSR against 0. Degenerate moments
        (``n < 3``, non-positive radicand) follow :func:`psr_from_moments`.

    Raises:
        MetricsError: anything :func:`expected_max_sharpe` or
            :func:`psr_from_moments` rejects.
    """
    scalar = all(np.ndim(a) == 0 for a in (sr, n, skewness, kurtosis, n_trials, var_sr))
    bench = expected_max_sharpe(n_trials, var_sr)
    out = psr_from_moments(sr, n, skewness, kurtosis, sr_benchmark=bench)
    return float(out) if scalar else out


def deflated_sharpe_ratio(returns, n_trials, var_sr):
    """Deflated Sharpe Ratio of each row's returns (selection-bias-corrected PSR).

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio": the
    :func:`probabilistic_sharpe_ratio` of each row against the benchmark
    SR*_0 = :func:`expected_max_sharpe` ``(n_trials, var_sr)``, the Sharpe the
    best of ``n_trials`` skill-less trials reaches by luck. SR̂, skewness and
    kurtosis are estimated from each row exactly as in
    :func:`probabilistic_sharpe_ratio` (per bar, risk-free 0).

    Args:
        returns: ``(N, T) float64`` per-bar returns (fractions), or ``(T,)``.
        n_trials: number of trials each row was selected from (e.g. every
            genome evaluated so far, not only the survivors), ``>= 1``; scalar,
            or ``(N,)`` for 2-D input.
        var_sr: variance across those trials of their **per-bar** Sharpe
            ratios (``np.var`` of per-bar SRs; an annualised variance divided
            by ``periods_per_year``); scalar, or ``(N,)`` for 2-D input.

    Returns:
        ``(N,) float64`` probabilities in ``[0, 1]`` (a float for 1-D input).
        ``n_trials == 1`` or ``var_sr <= 0`` give DSR = PSR against 0; with
        more trials DSR <= PSR against 0. Like the PSR, **0.0** for fewer than
        3 returns or zero variance.

    Raises:
        MetricsError: bad shapes, NaN/inf, or ``n_trials < 1``.
    """
    r, one = _rows(returns, "returns")
    trials = _per_row(n_trials, "n_trials", r.shape[0], one)
    var = _per_row(var_sr, "var_sr", r.shape[0], one)
    bench = expected_max_sharpe(trials, var)
    return probabilistic_sharpe_ratio(returns, float(bench[0]) if one else bench)
