"""Tests of the Deflated Sharpe Ratio in simulator.metrics.

Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality". The paper's numerical
example is recomputed here independently with ``scipy.stats.norm`` and also
checked against the paper's rounded figures; the expected-maximum benchmark is
compared with the exact expected maximum of N standard normals (numerical
integration), which the paper's formula approximates.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import integrate, stats

from simulator import metrics as m
from simulator.metrics import MetricsError

GAMMA = 0.5772156649015329  # Euler–Mascheroni


def scipy_sr0(n_trials: float, var_sr: float) -> float:
    """The paper's SR*_0 written directly with scipy.stats.norm."""
    return math.sqrt(var_sr) * (
        (1 - GAMMA) * stats.norm.ppf(1 - 1 / n_trials) + GAMMA * stats.norm.ppf(1 - 1 / (n_trials * math.e))
    )


def scipy_psr(sr, n, g3, g4, bench) -> float:
    return float(stats.norm.cdf((sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)))


def returns_matrix(n_rows: int, n_bars: int, seed: int) -> np.ndarray:
    """Fat-tailed per-bar returns with a small per-row drift."""
    rng = np.random.default_rng(seed)
    drift = rng.normal(2e-4, 4e-4, (n_rows, 1))
    return drift + 2e-3 * rng.standard_t(5, (n_rows, n_bars))


def scipy_moments(r: np.ndarray):
    sr = r.mean() / r.std(ddof=1)
    return sr, r.size, stats.skew(r), stats.kurtosis(r, fisher=False)


# --------------------------------------------------------------------------- paper


class TestPaperExample:
    """N = 100 trials, V[SR_n] = 1/2 (annualised), SR = 2.5 (annualised), T = 1250
    daily observations, skewness −3, kurtosis 10 → SR*_0 ≈ 0.1132 (daily),
    DSR ≈ 0.9004."""

    PPY = 250
    N = 100
    VAR = 0.5 / PPY  # variance of annualised SRs → of daily SRs
    SR = 2.5 / math.sqrt(PPY)
    T, SKEW, KURT = 1250, -3.0, 10.0

    def test_expected_max_sharpe(self):
        sr0 = m.expected_max_sharpe(self.N, self.VAR)
        assert isinstance(sr0, float)
        assert sr0 == pytest.approx(scipy_sr0(self.N, self.VAR), rel=1e-12)
        assert round(sr0, 4) == 0.1132
        # annualised, the luck benchmark is ~1.79: a 2.5 backtest is far less impressive
        assert sr0 * math.sqrt(self.PPY) == pytest.approx(1.7894, abs=1e-4)

    def test_dsr(self):
        dsr = m.dsr_from_moments(self.SR, self.T, self.SKEW, self.KURT, self.N, self.VAR)
        assert isinstance(dsr, float)
        expected = scipy_psr(self.SR, self.T, self.SKEW, self.KURT, scipy_sr0(self.N, self.VAR))
        assert dsr == pytest.approx(expected, rel=1e-12)
        assert round(dsr, 4) == 0.9004

    def test_dsr_is_psr_against_sr0(self):
        sr0 = m.expected_max_sharpe(self.N, self.VAR)
        psr = m.psr_from_moments(self.SR, self.T, self.SKEW, self.KURT, sr_benchmark=sr0)
        assert m.dsr_from_moments(self.SR, self.T, self.SKEW, self.KURT, self.N, self.VAR) == psr
        # against 0 the same track record looks near-certain
        assert m.psr_from_moments(self.SR, self.T, self.SKEW, self.KURT) > 0.999


# --------------------------------------------------------------------------- SR*_0


def exact_expected_max(n: int) -> float:
    """E[max of n iid N(0, 1)] = ∫ x · n φ(x) Φ(x)^(n−1) dx."""
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    return integrate.quad(f, -12, 12, limit=200)[0]


class TestExpectedMaxSharpe:
    @pytest.mark.parametrize("n", [2, 3, 10, 30, 100, 1000, 10_000])
    @pytest.mark.parametrize("var", [1e-6, 0.002, 1.0])
    def test_matches_formula(self, n, var):
        assert m.expected_max_sharpe(n, var) == pytest.approx(scipy_sr0(n, var), rel=1e-12)

    @pytest.mark.parametrize("n", [10, 30, 100, 1000])
    def test_approximates_exact_expected_maximum(self, n):
        # the paper's closed form approximates E[max] of N standard normals
        assert m.expected_max_sharpe(n, 1.0) == pytest.approx(exact_expected_max(n), rel=0.03)

    def test_scales_with_standard_deviation(self):
        assert m.expected_max_sharpe(50, 4.0) == pytest.approx(2 * m.expected_max_sharpe(50, 1.0), rel=1e-14)

    def test_one_trial_is_zero(self):
        assert m.expected_max_sharpe(1, 0.5) == 0.0
        assert m.expected_max_sharpe(1.0, 1e6) == 0.0

    @pytest.mark.parametrize("var", [0.0, -0.0, -1e-18, -3.0])
    def test_non_positive_variance_is_zero(self, var):
        assert m.expected_max_sharpe(100, var) == 0.0

    def test_floored_at_zero_just_above_one_trial(self):
        # the closed form is negative for effective N in (1, ~1.3); E[max] >= 0
        assert (1 - GAMMA) * stats.norm.ppf(1 - 1 / 1.1) + GAMMA * stats.norm.ppf(1 - 1 / (1.1 * math.e)) < 0
        assert m.expected_max_sharpe(1.1, 1.0) == 0.0
        assert m.expected_max_sharpe(1.5, 1.0) == pytest.approx(scipy_sr0(1.5, 1.0), rel=1e-12)
        assert m.expected_max_sharpe(1.5, 1.0) > 0

    def test_increasing_in_trials(self):
        n = np.array([1, 2, 3, 5, 10, 100, 1e4, 1e8, 1e15, 1e100, 1e300])
        sr0 = m.expected_max_sharpe(n, 1.0)
        assert np.all(np.diff(sr0) > 0)

    def test_finite_for_huge_inputs(self):
        # 1 − 1/N rounds to 1 beyond ~1e16; the result must stay finite
        for n in (1e16, 1e17, 1e300, np.finfo(np.float64).max):
            v = m.expected_max_sharpe(n, 1.0)
            assert math.isfinite(v) and v > 8
        assert math.isfinite(m.expected_max_sharpe(1e300, 1e300))
        assert m.expected_max_sharpe(1e17, 1.0) == pytest.approx(
            math.sqrt(1.0) * ((1 - GAMMA) * -stats.norm.ppf(1e-17) + GAMMA * -stats.norm.ppf(1e-17 / math.e)),
            rel=1e-12,
        )

    def test_broadcasts(self):
        out = m.expected_max_sharpe(np.array([[1], [10], [100]]), np.array([0.0, 1.0]))
        assert isinstance(out, np.ndarray) and out.shape == (3, 2)
        assert out[0].tolist() == [0.0, 0.0] and out[1, 0] == 0.0 and out[2, 0] == 0.0
        assert out[1, 1] == m.expected_max_sharpe(10, 1.0)
        assert out[2, 1] == m.expected_max_sharpe(100, 1.0)

    @pytest.mark.parametrize(
        "n, var, match",
        [
            (0, 1.0, "n_trials must be >= 1"),
            (0.5, 1.0, "n_trials must be >= 1"),
            (-3, 1.0, "n_trials must be >= 1"),
            (np.array([5, 0]), 1.0, "n_trials must be >= 1"),
            (float("nan"), 1.0, "n_trials"),
            (float("inf"), 1.0, "n_trials"),
            (10, float("nan"), "var_sr"),
            (10, float("inf"), "var_sr"),
            (np.ones(3), np.ones(2), "broadcast"),
        ],
    )
    def test_errors(self, n, var, match):
        with pytest.raises(MetricsError, match=match):
            m.expected_max_sharpe(n, var)


# --------------------------------------------------------------------------- DSR


class TestDeflatedSharpeRatio:
    def test_matches_independent_computation(self):
        r = returns_matrix(6, 500, seed=1)
        n_trials, var_sr = 40, 2e-3
        got = m.deflated_sharpe_ratio(r, n_trials, var_sr)
        assert got.shape == (6,)
        sr0 = scipy_sr0(n_trials, var_sr)
        for i in range(6):
            sr, n, g3, g4 = scipy_moments(r[i])
            assert got[i] == pytest.approx(scipy_psr(sr, n, g3, g4, sr0), rel=1e-9, abs=1e-12)
            assert got[i] == pytest.approx(m.dsr_from_moments(sr, n, g3, g4, n_trials, var_sr), rel=1e-9, abs=1e-12)

    def test_rows_equal_one_d_calls(self):
        r = returns_matrix(8, 300, seed=2)
        trials = np.array([1, 2, 5, 10, 30, 100, 1000, 7])
        var = np.array([1e-3, 0.0, 2e-3, 5e-4, 1e-3, 1e-4, 1e-3, 3e-3])
        rows = m.deflated_sharpe_ratio(r, trials, var)
        scalar_args = m.deflated_sharpe_ratio(r, 30, 1e-3)
        for i in range(8):
            one = m.deflated_sharpe_ratio(r[i], int(trials[i]), float(var[i]))
            assert isinstance(one, float)
            assert rows[i] == one
            assert scalar_args[i] == m.deflated_sharpe_ratio(r[i], 30, 1e-3)

    def test_one_trial_or_no_variance_is_psr(self):
        r = returns_matrix(5, 200, seed=3)
        psr = m.probabilistic_sharpe_ratio(r)
        np.testing.assert_array_equal(m.deflated_sharpe_ratio(r, 1, 0.01), psr)
        np.testing.assert_array_equal(m.deflated_sharpe_ratio(r, 500, 0.0), psr)
        np.testing.assert_array_equal(m.deflated_sharpe_ratio(r, 500, -1e-20), psr)

    def test_more_trials_lower_dsr(self):
        r = returns_matrix(1, 1000, seed=4)[0]
        dsr = [m.deflated_sharpe_ratio(r, n, 1e-3) for n in (1, 2, 5, 20, 100, 1000)]
        assert all(b < a for a, b in zip(dsr, dsr[1:])), dsr

    def test_higher_variance_lower_dsr(self):
        r = returns_matrix(1, 1000, seed=4)[0]
        dsr = [m.deflated_sharpe_ratio(r, 50, v) for v in (0.0, 1e-5, 1e-4, 4e-4, 1e-3)]
        assert all(b < a for a, b in zip(dsr, dsr[1:])), dsr

    def test_moments_monotone_in_trials_and_variance(self):
        n = np.array([2, 5, 10, 100, 1000])
        by_n = m.dsr_from_moments(0.08, 400, -0.5, 6.0, n, 0.002)
        assert np.all(np.diff(by_n) < 0)
        v = np.array([1e-5, 1e-4, 1e-3, 2e-3])
        by_v = m.dsr_from_moments(0.08, 400, -0.5, 6.0, 20, v)
        assert np.all(np.diff(by_v) < 0)

    def test_degenerate_rows(self):
        r = np.array([[0.01, 0.01, 0.01, 0.01], [0.0, 0.0, 0.0, 0.0], [0.01, -0.02, 0.03, 0.01]])
        out = m.deflated_sharpe_ratio(r, 10, 1e-3)
        assert out[0] == 0.0 and out[1] == 0.0 and 0.0 <= out[2] <= 1.0
        assert m.deflated_sharpe_ratio([0.01, 0.02], 10, 1e-3) == 0.0  # fewer than 3 returns
        assert m.deflated_sharpe_ratio(np.empty((2, 0)), 10, 1e-3).tolist() == [0.0, 0.0]

    def test_finite_extremes(self):
        r = returns_matrix(3, 100, seed=5)
        for n, v in ((1e300, 1e300), (1e17, 1.0), (1, 0.0)):
            out = m.deflated_sharpe_ratio(r, n, v)
            assert np.isfinite(out).all() and ((out >= 0) & (out <= 1)).all()

    def test_scalar_vs_array_types(self):
        assert isinstance(m.dsr_from_moments(0.1, 100, 0.0, 3.0, 10, 0.01), float)
        out = m.dsr_from_moments(np.array([0.1, 0.2]), 100, 0.0, 3.0, 10, 0.01)
        assert isinstance(out, np.ndarray) and out.shape == (2,)
        assert out[0] == m.dsr_from_moments(0.1, 100, 0.0, 3.0, 10, 0.01)

    def test_moments_degenerate_cases_follow_psr(self):
        assert m.dsr_from_moments(0.5, 2, 0.0, 3.0, 10, 0.01) == 0.0  # n < 3
        # radicand <= 0 (inconsistent moments): limit 1.0 above the benchmark, 0.0 below
        assert m.dsr_from_moments(1.0, 100, 3.0, 1.0, 10, 0.01) == 1.0
        assert m.dsr_from_moments(0.1, 100, 11.0, 1.0, 10, 0.01) == 0.0  # SR*_0 ≈ 0.157

    @pytest.mark.parametrize(
        "call, match",
        [
            (lambda: m.deflated_sharpe_ratio(np.zeros((2, 5)), 0, 0.1), "n_trials must be >= 1"),
            (lambda: m.deflated_sharpe_ratio(np.zeros(5), np.array([2, 3]), 0.1), "must be a scalar"),
            (lambda: m.deflated_sharpe_ratio(np.zeros((2, 5)), np.array([2, 3, 4]), 0.1), r"expected shape \(2,\)"),
            (lambda: m.deflated_sharpe_ratio(np.zeros((2, 5)), 3, float("nan")), "var_sr"),
            (lambda: m.deflated_sharpe_ratio(np.full(5, np.nan), 3, 0.1), "returns"),
            (lambda: m.deflated_sharpe_ratio(np.zeros((1, 2, 5)), 3, 0.1), "returns"),
            (lambda: m.dsr_from_moments(0.1, 100, 0.0, 3.0, 0, 0.01), "n_trials must be >= 1"),
            (lambda: m.dsr_from_moments(0.1, 100, 0.0, 0.0, 10, 0.01), "non-excess kurtosis"),
            (lambda: m.dsr_from_moments(np.ones(2), 100, 0.0, 3.0, np.ones(3) * 5, 0.01), "broadcast"),
        ],
    )
    def test_errors(self, call, match):
        with pytest.raises(MetricsError, match=match):
            call()


# --------------------------------------------------------------------------- properties

ret_elem = st.floats(-0.2, 0.2, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 8))
ret_matrix = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(0, 60)), elements=ret_elem)
trials_st = st.one_of(st.integers(1, 10_000), st.floats(1.0, 1e12, allow_nan=False))
var_st = st.one_of(st.just(0.0), st.floats(1e-8, 10.0, allow_nan=False))


@settings(max_examples=150, deadline=None)
@given(r=ret_matrix, n_trials=trials_st, var_sr=var_st)
def test_dsr_at_most_psr_and_in_unit_interval(r, n_trials, var_sr):
    dsr = m.deflated_sharpe_ratio(r, n_trials, var_sr)
    psr = m.probabilistic_sharpe_ratio(r)
    assert np.isfinite(dsr).all() and ((dsr >= 0) & (dsr <= 1)).all()
    assert (dsr <= psr).all()


@settings(max_examples=150, deadline=None)
@given(r=ret_matrix, n1=st.integers(1, 5000), extra=st.integers(0, 5000), v1=var_st, v_extra=var_st)
def test_dsr_monotone_in_trials_and_variance(r, n1, extra, v1, v_extra):
    base = m.deflated_sharpe_ratio(r, n1, v1)
    assert (m.deflated_sharpe_ratio(r, n1 + extra, v1) <= base).all()
    assert (m.deflated_sharpe_ratio(r, n1, v1 + v_extra) <= base).all()


@settings(max_examples=100, deadline=None)
@given(r=ret_matrix, n_trials=trials_st, var_sr=var_st)
def test_rows_equal_one_d_property(r, n_trials, var_sr):
    rows = m.deflated_sharpe_ratio(r, n_trials, var_sr)
    assert rows.tolist() == [m.deflated_sharpe_ratio(row, n_trials, var_sr) for row in r]
