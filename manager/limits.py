"""Resource limits and input bounds of a cohort, checked before anything is loaded.

One function, :func:`check_cohort_size`, is used by every entry point: the
launch path (:func:`manager.runner.load_bars`, called by
:func:`manager.launch.execute_cohort`), the API's preflight of
``POST /api/cohorts`` (422 before the job is queued) and the CLI (exit 2).

**The estimate** (:func:`estimate_size`), computed without reading any price:

* ``bars`` ``T``: for the SYNTHETIC market, ``ceil(window / 300 s) + warmup_bars``
  (its bar is 5 minutes); for a folder, ``ceil(window / timeframe) + warmup_bars``,
  where the timeframe is the smallest of the files' timeframes (from a
  ``-5m``-style name suffix, else from the first rows' timestamps), capped by the
  files' total row count and by the data's span (first to last timestamp, over
  the timeframe, plus one): the grid is the union of their timestamps, so it
  never has more bars. A backtest over the whole folder (no window) uses the
  row count. With no window, a cohort runs the last day (1 day of bars).
* ``symbols`` ``S``: the symbols asked for, else every symbol of the folder
  (the three SYNTHETIC ones).
* ``cells`` = ``T x S x agents``.
* ``memory`` (bytes) = ``64 T S + 10 T S A + 16 T A`` with ``A = agents x (1 +
  baselines)`` agent simulations (the random baseline cohorts run in one engine
  call): 64 B per bar and symbol for the market's five float64 arrays, the
  tradable mask and indicator caches; 10 B per bar, symbol and simulated agent
  for the float64 signals (plus the strategy family's temporary targets); 16 B
  per bar and simulated agent for the equity and position-value curves.

**Limits** (settings, :class:`manager.settings.Settings`): ``COHORTLAB_MAX_BARS``
(default 150,000: about 3.4 months of 1-minute bars or 1.4 years of 5-minute
bars), ``COHORTLAB_MAX_CELLS`` (default 100,000,000) and
``COHORTLAB_MAX_MEMORY_MB`` (default 16,384 MiB on the reference 2-core / 24 GB
machine). A month of 1-minute bars (44,640 + 200 warm-up) on 50 symbols x 30
agents with 20 baselines is 67.3 M cells and about 14,000 MiB: within the
defaults.

**Bankroll**: :data:`BANKROLL_MIN` to :data:`BANKROLL_MAX` (quote currency), the
product's stated range, the same in the API, the CLI and the use case.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from manager.settings import Settings, get_settings
from manager.times import RunError, utc
from simulator.data import DATA_SUFFIXES, data_dir_default, mode_spacing_ns, parse_symbol
from simulator.synthetic import DEFAULT_SYMBOLS

__all__ = ["BANKROLL_MIN", "BANKROLL_MAX", "SYNTHETIC_TIMEFRAME_S", "LimitExceeded", "SizeEstimate",
           "MONEY_UNITS_MAX", "check_bankroll", "check_cohort_size", "check_money_range", "check_synthetic_symbols", "estimate_memory_bytes",
           "estimate_size"]

BANKROLL_MIN = 50.0
"""Smallest parent bankroll (quote currency)."""
BANKROLL_MAX = 100_000.0
"""Largest parent bankroll (quote currency)."""
SYNTHETIC_TIMEFRAME_S = 300
"""Bar length of the built-in SYNTHETIC market (s)."""

_DAY = pd.Timedelta(days=1)
_HEAD_ROWS = 512
_TF_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2_592_000}


class LimitExceeded(RunError):
    """A cohort above a configured size limit (the message gives the estimate and the limit)."""


@dataclass(frozen=True)
class SizeEstimate:
    """A cohort's size before loading.

    Attributes:
        bars: bars T (warm-up included).
        symbols: symbols S.
        agents: agents of the cohort.
        simulated_agents: agents simulated in memory at once (``agents x (1 + baselines)``).
        timeframe_s: bar length used (s).
        cells: ``bars x symbols x agents``.
        memory_bytes: estimated peak memory (bytes).
    """

    bars: int
    symbols: int
    agents: int
    simulated_agents: int
    timeframe_s: int
    cells: int
    memory_bytes: int

    @property
    def memory_mb(self) -> float:
        """Estimated peak memory (MiB)."""
        return self.memory_bytes / 2**20

    def describe(self) -> str:
        """``"44,840 bars x 50 symbols x 30 agents = 67,260,000 cells, about 14,000 MiB"``."""
        return (f"{self.bars:,} bars x {self.symbols:,} symbols x {self.agents:,} agents = {self.cells:,} cells, "
                f"about {self.memory_mb:,.0f} MiB")


def estimate_memory_bytes(bars: int, symbols: int, simulated_agents: int) -> int:
    """Peak memory (bytes) of a cohort: ``64 T S + 10 T S A + 16 T A`` (module docstring)."""
    t, s, a = int(bars), int(symbols), int(simulated_agents)
    return 64 * t * s + 10 * t * s * a + 16 * t * a


def check_bankroll(bankroll: float) -> None:
    """Refuse a bankroll outside ``[BANKROLL_MIN, BANKROLL_MAX]`` (quote currency) or not finite.

    Raises:
        RunError: naming the value and the range.
    """
    if not (isinstance(bankroll, (int, float)) and math.isfinite(bankroll)
            and BANKROLL_MIN <= bankroll <= BANKROLL_MAX):
        raise RunError(f"bankroll={bankroll!r} is out of range; allowed: {BANKROLL_MIN:,.0f} to "
                       f"{BANKROLL_MAX:,.0f} (quote currency)")


def check_synthetic_symbols(symbols: Sequence[str] | None) -> None:
    """Refuse symbols the built-in SYNTHETIC market does not have.

    Raises:
        RunError: naming the unknown symbols and the ones it has.
    """
    unknown = [s for s in symbols or () if s not in DEFAULT_SYMBOLS]
    if unknown:
        raise RunError(f"unknown symbol(s) {', '.join(unknown)} in the SYNTHETIC market; "
                       f"available: {', '.join(DEFAULT_SYMBOLS)}")


def _window(start: str | None, end: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` as UTC timestamps, one day when only one is given (as
    :func:`manager.runner.load_bars`); a range check happens in :func:`manager.times.utc`."""
    s = utc(start, "start") if start else None
    e = utc(end, "end") if end else None
    if s is not None and e is None:
        e = s + _DAY if s <= pd.Timestamp.max.tz_localize("UTC") - _DAY else None
    if e is not None and s is None:
        s = e - _DAY if e >= pd.Timestamp.min.tz_localize("UTC") + _DAY else None
    return s, e


def _time_column(names: Sequence[str]) -> str | None:
    by_lower = {str(c).strip().lower(): c for c in names}
    return next((by_lower[c] for c in ("timestamp", "date") if c in by_lower), None)


def _to_ns(times: pd.Series) -> np.ndarray:
    """Timestamps (text, datetimes or epoch numbers) -> ``int64`` UTC ns; unparseable ones dropped."""
    try:
        if pd.api.types.is_numeric_dtype(times.dtype) and not pd.api.types.is_bool_dtype(times.dtype):
            big = float(np.nanmax(np.abs(times.to_numpy(dtype="float64")))) if len(times) else 0.0
            unit = "s" if big < 1e11 else "ms" if big < 1e14 else "us" if big < 1e17 else "ns"
            parsed = pd.to_datetime(times, unit=unit, utc=True, errors="coerce")
        elif isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(times.dtype):
            parsed = pd.to_datetime(times, utc=True, errors="coerce")
        else:
            parsed = pd.to_datetime(times.astype("string").str.strip(), utc=True, format="ISO8601",
                                    errors="coerce")
        return parsed.dropna().dt.tz_localize(None).dt.as_unit("ns").to_numpy().view("int64")
    except (ValueError, TypeError, OverflowError):
        return np.empty(0, dtype=np.int64)


def _spacing_s(ns: np.ndarray) -> int | None:
    """The bar size (s, at least 1) of a file's first timestamps (:func:`simulator.data.mode_spacing_ns`)."""
    spacing = mode_spacing_ns(ns)
    return None if spacing is None else max(1, spacing // 1_000_000_000)


def _csv_tail(path: Path, columns: Sequence[str], col: str) -> pd.Series:
    """The time value of a CSV file's last non-empty line (reads its last 64 KiB only)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    if not lines:
        return pd.Series([], dtype="string")
    cells = lines[-1].split(",")
    i = list(columns).index(col)
    return pd.Series([cells[i].strip().strip('"')] if i < len(cells) else [], dtype="string")


def _file_shape(path: Path) -> tuple[int, int | None, int | None, int | None]:
    """``(rows, timeframe_s, first_ns, last_ns)`` of one bar file (None when unknown),
    reading only its metadata and its time column's head and tail (CSV, Parquet)
    or its time column (Feather)."""
    import pyarrow.feather as pa_feather
    import pyarrow.parquet as pq

    stem = parse_symbol(path)[0]
    tf_name = None
    rest = path.name[len(stem):].split(".")[0]
    if rest.startswith("-") and rest[1:-1].isdigit() and rest[-1] in _TF_UNITS:
        tf_name = int(rest[1:-1]) * _TF_UNITS[rest[-1]]
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            pf = pq.ParquetFile(path)
            rows = pf.metadata.num_rows
            col = _time_column(pf.schema_arrow.names)
            if col is None:
                return int(rows), tf_name, None, None
            head = next(pf.iter_batches(batch_size=_HEAD_ROWS, columns=[col]), None)
            times = head.column(0).to_pandas() if head is not None else pd.Series([], dtype="string")
            last_group = pf.read_row_group(pf.num_row_groups - 1, columns=[col]).column(0)
            tail = last_group.slice(max(0, len(last_group) - 1)).to_pandas()
        elif suffix == ".feather":
            table = pa_feather.read_table(path, memory_map=True)
            rows = table.num_rows
            col = _time_column(table.column_names)
            if col is None:
                return int(rows), tf_name, None, None
            times = table.column(col).slice(0, _HEAD_ROWS).to_pandas()
            tail = table.column(col).slice(max(0, rows - 1)).to_pandas()
        else:
            rows = -1  # the header line
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    rows += chunk.count(b"\n")
            head = pd.read_csv(path, nrows=_HEAD_ROWS, dtype=str)
            col = _time_column(head.columns)
            if col is None:
                return max(int(rows), 0), tf_name, None, None
            times = head[col]
            tail = _csv_tail(path, [str(c) for c in head.columns], col)
    except Exception:  # noqa: BLE001 - unreadable here: the load reports it with file and row
        return 0, tf_name, None, None
    head_ns, tail_ns = _to_ns(times), _to_ns(tail)
    first = int(head_ns[0]) if head_ns.size else None
    last = int(tail_ns[-1]) if tail_ns.size else None
    return max(int(rows), 0), tf_name or _spacing_s(head_ns), first, last


def estimate_size(bars_req, agents: int = 1, baselines: int = 0) -> SizeEstimate:
    """Estimate a cohort's size and memory before loading (formula: module docstring).

    Args:
        bars_req: a :class:`manager.runner.BarsRequest` (``data``, ``symbols``,
            ``start``, ``end``, ``warmup_bars``, ``whole``).
        agents: agents of the cohort (1 for a backtest).
        baselines: random baseline cohorts of the same size run beside it.

    Returns:
        The :class:`SizeEstimate`.

    Raises:
        RunError: a window bound that is not a date/time or is outside pandas'
            timestamp range (1677-09-22 .. 2262-04-11).
    """
    start, end = _window(bars_req.start, bars_req.end)
    warm = max(int(bars_req.warmup_bars or 0), 0)
    folder = Path(bars_req.data) if bars_req.data else data_dir_default()
    span = (end - start) if start is not None and end is not None else None
    if folder is None or not folder.is_dir():
        tf = SYNTHETIC_TIMEFRAME_S
        n_s = len(bars_req.symbols or DEFAULT_SYMBOLS)
        n_t = math.ceil((span or _DAY).total_seconds() / tf) + warm if folder is None else 0
    else:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.name.lower().endswith(DATA_SUFFIXES))
        wanted = set(bars_req.symbols) if bars_req.symbols else None
        shapes = [_file_shape(p) for p in files if wanted is None or parse_symbol(p)[0] in wanted]
        n_s = len(bars_req.symbols) if bars_req.symbols else len({parse_symbol(p)[0] for p in files})
        rows = sum(r for r, *_ in shapes)
        tfs = [t for _, t, _, _ in shapes if t]
        tf = min(tfs) if tfs else 0
        n_t = rows
        firsts = [f for _, _, f, _ in shapes if f is not None]
        lasts = [x for _, _, _, x in shapes if x is not None]
        if tf and len(firsts) == len(lasts) == len(shapes) and shapes:
            n_t = min(n_t, (max(lasts) - min(firsts)) // (tf * 1_000_000_000) + 1)
        if tf and not (span is None and getattr(bars_req, "whole", False)):
            n_t = min(n_t, math.ceil((span or _DAY).total_seconds() / tf) + warm)
    sim = int(agents) * (1 + max(int(baselines or 0), 0))
    return SizeEstimate(bars=int(n_t), symbols=int(n_s), agents=int(agents), simulated_agents=sim,
                        timeframe_s=int(tf), cells=int(n_t) * int(n_s) * int(agents),
                        memory_bytes=estimate_memory_bytes(n_t, n_s, sim))


def check_cohort_size(bars_req, agents: int = 1, baselines: int = 0,
                      settings: Settings | None = None) -> SizeEstimate:
    """Estimate a cohort (:func:`estimate_size`) and refuse it above the limits.

    Args:
        bars_req, agents, baselines: as :func:`estimate_size`.
        settings: the limits (``max_bars``, ``max_cells``, ``max_memory_mb``);
            None = read from the environment.

    Returns:
        The estimate, when within every limit.

    Raises:
        LimitExceeded: above ``COHORTLAB_MAX_BARS``, ``COHORTLAB_MAX_CELLS`` or
            ``COHORTLAB_MAX_MEMORY_MB``; the message gives the estimate, the
            limit and the setting to raise.
        RunError: a bad window (see :func:`estimate_size`).
    """
    cfg = settings or get_settings()
    if getattr(bars_req, "data", None) is None and data_dir_default() is None:
        check_synthetic_symbols(bars_req.symbols)
    est = estimate_size(bars_req, agents, baselines)
    over = [(est.bars, cfg.max_bars, "bars", "COHORTLAB_MAX_BARS"),
            (est.cells, cfg.max_cells, "cells (bars x symbols x agents)", "COHORTLAB_MAX_CELLS"),
            (est.memory_mb, cfg.max_memory_mb, "MiB of memory", "COHORTLAB_MAX_MEMORY_MB")]
    for value, limit, what, env in over:
        if value > limit:
            raise LimitExceeded(f"cohort too large: {est.describe()} (timeframe {est.timeframe_s} s, "
                                f"{est.simulated_agents:,} simulated agents with baselines); "
                                f"{value:,.0f} {what} exceeds the limit {limit:,.0f} ({env}); "
                                "shorten the window or use fewer symbols or agents")
    return est


MONEY_UNITS_MAX = 2**63 // 16
"""Largest money amount the sizing check lets a position reach, in units of 1e-8
(int64 with a factor-16 headroom for compounding gains: about 5.8e9 in the quote currency)."""


def check_money_range(market, bankroll: float, max_leverage: float) -> None:
    """Refuse bars whose price range would overflow the engine's int64 money units.

    A position sized at ``bankroll x max_leverage`` (quote currency) bought at a
    symbol's lowest low and valued at its highest high is worth ``bankroll x
    max_leverage x (max high / min low)``; in units of 1e-8 that must stay below
    :data:`MONEY_UNITS_MAX`. A price jump of x1e8 (satoshi/BTC unit mix-up) on
    any bankroll fails this.

    Args:
        market: the loaded :class:`~simulator.market.MarketData` (window and warm-up).
        bankroll: parent bankroll (quote currency).
        max_leverage: the cohort's leverage ceiling (multiple of equity).

    Raises:
        RunError: naming the symbol, its lowest and highest price and the ratio.
    """
    high = np.asarray(market.high, dtype="float64")
    low = np.asarray(market.low, dtype="float64")
    if high.size == 0:
        return
    top, bottom = high.max(axis=0), low.min(axis=0)
    ratio = top / bottom
    worst = float(bankroll) * max(float(max_leverage), 1.0) * 1e8 * ratio
    bad = np.flatnonzero(~np.isfinite(worst) | (worst >= MONEY_UNITS_MAX))
    if bad.size:
        j = int(bad[0])
        limit = MONEY_UNITS_MAX / (float(bankroll) * max(float(max_leverage), 1.0) * 1e8)
        raise RunError(f"prices of {market.symbols[j]} range from {bottom[j]:g} to {top[j]:g} "
                       f"(x{ratio[j]:.3g}) in the loaded bars: a position of the bankroll {bankroll:g} at "
                       f"leverage {max_leverage:g} would overflow the engine's money units (int64 of 1e-8); "
                       f"allowed: a high/low ratio below {limit:.3g} (check the file's price units)")
