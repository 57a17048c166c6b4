"""The lockstep engine on hand-worked examples: fills, costs, stops, the parent
gate, liquidation. Expected figures are worked out by hand in the comments."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.engine import EngineConfig, EngineError, run_engine
from simulator.kernel import KIND_NAMES, UNITS
from tests.helpers import agents, market_from_prices


def _sig(values, n=1):
    """(n, T, 1) signals from a list."""
    return np.tile(np.asarray(values, dtype=np.float64)[None, :, None], (n, 1, 1))


def test_fill_at_next_open_with_slippage_and_fee():
    # close of bar 0: signal 1 -> buy at the open of bar 1 = 100 x 1.001 = 100.1
    # qty = 1000 / (100 x 1.001 x 1.001) = 9.98002996...; notional = 999.00099900; fee = 0.99900100
    # close of bar 2: signal 0 -> sell at the open of bar 3 = 120 x 0.999 = 119.88
    # notional = 1196.40599161; fee = 1.19640599; cash = 1195.20958562
    m = market_from_prices([100, 100, 110, 120, 125], close=[100, 110, 120, 125, 126])
    cfg = EngineConfig(fee_bps=10, slippage_bps=10)
    r = run_engine(m, _sig([1, 1, 0, 0, 0]), agents(1, 1), bankroll_units=1000 * UNITS, config=cfg)
    f = r.fills
    assert list(f["bar"]) == [1, 3]
    assert f["price"][0] == pytest.approx(100.1, rel=1e-15)
    assert f["price"][1] == pytest.approx(119.88, rel=1e-15)
    assert f["qty"][0] == pytest.approx(1000 / (100.1 * 1.001), rel=1e-14)
    assert list(f["notional_units"]) == [99_900_099_900, 119_640_599_161]
    assert list(f["fee_units"]) == [99_900_100, 119_640_599]
    assert r.cash_units[0] == 119_520_958_562
    assert r.realized_units[0] == 119_640_599_161 - 99_900_099_900
    assert r.qty[0, 0] == 0.0
    # equity marked at each close: bar 1 holds 9.98 units at 110
    q = 1000 / (100.1 * 1.001)
    assert r.equity[0, 1] == pytest.approx(q * 110, rel=1e-12)
    assert r.equity[0, -1] == pytest.approx(1195.20958562, abs=1e-8)
    assert r.parent_equity[-1] == pytest.approx(1195.20958562, abs=1e-8)


def test_no_fill_on_non_tradable_bar_order_waits_for_next_bar():
    m = market_from_prices([100, 100, 100, 101, 102], tradable=[1, 1, 0, 1, 1])
    r = run_engine(m, _sig([0, 1, 1, 1, 1]), agents(1, 1), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0))
    # decided at close of bar 1, bar 2 is closed at the venue -> fills at the open of bar 3
    assert list(r.fills["bar"]) == [3]
    assert r.fills["price"][0] == 101


def test_long_only_clips_short_signals_and_allow_short_flips():
    m = market_from_prices([100, 100, 100, 100, 100])
    sig = _sig([1, -1, -1, 0, 0])
    r = run_engine(m, sig, agents(1, 1), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0))
    assert list(r.fills["qty"]) == [10.0, -10.0]
    r = run_engine(m, sig, agents(1, 1), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, allow_short=True))
    # bar 2: flip long 10 -> short 10 is booked as close + open; bar 4: cover
    assert list(r.fills["bar"]) == [1, 2, 2, 4]
    assert list(r.fills["qty"]) == [10.0, -10.0, -10.0, 10.0]
    assert list(r.fills["position"]) == [10.0, 0.0, -10.0, 0.0]


def test_stop_loss_first_when_stop_and_target_touched_in_one_bar():
    # entry at 100 (bar 1 open); bar 2 touches both 95 (stop) and 105 (target): stop wins
    m = market_from_prices([100, 100, 100, 100], high=[100, 100, 106, 100], low=[100, 100, 94, 100])
    r = run_engine(m, _sig([1, 1, 1, 1]), agents(1, 1, stop=0.05, take=0.05),
                   bankroll_units=1000 * UNITS, config=EngineConfig(fee_bps=0, slippage_bps=0))
    assert [KIND_NAMES[k] for k in r.fills["kind"]] == ["signal", "stop_loss"]
    assert r.fills["price"][1] == pytest.approx(95.0)
    # latched: the signal stays 1 but there is no re-entry until it changes
    assert len(r.fills["bar"]) == 2


def test_gap_through_stop_fills_at_open_and_take_profit():
    m = market_from_prices([100, 100, 90, 90], high=[100, 100, 91, 90], low=[100, 100, 89, 90])
    r = run_engine(m, _sig([1, 1, 1, 1]), agents(1, 1, stop=0.05), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0))
    assert r.fills["price"][1] == 90.0  # gapped below 95: filled at the open
    m = market_from_prices([100, 100, 100, 100], high=[100, 100, 111, 100], low=[100, 100, 99, 100])
    r = run_engine(m, _sig([1, 1, 1, 1]), agents(1, 1, take=0.1), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0))
    assert KIND_NAMES[r.fills["kind"][1]] == "take_profit"
    assert r.fills["price"][1] == pytest.approx(110.0)


def test_max_holding_period_exit():
    m = market_from_prices([100] * 8)
    r = run_engine(m, _sig([1] * 8), agents(1, 1, max_hold=3), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0))
    # entered at bar 1; at the close of bar 4 it has been held 3 bars -> exit at the open of bar 5
    assert list(r.fills["bar"]) == [1, 5]
    assert KIND_NAMES[r.fills["kind"][1]] == "max_hold"


def test_parent_gross_ceiling_scales_orders_pro_rata_and_counts_breaches():
    # two agents with 500 each want 2x their equity (1000 notional each) at price 100;
    # the parent allows 1.0 x 1000 of gross exposure -> each is scaled by 0.5 to 5 units
    m = market_from_prices([100, 100, 100])
    a = agents(2, 1, weight=2.0, leverage=2.0, alloc=[500 * UNITS, 500 * UNITS])
    r = run_engine(m, _sig([1, 1, 1], n=2), a, bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=1.0))
    assert list(r.fills["qty"]) == [pytest.approx(5.0), pytest.approx(5.0)]
    assert list(r.breaches) == [1, 1]


def test_agent_ceiling_then_parent_ceiling():
    # agents want 1000 notional but their ceiling is 1.5 x 500 = 750 -> 7.5 units each;
    # then the parent's 1000 ceiling scales 1500 -> 1000: 5 units each
    m = market_from_prices([100, 100, 100])
    a = agents(2, 1, weight=2.0, leverage=1.5, alloc=[500 * UNITS, 500 * UNITS])
    r = run_engine(m, _sig([1, 1, 1], n=2), a, bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=3.0,
                                     max_symbol_exposure=3.0))
    assert list(r.fills["qty"]) == [pytest.approx(7.5), pytest.approx(7.5)]
    r = run_engine(m, _sig([1, 1, 1], n=2), a, bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=1.0))
    assert list(r.fills["qty"]) == [pytest.approx(5.0), pytest.approx(5.0)]


def test_per_symbol_cap():
    # one agent, two symbols, wants 500 in each; the cap is 0.3 x 1000 per symbol
    m = market_from_prices([[100, 50]] * 3)
    sig = np.ones((1, 3, 2))
    r = run_engine(m, sig, agents(1, 2, weight=0.5), bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, max_symbol_exposure=0.3))
    assert r.qty[0, 0] * 100 == pytest.approx(300.0)
    assert r.qty[0, 1] * 50 == pytest.approx(300.0)
    assert r.breaches[0] == 2


def test_reductions_are_never_clipped():
    m = market_from_prices([100, 100, 100, 100])
    a = agents(1, 1, weight=1.0)
    r = run_engine(m, _sig([1, 1, 0, 0]), a, bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=0.5))
    assert r.qty[0, 0] == 0.0 and r.breaches[0] == 1  # the entry was clipped, the exit was not


def test_liquidation_at_maintenance_margin_returns_residual_capital():
    # 5x long: 50 units at 100 (cash -4000). Close 81 -> equity 50 <= 5 % of 4050 -> liquidated
    m = market_from_prices([100, 100, 81, 81], close=[100, 100, 81, 81])
    a = agents(1, 1, weight=5.0, leverage=5.0)
    cfg = EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=5.0, max_symbol_exposure=5.0)
    r = run_engine(m, _sig([1, 1, 1, 1]), a, bankroll_units=1000 * UNITS, config=cfg)
    kinds = [KIND_NAMES[k] for k in r.fills["kind"]]
    assert kinds == ["signal", "liquidation", "return_of_capital"]
    assert r.liquidated[0]
    assert r.cash_units[0] == 0 and r.qty[0, 0] == 0.0
    assert r.unallocated_units == 50 * UNITS
    assert r.equity[0, -1] == pytest.approx(50.0)
    # from the liquidation bar on, the returned 50 sits in the parent's cash
    np.testing.assert_allclose(r.parent_equity[2:], [50.0, 50.0])


def test_gap_loss_beyond_equity_is_covered_by_parent_agent_never_negative():
    m = market_from_prices([100, 100, 70, 70], close=[100, 100, 70, 70])
    a = agents(1, 1, weight=5.0, leverage=5.0)
    cfg = EngineConfig(fee_bps=0, slippage_bps=0, max_gross_leverage=5.0, max_symbol_exposure=5.0)
    r = run_engine(m, _sig([1, 1, 1, 1]), a, bankroll_units=1000 * UNITS, config=cfg)
    # equity at 70: -4000 + 3500 = -500 -> the parent covers 500
    assert [KIND_NAMES[k] for k in r.fills["kind"]][-1] == "shortfall_cover"
    assert r.equity.min() >= 0.0
    assert r.unallocated_units == -500 * UNITS


def test_bad_inputs_raise():
    m = market_from_prices([100, 100, 100])
    with pytest.raises(EngineError, match="signals have shape"):
        run_engine(m, np.ones((1, 2, 1)), agents(1, 1), bankroll_units=UNITS, config=EngineConfig())
    with pytest.raises(EngineError, match="within"):
        run_engine(m, np.full((1, 3, 1), 2.0), agents(1, 1), bankroll_units=1000 * UNITS,
                   config=EngineConfig())
    with pytest.raises(EngineError, match="exceed the bankroll"):
        run_engine(m, np.ones((1, 3, 1)), agents(1, 1), bankroll_units=10 * UNITS, config=EngineConfig())
    with pytest.raises(EngineError, match="fee_bps"):
        EngineConfig(fee_bps=-1)
    with pytest.raises(EngineError, match="no bars"):
        run_engine(market_from_prices([100, 100], warmup=2), np.ones((1, 2, 1)), agents(1, 1),
                   bankroll_units=1000 * UNITS, config=EngineConfig())
