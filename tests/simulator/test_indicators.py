"""Indicator kernels vs TA-Lib on real bars, hand-worked examples, NaN handling
and causality (simulator/indicators.py)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from simulator import indicators as ind

RTOL = 1e-9  # the agreement the module promises with TA-Lib


def assert_matches(mine: np.ndarray, ref: np.ndarray, rtol: float = RTOL, atol: float = 0.0) -> None:
    """Same NaN pattern, and |mine - ref| <= atol + rtol * |ref| elsewhere."""
    assert mine.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref))
    ok = ~np.isnan(ref)
    assert ok.any()
    np.testing.assert_allclose(mine[ok], ref[ok], rtol=rtol, atol=atol)


def per_column(fn, *arrays):
    """Apply a 1-D TA-Lib function column by column -> (T, S) (or tuple of them)."""
    cols = [fn(*(a[:, s] for a in arrays)) for s in range(arrays[0].shape[1])]
    if isinstance(cols[0], tuple):
        return tuple(np.stack([c[i] for c in cols], axis=1) for i in range(len(cols[0])))
    return np.stack(cols, axis=1)


def nan_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


# --------------------------------------------------------------------------
# agreement with TA-Lib on real bars
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 20, 288])
def test_sma_matches_talib(binance_bars, n):
    c = binance_bars["close"]
    assert_matches(ind.sma(c, n), per_column(lambda x: talib.SMA(x, n), c))


@pytest.mark.parametrize("n", [2, 12, 100])
def test_ema_matches_talib(binance_bars, n):
    c = binance_bars["close"]
    assert_matches(ind.ema(c, n), per_column(lambda x: talib.EMA(x, n), c))


@pytest.mark.parametrize("fast,slow,signal", [(12, 26, 9), (3, 10, 5), (2, 3, 1), (20, 100, 30)])
def test_macd_matches_talib(binance_bars, fast, slow, signal):
    c = binance_bars["close"]
    ref = per_column(lambda x: talib.MACD(x, fast, slow, signal), c)
    # MACD values cross zero, so relative error alone is meaningless near 0:
    # allow an absolute 1e-9 of the price level on top.
    atol = 1e-9 * float(np.median(np.abs(c)))
    for mine, theirs in zip(ind.macd(c, fast, slow, signal), ref):
        assert_matches(mine, theirs, atol=atol)


@pytest.mark.parametrize("n", [2, 14, 50])
def test_rsi_matches_talib(binance_bars, n):
    c = binance_bars["close"]
    assert_matches(ind.rsi(c, n), per_column(lambda x: talib.RSI(x, n), c))


@pytest.mark.parametrize("n,k", [(20, 2.0), (5, 1.5), (100, 3.0), (30, 1.0)])
def test_bollinger_matches_talib(binance_bars, n, k):
    c = binance_bars["close"]
    ref = per_column(lambda x: talib.BBANDS(x, n, k, k, 0), c)
    for mine, theirs in zip(ind.bollinger(c, n, k), ref):
        assert_matches(mine, theirs)


@pytest.mark.parametrize("n", [5, 20, 100])
def test_rolling_std_matches_talib_and_exact_two_pass(binance_bars, n):
    c = binance_bars["close"]
    mine = ind.rolling_std(c, n)
    # TA-Lib's STDDEV uses E[x^2] - E[x]^2, which itself is off by ~1e-14 of the
    # price level on BTC-quoted prices, so compare with an absolute tolerance
    # in price units; the exact two-pass reference is held to a tighter one.
    level = np.abs(c).max(axis=0)
    ref_talib = per_column(lambda x: talib.STDDEV(x, n, 1), c)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref_talib))
    ok = ~np.isnan(mine)
    assert np.all(np.abs(mine - ref_talib)[ok] <= (RTOL * np.abs(ref_talib) + 1e-12 * level)[ok])
    exact = np.full_like(c, np.nan)
    exact[n - 1 :] = sliding_window_view(c, n, axis=0).std(axis=-1)
    assert np.all(np.abs(mine - exact)[ok] <= (RTOL * exact + 1e-14 * level)[ok])


@pytest.mark.parametrize("n", [2, 20, 300])
def test_rolling_max_min_match_talib(binance_bars, n):
    h, lo = binance_bars["high"], binance_bars["low"]
    assert_matches(ind.rolling_max(h, n), per_column(lambda x: talib.MAX(x, n), h), rtol=0)
    assert_matches(ind.rolling_min(lo, n), per_column(lambda x: talib.MIN(x, n), lo), rtol=0)


@pytest.mark.parametrize("n", [1, 3, 55])
def test_donchian_is_talib_max_min_of_previous_bars(binance_bars, n):
    h, lo = binance_bars["high"], binance_bars["low"]
    up, dn = ind.donchian(h, lo, n)
    ref_up = np.full_like(h, np.nan)
    ref_dn = np.full_like(lo, np.nan)
    ref_up[1:] = per_column(lambda x: talib.MAX(x, n), h)[:-1] if n > 1 else h[:-1]
    ref_dn[1:] = per_column(lambda x: talib.MIN(x, n), lo)[:-1] if n > 1 else lo[:-1]
    assert_matches(up, ref_up, rtol=0)
    assert_matches(dn, ref_dn, rtol=0)
    assert np.isnan(up[:n]).all() and not np.isnan(up[n:]).any()


@pytest.mark.parametrize("n", [1, 12, 200])
def test_vwap_matches_direct_window_sums(binance_bars, n):
    h, lo, c, v = (binance_bars[k].copy() for k in ("high", "low", "close", "volume"))
    v[1000:1030, 3] = 0.0  # a stretch without trades on one symbol
    mine = ind.rolling_vwap(h, lo, c, v, n)
    tp = (h + lo + c) / 3.0
    num = sliding_window_view(tp * v, n, axis=0).sum(axis=-1)
    den = sliding_window_view(v, n, axis=0).sum(axis=-1)
    ref = np.full_like(c, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref[n - 1 :] = np.where(den > 0, num / den, np.nan)
    assert_matches(mine, ref, rtol=1e-12)
    if n <= 30:  # windows entirely inside the zero-volume stretch are undefined
        assert np.isnan(mine[1000 + n - 1 : 1030, 3]).all()
        assert not np.isnan(mine[1030 + n - 1 :, 3]).any()


def test_many_variants_equal_single_calls(binance_bars):
    """State is reset between configurations of a *_many call."""
    c, h, lo, v = (binance_bars[k][:1500] for k in ("close", "high", "low", "volume"))
    windows = [30, 5, 30, 2, 77]
    for many, one in (
        (ind.sma_many, ind.sma),
        (ind.ema_many, ind.ema),
        (ind.rsi_many, ind.rsi),
        (ind.rolling_std_many, ind.rolling_std),
        (ind.rolling_max_many, ind.rolling_max),
        (ind.rolling_min_many, ind.rolling_min),
    ):
        out = many(c, windows)
        for i, w in enumerate(windows):
            assert nan_equal(out[i], one(c, w)), many.__name__
    vw = ind.vwap_many(h, lo, c, v, windows)
    up, dn = ind.donchian_many(h, lo, windows)
    for i, w in enumerate(windows):
        assert nan_equal(vw[i], ind.rolling_vwap(h, lo, c, v, w))
        u1, d1 = ind.donchian(h, lo, w)
        assert nan_equal(up[i], u1) and nan_equal(dn[i], d1)
    line, sig, hist = ind.macd_many(c, [3, 12, 3], [10, 26, 10], [5, 9, 2])
    hist_only = ind.macd_hist_many(c, [3, 12, 3], [10, 26, 10], [5, 9, 2])
    for i, (f, s, g) in enumerate([(3, 10, 5), (12, 26, 9), (3, 10, 2)]):
        one = ind.macd(c, f, s, g)
        assert nan_equal(line[i], one[0]) and nan_equal(sig[i], one[1]) and nan_equal(hist[i], one[2])
        assert nan_equal(hist_only[i], one[2])


# --------------------------------------------------------------------------
# hand-worked examples
# --------------------------------------------------------------------------

NAN = np.nan


def test_sma_hand_example():
    np.testing.assert_allclose(ind.sma([1.0, 2, 3, 4, 5], 3), [NAN, NAN, 2, 3, 4])


def test_ema_hand_example():
    # alpha = 2/(2+1); seed at bar 1 = mean(2, 4) = 3; then 3 + (6-3)*2/3 = 5, ...
    np.testing.assert_allclose(ind.ema([2.0, 4, 6, 8, 4], 2), [NAN, 3, 5, 7, 5])


def test_macd_hand_example():
    # fast=2 (alpha 2/3), slow=3 (alpha 1/2), signal=2 (alpha 2/3), both EMAs
    # seeded at bar 2: slow = mean(1, 2, 4) = 7/3, fast = mean(2, 4) = 3.
    line, sig, hist = ind.macd([1.0, 2, 4, 8, 16, 0], 2, 3, 2)
    F = Fraction
    exp_line = [F(7, 6), F(79, 36), F(-223, 216)]
    exp_sig = [F(11, 12), F(191, 108), F(-8, 81)]
    assert np.isnan(line[:3]).all() and np.isnan(sig[:3]).all() and np.isnan(hist[:3]).all()
    np.testing.assert_allclose(line[3:], [float(v) for v in exp_line], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sig[3:], [float(v) for v in exp_sig], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hist[3:], [float(a - b) for a, b in zip(exp_line, exp_sig)], rtol=1e-12, atol=1e-14)


def test_rsi_hand_example():
    # moves +1 +1 -1 +2; n=2: avg gain/loss at bar 2 = 1/0 -> 100; then Wilder:
    # bar 3: gain 0.5, loss 0.5 -> 50; bar 4: gain 1.25, loss 0.25 -> 83.33
    np.testing.assert_allclose(ind.rsi([1.0, 2, 3, 2, 4], 2), [NAN, NAN, 100, 50, 100 * 1.25 / 1.5])


def test_rsi_flat_start_is_neutral_50_where_talib_says_0():
    x = np.array([5.0, 5, 5, 5, 6, 5])
    mine = ind.rsi(x, 3)
    assert mine[3] == 50.0 and talib.RSI(x, 3)[3] == 0.0
    np.testing.assert_allclose(mine[4:], talib.RSI(x, 3)[4:], rtol=RTOL)


def test_bollinger_and_std_hand_example():
    up, mid, lo = ind.bollinger([1.0, 2, 3, 4], 2, 2.0)
    np.testing.assert_allclose(mid, [NAN, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(up, [NAN, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(lo, [NAN, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(ind.rolling_std([1.0, 2, 3, 4], 2), [NAN, 0.5, 0.5, 0.5])
    # a constant window has exactly zero deviation, even after a volatile stretch
    x = np.r_[np.linspace(1e-5, 3e-5, 50), np.full(10, 2.123456789e-5)]
    assert (ind.rolling_std(x, 5)[-6:] == 0.0).all()


def test_donchian_hand_example():
    high = [3.0, 5, 4, 6, 2]
    low = [1.0, 2, 0, 3, 1]
    up, dn = ind.donchian(high, low, 2)
    np.testing.assert_array_equal(up, [NAN, NAN, 5, 5, 6])
    np.testing.assert_array_equal(dn, [NAN, NAN, 1, 0, 0])


def test_vwap_hand_example():
    p = np.array([10.0, 20, 30, 40, 50])
    vol = np.array([1.0, 3, 0, 0, 2])
    # n=2, typical price = p (h = l = c): bar 1 = (10*1 + 20*3)/4, bar 2 = 20,
    # bar 3 has no volume in its window -> NaN, bar 4 = 50
    np.testing.assert_allclose(ind.rolling_vwap(p, p, p, vol, 2), [NAN, 17.5, 20, NAN, 50])


# --------------------------------------------------------------------------
# NaN handling, causality, shapes, errors
# --------------------------------------------------------------------------


def _with_leading_nans(c: np.ndarray) -> np.ndarray:
    x = c[:800].copy()
    for s in range(x.shape[1]):
        x[: 7 * s, s] = np.nan  # 0, 7, 14, ... leading NaNs per column
    return x


def test_leading_nans_are_skipped_like_talib(binance_bars):
    x = _with_leading_nans(binance_bars["close"])
    assert_matches(ind.sma(x, 10), per_column(lambda a: talib.SMA(a, 10), x))
    assert_matches(ind.ema(x, 10), per_column(lambda a: talib.EMA(a, 10), x))
    assert_matches(ind.rsi(x, 10), per_column(lambda a: talib.RSI(a, 10), x))
    assert_matches(ind.rolling_max(x, 10), per_column(lambda a: talib.MAX(a, 10), x), rtol=0)
    for mine, ref in zip(ind.bollinger(x, 10, 2.0), per_column(lambda a: talib.BBANDS(a, 10, 2, 2, 0), x)):
        assert_matches(mine, ref)
    atol = 1e-9 * float(np.nanmedian(np.abs(x)))
    for mine, ref in zip(ind.macd(x, 4, 9, 3), per_column(lambda a: talib.MACD(a, 4, 9, 3), x)):
        assert_matches(mine, ref, atol=atol)


def test_leading_nan_region_lengths(binance_bars):
    c = binance_bars["close"][:300]
    n = 14
    assert np.isnan(ind.sma(c, n)[: n - 1]).all() and not np.isnan(ind.sma(c, n)[n - 1 :]).any()
    assert np.isnan(ind.ema(c, n)[: n - 1]).all() and not np.isnan(ind.ema(c, n)[n - 1 :]).any()
    assert np.isnan(ind.rsi(c, n)[:n]).all() and not np.isnan(ind.rsi(c, n)[n:]).any()
    line = ind.macd(c, 5, 13, 4)[0]
    assert np.isnan(line[: 13 + 4 - 2]).all() and not np.isnan(line[13 + 4 - 2 :]).any()
    assert np.isnan(ind.rolling_std(c, n)[: n - 1]).all()


def test_interior_nan_poisons_windows_then_recovers():
    x = np.arange(1.0, 21.0)
    x[8] = np.nan
    m = ind.sma(x, 3)
    assert np.isnan(m[8:11]).all() and m[11] == pytest.approx((10 + 11 + 12) / 3)
    assert np.isnan(ind.rolling_max(x, 3)[8:11]).all() and ind.rolling_max(x, 3)[11] == 12
    sd = ind.rolling_std(x, 3)
    assert np.isnan(sd[8:11]).all() and sd[11] == pytest.approx(np.std([10, 11, 12]))
    assert np.isnan(ind.ema(x, 3)[8:]).all()  # recursive: NaN from there on


def _all_indicators(h, lo, c, v):
    out = {
        "sma": ind.sma(c, 20),
        "ema": ind.ema(c, 20),
        "rsi": ind.rsi(c, 14),
        "std": ind.rolling_std(c, 20),
        "max": ind.rolling_max(h, 20),
        "min": ind.rolling_min(lo, 20),
        "vwap": ind.rolling_vwap(h, lo, c, v, 20),
    }
    out.update(zip(("bb_up", "bb_mid", "bb_lo"), ind.bollinger(c, 20, 2.0)))
    out.update(zip(("macd", "macd_sig", "macd_hist"), ind.macd(c, 12, 26, 9)))
    out.update(zip(("don_up", "don_lo"), ind.donchian(h, lo, 20)))
    return out


@pytest.mark.parametrize("nan_later", [False, True])
def test_causal_prefix_gives_identical_values(binance_bars, nan_later):
    """Computing on the first k bars gives exactly the first k values, even when
    a NaN (or anything else) appears only after bar k."""
    h, lo, c, v = (binance_bars[k][:2000].copy() for k in ("high", "low", "close", "volume"))
    if nan_later:
        for a in (h, lo, c, v):
            a[1500, 2] = np.nan
    full = _all_indicators(h, lo, c, v)
    for k in (1, 19, 20, 35, 700, 1499):
        part = _all_indicators(h[:k], lo[:k], c[:k], v[:k])
        for name in full:
            assert nan_equal(part[name], full[name][:k]), (name, k)


def test_one_dimensional_input_gives_one_dimensional_output(binance_bars):
    c = binance_bars["close"]
    assert ind.sma(c[:, 0], 5).shape == (len(c),)
    assert nan_equal(ind.sma(c[:, 0], 5), ind.sma(c, 5)[:, 0])
    assert ind.rsi_many(c[:, 0], [3, 4]).shape == (2, len(c))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ind.sma(np.ones(5), 0), "window=0"),
        (lambda: ind.ema(np.ones(5), 2.5), "2.5"),
        (lambda: ind.rsi(np.ones((2, 2, 2)), 3), "shape"),
        (lambda: ind.macd(np.ones(50), 26, 12, 9), "fast=26 slow=12"),
        (lambda: ind.bollinger(np.ones(5), 3, -1.0), "k=-1.0"),
        (lambda: ind.donchian(np.ones((5, 2)), np.ones((5, 3)), 2), "shape"),
        (lambda: ind.rolling_vwap(np.ones(5), np.ones(5), np.ones(5), -np.ones(5), 2), "volume"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
