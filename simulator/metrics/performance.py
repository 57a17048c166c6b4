"""Return, ratio, drawdown and money metrics of equity curves, vectorised over agents.

Bar returns, annualised Sharpe and Sortino, drawdown, ROI, hourly ROI, win rate
and utilisation. Layout, units and the rules for degenerate inputs are those
of the package (:mod:`simulator.metrics`); the overfitting statistics (PSR,
DSR) are in :mod:`simulator.metrics.overfitting`.
"""
from __future__ import annotations

import math

import numpy as np

from simulator.metrics.common import MetricsError, _check_ppy, _non_constant, _out, _per_row, _rows

__all__ = [
    "SORTINO_CAP",
    "SECONDS_PER_YEAR",
    "annualisation_periods",
    "bar_returns",
    "sharpe_ratio",
    "downside_deviation",
    "sortino_ratio",
    "max_drawdown",
    "drawdown_curve",
    "roi",
    "hourly_roi",
    "win_rate",
    "utilisation",
]

#: Upper cap of the annualised Sortino ratio, and its value for a series with
#: a positive mean and no losing bar at all (where the ratio is +inf). With
#: 5-minute bars (105,120 a year) it corresponds to a per-bar Sortino of ~3.1,
#: i.e. "practically no downside"; it keeps reports finite and ranks such a
#: series above every series that has a real downside below the cap.
SORTINO_CAP = 1000.0

#: Seconds in the 365-day year used for annualisation (crypto trades 24/7).
SECONDS_PER_YEAR = 365 * 24 * 3600


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
