"""VaR / CVaR of risk.var against hand-worked numbers, numpy quantiles and scipy distributions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from risk.var import (
    MIN_RETURNS,
    RiskInputError,
    cornish_fisher_cvar,
    cornish_fisher_var,
    cornish_fisher_z,
    historical_cvar,
    historical_var,
    sample_moments,
    value_at_risk,
)

# 40 returns -0.019, -0.018, ..., +0.020 in a shuffled order
KNOWN = np.random.default_rng(3).permutation(np.arange(-19, 21) / 1000.0)


# --------------------------------------------------------------------------- historical


def test_historical_var_cvar_hand_worked():
    # sorted x_(j) = (j - 19) / 1000, n = 40, numpy 'linear': h = (n - 1) p
    # level 0.95: p = 0.05, h = 1.95 -> x_(1) + 0.95 (x_(2) - x_(1)) = -0.018 + 0.00095 = -0.01705
    assert historical_var(KNOWN, 0.95) == pytest.approx(0.01705, abs=1e-12)
    assert historical_var(KNOWN, 0.95) == pytest.approx(-np.quantile(KNOWN, 0.05), abs=1e-15)
    # tail: returns <= -0.01705 are -0.019 and -0.018 -> mean -0.0185
    assert historical_cvar(KNOWN, 0.95) == pytest.approx(0.0185, abs=1e-12)
    # level 0.99: p = 0.01, h = 0.39 -> -0.019 + 0.39 * 0.001 = -0.01861; tail = {-0.019}
    assert historical_var(KNOWN, 0.99) == pytest.approx(0.01861, abs=1e-12)
    assert historical_cvar(KNOWN, 0.99) == pytest.approx(0.019, abs=1e-12)


def test_historical_sign_convention_gains_only():
    # every bar a gain: the "loss" quantile is negative (a gain of at least 0.1 %)
    r = np.linspace(0.001, 0.010, 40)
    assert historical_var(r, 0.95) < 0
    assert historical_var(r, 0.95) == pytest.approx(-np.quantile(r, 0.05))


NORMAL_MU, NORMAL_SIGMA = 0.0005, 0.01


@pytest.fixture(scope="module")
def normal_sample():
    return np.random.default_rng(20240101).normal(NORMAL_MU, NORMAL_SIGMA, 200_000)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_normal_sample_matches_analytic(normal_sample, level):
    a = 1 - level
    z = stats.norm.ppf(a)
    var_true = -(NORMAL_MU + z * NORMAL_SIGMA)
    es_true = -(NORMAL_MU - NORMAL_SIGMA * stats.norm.pdf(z) / a)
    # standard error of the sample quantile: sqrt(a (1 - a) / n) sigma / phi(z) ~ 5e-5 (0.95), 9e-5 (0.99)
    se_q = math.sqrt(a * (1 - a) / normal_sample.size) * NORMAL_SIGMA / stats.norm.pdf(z)
    assert historical_var(normal_sample, level) == pytest.approx(var_true, abs=5 * se_q)
    assert historical_cvar(normal_sample, level) == pytest.approx(es_true, abs=8 * se_q)
    # S ~ 0, K ~ 0 -> Cornish-Fisher collapses to the normal quantile
    assert cornish_fisher_var(normal_sample, level) == pytest.approx(var_true, abs=5 * se_q)
    assert cornish_fisher_cvar(normal_sample, level) == pytest.approx(es_true, abs=8 * se_q)


# --------------------------------------------------------------------------- Cornish-Fisher


def test_cornish_fisher_z_hand_worked():
    # level 0.99, S = -0.5, K = 3 (written out by hand):
    #   z    = norm.ppf(0.01)                 = -2.32634787404
    #   z^2  = 5.41189443105,  z^3 = -12.5899491042
    #   (z^2 - 1) S / 6     = 4.41189443105 * (-0.5) / 6            = -0.36765786925
    #   (z^3 - 3z) K / 24   = (-12.5899491042 + 6.97904362212) * 3/24 = -0.70136318526
    #   -(2z^3 - 5z) S^2/36 = -(-25.1798982084 + 11.6317393702) * 0.25/36 = +0.09408443637
    #   z_cf = -2.32634787404 - 0.36765786925 - 0.70136318526 + 0.09408443637 = -3.30128449218
    assert cornish_fisher_z(0.99, -0.5, 3.0) == pytest.approx(-3.30128449218, abs=1e-9)
    # zero skew and excess kurtosis: the plain normal quantile
    assert cornish_fisher_z(0.95, 0.0, 0.0) == pytest.approx(stats.norm.ppf(0.05), abs=1e-15)


@pytest.mark.parametrize("shape", [100.0, 400.0])
@pytest.mark.parametrize("level", [0.95, 0.99])
def test_cornish_fisher_z_approximates_gamma_quantile(shape, level):
    # Gamma(k): skewness 2/sqrt(k), excess kurtosis 6/k; its standardised quantile is
    # what the expansion approximates. It must be far closer than the normal quantile.
    exact = (stats.gamma.ppf(1 - level, shape) - shape) / math.sqrt(shape)
    cf = cornish_fisher_z(level, 2 / math.sqrt(shape), 6 / shape)
    normal = stats.norm.ppf(1 - level)
    assert abs(cf - exact) < 5e-4
    assert abs(cf - exact) < abs(normal - exact) / 100


@pytest.fixture(scope="module")
def skewed_sample():
    # 500 returns, left-skewed and fat-tailed: normal body plus occasional crashes
    rng = np.random.default_rng(11)
    r = rng.normal(0.001, 0.01, 500)
    crash = rng.random(500) < 0.04
    r[crash] -= rng.exponential(0.02, crash.sum())
    return r


def test_sample_moments_match_scipy(skewed_sample):
    mu, sigma, s, k = sample_moments(skewed_sample)
    assert mu == pytest.approx(np.mean(skewed_sample), rel=1e-12)
    assert sigma == pytest.approx(np.std(skewed_sample, ddof=1), rel=1e-12)
    assert s == pytest.approx(stats.skew(skewed_sample, bias=True), rel=1e-10)
    assert k == pytest.approx(stats.kurtosis(skewed_sample, fisher=True, bias=True), rel=1e-10)
    assert s < -0.3 and k > 1  # the sample really is skewed / fat-tailed


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_cornish_fisher_var_formula_on_sample(skewed_sample, level):
    mu = np.mean(skewed_sample)
    sigma = np.std(skewed_sample, ddof=1)
    s = stats.skew(skewed_sample)
    k = stats.kurtosis(skewed_sample)
    z = stats.norm.ppf(1 - level)
    zcf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    assert cornish_fisher_var(skewed_sample, level) == pytest.approx(-(mu + zcf * sigma), rel=1e-10)
    # negative skew + fat tails: a bigger loss than the normal VaR
    assert cornish_fisher_var(skewed_sample, level) > -(mu + z * sigma)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_cornish_fisher_cvar_is_tail_average_of_cf_quantile(skewed_sample, level):
    mu = np.mean(skewed_sample)
    sigma = np.std(skewed_sample, ddof=1)
    s = stats.skew(skewed_sample)
    k = stats.kurtosis(skewed_sample)

    def q(p):  # Cornish-Fisher quantile of the returns at tail probability p
        z = stats.norm.ppf(p)
        return mu + sigma * (z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24
                             - (2 * z**3 - 5 * z) * s**2 / 36)

    a = 1 - level
    integral, err = integrate.quad(q, 0.0, a, limit=400, epsabs=1e-13)
    assert cornish_fisher_cvar(skewed_sample, level) == pytest.approx(-integral / a, rel=1e-6)
    assert cornish_fisher_cvar(skewed_sample, level) > cornish_fisher_var(skewed_sample, level)


def test_constant_returns_zero_variance():
    r = np.full(50, 0.002)
    for f in (historical_var, historical_cvar, cornish_fisher_var, cornish_fisher_cvar):
        assert f(r, 0.95) == pytest.approx(-0.002, abs=1e-15)
    assert sample_moments(r) == (pytest.approx(0.002), 0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, float("nan"), "high", None])
@pytest.mark.parametrize("func", [historical_var, historical_cvar, cornish_fisher_var, cornish_fisher_cvar])
def test_level_outside_open_interval(func, level):
    with pytest.raises(RiskInputError, match="level"):
        func(KNOWN, level)


@pytest.mark.parametrize("func", [historical_var, historical_cvar, cornish_fisher_var, cornish_fisher_cvar])
def test_bad_returns(func):
    bad = KNOWN.copy()
    bad[5] = np.nan
    with pytest.raises(RiskInputError, match="NaN"):
        func(bad, 0.95)
    bad[5] = np.inf
    with pytest.raises(RiskInputError, match="NaN or inf"):
        func(bad, 0.95)
    with pytest.raises(RiskInputError, match=f"at least {MIN_RETURNS} returns, got {MIN_RETURNS - 1}"):
        func(KNOWN[: MIN_RETURNS - 1], 0.95)
    with pytest.raises(RiskInputError, match="shape"):
        func(KNOWN.reshape(4, 10), 0.95)
    assert issubclass(RiskInputError, ValueError)


def test_cornish_fisher_z_rejects_non_finite_moments():
    with pytest.raises(RiskInputError, match="skew"):
        cornish_fisher_z(0.95, float("nan"), 0.0)
    with pytest.raises(RiskInputError, match="excess_kurtosis"):
        cornish_fisher_z(0.95, 0.0, float("inf"))


# --------------------------------------------------------------------------- summary


def test_value_at_risk_summary(skewed_sample):
    out = value_at_risk(skewed_sample, 2_000.0, levels=(0.95, 0.99), window=300)
    assert out["horizon"] == "one bar"
    assert out["sample"] == {"n_returns": 300, "window_bars": 300, "min_returns": MIN_RETURNS}
    assert out["estimable"] is True and out["note"] is None
    assert out["bankroll"] == 2_000.0
    assert "300 returns" in out["description"] and "last 300 bars" in out["description"]
    rows = {(r["method"], r["level"]): r for r in out["estimates"]}
    assert set(rows) == {(m, lv) for m in ("historical", "cornish_fisher") for lv in (0.95, 0.99)}
    last = skewed_sample[-300:]
    for lv in (0.95, 0.99):
        h = rows[("historical", lv)]
        q = np.quantile(last, 1 - lv)
        assert h["var_fraction"] == pytest.approx(-q, rel=1e-12)
        assert h["cvar_fraction"] == pytest.approx(-last[last <= q].mean(), rel=1e-12)
        assert h["var_quote"] == pytest.approx(-q * 2_000.0, rel=1e-12)
        cf = rows[("cornish_fisher", lv)]
        assert cf["var_fraction"] == pytest.approx(cornish_fisher_var(last, lv), rel=1e-12)
        assert cf["cvar_quote"] == pytest.approx(cf["cvar_fraction"] * 2_000.0, rel=1e-12)
    import json
    json.dumps(out)  # JSON-ready


def test_value_at_risk_whole_series_and_long_window(skewed_sample):
    full = value_at_risk(skewed_sample, 100.0)
    assert full["sample"]["n_returns"] == 500 and full["sample"]["window_bars"] is None
    longer = value_at_risk(skewed_sample, 100.0, window=10_000)
    assert longer["sample"]["n_returns"] == 500
    assert longer["estimates"] == full["estimates"]


def test_value_at_risk_too_few_returns_is_not_estimable():
    out = value_at_risk(KNOWN[:10], 1_000.0)
    assert out["estimable"] is False
    assert "at least 30" in out["note"] and "10" in out["note"]
    assert all(r["var_fraction"] is None and r["cvar_quote"] is None for r in out["estimates"])


@pytest.mark.parametrize("kwargs, match", [
    ({"bankroll": 0.0}, "bankroll"),
    ({"bankroll": -5.0}, "bankroll"),
    ({"bankroll": float("nan")}, "bankroll"),
    ({"bankroll": 100.0, "window": 0}, "window"),
    ({"bankroll": 100.0, "window": 2.5}, "window"),
    ({"bankroll": 100.0, "levels": (0.95, 1.0)}, "level"),
    ({"bankroll": 100.0, "levels": ()}, "level"),
])
def test_value_at_risk_errors(kwargs, match):
    with pytest.raises(RiskInputError, match=match):
        value_at_risk(KNOWN, **kwargs)
