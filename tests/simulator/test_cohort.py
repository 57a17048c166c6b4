"""Cohort-level properties on real bars: no lookahead, conservation of money,
and the single backtest cross-checked against vectorbt (an independent engine)."""
from __future__ import annotations

import numpy as np
import pytest

from evolution.genome import Genome
from evolution.toolbox import random_genomes
from simulator.cohort import build_signals, simulate_cohort
from simulator.data import load_market
from simulator.engine import EngineConfig
from simulator.ledger import verify_journal
from tests.helpers import BINANCE


@pytest.fixture(scope="module")
def day():
    return load_market(BINANCE, start="2018-01-15", end="2018-01-16", warmup_bars=200)


@pytest.fixture(scope="module")
def genomes(day):
    return random_genomes(30, day.symbols, seed=3, max_leverage=2.0)


def test_truncating_future_bars_never_changes_past_decisions(day, genomes):
    cfg = EngineConfig(allow_short=True)
    full = simulate_cohort(day, genomes, bankroll=1000.0, config=cfg, with_ledger=False)
    sig_full, _ = build_signals(day, genomes)
    for k in (1, 37, 150):
        cut = day.head(day.warmup + k)
        sig_cut, _ = build_signals(cut, genomes)
        np.testing.assert_array_equal(sig_cut, sig_full[:, : day.warmup + k])
        part = simulate_cohort(cut, genomes, bankroll=1000.0, config=cfg, with_ledger=False)
        np.testing.assert_array_equal(part.engine.equity, full.engine.equity[:, :k])
        np.testing.assert_array_equal(part.engine.parent_equity, full.engine.parent_equity[:k])
        sel = full.engine.fills["bar"] < day.warmup + k
        for key, col in part.engine.fills.items():
            np.testing.assert_array_equal(col, full.engine.fills[key][sel])
    assert len(full.engine.fills["bar"]) > 100  # the cohort really traded


def test_money_is_conserved_at_every_bar(day, genomes):
    res = simulate_cohort(day, genomes, bankroll=1000.0, config=EngineConfig(max_gross_leverage=0.1))
    eng = res.engine
    assert res.ledger_ok and verify_journal(res.journal, res.state).ok
    # no capital returned in this run, so agent value == agent equity
    assert not eng.liquidated.any()
    np.testing.assert_allclose(eng.equity.sum(axis=0) + eng.unallocated_units / 1e8, eng.parent_equity,
                               rtol=1e-12)
    # with a 0.1 x ceiling the gate had to clip, and every clip is counted
    assert res.parent["breaches"] > 0 and res.parent["peak_gross_exposure"] <= 0.1 * 1.1


#: Symbols whose SMA(10) and SMA(30) tie where vectorbt sees a cross: the
#: averages are equal (our double-double window sums give exactly 0, or an ulp
#: well inside TIE_RTOL), vectorbt's running sums leave a ~1e-18 difference of
#: the wrong sign there, and it takes that rounding noise for a cross (an extra
#: round trip); our tie rule holds the side. ADA_BTC at bar 1212, NXT_BTC at
#: bars 208 and 3063, XLM_BTC at bars 701, 929 and 2671. For them only the
#: trades closed before the first such bar are compared, then the test skips.
#: The detection below must find exactly these, so the list stays true.
VBT_TIE_SYMBOLS = {"ADA_BTC", "NXT_BTC", "XLM_BTC"}
SYMBOLS = sorted(p.stem for p in BINANCE.glob("*.parquet"))


def _tie_crosses(d: np.ndarray, close: np.ndarray, rtol: float) -> np.ndarray:
    """Bars where an exact comparison (vectorbt's) sees a side the tie rule does
    not: ``0 < |d| <= rtol*|close|`` with the sign of d differing from the side
    held since the last clear (``|d| > tol``) bar -- a cross for one, a tie for
    the other. Exact zeros are ties for both."""
    held, bad = 0.0, []
    for t in range(len(d)):
        tol = rtol * abs(close[t])
        if np.isnan(d[t]):
            held = 0.0
        elif abs(d[t]) > tol:
            held = np.sign(d[t])
        elif d[t] != 0 and np.sign(d[t]) != held:
            bad.append(t)
    return np.array(bad, dtype=np.int64)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_backtest_matches_vectorbt(symbol):
    """``sma_cross(10, 30)`` long-only, size 1, fee 10 bps, against vectorbt computing
    everything itself: its own MAs, ``ma_crossed_above`` / ``ma_crossed_below``
    (decided at the close, filled at the next open) and ``Portfolio.from_signals``.
    Same trades (count, entry and exit times, entry prices) and final equity."""
    vbt = pytest.importorskip("vectorbt")
    import pandas as pd

    from simulator.strategies.families import TIE_RTOL

    m = load_market(BINANCE, symbols=[symbol])
    g = Genome("sma_cross", {"fast": 10, "slow": 30}, symbols=(symbol,), size=1.0)
    res = simulate_cohort(m, [g], bankroll=1000.0, config=EngineConfig(fee_bps=10, slippage_bps=0),
                          with_ledger=False)

    idx = pd.DatetimeIndex(m.timestamps)
    close = pd.Series(m.close[:, 0], index=idx)
    fast, slow = vbt.MA.run(close, 10), vbt.MA.run(close, 30)
    entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=pd.Series(m.open[:, 0], index=idx),
                                    fees=0.001, init_cash=1000.0, freq="5min")
    rec = pf.trades.records_readable
    theirs = [(e.to_datetime64(), x.to_datetime64() if st == "Closed" else None)
              for e, x, st in zip(rec["Entry Timestamp"], rec["Exit Timestamp"], rec["Status"])]
    ours = [(np.datetime64(t["entry_time"].rstrip("Z"), "ns"),
             None if t["open"] else np.datetime64(t["exit_time"].rstrip("Z"), "ns")) for t in res.trades]

    ties = _tie_crosses((fast.ma - slow.ma).to_numpy(), m.close[:, 0], TIE_RTOL)
    assert bool(ties.size) == (symbol in VBT_TIE_SYMBOLS), ties
    if ties.size:
        # fills of the tie bar's decision land on the next bar: trades closed up to the tie bar agree
        cut = m.timestamps[ties[0]]
        before = [tr for tr in ours if tr[1] is not None and tr[1] <= cut]
        assert before and before == [tr for tr in theirs if tr[1] is not None and tr[1] <= cut]
        pytest.skip(f"{symbol}: SMA(10) and SMA(30) tie within TIE_RTOL at bars {ties.tolist()}, where "
                    f"vectorbt's rounding noise makes a cross and our tie rule holds; "
                    f"the {len(before)} trades before bar {ties[0]} agree")

    assert len(ours) == int(pf.trades.count()) > 50
    assert ours == theirs  # same entry and exit bars, trade by trade
    np.testing.assert_allclose([t["entry_price"] for t in res.trades], rec["Avg Entry Price"].to_numpy(),
                               rtol=1e-12)
    # money is rounded to 1e-8 per fill here, not in vectorbt (measured: ~1e-10 relative)
    assert res.parent["final_equity"] == pytest.approx(float(pf.final_value()), rel=1e-6)


def test_ltc_sma_cross_enters_on_a_cross_not_on_warmup():
    """LTC_BTC: SMA(10) is above SMA(30) on the first bar both are defined (bar
    29). That is no cross: the first entry waits for SMA(10) to dip below and
    cross back up (decided at 11:30, filled at the 11:35 open, as vectorbt),
    instead of filling at 07:25, the open after bar 29."""
    from simulator import indicators as ind

    m = load_market(BINANCE, symbols=["LTC_BTC"])
    g = Genome("sma_cross", {"fast": 10, "slow": 30}, symbols=("LTC_BTC",), size=1.0)
    d = ind.sma(m.close[:, 0], 10) - ind.sma(m.close[:, 0], 30)
    w = 29
    assert np.isnan(d[w - 1]) and d[w] > 0  # above at the end of warm-up
    sig, _ = build_signals(m, [g])
    s = sig[0, :, 0]
    j = int(np.flatnonzero(s != 0)[0])  # first non-flat target: the first cross (down, bar 32)
    assert j > w and (s[w:j] == 0).all() and s[j] == -1 and d[j] < 0
    k = int(np.flatnonzero(s > 0)[0])  # the first cross up: the first long (shorts are clipped)
    assert d[k - 1] < 0 < d[k]
    res = simulate_cohort(m, [g], bankroll=1000.0, config=EngineConfig(fee_bps=10, slippage_bps=0),
                          with_ledger=False)
    first = res.trades[0]["entry_time"]
    assert first != "2018-01-10T07:25:00Z"
    assert first == str(m.timestamps[k + 1])[:19] + "Z" == "2018-01-10T11:35:00Z"


def test_strategy_families_spread_and_all_trade(day, genomes):
    res = simulate_cohort(day, genomes, bankroll=1000.0, with_ledger=False)
    fams = {r["family"] for r in res.scores if r["trades"] > 0}
    assert len({g.family for g in genomes}) == 6
    assert len(fams) >= 3
