"""How numbers are shown: one set of formatting rules for the CLI (:mod:`manager.cli`)
and the dashboard (:mod:`web.formatting`), so neither can mislead on its own.

Rules
    * **Honest zero.** A value is rounded to the precision it is displayed at
      before it is formatted or coloured: anything that rounds to zero shows as
      a plain ``0.00`` (never ``-0.00``, never ``+0.00``) and takes the neutral
      colour (:func:`sign` gives ``""``). Float noise such as ``-3e-17`` and
      cash residues below the displayed precision (``1e-07 BTC`` of a
      1,000 BTC bankroll split 30 ways) therefore read as 0.
    * **Unknown is not zero.** ``None``, NaN and infinities show as ``—``
      (:data:`DASH`), e.g. the win rate of an agent that has not closed a trade.
    * **Annualised figures say so.** Sharpe and Sortino are annualised from a
      short sample; :func:`annualisation` words the factor and the sample
      length for captions and tooltips.

Pure functions of plain values (no I/O, no numpy arrays).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from simulator.metrics import SECONDS_PER_YEAR

__all__ = ["DASH", "MONEY_DIGITS", "annualisation", "duration_text", "finite", "fixed", "money",
           "money_decimals", "num", "pct", "rounded", "sign", "timeframe_seconds", "window_text"]

DASH = "—"
"""Shown for a value that is unknown or undefined (None, NaN, inf)."""

MONEY_DIGITS = 8
"""Significant digits money is shown with when a reference amount (the bankroll) sets the
precision; also the ledger's resolution in decimals (1e-8 of the quote currency)."""

_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, bools, non-numbers, NaN, inf)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def rounded(value: Any, decimals: int, scale: float = 1.0) -> float | None:
    """``value * scale`` rounded to ``decimals`` places, with ``0.0`` (never ``-0.0``)
    when it rounds to zero; None when ``value`` is not a finite number."""
    v = finite(value)
    if v is None:
        return None
    r = round(v * scale, decimals)
    return 0.0 if r == 0 else r


def fixed(value: Any, decimals: int = 2, *, scale: float = 1.0, signed: bool = False, grouping: bool = False,
          suffix: str = "") -> str:
    """``value * scale`` with ``decimals`` places (``—`` when unknown).

    ``signed`` puts ``+`` before positive values (zero has no sign); ``grouping``
    adds thousands separators; ``suffix`` follows the number (e.g. ``" %"``).
    """
    r = rounded(value, decimals, scale)
    if r is None:
        return DASH
    spec = f"{'+' if signed and r > 0 else ''}{',' if grouping else ''}.{decimals}f"
    return format(r, spec) + suffix


def pct(value: Any, digits: int = 2, *, signed: bool = False, suffix: str = " %") -> str:
    """A fraction as a percentage: ``0.0123`` -> ``"1.23 %"``; ``-1e-9`` -> ``"0.00 %"``."""
    return fixed(value, digits, scale=100.0, signed=signed, suffix=suffix)


def num(value: Any, digits: int = 2, *, signed: bool = False, grouping: bool = True) -> str:
    """A plain number with ``digits`` decimals and thousands separators."""
    return fixed(value, digits, signed=signed, grouping=grouping)


def sign(value: Any, decimals: int = 2, scale: float = 100.0) -> str:
    """``"pos"`` / ``"neg"`` / ``""`` (neutral) of the value *as displayed*.

    The defaults match :func:`pct` with 2 digits; pass the ``decimals`` and
    ``scale`` of the figure next to it (``sign(pnl, 8, 1.0)`` for ``num(pnl, 8)``),
    so a value shown as 0 is never coloured.
    """
    r = rounded(value, decimals, scale)
    return "" if not r else ("pos" if r > 0 else "neg")


def money_decimals(reference: Any, digits: int = MONEY_DIGITS) -> int:
    """Decimals at which ``reference`` (e.g. the bankroll) shows with ``digits``
    significant digits, at most :data:`MONEY_DIGITS` (the ledger's resolution):
    1,000 -> 4, 0.5 -> 8, 1e12 -> 0."""
    ref = finite(reference)
    if not ref:
        return MONEY_DIGITS
    return max(0, min(MONEY_DIGITS, digits - 1 - math.floor(math.log10(abs(ref)))))


def money(value: Any, reference: Any = None, *, digits: int = MONEY_DIGITS, grouping: bool = True) -> str:
    """An amount of money, up to ``digits`` significant digits and never finer than
    the precision ``reference`` (the bankroll, or the amount itself) is shown at.

    ``money(1e-07, 1000)`` -> ``"0"`` (a residue below the bankroll's displayed
    precision, 1e-4); ``money(989.241192, 1000)`` -> ``"989.2412"``;
    ``money(0.00012345)`` -> ``"0.00012345"``; trailing zeros are dropped.
    """
    v = finite(value)
    if v is None:
        return DASH
    decimals = money_decimals(reference if finite(reference) else v, digits)
    r = rounded(v, decimals)
    if r == 0:
        return "0"
    r = float(f"{r:.{digits}g}")  # no more significant digits than asked, whatever the reference
    text = format(r, f"{',' if grouping else ''}.{decimals}f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def timeframe_seconds(timeframe: Any) -> int | None:
    """Seconds of a bar in the exchanges' notation (``"5m"`` -> 300), or None."""
    m = _TIMEFRAME.match(str(timeframe or "").strip())
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)] if m and int(m.group(1)) > 0 else None


def duration_text(seconds: float) -> str:
    """A length of time in words: ``"1 day"``, ``"3 days"``, ``"6.5 h"``, ``"90 min"``, ``"45 s"``."""
    s = float(seconds)
    if s >= 86400 and s % 86400 == 0:
        days = int(s // 86400)
        return f"{days} day" + ("" if days == 1 else "s")
    if s >= 3600:
        return f"{s / 3600:.4g} h"
    if s >= 60:
        return f"{s / 60:.4g} min"
    return f"{s:.4g} s"


def annualisation(window: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """How the Sharpe and Sortino of a run over ``window`` were annualised.

    Args:
        window: a report's ``window`` (``{"bars", "timeframe", ...}``, see
            :func:`manager.report.window`).

    Returns:
        ``{"bars", "timeframe", "sample", "periods_per_year", "short", "long"}`` —
        ``sample`` the traded length in words (bars x bar length, e.g. ``"1 day"``),
        ``periods_per_year`` the factor's bars per 365-day year
        (:func:`simulator.metrics.annualisation_periods`), ``short`` e.g.
        ``"annualised from 1 day, 288 bars of 5m"``, ``long`` the same plus the
        factor (``"... : per-bar ratio × √105,120 (bars in a 365-day year)"``);
        None when the window does not say its bars and timeframe.
    """
    if not isinstance(window, Mapping):
        return None
    bars, tf = window.get("bars"), window.get("timeframe")
    tf_s = timeframe_seconds(tf)
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1 or tf_s is None:
        return None
    ppy = SECONDS_PER_YEAR / tf_s
    sample = duration_text(bars * tf_s)
    short = f"annualised from {sample}, {bars:,} bar{'' if bars == 1 else 's'} of {tf}"
    return {"bars": bars, "timeframe": tf, "sample": sample, "periods_per_year": ppy, "short": short,
            "long": f"{short}: per-bar ratio × √{ppy:,.0f} (bars in a 365-day year)"}


def window_text(start: Any, end: Any) -> str:
    """``"2018-01-15 00:00 .. 2018-01-16 00:00"`` from two ISO 8601 UTC times (either may be
    missing: ``—``); seconds are kept only when not zero."""

    def short(value: Any) -> str:
        if not value:
            return DASH
        text = str(value).replace("T", " ").removesuffix("Z").removesuffix("+00:00")
        if len(text) >= 19 and text[16:19] == ":00":
            text = text[:16] + text[19:]
        return text

    if not start and not end:
        return DASH
    return f"{short(start)} .. {short(end)}"
