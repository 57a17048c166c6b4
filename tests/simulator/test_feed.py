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
    """A clock that moves only when slept on (seconds)."""

    def __init__(self, now: float = 1000.0):
        self.now = now
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


# ------------------------------------------------------------------ CcxtFeed on recorded pages

class RecordedExchange:
    """Recorded ccxt ``fetch_ohlcv`` pages of the binance-5m files, published as a venue
    would: at wall time ``now`` it returns the bars opened by then, the still-forming one
    included with half its final range (what a real venue sends mid-bar)."""

    def __init__(self, frames: dict[str, pd.DataFrame], clock) -> None:
        self.frames, self.clock, self.calls = frames, clock, 0

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None):
        assert timeframe == "5m"
        self.calls += 1
        now_ms = int(self.clock() * 1000)
        df = self.frames[symbol]
        ms = df["timestamp"].astype("int64") // 1_000_000
        rows = df[(ms >= (since or 0)) & (ms <= now_ms)].head(limit)
        out = []
        for r, m in zip(rows.itertuples(), ms[rows.index]):
            if m + 300_000 > now_ms:  # forming: a partial bar
                out.append([int(m), r.open, max(r.open, (r.open + r.high) / 2), min(r.open, (r.open + r.low) / 2),
                            r.open, r.volume / 2])
            else:
                out.append([int(m), r.open, r.high, r.low, r.close, r.volume])
        return out


def test_ccxt_feed_delivers_the_loaders_grid_bar_for_bar_and_only_closed_bars():
    from simulator.feed import CcxtFeed

    start, end = pd.Timestamp("2018-01-15", tz="UTC"), pd.Timestamp("2018-01-15T06:00", tz="UTC")
    frames = {}
    for sym in ("ETH_BTC", "LTC_BTC"):
        df = pd.read_parquet(BINANCE / f"{sym}.parquet")
        df = df[(df["timestamp"] >= start) & (df["timestamp"] < end)].reset_index(drop=True)
        frames[sym.replace("_", "/")] = df
    # a gap: LTC printed nothing at 01:00; neither printed at 02:00 (no row on the grid)
    frames["LTC/BTC"] = frames["LTC/BTC"][frames["LTC/BTC"]["timestamp"] != pd.Timestamp("2018-01-15T01:00", tz="UTC")]
    for k in frames:
        frames[k] = frames[k][frames[k]["timestamp"] != pd.Timestamp("2018-01-15T02:00", tz="UTC")].reset_index(drop=True)
    folder_rows = {k.replace("/", "_"): v for k, v in frames.items()}
    clock = FakeClock(start.timestamp() + 7.0)  # 7 s into the first bar
    ex = RecordedExchange(frames, clock)
    feed = CcxtFeed(ex, ["ETH/BTC", "LTC/BTC"], "5m", since=int(start.timestamp() * 1000), poll_s=2.0,
                    max_polls=200, clock=clock, sleep=clock.sleep)  # 02:00 takes a bar of polls to skip
    bars = []
    while (b := feed.next_bar()) is not None and b.timestamp < np.datetime64("2018-01-15T05:55"):
        assert b.timestamp.astype("datetime64[s]").astype(int) + 300 <= clock.now  # only closed bars
        bars.append(b)

    # independently: the loader's grid over files holding the same rows
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for sym, df in folder_rows.items():
            df.to_parquet(Path(tmp) / f"{sym}.parquet")
        m = load_market(tmp, symbols=["ETH_BTC", "LTC_BTC"], start=start, end="2018-01-15T05:55")
    assert feed.symbols == ("ETH_BTC", "LTC_BTC") and len(bars) == m.n_bars == 70  # 71 bar-opens, 02:00 absent
    for i, b in enumerate(bars):
        assert b.index == i and b.timestamp == m.timestamps[i]
        for k in ("open", "high", "low", "close", "volume", "tradable"):
            np.testing.assert_array_equal(getattr(b, k), getattr(m, k)[i], err_msg=f"{k} at {b.timestamp}")
    one = [b for b in bars if b.timestamp == np.datetime64("2018-01-15T01:00")][0]
    assert list(one.tradable) == [True, False] and one.volume[1] == 0.0  # LTC carried its close
    assert clock.sleeps[0] == pytest.approx(293.0)  # it waited for the first bar's close


def test_ccxt_feed_gives_up_after_max_polls_and_refuses_bad_settings():
    from simulator.feed import CcxtFeed

    clock = FakeClock(pd.Timestamp("2018-01-15T00:10", tz="UTC").timestamp())
    ex = RecordedExchange({"ETH/BTC": pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])},
                          clock)
    feed = CcxtFeed(ex, ["ETH/BTC"], "5m", since=int(pd.Timestamp("2018-01-15", tz="UTC").timestamp() * 1000),
                    poll_s=1.0, max_polls=3, clock=clock, sleep=clock.sleep)
    assert feed.next_bar() is None and ex.calls == 3 and clock.sleeps == [1.0, 1.0]
    for kw, match in ((dict(poll_s=0), "poll_s"), (dict(max_polls=0), "max_polls"), (dict(limit=0), "limit"),
                      (dict(since="today"), "since")):
        args = {"since": 0, **kw}
        with pytest.raises(FeedError, match=match):
            CcxtFeed(ex, ["ETH/BTC"], "5m", **args)
    with pytest.raises(FeedError, match="timeframe"):
        CcxtFeed(ex, ["ETH/BTC"], "1M", since=0)
    with pytest.raises(FeedError, match="symbols"):
        CcxtFeed(ex, [], "5m", since=0)
