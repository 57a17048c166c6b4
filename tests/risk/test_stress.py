"""Stress scenarios of risk.stress on hand-worked books and constructed price series."""
from __future__ import annotations

import json

import numpy as np
import pytest

from risk.stress import (
    StressResult,
    replay_worst_hour,
    shock_scenario,
    standard_scenarios,
    worst_hour,
)
from risk.var import RiskInputError

# symbols A (price 100) and B (price 50); maintenance margin 5 %
PRICES = np.array([100.0, 50.0])
# agent 0: long 3 A + long 2 B = 400 of positions on 130 of equity (cash -270 borrowed, ~3.1x)
# agent 1: short 2 A + long 1 B, cash 400 -> positions -150, equity 250
QTY = np.array([[3.0, 2.0], [-2.0, 1.0]])
CASH = np.array([-270.0, 400.0])
MM = 0.05


def test_minus_10_percent_hand_worked():
    r = shock_scenario(QTY, PRICES, CASH, -0.10, MM, unallocated=20.0)
    # prices 90, 45
    # agent 0: 270 + 90 - 270 = 90; gross 360, margin 18 -> alive; loss 40 = 30.77 % of 130
    # agent 1: -180 + 45 + 400 = 265; gross 225 -> alive; loss -15 (a gain) = -6 % of 250
    np.testing.assert_allclose(r.prices_after, [90.0, 45.0])
    np.testing.assert_allclose(r.equity_before, [130.0, 250.0])
    np.testing.assert_allclose(r.equity_after, [90.0, 265.0])
    np.testing.assert_allclose(r.gross_after, [360.0, 225.0])
    np.testing.assert_allclose(r.loss, [40.0, -15.0])
    np.testing.assert_allclose(r.loss_fraction, [40 / 130, -0.06])
    assert r.liquidated.tolist() == [False, False] and r.n_liquidated == 0
    # parent: 130 + 250 + 20 = 400 -> 90 + 265 + 20 = 375, loss 25 = 6.25 %
    assert r.parent_equity_before == pytest.approx(400.0)
    assert r.parent_equity_after == pytest.approx(375.0)
    assert r.parent_loss == pytest.approx(25.0)
    assert r.parent_loss_fraction == pytest.approx(0.0625)
    assert r.shortfall == 0.0


def test_minus_30_percent_liquidates_the_levered_long():
    r = shock_scenario(QTY, PRICES, CASH, -0.30, MM, unallocated=20.0)
    # prices 70, 35
    # agent 0: 210 + 70 - 270 = 10 <= 0.05 * 280 = 14 -> liquidated (equity still positive)
    # agent 1: -140 + 35 + 400 = 295; gross 175 -> alive, gains 45
    np.testing.assert_allclose(r.equity_after, [10.0, 295.0])
    np.testing.assert_allclose(r.gross_after, [280.0, 175.0])
    np.testing.assert_allclose(r.loss, [120.0, -45.0])
    assert r.liquidated.tolist() == [True, False] and r.n_liquidated == 1
    # parent 400 -> 10 + 295 + 20 = 325, loss 75 = 18.75 %
    assert r.parent_loss == pytest.approx(75.0)
    assert r.parent_loss_fraction == pytest.approx(0.1875)
    assert r.shortfall == 0.0


def test_gap_past_zero_equity_reports_shortfall():
    # agent 0 with 20 less cash: after -30 % its equity is 10 - 20 = -10
    r = shock_scenario(QTY, PRICES, CASH - [20.0, 0.0], -0.30, MM)
    np.testing.assert_allclose(r.equity_after, [-10.0, 295.0])
    assert r.liquidated.tolist() == [True, False]
    assert r.shortfall == pytest.approx(10.0)


def test_per_symbol_shock_vector():
    # A -20 % -> 80, B +10 % -> 55
    # agent 0: 240 + 110 - 270 = 80; agent 1: -160 + 55 + 400 = 295
    r = shock_scenario(QTY, PRICES, CASH, [-0.20, 0.10], MM)
    np.testing.assert_allclose(r.equity_after, [80.0, 295.0])
    np.testing.assert_allclose(r.loss, [50.0, -45.0])
    assert r.liquidated.tolist() == [False, False]


def test_liquidation_at_exact_margin_counts():
    # long 1 at 100, cash -37.5: equity 62.5; -50 % -> 50 - 37.5 = 12.5 = 0.25 * 50
    r = shock_scenario([[1.0]], [100.0], [-37.5], -0.5, 0.25)
    assert r.equity_after[0] == 12.5 and r.liquidated.tolist() == [True]
    r = shock_scenario([[1.0]], [100.0], [-37.0], -0.5, 0.25)
    assert r.liquidated.tolist() == [False]


def test_flat_agent_and_zero_equity():
    # flat with cash: never liquidated; loss_fraction NaN where equity before <= 0
    r = shock_scenario([[0.0, 0.0], [0.0, 0.0]], PRICES, [100.0, 0.0], -0.3, MM)
    np.testing.assert_allclose(r.loss, [0.0, 0.0])
    assert r.liquidated.tolist() == [False, True]
    assert np.isnan(r.loss_fraction[1]) and r.loss_fraction[0] == 0.0


def test_to_dict_is_json():
    r = shock_scenario([[0.0], [1.0]], [10.0], [0.0, 5.0], -0.1, MM)
    d = r.to_dict()
    json.dumps(d)
    assert d["agents"]["loss_fraction"][0] is None
    assert d["agents"]["liquidated"] == [True, False]
    assert d["parent"]["loss"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"qty": [1.0, 2.0]}, "qty"),
    ({"prices": [100.0]}, "prices"),
    ({"prices": [100.0, 0.0]}, "prices must be > 0"),
    ({"cash": [1.0]}, "cash"),
    ({"qty": [[np.nan, 1.0], [0.0, 0.0]]}, "NaN"),
    ({"shock": -1.0}, "> -1"),
    ({"shock": [-0.1, -0.1, -0.1]}, "shock"),
    ({"shock": np.nan}, "shock"),
    ({"maintenance_margin": 1.0}, "maintenance_margin"),
    ({"maintenance_margin": -0.1}, "maintenance_margin"),
    ({"unallocated": np.inf}, "unallocated"),
])
def test_shock_scenario_rejects_bad_input(kwargs, match):
    args = {"qty": QTY, "prices": PRICES, "cash": CASH, "shock": -0.1, "maintenance_margin": MM}
    args.update(kwargs)
    with pytest.raises(RiskInputError, match=match):
        shock_scenario(**args)


# --------------------------------------------------------------------------- worst hour


def _ts(start: str, n: int, minutes: int = 15) -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(minutes, "m")


NAN = np.nan
# 15-minute bars 09:00 .. 11:45; X trades throughout, Y has no bars from 10:00 to 10:45
CLOSE = np.array([
    [100.0, 10.0], [101.0, 10.0], [102.0, 10.0], [100.0, 10.0],   # 09:00 hour
    [98.0, NAN], [95.0, NAN], [97.0, NAN], [96.0, NAN],           # 10:00 hour
    [96.0, 9.0], [99.0, 9.0], [100.0, 9.0], [101.0, 9.0],         # 11:00 hour
])
TS = _ts("2024-03-01T09:00", 12)


def test_worst_hour_constructed_series():
    # 09h: no earlier close -> from its first close: X 100 -> 100 = 0, Y 0; mean 0
    # 10h: X 100 (09:45) -> 96 = -4 %; Y no bars -> 0; mean -2 %
    # 11h: X 96 -> 101 = +5.2083 %; Y 10 (last close, 09:45) -> 9 = -10 %; mean -2.3958 %  <- worst
    wh = worst_hour(TS, CLOSE)
    assert wh.start == np.datetime64("2024-03-01T11:00", "ns")
    assert wh.end == np.datetime64("2024-03-01T12:00", "ns")
    np.testing.assert_allclose(wh.returns, [101 / 96 - 1, -0.1], rtol=1e-12)
    assert wh.mean_return == pytest.approx((101 / 96 - 1 - 0.1) / 2, rel=1e-12)


def test_worst_hour_missing_symbol_gets_zero():
    # drop hour 11 -> the worst is 10h, where Y has no bars
    wh = worst_hour(TS[:8], CLOSE[:8])
    assert wh.start == np.datetime64("2024-03-01T10:00", "ns")
    np.testing.assert_allclose(wh.returns, [-0.04, 0.0], atol=1e-15)
    assert not np.isnan(wh.returns).any()


def test_worst_hour_counts_the_gap_into_the_hour():
    # one symbol: the drop happens at the hour's first bar (100 -> 90); hour 11 falls 90 -> 88
    close = np.array([[100.0], [100.0], [90.0], [90.0], [90.0], [88.0]])
    ts = _ts("2024-03-01T09:00", 6, minutes=30)
    wh = worst_hour(ts, close)
    assert wh.start == np.datetime64("2024-03-01T10:00", "ns")
    assert wh.returns[0] == pytest.approx(-0.10, rel=1e-12)


def test_worst_hour_tie_goes_to_earliest_and_gaps_in_time():
    # hours 09 and 13 both halve the price (exact in binary); hours 10-12 have no bars at all
    close = np.array([[100.0], [50.0], [50.0], [25.0]])
    ts = np.array(["2024-03-01T09:00", "2024-03-01T09:30", "2024-03-01T13:00", "2024-03-01T13:30"],
                  dtype="datetime64[ns]")
    wh = worst_hour(ts, close)
    # 09h: first close 100 -> 50 = -50 %; 13h: 50 (09:30) -> 25 = -50 %
    assert wh.start == np.datetime64("2024-03-01T09:00", "ns")
    assert wh.returns[0] == -0.5


@pytest.mark.parametrize("ts, close, match", [
    (TS[::-1], CLOSE, "strictly increasing"),
    (TS, CLOSE[:5], "close"),
    (TS[:0], CLOSE[:0], "non-empty"),
    (np.arange(12), CLOSE, "datetime64"),
    (TS, np.where(CLOSE > 0, -1.0, 0.0), "> 0"),
    (TS, np.full((12, 2), np.nan), "no finite"),
])
def test_worst_hour_rejects_bad_input(ts, close, match):
    with pytest.raises(RiskInputError, match=match):
        worst_hour(ts, close)


def test_replay_worst_hour():
    r = replay_worst_hour(QTY, PRICES, CASH, TS, CLOSE, MM)
    assert isinstance(r, StressResult)
    assert r.name == "worst hour 2024-03-01T11:00"
    assert r.details["start"] == "2024-03-01T11:00" and r.details["end"] == "2024-03-01T12:00"
    # A x 101/96, B x 0.9 -> A = 105.2083333, B = 45
    a = 100 * 101 / 96
    np.testing.assert_allclose(r.prices_after, [a, 45.0], rtol=1e-12)
    np.testing.assert_allclose(r.equity_after, [3 * a + 90 - 270, -2 * a + 45 + 400], rtol=1e-12)
    json.dumps(r.to_dict())
    with pytest.raises(RiskInputError, match="symbols"):
        replay_worst_hour(QTY, PRICES, CASH, TS, CLOSE[:, :1], MM)


def test_standard_scenarios():
    out = standard_scenarios(QTY, PRICES, CASH, MM, TS, CLOSE)
    assert [r.name for r in out] == ["all symbols -10 %", "all symbols -30 %", "worst hour 2024-03-01T11:00"]
    assert [r.n_liquidated for r in out] == [0, 1, 0]
    np.testing.assert_allclose(out[1].equity_after, [10.0, 295.0])
    assert [r.name for r in standard_scenarios(QTY, PRICES, CASH, MM)] == ["all symbols -10 %",
                                                                          "all symbols -30 %"]
    with pytest.raises(RiskInputError, match="both"):
        standard_scenarios(QTY, PRICES, CASH, MM, TS, None)
