"""Overfitting statistics: the Probabilistic and Deflated Sharpe Ratios.

The Probabilistic Sharpe Ratio (Bailey & López de Prado 2012; the cohort's
"confidence" score) and the Deflated Sharpe Ratio with its benchmark, the
expected maximum Sharpe of N skill-less trials (Bailey & López de Prado 2014).
They work on the **per-bar** (non-annualised) Sharpe; layout and the rules for
degenerate inputs are those of the package (:mod:`simulator.metrics`).
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from simulator.metrics.common import MetricsError, _non_constant, _out, _per_row, _rows

__all__ = [
    "psr_from_moments",
    "probabilistic_sharpe_ratio",
    "EULER_MASCHERONI",
    "expected_max_sharpe",
    "dsr_from_moments",
    "deflated_sharpe_ratio",
]


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, elementwise: Φ(z) = erfc(−z/√2) / 2 (exact identity)."""
    flat = [0.5 * math.erfc(-v / math.sqrt(2.0)) for v in np.ravel(z).tolist()]
    return np.asarray(flat, dtype=np.float64).reshape(np.shape(z))


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
