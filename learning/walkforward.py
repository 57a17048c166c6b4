"""Walk-forward windows: train on the past, validate on what immediately follows.

The learning loop scores genomes on a *train* window and checks them on the
*validation* window that starts exactly where training ends, so no validation
bar was ever seen in training. This module only does the calendar arithmetic;
it reads no data.

Conventions
    * Every window is **half-open** ``[start, end)``, like ``cohortlab run
      --start/--end``: a bar stamped ``t`` belongs to it when
      ``start <= t < end``, so consecutive windows share no bar.
    * Times are tz-aware **UTC** :class:`pandas.Timestamp`. Inputs may be
      Timestamps, :class:`datetime.datetime`, :class:`numpy.datetime64` or ISO
      strings; naive values are read as UTC (the data's grid is UTC) and aware
      ones are converted to UTC.
    * Durations are :class:`pandas.Timedelta`, or strings for
      :func:`parse_duration` (``"90m"``, ``"6h"``, ``"3d"``, ``"1w"``), and must
      be positive.
    * Invalid arguments raise :class:`ValueError` (:class:`TypeError` for a
      value of the wrong type), with a message naming the argument.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DURATION_UNITS",
    "parse_duration",
    "Window",
    "Split",
    "split_lookback",
    "walk_forward",
]

#: Units accepted by :func:`parse_duration`: suffix -> :class:`pandas.Timedelta` keyword.
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

_DURATION_RE = re.compile(r"([0-9]+)([a-zA-Z]+)")
_ALLOWED = ", ".join(f"{suffix} ({name})" for suffix, name in DURATION_UNITS.items())


# --------------------------------------------------------------------------- conversions


def parse_duration(text: str) -> pd.Timedelta:
    """Parse a duration such as ``"90m"``, ``"6h"``, ``"12h"``, ``"3d"`` or ``"1w"``.

    Args:
        text: a positive whole number followed directly by one unit suffix:
            ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks (lower case, so
            ``m`` can never be read as months). Surrounding whitespace is ignored.

    Returns:
        The duration as a :class:`pandas.Timedelta` (``"90m"`` ->
        ``Timedelta(minutes=90)``).

    Raises:
        ValueError: anything else (empty, no number, fractions, signs, unknown
            unit, zero, too large); the message names the text and the allowed
            units.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '6h', got {text!r}")
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None or match.group(2) not in DURATION_UNITS:
        raise ValueError(
            f"invalid duration {text!r}: expected a positive whole number followed by a unit, "
            f"one of {_ALLOWED}; e.g. '90m', '6h', '3d', '1w'"
        )
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    try:
        return pd.Timedelta(**{DURATION_UNITS[match.group(2)]: amount})
    except (OverflowError, ValueError):
        raise ValueError(f"invalid duration {text!r}: too large") from None


def _duration(value, name: str) -> pd.Timedelta:
    """A positive :class:`pandas.Timedelta` from a string or timedelta-like value."""
    if isinstance(value, str):
        try:
            td = parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        return td
    if isinstance(value, (pd.Timedelta, dt.timedelta, np.timedelta64)):
        td = pd.Timedelta(value)
    else:
        raise TypeError(f"{name}: expected a duration string like '6h' or a Timedelta, got {value!r}")
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ValueError(f"{name}: must be a positive duration, got {_fmt_duration(td)}")
    return td


def _utc(value, name: str) -> pd.Timestamp:
    """A tz-aware UTC :class:`pandas.Timestamp` (naive input is read as UTC)."""
    if not isinstance(value, (pd.Timestamp, dt.datetime, dt.date, np.datetime64, str)):
        # ints and floats would be taken as nanoseconds since the epoch
        raise TypeError(f"{name}: expected a timestamp (Timestamp, datetime or ISO string), got {value!r}")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: not a timestamp: {value!r} ({exc})") from None
    if pd.isna(ts):
        raise ValueError(f"{name}: must be a timestamp, got NaT")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _fmt_time(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _fmt_duration(td: pd.Timedelta) -> str:
    """``'6h'``-style text when the duration is a whole number of one unit."""
    if pd.isna(td):
        return "NaT"
    for suffix in ("w", "d", "h", "m"):
        unit = pd.Timedelta(**{DURATION_UNITS[suffix]: 1})
        if td > pd.Timedelta(0) and td % unit == pd.Timedelta(0):
            return f"{td // unit}{suffix}"
    return str(td)


# --------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC.

    Attributes:
        start: first instant inside the window (tz-aware UTC Timestamp).
        end: first instant after it; ``start < end``.

    Construction normalises both ends to tz-aware UTC (naive input is read as
    UTC) and raises :class:`ValueError` for an empty or reversed window.
    """

    start: pd.Timestamp
    end: pd.Timestamp

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if not start < end:
            raise ValueError(f"window start {_fmt_time(start)} must be before its end {_fmt_time(end)}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> pd.Timedelta:
        """``end − start``."""
        return self.end - self.start

    def overlaps(self, other: Window) -> bool:
        """Whether the two windows share an instant; windows that only touch
        (one's ``end`` is the other's ``start``) do not overlap."""
        if not isinstance(other, Window):
            raise TypeError(f"overlaps: expected a Window, got {type(other).__name__}")
        return self.start < other.end and other.start < self.end

    def contains(self, ts) -> bool:
        """Whether ``start <= ts < end`` (``ts`` normalised like the window's ends)."""
        t = _utc(ts, "ts")
        return self.start <= t < self.end

    def __str__(self) -> str:
        return f"[{_fmt_time(self.start)}, {_fmt_time(self.end)})"


@dataclass(frozen=True)
class Split:
    """A train window and the validation window that follows it.

    Attributes:
        train: the window genomes are fitted / selected on.
        validation: the out-of-sample window; it starts exactly at
            ``train.end``, so the two never overlap and leave no gap.

    Raises:
        ValueError: ``validation.start != train.end``.
    """

    train: Window
    validation: Window

    def __post_init__(self) -> None:
        if not isinstance(self.train, Window) or not isinstance(self.validation, Window):
            raise TypeError("Split: train and validation must be Window objects")
        if self.validation.start != self.train.end:
            raise ValueError(
                f"validation must start where train ends: train {self.train}, validation {self.validation}"
            )

    @property
    def start(self) -> pd.Timestamp:
        """Start of the train window."""
        return self.train.start

    @property
    def end(self) -> pd.Timestamp:
        """End of the validation window."""
        return self.validation.end

    def __str__(self) -> str:
        return f"train {self.train} validation {self.validation}"


# --------------------------------------------------------------------------- splitters


def split_lookback(end, lookback, validation) -> Split:
    """One split over the ``lookback`` before ``end``, its last part held out.

    ``train = [end − lookback, end − validation)`` and
    ``validation = [end − validation, end)``: with ``lookback="3d"`` and
    ``validation="12h"`` the last 12 hours before ``end`` validate what was
    learnt on the 2.5 days before them.

    Args:
        end: end of the validation window (exclusive), e.g. the start of the
            next trading day; timestamp-like, naive read as UTC.
        lookback: total history used, train + validation; duration string or
            Timedelta, positive.
        validation: length of the validation window; positive and shorter than
            ``lookback``.

    Returns:
        The :class:`Split`.

    Raises:
        ValueError: a non-positive or unparsable duration, or
            ``validation >= lookback`` (no room left to train).
    """
    stop = _utc(end, "end")
    look = _duration(lookback, "lookback")
    val = _duration(validation, "validation")
    if val >= look:
        raise ValueError(
            f"validation ({_fmt_duration(val)}) must be shorter than lookback ({_fmt_duration(look)}) "
            "to leave a train window"
        )
    cut = stop - val
    return Split(Window(stop - look, cut), Window(cut, stop))


def walk_forward(start, end, train, validation, step=None, anchored: bool = False) -> list[Split]:
    """Walk-forward splits over ``[start, end)``, earliest first.

    Split ``k`` (``k = 0, 1, ...``) has::

        train      = [start + k·step, start + train + k·step)     (rolling)
                     [start,          start + train + k·step)     (anchored)
        validation = [train.end, train.end + validation)

    and splits are produced while the validation window ends at or before
    ``end``. Rolling train windows all have length ``train``; anchored
    (expanding) ones keep ``start`` and grow by ``step`` each split.

    Guarantees: in every split the validation window starts exactly at the
    train window's end (never overlapping it); every window lies inside
    ``[start, end)``; with ``step >= validation`` the validation windows of
    consecutive splits do not overlap (``step == validation``, the default,
    tiles them back to back; a larger step leaves gaps; a smaller step makes
    them overlap, which is allowed). The tail of ``[start, end)`` too short for
    another validation window is left unused.

    Args:
        start: start of the available history (inclusive); timestamp-like,
            naive read as UTC.
        end: end of the available history (exclusive).
        train: length of the (first) train window; duration string or Timedelta.
        validation: length of each validation window.
        step: how far each split moves forward; defaults to ``validation``.
        anchored: ``True`` for expanding train windows starting at ``start``.

    Returns:
        The splits, at least one.

    Raises:
        ValueError: ``start >= end``, a non-positive or unparsable duration, or
            ``[start, end)`` shorter than ``train + validation`` (no split fits).
    """
    first = _utc(start, "start")
    last = _utc(end, "end")
    if not first < last:
        raise ValueError(f"start {_fmt_time(first)} must be before end {_fmt_time(last)}")
    tr = _duration(train, "train")
    val = _duration(validation, "validation")
    stride = val if step is None else _duration(step, "step")
    if tr + val > last - first:
        raise ValueError(
            f"[{_fmt_time(first)}, {_fmt_time(last)}) spans {_fmt_duration(last - first)}, shorter than "
            f"train + validation = {_fmt_duration(tr)} + {_fmt_duration(val)}: no split fits"
        )
    splits: list[Split] = []
    k = 0
    while True:
        train_end = first + tr + k * stride
        val_end = train_end + val
        if val_end > last:
            return splits
        train_start = first if anchored else first + k * stride
        splits.append(Split(Window(train_start, train_end), Window(train_end, val_end)))
        k += 1
