"""Thin ccxt downloader writing bar files that :func:`simulator.data.load_market` reads.

``download("binance", ["ETH/BTC"], "5m", days=3, out_dir="data/binance-5m")``
pages through ``exchange.fetch_ohlcv`` and writes ``data/binance-5m/ETH_BTC.parquet``
(columns ``timestamp, open, high, low, close, volume``; ``timestamp`` tz-aware UTC).
ccxt is an optional dependency (``pip install cohortlab[download]``); it is imported
only by :func:`download`.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["ohlcv_to_frame", "write_ohlcv", "download", "file_symbol"]

_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def ohlcv_to_frame(rows: Sequence[Sequence[float]]) -> pd.DataFrame:
    """ccxt OHLCV rows -> a frame in the project layout.

    Args:
        rows: ``[[ms_timestamp, open, high, low, close, volume], ...]`` as returned
            by ``fetch_ohlcv`` (ms since the Unix epoch, prices in the quote
            currency, volume in base units); may be unsorted and may repeat
            timestamps (overlapping pages).

    Returns:
        DataFrame with ``timestamp`` (``datetime64[ns, UTC]``) and float64
        ``open, high, low, close, volume``, sorted by time, one row per timestamp
        (the row seen last wins: a later page holds the more complete bar), index
        ``0..N-1``. Empty input gives an empty frame with these columns.

    Raises:
        ValueError: a row does not have 6 fields.
    """
    for i, row in enumerate(rows):
        if len(row) != 6:
            raise ValueError(
                f"OHLCV row {i + 1} has {len(row)} fields {list(row)!r}; expected "
                "[ms_timestamp, open, high, low, close, volume]"
            )
    arr = np.asarray(rows, dtype="float64").reshape(-1, 6)
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(arr[:, 0].astype("int64"), unit="ms", utc=True).as_unit("ns"),
            **{c: arr[:, j + 1] for j, c in enumerate(_COLUMNS[1:])},
        }
    )
    frame = frame.drop_duplicates("timestamp", keep="last").sort_values("timestamp", kind="stable")
    return frame.reset_index(drop=True)


def file_symbol(symbol: str) -> str:
    """Exchange symbol -> file-name symbol: ``ETH/BTC`` -> ``ETH_BTC``.

    A derivatives settle suffix is dropped (``BTC/USDT:USDT`` -> ``BTC_USDT``).

    Raises:
        ValueError: the symbol is not ``BASE/QUOTE``.
    """
    pair = symbol.split(":", 1)[0]
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote or "/" in quote:
        raise ValueError(f"symbol {symbol!r}: expected BASE/QUOTE such as ETH/BTC")
    return f"{base}_{quote}"


def write_ohlcv(
    rows: Sequence[Sequence[float]], symbol: str, out_dir: str | Path, fmt: str = "parquet"
) -> Path:
    """Write ccxt OHLCV rows to ``<out_dir>/<BASE>_<QUOTE>.<fmt>`` (folder created).

    Args:
        rows: ccxt OHLCV rows (see :func:`ohlcv_to_frame`).
        symbol: exchange symbol ``BASE/QUOTE`` (``ETH/BTC``).
        out_dir: destination folder.
        fmt: ``"parquet"`` (tz-aware timestamp column) or ``"csv"`` (ISO-8601
            ``2018-04-04T00:00:00Z``).

    Returns:
        The written path; ``load_market(out_dir)`` reads it back.

    Raises:
        ValueError: unknown ``fmt``, bad symbol, or no rows.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt={fmt!r}; allowed: parquet, csv")
    name = file_symbol(symbol)
    frame = ohlcv_to_frame(rows)
    if frame.empty:
        raise ValueError(f"no OHLCV rows for {symbol}; nothing written")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        frame.to_csv(path, index=False, float_format="%.10g")
    return path


def download(
    exchange_id: str,
    symbols: Sequence[str],
    timeframe: str,
    days: float,
    out_dir: str | Path,
    fmt: str = "parquet",
    progress: Callable[[str, int], None] | None = None,
    *,
    limit: int = 1000,
) -> list[Path]:
    """Download the last ``days`` days of bars for ``symbols`` and write one file each.

    Pages ``exchange.fetch_ohlcv(symbol, timeframe, since, limit)`` starting at
    now - ``days``; after each page ``since`` moves to the last timestamp + one
    timeframe; stops on an empty page or once ``since`` reaches now. ccxt's own
    rate limiter spaces the requests. The newest bar may still be forming.

    Args:
        exchange_id: ccxt exchange id (``binance``, ``coinbase``, ``kraken``).
        symbols: exchange symbols ``BASE/QUOTE``.
        timeframe: exchange notation (``1m``, ``5m``, ``1h``); must be in
            ``exchange.timeframes``.
        days: history length in days, > 0.
        out_dir: destination folder (see :func:`write_ohlcv`).
        fmt: ``"parquet"`` or ``"csv"``.
        progress: called as ``progress(symbol, rows_so_far)`` after every page.
        limit: bars per request.

    Returns:
        The written paths, in the order of ``symbols``.

    Raises:
        ValueError: unknown exchange id (suggests close ids), exchange without
            OHLCV, timeframe the exchange lacks (lists its timeframes), unknown
            symbol, bad ``fmt`` / ``days``, or a symbol with no bars.
        ImportError: ccxt is not installed (the message names the ``download`` extra).
    """
    try:
        import ccxt  # optional dependency
    except ImportError as exc:
        raise ImportError("ccxt is not installed; install the download extra: pip install -e '.[download]'",
                          name="ccxt") from exc

    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt={fmt!r}; allowed: parquet, csv")
    if not days > 0:
        raise ValueError(f"days={days!r}; allowed: > 0")
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown exchange id {exchange_id!r} (not in ccxt.exchanges){hint}")
    exchange = getattr(ccxt, exchange_id)({"enableRateLimit": True})
    if not exchange.has.get("fetchOHLCV"):
        raise ValueError(f"exchange {exchange_id!r} does not provide OHLCV bars")
    timeframes = exchange.timeframes or {}
    if timeframe not in timeframes:
        raise ValueError(
            f"exchange {exchange_id!r} has no timeframe {timeframe!r}; "
            f"available: {', '.join(timeframes)}"
        )
    tf_ms = int(exchange.parse_timeframe(timeframe) * 1000)
    markets = exchange.load_markets()
    for sym in symbols:
        file_symbol(sym)
        if sym not in markets:
            raise ValueError(f"exchange {exchange_id!r} has no symbol {sym!r}")

    paths = []
    for sym in symbols:
        now = exchange.milliseconds()
        since = int(now - days * 86_400_000)
        rows: list[list[float]] = []
        while since < now:
            page = exchange.fetch_ohlcv(sym, timeframe, since, limit)
            if not page:
                break
            rows.extend(page)
            last = int(max(r[0] for r in page))
            if progress is not None:
                progress(sym, len(rows))
            if last + tf_ms <= since:  # exchange ignored `since`: avoid looping forever
                break
            since = last + tf_ms
        paths.append(write_ohlcv(rows, sym, out_dir, fmt))
    return paths
