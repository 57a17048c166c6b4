"""The one parser of user-given times and durations (CLI options, task and API
arguments), and the error every use case raises for input it cannot run."""
from __future__ import annotations

import pandas as pd

from learning.walkforward import parse_duration

__all__ = ["RunError", "duration", "utc"]


class RunError(ValueError):
    """A request that cannot run as given; the message says what to change."""


def utc(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """A user-given time as a tz-aware UTC timestamp (naive times are UTC).

    Args:
        value: ISO date or date-time (``2018-01-15``, ``2018-01-15T06:00``,
            with or without an offset), or a Timestamp.
        name: the option it came from, for the message (``start`` -> ``--start``).

    Raises:
        RunError: not a date/time, or outside pandas' nanosecond timestamp range
            (1677-09-21 .. 2262-04-11); the message names the option and the value.
    """
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise RunError(f"--{name} {value!r} is not a date/time (use e.g. 2018-01-15 or 2018-01-15T06:00)") from None
    if ts is pd.NaT:
        raise RunError(f"--{name} {value!r} is not a date/time (use e.g. 2018-01-15 or 2018-01-15T06:00)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    if not lo <= ts <= hi:
        raise RunError(f"--{name} {value!r} is outside the supported time range "
                       f"{lo:%Y-%m-%d} .. {hi:%Y-%m-%d} (UTC)")
    return ts


def duration(value: str, name: str) -> pd.Timedelta:
    """A user-given duration (``6h``, ``3d``; see :func:`learning.walkforward.parse_duration`).

    Raises:
        RunError: naming the option and the allowed units.
    """
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise RunError(f"--{name}: {exc}") from None
