"""Small builders and paths shared by tests (bars from literal prices, single-agent arrays,
the repository root and the shared market data beside it)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.engine import AgentArrays
from simulator.kernel import UNITS
from simulator.market import MarketData

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``pyproject.toml``)."""
SHARED_DATA = ROOT.parent / "shared" / "data"
"""``../shared/data``: real bars for tests (read-only)."""
BINANCE = SHARED_DATA / "binance-5m"
COINBASE = SHARED_DATA / "coinbase-1m"
EQUITIES = SHARED_DATA / "us-equities-1m"


def market_from_prices(open_, high=None, low=None, close=None, tradable=None, warmup=0,
                       symbols=None, timeframe_s=300, start="2024-01-01T00:00") -> MarketData:
    """A MarketData from literal ``(T, S)`` (or ``(T,)``) price lists."""
    o = np.atleast_2d(np.asarray(open_, dtype=np.float64).T).T
    if o.ndim == 1:
        o = o[:, None]
    c = o.copy() if close is None else np.asarray(close, dtype=np.float64).reshape(o.shape)
    h = np.maximum(o, c) if high is None else np.asarray(high, dtype=np.float64).reshape(o.shape)
    l = np.minimum(o, c) if low is None else np.asarray(low, dtype=np.float64).reshape(o.shape)
    T, S = o.shape
    tr = np.ones((T, S), bool) if tradable is None else np.asarray(tradable, bool).reshape(o.shape)
    ts = np.datetime64(start, "ns") + np.arange(T) * np.timedelta64(timeframe_s, "s")
    syms = tuple(symbols or [f"S{i}_USD" for i in range(S)])
    return MarketData(ts, syms, o, h, l, c, np.ones((T, S)), tr, timeframe_s, "USD", "test",
                      warmup=warmup)


def agents(n, s, *, weight=1.0, leverage=1.0, stop=0.0, take=0.0, max_hold=0, alloc=None) -> AgentArrays:
    """AgentArrays for n agents on s symbols with the same settings."""
    alloc = np.full(n, 1000 * UNITS, dtype=np.int64) if alloc is None else np.asarray(alloc, np.int64)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), (n, s)).copy()
    return AgentArrays(w, np.full(n, float(leverage)), np.full(n, float(stop)), np.full(n, float(take)),
                       np.full(n, int(max_hold), dtype=np.int64), alloc)
