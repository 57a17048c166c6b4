"""Tests for simulator.synthetic: shapes, determinism, OHLC consistency and the model's laws."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.market import SYNTHETIC_LABEL
from simulator.synthetic import (
    DEFAULT_REGIMES,
    DEFAULT_SYMBOLS,
    Regime,
    synthetic_market,
    transition_matrix,
)

ONE = (Regime("only", drift_per_day=0.0, vol_per_day=0.02, mean_duration_hours=24.0),)
ARRAYS = ("open", "high", "low", "close", "volume", "tradable")


def test_defaults_shape_and_labels():
    m = synthetic_market()
    assert m.symbols == DEFAULT_SYMBOLS and len(m.symbols) == 3
    assert m.open.shape == (288, 3) and m.n_bars == 288 and m.warmup == 0
    assert m.quote == "USD" and m.source == SYNTHETIC_LABEL and m.synthetic
    assert m.label() == SYNTHETIC_LABEL
    assert m.timeframe_s == 300 and m.timeframe == "5m"
    assert m.timestamps.dtype == np.dtype("datetime64[ns]")
    assert m.timestamps[0] == np.datetime64("2024-01-01T00:00", "ns")
    assert np.all(np.diff(m.timestamps).astype("int64") == 300 * 10**9)
    assert m.tradable.dtype == np.bool_ and m.tradable.all()
    for name in ARRAYS[:-1]:
        arr = getattr(m, name)
        assert arr.dtype == np.float64 and arr.flags.c_contiguous and np.isfinite(arr).all()
    assert m.meta["regime"].shape == (288,)
    assert m.meta["regime_names"] == ("calm", "trend_up", "trend_down", "volatile")


def test_warmup_bars_come_before_start():
    m = synthetic_market(bars=100, warmup_bars=20, timeframe_s=60, start="2024-03-01T12:00")
    assert m.n_bars == 120 and m.warmup == 20 and m.n_trading_bars == 100
    assert m.timestamps[20] == np.datetime64("2024-03-01T12:00", "ns")
    assert m.timestamps[0] == np.datetime64("2024-03-01T11:40", "ns")


def test_same_seed_same_arrays_different_seed_different():
    a = synthetic_market(seed=7, bars=500)
    b = synthetic_market(seed=7, bars=500)
    c = synthetic_market(seed=8, bars=500)
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.meta["regime"], b.meta["regime"])
    assert not np.array_equal(a.close, c.close)
    assert not np.array_equal(a.volume, c.volume)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ohlc_consistent_and_positive(seed):
    m = synthetic_market(seed=seed, bars=5000, jump_intensity=20.0, jump_std=0.05, vol_scale=3.0)
    assert np.all(m.low > 0) and np.all(m.volume > 0)
    assert np.all(m.low <= np.minimum(m.open, m.close))
    assert np.all(m.high >= np.maximum(m.open, m.close))


def test_zero_volatility_no_jumps_gives_flat_prices():
    m = synthetic_market(regimes=ONE, vol_scale=0.0, jump_intensity=0.0, base_price=[50.0, 100.0, 200.0])
    for name in ("open", "high", "low", "close"):
        assert np.allclose(getattr(m, name), [50.0, 100.0, 200.0], rtol=1e-12), name


def test_open_equals_previous_close_without_jumps():
    m = synthetic_market(bars=2000, jump_intensity=0.0)
    assert np.allclose(m.open[1:], m.close[:-1], rtol=1e-12)
    assert np.allclose(m.open[0], 100.0)


def test_diffusion_volatility_and_correlation_match_parameters():
    # one regime: log(C/O) ~ N(0, σ²Δ) with pairwise correlation ρ
    n, tf, sigma, rho = 40_000, 300, 0.02, 0.6
    m = synthetic_market(bars=n, timeframe_s=tf, regimes=ONE, jump_intensity=0.0, correlation=rho, seed=3)
    r = np.log(m.close / m.open)
    s = sigma * math.sqrt(tf / 86400)
    assert np.allclose(r.std(axis=0), s, rtol=0.03)
    c = np.corrcoef(r.T)
    assert np.allclose(c[np.triu_indices(3, 1)], rho, atol=0.03)
    # the maximum of a driftless Brownian motion over the bar has mean S·sqrt(2/π)
    # (reflection principle), independent of how the bridge was sampled
    up = np.log(m.high / m.open)
    down = np.log(m.open / m.low)
    assert up.mean() == pytest.approx(s * math.sqrt(2 / math.pi), rel=0.03)
    assert down.mean() == pytest.approx(s * math.sqrt(2 / math.pi), rel=0.03)
    # P(max >= x) = 2 P(W_end >= x) = 2 (1 - Φ(x/S)); at x = S: 2(1 - 0.8413) = 0.3173
    assert (up >= s).mean() == pytest.approx(0.3173, abs=0.01)


def test_jumps_are_gaps_with_the_given_rate_and_size():
    n, lam, jstd = 50_000, 24.0, 0.03  # Δ = 1/288 day -> P(jump) ≈ 1 - exp(-24/288) = 0.0800
    m = synthetic_market(
        bars=n, regimes=ONE, vol_scale=0.0, jump_intensity=lam, jump_std=jstd, symbols=("J_USD",), seed=5
    )
    gaps = np.log(m.open[1:, 0] / m.close[:-1, 0])
    hit = np.abs(gaps) > 1e-12
    assert hit.mean() == pytest.approx(1 - math.exp(-lam / 288), abs=0.005)
    # most bars with a jump have exactly one: size std ≈ jstd·sqrt(E[N | N >= 1])
    p = lam / 288
    e_n = p / (1 - math.exp(-p))
    assert gaps[hit].std() == pytest.approx(jstd * math.sqrt(e_n), rel=0.08)
    # with no diffusion, bars are flat between the jumps
    assert np.allclose(m.close, m.open, rtol=1e-12)


def test_regime_chain_persistence_and_effect():
    regs = (
        Regime("calm", 0.0, 0.01, mean_duration_hours=10.0, volume_mult=1.0),
        Regime("wild", 0.0, 0.08, mean_duration_hours=2.0, volume_mult=3.0),
    )
    m = synthetic_market(
        bars=60_000, regimes=regs, jump_intensity=0.0, volume_noise=0.0, volume_amplitude=0.0,
        volume_per_day=288_000.0, seed=11,
    )
    path = m.meta["regime"]
    # stationary share of time ∝ mean duration for a two-state chain: 10 / 12
    assert (path == 0).mean() == pytest.approx(10 / 12, abs=0.04)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, path, -1]) != 0))
    starts = path[np.r_[0, np.flatnonzero(np.diff(path) != 0) + 1]]
    # mean run length in bars ≈ 1 / (1 - exp(-Δ/D)) with Δ = 5 min
    assert runs[starts == 1].mean() == pytest.approx(1 / (1 - math.exp(-5 / 120)), rel=0.15)
    r = np.log(m.close / m.open)
    ratio = r[path == 1].std() / r[path == 0].std()
    assert ratio == pytest.approx(8.0, rel=0.05)
    # no noise, no seasonality: volume = V_day Δ g_k = 1000 g_k exactly
    assert np.allclose(m.volume, np.where(path == 1, 3000.0, 1000.0)[:, None], rtol=1e-12)


def test_transition_matrix_hand_values():
    a = transition_matrix(DEFAULT_REGIMES, 300)
    assert np.allclose(a.sum(axis=1), 1.0)
    # calm: D = 12 h, bar = 5 min -> stay = exp(-5/720); leaving mass split 1:1:1
    stay = math.exp(-5 / 720)
    assert a[0, 0] == pytest.approx(stay)
    assert a[0, 1] == pytest.approx((1 - stay) / 3)
    # volatile (D = 2 h) re-enters calm with weight 3 of 5
    stay_v = math.exp(-5 / 120)
    assert a[3, 0] == pytest.approx((1 - stay_v) * 3 / 5)


def test_explicit_transition_and_initial_regime():
    m = synthetic_market(transition=np.eye(4), initial_regime="volatile", bars=300)
    assert np.all(m.meta["regime"] == 3)
    m = synthetic_market(transition=np.eye(4), initial_regime=1, bars=300)
    assert np.all(m.meta["regime"] == 1)


def test_crash_regime_drives_prices_down():
    crash = (Regime("crash", drift_per_day=-2.0, vol_per_day=0.05, mean_duration_hours=1e6),)
    m = synthetic_market(regimes=crash, bars=288, jump_intensity=0.0, seed=1)
    # 1 day at -2 log-return/day: ~exp(-2) of the start
    assert np.allclose(m.close[-1] / 100.0, math.exp(-2.0), rtol=0.15)


def test_volume_seasonality_hand_values():
    # V_day Δ = 288000 / 288 = 1000 per bar; a = 0.5, peak 14:30 UTC, no noise
    m = synthetic_market(
        regimes=ONE, volume_per_day=288_000.0, volume_amplitude=0.5, volume_peak_hour=14.5,
        volume_noise=0.0, bars=288,
    )
    hours = (m.timestamps - m.timestamps[0]).astype("int64") / 3.6e12
    assert m.volume[hours == 14.5, 0] == pytest.approx(1500.0)
    assert m.volume[hours == 2.5, 0] == pytest.approx(500.0)
    assert m.volume[hours == 8.5, 0] == pytest.approx(1000.0)
    assert np.array_equal(m.volume[:, 0], m.volume[:, 1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bars": 0},
        {"timeframe_s": 0},
        {"warmup_bars": -1},
        {"symbols": ()},
        {"symbols": ("A_USD", "A_USD")},
        {"base_price": -1.0},
        {"vol_scale": -0.1},
        {"correlation": 1.5},
        {"jump_intensity": -1.0},
        {"volume_amplitude": 1.0},
        {"transition": np.ones((4, 4))},
        {"initial_regime": "nope"},
        {"initial_regime": 9},
        {"regimes": ()},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        synthetic_market(**kwargs)


def test_regime_validation():
    with pytest.raises(ValueError, match="vol_per_day"):
        Regime("x", vol_per_day=-0.1)
    with pytest.raises(ValueError, match="mean_duration_hours"):
        Regime("x", mean_duration_hours=0.0)
