"""Tests of the return, ratio, drawdown and money metrics and the roll-ups of
simulator.metrics against independent implementations.

Sharpe, Sortino and max drawdown are compared with empyrical (which lays series
out as (T, N), hence the ``.T``); the hourly rollup with a hand-made example and
with pandas' resample. The Probabilistic and Deflated Sharpe Ratios are tested
in test_psr.py and test_dsr.py.
"""
from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simulator import metrics as m
from simulator.metrics import MetricsError
from tests.simulator.metric_samples import (PPY_5M, eq_ret_elem, equity_from_returns, realistic_returns,
                                            ret_matrix)


# --------------------------------------------------------------------------- bar_returns


def test_bar_returns_hand_example():
    eq = np.array([[110.0, 99.0, 99.0], [50.0, 0.0, 0.0]])
    r = m.bar_returns(eq, np.array([100.0, 100.0]))
    np.testing.assert_allclose(r, [[0.1, -0.1, 0.0], [-0.5, -1.0, 0.0]], rtol=0, atol=1e-15)


def test_bar_returns_one_dimensional_and_never_funded():
    np.testing.assert_allclose(m.bar_returns([105.0, 84.0], 100.0), [0.05, -0.2])
    assert m.bar_returns(np.zeros(4), 0.0).tolist() == [0.0] * 4


def test_bar_returns_from_zero_base_counts_as_zero():
    # clamped to 0 on a gap, then the liquidation fill recovers 5: no defined return
    np.testing.assert_allclose(m.bar_returns([100.0, 0.0, 5.0, 5.0], 100.0), [0.0, -1.0, 0.0, 0.0])
    assert m.bar_returns([0.0, 3.0], 0.0).tolist() == [0.0, 0.0]


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 50)), elements=eq_ret_elem),
    st.floats(1.0, 1e6),
)
def test_bar_returns_rebuild_equity(r, init):
    initial = np.full(r.shape[0], init)
    eq = equity_from_returns(r, initial)
    back = m.bar_returns(eq, initial)
    assert np.isfinite(back).all()
    np.testing.assert_allclose(equity_from_returns(back, initial), eq, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "equity, initial",
    [
        ([100.0, -1.0], 100.0),  # negative equity
        ([100.0, np.nan], 100.0),
        ([[1.0, 2.0]], [1.0, 2.0]),  # initial shape
        ([1.0, 2.0], [1.0]),  # 1-D needs a scalar initial
        (np.ones((2, 2, 2)), 1.0),
    ],
)
def test_bar_returns_rejects(equity, initial):
    with pytest.raises(MetricsError):
        m.bar_returns(equity, initial)


# --------------------------------------------------------------------------- Sharpe


def test_sharpe_matches_empyrical_on_realistic_series():
    r = realistic_returns(30, 288, seed=7)
    ours = m.sharpe_ratio(r, PPY_5M)
    ref = empyrical.sharpe_ratio(r.T, annualization=PPY_5M)
    assert ours.shape == (30,)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_sharpe_hand_example():
    r = np.array([0.01, -0.02, 0.03, 0.0])  # mean 0.005, std(ddof=1) = sqrt(0.00041667)
    expected = 0.005 / math.sqrt((0.005**2 + 0.025**2 + 0.025**2 + 0.005**2) / 3) * math.sqrt(252)
    assert m.sharpe_ratio(r, 252) == pytest.approx(expected, rel=1e-12)
    assert isinstance(m.sharpe_ratio(r, 252), float)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix)
def test_sharpe_matches_empyrical_property(r):
    ours = m.sharpe_ratio(r, 252)
    assert ours.shape == (r.shape[0],)
    assert np.isfinite(ours).all()
    if r.shape[1] < 2:
        assert (ours == 0.0).all()
        return
    ref = np.atleast_1d(empyrical.sharpe_ratio(r.T, annualization=252))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-9, atol=1e-9)
    assert (ours[~finite] == 0.0).all()


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix, st.floats(1e-3, 1e3))
def test_sharpe_scale_invariant_and_odd(r, c):
    base = m.sharpe_ratio(r, 252)
    np.testing.assert_allclose(m.sharpe_ratio(r * c, 252), base, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(m.sharpe_ratio(-r, 252), -base, rtol=1e-12, atol=1e-12)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix)
def test_rows_equal_single_series(r):
    for fn in (
        lambda x: m.sharpe_ratio(x, 252),
        lambda x: m.sortino_ratio(x, 252),
        m.probabilistic_sharpe_ratio,
        m.downside_deviation,
    ):
        rows = fn(r)
        singles = [fn(row) for row in r]
        assert all(isinstance(s, float) for s in singles)
        np.testing.assert_array_equal(rows, singles)


def test_sharpe_degenerate_cases():
    assert m.sharpe_ratio(np.array([]), 252) == 0.0
    assert m.sharpe_ratio(np.array([0.01]), 252) == 0.0
    # equal returns whose float std is a ~1e-17 residue, not 0: still 0.0
    assert np.full(7, 0.1).std(ddof=1) > 0
    assert m.sharpe_ratio(np.full(7, 0.1), 252) == 0.0
    assert m.sharpe_ratio(np.full((2, 288), 0.7), 252).tolist() == [0.0, 0.0]
    assert m.sharpe_ratio(np.zeros(10), 252) == 0.0
    assert m.sharpe_ratio(np.zeros((3, 0)), 252).tolist() == [0.0, 0.0, 0.0]
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(MetricsError):
            m.sharpe_ratio(np.array([0.1, 0.2]), bad)
    with pytest.raises(MetricsError):
        m.sharpe_ratio(np.array([0.1, np.inf]), 252)


# --------------------------------------------------------------------------- Sortino


def test_sortino_matches_empyrical_on_realistic_series():
    r = realistic_returns(30, 288, seed=11)
    ours = m.sortino_ratio(r, PPY_5M)
    ref = empyrical.sortino_ratio(r.T, annualization=PPY_5M)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)
    dd_ref = empyrical.downside_risk(r.T, annualization=PPY_5M)
    np.testing.assert_allclose(m.downside_deviation(r) * math.sqrt(PPY_5M), dd_ref, rtol=1e-10)


def test_sortino_hand_example():
    r = np.array([0.02, -0.01, 0.03, -0.02])
    # mean 0.005; downside deviation sqrt((0.01^2 + 0.02^2) / 4) = sqrt(0.000125)
    expected = 0.005 * 252 / (math.sqrt(0.000125) * math.sqrt(252))
    assert m.sortino_ratio(r, 252) == pytest.approx(expected, rel=1e-12)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix)
def test_sortino_matches_empyrical_property(r):
    ours = m.sortino_ratio(r, 252)
    assert np.isfinite(ours).all()
    assert (ours <= m.SORTINO_CAP).all()
    if r.shape[1] < 2:
        assert (ours == 0.0).all()
        return
    with np.errstate(all="ignore"):
        ref = np.atleast_1d(empyrical.sortino_ratio(r.T, annualization=252))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], np.minimum(ref[finite], m.SORTINO_CAP), rtol=1e-9, atol=1e-9)
    assert (ours[np.isposinf(ref)] == m.SORTINO_CAP).all()
    assert (ours[np.isnan(ref)] == 0.0).all()  # 0 / 0: all returns 0


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(ret_matrix, st.floats(1e-3, 1e3))
def test_sortino_scale_invariant(r, c):
    base = m.sortino_ratio(r, 252, cap=1e12)
    np.testing.assert_allclose(m.sortino_ratio(r * c, 252, cap=1e12), base, rtol=1e-7, atol=1e-7)


def test_sortino_degenerate_cases():
    assert m.sortino_ratio(np.array([0.01]), 252) == 0.0
    assert m.sortino_ratio(np.zeros(5), 252) == 0.0
    assert m.sortino_ratio(np.array([0.01, 0.0, 0.02]), 252) == m.SORTINO_CAP  # no downside
    assert m.sortino_ratio(np.array([0.01, 0.0, 0.02]), 252, cap=50.0) == 50.0
    # a finite ratio above the cap is clipped, below it is not
    r = np.array([0.05, 0.05, 0.05, -0.0001])
    assert m.sortino_ratio(r, 252, cap=10.0) == 10.0
    assert m.sortino_ratio(r, 252, cap=1e9) == pytest.approx(
        empyrical.sortino_ratio(r, annualization=252), rel=1e-12
    )
    # lower bound: mean >= -downside deviation, so >= -sqrt(P)
    assert m.sortino_ratio(np.array([-0.01, -0.01]), 252) == pytest.approx(-math.sqrt(252))
    with pytest.raises(MetricsError):
        m.sortino_ratio(np.array([0.01, 0.02]), 252, cap=0.0)


# --------------------------------------------------------------------------- max drawdown


def test_max_drawdown_hand_example():
    # initial 100 is the first peak; 100 -> 90 is 10 %; new peak 120 -> 84 is 30 %
    eq = np.array([95.0, 90.0, 120.0, 84.0, 110.0])
    assert m.max_drawdown(eq, 100.0) == pytest.approx(0.3, abs=1e-15)
    assert m.max_drawdown(np.array([90.0, 95.0]), 100.0) == pytest.approx(0.1)  # peak includes initial
    assert m.max_drawdown(np.array([101.0, 102.0, 102.0]), 100.0) == 0.0
    assert m.max_drawdown(np.array([]), 100.0) == 0.0
    assert m.max_drawdown(np.zeros(3), 0.0) == 0.0
    np.testing.assert_allclose(
        m.drawdown_curve(eq, 100.0), [0.05, 0.1, 0.0, 0.3, 110.0 / 120.0 * -1 + 1], atol=1e-15
    )


def test_max_drawdown_matches_empyrical_on_realistic_series():
    r = realistic_returns(30, 288, seed=3)
    initial = np.random.default_rng(3).uniform(50.0, 5000.0, 30)
    eq = equity_from_returns(r, initial)
    ours = m.max_drawdown(eq, initial)
    ref = -empyrical.max_drawdown(m.bar_returns(eq, initial).T)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert ((ours >= 0) & (ours <= 1)).all()


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 50)), elements=eq_ret_elem),
    st.floats(1.0, 1e6),
)
def test_max_drawdown_matches_empyrical_property(r, init):
    initial = np.full(r.shape[0], init)
    eq = equity_from_returns(r, initial)
    ours = m.max_drawdown(eq, initial)
    assert ((ours >= 0) & (ours <= 1)).all()
    ref = -np.atleast_1d(empyrical.max_drawdown(r.T))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    liquidated = (r == -1.0).any(axis=1)
    assert (ours[liquidated] == 1.0).all()


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(0, 40)), elements=st.floats(0, 1e12)))
def test_max_drawdown_in_unit_interval_any_curve(eq):
    initial = eq[:, 0] if eq.shape[1] else np.ones(eq.shape[0])
    dd = m.max_drawdown(eq, initial)
    assert ((dd >= 0) & (dd <= 1)).all()
    # a running maximum never falls
    assert (m.max_drawdown(np.maximum.accumulate(eq, axis=1), initial) == 0).all()


# --------------------------------------------------------------------------- ROI


def test_roi_and_hourly_roi():
    assert m.roi(110.0, 100.0) == pytest.approx(0.1)
    assert m.roi(0.0, 100.0) == -1.0
    assert m.roi(0.0, 0.0) == 0.0
    assert isinstance(m.roi(110.0, 100.0), float)
    np.testing.assert_allclose(m.roi(np.array([90.0, 120.0]), np.array([100.0, 100.0])), [-0.1, 0.2])
    # 100 -> 121 over 2 hours is 10 % per hour compounded
    assert m.hourly_roi(121.0, 100.0, 2) == pytest.approx(0.1, rel=1e-12)
    assert m.hourly_roi(121.0, 100.0, 0) == 0.0
    assert m.hourly_roi(0.0, 100.0, 5) == -1.0
    assert m.hourly_roi(0.0, 0.0, 5) == 0.0
    np.testing.assert_allclose(
        m.hourly_roi(np.array([121.0, 100.0]), 100.0, np.array([2.0, 3.0])), [0.1, 0.0], atol=1e-15
    )
    for args in ((100.0, 100.0, -1.0), (100.0, 0.0, 1.0), (-1.0, 100.0, 1.0), (np.nan, 100.0, 1.0)):
        with pytest.raises(MetricsError):
            m.hourly_roi(*args)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(st.floats(0.0, 1e7), st.floats(1e-2, 1e7), st.floats(0.1, 24 * 30))
def test_hourly_roi_compounds_back(final, initial, hours):
    h = m.hourly_roi(final, initial, hours)
    assert math.isfinite(h)
    assert h >= -1.0
    if final > 0:
        # (f / i)^(1/h) written as f^(1/h) / i^(1/h) so that f / i cannot underflow
        expected = final ** (1.0 / hours) / initial ** (1.0 / hours) - 1.0
        assert h == pytest.approx(expected, rel=1e-9, abs=1e-12)
        if hours >= 1:  # for hours < 1 the power amplifies the rounding of 1 + h
            assert (1 + h) ** hours == pytest.approx(1 + m.roi(final, initial), rel=1e-8)


# --------------------------------------------------------------------------- win rate, utilisation


def test_win_rate():
    assert m.win_rate(np.array([1.5, -1.0, 0.0, 2.0])) == 0.5  # 0 is not a win
    assert m.win_rate(np.array([])) is None  # no closed trade: undefined, not 0 %
    assert m.win_rate([-1.0]) == 0.0  # a real 0 %: one closed trade, lost
    assert m.win_rate([3.0]) == 1.0
    with pytest.raises(MetricsError):
        m.win_rate(np.ones((2, 2)))
    with pytest.raises(MetricsError):
        m.win_rate([np.nan])


def test_utilisation_hand_example():
    pv = np.array([[0.0, 50.0, 100.0, 150.0], [10.0, 10.0, 30.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
    mean, peak = m.utilisation(pv, np.array([100.0, 20.0, 0.0]))
    np.testing.assert_allclose(mean, [0.75, 0.75, 0.0])
    np.testing.assert_allclose(peak, [1.5, 1.5, 0.0])
    one = m.utilisation(pv[0], 100.0)
    assert one == (0.75, 1.5) and all(isinstance(v, float) for v in one)
    mean0, peak0 = m.utilisation(np.zeros((2, 0)), np.array([1.0, 1.0]))
    assert mean0.tolist() == [0.0, 0.0] and peak0.tolist() == [0.0, 0.0]
    with pytest.raises(MetricsError):
        m.utilisation(np.array([[1.0]]), np.array([0.0]))  # positions on no allocation
    with pytest.raises(MetricsError):
        m.utilisation(np.array([[-1.0]]), np.array([1.0]))
    with pytest.raises(MetricsError):
        m.utilisation(pv, np.array([1.0, 1.0]))


# --------------------------------------------------------------------------- hourly rollup


def test_hourly_rollup_hand_example():
    ts = np.array(
        [
            "2018-01-15T02:50", "2018-01-15T02:55",  # hour 02
            "2018-01-15T03:00", "2018-01-15T03:05", "2018-01-15T03:55",  # hour 03
            "2018-01-15T05:10",  # hour 04 has no bars
            "2018-01-15T23:55", "2018-01-16T00:00",  # day boundary
        ],
        dtype="datetime64[ns]",
    )
    pnl = np.array([1.0, 2.0, -0.5, 0.25, 1.0, 3.0, -2.0, 4.0])
    gx = np.array([0.1, 0.3, 0.2, 0.4, 0.6, 0.5, 1.0, 0.0])
    out = m.hourly_rollup(ts, pnl, gx)
    assert [row["hour"] for row in out] == [
        "2018-01-15T02:00:00Z",
        "2018-01-15T03:00:00Z",
        "2018-01-15T05:00:00Z",
        "2018-01-15T23:00:00Z",
        "2018-01-16T00:00:00Z",
    ]
    np.testing.assert_allclose([row["pnl"] for row in out], [3.0, 0.75, 3.0, -2.0, 4.0])
    np.testing.assert_allclose([row["gross_exposure"] for row in out], [0.2, 0.4, 0.5, 1.0, 0.0])
    for row in out:
        assert type(row["hour"]) is str
        assert type(row["pnl"]) is float and type(row["gross_exposure"]) is float
    json.dumps(out, allow_nan=False)
    # a tz-aware pandas index gives the same result
    idx = pd.DatetimeIndex(ts).tz_localize("UTC")
    assert m.hourly_rollup(idx, pnl, gx) == out


def test_hourly_rollup_matches_pandas_resample():
    rng = np.random.default_rng(1)
    ts = pd.date_range("2018-01-15T00:00", periods=500, freq="5min", tz="UTC")
    keep = np.sort(rng.choice(500, 300, replace=False))  # gaps, some hours empty
    ts = ts[keep]
    pnl = rng.normal(0, 1, 300)
    gx = rng.uniform(0, 2, 300)
    out = m.hourly_rollup(ts, pnl, gx)
    frame = pd.DataFrame({"pnl": pnl, "gx": gx}, index=ts).resample("1h")
    agg = pd.DataFrame({"pnl": frame["pnl"].sum(), "gx": frame["gx"].mean(), "n": frame["pnl"].count()})
    agg = agg[agg["n"] > 0]
    assert [row["hour"] for row in out] == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in agg.index]
    np.testing.assert_allclose([row["pnl"] for row in out], agg["pnl"].to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([row["gross_exposure"] for row in out], agg["gx"].to_numpy(), rtol=1e-12)


def test_hourly_rollup_errors_and_empty():
    assert m.hourly_rollup(np.array([], dtype="datetime64[ns]"), [], []) == []
    ts = np.array(["2018-01-15T03:05", "2018-01-15T03:00"], dtype="datetime64[ns]")
    with pytest.raises(MetricsError):
        m.hourly_rollup(ts, [1.0, 2.0], [0.1, 0.1])  # decreasing
    with pytest.raises(MetricsError):
        m.hourly_rollup(ts[:1], [1.0, 2.0], [0.1, 0.1])  # lengths
    with pytest.raises(MetricsError):
        m.hourly_rollup(np.array(["NaT"], dtype="datetime64[ns]"), [1.0], [0.1])
    with pytest.raises(MetricsError):
        m.hourly_rollup(ts[:1], [np.nan], [0.1])
    with pytest.raises(MetricsError):
        m.hourly_rollup(ts[:1], [1.0], [-0.1])


# --------------------------------------------------------------------------- liquidation, JSON


def test_liquidated_agent_gives_finite_numbers():
    r = realistic_returns(3, 288, seed=2)
    r[1, 100] = -1.0  # agent 1 liquidated at bar 100; equity stays 0
    initial = np.array([1000.0, 1000.0, 1000.0])
    eq = equity_from_returns(r, initial)
    assert (eq[1, 100:] == 0).all()
    ret = m.bar_returns(eq, initial)
    assert (ret[1, 101:] == 0).all() and ret[1, 100] == -1.0
    mdd = m.max_drawdown(eq, initial)
    assert mdd[1] == 1.0
    report = {
        "sharpe": m.sharpe_ratio(ret, PPY_5M).tolist(),
        "sortino": m.sortino_ratio(ret, PPY_5M).tolist(),
        "psr": m.probabilistic_sharpe_ratio(ret).tolist(),
        "mdd": mdd.tolist(),
        "roi": m.roi(eq[:, -1], initial).tolist(),
        "hourly_roi": m.hourly_roi(eq[:, -1], initial, 24.0).tolist(),
    }
    assert report["roi"][1] == -1.0 and report["hourly_roi"][1] == -1.0
    json.dumps(report, allow_nan=False)  # raises on NaN / inf
    np.testing.assert_allclose(report["sharpe"], empyrical.sharpe_ratio(ret.T, annualization=PPY_5M), rtol=1e-10)
    np.testing.assert_allclose(report["sortino"], empyrical.sortino_ratio(ret.T, annualization=PPY_5M), rtol=1e-10)


@settings(deadline=None)  # empyrical/scipy calls are slow on a busy machine
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(0, 30)),
                  elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)))
def test_ratios_finite_on_any_finite_input(r):
    # including subnormals and huge values, nothing non-finite comes out
    for val in (
        m.sharpe_ratio(r, PPY_5M),
        m.sortino_ratio(r, PPY_5M),
        m.probabilistic_sharpe_ratio(r),
        m.downside_deviation(r),
    ):
        assert np.isfinite(val).all()
    psr = m.probabilistic_sharpe_ratio(r)
    assert ((psr >= 0) & (psr <= 1)).all()


def test_annualisation_periods():
    assert m.annualisation_periods(300) == PPY_5M == 105_120
    assert m.annualisation_periods(3600) == 8760
    with pytest.raises(MetricsError):
        m.annualisation_periods(0)
