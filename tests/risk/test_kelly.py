"""Kelly leverage and pooled moments of risk.kelly against hand-worked numbers and numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from risk.kelly import KellyEstimate, PooledMoments, kelly_leverage, pooled_moments
from risk.var import RiskInputError


def test_kelly_hand_worked():
    # returns earned at 2x gross exposure: mean 0.001, variance 0.0004 per bar.
    # Per unit of exposure: mean 0.001 / 2 = 0.0005, variance 0.0004 / 4 = 0.0001
    # full Kelly = 0.0005 / 0.0001 = 5; half Kelly = 2.5
    k = kelly_leverage(0.001, 0.0004, 2.0, n_bars=500)
    assert isinstance(k, KellyEstimate)
    assert k.full == pytest.approx(5.0, rel=1e-12)
    assert k.fractional == pytest.approx(2.5, rel=1e-12)
    assert (k.fraction, k.mean, k.var, k.exposure, k.n_bars, k.note) == (0.5, 0.001, 0.0004, 2.0, 500, None)
    # quarter Kelly at 1x exposure: 0.25 * 1 * 0.0002 / 0.0001 = 0.5
    q = kelly_leverage(0.0002, 0.0001, 1.0, fraction=0.25)
    assert q.full == pytest.approx(2.0, rel=1e-12) and q.fractional == pytest.approx(0.5, rel=1e-12)
    assert q.n_bars is None


def test_kelly_maximises_approximate_growth():
    # independent check: maximise g(f) = f mu_u - f^2 sigma_u^2 / 2 numerically
    mean, var, exposure = 0.0003, 0.00005, 1.5
    mu_u, var_u = mean / exposure, var / exposure**2
    res = optimize.minimize_scalar(lambda f: -(f * mu_u - f * f * var_u / 2), bounds=(0, 100), method="bounded",
                                   options={"xatol": 1e-10})
    k = kelly_leverage(mean, var, exposure, fraction=1.0)
    assert k.full == pytest.approx(res.x, rel=1e-6)
    assert k.fractional == k.full


@pytest.mark.parametrize("mean", [-0.001, 0.0])
def test_kelly_no_edge_is_zero(mean):
    k = kelly_leverage(mean, 0.0004, 2.0, n_bars=100)
    assert k.fractional == 0.0
    assert k.full == pytest.approx(2.0 * mean / 0.0004)
    assert "no positive edge" in k.note


@pytest.mark.parametrize("args, kwargs, why", [
    ((0.001, 0.0, 1.0), {}, "variance is 0"),
    ((0.001, 0.0004, 0.0), {}, "exposure was 0"),
    ((0.001, 0.0004, 1.0), {"n_bars": 1}, "1 bar"),
    ((0.001, float("nan"), 1.0), {"n_bars": 0}, "0 bar"),  # a 1-bar variance is NaN: still not an error
])
def test_kelly_not_estimable(args, kwargs, why):
    k = kelly_leverage(*args, **kwargs)
    assert k.full is None and k.fractional is None
    assert why in k.note and k.note.startswith("not estimable")


@pytest.mark.parametrize("args, kwargs, match", [
    ((float("nan"), 0.0004, 1.0), {}, "mean"),
    ((0.001, -0.0004, 1.0), {}, "var"),
    ((0.001, float("inf"), 1.0), {}, "var"),
    ((0.001, 0.0004, -1.0), {}, "exposure"),
    ((0.001, 0.0004, 1.0), {"fraction": 0.0}, "fraction"),
    ((0.001, 0.0004, 1.0), {"fraction": 1.5}, "fraction"),
    ((0.001, 0.0004, 1.0), {"n_bars": -3}, "n_bars"),
    ((0.001, 0.0004, 1.0), {"n_bars": 2.5}, "n_bars"),
])
def test_kelly_rejects_bad_input(args, kwargs, match):
    with pytest.raises(RiskInputError, match=match):
        kelly_leverage(*args, **kwargs)


def test_kelly_to_dict():
    d = kelly_leverage(0.001, 0.0004, 2.0, n_bars=10).to_dict()
    assert d["full"] == pytest.approx(5.0) and d["n_bars"] == 10
    assert kelly_leverage(0.001, float("nan"), 1.0, n_bars=1).to_dict()["var"] is None


# --------------------------------------------------------------------------- pooled moments


def test_pooled_moments_equal_concatenation():
    rng = np.random.default_rng(5)
    periods = [rng.normal(0.001, 0.01, 17), rng.normal(-0.002, 0.03, 40), np.array([0.05]),
               np.array([]), rng.normal(0.0, 0.005, 3)]
    means = [p.mean() if p.size else np.nan for p in periods]
    variances = [p.var(ddof=1) if p.size > 1 else np.nan for p in periods]
    counts = [p.size for p in periods]
    allr = np.concatenate(periods)
    out = pooled_moments(means, variances, counts)
    assert isinstance(out, PooledMoments)
    assert out.n_bars == allr.size == 61
    assert out.mean == pytest.approx(np.mean(allr), rel=1e-12)
    assert out.var == pytest.approx(np.var(allr, ddof=1), rel=1e-12)


def test_pooled_moments_hand_worked():
    # period A: [1, 3] -> mean 2, var 2; period B: [5, 7, 9] -> mean 7, var 4
    # N = 5, mean = (2*2 + 3*7) / 5 = 5; within = 1*2 + 2*4 = 10; between = 2*9 + 3*4 = 30
    # var = 40 / 4 = 10   (np.var([1,3,5,7,9], ddof=1) = 10)
    m, v, n = pooled_moments([2.0, 7.0], [2.0, 4.0], [2, 3])
    assert (m, v, n) == (pytest.approx(5.0), pytest.approx(10.0), 5)


def test_pooled_moments_single_bar_and_feed_kelly():
    out = pooled_moments([0.01, np.nan], [np.nan, np.nan], [1, 0])
    assert out.mean == 0.01 and out.n_bars == 1 and math.isnan(out.var)
    k = kelly_leverage(out.mean, out.var, 1.0, n_bars=out.n_bars)
    assert k.fractional is None


@pytest.mark.parametrize("means, variances, counts, match", [
    ([0.1, 0.2], [0.1], [2, 2], "shapes"),
    ([0.1], [0.1], [-1], "counts"),
    ([0.1], [0.1], [2.5], "counts"),
    ([0.1], [0.1], [0], "no bars"),
    ([np.nan], [0.1], [3], "means"),
    ([0.1], [-0.1], [3], "variances"),
    ([0.1], [np.nan], [3], "variances"),
])
def test_pooled_moments_rejects_bad_input(means, variances, counts, match):
    with pytest.raises(RiskInputError, match=match):
        pooled_moments(means, variances, counts)
