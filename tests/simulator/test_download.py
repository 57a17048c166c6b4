"""Tests for simulator.download (offline: no exchange is reachable here)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.data import load_market
from simulator.download import download, file_symbol, ohlcv_to_frame, write_ohlcv

T0 = 1_515_560_100_000  # 2018-01-10T04:55:00Z in ms
STEP = 300_000  # 5 minutes in ms

ROWS = [
    [T0 + 2 * STEP, 3.0, 3.5, 2.5, 3.2, 30.0],
    [T0, 1.0, 1.5, 0.5, 1.2, 10.0],
    [T0 + STEP, 2.0, 2.5, 1.5, 2.2, 20.0],
    [T0 + 2 * STEP, 3.0, 3.6, 2.5, 3.3, 31.0],  # overlapping page: newer version of the bar
    [T0 + 4 * STEP, 5.0, 5.5, 4.5, 5.2, 50.0],
]


def test_ohlcv_to_frame_sorts_and_deduplicates():
    f = ohlcv_to_frame(ROWS)
    assert list(f.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert str(f["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert f["timestamp"].tolist() == [
        pd.Timestamp("2018-01-10T04:55Z"), pd.Timestamp("2018-01-10T05:00Z"),
        pd.Timestamp("2018-01-10T05:05Z"), pd.Timestamp("2018-01-10T05:15Z"),
    ]
    assert f["close"].tolist() == [1.2, 2.2, 3.3, 5.2]
    assert f["high"].tolist() == [1.5, 2.5, 3.6, 5.5]
    assert f["volume"].tolist() == [10.0, 20.0, 31.0, 50.0]
    assert all(f[c].dtype == np.float64 for c in ("open", "high", "low", "close", "volume"))
    assert list(f.index) == [0, 1, 2, 3]


def test_ohlcv_to_frame_empty_and_bad_rows():
    empty = ohlcv_to_frame([])
    assert empty.empty and list(empty.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    with pytest.raises(ValueError, match=r"row 2 has 5 fields"):
        ohlcv_to_frame([[T0, 1, 1, 1, 1, 1], [T0 + STEP, 1, 1, 1, 1]])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_then_load_round_trip(tmp_path, fmt):
    path = write_ohlcv(ROWS, "ETH/BTC", tmp_path / "out", fmt=fmt)
    assert path == tmp_path / "out" / f"ETH_BTC.{fmt}"
    other = [[T0 + i * STEP, 0.1, 0.2, 0.05, 0.15, 1.0] for i in range(5)]
    write_ohlcv(other, "LTC/BTC", tmp_path / "out", fmt=fmt)
    m = load_market(tmp_path / "out")
    assert m.symbols == ("ETH_BTC", "LTC_BTC") and m.quote == "BTC" and m.timeframe_s == 300
    assert m.timestamps[0] == np.datetime64("2018-01-10T04:55", "ns") and m.n_bars == 5
    # ETH/BTC has no 05:10 bar: carried close, volume 0, not tradable
    assert m.tradable[:, 0].tolist() == [True, True, True, False, True]
    assert m.close[:, 0].tolist() == [1.2, 2.2, 3.3, 3.3, 5.2]
    assert m.volume[:, 0].tolist() == [10.0, 20.0, 31.0, 0.0, 50.0]
    assert m.low[:, 1].tolist() == [0.05] * 5


def test_csv_uses_iso_timestamps(tmp_path):
    path = write_ohlcv(ROWS, "ETH/BTC", tmp_path, fmt="csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume"
    assert lines[1].startswith("2018-01-10T04:55:00Z,1")


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="fmt='json'"):
        write_ohlcv(ROWS, "ETH/BTC", tmp_path, fmt="json")
    with pytest.raises(ValueError, match="no OHLCV rows"):
        write_ohlcv([], "ETH/BTC", tmp_path)
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        write_ohlcv(ROWS, "ETHBTC", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_file_symbol():
    assert file_symbol("ETH/BTC") == "ETH_BTC"
    assert file_symbol("BTC/USDT:USDT") == "BTC_USDT"
    with pytest.raises(ValueError):
        file_symbol("/BTC")


def test_unknown_exchange_and_timeframe(tmp_path):
    with pytest.raises(ValueError, match=r"unknown exchange id 'binanse'.*did you mean .*binance"):
        download("binanse", ["ETH/BTC"], "5m", 1, tmp_path)
    with pytest.raises(ValueError, match=r"no timeframe '7m'.*available: .*5m"):
        download("binance", ["ETH/BTC"], "7m", 1, tmp_path)
    assert list(tmp_path.iterdir()) == []
