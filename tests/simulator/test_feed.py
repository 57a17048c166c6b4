"""The bar-feed port: ReplayFeed (order, history, pacing) and the ccxt row parser."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.data import load_market
from simulator.feed import FeedError, ReplayFeed, parse_ccxt_ohlcv, timeframe_seconds
from tests.helpers import BINANCE

DAY = dict(start="2018-01-15", end="2018-01-16", warmup_bars=100)


@pytest.fixture(scope="module")
def market():
    return load_market(BINANCE, symbols=["ETH_BTC", "LTC_BTC"], **DAY)


def test_replay_yields_every_traded_bar_in_order(market):
    feed = ReplayFeed(market)
    assert feed.symbols == ("ETH_BTC", "LTC_BTC") and feed.timeframe_s == 300
    hist = feed.history()
    assert hist.n_bars == market.warmup == 100
    bars = list(feed)
    assert [b.index for b in bars] == list(range(100, market.n_bars))
    assert feed.next_bar() is None and feed.position == market.n_bars
    b = bars[5]
    assert b.timestamp == market.timestamps[105] and b.symbols == market.symbols
    for k in ("open", "high", "low", "close", "volume", "tradable"):
        np.testing.assert_array_equal(getattr(b, k), getattr(market, k)[105])


def test_replay_start_as_time_and_errors(market):
    feed = ReplayFeed(market, start="2018-01-15T12:00")
    assert feed.start == 100 + 144 and feed.next_bar().timestamp == np.datetime64("2018-01-15T12:00")
    with pytest.raises(FeedError, match="allowed: 0..387"):
        ReplayFeed(market, start=10_000)
    with pytest.raises(FeedError, match="speed=0"):
        ReplayFeed(market, speed=0)
    with pytest.raises(FeedError, match="neither a bar index nor a time"):
        ReplayFeed(market, start="soon")


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


def test_replay_speed_paces_bars_with_an_injected_clock(market):
    clock = FakeClock()
    feed = ReplayFeed(market, speed=4.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(5):
        feed.next_bar()
        times.append(clock.now)
    assert times == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    clock.now += 2.0  # a slow consumer: the overdue bars come at once, no extra waiting
    feed.next_bar()
    feed.next_bar()
    assert clock.now == 1003.0 and len(clock.sleeps) == 4
    fast = ReplayFeed(market, clock=clock, sleep=clock.sleep)  # speed None: never sleeps
    assert len(list(fast)) == 288 and len(clock.sleeps) == 4


def _recorded_rows(n=6):
    """ccxt-shaped rows recorded from the ETH_BTC file (ms timestamps)."""
    df = pd.read_parquet(BINANCE / "ETH_BTC.parquet").iloc[:n]
    ms = df["timestamp"].astype("int64") // 1_000_000
    return [[int(t), *map(float, r)] for t, r in zip(ms, df[["open", "high", "low", "close", "volume"]].to_numpy())]


def test_parse_ccxt_rows_into_bars():
    rows = _recorded_rows()
    # overlapping pages: unsorted, one repeated bar (the later row wins)
    shuffled = [rows[3], *rows[:3], [rows[2][0], rows[2][1], rows[2][2], rows[2][3], rows[2][4], 99.0], *rows[4:]]
    bars = parse_ccxt_ohlcv(shuffled, "ETH/BTC", "5m")
    assert [b.index for b in bars] == list(range(6))
    assert all(b.symbols == ("ETH_BTC",) and b.tradable.tolist() == [True] for b in bars)
    assert [int(b.timestamp.astype("datetime64[ms]").astype(np.int64)) for b in bars] == [r[0] for r in rows]
    assert [b.close[0] for b in bars] == [r[4] for r in rows]
    assert bars[2].volume[0] == 99.0
    assert bars[0].timestamp == np.datetime64("2018-01-10T04:55")
    # a poller acts on closed bars only: the bar opened 2 minutes ago is still forming
    now = rows[-1][0] + 120_000
    assert len(parse_ccxt_ohlcv(rows, "ETH_BTC", "5m", now_ms=now)) == 5
    assert parse_ccxt_ohlcv([], "ETH/BTC", "5m") == []


@pytest.mark.parametrize("patch, message", [
    (lambda r: r[:5], "row 2 has 5 fields"),
    (lambda r: [r[0], "0.1", *r[2:]], "row 2 field 2 is '0.1'; expected a number"),
    (lambda r: [r[0], r[1], float("nan"), *r[3:]], "row 2 field 3 is nan"),
    (lambda r: [r[0], -1.0, *r[2:]], "non-positive price open=-1.0"),
    (lambda r: [r[0], r[1], r[3] / 2, r[3], r[4], r[5]], "high=.* < low="),
    (lambda r: [r[0], r[2] * 2, *r[2:]], "open=.* outside \\[low="),
    (lambda r: [*r[:5], -3.0], "negative volume=-3.0"),
    (lambda r: [r[0] + 1000, *r[1:]], "not on the 5m grid"),
])
def test_parse_ccxt_bad_rows_name_row_and_value(patch, message):
    rows = _recorded_rows(3)
    rows[1] = patch(rows[1])
    with pytest.raises(FeedError, match=message):
        parse_ccxt_ohlcv(rows, "ETH/BTC", "5m")


def test_parse_ccxt_bad_symbol_and_timeframe():
    with pytest.raises(FeedError, match="BASE/QUOTE"):
        parse_ccxt_ohlcv(_recorded_rows(2), "ETH/", "5m")
    with pytest.raises(FeedError, match="timeframe='5x'"):
        parse_ccxt_ohlcv(_recorded_rows(2), "ETH/BTC", "5x")
    assert timeframe_seconds("1h") == 3600 and timeframe_seconds("5m") == 300
