"""Contract of the runs port (:class:`manager.store.ports.runs.RunStore`) on every
adapter: creating and reading runs, the keyset listing, completing and failing
runs (atomically), and the curves. The typed header, the ledger and the cohort
listing have their own modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manager.store import (
    InvalidDocument,
    RunNotFound,
    RunStateError,
    Store,
    StoreError,
    new_run_id,
)
from tests.manager.store.builders import (
    RUN_ID_RE,
    T0,
    assert_same_array,
    make_results,
    make_run,
    make_txn,
    Opener,
    paginate,
    run_at,
    snapshot,
)


# -- create / get ------------------------------------------------------------------


def test_create_run_fills_defaults_and_round_trips(store: Store) -> None:
    run = make_run(operator="ops@example", tags=("day1", "btc"))
    before = datetime.now(timezone.utc)
    run_id = store.create_run(run)
    assert RUN_ID_RE.fullmatch(run_id)
    doc = store.get_run(run_id)
    assert doc["run_id"] == run_id
    assert doc["kind"] == "cohort"
    assert doc["status"] == "running"
    assert doc["finished_at"] is None
    assert doc["summary"] is None and doc["reason"] is None and doc["timings"] is None
    assert doc["config"] == run["config"]
    assert doc["genomes"] == run["genomes"]
    assert doc["data_label"] == run["data_label"]
    assert doc["operator"] == "ops@example"
    assert doc["tags"] == ["day1", "btc"]
    created = datetime.fromisoformat(doc["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)


def test_create_run_keeps_given_id_and_normalises_created_at(store: Store) -> None:
    run_id = store.create_run(
        make_run(run_id="day1.cohort-A", kind="backtest", created_at="2025-03-01T11:30:00+02:00")
    )
    assert run_id == "day1.cohort-A"
    doc = store.get_run(run_id)
    assert doc["kind"] == "backtest"
    assert doc["created_at"] == "2025-03-01T09:30:00.000000+00:00"


def test_store_copies_input(store: Store) -> None:
    run = make_run()
    run_id = store.create_run(run)
    run["config"]["agents"] = 99
    run["genomes"].append({"family": "x"})
    doc = store.get_run(run_id)
    assert doc["config"]["agents"] == 3
    assert len(doc["genomes"]) == 2
    doc["config"]["agents"] = 7
    assert store.get_run(run_id)["config"]["agents"] == 3


def test_duplicate_run_id_is_refused_and_original_kept(store: Store) -> None:
    store.create_run(make_run(run_id="r1", data_label="first"))
    with pytest.raises(StoreError, match="r1"):
        store.create_run(make_run(run_id="r1", data_label="second"))
    assert store.get_run("r1")["data_label"] == "first"
    assert len(store.list_runs()) == 1


@pytest.mark.parametrize(
    ("overrides", "drop", "message"),
    [
        ({"kind": "live"}, None, "allowed: cohort, backtest"),
        ({}, "data_label", "missing"),
        ({}, "config", "missing"),
        ({"config": ["not", "a", "dict"]}, None, "config must be a dict"),
        ({"genomes": {"family": "x"}}, None, "genomes must be a list"),
        ({"genomes": ["sma"]}, None, r"genomes\[0\] must be a dict"),
        ({"status": "completed"}, None, "a new run is 'running'"),
        ({"summary": {}}, None, "store-set keys"),
        ({"run_id": "has space"}, None, "run_id 'has space' is not valid"),
        ({"run_id": "../etc"}, None, "is not valid"),
        ({"run_id": 42}, None, "is not valid"),
        ({"created_at": "2025-03-01T09:30:00"}, None, "no UTC offset"),
        ({"created_at": "yesterday"}, None, "not an ISO 8601"),
        ({"config": {"symbols": {"BTC"}}}, None, r"run\.config\.symbols: set"),
        ({"config": {"cap": Decimal("1.5")}}, None, r"run\.config\.cap: Decimal"),
        ({"config": {"x": float("nan")}}, None, "use None"),
        ({"config": {1: "a"}}, None, "not a str"),
        ({"genomes": [{"big": 2**70}]}, None, "64-bit"),
    ],
)
def test_create_run_refuses_bad_documents(
    store: Store, overrides: dict[str, Any], drop: str | None, message: str
) -> None:
    run = make_run(**overrides)
    if drop:
        del run[drop]
    with pytest.raises(InvalidDocument, match=message):
        store.create_run(run)
    assert store.list_runs() == []


def test_numpy_scalars_are_stored_as_python_values(store: Store) -> None:
    run_id = store.create_run(
        make_run(config={"n": np.int64(30), "lev": np.float32(0.5), "on": np.bool_(True)})
    )
    config = store.get_run(run_id)["config"]
    assert config == {"n": 30, "lev": 0.5, "on": True}
    assert type(config["n"]) is int and type(config["lev"]) is float and type(config["on"]) is bool


def test_unknown_run_raises_run_not_found_everywhere(store: Store) -> None:
    store.create_run(make_run(run_id="exists"))
    calls = [
        lambda: store.get_run("missing"),
        lambda: store.get_agents("missing"),
        lambda: store.get_trades("missing"),
        lambda: store.get_ledger("missing"),
        lambda: store.get_curves("missing"),
        lambda: store.append_ledger("missing", [make_txn(0)]),
        lambda: store.fail_run("missing", "boom"),
        lambda: store.complete_run("missing", **make_results()),
        lambda: store.list_runs(before="missing"),
    ]
    for call in calls:
        with pytest.raises(RunNotFound, match="missing"):
            call()


def test_new_run_id_is_time_ordered() -> None:
    early = new_run_id(T0)
    late = new_run_id(T0 + timedelta(seconds=1))
    assert early.startswith("20250301T093000-") and RUN_ID_RE.fullmatch(early)
    assert early < late
    assert new_run_id(T0) != new_run_id(T0)
    with pytest.raises(InvalidDocument, match="UTC offset"):
        new_run_id(datetime(2025, 1, 1))


# -- listing and keyset pagination -------------------------------------------------


def _listing_order(store: Store, **filters: Any) -> list[str]:
    return [r["run_id"] for r in store.list_runs(limit=1000, **filters)]


def test_list_runs_newest_first(store: Store) -> None:
    offsets = [5, 1, 9, 3, 7]
    for i, minutes in enumerate(offsets):
        run_at(store, T0 + timedelta(minutes=minutes), run_id=f"run-{i}")
    got = _listing_order(store)
    want = [f"run-{i}" for i in sorted(range(5), key=lambda i: offsets[i], reverse=True)]
    assert got == want
    assert [r["run_id"] for r in store.list_runs(limit=2)] == want[:2]


def test_keyset_pagination_visits_every_run_once_including_ties(store: Store) -> None:
    expected: list[tuple[str, str]] = []
    for i in range(23):
        # Groups of three runs share one created_at: ties are broken by run_id.
        when = T0 + timedelta(seconds=i // 3)
        run_id = f"r{(i * 7) % 23:02d}"
        run_at(store, when, run_id=run_id)
        expected.append((when.isoformat(), run_id))
    want = [run_id for _, run_id in sorted(expected, reverse=True)]
    pages = paginate(store, limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [run_id for page in pages for run_id in page]
    assert flat == want
    assert len(set(flat)) == 23


def test_keyset_pages_do_not_shift_when_new_runs_arrive(store: Store) -> None:
    for i in range(6):
        run_at(store, T0 + timedelta(minutes=i), run_id=f"old-{i}")
    first = [r["run_id"] for r in store.list_runs(limit=3)]
    assert first == ["old-5", "old-4", "old-3"]
    for i in range(4):  # newer runs appear between page requests
        run_at(store, T0 + timedelta(hours=1, minutes=i), run_id=f"new-{i}")
    second = [r["run_id"] for r in store.list_runs(limit=3, before=first[-1])]
    assert second == ["old-2", "old-1", "old-0"]
    assert store.list_runs(limit=3, before="old-0") == []


def test_list_runs_filters_with_pagination(store: Store) -> None:
    for i in range(12):
        run_id = run_at(
            store,
            T0 + timedelta(minutes=i),
            run_id=f"k{i:02d}",
            kind="backtest" if i % 3 == 0 else "cohort",
        )
        if i % 2 == 0:
            store.fail_run(run_id, "test failure")
    all_ids = _listing_order(store)
    want = [r for r in all_ids if int(r[1:]) % 2 == 1 and int(r[1:]) % 3 != 0]
    pages = paginate(store, limit=2, status="running", kind="cohort")
    assert [run_id for page in pages for run_id in page] == want
    assert all(r["status"] == "failed" for r in store.list_runs(status="failed"))
    assert len(store.list_runs(status="failed")) == 6
    assert len(store.list_runs(kind="backtest")) == 4
    # The cursor need not match the filter: it is a position in the listing order.
    assert [r["run_id"] for r in store.list_runs(before="k07", status="failed")] == [
        "k06",
        "k04",
        "k02",
        "k00",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "out of range"),
        ({"limit": 1001}, "out of range"),
        ({"limit": "5"}, "must be an int"),
        ({"limit": True}, "must be an int"),
        ({"status": "done"}, "allowed: running, completed, failed"),
        ({"kind": "live"}, "allowed: cohort, backtest"),
        ({"before": "bad id"}, "not valid"),
    ],
)
def test_list_runs_refuses_bad_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.list_runs(**kwargs)


# -- complete_run -------------------------------------------------------------------


def test_complete_run_round_trip(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    store.complete_run(run_id, **results)

    doc = store.get_run(run_id)
    assert doc["status"] == "completed"
    assert doc["summary"] == results["summary"]
    assert doc["timings"] == results["timings"]
    assert doc["reason"] is None
    assert datetime.fromisoformat(doc["finished_at"]) >= datetime.fromisoformat(doc["created_at"])
    assert store.list_runs()[0]["summary"] == results["summary"]

    assert store.get_agents(run_id) == results["agents"]
    assert [a["agent_id"] for a in store.get_agents(run_id)] == ["a2", "a1", "a3"]
    assert store.get_trades(run_id) == results["trades"]
    assert store.get_trades(run_id, agent_id="a1") == [results["trades"][0], results["trades"][2]]
    assert store.get_trades(run_id, agent_id="nobody") == []

    ledger = store.get_ledger(run_id)
    assert [t["seq"] for t in ledger] == [0, 1, 2]
    by_seq = {t["seq"]: t for t in results["ledger"]}
    assert ledger == [by_seq[0], by_seq[1], by_seq[2]]
    amounts = [p["amount"] for t in ledger for p in t["postings"]]
    assert amounts == [
        "-123456789012345678.12345678",
        "123456789012345678.12345678",
        "-1E-8",
        "1E-8",
        "-0.10000000",
        "0.10000000",
    ]
    assert all(type(a) is str for a in amounts)
    assert ledger[0]["postings"][1]["qty"] == "0.00012300"

    curves = store.get_curves(run_id)
    assert list(curves) == list(results["curves"])
    for name, array in results["curves"].items():
        assert_same_array(curves[name], array)
    assert curves["positions"].flags.f_contiguous


def test_completed_run_is_persisted_across_reopen(open_same: Opener) -> None:
    first = open_same()
    run_id = first.create_run(make_run())
    results = make_results()
    first.complete_run(run_id, **results)
    first.close()
    second = open_same()
    assert second.get_run(run_id)["status"] == "completed"
    assert second.get_agents(run_id) == results["agents"]
    assert len(second.get_ledger(run_id)) == 3
    assert_same_array(second.get_curves(run_id)["parent"], results["curves"]["parent"])


class _NotJson:
    def __repr__(self) -> str:
        return "<NotJson>"


def _bad_trade(r: dict[str, Any]) -> None:
    r["trades"].append({"agent_id": "a3", "symbol": "BTC/USDT", "fill": _NotJson()})


def _duplicate_txn_id(r: dict[str, Any]) -> None:
    r["ledger"].append(make_txn(9, txn_id=r["ledger"][0]["txn_id"]))


def _duplicate_seq(r: dict[str, Any]) -> None:
    r["ledger"].append(make_txn(2, txn_id="other-with-seq-2"))


def _float_amount(r: dict[str, Any]) -> None:
    txn = make_txn(7)
    txn["postings"][0]["amount"] = -10.0
    r["ledger"].append(txn)


def _unbalanced(r: dict[str, Any]) -> None:
    txn = make_txn(7)
    txn["postings"][0]["amount"] = "-9.99999999"
    r["ledger"].append(txn)


def _object_curve(r: dict[str, Any]) -> None:
    r["curves"]["zz_objects"] = np.array([{"a": 1}, None], dtype=object)


def _list_curve(r: dict[str, Any]) -> None:
    r["curves"]["zz_list"] = [1.0, 2.0]


def _duplicate_agent(r: dict[str, Any]) -> None:
    r["agents"].append({"agent_id": "a1", "rank": 4})


def _agent_without_id(r: dict[str, Any]) -> None:
    r["agents"].append({"rank": 4})


def _non_json_timings(r: dict[str, Any]) -> None:
    r["timings"]["started"] = datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("corrupt", "error", "message"),
    [
        (_bad_trade, InvalidDocument, r"trades\[3\]\.fill: _NotJson"),
        (_duplicate_txn_id, InvalidDocument, r"ledger\[3\] txn_id 't00002' appears twice"),
        (_duplicate_seq, StoreError, "seq 2 is already used"),
        (_float_amount, InvalidDocument, "floats are not exact"),
        (_unbalanced, InvalidDocument, "sum to 1E-8, not 0"),
        (_object_curve, InvalidDocument, "without pickling"),
        (_list_curve, InvalidDocument, "must be a numpy.ndarray"),
        (_duplicate_agent, InvalidDocument, "'a1' appears twice"),
        (_agent_without_id, InvalidDocument, r"agents\[3\] agent_id must be"),
        (_non_json_timings, InvalidDocument, r"timings\.started: datetime"),
    ],
)
def test_complete_run_is_atomic(
    store: Store, corrupt: Callable[[dict[str, Any]], None], error: type[Exception], message: str
) -> None:
    run_id = store.create_run(make_run())
    # State that must survive the failed completion untouched.
    assert store.append_ledger(run_id, [make_txn(100, txn_id="pre-1")]) == 1
    before = snapshot(store, run_id)

    results = make_results()
    corrupt(results)
    with pytest.raises(error, match=message):
        store.complete_run(run_id, **results)

    assert snapshot(store, run_id) == before
    assert before["run"]["status"] == "running" and before["agents"] == []
    assert [t["txn_id"] for t in before["ledger"]] == ["pre-1"]

    # Nothing half-written blocks a correct completion afterwards.
    good = make_results()
    store.complete_run(run_id, **good)
    assert store.get_run(run_id)["status"] == "completed"
    assert store.get_agents(run_id) == good["agents"]
    assert [t["seq"] for t in store.get_ledger(run_id)] == [0, 1, 2, 100]


def test_complete_run_rejects_a_conflicting_stored_txn_atomically(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(1, amount="5")])  # same txn_id "t00001", other content
    before = snapshot(store, run_id)
    with pytest.raises(StoreError, match="'t00001' is already stored .* different content"):
        store.complete_run(run_id, **make_results())
    assert snapshot(store, run_id) == before


def test_complete_run_accepts_transactions_already_appended(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    assert store.append_ledger(run_id, results["ledger"][:2]) == 2
    store.complete_run(run_id, **results)
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["t00000", "t00001", "t00002"]


def test_complete_run_only_once(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    store.complete_run(run_id, **results)
    finished = store.get_run(run_id)["finished_at"]
    other = make_results()
    other["summary"] = {"roi": -1}
    with pytest.raises(RunStateError, match="'completed'"):
        store.complete_run(run_id, **other)
    assert store.get_run(run_id)["summary"] == results["summary"]
    assert store.get_run(run_id)["finished_at"] == finished

    failed = store.create_run(make_run())
    store.fail_run(failed, "no data")
    with pytest.raises(RunStateError, match="'failed'"):
        store.complete_run(failed, **make_results())
    assert store.get_agents(failed) == [] and store.get_run(failed)["status"] == "failed"


def test_complete_run_with_empty_results(store: Store) -> None:
    run_id = store.create_run(make_run(kind="backtest"))
    store.complete_run(run_id, summary={}, agents=[], trades=[], ledger=[], curves={}, timings={})
    doc = store.get_run(run_id)
    assert doc["status"] == "completed" and doc["summary"] == {} and doc["timings"] == {}
    assert store.get_curves(run_id) == {}


# -- fail_run -----------------------------------------------------------------------


def test_fail_run_leaves_no_results(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(0), make_txn(1)])
    assert len(store.get_ledger(run_id)) == 2
    store.fail_run(run_id, "exchange timeout at bar 17", timings={"load_s": 0.3})
    doc = store.get_run(run_id)
    assert doc["status"] == "failed"
    assert doc["reason"] == "exchange timeout at bar 17"
    assert doc["timings"] == {"load_s": 0.3}
    assert doc["summary"] is None
    assert doc["finished_at"] is not None
    assert store.get_ledger(run_id) == []
    assert store.get_agents(run_id) == []
    assert store.get_trades(run_id) == []
    assert store.get_curves(run_id) == {}
    with pytest.raises(RunStateError, match="failed"):
        store.append_ledger(run_id, [make_txn(5)])
    assert store.get_ledger(run_id) == []


def test_fail_run_again_replaces_reason(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.fail_run(run_id, "first")
    store.fail_run(run_id, "second")
    doc = store.get_run(run_id)
    assert doc["reason"] == "second" and doc["timings"] is None


def test_fail_run_refuses_completed_runs_and_bad_reasons(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    store.complete_run(run_id, **results)
    with pytest.raises(RunStateError, match="completed"):
        store.fail_run(run_id, "late failure")
    assert store.get_run(run_id)["status"] == "completed"
    assert store.get_agents(run_id) == results["agents"]
    assert len(store.get_ledger(run_id)) == 3

    running = store.create_run(make_run())
    for reason in ("", None, 3):
        with pytest.raises(InvalidDocument, match="reason must be a non-empty str"):
            store.fail_run(running, reason)  # type: ignore[arg-type]
    with pytest.raises(InvalidDocument, match="timings"):
        store.fail_run(running, "x", timings=["not", "a", "dict"])  # type: ignore[arg-type]
    assert store.get_run(running)["status"] == "running"


# -- curves ----------------------------------------------------------------------


curve_arrays = hnp.arrays(
    dtype=st.sampled_from(
        [np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_, np.complex128, "<M8[ns]", ">f8"]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=st.lists(curve_arrays, min_size=1, max_size=3))
def test_curves_round_trip_exactly(store: Store, arrays: list[np.ndarray]) -> None:
    run_id = store.create_run(make_run())
    curves = {f"c{i}": a for i, a in enumerate(arrays)}
    store.complete_run(run_id, summary={}, agents=[], trades=[], ledger=[], curves=curves, timings={})
    got = store.get_curves(run_id)
    assert list(got) == list(curves)
    for name, array in curves.items():
        assert_same_array(got[name], array)


