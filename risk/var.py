"""Value at Risk and CVaR (expected shortfall) of the parent bankroll's returns.

Conventions used by every function here:

* **Input.** ``returns`` is a ``(n,) float64`` array of *simple* returns per bar
  (fractions: ``0.01`` = +1 % over one bar), oldest first, all finite.
* **Horizon.** One bar of the data's timeframe. Nothing is scaled to a day or a
  year (no square-root-of-time rule): the numbers say what one more bar like the
  sampled ones could cost.
* **Sign.** VaR and CVaR are reported as **positive loss fractions**: ``VaR = 0.02``
  means "with probability ``level`` the next bar loses less than 2 % of equity".
  A negative value means even the tail quantile is a gain.
* **Sample size.** At least :data:`MIN_RETURNS` returns are required; fewer raise
  :class:`RiskInputError`. A 99 % quantile of 30 numbers is already mostly
  interpolation, so treat small samples with care.

Methods:

* *Historical* (empirical quantile): ``VaR = -Q(1 - level)`` with ``Q`` the sample
  quantile by numpy's default ``'linear'`` interpolation (Hyndman & Fan 1996,
  definition 7); ``CVaR = -mean(r | r <= -VaR)`` (the mean of the returns at or
  below the VaR threshold; Acerbi & Tasche 2002, "On the coherence of expected
  shortfall").
* *Cornish-Fisher* (modified VaR): the normal quantile corrected for sample
  skewness and excess kurtosis by the Cornish-Fisher expansion (Cornish & Fisher
  1937; Zangari 1996, RiskMetrics Monitor Q2; Favre & Galeano 2002, Journal of
  Alternative Investments 5(2)); the CVaR is the average of the Cornish-Fisher
  quantile over the tail probabilities ``p`` in ``(0, 1 - level]``, evaluated in
  closed form (see :func:`cornish_fisher_cvar`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

__all__ = [
    "MIN_RETURNS",
    "RiskInputError",
    "cornish_fisher_cvar",
    "cornish_fisher_var",
    "cornish_fisher_z",
    "historical_cvar",
    "historical_var",
    "sample_moments",
    "value_at_risk",
]

MIN_RETURNS = 30
"""Fewest returns any VaR/CVaR estimate here accepts."""

HORIZON = "one bar"


class RiskInputError(ValueError):
    """Input that no risk measure can be computed from (shape, NaN/inf, range, too few values)."""


# --------------------------------------------------------------------------- validation


def _check_level(level) -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise RiskInputError(f"level must be a number in (0, 1), got {level!r}") from None
    if not (0.0 < lv < 1.0):  # also False for NaN
        raise RiskInputError(f"level must be in the open interval (0, 1), e.g. 0.95, got {level!r}")
    return lv


def _check_returns(returns, name: str = "returns", min_n: int = MIN_RETURNS) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise RiskInputError(f"{name}: expected a (n,) array of per-bar returns, got shape {r.shape}")
    if not np.isfinite(r).all():
        bad = int(np.count_nonzero(~np.isfinite(r)))
        raise RiskInputError(f"{name}: contains {bad} NaN or inf value(s); all returns must be finite")
    if r.size < min_n:
        raise RiskInputError(f"{name}: needs at least {min_n} returns, got {r.size}")
    return r


# --------------------------------------------------------------------------- historical


def historical_var(returns, level: float) -> float:
    """Historical (empirical) one-bar Value at Risk, as a positive loss fraction.

    Args:
        returns: ``(n,) float64`` simple returns per bar (fraction of equity),
            ``n >= MIN_RETURNS``, all finite.
        level: confidence level in ``(0, 1)``, e.g. ``0.95`` or ``0.99``.

    Returns:
        ``-quantile(returns, 1 - level)`` with numpy's default ``'linear'``
        interpolation (Hyndman & Fan 1996, definition 7): a fraction of equity,
        positive when the tail quantile is a loss.

    Raises:
        RiskInputError: ``level`` outside ``(0, 1)``, ``returns`` not 1-D,
            containing NaN/inf, or shorter than :data:`MIN_RETURNS`.

    Source: the standard historical-simulation VaR (Jorion, *Value at Risk*, 3rd ed.,
    ch. 10).
    """
    lv = _check_level(level)
    r = _check_returns(returns)
    return float(-np.quantile(r, 1.0 - lv))


def historical_cvar(returns, level: float) -> float:
    """Historical one-bar CVaR (expected shortfall), as a positive loss fraction.

    ``CVaR = -mean(r[r <= -VaR])`` where ``VaR = historical_var(returns, level)``:
    the average of the returns at or below the VaR threshold. Because the
    threshold is an interpolated quantile, at least the smallest return always
    qualifies, so the mean is defined, and ``CVaR >= VaR``.

    Args:
        returns: ``(n,) float64`` simple returns per bar (fraction), ``n >= MIN_RETURNS``.
        level: confidence level in ``(0, 1)``.

    Returns:
        The tail mean loss, fraction of equity (positive = loss).

    Raises:
        RiskInputError: as :func:`historical_var`.

    Source: Acerbi & Tasche (2002), "On the coherence of expected shortfall",
    Journal of Banking & Finance 26(7) (tail conditional expectation estimator).
    """
    lv = _check_level(level)
    r = _check_returns(returns)
    q = np.quantile(r, 1.0 - lv)
    return float(-r[r <= q].mean())


# --------------------------------------------------------------------------- Cornish-Fisher


def sample_moments(returns) -> tuple[float, float, float, float]:
    """Mean, standard deviation, skewness and excess kurtosis used by the Cornish-Fisher VaR.

    Args:
        returns: ``(n,) float64`` simple returns per bar, ``n >= MIN_RETURNS``.

    Returns:
        ``(mu, sigma, S, K)``: ``mu`` the sample mean (fraction per bar), ``sigma``
        the sample standard deviation with ``ddof=1``, ``S = m3 / m2**1.5`` and
        ``K = m4 / m2**2 - 3`` the moment estimators ``g1``/``g2`` of skewness and
        excess kurtosis (``m_k`` the k-th central sample moment, divisor ``n``;
        Joanes & Gill 1998 notation). For a constant sample ``sigma = S = K = 0``.

    Raises:
        RiskInputError: as :func:`historical_var` (no level involved).
    """
    r = _check_returns(returns)
    mu = float(r.mean())
    if r.max() == r.min():  # a float std of identical values may be a ~1e-18 residue
        return mu, 0.0, 0.0, 0.0
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    m3 = float(np.mean(d**3))
    m4 = float(np.mean(d**4))
    sigma = float(r.std(ddof=1))
    return mu, sigma, m3 / m2**1.5, m4 / m2**2 - 3.0


def _check_moment(x, name: str) -> float:
    v = float(x)
    if not math.isfinite(v):
        raise RiskInputError(f"{name} must be finite, got {x!r}")
    return v


def cornish_fisher_z(level: float, skew: float, excess_kurtosis: float) -> float:
    """The Cornish-Fisher adjusted standard-normal quantile of the lower tail.

    ``z = norm.ppf(1 - level)`` and

    ``z_cf = z + (z**2 - 1) S / 6 + (z**3 - 3 z) K / 24 - (2 z**3 - 5 z) S**2 / 36``

    Args:
        level: confidence level in ``(0, 1)``.
        skew: skewness ``S`` (dimensionless), finite.
        excess_kurtosis: excess kurtosis ``K`` (kurtosis - 3, dimensionless), finite.

    Returns:
        ``z_cf`` (dimensionless; negative for usual levels and moderate moments).

    Raises:
        RiskInputError: ``level`` outside ``(0, 1)`` or a moment not finite.

    Source: Cornish & Fisher (1937), "Moments and cumulants in the specification of
    distributions", Revue de l'Institut International de Statistique 5; in its VaR
    form Zangari (1996) and Favre & Galeano (2002). The expansion is only reliable
    for moderate skewness/kurtosis (for large ones ``z_cf`` stops being monotone in
    ``level``; Maillard 2012, "A user's guide to the Cornish Fisher expansion");
    nothing here enforces that domain.
    """
    lv = _check_level(level)
    s = _check_moment(skew, "skew")
    k = _check_moment(excess_kurtosis, "excess_kurtosis")
    z = float(norm.ppf(1.0 - lv))
    return _cf(z, s, k)


def _cf(z, s: float, k: float):
    """Cornish-Fisher polynomial (works on scalars and arrays)."""
    return z + (z**2 - 1.0) * s / 6.0 + (z**3 - 3.0 * z) * k / 24.0 - (2.0 * z**3 - 5.0 * z) * s**2 / 36.0


def cornish_fisher_var(returns, level: float) -> float:
    """Modified (Cornish-Fisher) one-bar Value at Risk, as a positive loss fraction.

    ``VaR = -(mu + z_cf * sigma)`` with ``(mu, sigma, S, K) = sample_moments(returns)``
    and ``z_cf = cornish_fisher_z(level, S, K)``. For a constant sample
    (``sigma = 0``) the distribution is a point mass and ``VaR = -mu``.

    Args:
        returns: ``(n,) float64`` simple returns per bar (fraction), ``n >= MIN_RETURNS``.
        level: confidence level in ``(0, 1)``.

    Returns:
        Fraction of equity (positive = loss).

    Raises:
        RiskInputError: as :func:`historical_var`.

    Source: Zangari (1996); Favre & Galeano (2002), "Mean-modified Value-at-Risk
    optimization with hedge funds"; expansion of Cornish & Fisher (1937).
    """
    lv = _check_level(level)
    mu, sigma, s, k = sample_moments(returns)
    if sigma == 0.0:
        return -mu
    z = float(norm.ppf(1.0 - lv))
    return float(-(mu + _cf(z, s, k) * sigma))


def cornish_fisher_cvar(returns, level: float) -> float:
    """Cornish-Fisher one-bar CVaR: the tail average of the Cornish-Fisher quantile.

    Method (chosen over the Boudt, Peterson & Croux 2008 Edgeworth-density
    "modified ES"): with ``a = 1 - level`` and ``q(p) = mu + sigma * z_cf(p)`` the
    Cornish-Fisher quantile at tail probability ``p``,

    ``CVaR = -(1/a) * integral_0^a q(p) dp``

    which is the quantile-average definition of expected shortfall (Acerbi &
    Tasche 2002) applied to the Cornish-Fisher quantile function. Substituting
    ``p = Phi(x)`` turns it into truncated standard-normal moments up to
    ``c = Phi^-1(a)``, evaluated exactly (``phi`` the normal density):

    ``E0 = a, E1 = -phi(c), E2 = a - c phi(c), E3 = -(c**2 + 2) phi(c)``,
    ``integral = sum_j b_j E_j`` with ``b_j`` the coefficients of the
    Cornish-Fisher polynomial in ``x``.

    For a constant sample (``sigma = 0``) ``CVaR = -mu``.

    Args:
        returns: ``(n,) float64`` simple returns per bar (fraction), ``n >= MIN_RETURNS``.
        level: confidence level in ``(0, 1)``.

    Returns:
        Fraction of equity (positive = loss). For zero skew and excess kurtosis it
        equals the normal expected shortfall ``-(mu - sigma phi(c) / a)``.

    Raises:
        RiskInputError: as :func:`historical_var`.
    """
    lv = _check_level(level)
    mu, sigma, s, k = sample_moments(returns)
    if sigma == 0.0:
        return -mu
    a = 1.0 - lv
    c = float(norm.ppf(a))
    phi = float(norm.pdf(c))
    e0, e1, e2, e3 = a, -phi, a - c * phi, -(c * c + 2.0) * phi
    # z_cf(x) = b0 + b1 x + b2 x^2 + b3 x^3
    b0 = -s / 6.0
    b1 = 1.0 - 3.0 * k / 24.0 + 5.0 * s * s / 36.0
    b2 = s / 6.0
    b3 = k / 24.0 - 2.0 * s * s / 36.0
    mean_z = (b0 * e0 + b1 * e1 + b2 * e2 + b3 * e3) / a
    return float(-(mu + sigma * mean_z))


# --------------------------------------------------------------------------- summary


def value_at_risk(returns, bankroll: float, levels=(0.95, 0.99), window: int | None = None) -> dict:
    """The one-bar VaR/CVaR summary of the parent bankroll the application shows.

    Args:
        returns: ``(n,) float64`` the parent's simple returns per bar (fraction of
            parent equity), oldest first, all finite.
        bankroll: the parent equity the fractions apply to, quote currency, > 0.
        levels: confidence levels, each in ``(0, 1)``; default ``(0.95, 0.99)``.
        window: use only the last ``window`` returns (bars); ``None`` = all of them.
            A window longer than the series uses the whole series (``n_returns`` in
            the result says how many were used).

    Returns:
        A JSON-ready dict::

            {"horizon": "one bar",
             "sign": "...positive = loss...",
             "bankroll": float,                      # quote currency
             "sample": {"n_returns": int, "window_bars": int | None, "min_returns": 30},
             "levels": [0.95, 0.99],
             "estimable": bool, "note": str | None,
             "estimates": [{"method": "historical" | "cornish_fisher", "level": float,
                            "var_fraction": float | None, "cvar_fraction": float | None,
                            "var_quote": float | None, "cvar_quote": float | None}, ...],
             "description": "..."}

        ``*_fraction`` is the loss as a fraction of the bankroll ("bankroll at
        risk"), ``*_quote`` the same times ``bankroll`` in the quote currency. With
        fewer than :data:`MIN_RETURNS` returns in the sample the estimates are
        ``None``, ``estimable`` is False and ``note`` says why (an early-day
        summary should not crash the dashboard).

    Raises:
        RiskInputError: ``returns`` not 1-D or not finite; ``bankroll`` not a
            positive finite number; a level outside ``(0, 1)``; ``window`` not a
            positive integer.
    """
    r = _check_returns(returns, min_n=0)
    try:
        b = float(bankroll)
    except (TypeError, ValueError):
        raise RiskInputError(f"bankroll must be a positive number (quote currency), got {bankroll!r}") from None
    if not (math.isfinite(b) and b > 0.0):
        raise RiskInputError(f"bankroll must be a positive finite number (quote currency), got {bankroll!r}")
    lvls = [_check_level(lv) for lv in np.atleast_1d(np.asarray(levels, dtype=object)).tolist()]
    if not lvls:
        raise RiskInputError("levels must hold at least one confidence level in (0, 1)")
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise RiskInputError(f"window must be a positive whole number of bars or None, got {window!r}")
        r = r[-int(window):]
    n = int(r.size)
    estimable = n >= MIN_RETURNS
    note = None if estimable else f"needs at least {MIN_RETURNS} returns for VaR/CVaR, the sample holds {n}"
    methods = (("historical", historical_var, historical_cvar),
               ("cornish_fisher", cornish_fisher_var, cornish_fisher_cvar))
    rows = []
    for name, fvar, fcvar in methods:
        for lv in lvls:
            v = fvar(r, lv) if estimable else None
            cv = fcvar(r, lv) if estimable else None
            rows.append({
                "method": name, "level": lv,
                "var_fraction": v, "cvar_fraction": cv,
                "var_quote": None if v is None else v * b,
                "cvar_quote": None if cv is None else cv * b,
            })
    win = "all bars" if window is None else f"the last {int(window)} bars"
    return {
        "horizon": HORIZON,
        "sign": "positive numbers are losses; fraction = share of the bankroll, quote = fraction x bankroll",
        "bankroll": b,
        "sample": {"n_returns": n, "window_bars": None if window is None else int(window),
                   "min_returns": MIN_RETURNS},
        "levels": lvls,
        "estimable": estimable,
        "note": note,
        "estimates": rows,
        "description": (f"Loss over one bar that the parent's per-bar returns over {win} "
                        f"({n} returns) exceed with probability 1 - level (VaR), and the mean loss "
                        f"beyond it (CVaR); historical = empirical quantile (linear interpolation), "
                        f"cornish_fisher = normal quantile adjusted for skewness and excess kurtosis."),
    }
