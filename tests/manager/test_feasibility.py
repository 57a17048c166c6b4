"""The feasibility figures against independent computations: the exact probability by
enumerating every path of a small case (hand-worked), a separate resampler (Python's
``random``, not numpy) for the band and a larger case, and risk.var's definitions."""
from __future__ import annotations

import itertools
import math
import random
import statistics

import numpy as np
import pytest

from manager import feasibility as F


def ev(returns, market="m/5m/USD"):
    return F.Evidence(market, np.array(returns, dtype=float),
                      [{"run_id": f"r{i}", "day": f"2018-01-{10 + i:02d}", "roi": r} for i, r in enumerate(returns)])


def test_required_daily_return():
    assert F.required_daily_return(0.10, 1) == pytest.approx(0.10)
    assert F.required_daily_return(0.21, 2) == pytest.approx(0.10)
    assert F.required_daily_return(0.0, 5) == 0.0
    with pytest.raises(ValueError):
        F.required_daily_return(0.1, 0)


def test_hand_worked_two_day_case():
    # evidence -1 % and +2 %; the target +4.04 % in 2 days needs +2 % both days: p = 1/2 * 1/2 = 1/4
    out = F.assess(ev([-0.01, 0.02, -0.01, 0.02]), bankroll=1000, target_return=1.02 ** 2 - 1, days=2,
                   n_paths=40_000, seed=11)
    assert out["probability"] == pytest.approx(0.25, abs=0.01)  # 4 sigma of sqrt(.25*.75/40000)
    assert out["required_daily_return"] == pytest.approx(0.02)
    # the expected equity after day 1: 1000 * (1 + mean) exactly in expectation
    assert out["path"][0]["expected"] == pytest.approx(1000 * 1.005, abs=0.2)
    assert out["verdict"] == "feasible"


def test_probability_matches_exhaustive_enumeration():
    rets = [-0.02, -0.005, 0.001, 0.004, 0.012]
    days, target = 3, 0.01
    hits = sum(1 for path in itertools.product(rets, repeat=days) if math.prod(1 + r for r in path) >= 1 + target)
    exact = hits / len(rets) ** days
    out = F.assess(ev(rets), bankroll=500, target_return=target, days=days, n_paths=50_000, seed=3)
    assert out["probability"] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 50_000))


def test_band_and_final_against_a_separate_resampler():
    rng = random.Random(12345)
    rets = [rng.gauss(0.001, 0.01) for _ in range(40)]
    days, n = 10, 20_000
    out = F.assess(ev(rets), bankroll=1000, target_return=0.02, days=days, n_paths=n, seed=99)
    other = random.Random(777)
    finals = []
    for _ in range(n):
        eq = 1000.0
        for _ in range(days):
            eq *= 1 + other.choice(rets)
        finals.append(eq)
    finals.sort()
    q = lambda p: finals[int(p * (n - 1))]  # noqa: E731
    assert out["final"]["p05"] == pytest.approx(q(0.05), rel=0.01)
    assert out["final"]["p95"] == pytest.approx(q(0.95), rel=0.01)
    assert out["path"][-1]["expected"] == pytest.approx(statistics.fmean(finals), rel=0.003)
    assert out["probability"] == pytest.approx(sum(f >= 1020 for f in finals) / n, abs=0.02)
    # expected equity compounds the mean daily return (independent draws)
    assert out["path"][-1]["expected"] == pytest.approx(1000 * (1 + statistics.fmean(rets)) ** days, rel=0.003)


def test_var_is_the_evidence_quantile_scaled_by_the_tier():
    rets = list(np.linspace(-0.05, 0.05, 41))
    med = F.assess(ev(rets), bankroll=1000, target_return=0.0, days=1, n_paths=50_000, seed=1)
    low = F.assess(ev(rets), bankroll=1000, target_return=0.0, days=1, n_paths=50_000, seed=1, risk_appetite="low")
    var95 = -np.quantile(rets, 0.05)
    one = med["bankroll_at_risk"]["one_day"]["estimates"][0]
    assert one["level"] == 0.95 and one["var_fraction"] == pytest.approx(var95, abs=0.003)
    assert one["var_quote"] == pytest.approx(1000 * one["var_fraction"])
    assert low["leverage"]["tier"] == 1.0 and low["leverage"]["scale"] == 0.5
    assert low["bankroll_at_risk"]["one_day"]["estimates"][0]["var_fraction"] == pytest.approx(one["var_fraction"] / 2)


def test_refusal_thresholds_and_narrative():
    rets = [-0.003, 0.001, -0.001, 0.0005, -0.002, 0.001, -0.0015, 0.0]
    out = F.assess(ev(rets, "binance-5m|5m|BTC"), bankroll=1000, target_return=1.035 ** 3 - 1, days=3)
    assert out["verdict"] == "refused" and out["probability"] == 0.0
    assert out["narrative"].startswith("Refused: needs 3.50 %/day (10.87 % over 3 day(s)); 8 cohort days on "
                                       "binance-5m|5m|BTC returned -0.06 % +/- 0.15 %/day")
    assert "< 0.01 %" in out["narrative"]
    # 2.5 % probability: refused at medium (5 %), accepted at high (1 %)
    rets = [0.05] + [-0.001] * 39
    med = F.assess(ev(rets), bankroll=1000, target_return=0.04, days=1, n_paths=40_000, seed=2)
    high = F.assess(ev(rets), bankroll=1000, target_return=0.04, days=1, n_paths=40_000, seed=2, risk_appetite="high")
    assert med["probability"] == pytest.approx(0.025, abs=0.004)
    assert med["verdict"] == "refused" and high["verdict"] == "feasible"


def test_no_evidence_refuses():
    out = F.assess(ev([0.01, 0.02]), bankroll=1000, target_return=0.01, days=2)
    assert out["verdict"] == "refused" and out["probability"] is None and "no evidence" in out["reasons"][0]


def test_bootstrap_is_seeded():
    a = F.bootstrap([0.1, 0.2, 0.3], 4, n_paths=10, seed=5)
    assert np.array_equal(a, F.bootstrap([0.1, 0.2, 0.3], 4, n_paths=10, seed=5)) and a.shape == (10, 4)
