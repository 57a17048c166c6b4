"""The in-memory market: T bars x S symbols on one UTC bar grid.

Everything downstream (strategies, engine, metrics) reads bars from a
:class:`MarketData`; loaders (:mod:`simulator.data`) and the synthetic
generator (:mod:`simulator.synthetic`) are the only producers.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

SYNTHETIC_LABEL = "SYNTHETIC"


def _ns(value) -> int:
    """A time as int nanoseconds since the epoch (tz-aware values are converted to UTC)."""
    if hasattr(value, "tz_convert") and getattr(value, "tzinfo", None) is not None:
        value = value.tz_convert("UTC").tz_localize(None)
    return int(np.datetime64(value, "ns").astype(np.int64))


class MarketDataError(ValueError):
    """Bad or unusable market data; the message names the file, row and value."""


@dataclass(frozen=True)
class MarketData:
    """OHLCV bars of S symbols aligned on one grid of T UTC bar-open times.

    Attributes:
        timestamps: ``(T,) datetime64[ns]``, UTC bar-open times, strictly increasing.
        symbols: ``S`` symbol names in file-name form (``ETH_BTC``).
        open, high, low, close: ``(T, S) float64`` prices in the quote currency.
            On bars where a symbol had no bar at its venue, all four carry the
            previous close (before a symbol's first bar: its first open).
        volume: ``(T, S) float64`` in base units; 0 where the venue had no bar.
        tradable: ``(T, S) bool``; True only where the venue really printed a bar.
            The engine never fills an order on a non-tradable bar.
        timeframe_s: bar length in seconds (300 for 5-minute bars).
        quote: quote currency all prices and the bankroll are counted in
            (``BTC``, ``USD``).
        source: folder the bars came from, or ``SYNTHETIC``.
        warmup: number of leading bars that are history only (indicator
            warm-up, volatility estimates); the engine trades bars
            ``warmup .. T-1``.
    """

    timestamps: np.ndarray
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    tradable: np.ndarray
    timeframe_s: int
    quote: str
    source: str
    warmup: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, s = len(self.timestamps), len(self.symbols)
        for name in ("open", "high", "low", "close", "volume", "tradable"):
            arr = getattr(self, name)
            if arr.shape != (t, s):
                raise MarketDataError(f"{name} has shape {arr.shape}, expected ({t}, {s})")
        if not 0 <= self.warmup <= t:
            raise MarketDataError(f"warmup={self.warmup} outside 0..{t}")

    @property
    def synthetic(self) -> bool:
        """True when the bars come from the built-in synthetic market."""
        return self.source == SYNTHETIC_LABEL

    @property
    def n_bars(self) -> int:
        """T, all bars including warm-up."""
        return len(self.timestamps)

    @property
    def n_trading_bars(self) -> int:
        """Bars the engine trades: T - warmup."""
        return len(self.timestamps) - self.warmup

    @property
    def timeframe(self) -> str:
        """Timeframe in the exchanges' notation: ``1m``, ``5m``, ``1h``, ``1d``."""
        s = self.timeframe_s
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if s % size == 0:
                return f"{s // size}{unit}"
        return f"{s}s"

    def select(self, symbols: list[str] | tuple[str, ...]) -> "MarketData":
        """A copy with only ``symbols`` (in that order).

        Raises:
            MarketDataError: a symbol is not in this market.
        """
        idx = []
        for sym in symbols:
            if sym not in self.symbols:
                raise MarketDataError(
                    f"unknown symbol {sym!r}; available: {', '.join(self.symbols)}"
                )
            idx.append(self.symbols.index(sym))
        cols = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            symbols=tuple(symbols),
            open=self.open[:, cols].copy(),
            high=self.high[:, cols].copy(),
            low=self.low[:, cols].copy(),
            close=self.close[:, cols].copy(),
            volume=self.volume[:, cols].copy(),
            tradable=self.tradable[:, cols].copy(),
        )

    def head(self, n_bars: int) -> "MarketData":
        """The first ``n_bars`` bars (used to prove there is no lookahead)."""
        n = int(n_bars)
        return replace(
            self,
            timestamps=self.timestamps[:n],
            open=self.open[:n],
            high=self.high[:n],
            low=self.low[:n],
            close=self.close[:n],
            volume=self.volume[:n],
            tradable=self.tradable[:n],
            warmup=min(self.warmup, n),
        )

    def between(self, start, end, warmup_bars: int = 0) -> "MarketData":
        """The bars with open time in ``[start, end)``, plus up to ``warmup_bars``
        history bars before ``start`` (counted in ``warmup``).

        Args:
            start, end: anything ``numpy.datetime64`` accepts, or tz-aware
                ``pandas.Timestamp`` (UTC).
            warmup_bars: history bars to keep before ``start`` (fewer if the data
                starts later); their number becomes ``warmup`` of the result.

        Raises:
            MarketDataError: the window holds no bar.
        """
        s_ns, e_ns = _ns(start), _ns(end)
        ts = self.timestamps.astype("datetime64[ns]").astype(np.int64)
        i0 = int(np.searchsorted(ts, s_ns, side="left"))
        i1 = int(np.searchsorted(ts, e_ns, side="left"))
        if i1 <= i0:
            raise MarketDataError(
                f"no bars in [{np.datetime64(s_ns, 'ns')}, {np.datetime64(e_ns, 'ns')}); the data spans "
                f"{self.timestamps[0]} .. {self.timestamps[-1]}"
            )
        w0 = max(0, i0 - int(warmup_bars))
        sl = slice(w0, i1)
        return replace(
            self, timestamps=self.timestamps[sl], open=self.open[sl], high=self.high[sl],
            low=self.low[sl], close=self.close[sl], volume=self.volume[sl], tradable=self.tradable[sl],
            warmup=i0 - w0,
        )

    def label(self) -> str:
        """Human label of the data source for reports (``SYNTHETIC`` when synthetic)."""
        return SYNTHETIC_LABEL if self.synthetic else self.source
