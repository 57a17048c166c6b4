"""Tests for simulator.data.load_market on the real datasets and on broken files."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as pa_feather
import pytest

from simulator.data import data_dir_default, load_market, parse_symbol
from simulator.market import MarketDataError
from tests.helpers import BINANCE, COINBASE, EQUITIES

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason="shared data not present")


def _read_independent(path: Path) -> pd.DataFrame:
    """Read one file with plain pandas (an independent route to the bars)."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).dt.tz_localize(None)
    return df.set_index("timestamp")


def _grid_union(folder: Path) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex([])
    for f in sorted(folder.iterdir()):
        idx = idx.union(_read_independent(f).index)
    return idx.sort_values().as_unit("ns")


def _ts(text: str) -> np.datetime64:
    return np.datetime64(text, "ns")


@pytest.fixture(scope="module")
def binance():
    return load_market(BINANCE)


@pytest.fixture(scope="module")
def coinbase():
    return load_market(COINBASE)


@pytest.fixture(scope="module")
def equities():
    return load_market(EQUITIES, quote="USD")


# ----------------------------------------------------------------------------- real data


def test_binance_shape_quote_timeframe(binance):
    m = binance
    assert m.symbols == (
        "ADA_BTC", "DASH_BTC", "ETC_BTC", "ETH_BTC", "LTC_BTC",
        "NXT_BTC", "TRX_BTC", "XLM_BTC", "XMR_BTC", "ZEC_BTC",
    )
    assert m.open.shape == (5760, 10)
    assert m.quote == "BTC"
    assert m.timeframe_s == 300 and m.timeframe == "5m"
    assert m.warmup == 0
    assert m.source == str(BINANCE.resolve())
    assert m.timestamps.dtype == np.dtype("datetime64[ns]")
    assert m.timestamps[0] == _ts("2018-01-10T04:55") and m.timestamps[-1] == _ts("2018-01-30T04:50")
    for name in ("open", "high", "low", "close", "volume"):
        arr = getattr(m, name)
        assert arr.dtype == np.float64 and arr.flags.c_contiguous
    assert m.tradable.dtype == np.bool_ and m.tradable.flags.c_contiguous
    # TRX_BTC prices are ~1e-6 BTC and must survive untouched
    assert 1e-7 < np.median(m.close[:, m.symbols.index("TRX_BTC")]) < 1e-4


def test_binance_grid_is_sorted_union(binance):
    expected = _grid_union(BINANCE)
    assert np.array_equal(binance.timestamps, expected.to_numpy())
    assert np.all(np.diff(binance.timestamps.astype("int64")) > 0)
    # rows per symbol = tradable bars per symbol
    for j, sym in enumerate(binance.symbols):
        assert binance.tradable[:, j].sum() == len(_read_independent(BINANCE / f"{sym}.parquet"))


@pytest.mark.parametrize("sym", ["ADA_BTC", "TRX_BTC"])
def test_binance_gap_fill_matches_pandas_reindex_ffill(binance, sym):
    df = _read_independent(BINANCE / f"{sym}.parquet")
    j = binance.symbols.index(sym)
    grid = pd.DatetimeIndex(binance.timestamps)
    re = df.reindex(grid)
    present = re["close"].notna().to_numpy()
    assert (~present).sum() > 0, "this symbol is known to have missing bars"
    prev_close = re["close"].ffill().fillna(df["open"].iloc[0]).to_numpy()
    assert np.array_equal(binance.tradable[:, j], present)
    for col in ("open", "high", "low", "close"):
        expected = np.where(present, re[col].to_numpy(), prev_close)
        assert np.array_equal(getattr(binance, col)[:, j], expected), col
    assert np.array_equal(binance.volume[:, j], re["volume"].fillna(0.0).to_numpy())
    assert np.all(binance.volume[~present, j] == 0)


def test_coinbase_shape_and_spans(coinbase):
    m = coinbase
    assert m.symbols == ("BTC_USD", "ETH_USD", "LTC_USD")
    assert m.quote == "USD" and m.timeframe_s == 60
    expected = _grid_union(COINBASE)
    assert np.array_equal(m.timestamps, expected.to_numpy())
    eth = m.symbols.index("ETH_USD")
    assert m.tradable[:, eth].sum() == 2449
    # ETH_USD ends on 2018-04-05 23:59; afterwards its last close is carried
    after = m.timestamps >= _ts("2018-04-06")
    assert after.any() and not m.tradable[after, eth].any()
    last_close = _read_independent(COINBASE / "ETH_USD.csv")["close"].iloc[-1]
    for col in ("open", "high", "low", "close"):
        assert np.all(getattr(m, col)[after, eth] == last_close)
    assert np.all(m.volume[after, eth] == 0)


def test_equities_need_quote_and_have_non_tradable_bars(equities):
    with pytest.raises(MarketDataError, match=r"AIG\.csv.*no quote currency.*quote='USD'"):
        load_market(EQUITIES)
    m = equities
    assert m.symbols == ("AIG", "BAC", "IBM", "SPY") and m.quote == "USD"
    assert m.timeframe_s == 60
    assert np.array_equal(m.timestamps, _grid_union(EQUITIES).to_numpy())
    # trading hours: every symbol misses some grid bars, more so outside the session
    assert np.all(m.tradable.sum(axis=0) < m.n_bars)
    # the grid starts with SPY at 08:06; AIG's first bar is 10:59 at 49.0
    aig = m.symbols.index("AIG")
    assert m.timestamps[0] == _ts("2013-10-04T08:06")
    before = m.timestamps < _ts("2013-10-04T10:59")
    assert before.sum() > 0 and not m.tradable[before, aig].any()
    assert np.all(m.close[before, aig] == 49.0) and np.all(m.volume[before, aig] == 0)
    first = int(np.argmax(m.timestamps == _ts("2013-10-04T10:59")))
    assert m.tradable[first, aig] and m.volume[first, aig] == 300


# ----------------------------------------------------------------------------- window / warm-up


def test_window_is_half_open(binance):
    m = load_market(BINANCE, start="2018-01-16", end="2018-01-17")
    assert m.n_bars == 288 and m.warmup == 0
    assert m.timestamps[0] == _ts("2018-01-16T00:00")
    assert m.timestamps[-1] == _ts("2018-01-16T23:55")
    i0 = int(np.argmax(binance.timestamps == _ts("2018-01-16T00:00")))
    assert np.array_equal(m.close, binance.close[i0 : i0 + 288])
    one = load_market(BINANCE, start="2018-01-16T00:00", end="2018-01-16T00:05")
    assert one.n_bars == 1


def test_window_bound_types_agree():
    a = load_market(BINANCE, symbols=["ETH_BTC"], start="2018-01-16T01:00", end="2018-01-16T02:00")
    b = load_market(
        BINANCE, symbols=["ETH_BTC"], start=datetime(2018, 1, 16, 1), end=pd.Timestamp("2018-01-16 02:00")
    )
    c = load_market(
        BINANCE,
        symbols=["ETH_BTC"],
        start=pd.Timestamp("2018-01-16T02:00+01:00"),
        end=datetime(2018, 1, 16, 2, tzinfo=timezone.utc),
    )
    assert a.n_bars == 12
    for other in (b, c):
        assert np.array_equal(a.timestamps, other.timestamps)
        assert np.array_equal(a.close, other.close)


def test_warmup_bars_precede_start(binance):
    m = load_market(BINANCE, start="2018-01-16", end="2018-01-17", warmup_bars=12)
    assert m.warmup == 12 and m.n_bars == 300 and m.n_trading_bars == 288
    assert m.timestamps[0] == _ts("2018-01-15T23:00")
    assert m.timestamps[12] == _ts("2018-01-16T00:00")
    i0 = int(np.argmax(binance.timestamps == _ts("2018-01-15T23:00")))
    assert np.array_equal(m.open, binance.open[i0 : i0 + 300])
    # fewer available than asked: only one bar exists before the second bar
    m2 = load_market(BINANCE, start="2018-01-10T05:00", end="2018-01-10T06:00", warmup_bars=100)
    assert m2.warmup == 1 and m2.timestamps[0] == _ts("2018-01-10T04:55")
    # no start: nothing precedes the first bar
    assert load_market(BINANCE, end="2018-01-11", warmup_bars=5).warmup == 0


def test_warmup_bars_are_grid_bars_on_sparse_equities(equities):
    start = _ts("2013-10-07T00:00")  # Monday; the previous grid bars are Friday evening
    m = load_market(EQUITIES, quote="USD", start="2013-10-07", end="2013-10-08", warmup_bars=3)
    i0 = int(np.searchsorted(equities.timestamps, start))
    assert m.warmup == 3
    assert np.array_equal(m.timestamps[:3], equities.timestamps[i0 - 3 : i0])
    assert m.timestamps[0] < _ts("2013-10-05")  # really Friday, not Sunday 23:57
    assert np.array_equal(m.close, equities.close[i0 - 3 : i0 - 3 + m.n_bars])


def test_empty_window_reports_span():
    with pytest.raises(MarketDataError, match=r"no bars.*2018-01-10T04:55:00\+00:00 \.\. 2018-01-30T04:50"):
        load_market(BINANCE, start="2019-01-01")
    with pytest.raises(MarketDataError, match="no bars"):
        load_market(BINANCE, start="2018-01-16", end="2018-01-16")


def test_bad_window_arguments():
    with pytest.raises(MarketDataError, match="start='yesterday-ish'"):
        load_market(BINANCE, start="yesterday-ish")
    with pytest.raises(MarketDataError, match="warmup_bars=-1"):
        load_market(BINANCE, warmup_bars=-1)


# ----------------------------------------------------------------------------- symbols / quotes


def test_symbol_selection_keeps_order(binance):
    m = load_market(BINANCE, symbols=["LTC_BTC", "ETH_BTC"])
    assert m.symbols == ("LTC_BTC", "ETH_BTC")
    # both symbols have all 5760 bars, so the grid is the full one
    assert np.array_equal(m.timestamps, binance.timestamps)
    assert np.array_equal(m.close[:, 0], binance.close[:, binance.symbols.index("LTC_BTC")])
    assert np.array_equal(m.close[:, 1], binance.close[:, binance.symbols.index("ETH_BTC")])
    assert load_market(BINANCE, symbols="ETH_BTC").symbols == ("ETH_BTC",)


def test_unknown_symbol_lists_available():
    with pytest.raises(MarketDataError, match=r"unknown symbol 'DOGE_BTC'.*available: ADA_BTC, DASH_BTC"):
        load_market(BINANCE, symbols=["ETH_BTC", "DOGE_BTC"])


def test_mixed_quote_currencies(tmp_path):
    shutil.copy(COINBASE / "BTC_USD.csv", tmp_path)
    shutil.copy(BINANCE / "ETH_BTC.parquet", tmp_path)
    with pytest.raises(MarketDataError, match=r"different quote currencies.*BTC: ETH_BTC.*USD: BTC_USD"):
        load_market(tmp_path)
    m = load_market(tmp_path, symbols=["BTC_USD"])
    assert m.quote == "USD" and m.timeframe_s == 60
    # quote= fills in names without a quote; it does not override BASE_QUOTE names
    shutil.copy(EQUITIES / "SPY.csv", tmp_path)
    with pytest.raises(MarketDataError, match="different quote currencies"):
        load_market(tmp_path, quote="USD")
    assert load_market(tmp_path, symbols=["SPY", "BTC_USD"], quote="USD").quote == "USD"


def test_parse_symbol():
    assert parse_symbol("ETH_BTC-5m.feather") == ("ETH_BTC", "BTC")
    assert parse_symbol("ETH_BTC-1M.feather") == ("ETH_BTC", "BTC")
    assert parse_symbol("SYN_A_USD.csv") == ("SYN_A_USD", "USD")
    assert parse_symbol("SPY.csv") == ("SPY", None)
    assert parse_symbol("ETH_.csv") == ("ETH_", None)


# ----------------------------------------------------------------------------- hand-made files

HEADER = "timestamp,open,high,low,close,volume\n"


def _csv(folder: Path, name: str, rows: list[str], header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(header + "".join(r + "\n" for r in rows))
    return path


def test_hand_worked_gap_fill(tmp_path):
    # A: bars at 00:00, 00:01, 00:03; B: 00:01, 00:02, 00:03 -> grid 00:00..00:03
    _csv(tmp_path, "A_USD.csv", [
        "2020-01-01T00:00:00Z,10,11,9,10.5,1",
        "2020-01-01T00:01:00Z,10.5,12,10,11.5,2",
        "2020-01-01T00:03:00Z,11,11.5,10.8,11.2,3",
    ])
    _csv(tmp_path, "B_USD.csv", [
        "2020-01-01T00:01:00Z,20,21,19,20.5,5",
        "2020-01-01T00:02:00Z,20.5,22,20,21,6",
        "2020-01-01T00:03:00Z,21,21,20,20.2,7",
    ])
    m = load_market(tmp_path)
    assert m.timeframe_s == 60 and m.quote == "USD"
    assert list(m.timestamps) == [_ts(f"2020-01-01T00:0{i}") for i in range(4)]
    assert m.tradable.tolist() == [[True, False], [True, True], [False, True], [True, True]]
    assert m.open.tolist() == [[10, 20], [10.5, 20], [11.5, 20.5], [11, 21]]
    assert m.high.tolist() == [[11, 20], [12, 21], [11.5, 22], [11.5, 21]]
    assert m.low.tolist() == [[9, 20], [10, 19], [11.5, 20], [10.8, 20]]
    assert m.close.tolist() == [[10.5, 20], [11.5, 20.5], [11.5, 21], [11.2, 20.2]]
    assert m.volume.tolist() == [[1, 0], [2, 5], [0, 6], [3, 7]]
    assert m.meta["files"] == {"A_USD": "A_USD.csv", "B_USD": "B_USD.csv"}


def test_gappy_files_share_the_timeframe_and_timestamps_are_floored(tmp_path):
    # A: 1-minute bars with gaps; B: 1-minute bars stamped 30 s into the minute;
    # C: naive + offset times
    _csv(tmp_path, "A_USD.csv", [f"2020-01-01T00:{m:02d}:00Z,1,1,1,1,1" for m in (0, 1, 2, 10, 15)])
    _csv(tmp_path, "B_USD.csv", [f"2020-01-01T00:{m:02d}:30Z,2,2,2,2,1" for m in (1, 2, 3, 9)])
    _csv(tmp_path, "C_USD.csv", ["2020-01-01 00:04:00,3,3,3,3,1", "2020-01-01T01:05:00+01:00,3,3,3,3,1",
                                 "2020-01-01T00:06:00Z,3,3,3,3,1"])
    m = load_market(tmp_path)
    assert m.timeframe_s == 60
    minutes = [0, 1, 2, 3, 4, 5, 6, 9, 10, 15]
    assert list(m.timestamps) == [_ts(f"2020-01-01T00:{x:02d}") for x in minutes]
    assert m.tradable[:, 0].tolist() == [x in (0, 1, 2, 10, 15) for x in minutes]
    assert m.tradable[:, 1].tolist() == [x in (1, 2, 3, 9) for x in minutes]
    assert m.tradable[:, 2].tolist() == [x in (4, 5, 6) for x in minutes]


def test_time_column_formats(tmp_path):
    # epoch seconds as text, a capitalised `Date` column with non-ISO strings
    _csv(tmp_path, "A_USD.csv", ["1577836800,1,1,1,1,1", "1577836860,2,2,2,2,1"])
    _csv(tmp_path, "B_USD.csv", ["2020/01/01 00:01,1,1,1,1,1", "Jan 1 2020 00:02,1,1,1,1,1"],
         header="Date,Open,High,Low,Close,Volume\n")
    m = load_market(tmp_path)
    assert list(m.timestamps) == [_ts(f"2020-01-01T00:0{i}") for i in range(3)]
    assert m.tradable.tolist() == [[True, False], [True, True], [False, True]]
    assert m.close[:, 0].tolist() == [1.0, 2.0, 2.0]


def test_rows_falling_into_one_bar_are_rejected(tmp_path):
    _csv(tmp_path, "A_USD.csv", [f"2020-01-01T00:0{m}:00Z,1,1,1,1,1" for m in range(5)])
    # B's differences are 40 s once and 60 s three times: timeframe 60 s
    _csv(tmp_path, "B_USD.csv", ["2020-01-01T00:00:10Z,1,1,1,1,1"] + [
        f"2020-01-01T00:0{m}:50Z,1,1,1,1,1" for m in range(4)
    ])
    with pytest.raises(MarketDataError, match=r"B_USD\.csv: data rows 1 and 2 .*same 60-second bar"):
        load_market(tmp_path)


def test_freqtrade_feather(tmp_path):
    full = pd.date_range("2018-01-10 04:55", periods=6, freq="5min", tz="UTC")

    def frame(dates, scale):
        n = len(dates)
        base = np.arange(1, n + 1, dtype=float) * scale
        return pd.DataFrame({
            "date": dates.as_unit("ms"), "open": base, "high": base + 0.5,
            "low": base * 0.5, "close": base + 0.2, "volume": base * 10,
        })

    def write(df, path):
        pa_feather.write_feather(pa.Table.from_pandas(df, preserve_index=False), path)

    eth = frame(full.delete(3), 1.0)  # ETH_BTC misses the 05:10 bar
    write(eth, tmp_path / "ETH_BTC-5m.feather")
    write(frame(full, 0.1), tmp_path / "LTC_BTC-5m.feather")
    m = load_market(tmp_path)
    assert m.symbols == ("ETH_BTC", "LTC_BTC") and m.quote == "BTC" and m.timeframe_s == 300
    assert m.n_bars == 6 and m.timestamps[0] == _ts("2018-01-10T04:55")
    assert m.tradable[:, 0].tolist() == [True, True, True, False, True, True]
    assert m.tradable[:, 1].all()
    assert m.close[:, 0].tolist() == [1.2, 2.2, 3.2, 3.2, 4.2, 5.2]
    assert m.high[3, 0] == 3.2 and m.low[3, 0] == 3.2 and m.low[2, 0] == 1.5 and m.volume[3, 0] == 0.0
    assert m.volume[:, 1].tolist() == pytest.approx([1, 2, 3, 4, 5, 6])
    # the time column may hold epoch milliseconds instead of datetimes
    other = tmp_path / "epoch"
    other.mkdir()
    write(eth.assign(date=full.delete(3).as_unit("ms").asi8), other / "ETH_BTC-5m.feather")
    m2 = load_market(other)
    assert m2.n_bars == 5 and np.array_equal(m2.timestamps, np.delete(m.timestamps, 3))
    assert np.array_equal(m2.close[:, 0], np.delete(m.close[:, 0], 3))


# ----------------------------------------------------------------------------- errors

GOOD = [
    "2020-01-01T00:00:00Z,10,11,9,10.5,1",
    "2020-01-01T00:01:00Z,10.5,12,10,11.5,2",
    "2020-01-01T00:02:00Z,11,11.5,10.8,11.2,3",
]


def _with_row(i: int, row: str) -> list[str]:
    rows = list(GOOD)
    rows[i - 1] = row
    return rows


@pytest.mark.parametrize(
    "rows, pattern",
    [
        (_with_row(3, "not-a-date,11,11.5,10.8,11.2,3"), r"data row 3: unparseable timestamp 'not-a-date'"),
        (_with_row(2, ",10.5,12,10,11.5,2"), r"data row 2: unparseable timestamp"),
        (_with_row(3, "2020-01-01T00:01:00Z,11,11.5,10.8,11.2,3"),
         r"data row 3 \(timestamp 2020-01-01T00:01:00\+00:00\): duplicate timestamp .*same as data row 2"),
        (_with_row(3, "2019-12-31T23:59:00Z,11,11.5,10.8,11.2,3"),
         r"data row 3 \(timestamp 2019-12-31T23:59:00\+00:00\): .*unsorted.*strictly increasing"),
        (_with_row(2, "2020-01-01T00:01:00Z,10.5,12,10,,2"), r"data row 2 .*close=nan"),
        (_with_row(2, "2020-01-01T00:01:00Z,10.5,12,10,NaN,2"), r"data row 2 .*close=nan"),
        (_with_row(1, "2020-01-01T00:00:00Z,10,11,9,10.5,abc"), r"data row 1 .*volume='abc' is not a number"),
        (_with_row(2, "2020-01-01T00:01:00Z,10.5,12,0,11.5,2"), r"data row 2 .*non-positive price low=0\.0.*prices > 0"),
        (_with_row(3, "2020-01-01T00:02:00Z,-11,11.5,10.8,11.2,3"), r"data row 3 .*non-positive price open=-11\.0"),
        (_with_row(2, "2020-01-01T00:01:00Z,10.5,12,10,11.5,-2"), r"data row 2 .*negative volume=-2\.0.*volume >= 0"),
        (_with_row(3, "2020-01-01T00:02:00Z,11,10.7,10.8,11.2,3"), r"data row 3 .*high=10\.7 < low=10\.8.*high >= low"),
    ],
    ids=["timestamp", "empty-timestamp", "duplicate", "unsorted", "nan-empty", "nan-text",
         "not-number", "zero-price", "negative-price", "negative-volume", "high-lt-low"],
)
def test_bad_rows_name_file_row_and_value(tmp_path, rows, pattern):
    path = _csv(tmp_path, "ETH_USD.csv", rows)
    with pytest.raises(MarketDataError, match=pattern) as info:
        load_market(tmp_path)
    assert str(path) in str(info.value)


def test_missing_column(tmp_path):
    path = _csv(tmp_path, "ETH_USD.csv", ["2020-01-01T00:00:00Z,10,11,9,10.5"],
                header="timestamp,open,high,low,close\n")
    with pytest.raises(MarketDataError, match=r"missing column\(s\) volume") as info:
        load_market(tmp_path)
    assert str(path) in str(info.value)
    _csv(tmp_path, "ETH_USD.csv", ["x,10,11,9,10.5,1"], header="time,open,high,low,close,volume\n")
    with pytest.raises(MarketDataError, match=r"missing column\(s\) timestamp \(or date\)"):
        load_market(tmp_path)


def test_bad_parquet_value_names_row(tmp_path):
    df = pd.DataFrame({
        "timestamp": pd.date_range("2020-01-01", periods=4, freq="5min", tz="UTC"),
        "open": [1.0, 1, 1, 1], "high": [1.0, 1, 1, 1], "low": [1.0, 1, 1, 1],
        "close": [1.0, 1, np.nan, 1], "volume": [1.0, 1, 1, 1],
    })
    df.to_parquet(tmp_path / "X_BTC.parquet")
    with pytest.raises(MarketDataError, match=r"X_BTC\.parquet: data row 3 \(timestamp 2020-01-01T00:10:00\+00:00\)"):
        load_market(tmp_path)


def test_folder_errors(tmp_path):
    with pytest.raises(MarketDataError, match=r"nope.*does not exist"):
        load_market(tmp_path / "nope")
    (tmp_path / "README.md").write_text("no bars here")
    with pytest.raises(MarketDataError, match=r"no data files"):
        load_market(tmp_path)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(MarketDataError, match=r"junk\.parquet"):
        load_market(tmp_path)


def test_two_files_for_one_symbol(tmp_path):
    _csv(tmp_path, "ETH_USD.csv", GOOD)
    _csv(tmp_path, "ETH_USD-1m.csv", GOOD)
    with pytest.raises(MarketDataError, match=r"several files for symbol ETH_USD"):
        load_market(tmp_path)


def test_single_bar_files_cannot_give_a_timeframe(tmp_path):
    _csv(tmp_path, "ETH_USD.csv", GOOD[:1])
    with pytest.raises(MarketDataError, match="cannot infer the timeframe"):
        load_market(tmp_path)


# ----------------------------------------------------------------------------- default folder


def test_data_dir_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_dir_default() is None
    (tmp_path / "data" / "a-empty").mkdir(parents=True)
    (tmp_path / "data" / "README.md").write_text("x")
    assert data_dir_default() is None
    _csv(tmp_path / "data" / "c", "ETH_USD.csv", GOOD)
    _csv(tmp_path / "data" / "b" / "deeper", "BTC_USD.csv", GOOD)
    assert data_dir_default() == (tmp_path / "data" / "b" / "deeper").resolve()
    _csv(tmp_path / "data", "LTC_USD.csv", GOOD)
    assert data_dir_default() == (tmp_path / "data").resolve()
    assert load_market(data_dir_default()).symbols == ("LTC_USD",)
