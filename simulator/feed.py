"""The bar-feed port: where a deployment's bars come from, one timestamp at a time.

A :class:`BarFeed` yields :class:`Bar` objects — the OHLCV of every symbol at one
bar-open time — in time order. Adapters:

* :class:`ReplayFeed` replays a loaded :class:`~simulator.market.MarketData` bar by
  bar, as fast as possible or at ``speed`` bars per second (demos, tests);
* :class:`CcxtFeed` polls ``exchange.fetch_ohlcv`` and turns its pages into bars
  with :func:`parse_ccxt_ohlcv`; offline it is tested on recorded ccxt-shaped
  lists (no exchange is reachable here).

Timing convention (the engine's): a consumer reads bar t at its *close* and any
order it places fills at the *open* of the next tradable bar of that symbol.

Pure computation apart from ``time.sleep`` in a paced replay; the only network is
the exchange object a :class:`CcxtFeed` is given.
"""
from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from simulator.data import PRICE_MAX
from simulator.download import file_symbol, ohlcv_to_frame
from simulator.market import MarketData

__all__ = ["Bar", "BarFeed", "CcxtFeed", "ReplayFeed", "FeedError", "parse_ccxt_ohlcv", "timeframe_seconds"]


class FeedError(ValueError):
    """Bad feed input (rows, timeframe, start, speed); the message names the row and value."""


@dataclass(frozen=True)
class Bar:
    """One bar-open time across the feed's S symbols.

    Attributes:
        index: position of the bar on the feed's grid (for :class:`ReplayFeed`
            the row of its market, so it equals the engine's fill ``bar``; for
            :func:`parse_ccxt_ohlcv` the position in the parsed, sorted rows).
        timestamp: bar-open time, ``numpy.datetime64[ns]`` UTC.
        symbols: the S symbol names, file-name form (``ETH_BTC``).
        open, high, low, close: ``(S,) float64`` prices in the quote currency.
        volume: ``(S,) float64`` in base units (0 where the venue had no bar).
        tradable: ``(S,) bool``; False where the venue printed no bar (the price
            is carried over and nothing may fill there).
    """

    index: int
    timestamp: np.datetime64
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: np.ndarray


class BarFeed(ABC):
    """Port: a source of bars in time order (replay, exchange polling).

    Attributes:
        symbols: the S symbols every bar carries, in column order.
        timeframe_s: bar length in seconds (300 for 5-minute bars).

    Iterating a feed calls :meth:`next_bar` until it returns None.
    """

    symbols: tuple[str, ...]
    timeframe_s: int

    @abstractmethod
    def next_bar(self) -> Bar | None:
        """The next closed bar, blocking (pacing, polling) until it is due;
        None when the feed is exhausted (a replay at its end, a stopped poller)."""

    def __iter__(self) -> Iterator[Bar]:
        while True:
            bar = self.next_bar()
            if bar is None:
                return
            yield bar


def _bar_of(market: MarketData, i: int) -> Bar:
    return Bar(index=i, timestamp=market.timestamps[i], symbols=market.symbols,
               open=market.open[i], high=market.high[i], low=market.low[i], close=market.close[i],
               volume=market.volume[i], tradable=market.tradable[i])


class ReplayFeed(BarFeed):
    """Replay the bars of a loaded market, one timestamp at a time.

    Args:
        market: the bars (e.g. :func:`simulator.data.load_market`).
        start: first bar replayed: a row index ``0..T-1``, or a time (anything
            ``numpy.datetime64`` accepts; the first bar at or after it).
            None = ``market.warmup`` (the engine's first traded bar). The bars
            before it are the consumer's history, :meth:`history`.
        speed: bars per second (``10`` = ten bars a second), > 0; None = as fast
            as possible, no sleeping.
        clock: monotonic clock in seconds (default :func:`time.monotonic`).
        sleep: ``sleep(seconds)`` (default :func:`time.sleep`); inject both in tests.

    Pacing: bar k of the replay (k = 0, 1, ...) is released at
    ``t0 + k / speed`` where ``t0`` is the clock at the first :meth:`next_bar`
    call; a slow consumer is not made to wait again (no drift accumulates, no
    catch-up burst beyond what is already due).

    Raises:
        FeedError: ``start`` outside the market or after its last bar, or
            ``speed`` not a positive finite number.
    """

    def __init__(self, market: MarketData, start: int | object | None = None, speed: float | None = None,
                 *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if speed is not None and not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise FeedError(f"speed={speed!r}; allowed: bars per second > 0, or None (as fast as possible)")
        T = market.n_bars
        if start is None:
            i0 = market.warmup
        elif isinstance(start, (int, np.integer)) and not isinstance(start, bool):
            i0 = int(start)
        else:
            try:
                ns = np.datetime64(start, "ns").astype(np.int64)
            except (ValueError, TypeError) as exc:
                raise FeedError(f"start={start!r} is neither a bar index nor a time") from exc
            i0 = int(np.searchsorted(market.timestamps.astype("datetime64[ns]").astype(np.int64), ns))
        if not 0 <= i0 < T:
            raise FeedError(f"start={start!r} gives bar {i0}; allowed: 0..{T - 1} (the market has {T} bars)")
        self.market = market
        self.symbols = tuple(market.symbols)
        self.timeframe_s = int(market.timeframe_s)
        self.start = i0
        self.speed = None if speed is None else float(speed)
        self._clock = clock
        self._sleep = sleep
        self._next = i0
        self._t0: float | None = None

    def history(self) -> MarketData:
        """The bars before ``start`` (``warmup`` = all of them): what a consumer
        knows before the first replayed bar."""
        return self.market.head(self.start)

    @property
    def position(self) -> int:
        """Row index of the bar :meth:`next_bar` returns next (``T`` at the end)."""
        return self._next

    def next_bar(self) -> Bar | None:
        """The next bar, after sleeping until it is due when ``speed`` is set;
        None after the last bar."""
        i = self._next
        if i >= self.market.n_bars:
            return None
        if self.speed is not None:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + (i - self.start) / self.speed
            if due > now:
                self._sleep(due - now)
        self._next = i + 1
        return _bar_of(self.market, i)


# --------------------------------------------------------------------------- ccxt rows

_TF = re.compile(r"^(\d+)([smhdw])$")
_TF_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_seconds(timeframe: str) -> int:
    """Exchange timeframe notation -> seconds: ``5m`` -> 300, ``1h`` -> 3600.

    Raises:
        FeedError: not ``<positive int><s|m|h|d|w>`` (months, ``1M``, are not bars
            of fixed length and are refused).
    """
    m = _TF.match(str(timeframe))
    if not m or int(m.group(1)) <= 0:
        raise FeedError(f"timeframe={timeframe!r}; allowed: <n><s|m|h|d|w> such as 1m, 5m, 1h, 1d")
    return int(m.group(1)) * _TF_UNIT[m.group(2)]


def parse_ccxt_ohlcv(rows: Sequence[Sequence[float]], symbol: str, timeframe: str, *,
                     now_ms: int | None = None) -> list[Bar]:
    """ccxt ``fetch_ohlcv`` rows of one symbol -> validated single-symbol :class:`Bar`s.

    Parsing (6 fields per row, ms -> UTC, sort, one bar per timestamp with the
    row seen last winning, as overlapping pages repeat bars) is
    :func:`simulator.download.ohlcv_to_frame`, the same code ``data download``
    uses; this adds the checks :func:`simulator.data.load_market` applies to files.

    Args:
        rows: ``[[ms_timestamp, open, high, low, close, volume], ...]`` (ms since
            the Unix epoch, prices in the quote currency, volume in base units).
        symbol: exchange symbol ``BASE/QUOTE`` (``ETH/BTC``) or file form
            (``ETH_BTC``); bars carry the file form.
        timeframe: exchange notation (``5m``); every timestamp must sit on its grid.
        now_ms: when given, bars still forming at this time (open + timeframe >
            now) are dropped: a poller must only act on closed bars.

    Returns:
        Bars in time order, ``symbols == (file_symbol,)``, ``(1,)`` arrays,
        ``tradable`` True, ``index`` 0.. in that order. Empty input -> ``[]``.

    Raises:
        FeedError: naming the 1-based row, its timestamp and the value: wrong field
            count, a non-numeric or non-finite field, a price <= 0 or above
            :data:`simulator.data.PRICE_MAX`, negative volume, high < low, open or
            close outside [low, high], a timestamp off the timeframe grid; or a bad
            symbol / timeframe.
    """
    tf_s = timeframe_seconds(timeframe)
    try:
        name = file_symbol(symbol) if "/" in str(symbol) else str(symbol)
    except ValueError as exc:
        raise FeedError(str(exc)) from None
    if not name:
        raise FeedError(f"symbol={symbol!r}; expected BASE/QUOTE such as ETH/BTC")
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple, np.ndarray)):
            raise FeedError(f"{name}: OHLCV row {i + 1} is {row!r}; expected a list "
                            "[ms_timestamp, open, high, low, close, volume]")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise FeedError(f"{name}: OHLCV row {i + 1} field {j + 1} is {v!r}; expected a number")
            if not math.isfinite(float(v)):
                raise FeedError(f"{name}: OHLCV row {i + 1} field {j + 1} is {v!r}; expected a finite number")
    try:
        frame = ohlcv_to_frame(rows)
    except ValueError as exc:
        raise FeedError(f"{name}: {exc}") from None
    ts = frame["timestamp"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    cols = {c: frame[c].to_numpy(np.float64) for c in ("open", "high", "low", "close", "volume")}

    def fail(k: int, what: str, allowed: str) -> FeedError:
        return FeedError(f"{name}: OHLCV row at {np.datetime_as_string(ts[k], unit='s')}Z "
                         f"(bar {k + 1} after sorting): {what}; allowed: {allowed}")

    ms = ts.astype(np.int64) // 1_000_000
    off = np.flatnonzero(ms % (tf_s * 1000))
    if off.size:
        raise fail(int(off[0]), f"timestamp {int(ms[off[0]])} ms is not on the {timeframe} grid",
                   f"multiples of {tf_s * 1000} ms")
    for c in ("open", "high", "low", "close"):
        bad = np.flatnonzero(cols[c] <= 0)
        if bad.size:
            raise fail(int(bad[0]), f"non-positive price {c}={float(cols[c][bad[0]])!r}", "prices > 0")
        bad = np.flatnonzero(cols[c] > PRICE_MAX)
        if bad.size:
            raise fail(int(bad[0]), f"price {c}={float(cols[c][bad[0]])!r} above {PRICE_MAX:g}", f"<= {PRICE_MAX:g}")
    bad = np.flatnonzero(cols["volume"] < 0)
    if bad.size:
        raise fail(int(bad[0]), f"negative volume={float(cols['volume'][bad[0]])!r}", "volume >= 0")
    bad = np.flatnonzero(cols["high"] < cols["low"])
    if bad.size:
        k = int(bad[0])
        raise fail(k, f"high={float(cols['high'][k])!r} < low={float(cols['low'][k])!r}", "high >= low")
    slack = 1.0 + 1e-9  # the loader's tolerance (simulator.data)
    for c in ("open", "close"):
        bad = np.flatnonzero((cols[c] > cols["high"] * slack) | (cols[c] * slack < cols["low"]))
        if bad.size:
            k = int(bad[0])
            lo, hi = float(cols["low"][k]), float(cols["high"][k])
            raise fail(k, f"{c}={float(cols[c][k])!r} outside [low={lo!r}, high={hi!r}]", "low <= open, close <= high")
    n = len(ts)
    if now_ms is not None:
        n = int(np.searchsorted(ms + tf_s * 1000, int(now_ms), side="right"))
    one = np.ones(1, dtype=bool)
    return [Bar(index=k, timestamp=ts[k], symbols=(name,), open=cols["open"][k:k + 1],
                high=cols["high"][k:k + 1], low=cols["low"][k:k + 1], close=cols["close"][k:k + 1],
                volume=cols["volume"][k:k + 1], tradable=one.copy()) for k in range(n)]



# --------------------------------------------------------------------------- exchange polling


class CcxtFeed(BarFeed):
    """Poll an exchange's OHLCV (ccxt ``fetch_ohlcv``) for the closed bars of S
    symbols, one bar-open time at a time, on one grid.

    Args:
        exchange: a ccxt exchange instance (anything with ``fetch_ohlcv(symbol,
            timeframe, since=ms, limit=n)`` returning ccxt rows); public market
            data needs no API keys. Sandbox/testnet mode is the caller's
            (``exchange.set_sandbox_mode(True)``).
        symbols: exchange symbols ``BASE/QUOTE`` (``["ETH/BTC", "LTC/BTC"]``); bars
            carry the file form (``ETH_BTC``) in this order.
        timeframe: exchange notation (``5m``).
        since: the first bar-open time to deliver, ms since the Unix epoch (on the
            timeframe grid; rounded up to it otherwise).
        poll_s: seconds between two polls while the next bar is not published
            (default: a tenth of the timeframe, at most 10 s).
        max_polls: polls without a new bar before :meth:`next_bar` gives up and
            returns None (default None: wait for ever, a live feed).
        limit: rows asked per ``fetch_ohlcv`` call (500).
        clock: wall clock in seconds since the epoch (default :func:`time.time`);
        sleep: ``sleep(seconds)`` (default :func:`time.sleep`); inject both in tests.

    A bar is delivered once it has **closed** (open + timeframe <= now) and at least
    one symbol has printed it; a symbol that printed nothing there carries its
    previous close with ``tradable`` False and volume 0 (the loader's grid rule),
    which needs a previous bar: before the first print of every symbol the feed
    waits. Rows go through :func:`parse_ccxt_ohlcv` (validated, forming bar
    dropped), so a malformed page raises :class:`FeedError` naming the row.
    ``index`` counts delivered bars from 0.

    Raises:
        FeedError: no symbol, a bad symbol or timeframe, ``since`` not a number,
            ``poll_s`` / ``max_polls`` / ``limit`` out of range.
    """

    def __init__(self, exchange, symbols: Sequence[str], timeframe: str, *, since: int,
                 poll_s: float | None = None, max_polls: int | None = None, limit: int = 500,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        if not symbols:
            raise FeedError("symbols is empty; give exchange symbols such as ETH/BTC")
        self.timeframe = str(timeframe)
        self.timeframe_s = timeframe_seconds(timeframe)
        try:
            self.symbols = tuple(file_symbol(s) if "/" in str(s) else str(s) for s in symbols)
        except ValueError as exc:
            raise FeedError(str(exc)) from None
        if isinstance(since, bool) or not isinstance(since, (int, np.integer)):
            raise FeedError(f"since={since!r}; allowed: ms since the Unix epoch (int)")
        step = self.timeframe_s * 1000
        if poll_s is None:
            poll_s = min(self.timeframe_s / 10, 10.0)
        if not (isinstance(poll_s, (int, float)) and math.isfinite(poll_s) and poll_s > 0):
            raise FeedError(f"poll_s={poll_s!r}; allowed: seconds > 0")
        if max_polls is not None and not (isinstance(max_polls, int) and max_polls >= 1):
            raise FeedError(f"max_polls={max_polls!r}; allowed: an int >= 1 or None")
        if not (isinstance(limit, int) and 1 <= limit <= 10_000):
            raise FeedError(f"limit={limit!r}; allowed: 1..10000 rows per call")
        self._exchange, self._exchange_symbols = exchange, tuple(str(s) for s in symbols)
        self._next_ms = -(-int(since) // step) * step
        self._poll_s, self._max_polls, self._limit = float(poll_s), max_polls, limit
        self._clock, self._sleep = clock, sleep
        self._rows: list[dict[int, Bar]] = [{} for _ in self.symbols]
        self._last_close = np.full(len(self.symbols), np.nan)
        self._delivered = 0

    def _poll(self, now_ms: int) -> None:
        for k, sym in enumerate(self._exchange_symbols):
            rows = self._exchange.fetch_ohlcv(sym, self.timeframe, since=self._next_ms, limit=self._limit)
            for bar in parse_ccxt_ohlcv(rows or [], sym, self.timeframe, now_ms=now_ms):
                ms = int(bar.timestamp.astype("datetime64[ms]").astype(np.int64))
                if ms >= self._next_ms:
                    self._rows[k][ms] = bar

    def _assemble(self, ms: int) -> Bar | None:
        have = [self._rows[k].get(ms) for k in range(len(self.symbols))]
        if not any(have) or any(b is None and not np.isfinite(c) for b, c in zip(have, self._last_close)):
            return None
        cols = {c: np.empty(len(self.symbols)) for c in ("open", "high", "low", "close", "volume")}
        tradable = np.zeros(len(self.symbols), dtype=bool)
        for k, b in enumerate(have):
            if b is None:
                for c in ("open", "high", "low", "close"):
                    cols[c][k] = self._last_close[k]
                cols["volume"][k] = 0.0
            else:
                for c in cols:
                    cols[c][k] = getattr(b, c)[0]
                tradable[k] = True
                self._rows[k].pop(ms)
        self._last_close = cols["close"].copy()
        bar = Bar(index=self._delivered, timestamp=np.datetime64(ms, "ms").astype("datetime64[ns]"),
                  symbols=self.symbols, tradable=tradable, **cols)
        self._delivered += 1
        return bar

    def next_bar(self) -> Bar | None:
        """The next closed bar: sleeps until it closes, then polls (sleeping
        ``poll_s`` between polls) until the exchange has printed it; None after
        ``max_polls`` polls without it."""
        step = self.timeframe_s * 1000
        polls = 0
        while True:
            now_ms = int(self._clock() * 1000)
            close_at = self._next_ms + step
            if close_at > now_ms:  # still forming: wait for its close (not a poll)
                self._sleep((close_at - now_ms) / 1000)
                continue
            bar = self._assemble(self._next_ms)
            if bar is None:
                self._poll(now_ms)
                polls += 1
                bar = self._assemble(self._next_ms)
            if bar is not None:
                self._next_ms += step
                return bar
            later = [ms for rows in self._rows for ms in rows if ms > self._next_ms]
            if later and np.isfinite(self._last_close).all():
                self._next_ms = min(later)  # no symbol printed this bar: it is not on the grid
                continue
            if self._max_polls is not None and polls >= self._max_polls:
                return None
            self._sleep(self._poll_s)
