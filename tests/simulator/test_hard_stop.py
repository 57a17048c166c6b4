"""The daily hard stop of the numba kernel (issue 12): a planted crash triggers it at the
bar the parent equity first crosses the threshold, every agent is flattened at the next
open and stays out for the rest of the UTC day, trading resumes the next day; the stop
off changes nothing; decisions still use no future bars; the ledger still balances."""
from __future__ import annotations

import numpy as np
import pytest

from evolution.toolbox import random_genomes
from simulator.cohort import build_signals, simulate_cohort
from simulator.data import load_market
from simulator.engine import EngineConfig, EngineError, run_engine
from simulator.kernel import K_HARD_STOP, K_SIGNAL, KIND_NAMES, UNITS
from simulator.ledger import verify_journal
from tests.helpers import BINANCE, agents, market_from_prices

N_AGENTS = 3
ALLOC = 1000.0
FEE, SLIP = 10 / 1e4, 5 / 1e4  # the EngineConfig defaults
HOURS = 48  # two UTC days of 1h bars from 2024-01-01T00:00


def crash_prices() -> np.ndarray:
    """Day 1: flat, then -1.5 % a bar from bar 4 to bar 12, flat to the end of the day.
    Day 2: flat, then -2 % a bar from bar 30 to bar 40, flat."""
    p = np.full(HOURS, 100.0)
    for t in range(4, 13):
        p[t] = p[t - 1] * 0.985
    p[13:] = p[12]
    for t in range(30, 41):
        p[t] = p[t - 1] * 0.98
    p[41:] = p[40]
    return p


def first_crossing(parent: np.ndarray, ref: float, frac: float, lo: int, hi: int) -> int:
    """First bar in [lo, hi) whose parent equity is at or below (1 - frac) x ref (-1: none)."""
    for t in range(lo, hi):
        if parent[t] <= (1.0 - frac) * ref:
            return t
    return -1


@pytest.fixture(scope="module")
def crash():
    p = crash_prices()
    market = market_from_prices(p, timeframe_s=3600, start="2024-01-01T00:00")
    sig = np.ones((N_AGENTS, HOURS, 1))  # every agent long all the time
    return p, market, sig


def run(market, sig, stop: float, **cfg):
    return run_engine(market, sig, agents(N_AGENTS, 1), bankroll_units=int(N_AGENTS * ALLOC * UNITS),
                      config=EngineConfig(daily_hard_stop=stop, **cfg))


def test_planted_crash_fires_at_the_crossing_bar_flattens_and_resumes_next_day(crash):
    p, market, sig = crash
    r = run(market, sig, 0.05)
    f = r.fills
    kinds = [KIND_NAMES[k] for k in f["kind"]]

    # independent replay: the signal of bar 0 buys at the open of bar 1 with all equity
    q1 = ALLOC / (p[1] * (1 + SLIP) * (1 + FEE))
    cash1 = ALLOC - q1 * p[1] * (1 + SLIP) * (1 + FEE)
    parent1 = N_AGENTS * (cash1 + q1 * p)  # while held
    bankroll = N_AGENTS * ALLOC
    stop1 = first_crossing(parent1, bankroll, 0.05, 0, 24)
    assert stop1 == 7  # the path is built to cross there, with margin on both sides
    assert parent1[stop1 - 1] > 0.952 * bankroll and parent1[stop1] < 0.948 * bankroll

    # flattened at the next open (bar 8), at the open price with adverse slippage
    cash2 = cash1 + q1 * p[stop1 + 1] * (1 - SLIP) * (1 - FEE)
    # day 2: reference = parent at the last close of day 1 (flat since bar 8); re-entry decided
    # at the close of bar 24, filled at the open of bar 25
    ref2 = N_AGENTS * cash2
    q2 = cash2 / (p[25] * (1 + SLIP) * (1 + FEE))
    cash3 = cash2 - q2 * p[25] * (1 + SLIP) * (1 + FEE)
    parent2 = N_AGENTS * (cash3 + q2 * p)
    stop2 = first_crossing(parent2, ref2, 0.05, 25, HOURS)
    assert stop2 > 30

    np.testing.assert_array_equal(r.hard_stop_bars, [stop1, stop2])
    np.testing.assert_allclose(r.parent_equity[stop1], parent1[stop1], rtol=1e-9)
    np.testing.assert_allclose(r.parent_equity[23], ref2, rtol=1e-9)

    # fills: entry at bar 1, hard-stop exits at bar 8, re-entry at bar 25, exits at stop2 + 1
    assert list(f["bar"]) == [1] * 3 + [stop1 + 1] * 3 + [25] * 3 + [stop2 + 1] * 3
    assert kinds == ["signal"] * 3 + ["hard_stop"] * 3 + ["signal"] * 3 + ["hard_stop"] * 3
    hs = f["kind"] == K_HARD_STOP
    np.testing.assert_allclose(f["price"][hs][:3], p[stop1 + 1] * (1 - SLIP), rtol=1e-12)
    np.testing.assert_allclose(f["price"][hs][3:], p[stop2 + 1] * (1 - SLIP), rtol=1e-12)
    np.testing.assert_allclose(f["qty"][hs][:3], -q1, rtol=1e-9)
    assert np.all(f["position"][hs] == 0.0)
    # flat after the next open and for the rest of the day although the signals stay 1
    assert np.all(r.position_value[:, stop1 + 1:25] == 0.0)
    assert not np.any((f["bar"] > stop1 + 1) & (f["bar"] < 25))
    assert np.all(r.position_value[:, 25:stop2 + 1] > 0.0)  # trading resumed on day 2
    assert np.all(r.qty == 0.0) and r.breaches.sum() == 0


def test_exits_are_not_scaled_by_the_parent_gate(crash):
    """With a per-symbol cap that clips every entry, the flatten still closes everything."""
    p, market, sig = crash
    r = run(market, sig, 0.05, max_symbol_exposure=0.5)
    assert r.breaches.sum() > 0  # the gate clipped the entries
    hs = r.fills["kind"] == K_HARD_STOP
    assert hs.sum() == 6 and np.all(r.fills["position"][hs] == 0.0)
    for b in r.hard_stop_bars:  # every position open at the halt is closed in full at the next open
        before = r.fills["bar"] <= b
        held = {(a, s): q for a, s, q in zip(r.fills["agent"][before], r.fills["symbol"][before],
                                               r.fills["position"][before])}
        closed = (r.fills["bar"] == b + 1) & hs
        np.testing.assert_allclose(-r.fills["qty"][closed], [held[(a, 0)] for a in r.fills["agent"][closed]])


def test_flatten_of_an_untradable_symbol_waits_for_its_next_open():
    # the halt at the close of bar 3 (-10 %); bar 4 does not trade, so the hard-stop order
    # fills at the open of bar 5; no re-entry later that day although the signal stays 1
    p = np.array([100, 100, 100, 90, 90, 85, 85, 85, 85, 85], dtype=np.float64)
    tr = np.ones(10, bool)
    tr[4] = False
    m = market_from_prices(p, tradable=tr, timeframe_s=3600)
    r = run_engine(m, np.ones((1, 10, 1)), agents(1, 1), bankroll_units=1000 * UNITS,
                   config=EngineConfig(daily_hard_stop=0.05))
    assert list(r.hard_stop_bars) == [3]
    assert [KIND_NAMES[k] for k in r.fills["kind"]] == ["signal", "hard_stop"]
    assert list(r.fills["bar"]) == [1, 5]
    assert r.fills["price"][1] == pytest.approx(85 * (1 - SLIP), rel=1e-12)
    assert r.qty[0, 0] == 0.0


def test_stop_off_changes_nothing(crash):
    p, market, sig = crash
    base = run_engine(market, sig, agents(N_AGENTS, 1), bankroll_units=int(N_AGENTS * ALLOC * UNITS),
                      config=EngineConfig())
    assert EngineConfig().daily_hard_stop == 0.0 and len(base.hard_stop_bars) == 0
    for other in (run(market, sig, 0.0), run(market, sig, 0.99)):
        assert len(other.hard_stop_bars) == 0
        np.testing.assert_array_equal(other.equity, base.equity)
        np.testing.assert_array_equal(other.parent_equity, base.parent_equity)
        for key, col in base.fills.items():
            np.testing.assert_array_equal(other.fills[key], col)
    assert not np.any(base.fills["kind"] == K_HARD_STOP)
    assert np.all(base.fills["kind"] == K_SIGNAL)  # held through both crashes


@pytest.mark.parametrize("bad", [-0.01, 1.0, 1.5, float("nan"), float("inf")])
def test_out_of_range_threshold_is_rejected(bad):
    with pytest.raises(EngineError, match="daily_hard_stop"):
        EngineConfig(daily_hard_stop=bad)


@pytest.fixture(scope="module")
def days():
    return load_market(BINANCE, start="2018-01-15", end="2018-01-18", warmup_bars=200)


@pytest.fixture(scope="module")
def genomes(days):
    return random_genomes(30, days.symbols, seed=3, max_leverage=2.0)


STOP_CFG = EngineConfig(allow_short=True, daily_hard_stop=0.005)  # fires on each of the three days


def test_truncating_future_bars_never_changes_past_decisions_with_the_stop_on(days, genomes):
    full = simulate_cohort(days, genomes, bankroll=1000.0, config=STOP_CFG, with_ledger=False)
    fired = full.engine.hard_stop_bars - days.warmup
    assert len(fired) >= 2  # the stop really fires (more than once: the daily reset is covered)
    sig_full, _ = build_signals(days, genomes)
    for k in (1, int(fired[0]), int(fired[0]) + 1, int(fired[0]) + 2, int(fired[1]) + 1, 400):
        cut = days.head(days.warmup + k)
        sig_cut, _ = build_signals(cut, genomes)
        np.testing.assert_array_equal(sig_cut, sig_full[:, : days.warmup + k])
        part = simulate_cohort(cut, genomes, bankroll=1000.0, config=STOP_CFG, with_ledger=False)
        np.testing.assert_array_equal(part.engine.equity, full.engine.equity[:, :k])
        np.testing.assert_array_equal(part.engine.parent_equity, full.engine.parent_equity[:k])
        np.testing.assert_array_equal(part.engine.hard_stop_bars,
                                      full.engine.hard_stop_bars[full.engine.hard_stop_bars < days.warmup + k])
        sel = full.engine.fills["bar"] < days.warmup + k
        for key, col in part.engine.fills.items():
            np.testing.assert_array_equal(col, full.engine.fills[key][sel])
    assert np.any(full.engine.fills["kind"] == K_HARD_STOP)


def test_ledger_of_a_cohort_where_the_stop_fired_balances_and_verifies(days, genomes):
    res = simulate_cohort(days, genomes, bankroll=1000.0, config=STOP_CFG)
    assert len(res.engine.hard_stop_bars) >= 2
    assert res.ledger_ok
    assert verify_journal(res.journal, res.state).ok
    memos = [t.memo for t in res.journal if t.memo.startswith("hard_stop")]
    n_hs = int(np.sum(res.engine.fills["kind"] == K_HARD_STOP))
    assert len(memos) == n_hs > 0
    assert all(m.startswith(("hard_stop sell ", "hard_stop buy ")) for m in memos)
    for t in res.journal:  # Transaction also refuses to exist unbalanced
        assert sum(p.amount for p in t.postings) == 0
    # the events of the report: one per firing, at the triggering bar's time, threshold crossed
    assert [e["kind"] for e in res.events] == ["daily_hard_stop"] * len(res.engine.hard_stop_bars)
    for e, b in zip(res.events, res.engine.hard_stop_bars):
        tt = b - days.warmup
        assert e["time"] == str(np.datetime64(res.engine.timestamps[tt], "s")) + "Z"
        assert e["parent_equity"] == res.engine.parent_equity[tt]
        assert e["drawdown"] >= e["threshold"] == 0.005
        assert e["parent_equity"] <= (1 - 0.005) * e["reference_equity"]
    # trades closed by the stop say so
    assert any(t["exit_reason"] == "hard_stop" for t in res.trades)
