"""How the dashboard shows values: Jinja filters and the helpers the pages use to
format table rows in Python.

They are thin wrappers over :mod:`manager.display`, which holds the rules (shared
with the CLI): a value that rounds to zero at the shown precision is shown as 0 in
the neutral colour, an unknown value as "—". Every function here accepts anything
(None, strings, numpy numbers, a template's undefined value) and never raises.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import jinja2

from manager import display

__all__ = ["FILTERS", "basename", "dt", "finite", "money", "num", "pct", "plain", "sign", "text"]


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (also for a template's undefined value)."""
    return None if isinstance(value, jinja2.Undefined) else display.finite(value)


def money(value: Any) -> str:
    """An amount of the quote currency: whole amounts without decimals (``1,000``), amounts
    of 1 and more with 2 decimals, smaller ones with 6 significant digits (residues below
    1e-8 are 0); "—" when unknown. The currency is not appended."""
    v = finite(value)
    if v is None:
        return display.DASH
    if v.is_integer() and abs(v) < 1e15:
        return display.num(v, 0)
    if abs(v) >= 1:
        return display.num(v, 2)
    return display.money(v, digits=6)


def pct(value: Any, digits: int = 2) -> str:
    """A fraction as a percentage (``0.0512`` -> ``5.12 %``) with ``digits`` decimals."""
    return display.pct(finite(value), digits)


def num(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals and thousands separators."""
    return display.num(finite(value), digits)


def sign(value: Any, digits: int = 2, scale: float = 100.0) -> str:
    """The colour class of a value as shown (``pos``, ``neg`` or ``""``): by default as
    :func:`pct` shows it (``scale`` 100, ``digits`` decimals)."""
    return display.sign(finite(value), digits, scale)


def dt(value: Any) -> str:
    """An ISO 8601 time (``2018-01-15T00:05:00Z`` or ``...+00:00``) as UTC ``2018-01-15 00:05``
    (seconds only when not zero); text that is not a time is shown as it is, nothing as "—"."""
    if not value:
        return display.DASH
    raw = str(value)
    try:
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second else "%Y-%m-%d %H:%M")


def basename(value: Any) -> str:
    """The last part of a path or URL (``/data/binance-5m/`` -> ``binance-5m``); "—" for nothing."""
    if not value:
        return display.DASH
    raw = str(value).rstrip("/")
    return raw.rsplit("/", 1)[-1] or raw


def plain(value: Any) -> str:
    """``str(value)``, "—" for None."""
    return display.DASH if value is None else str(value)


def text(value: Any) -> str:
    """``str(value)``, "" for None."""
    return "" if value is None else str(value)


FILTERS = {"money": money, "pct": pct, "num": num, "sign": sign, "dt": dt, "basename": basename}
"""The Jinja filters of the dashboard's templates, by name."""
