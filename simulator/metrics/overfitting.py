"""Overfitting statistics: PSR, DSR, PBO by CSCV, effective trial count, rank correlation.

The Probabilistic Sharpe Ratio (Bailey & López de Prado 2012; the cohort's
"confidence" score) and the Deflated Sharpe Ratio with its benchmark, the
expected maximum Sharpe of N skill-less trials (Bailey & López de Prado 2014).
They work on the **per-bar** (non-annualised) Sharpe; layout and the rules for
degenerate inputs are those of the package (:mod:`simulator.metrics`).

Choices made by the learning loop, and where each comes from
    * **PBO** (:func:`probability_of_backtest_overfitting`): combinatorially
      symmetric cross-validation (CSCV) of Bailey, Borwein, López de Prado &
      Zhu (2015), "The Probability of Backtest Overfitting", Journal of
      Computational Finance 20(4), section 2: the ``(N, T)`` matrix of every
      trial's per-bar returns on the training window is cut into S contiguous
      blocks (S even, the learning loop uses S = 16, C(16, 8) = 12,870
      combinations); for every choice of S/2 blocks as in-sample (the rest
      out-of-sample) the trial with the best in-sample Sharpe is taken, its
      relative out-of-sample rank ω̄ = rank / (N + 1) and logit
      λ = ln(ω̄ / (1 − ω̄)) are computed; PBO = share of combinations with
      λ <= 0 (the in-sample winner ranks at or below the out-of-sample median).
      Sharpe is the paper's metric (per bar, ddof = 1, 0 for a constant
      series); tied out-of-sample Sharpes (e.g. idle trials at 0) get their
      average rank, so a tie at the median counts as overfit (λ = 0).
    * **N of the Deflated Sharpe**: every trial that could have been selected
      (Bailey & López de Prado 2014, section 3: "the number of independent
      trials"; López de Prado 2018, *Advances in Financial Machine Learning*,
      ch. 8 and ch. 11 "the dangers of backtesting": report every trial). For
      a learning cycle that is its own distinct genomes plus the trials of the
      cycles whose survivors seeded it (its lineage, on the same market,
      trained before it) plus the ``optimize`` trials on the same market; the
      lookup is :func:`manager.learning_jobs.prior_trials`. For the daily
      candidate step of a campaign, N is the number of agents the candidate
      was picked from (the selection made that day).
    * **Effective N** (:func:`effective_trials`): near-duplicate offspring are
      not independent trials. Following López de Prado (2018, AFML ch. 8
      "feature importance" clustering; and López de Prado & Lewis 2019,
      "Detection of false investment strategies using unsupervised learning
      methods", Quantitative Finance 19(9)), trials are clustered on the
      correlation distance d = sqrt((1 − ρ) / 2) of their return series by
      hierarchical clustering (average linkage, scipy) and the tree is cut at
      d = 0.5 (ρ = 0.5): trials whose returns correlate more than 0.5 on
      average count once. A fixed threshold is used instead of the paper's
      silhouette search because the silhouette cannot say "every trial is its
      own cluster" (independent trials), the case it must get right. Constant
      series (idle trials) form one cluster together.
    * **V[SR]** (:func:`expected_max_sharpe`): the variance of the per-bar
      Sharpes of trials measured **over the same sample** as the Sharpe being
      deflated (Bailey & López de Prado 2014 eq. 4 assumes one sample length
      T for all trials): a cycle's in-sample DSR uses its own trials on its
      training window; the campaign's daily DSR uses the agents' Sharpes on
      that day. Trials of earlier cycles add to N, never to V[SR].
    * **Rank correlation** (:func:`rank_correlation`): Spearman's ρ between
      in-sample and out-of-sample Sharpe of the genomes of a cycle (average
      ranks for ties; equal to ``scipy.stats.spearmanr``); Bailey et al. (2015,
      section 3, "performance degradation") read a weak or negative relation
      as a sign of overfitting.
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
    "PBO_BLOCKS",
    "EFFECTIVE_N_DISTANCE",
    "cscv_sharpes",
    "probability_of_backtest_overfitting",
    "effective_trials",
    "rank_correlation",
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
            z2 = z * z  # products, not z**3 / z**4: pow() is ~30x slower here
            g3 = np.mean(z2 * z, axis=1)
            g4 = np.mean(z2 * z2, axis=1)
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


# --------------------------------------------------------------------------- PBO

#: CSCV blocks used by the learning loop (Bailey et al. 2015 use S = 16).
PBO_BLOCKS = 16


def _block_sharpes(sums: np.ndarray, sqs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe (ddof = 1) from sums, sums of squares and counts; 0 where undefined."""
    n = counts[:, None]
    mean = sums / n
    var = (sqs - n * mean**2) / np.maximum(n - 1.0, 1.0)
    sd = np.sqrt(np.clip(var, 0.0, None))
    ok = (n > 1) & (sd > 1e-12 * np.maximum(np.abs(mean), 1e-300)) & (var > 0)
    return np.where(ok, mean / np.where(ok, sd, 1.0), 0.0)


def cscv_sharpes(returns, n_blocks: int = PBO_BLOCKS):
    """In- and out-of-sample Sharpes of every trial for every CSCV combination.

    Bailey, Borwein, López de Prado & Zhu (2015), section 2.1, steps 1-5: the
    ``(N, T)`` returns (the paper's ``(T, N)`` matrix M transposed) are cut into
    ``n_blocks`` contiguous blocks (``numpy.array_split``: block lengths differ by
    at most one bar when S does not divide T); each combination of S/2 blocks is
    the in-sample set J, its complement the out-of-sample set J̄.

    Args:
        returns: ``(N, T) float64`` per-bar returns of N trials (fractions).
        n_blocks: S, even, ``2 <= S <= T``.

    Returns:
        ``(masks, is_sharpe, oos_sharpe)``: ``masks`` ``(C, S) bool`` (True =
        in-sample block), and ``(C, N) float64`` per-bar Sharpes in and out of
        sample, C = C(S, S/2).

    Raises:
        MetricsError: bad shape, NaN/inf, odd or too many blocks.
    """
    from itertools import combinations

    r, _ = _rows(returns, "returns")
    s = int(n_blocks)
    if s < 2 or s % 2 or s > r.shape[1]:
        raise MetricsError(f"n_blocks={n_blocks} must be even, >= 2 and <= the number of bars ({r.shape[1]})")
    edges = np.cumsum([0] + [len(b) for b in np.array_split(np.arange(r.shape[1]), s)])
    sums = np.add.reduceat(r, edges[:-1], axis=1).T  # (S, N)
    sqs = np.add.reduceat(r**2, edges[:-1], axis=1).T
    lens = np.diff(edges).astype(np.float64)  # (S,)
    combos = np.array(list(combinations(range(s), s // 2)))
    masks = np.zeros((len(combos), s), dtype=bool)
    masks[np.arange(len(combos))[:, None], combos] = True
    m_in, m_out = masks.astype(np.float64), (~masks).astype(np.float64)
    is_sr = _block_sharpes(m_in @ sums, m_in @ sqs, m_in @ lens)
    oos_sr = _block_sharpes(m_out @ sums, m_out @ sqs, m_out @ lens)
    return masks, is_sr, oos_sr


def probability_of_backtest_overfitting(returns, n_blocks: int = PBO_BLOCKS) -> dict:
    """PBO by combinatorially symmetric cross-validation (CSCV).

    Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest
    Overfitting", section 2: for each of the C(S, S/2) splits (see
    :func:`cscv_sharpes`) take the trial n* with the best in-sample Sharpe
    (the first on ties), its out-of-sample rank ω_c among the N trials (1 =
    worst; average rank on ties), the relative rank ω̄_c = ω_c / (N + 1) and
    the logit λ_c = ln(ω̄_c / (1 − ω̄_c))::

        PBO = #{c : λ_c <= 0} / C(S, S/2)

    the probability that the configuration selected in sample performs at or
    below the median of all configurations out of sample. About 0.5 when no
    trial has skill (selection picks noise), near 0 when one trial has a real
    edge.

    Args:
        returns: ``(N, T) float64`` per-bar returns of the N trials (fractions),
            N >= 2.
        n_blocks: S, even, ``2 <= S <= T`` (default :data:`PBO_BLOCKS` = 16).

    Returns:
        ``{"pbo": float in [0, 1], "blocks": S, "combinations": C, "trials": N,
        "bars": T, "logit_median": float, "oos_sharpe_of_is_best_median":
        float (per bar)}``.

    Raises:
        MetricsError: fewer than 2 trials, or anything :func:`cscv_sharpes` rejects.
    """
    r, _ = _rows(returns, "returns")
    if r.shape[0] < 2:
        raise MetricsError(f"PBO needs at least 2 trials, got {r.shape[0]}")
    masks, is_sr, oos_sr = cscv_sharpes(r, n_blocks)
    c, n = is_sr.shape
    best = np.argmax(is_sr, axis=1)  # (C,)
    oos_best = oos_sr[np.arange(c), best][:, None]
    rank = (oos_sr < oos_best).sum(axis=1) + ((oos_sr == oos_best).sum(axis=1) + 1) / 2.0  # 1..N, average on ties
    w = rank / (n + 1.0)
    logit = np.log(w / (1.0 - w))
    return {"pbo": float(np.mean(logit <= 1e-12)), "blocks": int(n_blocks), "combinations": int(c),
            "trials": int(n), "bars": int(r.shape[1]), "logit_median": float(np.median(logit)),
            "oos_sharpe_of_is_best_median": float(np.median(oos_best))}


# --------------------------------------------------------------------------- effective N

#: correlation distance sqrt((1 − ρ)/2) at which the trial tree is cut (ρ = 0.5)
EFFECTIVE_N_DISTANCE = 0.5


def effective_trials(returns, threshold: float = EFFECTIVE_N_DISTANCE) -> int:
    """Effective number of independent trials: clusters of correlated return series.

    López de Prado (2018, AFML ch. 8) and López de Prado & Lewis (2019),
    "Detection of false investment strategies using unsupervised learning
    methods": trials are clustered on the correlation distance
    ``d_ij = sqrt((1 − ρ_ij) / 2)`` (0 for identical series, 0.71 for
    uncorrelated, 1 for opposite) by agglomerative clustering with average
    linkage (``scipy.cluster.hierarchy``), cut at ``threshold`` (default 0.5,
    i.e. an average correlation of 0.5; see the module docstring for why a
    fixed cut). Constant series (idle trials, ρ undefined) are one cluster
    together.

    Args:
        returns: ``(N, T) float64`` per-bar returns of N trials.
        threshold: cut distance in ``(0, 1]``.

    Returns:
        Number of clusters, ``1 <= n_eff <= N`` (0 for no trial).

    Raises:
        MetricsError: bad shape or NaN/inf.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    r, _ = _rows(returns, "returns")
    live = _non_constant(r) if r.shape[1] else np.zeros(r.shape[0], dtype=bool)
    idle = int((~live).sum() > 0)
    x = r[live]
    if len(x) <= 1:
        return len(x) + idle
    z = (x - x.mean(axis=1, keepdims=True))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    rho = np.clip(z @ z.T, -1.0, 1.0)
    d = np.sqrt((1.0 - rho) / 2.0)
    np.fill_diagonal(d, 0.0)
    tree = linkage(squareform(d, checks=False), method="average")
    return int(fcluster(tree, t=float(threshold), criterion="distance").max()) + idle


# --------------------------------------------------------------------------- rank correlation


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1, dtype=np.float64)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return (sums / counts)[inv]


def rank_correlation(a, b) -> float | None:
    """Spearman's rank correlation of two ``(N,)`` samples (average ranks on ties).

    Spearman (1904); the same value as ``scipy.stats.spearmanr(a, b).statistic``.
    Used for the in-sample vs out-of-sample ranks of a cycle's genomes (see the
    module docstring).

    Returns:
        ρ in ``[-1, 1]``, or ``None`` (JSON null) with fewer than 3 pairs or when
        either sample is constant (the correlation is undefined).

    Raises:
        MetricsError: shapes differ or NaN/inf.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise MetricsError(f"rank_correlation: shapes differ {x.shape} vs {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise MetricsError("rank_correlation: contains NaN or inf")
    if len(x) < 3 or x.max() == x.min() or y.max() == y.min():
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float(np.clip(rx @ ry / np.sqrt((rx @ rx) * (ry @ ry)), -1.0, 1.0))
