"""Load per-symbol OHLCV bar files into one :class:`~simulator.market.MarketData`.

A data folder holds one file per symbol:

* ``<SYMBOL>.parquet`` and ``<SYMBOL>.csv`` in the project layout (columns
  ``timestamp, open, high, low, close, volume``; CSV timestamps in ISO-8601 such
  as ``2018-04-04T00:00:00Z``);
* freqtrade-style ``<SYMBOL>-<timeframe>.feather`` (``ETH_BTC-5m.feather``,
  columns ``date, open, high, low, close, volume``).

Every format accepts either ``timestamp`` or ``date`` as the time column
(case-insensitive), holding datetimes (naive = UTC, tz-aware = converted to UTC),
ISO-8601 / other date strings, or epoch numbers (unit s / ms / us / ns guessed
from the magnitude). Extra columns are ignored.

The symbol is the file stem without a ``-<timeframe>`` suffix (``ETH_BTC``); the
quote currency is the part after the last ``_`` (``BTC``). A name without ``_``
(equities such as ``SPY.csv``) is an error unless ``load_market(..., quote="USD")``
supplies the currency. All symbols of one load must share a quote currency,
because the bankroll is counted in it.

Grid construction (documented here because the engine depends on it):

1. Every file is validated (columns, each once; parseable timestamps, no
   duplicates, strictly increasing, finite OHLCV, 0 < prices <= :data:`PRICE_MAX`,
   volume >= 0, low <= open, close <= high).
2. The timeframe is inferred per symbol as the most common positive difference
   between consecutive timestamps (ties: the smaller); the load's timeframe is the
   most common of these symbol-level modes (ties: the smaller). A file whose
   timeframe differs from that (a 1-minute file in a 5-minute folder, or a
   5-minute file among 1-minute ones) is an error naming it: a mixed folder would
   mis-annualise every Sharpe. Gaps inside a file are fine (its mode stays the
   folder's timeframe); missing bars become gaps on the grid.
3. Timestamps are floored to the timeframe (counted from the Unix epoch) and the
   grid is the sorted union of all symbols' floored timestamps. It is not a
   regular calendar: a time at which *no* symbol printed a bar (a market closed
   overnight, a venue outage) is simply absent.
4. Where a symbol has no bar at a grid time, open = high = low = close = its
   previous close, volume = 0 and ``tradable`` = False. Before a symbol's first
   bar, the four prices are its *first open*, volume 0, ``tradable`` False. This
   is a placeholder that keeps the arrays finite: those bars are never tradable,
   so no fill uses them, but an indicator reading them sees a flat price, not
   NaN. It is a later price, so strategies that care should mask with
   ``tradable`` (or start after every symbol's first bar).
5. The ``[start, end)`` window and the warm-up bars are cut from this grid, so
   warm-up bars are real grid bars.
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as pa_feather
import pyarrow.parquet as pq

from simulator.market import MarketData, MarketDataError

__all__ = ["DATA_SUFFIXES", "PRICE_MAX", "load_market", "data_dir_default", "mode_spacing_ns", "parse_symbol"]

#: File suffixes :func:`load_market` reads (case-insensitive).
DATA_SUFFIXES: tuple[str, ...] = (".parquet", ".csv", ".feather")

_OHLCV = ("open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")
_TIME_COLUMNS = ("timestamp", "date")
# freqtrade appends "-<timeframe>" to the pair: ETH_BTC-5m, ETH_BTC-1h, ETH_BTC-1M.
_TF_SUFFIX = re.compile(r"-\d+[smhdwM]$")
_NS = 1_000_000_000

#: Highest price a bar file may hold (quote currency per base unit). Money is
#: int64 units of 1e-8, so one base unit must stay far below 2**63 units
#: (9.2e10 in the quote currency); 1e10 leaves a factor of 9.
PRICE_MAX = 1e10
# relative slack of the OHLC consistency checks (float rounding of vendors' bars)
_OHLC_RTOL = 1e-9


# --------------------------------------------------------------------------- names


def parse_symbol(path: str | Path) -> tuple[str, str | None]:
    """Symbol and quote currency encoded in a data file's name.

    ``ETH_BTC-5m.feather`` -> ``("ETH_BTC", "BTC")``; ``SYN_A_USD.csv`` ->
    ``("SYN_A_USD", "USD")``; ``SPY.csv`` -> ``("SPY", None)`` (no quote in the name).
    The quote is the part after the last ``_``; an empty base or quote (``_BTC``,
    ``ETH_``) gives ``None``.
    """
    stem = Path(path).name
    for suffix in DATA_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    symbol = _TF_SUFFIX.sub("", stem)
    base, sep, quote = symbol.rpartition("_")
    if not sep or not base or not quote:
        return symbol, None
    return symbol, quote


def _data_files(folder: Path) -> list[Path]:
    """Data files directly inside ``folder`` (hidden files skipped), sorted by name."""
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if entry.name.lower().endswith(DATA_SUFFIXES):
                out.append(Path(entry.path))
    return sorted(out, key=lambda p: p.name)


def data_dir_default() -> Path | None:
    """The default data folder, or None.

    Rule: if ``./data`` (relative to the current working directory) directly holds
    data files (``*.parquet``, ``*.csv``, ``*.feather``), return it. Otherwise walk
    ``./data`` top-down, visiting sub-folders in name order (hidden ones skipped),
    and return the first folder that directly holds data files -- for a layout like
    ``data/binance-5m/``, ``data/coinbase-1m/`` that is ``data/binance-5m``.
    Returns None when ``./data`` is missing or holds no data file at any depth.
    The returned path is absolute.
    """
    root = Path("data")
    if not root.is_dir():
        return None
    for dirpath, dirnames, _filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if _data_files(Path(dirpath)):
            return Path(dirpath).resolve()
    return None


# --------------------------------------------------------------------------- reading


def _read_frame(path: Path) -> pd.DataFrame:
    """Read one file into a DataFrame, raising MarketDataError if unreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        elif suffix == ".feather":
            table = pa_feather.read_table(path)
        else:
            # Keep the time column as text: we parse it ourselves to report bad rows.
            table = pa_csv.read_csv(
                path,
                convert_options=pa_csv.ConvertOptions(
                    column_types={c: pa.string() for c in _TIME_COLUMNS}
                ),
            )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise MarketDataError(f"{path}: cannot read as {suffix[1:]} file: {exc}") from exc
    return table.to_pandas()


def _fmt_ts(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _epoch_unit(values: np.ndarray) -> str:
    """Guess the unit of epoch numbers from their magnitude."""
    finite = np.abs(values[np.isfinite(values)])
    big = float(finite.max()) if finite.size else 0.0
    if big < 1e11:
        return "s"
    if big < 1e14:
        return "ms"
    if big < 1e17:
        return "us"
    return "ns"


def _from_epoch(numbers: pd.Series) -> pd.Series:
    """Epoch numbers (unit guessed from the magnitude) -> tz-aware UTC datetimes."""
    return pd.to_datetime(
        numbers, unit=_epoch_unit(numbers.to_numpy(dtype="float64", na_value=np.nan)),
        utc=True, errors="coerce",
    )


def _parse_times(col: pd.Series, path: Path, name: str) -> np.ndarray:
    """Time column -> ``(N,) int64`` UTC nanoseconds since the epoch.

    Raises:
        MarketDataError: a value is missing or unparseable (names file, row, value).
    """
    dtype = col.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = col.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = col.dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        parsed = _from_epoch(col.astype("float64"))
    else:
        text = col.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce")
        present = text.notna() & (text != "")
        if present.any() and numbers[present].notna().all():  # epoch numbers as text
            return _parse_times(numbers.astype("float64"), path, name)
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        failed = parsed.isna() & text.notna() & (text != "")
        if failed.any():  # not ISO-8601: let pandas guess other formats, row by row
            retry = pd.to_datetime(text[failed], utc=True, format="mixed", errors="coerce")
            parsed = parsed.copy()
            parsed[failed] = retry
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise MarketDataError(
            f"{path}: data row {i + 1}: unparseable timestamp {col.iloc[i]!r} in column "
            f"{name!r}; allowed: ISO-8601 date/time (e.g. 2018-04-04T00:00:00Z), "
            "a datetime, or epoch seconds/milliseconds"
        )
    naive = parsed.dt.tz_localize(None).dt.as_unit("ns")
    return naive.to_numpy().view("int64")


def _numeric(col: pd.Series, path: Path, name: str, ts: np.ndarray) -> np.ndarray:
    """OHLCV column -> ``(N,) float64``; text that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype="float64", na_value=np.nan)
    conv = pd.to_numeric(col, errors="coerce")
    bad = (conv.isna() & col.notna()).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise MarketDataError(
            f"{path}: data row {i + 1} (timestamp {_fmt_ts(ts[i])}): {name}={col.iloc[i]!r} "
            "is not a number; allowed: finite numbers"
        )
    return conv.to_numpy(dtype="float64", na_value=np.nan)


def _first(mask: np.ndarray) -> int | None:
    return int(np.argmax(mask)) if mask.any() else None


def _read_bars(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read and validate one file.

    Returns:
        ``(ts, cols)``: ``ts`` is ``(N,) int64`` UTC ns, strictly increasing;
        ``cols`` maps open/high/low/close/volume to ``(N,) float64``.

    Raises:
        MarketDataError: naming ``path``, the 1-based data row, its timestamp and
            the offending value, for every rule listed in the module docstring.
    """
    df = _read_frame(path)
    names = [str(c).strip().lower() for c in df.columns]
    dups = sorted({n for n in names if names.count(n) > 1 and n in _OHLCV + _TIME_COLUMNS})
    if dups:
        raise MarketDataError(
            f"{path}: duplicated column header(s) {', '.join(dups)}; allowed: each of "
            "timestamp (or date), " + ", ".join(_OHLCV) + " once"
        )
    by_lower = {str(c).strip().lower(): c for c in df.columns}
    time_name = next((by_lower[c] for c in _TIME_COLUMNS if c in by_lower), None)
    missing = [c for c in _OHLCV if c not in by_lower]
    if time_name is None:
        missing.insert(0, "timestamp (or date)")
    if missing:
        raise MarketDataError(
            f"{path}: missing column(s) {', '.join(missing)}; found "
            f"{', '.join(map(str, df.columns)) or 'none'}; required: timestamp (or date), "
            + ", ".join(_OHLCV)
        )
    if len(df) == 0:
        raise MarketDataError(f"{path}: no data rows")

    ts = _parse_times(df[time_name], path, str(time_name))
    cols = {c: _numeric(df[by_lower[c]], path, c, ts) for c in _OHLCV}

    def fail(i: int, what: str, allowed: str) -> MarketDataError:
        return MarketDataError(
            f"{path}: data row {i + 1} (timestamp {_fmt_ts(ts[i])}): {what}; allowed: {allowed}"
        )

    for c in _OHLCV:
        i = _first(~np.isfinite(cols[c]))
        if i is not None:
            raise fail(i, f"{c}={float(cols[c][i])!r} (NaN or missing)", "finite numbers")
    for c in _PRICES:
        i = _first(cols[c] <= 0)
        if i is not None:
            raise fail(i, f"non-positive price {c}={float(cols[c][i])!r}", "prices > 0")
    i = _first(cols["volume"] < 0)
    if i is not None:
        raise fail(i, f"negative volume={float(cols['volume'][i])!r}", "volume >= 0")
    i = _first(cols["high"] < cols["low"])
    if i is not None:
        raise fail(
            i, f"high={float(cols['high'][i])!r} < low={float(cols['low'][i])!r}", "high >= low"
        )
    for c in _PRICES:
        i = _first(cols[c] > PRICE_MAX)
        if i is not None:
            raise fail(i, f"price {c}={float(cols[c][i])!r} above the ceiling {PRICE_MAX:g}",
                       f"prices <= {PRICE_MAX:g} (money is int64 units of 1e-8)")
    slack = 1.0 + _OHLC_RTOL
    for c in ("open", "close"):
        i = _first(cols[c] > cols["high"] * slack)
        if i is not None:
            raise fail(i, f"{c}={float(cols[c][i])!r} > high={float(cols['high'][i])!r}",
                       "low <= open, close <= high")
        i = _first(cols[c] * slack < cols["low"])
        if i is not None:
            raise fail(i, f"{c}={float(cols[c][i])!r} < low={float(cols['low'][i])!r}",
                       "low <= open, close <= high")

    dup = pd.Series(ts).duplicated().to_numpy()
    i = _first(dup)
    if i is not None:
        j = int(np.flatnonzero(ts[:i] == ts[i])[0])
        raise fail(
            i, f"duplicate timestamp {_fmt_ts(ts[i])} (same as data row {j + 1})",
            "one bar per timestamp",
        )
    i = _first(np.diff(ts) < 0)
    if i is not None:
        raise fail(
            i + 1,
            f"timestamp {_fmt_ts(ts[i + 1])} is earlier than data row {i + 1}'s "
            f"{_fmt_ts(ts[i])} (unsorted)",
            "strictly increasing timestamps",
        )
    return ts, cols


# --------------------------------------------------------------------------- grid


def mode_spacing_ns(ts: np.ndarray) -> int | None:
    """Most common positive difference (ns) between consecutive timestamps ``(T,) int64`` (ns);
    ties -> the smaller; None when there is none (fewer than two distinct times)."""
    d = np.diff(ts)
    d = d[d > 0]
    if d.size == 0:
        return None
    values, counts = np.unique(d, return_counts=True)
    return int(values[np.argmax(counts)])  # argmax takes the first = smallest of ties


def _to_utc_ns(value: str | datetime | pd.Timestamp | np.datetime64, name: str) -> int:
    """Window bound -> UTC ns; naive means UTC; a bare date means midnight."""
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise MarketDataError(
            f"{name}={value!r} is not a date/time; allowed: ISO-8601 such as "
            "2018-01-16 or 2018-01-16T12:00:00Z, a datetime, or a pandas.Timestamp"
        ) from exc
    if t is pd.NaT:
        raise MarketDataError(f"{name}={value!r} is not a date/time")
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.as_unit("ns").value)


def _fill_column(
    grid: np.ndarray, ts: np.ndarray, cols: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Place one symbol's bars on the grid and fill the gaps (module docstring, step 4)."""
    t = len(grid)
    idx = np.searchsorted(grid, ts)
    tradable = np.zeros(t, dtype=bool)
    tradable[idx] = True
    close_on_grid = np.empty(t)
    close_on_grid[idx] = cols["close"]
    last = np.where(tradable, np.arange(t), -1)
    np.maximum.accumulate(last, out=last)
    filler = np.where(last >= 0, close_on_grid[np.maximum(last, 0)], cols["open"][0])
    out = {}
    for c in _PRICES:
        arr = filler.copy()
        arr[idx] = cols[c]
        out[c] = arr
    vol = np.zeros(t)
    vol[idx] = cols["volume"]
    out["volume"] = vol
    return out, tradable


# --------------------------------------------------------------------------- public


def load_market(
    path: str | Path,
    symbols: Sequence[str] | str | None = None,
    start: str | datetime | pd.Timestamp | None = None,
    end: str | datetime | pd.Timestamp | None = None,
    warmup_bars: int = 0,
    *,
    quote: str | None = None,
) -> MarketData:
    """Load a folder of per-symbol bar files onto one UTC bar grid.

    Args:
        path: folder holding ``*.parquet`` / ``*.csv`` / ``*.feather`` files, one
            per symbol (sub-folders are not read).
        symbols: symbols to load, in this order (``["ETH_BTC", "LTC_BTC"]``);
            None loads every file, in name order.
        start: first bar-open time kept (inclusive); ``str`` (ISO-8601, a bare
            date means midnight), ``datetime`` or ``pandas.Timestamp``; naive = UTC.
            None = from the first bar.
        end: bar-open time where the window stops (exclusive); same types.
            None = through the last bar.
        warmup_bars: additionally keep up to this many grid bars immediately before
            ``start`` (fewer when the data starts later); their number is
            ``MarketData.warmup``. With ``start=None`` there are none.
        quote: quote currency for files whose name carries none (``SPY.csv``:
            equities are named by ticker alone). Names that do carry one
            (``ETH_BTC``) keep theirs.

    Returns:
        :class:`MarketData` with ``timestamps (T,) datetime64[ns]`` (UTC),
        ``open/high/low/close/volume (T, S) float64`` and ``tradable (T, S) bool``
        (all C-contiguous), ``timeframe_s`` in seconds, ``quote``,
        ``source`` = the resolved folder, ``meta["files"]`` = symbol -> file name.
        Gap filling and the grid are described in the module docstring.

    Raises:
        MarketDataError: folder missing or without data files; a file name without
            a quote currency (and no ``quote``); two files for one symbol; unknown
            symbol (lists the available ones); mixed quote currencies (names them);
            any invalid file content (names file, data row, timestamp and value:
            missing columns, unparseable timestamp, duplicate or unsorted
            timestamps, NaN in OHLCV, price <= 0 or > PRICE_MAX, volume < 0,
            open/close outside [low, high], a duplicated column header); files
            whose timeframes disagree (names them); two rows
            falling into one bar after flooring; a window with no bars (gives the
            data's span); ``warmup_bars < 0``.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise MarketDataError(f"data folder {folder} does not exist or is not a folder")
    files = _data_files(folder)
    if not files:
        raise MarketDataError(
            f"{folder}: no data files; expected one file per symbol named like "
            "ETH_BTC.parquet, BTC_USD.csv or ETH_BTC-5m.feather"
        )
    if warmup_bars < 0:
        raise MarketDataError(f"warmup_bars={warmup_bars}; allowed: >= 0")

    by_symbol: dict[str, list[Path]] = {}
    for f in files:
        by_symbol.setdefault(parse_symbol(f)[0], []).append(f)
    available = sorted(by_symbol)

    if symbols is None:
        wanted = available
    else:
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        if not wanted:
            raise MarketDataError("symbols is empty; pass None to load every file")
        seen: set[str] = set()
        for sym in wanted:
            if sym in seen:
                raise MarketDataError(f"symbol {sym!r} requested twice")
            seen.add(sym)
            if sym not in by_symbol:
                raise MarketDataError(
                    f"unknown symbol {sym!r} in {folder}; available: {', '.join(available)}"
                )

    chosen: list[Path] = []
    quotes: dict[str, list[str]] = {}
    for sym in wanted:
        paths = by_symbol[sym]
        if len(paths) > 1:
            raise MarketDataError(
                f"{folder}: several files for symbol {sym}: "
                f"{', '.join(p.name for p in paths)}; keep one per symbol"
            )
        q = parse_symbol(paths[0])[1]
        if q is None:
            if quote is None:
                raise MarketDataError(
                    f"{paths[0]}: file name has no quote currency (symbol {sym!r}); "
                    "allowed: BASE_QUOTE names like ETH_BTC.parquet, or pass quote='USD' "
                    "(--quote USD on the command line) for files named by ticker alone"
                )
            q = quote
        quotes.setdefault(q, []).append(sym)
        chosen.append(paths[0])
    if len(quotes) > 1:
        detail = "; ".join(f"{q}: {', '.join(s)}" for q, s in sorted(quotes.items()))
        raise MarketDataError(
            f"{folder}: symbols with different quote currencies ({detail}); "
            "pass symbols=[...] with one quote currency"
        )
    quote_ccy = next(iter(quotes))

    raw = [_read_bars(p) for p in chosen]

    per_file = [(p, mode_spacing_ns(ts)) for p, (ts, _) in zip(chosen, raw)]
    modes = [m for _, m in per_file if m is not None]
    if modes:
        values, counts = np.unique(modes, return_counts=True)
        common = int(values[np.argmax(counts)])  # the most files' timeframe; ties: the smaller
        odd = [(p, m) for p, m in per_file if m is not None and m != common]
        if odd:
            detail = ", ".join(f"{p.name}: {m // _NS} s" for p, m in odd)
            raise MarketDataError(
                f"{folder}: files disagree on the timeframe: most files have {common // _NS} s bars, "
                f"but {detail}; allowed: one timeframe per folder (keep each timeframe in its own folder)"
            )
    if not modes:
        raise MarketDataError(
            f"{folder}: cannot infer the timeframe: every file has fewer than 2 bars"
        )
    tf_ns = min(modes)
    if tf_ns % _NS:
        raise MarketDataError(
            f"{folder}: inferred timeframe {tf_ns / _NS} s is not a whole number of seconds"
        )

    floored = []
    for p, (ts, _) in zip(chosen, raw):
        f = ts - ts % tf_ns
        i = _first(np.diff(f) == 0)
        if i is not None:
            raise MarketDataError(
                f"{p}: data rows {i + 1} and {i + 2} (timestamps {_fmt_ts(ts[i])}, "
                f"{_fmt_ts(ts[i + 1])}) fall into the same {tf_ns // _NS}-second bar; "
                "allowed: at most one row per bar of the inferred timeframe"
            )
        floored.append(f)
    grid = np.unique(np.concatenate(floored))

    n_t, n_s = len(grid), len(chosen)
    i0 = 0 if start is None else int(np.searchsorted(grid, _to_utc_ns(start, "start")))
    i1 = n_t if end is None else int(np.searchsorted(grid, _to_utc_ns(end, "end")))
    if i1 <= i0:
        raise MarketDataError(
            f"{folder}: no bars in the window [{'start of data' if start is None else start}, "
            f"{'end of data' if end is None else end}); the data spans "
            f"{_fmt_ts(grid[0])} .. {_fmt_ts(grid[-1])} ({n_t} bars of "
            f"{tf_ns // _NS} s)"
        )
    warm = min(int(warmup_bars), i0)
    lo = i0 - warm

    arrays = {c: np.empty((i1 - lo, n_s)) for c in _OHLCV}
    tradable = np.empty((i1 - lo, n_s), dtype=bool)
    for j, ((ts, cols), f) in enumerate(zip(raw, floored)):
        filled, trad = _fill_column(grid, f, cols)
        for c in _OHLCV:
            arrays[c][:, j] = filled[c][lo:i1]
        tradable[:, j] = trad[lo:i1]

    return MarketData(
        timestamps=grid[lo:i1].astype("datetime64[ns]"),
        symbols=tuple(wanted),
        open=arrays["open"],
        high=arrays["high"],
        low=arrays["low"],
        close=arrays["close"],
        volume=arrays["volume"],
        tradable=tradable,
        timeframe_s=int(tf_ns // _NS),
        quote=quote_ccy,
        source=str(folder),
        warmup=warm,
        meta={"files": {s: p.name for s, p in zip(wanted, chosen)}},
    )

