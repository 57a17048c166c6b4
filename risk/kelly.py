"""Kelly cap: the growth-optimal leverage implied by an agent's (or lineage's) track record.

An agent trades at some mean gross exposure ``e`` (multiple of its equity). Its
per-bar simple returns ``r`` then have mean ``m`` and variance ``v``. Per unit of
underlying exposure the returns are ``r / e``: mean ``m / e``, variance ``v / e**2``.
The continuous-time Kelly (growth-optimal) leverage on that unit is

    ``f* = mu_u / sigma_u**2 = (m / e) / (v / e**2) = e * m / v``

(Merton 1969, "Lifetime portfolio selection under uncertainty"; Thorp 2006, "The
Kelly criterion in blackjack, sports betting and the stock market", section 7,
with a zero risk-free rate over an intraday bar). It maximises the approximate
growth rate ``f mu - f**2 sigma**2 / 2`` and is accurate while per-bar returns are
small. Estimation error in ``m`` makes full Kelly dangerously aggressive, so the
cap applied is a fraction of it (half Kelly by default; MacLean, Thorp & Ziemba
2011, "The Kelly Capital Growth Investment Criterion", on fractional Kelly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from risk.var import RiskInputError

__all__ = ["KellyEstimate", "PooledMoments", "kelly_leverage", "pooled_moments"]


@dataclass(frozen=True)
class KellyEstimate:
    """A Kelly leverage estimate and what it was computed from.

    Attributes:
        full: full Kelly leverage ``exposure * mean / var`` (multiple of equity in
            units of underlying exposure), or None when not estimable. Kept even
            when negative (the record says "this edge is negative").
        fractional: ``fraction * full`` clipped at 0 -- the cap to apply (multiple of
            equity); ``0.0`` when the mean is not positive; None when not estimable.
        fraction: the Kelly fraction used, in ``(0, 1]``.
        mean: per-bar mean simple return (fraction) at the measured exposure.
        var: per-bar variance of simple returns (fraction squared).
        exposure: mean gross exposure the returns were earned at (multiple of equity).
        n_bars: number of bars behind ``mean``/``var`` (None if the caller did not say).
        note: why the estimate is 0 or None, else None.
    """

    full: float | None
    fractional: float | None
    fraction: float
    mean: float
    var: float
    exposure: float
    n_bars: int | None
    note: str | None

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (NaN inputs become None)."""
        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x
        return {k: clean(getattr(self, k)) for k in
                ("full", "fractional", "fraction", "mean", "var", "exposure", "n_bars", "note")}


def _finite(x, name: str, allowed: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise RiskInputError(f"{name} must be {allowed}, got {x!r}") from None
    if not math.isfinite(v):
        raise RiskInputError(f"{name} must be {allowed}, got {x!r}")
    return v


def kelly_leverage(mean: float, var: float, exposure: float, fraction: float = 0.5,
                   n_bars: int | None = None) -> KellyEstimate:
    """Fractional Kelly leverage from per-bar return moments measured at a known exposure.

    Args:
        mean: per-bar mean of simple returns (fraction of equity), finite.
        var: per-bar variance of simple returns (fraction squared), ``>= 0``.
            Ignored (may be NaN) when ``n_bars < 2``.
        exposure: mean gross exposure during those bars, multiple of equity, ``>= 0``.
        fraction: Kelly fraction in ``(0, 1]``; default ``0.5`` (half Kelly).
        n_bars: bars behind the moments, ``>= 0``; None = not known (not checked).

    Returns:
        :class:`KellyEstimate`. ``full = exposure * mean / var`` and
        ``fractional = fraction * full``, except:

        * ``n_bars < 2``, ``exposure == 0`` or ``var == 0``: ``full`` and
          ``fractional`` are None (not estimable), ``note`` says which;
        * ``mean <= 0``: ``fractional = 0.0`` (no edge, no leverage), ``note`` says so.

    Raises:
        RiskInputError: a non-finite or negative ``var`` (when ``n_bars`` is not
            below 2), negative or non-finite ``exposure``, non-finite ``mean``,
            ``fraction`` outside ``(0, 1]``, or ``n_bars`` negative / not whole.

    Source: Thorp (2006) section 7 and Merton (1969) for ``mu / sigma**2``;
    MacLean, Thorp & Ziemba (2011) for fractional Kelly.
    """
    m = _finite(mean, "mean", "a finite per-bar mean return (fraction)")
    e = _finite(exposure, "exposure", "a finite gross exposure >= 0 (multiple of equity)")
    if e < 0:
        raise RiskInputError(f"exposure must be >= 0 (gross, multiple of equity), got {exposure!r}")
    f = _finite(fraction, "fraction", "a Kelly fraction in (0, 1]")
    if not (0.0 < f <= 1.0):
        raise RiskInputError(f"fraction must be in (0, 1] (e.g. 0.5 for half Kelly), got {fraction!r}")
    if n_bars is not None:
        if isinstance(n_bars, bool) or not isinstance(n_bars, (int, np.integer)) or n_bars < 0:
            raise RiskInputError(f"n_bars must be a whole number >= 0 or None, got {n_bars!r}")
        n_bars = int(n_bars)

    def estimate(full, frac, note, v):
        return KellyEstimate(full=full, fractional=frac, fraction=f, mean=m, var=v,
                             exposure=e, n_bars=n_bars, note=note)

    if n_bars is not None and n_bars < 2:
        try:
            v = float(var)
        except (TypeError, ValueError):
            v = math.nan
        return estimate(None, None, f"not estimable: {n_bars} bar(s), a variance needs at least 2", v)
    v = _finite(var, "var", "a finite per-bar variance >= 0")
    if v < 0:
        raise RiskInputError(f"var must be >= 0 (a variance), got {var!r}")
    if e == 0.0:
        return estimate(None, None, "not estimable: exposure was 0, the returns say nothing about leverage", v)
    if v == 0.0:
        return estimate(None, None, "not estimable: variance is 0 (constant returns), Kelly is unbounded", v)
    full = e * m / v
    if m <= 0.0:
        return estimate(full, 0.0, f"no positive edge (mean {m:.3g} per bar): Kelly leverage 0", v)
    return estimate(full, f * full, None, v)


class PooledMoments(NamedTuple):
    """Pooled per-bar moments: ``mean`` (fraction), ``var`` (ddof=1, fraction squared), ``n_bars``."""

    mean: float
    var: float
    n_bars: int


def pooled_moments(means, variances, counts) -> PooledMoments:
    """Combine per-period per-bar means and variances into those of all the bars together.

    With ``N = sum n_i``, ``M = sum n_i m_i / N`` and

    ``V = (sum (n_i - 1) v_i + sum n_i (m_i - M)**2) / (N - 1)``

    (within-period plus between-period sums of squares) -- exactly
    ``np.mean``/``np.var(ddof=1)`` of the concatenated bars. The standard
    decomposition of the total sum of squares (one-way ANOVA; cf. Chan, Golub &
    LeVeque 1979 for its use in combining variances).

    Args:
        means: ``(P,) float64`` per-bar mean return of each period (fraction).
        variances: ``(P,) float64`` per-bar variance of each period, ``ddof=1``,
            ``>= 0``; ignored (may be NaN) for periods with ``count <= 1``.
        counts: ``(P,)`` bars in each period, whole numbers ``>= 0``; periods with 0
            bars are skipped (their mean may be NaN).

    Returns:
        :class:`PooledMoments` ``(mean, var, n_bars)``; ``var`` is NaN when the total
        is a single bar.

    Raises:
        RiskInputError: shapes differ or are not 1-D, counts negative or not whole,
            a used mean/variance not finite or a variance negative, or no bars at all.
    """
    m = np.asarray(means, dtype=np.float64)
    v = np.asarray(variances, dtype=np.float64)
    c_raw = np.asarray(counts)
    if m.ndim != 1 or v.shape != m.shape or c_raw.shape != m.shape:
        raise RiskInputError(f"means, variances, counts must be (P,) arrays of one length, got shapes "
                             f"{m.shape}, {v.shape}, {c_raw.shape}")
    c = c_raw.astype(np.float64)
    if not np.isfinite(c).all() or (c < 0).any() or (c != np.round(c)).any():
        raise RiskInputError(f"counts must be whole numbers >= 0, got {c_raw.tolist()}")
    used = c > 0
    if not np.isfinite(m[used]).all():
        raise RiskInputError(f"means must be finite for periods with bars, got {m.tolist()}")
    vused = c > 1
    if not np.isfinite(v[vused]).all() or (v[vused] < 0).any():
        raise RiskInputError(f"variances must be finite and >= 0 for periods with 2+ bars, got {v.tolist()}")
    n = float(c.sum())
    if n == 0:
        raise RiskInputError("counts sum to 0: no bars to pool")
    mu = float(np.sum(c[used] * m[used]) / n)
    if n < 2:
        return PooledMoments(mu, math.nan, int(n))
    within = float(np.sum((c[vused] - 1.0) * v[vused]))
    between = float(np.sum(c[used] * (m[used] - mu) ** 2))
    return PooledMoments(mu, (within + between) / (n - 1.0), int(n))
