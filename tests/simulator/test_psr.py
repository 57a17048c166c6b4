"""Tests of the Probabilistic Sharpe Ratio in simulator.metrics: hand-worked
numbers and a direct scipy computation of the Bailey & López de Prado (2012)
formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from simulator import metrics as m
from simulator.metrics import MetricsError
from tests.simulator.metric_samples import PPY_5M, realistic_returns, ret_elem, ret_matrix


def psr_direct(sr, n, skew, kurt, bench=0.0) -> float:
    """Bailey & López de Prado (2012) PSR written out with scipy."""
    z = (sr - bench) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def test_psr_hand_worked_from_moments():
    # n = 100, SR = 0.1 per bar, skewness -0.5, kurtosis 4 (non-excess), SR* = 0
    # radicand = 1 - (-0.5)(0.1) + (4 - 1)/4 * 0.1^2 = 1 + 0.05 + 0.0075 = 1.0575
    # z = 0.1 * sqrt(99) / sqrt(1.0575) = 0.994987 / 1.028348 = 0.967559
    # Φ(0.967559) = 0.83337
    z = 0.1 * math.sqrt(99) / math.sqrt(1.0575)
    assert z == pytest.approx(0.967559, abs=1e-6)
    assert m.psr_from_moments(0.1, 100, -0.5, 4.0) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert m.psr_from_moments(0.1, 100, -0.5, 4.0) == pytest.approx(0.83337, abs=1e-5)
    # with a benchmark SR* = 0.05: z = 0.05 * sqrt(99) / sqrt(1.0575)
    z_b = 0.05 * math.sqrt(99) / math.sqrt(1.0575)
    assert m.psr_from_moments(0.1, 100, -0.5, 4.0, 0.05) == pytest.approx(stats.norm.cdf(z_b), rel=1e-12)


def test_psr_hand_worked_from_returns():
    # returns (-1, 0, 1, 2) %: mean 0.5 %, deviations (-1.5, -0.5, 0.5, 1.5) %
    # m2 = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25 (%^2); std(ddof=1) = sqrt(5/3)
    # SR = 0.5 / sqrt(5/3) = sqrt(0.15); m3 = 0 -> skew 0
    # m4 = (5.0625 + 0.0625 + 0.0625 + 5.0625)/4 = 2.5625 -> kurtosis 2.5625/1.5625 = 1.64
    # radicand = 1 - 0 + 0.64/4 * 0.15 = 1.024; z = sqrt(0.15) * sqrt(3) / sqrt(1.024)
    r = np.array([-0.01, 0.0, 0.01, 0.02])
    assert stats.skew(r) == pytest.approx(0.0, abs=1e-12)
    assert stats.kurtosis(r, fisher=False) == pytest.approx(1.64, rel=1e-12)
    assert r.mean() / r.std(ddof=1) == pytest.approx(math.sqrt(0.15), rel=1e-12)
    z = math.sqrt(0.45 / 1.024)
    assert z == pytest.approx(0.662913, abs=1e-6)
    assert m.probabilistic_sharpe_ratio(r) == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert m.probabilistic_sharpe_ratio(r) == pytest.approx(0.74631, abs=1e-5)


def test_psr_scipy_direct_on_realistic_series():
    r = realistic_returns(30, 288, seed=5)
    ours = m.probabilistic_sharpe_ratio(r)
    bench = 0.5 / math.sqrt(PPY_5M)  # annualised 0.5, per bar
    ours_b = m.probabilistic_sharpe_ratio(r, bench)
    for i, row in enumerate(r):
        sr = row.mean() / row.std(ddof=1)
        skew, kurt = stats.skew(row), stats.kurtosis(row, fisher=False)
        assert ours[i] == pytest.approx(psr_direct(sr, len(row), skew, kurt), rel=1e-9, abs=1e-12)
        assert ours_b[i] == pytest.approx(psr_direct(sr, len(row), skew, kurt, bench), rel=1e-9, abs=1e-12)
    assert not np.allclose(ours, ours_b)


def test_psr_per_agent_benchmark():
    r = realistic_returns(3, 100, seed=9)
    bench = np.array([0.0, 0.05, -0.05])
    together = m.probabilistic_sharpe_ratio(r, bench)
    for i in range(3):
        assert together[i] == m.probabilistic_sharpe_ratio(r[i], bench[i])
    with pytest.raises(MetricsError):
        m.probabilistic_sharpe_ratio(r, np.zeros(2))
    with pytest.raises(MetricsError):
        m.probabilistic_sharpe_ratio(r[0], np.zeros(3))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float64, st.integers(3, 80), elements=ret_elem))
def test_psr_matches_scipy_property(r):
    assume(r.max() != r.min())
    sr = r.mean() / r.std(ddof=1)
    skew, kurt = stats.skew(r), stats.kurtosis(r, fisher=False)
    expected = psr_direct(sr, len(r), skew, kurt)
    ours = m.probabilistic_sharpe_ratio(r)
    assert 0.0 <= ours <= 1.0
    assert ours == pytest.approx(expected, rel=1e-7, abs=1e-9)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix, st.floats(-0.5, 0.5), st.floats(0.0, 0.5))
def test_psr_bounded_and_decreasing_in_benchmark(r, b, step):
    low = m.probabilistic_sharpe_ratio(r, b)
    high = m.probabilistic_sharpe_ratio(r, b + step)
    assert ((low >= 0) & (low <= 1)).all()
    assert (high <= low + 1e-12).all()


def test_psr_degenerate_cases():
    assert m.probabilistic_sharpe_ratio(np.array([0.01, 0.02])) == 0.0  # n < 3
    assert m.probabilistic_sharpe_ratio(np.array([])) == 0.0
    assert m.probabilistic_sharpe_ratio(np.zeros(50)) == 0.0  # never traded
    assert m.probabilistic_sharpe_ratio(np.full(50, 0.001)) == 0.0  # zero variance
    assert m.probabilistic_sharpe_ratio(np.full(7, 0.1)) == 0.0  # float std residue ~1e-17
    assert m.probabilistic_sharpe_ratio(np.full(50, 0.001), -1.0) == 0.0
    assert m.psr_from_moments(0.5, 2, 0.0, 3.0) == 0.0
    # radicand 1 - 3*1 + 0 = -2 < 0: limit by the sign of SR - SR*
    assert m.psr_from_moments(1.0, 10, 3.0, 1.0) == 1.0
    assert m.psr_from_moments(1.0, 10, 3.0, 1.0, 1.0) == 0.5
    assert m.psr_from_moments(1.0, 10, 3.0, 1.0, 2.0) == 0.0
    # radicand exactly 0: 1 - 1*2 + (2 - 1)/4 * 4 = 0
    assert m.psr_from_moments(2.0, 10, 1.0, 2.0) == 1.0
    # vectorised
    out = m.psr_from_moments(np.array([0.1, 1.0]), 100, np.array([-0.5, 3.0]), np.array([4.0, 1.0]))
    np.testing.assert_allclose(out, [psr_direct(0.1, 100, -0.5, 4.0), 1.0])
    # excess kurtosis by mistake, NaN
    with pytest.raises(MetricsError):
        m.psr_from_moments(0.1, 100, 0.0, 0.0)
    with pytest.raises(MetricsError):
        m.psr_from_moments(float("nan"), 100, 0.0, 3.0)


def test_psr_real_sample_radicand_never_negative():
    # a two-point sample sits on Pearson's boundary kurtosis = 1 + skew^2
    r = np.array([0.005, 0.005, 0.005, 0.015])
    skew, kurt = stats.skew(r), stats.kurtosis(r, fisher=False)
    assert kurt == pytest.approx(1 + skew**2, rel=1e-12)
    out = m.probabilistic_sharpe_ratio(r)
    assert 0.0 <= out <= 1.0
    assert out == pytest.approx(psr_direct(r.mean() / r.std(ddof=1), 4, skew, kurt), rel=1e-9)
