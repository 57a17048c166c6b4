"""Fixtures shared by the simulator tests: the real Binance bars of ``../shared``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.market import MarketData
from tests.helpers import BINANCE

OHLCV = ("open", "high", "low", "close", "volume")


def _binance_common() -> tuple[list, pd.DatetimeIndex, dict[str, np.ndarray]]:
    """The Binance files, their common timestamps and ``(T, S)`` OHLCV on them."""
    files = sorted(BINANCE.glob("*.parquet"))
    frames = [pd.read_parquet(f).set_index("timestamp") for f in files]
    common = frames[0].index
    for f in frames[1:]:
        common = common.intersection(f.index)
    cols = {
        col: np.ascontiguousarray(np.stack([f.loc[common, col].to_numpy(float) for f in frames], axis=1))
        for col in OHLCV
    }
    return files, common, cols


@pytest.fixture(scope="module")
def binance_bars() -> dict[str, np.ndarray]:
    """(T, S) OHLCV of the ten Binance pairs on their common timestamps."""
    return _binance_common()[2]


@pytest.fixture(scope="module")
def binance_market() -> MarketData:
    """The ten Binance pairs on their common timestamps (tradable everywhere)."""
    files, common, cols = _binance_common()
    return MarketData(
        timestamps=common.tz_convert(None).to_numpy(dtype="datetime64[ns]"),
        symbols=tuple(f.stem for f in files),
        tradable=np.ones(cols["close"].shape, dtype=bool),
        timeframe_s=300,
        quote="BTC",
        source=str(BINANCE),
        **cols,
    )
