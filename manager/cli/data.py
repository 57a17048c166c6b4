"""Market-data commands: ``data download`` (needs the ``download`` extra, ccxt, loaded only
when the command runs)."""
from __future__ import annotations

from pathlib import Path

import typer

from manager.cli.options import symbol_list
from manager.cli.output import fail, note, say
from manager.runner import download_bars


def data_download(
    exchange: str = typer.Option(..., "--exchange", help="ccxt exchange id, e.g. binance."),
    symbols: str = typer.Option(..., "--symbols", help="Comma-separated exchange symbols, e.g. ETH/BTC,LTC/BTC."),
    timeframe: str = typer.Option("5m", "--timeframe", help="Bar size in exchange notation: 1m, 5m, 1h, 1d."),
    days: float = typer.Option(3.0, "--days", min=0.01, help="How many days back from now to fetch."),
    out: Path = typer.Option(Path("data"), "--out", help="Output folder (one file per symbol)."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
) -> None:
    """Download OHLCV bars with ccxt into the layout `--data` reads (needs network)."""
    try:
        paths = download_bars(exchange, symbol_list(symbols) or [], timeframe, days, out, fmt=fmt,
                              progress=lambda sym, n: note(f"{sym}: {n} bars"))
    except Exception as exc:  # network and exchange errors are user-facing here
        fail(exc)
    for p in paths or []:
        say(f"wrote {p}")
