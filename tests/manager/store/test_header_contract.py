"""Contract of the typed run header (``header`` of the run document,
:func:`manager.store.documents.runs.prepare_header`) on every adapter: what
``create_run`` accepts and refuses (naming the field), and what ``get_run`` and
``list_runs`` return, through completion and failure."""

from __future__ import annotations

from typing import Any

import pytest

from manager.store import RUN_HEADER_FIELDS, InvalidDocument, Store
from tests.manager.store.builders import (
    DATA_LABEL,
    Opener,
    cohort_header,
    complete_cohort,
    cohort_summary,
    make_run,
)


def test_header_round_trips_with_its_types(open_same: Opener) -> None:
    store = open_same()
    header = cohort_header("2025-03-01T00:00:00Z", 1000, quote="BTC", agents=30,
                           end="2025-03-02T00:00:00Z", market="binance-5m|5m|BTC")
    run_id = store.create_run(make_run(header=header))
    header["bankroll"] = 5.0  # the store keeps its own copy
    got = store.get_run(run_id)["header"]
    assert list(got) == list(RUN_HEADER_FIELDS)
    assert got == {"day": "2025-03-01", "window_start": "2025-03-01T00:00:00Z",
                   "window_end": "2025-03-02T00:00:00Z", "bankroll": 1000.0, "quote": "BTC",
                   "agents": 30, "data_label": DATA_LABEL, "market": "binance-5m|5m|BTC",
                   "seeded_from": "random"}
    assert type(got["bankroll"]) is float and type(got["agents"]) is int
    doc = store.get_run(run_id)
    assert list(doc)[:8] == ["run_id", "kind", "status", "created_at", "finished_at", "data_label",
                             "header", "config"]
    assert store.list_runs()[0]["header"] == got
    store.close()
    assert open_same().get_run(run_id)["header"] == got  # stored, not cached


def test_header_times_are_kept_as_given_and_day_is_their_utc_day(store: Store) -> None:
    header = cohort_header("2025-03-01T22:00:00-05:00", end="2025-03-02T04:00:00.5+00:00")
    assert header["day"] == "2025-03-02"
    run_id = store.create_run(make_run(header=header))
    got = store.get_run(run_id)["header"]
    assert (got["day"], got["window_start"], got["window_end"]) == (
        "2025-03-02", "2025-03-01T22:00:00-05:00", "2025-03-02T04:00:00.5+00:00")


def test_a_run_without_a_header_has_one_of_unknowns(store: Store) -> None:
    run_id = store.create_run(make_run())
    assert store.get_run(run_id)["header"] == {**dict.fromkeys(RUN_HEADER_FIELDS),
                                                "data_label": DATA_LABEL}
    other = store.create_run(make_run(header=None, data_label=""))
    assert store.get_run(other)["header"]["data_label"] == ""


def test_header_survives_completion_and_failure(store: Store) -> None:
    header = cohort_header("2025-03-01", 250.5, agents=3)
    done = store.create_run(make_run(header=header))
    complete_cohort(store, done, cohort_summary("2025-03-05T00:00:00Z", bankroll=9.0, quote="USD"))
    failed = store.create_run(make_run(header=header))
    store.fail_run(failed, "boom")
    backtest = store.create_run(make_run(kind="backtest", header={**header, "agents": 1,
                                                                   "seeded_from": "backtest"}))
    store.complete_run(backtest, summary={}, agents=[], trades=[], ledger=[], curves={}, timings={})
    assert store.get_run(done)["header"] == header
    assert store.get_run(failed)["header"] == header
    assert store.get_run(backtest)["header"] == {**header, "agents": 1, "seeded_from": "backtest"}
    assert "header" not in store.get_run(done)["config"]


def _with(change: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    header = {**cohort_header("2025-03-01"), **change}
    if drop:
        del header[drop]
    return header


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("2025-03-01", "run header must be a dict"),
        (_with({}, drop="quote"), r"run header is missing \['quote'\]; required: day, window_start"),
        (_with({"cost": 1}), r"run header has unknown keys \['cost'\]"),
        (_with({"day": "2025-3-1"}), r"run header\.day='2025-3-1' is not a date"),
        (_with({"day": "2025-02-30"}), r"run header\.day='2025-02-30' is not a day of the calendar"),
        (_with({"day": 20250301}), r"run header\.day=20250301 is not a date"),
        (_with({"day": "2025-03-02"}), r"run header\.day='2025-03-02' is not the UTC day of window_start"),
        (_with({"window_start": "2025-03-01T00:00:00"}), r"run header\.window_start=.* has no UTC offset"),
        (_with({"window_start": "yesterday"}), r"run header\.window_start='yesterday' is not an ISO 8601"),
        (_with({"window_start": 1740787200}), r"run header\.window_start must be a non-empty str"),
        (_with({"window_end": None}), r"run header\.window_end must be a non-empty str"),
        (_with({"window_end": "2025-03-01T00:00:00Z"}), r"run header\.window_end=.* is not after window_start"),
        (_with({"bankroll": "1000"}), r"run header\.bankroll must be a finite number"),
        (_with({"bankroll": float("nan")}), r"run header\.bankroll=nan is not a finite number"),
        (_with({"bankroll": True}), r"run header\.bankroll must be a finite number"),
        (_with({"bankroll": -1}), r"run header\.bankroll=-1\.0 is negative"),
        (_with({"quote": ""}), r"run header\.quote must be a non-empty str"),
        (_with({"agents": 2.0}), r"run header\.agents must be an int"),
        (_with({"agents": True}), r"run header\.agents must be an int"),
        (_with({"agents": -3}), r"run header\.agents=-3 is negative"),
        (_with({"data_label": 5}), r"run header\.data_label must be a str"),
        (_with({"data_label": "other"}), r"run header\.data_label='other' differs from the run's data_label"),
        (_with({"market": None}), r"run header\.market must be a non-empty str"),
        (_with({"seeded_from": ["random"]}), r"run header\.seeded_from must be a non-empty str"),
    ],
)
def test_create_run_refuses_a_bad_header_naming_the_field(store: Store, header: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.create_run(make_run(header=header))
    assert store.list_runs() == []
