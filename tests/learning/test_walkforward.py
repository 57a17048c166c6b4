"""Tests of learning.walkforward: durations, windows, splits.

Hand-worked examples pin the exact windows; hypothesis checks the guarantees
(validation starts at train end, never overlaps it, everything inside
[start, end), validation windows disjoint when step >= validation) over
random spans, lengths and steps.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.walkforward import DURATION_UNITS, Split, Window, parse_duration, split_lookback, walk_forward


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def W(a: str, b: str) -> Window:
    return Window(T(a), T(b))


# --------------------------------------------------------------------------- parse_duration


class TestParseDuration:
    @pytest.mark.parametrize(
        "text, expected",
        [
            ("90m", pd.Timedelta(minutes=90)),
            ("6h", pd.Timedelta(hours=6)),
            ("12h", pd.Timedelta(hours=12)),
            ("3d", pd.Timedelta(days=3)),
            ("1w", pd.Timedelta(days=7)),
            ("1m", pd.Timedelta(minutes=1)),
            ("  48h\n", pd.Timedelta(days=2)),
            ("007d", pd.Timedelta(days=7)),
        ],
    )
    def test_valid(self, text, expected):
        got = parse_duration(text)
        assert isinstance(got, pd.Timedelta)
        assert got == expected

    @pytest.mark.parametrize(
        "text",
        ["", "   ", "6", "h", "1.5h", "-1h", "+1h", "6H", "6 h", "1mo", "6hh", "3s", "1y", "h6", "6h3m", "٣d"],
    )
    def test_invalid_names_text_and_units(self, text):
        with pytest.raises(ValueError) as info:
            parse_duration(text)
        msg = str(info.value)
        assert repr(text) in msg
        for suffix, name in DURATION_UNITS.items():
            assert f"{suffix} ({name})" in msg

    @pytest.mark.parametrize("text", ["0m", "0h", "000d"])
    def test_zero_is_rejected(self, text):
        with pytest.raises(ValueError, match=f"{text!r}.*positive"):
            parse_duration(text)

    def test_too_large(self):
        with pytest.raises(ValueError, match="too large"):
            parse_duration("99999999999999w")

    @pytest.mark.parametrize("value", [None, 6, pd.Timedelta(hours=6)])
    def test_not_a_string(self, value):
        with pytest.raises(ValueError, match="string"):
            parse_duration(value)


# --------------------------------------------------------------------------- Window


class TestWindow:
    def test_normalises_to_utc(self):
        w = Window("2024-01-01", dt.datetime(2024, 1, 2, 3, 0))
        assert w.start == T("2024-01-01") and w.end == T("2024-01-02 03:00")
        assert str(w.start.tz) == "UTC" and str(w.end.tz) == "UTC"
        berlin = Window(pd.Timestamp("2024-01-01 01:00", tz="Europe/Berlin"), np.datetime64("2024-01-01T05:00"))
        assert berlin == W("2024-01-01 00:00", "2024-01-01 05:00")
        assert str(berlin.start.tz) == "UTC"
        assert hash(berlin) == hash(W("2024-01-01 00:00", "2024-01-01 05:00"))

    def test_duration_and_str(self):
        w = W("2024-01-01 00:00", "2024-01-01 06:00")
        assert w.duration == pd.Timedelta(hours=6)
        assert str(w) == "[2024-01-01T00:00:00Z, 2024-01-01T06:00:00Z)"

    def test_frozen(self):
        w = W("2024-01-01", "2024-01-02")
        with pytest.raises(AttributeError):
            w.start = T("2023-01-01")

    def test_contains_is_half_open(self):
        w = W("2024-01-01 00:00", "2024-01-01 06:00")
        assert w.contains(T("2024-01-01 00:00"))
        assert w.contains(T("2024-01-01 05:59:59.999999"))
        assert w.contains("2024-01-01 03:00")  # naive read as UTC
        assert not w.contains(T("2024-01-01 06:00"))
        assert not w.contains(T("2023-12-31 23:59"))
        # 07:00 in Berlin is 06:00 UTC: outside
        assert not w.contains(pd.Timestamp("2024-01-01 07:00", tz="Europe/Berlin"))
        assert w.contains(pd.Timestamp("2024-01-01 06:59", tz="Europe/Berlin"))

    def test_overlaps(self):
        a = W("2024-01-01 00:00", "2024-01-01 06:00")
        assert a.overlaps(W("2024-01-01 05:00", "2024-01-01 07:00"))
        assert a.overlaps(W("2024-01-01 01:00", "2024-01-01 02:00"))  # inside
        assert a.overlaps(W("2023-12-31", "2024-01-02"))  # around
        assert a.overlaps(a)
        assert not a.overlaps(W("2024-01-01 06:00", "2024-01-01 07:00"))  # touching
        assert not W("2024-01-01 06:00", "2024-01-01 07:00").overlaps(a)
        assert not a.overlaps(W("2024-01-02", "2024-01-03"))

    @pytest.mark.parametrize("a, b", [("2024-01-02", "2024-01-01"), ("2024-01-01", "2024-01-01")])
    def test_empty_or_reversed(self, a, b):
        with pytest.raises(ValueError, match="must be before"):
            Window(a, b)

    @pytest.mark.parametrize("bad", [pd.NaT, "not a date"])
    def test_bad_timestamp(self, bad):
        with pytest.raises(ValueError, match="start"):
            Window(bad, "2024-01-01")

    @pytest.mark.parametrize("bad", [0, 1.5, None])
    def test_wrong_type(self, bad):
        with pytest.raises(TypeError, match="end"):
            Window("2024-01-01", bad)

    def test_overlaps_needs_window(self):
        with pytest.raises(TypeError):
            W("2024-01-01", "2024-01-02").overlaps(("2024-01-01", "2024-01-02"))


class TestSplit:
    def test_adjacent(self):
        s = Split(W("2024-01-01", "2024-01-03"), W("2024-01-03", "2024-01-04"))
        assert s.start == T("2024-01-01") and s.end == T("2024-01-04")
        assert not s.train.overlaps(s.validation)
        assert str(s) == "train [2024-01-01T00:00:00Z, 2024-01-03T00:00:00Z) validation " \
                         "[2024-01-03T00:00:00Z, 2024-01-04T00:00:00Z)"

    @pytest.mark.parametrize(
        "train, validation",
        [
            (("2024-01-01", "2024-01-03"), ("2024-01-02", "2024-01-04")),  # overlapping
            (("2024-01-01", "2024-01-03"), ("2024-01-03 00:05", "2024-01-04")),  # gap
            (("2024-01-02", "2024-01-03"), ("2024-01-01", "2024-01-02")),  # validation first
        ],
    )
    def test_validation_must_start_at_train_end(self, train, validation):
        with pytest.raises(ValueError, match="validation must start where train ends"):
            Split(W(*train), W(*validation))

    def test_needs_windows(self):
        with pytest.raises(TypeError):
            Split(("2024-01-01", "2024-01-02"), W("2024-01-02", "2024-01-03"))


# --------------------------------------------------------------------------- split_lookback


class TestSplitLookback:
    def test_hand_worked(self):
        s = split_lookback("2024-01-04", "3d", "12h")
        assert s == Split(W("2024-01-01 00:00", "2024-01-03 12:00"), W("2024-01-03 12:00", "2024-01-04 00:00"))
        assert s.train.duration == pd.Timedelta(hours=60)
        assert s.validation.duration == pd.Timedelta(hours=12)

    def test_timedelta_arguments_and_minutes(self):
        s = split_lookback(T("2024-01-01 12:00"), pd.Timedelta(hours=6), dt.timedelta(minutes=90))
        assert s.train == W("2024-01-01 06:00", "2024-01-01 10:30")
        assert s.validation == W("2024-01-01 10:30", "2024-01-01 12:00")
        assert split_lookback(T("2024-01-01 12:00"), "6h", "90m") == s

    @pytest.mark.parametrize(
        "lookback, validation, match",
        [
            ("6h", "6h", r"validation \(6h\) must be shorter than lookback \(6h\)"),
            ("6h", "1d", r"validation \(1d\) must be shorter than lookback \(6h\)"),
            ("0h", "1h", "lookback"),
            ("6h", "0m", "validation"),
            (pd.Timedelta(hours=-6), "1h", "lookback: must be a positive duration"),
            ("6h", pd.Timedelta(0), "validation: must be a positive duration"),
            ("6x", "1h", r"lookback: invalid duration '6x'"),
        ],
    )
    def test_errors(self, lookback, validation, match):
        with pytest.raises(ValueError, match=match):
            split_lookback("2024-01-04", lookback, validation)

    def test_wrong_duration_type(self):
        with pytest.raises(TypeError, match="lookback"):
            split_lookback("2024-01-04", 6, "1h")


# --------------------------------------------------------------------------- walk_forward


def spans(splits):
    return [(s.train.start, s.train.end, s.validation.start, s.validation.end) for s in splits]


class TestWalkForwardExamples:
    def test_rolling_default_step(self):
        # one day, train 12h, validate 4h, step = validation = 4h: 3 splits
        got = walk_forward("2024-01-01", "2024-01-02", "12h", "4h")
        assert spans(got) == [
            (T("2024-01-01 00:00"), T("2024-01-01 12:00"), T("2024-01-01 12:00"), T("2024-01-01 16:00")),
            (T("2024-01-01 04:00"), T("2024-01-01 16:00"), T("2024-01-01 16:00"), T("2024-01-01 20:00")),
            (T("2024-01-01 08:00"), T("2024-01-01 20:00"), T("2024-01-01 20:00"), T("2024-01-02 00:00")),
        ]

    def test_anchored(self):
        got = walk_forward("2024-01-01", "2024-01-02", "12h", "4h", anchored=True)
        assert spans(got) == [
            (T("2024-01-01 00:00"), T("2024-01-01 12:00"), T("2024-01-01 12:00"), T("2024-01-01 16:00")),
            (T("2024-01-01 00:00"), T("2024-01-01 16:00"), T("2024-01-01 16:00"), T("2024-01-01 20:00")),
            (T("2024-01-01 00:00"), T("2024-01-01 20:00"), T("2024-01-01 20:00"), T("2024-01-02 00:00")),
        ]

    def test_validation_windows_tile_the_tail(self):
        got = walk_forward("2024-01-01", "2024-01-02", "12h", "4h")
        vals = [s.validation for s in got]
        assert vals[0].start == T("2024-01-01 12:00") and vals[-1].end == T("2024-01-02")
        assert all(a.end == b.start for a, b in zip(vals, vals[1:]))

    def test_step_larger_than_validation_leaves_gaps_and_unused_tail(self):
        # 3 days, train 1d, validate 6h, step 1d; the last 18h are too short for another split
        got = walk_forward("2024-01-01", "2024-01-04", "1d", "6h", step="1d")
        assert spans(got) == [
            (T("2024-01-01"), T("2024-01-02"), T("2024-01-02"), T("2024-01-02 06:00")),
            (T("2024-01-02"), T("2024-01-03"), T("2024-01-03"), T("2024-01-03 06:00")),
        ]

    def test_step_smaller_than_validation_overlaps_validations(self):
        got = walk_forward("2024-01-01 00:00", "2024-01-01 10:30", "6h", "3h", step="90m")
        assert spans(got) == [
            (T("2024-01-01 00:00"), T("2024-01-01 06:00"), T("2024-01-01 06:00"), T("2024-01-01 09:00")),
            (T("2024-01-01 01:30"), T("2024-01-01 07:30"), T("2024-01-01 07:30"), T("2024-01-01 10:30")),
        ]
        assert got[0].validation.overlaps(got[1].validation)
        assert not got[0].train.overlaps(got[0].validation) and not got[1].train.overlaps(got[1].validation)
        # 30 minutes less and the second split no longer fits
        assert len(walk_forward("2024-01-01 00:00", "2024-01-01 10:00", "6h", "3h", step="90m")) == 1

    def test_exact_fit_gives_one_split(self):
        got = walk_forward("2024-01-01", "2024-01-02", "18h", "6h")
        assert got == [Split(W("2024-01-01", "2024-01-01 18:00"), W("2024-01-01 18:00", "2024-01-02"))]

    def test_weekly(self):
        got = walk_forward("2024-01-01", "2024-03-01", "3w", "1w", step="2w", anchored=True)
        assert [s.train.duration for s in got] == [pd.Timedelta(weeks=w) for w in (3, 5, 7)]
        assert all(s.validation.duration == pd.Timedelta(weeks=1) for s in got)
        assert got[-1].validation.end == T("2024-02-26")

    def test_timezones_and_naive_inputs_are_utc(self):
        a = walk_forward(pd.Timestamp("2024-01-01 01:00", tz="Europe/Berlin"), "2024-01-02", "12h", "4h")
        b = walk_forward(T("2024-01-01"), dt.datetime(2024, 1, 2), pd.Timedelta(hours=12), pd.Timedelta(hours=4))
        assert a == b

    @pytest.mark.parametrize(
        "kwargs, exc, match",
        [
            (dict(start="2024-01-02", end="2024-01-01"), ValueError, "must be before end"),
            (dict(start="2024-01-01", end="2024-01-01"), ValueError, "must be before end"),
            (dict(end="2024-01-01 15:00"), ValueError, "shorter than train \\+ validation = 12h \\+ 4h: no split fits"),
            (dict(train="0h"), ValueError, "train"),
            (dict(validation="-4h"), ValueError, "validation: invalid duration '-4h'"),
            (dict(step="0m"), ValueError, "step"),
            (dict(step=pd.Timedelta(hours=-1)), ValueError, "step: must be a positive duration"),
            (dict(train="12"), ValueError, "train: invalid duration '12'"),
            (dict(train=12), TypeError, "train"),
            (dict(start=None), TypeError, "start"),
            (dict(end="soon"), ValueError, "end"),
        ],
    )
    def test_errors(self, kwargs, exc, match):
        args = dict(start="2024-01-01", end="2024-01-02", train="12h", validation="4h") | kwargs
        with pytest.raises(exc, match=match):
            walk_forward(**args)


# --------------------------------------------------------------------------- properties

BASE = T("2024-01-01")
minutes = st.integers(1, 3 * 24 * 60)


@st.composite
def walk_args(draw):
    """Arguments with a known number of splits: span = train + validation + k·step + r, r < step."""
    start = BASE + pd.Timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    train = pd.Timedelta(minutes=draw(minutes))
    validation = pd.Timedelta(minutes=draw(minutes))
    step = draw(st.one_of(st.none(), minutes.map(lambda x: pd.Timedelta(minutes=x))))
    eff = validation if step is None else step
    k = draw(st.integers(0, 25))
    rest = pd.Timedelta(minutes=draw(st.integers(0, eff // pd.Timedelta(minutes=1) - 1)))
    end = start + train + validation + k * eff + rest
    args = dict(start=start, end=end, train=train, validation=validation, step=step,
                anchored=draw(st.booleans()))
    return args, k + 1


@settings(max_examples=300, deadline=None)
@given(case=walk_args())
def test_walk_forward_properties(case):
    args, expected_count = case
    start, end, step = args["start"], args["end"], args["step"] or args["validation"]
    splits = walk_forward(**args)
    assert len(splits) == expected_count
    for k, s in enumerate(splits):
        assert s.validation.start == s.train.end
        assert not s.train.overlaps(s.validation)
        assert s.validation.duration == args["validation"]
        for w in (s.train, s.validation):
            assert start <= w.start and w.end <= end
            assert w.contains(w.start) and not w.contains(w.end)
        if args["anchored"]:
            assert s.train.start == start
            assert s.train.duration == args["train"] + k * step
        else:
            assert s.train.duration == args["train"]
            assert s.train.start == start + k * step
    # consecutive splits move forward by exactly step
    for a, b in zip(splits, splits[1:]):
        assert b.validation.start - a.validation.start == step
        if step >= args["validation"]:
            assert not a.validation.overlaps(b.validation)
    # maximal: one more step would run past end
    assert splits[-1].validation.end + step > end


@settings(max_examples=300, deadline=None)
@given(end_min=st.integers(0, 10**7), look=minutes, val=minutes)
def test_split_lookback_properties(end_min, look, val):
    end = BASE + pd.Timedelta(minutes=end_min)
    lookback, validation = pd.Timedelta(minutes=look), pd.Timedelta(minutes=val)
    if validation >= lookback:
        with pytest.raises(ValueError, match="must be shorter than lookback"):
            split_lookback(end, lookback, validation)
        return
    s = split_lookback(end, lookback, validation)
    assert s.train.start == end - lookback and s.validation.end == end
    assert s.validation.start == s.train.end and not s.train.overlaps(s.validation)
    assert s.validation.duration == validation
    assert s.train.duration + s.validation.duration == lookback


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 1000), la=st.integers(1, 500), b=st.integers(0, 1000), lb=st.integers(1, 500),
       t=st.integers(-10, 1600))
def test_window_overlap_and_contains_match_integer_model(a, la, b, lb, t):
    wa = Window(BASE + pd.Timedelta(minutes=a), BASE + pd.Timedelta(minutes=a + la))
    wb = Window(BASE + pd.Timedelta(minutes=b), BASE + pd.Timedelta(minutes=b + lb))
    shared = set(range(a, a + la)) & set(range(b, b + lb))  # whole minutes in both
    assert wa.overlaps(wb) == bool(shared) == wb.overlaps(wa)
    assert wa.contains(BASE + pd.Timedelta(minutes=t)) == (a <= t < a + la)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10**6), unit=st.sampled_from(sorted(DURATION_UNITS)))
def test_parse_duration_roundtrip(n, unit):
    assert parse_duration(f"{n}{unit}") == pd.Timedelta(**{DURATION_UNITS[unit]: n})
