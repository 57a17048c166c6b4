"""Contract of the cohort listing (``list_cohort_summaries`` of
:class:`manager.store.ports.runs.RunStore`) on every adapter: every status,
fields from the run header and the summary, filters, offset pages and totals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from manager.store import InvalidDocument, Store
from tests.helpers import ROOT
from tests.manager.store.builders import (
    T0,
    Opener,
    cohort_at,
    cohort_header,
    cohort_summary,
    complete_cohort,
    listed,
)


# -- cohort summary listing (offset pages, filters, total) ----------------------------------


def test_cohort_summaries_list_every_status_with_known_fields(open_same: Opener) -> None:
    store = open_same()
    T = T0
    cohort_at(store, T + timedelta(minutes=1), "done", header=cohort_header("2025-03-01", 1000.0, agents=3),
              genomes=[{"g": i} for i in range(3)])
    complete_cohort(store, "done", cohort_summary("2025-03-01T00:00:00Z", quote="BTC", agents=3))
    cohort_at(store, T + timedelta(minutes=2), "running",
              header=cohort_header("2025-03-02T06:00:00Z", 500, quote="USD"))
    # A completion that is refused changes nothing of the listing either.
    with pytest.raises(InvalidDocument):
        store.complete_run("running", summary=cohort_summary("2025-03-02T06:00:00Z"),
                           agents=[{"agent_id": "a"}, {"agent_id": "a"}], trades=[], ledger=[],
                           curves={}, timings={})
    cohort_at(store, T + timedelta(minutes=3), "window",
              header=cohort_header("2025-03-03T23:30:00-02:00", 750.0, quote="ETH"))
    cohort_at(store, T + timedelta(minutes=4), "nothing", config={})  # created without a header
    cohort_at(store, T + timedelta(minutes=5), "failed", header=cohort_header("2025-03-01", 1000))
    store.fail_run("failed", "engine exploded", {"failed_after_s": 1.0})
    cohort_at(store, T + timedelta(minutes=6), "backtest", kind="backtest",
              header=cohort_header("2025-03-01", 1000, agents=1))

    page = store.list_cohort_summaries()
    assert page["total"] == 5
    rows = {row["run_id"]: row for row in page["items"]}
    assert [row["run_id"] for row in page["items"]] == ["failed", "nothing", "window", "running", "done"]
    assert all(list(row) == [
        "run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote",
        "agents", "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation",
        "breaches", "failed_agents", "baseline_percentile"] for row in page["items"])
    done = dict(rows["done"])
    assert isinstance(done.pop("finished_at"), str)
    assert done == {
        "run_id": "done", "created_at": (T + timedelta(minutes=1)).isoformat(timespec="microseconds"),
        "status": "completed", "reason": None, "date": "2025-03-01", "bankroll": 1000.0,
        "quote": "BTC", "agents": 3, "data_label": "binance:1m:2025-03-01",
        "roi": 0.0125, "final_equity": 1012.5, "max_drawdown": 0.031, "peak_utilisation": 0.75,
        "breaches": 2, "failed_agents": 1, "baseline_percentile": None,  # run without baselines
    }
    metrics = ("roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents",
               "baseline_percentile")
    running = rows["running"]
    assert running["status"] == "running" and running["finished_at"] is None
    assert (running["date"], running["bankroll"], running["quote"], running["agents"]) == (
        "2025-03-02", 500.0, "USD", 2)  # the header it was created with
    assert type(running["bankroll"]) is float
    assert all(running[k] is None for k in metrics)
    window = rows["window"]  # the header's day: the window's start in UTC
    assert (window["date"], window["bankroll"], window["quote"]) == ("2025-03-04", 750.0, "ETH")
    assert all(window[k] is None for k in metrics)
    nothing = rows["nothing"]  # no header: nothing known before completion
    assert [nothing[k] for k in ("date", "bankroll", "quote", "agents")] == [None] * 4
    failed = rows["failed"]
    assert failed["status"] == "failed" and failed["reason"] == "engine exploded"
    assert isinstance(failed["finished_at"], str)
    assert (failed["date"], failed["bankroll"]) == ("2025-03-01", 1000.0)
    assert all(failed[k] is None for k in metrics)
    # Stored, not computed per call: another store object on the database sees the same.
    assert open_same().list_cohort_summaries() == page


def test_cohort_summaries_read_the_header_not_the_summary(store: Store) -> None:
    """The header recorded at creation is the listing's source for date, bankroll,
    quote and agents; the summary only adds the metrics."""
    cohort_at(store, T0, "c", header=cohort_header("2025-03-01", 1000.0, quote="BTC", agents=2))
    complete_cohort(store, "c", cohort_summary("2025-03-09T00:00:00Z", bankroll=5.0, quote="USD",
                                               agents=7, roi=0.5))
    (row,) = store.list_cohort_summaries()["items"]
    assert (row["date"], row["bankroll"], row["quote"], row["agents"], row["roi"]) == (
        "2025-03-01", 1000.0, "BTC", 2, 0.5)
    assert listed(store, date="2025-03-01") == ["c"] and listed(store, date="2025-03-09") == []


def test_cohort_summaries_filters(store: Store) -> None:
    runs = [  # run_id, minutes after T0, window start of the summary (None: not completed), bankroll
        ("a", 1, "2025-03-01T00:00:00Z", 1000.0),
        ("b", 2, "2025-03-01T22:00:00-05:00", 1000.0),  # 2025-03-02 in UTC
        ("c", 3, "2025-03-02T00:00:00+00:00", 250.5),
        ("d", 4, None, 1000.0),  # running, requested for 2025-03-02
        ("e", 5, None, 250.5),  # failed, requested for 2025-03-01
        ("f", 6, "2025-03-01T12:00:00Z", 1000.5),
    ]
    for run_id, minutes, start, bankroll in runs:
        requested = {"d": "2025-03-02", "e": "2025-03-01T12:00:00Z"}.get(run_id, start)
        cohort_at(store, T0 + timedelta(minutes=minutes), run_id,
                  header=cohort_header(requested, bankroll))
        if start is not None:
            complete_cohort(store, run_id, cohort_summary(start, bankroll=bankroll))
    store.fail_run("e", "boom")
    cohort_at(store, T0 + timedelta(minutes=7), "bt", kind="backtest",
              header=cohort_header("2025-03-01", 1000.0))

    def check(want: list[str], **filters: Any) -> None:
        page = store.list_cohort_summaries(**filters)
        assert [r["run_id"] for r in page["items"]] == want, filters
        assert page["total"] == len(want), filters

    check(["f", "e", "d", "c", "b", "a"])
    check(["f", "e", "a"], date="2025-03-01")
    check(["d", "c", "b"], date="2025-03-02")
    check([], date="2025-03-03")
    check(["d", "b", "a"], bankroll=1000)
    check(["d", "b", "a"], bankroll=np.float64(1000.0))
    check(["f"], bankroll=1000.5)
    check(["e", "c"], bankroll=250.5)
    check([], bankroll=0)
    after_c = (T0 + timedelta(minutes=3)).isoformat()
    check(["f", "e", "d"], created_after=after_c)  # strictly after: "c" itself is not
    check(["f", "e", "d"], created_after=(T0 + timedelta(minutes=3)).astimezone(
        timezone(timedelta(hours=5))).isoformat())  # any offset, compared in UTC
    check(["f", "e", "d", "c", "b", "a"], created_after="2020-01-01T00:00:00Z")
    check(["d", "b"], date="2025-03-02", bankroll=1000.0)
    check(["e"], date="2025-03-01", bankroll=250.5, created_after=after_c)
    check(["d"], date="2025-03-02", created_after=after_c)
    check(["d"], bankroll=1000, created_after=after_c)
    page = store.list_cohort_summaries(date="2025-03-01", limit=1, offset=1)
    assert [r["run_id"] for r in page["items"]] == ["e"] and page["total"] == 3


def test_cohort_summaries_offset_pages_cover_every_run_once(store: Store) -> None:
    expected: list[tuple[str, str]] = []
    for i in range(23):
        # Groups of three runs share one created_at: ties are broken by run_id, descending.
        when = T0 + timedelta(seconds=i // 3)
        run_id = f"r{(i * 7) % 23:02d}"
        cohort_at(store, when, run_id, header=cohort_header("2025-03-01"))
        expected.append((when.isoformat(), run_id))
    want = [run_id for _, run_id in sorted(expected, reverse=True)]
    for limit in (1, 5, 7, 23, 1000):
        pages = []
        for offset in range(0, 30, limit):
            page = store.list_cohort_summaries(limit=limit, offset=offset)
            assert page["total"] == 23
            assert len(page["items"]) <= limit
            pages.append([r["run_id"] for r in page["items"]])
        assert [run_id for page in pages for run_id in page] == want, limit
    assert store.list_cohort_summaries(offset=23) == {"items": [], "total": 23}
    assert store.list_cohort_summaries(offset=10**9)["items"] == []
    assert listed(store, limit=4, offset=5) == want[5:9]
    assert store.list_cohort_summaries(date="2025-03-01", limit=5, offset=20)["total"] == 23
    assert listed(store, date="2025-03-01", limit=5, offset=20) == want[20:]


def test_bench_fill_writes_completed_cohorts_the_listing_finds(store: Store) -> None:
    """scripts/bench_fill.py (the store half of scripts/bench_api.py) on every adapter."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_fill", ROOT / "scripts" / "bench_fill.py")
    bench_fill = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(bench_fill)  # type: ignore[union-attr]
    filled = bench_fill.fill_store(store, n=12, seed=3)
    assert filled.run_ids == [f"bench-3-{k:06d}" for k in range(12)]
    page = store.list_cohort_summaries(limit=100)
    assert page["total"] == 12 and [r["run_id"] for r in page["items"]] == filled.run_ids[::-1]
    assert {r["date"] for r in page["items"]} == set(filled.dates)
    assert {r["bankroll"] for r in page["items"]} == set(filled.bankrolls)
    assert all(r["status"] == "completed" and r["agents"] == 30 and r["quote"] == "BTC"
               and isinstance(r["roi"], float) for r in page["items"])
    run_id = filled.run_ids[0]
    assert len(store.get_agents(run_id)) == 30 and len(store.get_trades(run_id)) == 30
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["deposit", "allocate"]
    curves = store.get_curves(run_id)
    assert curves["equity"].shape == (30, 96) and curves["parent_equity"].shape == (96,)
    date = filled.dates[0]
    assert store.list_cohort_summaries(date=date)["total"] == sum(
        r["date"] == date for r in page["items"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"date": "2025/03/01"}, r"date='2025/03/01' is not a date; allowed: a str 'YYYY-MM-DD'"),
        ({"date": "2025-3-1"}, "date='2025-3-1' is not a date"),
        ({"date": "2025-02-30"}, "date='2025-02-30' is not a day of the calendar"),
        ({"date": "2025-03-01T00:00:00Z"}, "is not a date"),
        ({"date": 20250301}, "date=20250301 is not a date"),
        ({"bankroll": -1}, r"bankroll=-1.0 is negative; allowed: a number >= 0"),
        ({"bankroll": "1000"}, "bankroll must be a finite number"),
        ({"bankroll": True}, "bankroll must be a finite number"),
        ({"bankroll": float("nan")}, "bankroll=nan is not a finite number"),
        ({"created_after": "yesterday"}, "created_after='yesterday' is not an ISO 8601 timestamp"),
        ({"created_after": "2025-03-01T00:00:00"}, "created_after='2025-03-01T00:00:00' has no UTC offset"),
        ({"created_after": 5}, "created_after must be an ISO 8601 string"),
        ({"limit": 0}, "limit=0 is out of range; allowed: 1 to 1000"),
        ({"limit": 1001}, "limit=1001 is out of range"),
        ({"limit": "5"}, "limit must be an int"),
        ({"offset": -1}, r"offset=-1 is out of range; allowed: an int >= 0"),
        ({"offset": 1.5}, "offset must be an int >= 0, got float 1.5"),
        ({"offset": True}, "offset must be an int"),
    ],
)
def test_cohort_summaries_refuse_bad_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.list_cohort_summaries(**kwargs)


def test_cohort_summaries_arguments_are_keyword_only(store: Store) -> None:
    with pytest.raises(TypeError):
        store.list_cohort_summaries("2025-03-01")  # type: ignore[misc]


def test_cohort_summaries_of_2000_cohorts(open_same: Opener) -> None:
    """Every page, filter and total over 2,000 cohorts (no timing: see scripts/bench_fill.py)."""
    store = open_same()
    days = [f"2025-03-{d:02d}" for d in range(1, 8)]
    bankrolls = [100.0, 250.5, 1000.0]
    truth: list[dict[str, Any]] = []
    for i in range(2000):
        run_id = f"c{i:04d}"
        when = T0 + timedelta(seconds=i // 2)  # pairs share created_at
        day, bankroll = days[i % 7], bankrolls[i % 3]
        cohort_at(store, when, run_id, header=cohort_header(day, bankroll, agents=3))
        status = "running"
        if i % 10 == 0:
            complete_cohort(store, run_id, cohort_summary(f"{day}T00:00:00Z", bankroll=bankroll,
                                                          roi=i / 10_000))
            status = "completed"
        elif i % 15 == 1:
            store.fail_run(run_id, "boom")
            status = "failed"
        if i % 40 == 0:
            cohort_at(store, when, f"b{i:04d}", kind="backtest", header=cohort_header(day, bankroll))
        truth.append({"run_id": run_id, "created_at": when.isoformat(timespec="microseconds"),
                      "date": day, "bankroll": bankroll, "status": status,
                      "roi": i / 10_000 if status == "completed" else None})
    truth.sort(key=lambda r: (r["created_at"], r["run_id"]), reverse=True)
    store = open_same()  # reopened: everything listed is stored

    def want(**filters: Any) -> list[str]:
        out = truth
        if "date" in filters:
            out = [r for r in out if r["date"] == filters["date"]]
        if "bankroll" in filters:
            out = [r for r in out if r["bankroll"] == filters["bankroll"]]
        if "created_after" in filters:
            after = datetime.fromisoformat(filters["created_after"]).isoformat(timespec="microseconds")
            out = [r for r in out if r["created_at"] > after]
        return [r["run_id"] for r in out]

    def every_page(limit: int, **filters: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = store.list_cohort_summaries(limit=limit, offset=offset, **filters)
            assert page["total"] == len(want(**filters))
            if not page["items"]:
                return rows
            rows.extend(page["items"])
            offset += limit

    rows = every_page(1000)
    assert [r["run_id"] for r in rows] == want()
    by_id = {r["run_id"]: r for r in truth}
    for row in rows:
        fact = by_id[row["run_id"]]
        assert (row["created_at"], row["date"], row["bankroll"], row["status"], row["roi"]) == (
            fact["created_at"], fact["date"], fact["bankroll"], fact["status"], fact["roi"])
        assert (row["agents"], row["quote"]) == (3, "BTC")  # the header's, whatever the status
    for filters in [{"date": "2025-03-04"}, {"bankroll": 250.5}, {"date": "2025-03-07", "bankroll": 100.0},
                    {"created_after": (T0 + timedelta(seconds=700)).isoformat()},
                    {"date": "2025-03-01", "created_after": (T0 + timedelta(seconds=900)).isoformat()}]:
        assert [r["run_id"] for r in every_page(50, **filters)] == want(**filters), filters
    for offset in (0, 20, 980, 1999, 2000):
        assert listed(store, limit=20, offset=offset) == want()[offset:offset + 20]




def test_cohort_listing_carries_the_baseline_percentile(open_same: Opener) -> None:
    """Issue 10: the listing's ``baseline_percentile`` is the summary's
    ``baselines.random.percentile`` on every adapter; None before completion, after a
    failure and for a run without baselines."""
    store = open_same()
    summary = {**cohort_summary("2025-03-01T00:00:00Z"),
               "baselines": {"random": {"cohorts": 20, "agents": 3, "percentile": 72.5}}}
    cohort_at(store, T0 + timedelta(minutes=1), "with", header=cohort_header("2025-03-01", 1000.0, agents=3))
    complete_cohort(store, "with", summary)
    cohort_at(store, T0 + timedelta(minutes=2), "without", header=cohort_header("2025-03-01", 1000.0, agents=3))
    complete_cohort(store, "without", cohort_summary("2025-03-01T00:00:00Z"))
    cohort_at(store, T0 + timedelta(minutes=3), "running", header=cohort_header("2025-03-01", 1000.0))
    cohort_at(store, T0 + timedelta(minutes=4), "failed", header=cohort_header("2025-03-01", 1000.0))
    store.fail_run("failed", "boom")
    rows = {r["run_id"]: r for r in store.list_cohort_summaries()["items"]}
    assert rows["with"]["baseline_percentile"] == 72.5
    assert type(rows["with"]["baseline_percentile"]) is float
    assert [rows[k]["baseline_percentile"] for k in ("without", "running", "failed")] == [None] * 3
