"""Contract tests of the storage port (manager.store.base.Store).

Every test taking the ``store`` or ``open_same`` fixture runs against every adapter
in ``ADAPTERS``. To add an adapter (MongoDB), add one entry there: a function of
``tmp_path`` returning a zero-argument opener that opens a store on one fresh,
private database (each call opens that same database again).

The last sections test ``open_store`` URL parsing, the settings, and facts
particular to the SQLite adapter (pragmas, tables, query plans).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from manager.settings import Settings, get_settings
from manager.store import (
    InvalidDocument,
    RunNotFound,
    RunStateError,
    SQLiteStore,
    Store,
    StoreError,
    new_run_id,
    open_store,
)
from manager.store.sqlite import SCHEMA_VERSION

Opener = Callable[[], Store]


def _sqlite_adapter(tmp_path: Path) -> Opener:
    path = tmp_path / "contract-sqlite" / "store.db"
    path.parent.mkdir()
    return lambda: SQLiteStore(path)


ADAPTERS: dict[str, Callable[[Path], Opener]] = {
    "sqlite": _sqlite_adapter,
    # "mongodb": _mongodb_adapter,  # later: same contract, one more entry
}


@pytest.fixture(params=sorted(ADAPTERS))
def open_same(request: pytest.FixtureRequest, tmp_path: Path):
    """Opener of stores on one fresh database of the parametrised adapter."""
    opener = ADAPTERS[request.param](tmp_path)
    opened: list[Store] = []

    def make() -> Store:
        store = opener()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_same: Opener) -> Store:
    return open_same()


# -- builders --------------------------------------------------------------------

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
RUN_ID_RE = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


def make_run(**overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "kind": "cohort",
        "config": {"agents": 3, "bankroll": "1000", "symbols": ["BTC/USDT", "ETH/USDT"]},
        "genomes": [
            {"family": "sma_cross", "params": {"fast": 5, "slow": 20}, "leverage": 1.5},
            {"family": "rsi_revert", "params": {"period": 14}, "leverage": 1.0},
        ],
        "data_label": "binance:1m:2025-03-01",
    }
    run.update(overrides)
    return run


def make_txn(seq: int, *, txn_id: str | None = None, amount: str = "10.00000000", **extra: Any):
    txn: dict[str, Any] = {
        "txn_id": txn_id or f"t{seq:05d}",
        "seq": seq,
        "bar": seq // 2,
        "time": (T0 + timedelta(minutes=seq)).isoformat(),
        "kind": "fill",
        "memo": f"txn {seq}",
        "postings": [
            {"account": "agent:a1:cash", "amount": f"-{amount}", "qty": None, "symbol": None},
            {
                "account": "agent:a1:position:BTC/USDT",
                "amount": amount,
                "qty": "0.00012300",
                "symbol": "BTC/USDT",
            },
        ],
    }
    txn.update(extra)
    return txn


def make_results() -> dict[str, Any]:
    return {
        "summary": {"roi": 0.0123, "sharpe": 1.7, "best_agent": "a2", "breaches": 0},
        "agents": [
            {"agent_id": "a2", "rank": 1, "roi": 0.031, "genome_id": "g2"},
            {"agent_id": "a1", "rank": 2, "roi": 0.012, "genome_id": "g1"},
            {"agent_id": "a3", "rank": 3, "roi": -0.004, "genome_id": "g3"},
        ],
        "trades": [
            {"agent_id": "a1", "symbol": "BTC/USDT", "side": "buy", "qty": 0.5, "bar": 3},
            {"agent_id": "a2", "symbol": "ETH/USDT", "side": "sell", "qty": 1.25, "bar": 4},
            {"agent_id": "a1", "symbol": "BTC/USDT", "side": "sell", "qty": 0.5, "bar": 9},
        ],
        # Deliberately not in seq order: get_ledger must order by seq.
        "ledger": [
            make_txn(2, amount="0.10000000"),
            make_txn(0, amount="123456789012345678.12345678"),
            make_txn(1, amount="1E-8"),
        ],
        "curves": {
            "parent": np.array([1000.0, 1000.5, np.nan, 999.25]),
            "agents": np.arange(12, dtype=np.float32).reshape(3, 4),
            "positions": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
            "alive": np.array([True, False, True]),
        },
        "timings": {"load_s": 0.12, "simulate_s": 1.5},
    }


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def snapshot(store: Store, run_id: str) -> dict[str, Any]:
    return {
        "run": store.get_run(run_id),
        "agents": store.get_agents(run_id),
        "trades": store.get_trades(run_id),
        "ledger": store.get_ledger(run_id),
        "curves": sorted(store.get_curves(run_id)),
    }


def run_at(store: Store, when: datetime, **overrides: Any) -> str:
    return store.create_run(make_run(created_at=when.isoformat(), **overrides))


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


def _paginate(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    before = None
    while True:
        page = [r["run_id"] for r in store.list_runs(limit=limit, before=before, **filters)]
        if not page:
            return pages
        assert len(page) <= limit
        pages.append(page)
        before = page[-1]
        assert len(pages) < 100, "pagination does not terminate"


def test_keyset_pagination_visits_every_run_once_including_ties(store: Store) -> None:
    expected: list[tuple[str, str]] = []
    for i in range(23):
        # Groups of three runs share one created_at: ties are broken by run_id.
        when = T0 + timedelta(seconds=i // 3)
        run_id = f"r{(i * 7) % 23:02d}"
        run_at(store, when, run_id=run_id)
        expected.append((when.isoformat(), run_id))
    want = [run_id for _, run_id in sorted(expected, reverse=True)]
    pages = _paginate(store, limit=5)
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
    pages = _paginate(store, limit=2, status="running", kind="cohort")
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


def test_ledger_postings_are_normalised(store: Store) -> None:
    run_id = store.create_run(make_run())
    txn = {
        "txn_id": "dep-1",
        "seq": 0,
        "bar": 0,
        "time": "2025-03-01T09:30:00Z",
        "kind": "deposit",
        "postings": [
            {"account": "parent:cash", "amount": "100"},
            {"account": "equity:capital", "amount": "-100"},
        ],
        "source": "bankroll",
    }
    assert store.append_ledger(run_id, [txn]) == 1
    (got,) = store.get_ledger(run_id)
    assert got["memo"] == ""
    assert got["source"] == "bankroll"
    assert got["time"] == "2025-03-01T09:30:00Z"
    assert got["postings"] == [
        {"account": "parent:cash", "amount": "100", "qty": None, "symbol": None},
        {"account": "equity:capital", "amount": "-100", "qty": None, "symbol": None},
    ]


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


# -- append_ledger ----------------------------------------------------------------


def test_append_ledger_is_idempotent(store: Store) -> None:
    run_id = store.create_run(make_run())
    batch = [make_txn(0), make_txn(1), make_txn(2)]
    assert store.append_ledger(run_id, batch) == 3
    assert store.append_ledger(run_id, batch) == 0
    assert store.append_ledger(run_id, [make_txn(2), make_txn(3), make_txn(4)]) == 2
    assert store.append_ledger(run_id, []) == 0
    ledger = store.get_ledger(run_id)
    assert [t["txn_id"] for t in ledger] == ["t00000", "t00001", "t00002", "t00003", "t00004"]
    assert ledger[0] == batch[0]


def test_append_ledger_orders_by_seq_not_arrival(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(10), make_txn(3)])
    store.append_ledger(run_id, [make_txn(7)])
    assert [t["seq"] for t in store.get_ledger(run_id)] == [3, 7, 10]


def test_append_ledger_batches_are_atomic(store: Store) -> None:
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(0)])
    conflicting = make_txn(0, amount="99")
    with pytest.raises(StoreError, match="'t00000' is already stored .* different content"):
        store.append_ledger(run_id, [make_txn(1), make_txn(2), conflicting])
    with pytest.raises(StoreError, match="seq 0 is already used"):
        store.append_ledger(run_id, [make_txn(1), make_txn(0, txn_id="x0")])
    with pytest.raises(InvalidDocument, match="appears twice"):
        store.append_ledger(run_id, [make_txn(1), make_txn(1)])
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["t00000"]


def test_append_ledger_on_completed_run(store: Store) -> None:
    run_id = store.create_run(make_run())
    results = make_results()
    store.complete_run(run_id, **results)
    assert store.append_ledger(run_id, results["ledger"]) == 0  # a retried task
    with pytest.raises(RunStateError, match="completed"):
        store.append_ledger(run_id, [make_txn(50)])
    assert len(store.get_ledger(run_id)) == 3


def _txn_with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    txn = make_txn(0)
    target: Any = txn
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return txn


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("txn_id",), KeyError, "txn_id must be a non-empty str"),
        (("txn_id",), 7, "txn_id must be a non-empty str"),
        (("seq",), "0", "seq must be an int"),
        (("seq",), True, "seq must be an int"),
        (("bar",), 1.0, "bar must be an int"),
        (("time",), "noon", "not an ISO 8601"),
        (("kind",), "", "kind must be a non-empty str"),
        (("postings",), [], "no postings"),
        (("postings",), KeyError, "postings must be a list"),
        (("postings", 0, "amount"), Decimal("-10"), "must be a decimal string"),
        (("postings", 0, "amount"), "NaN", "not a finite decimal"),
        (("postings", 0, "amount"), " -10.00000000", "not a finite decimal"),
        (("postings", 0, "amount"), "1_000", "not a finite decimal"),
        (("postings", 1, "qty"), 0.5, "floats are not exact"),
        (("postings", 1, "price"), "1", r"unknown keys \['price'\]"),
        (("postings", 1, "account"), None, "account must be a non-empty str"),
        (("postings", 1, "symbol"), "", "symbol must be a non-empty str"),
        (("extra",), {"when": datetime(2025, 1, 1)}, r"extra\.when: datetime"),
    ],
)
def test_append_ledger_refuses_bad_transactions(
    store: Store, path: tuple[Any, ...], value: Any, message: str
) -> None:
    run_id = store.create_run(make_run())
    with pytest.raises(InvalidDocument, match=message):
        store.append_ledger(run_id, [make_txn(5), _txn_with(path, value)])
    assert store.get_ledger(run_id) == []


decimal_strings = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15, places=8
).map(str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(decimal_strings, min_size=1, max_size=5), style=st.sampled_from(["str", "e"]))
def test_ledger_amounts_round_trip_exactly(store: Store, amounts: list[str], style: str) -> None:
    balance = -sum((Decimal(a) for a in amounts), Decimal(0))
    closing = str(balance) if style == "str" else f"{balance:E}"
    postings = [{"account": f"acct:{i}", "amount": a} for i, a in enumerate(amounts)]
    postings.append({"account": "parent:cash", "amount": closing})
    run_id = store.create_run(make_run())
    txn = {"txn_id": "t", "seq": 0, "bar": 0, "time": T0.isoformat(), "kind": "k", "postings": postings}
    store.append_ledger(run_id, [txn])
    (got,) = store.get_ledger(run_id)
    assert [p["amount"] for p in got["postings"]] == [*amounts, closing]
    assert sum(Decimal(p["amount"]) for p in got["postings"]) == 0


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


# -- hall of fame -------------------------------------------------------------------


def test_hall_of_fame_latest_version_wins(open_same: Opener) -> None:
    store = open_same()
    assert store.latest_hall_of_fame() is None
    v1 = [{"family": "sma_cross", "params": {"fast": 5}, "fitness": 1.2}]
    v2 = [{"family": "rsi_revert", "params": {"period": 14}, "fitness": 2.0}, v1[0]]
    store.save_hall_of_fame(v1, source="run:day1")
    assert store.latest_hall_of_fame() == v1
    store.save_hall_of_fame(v2, source="run:day2")
    assert store.latest_hall_of_fame() == v2
    v2[0]["fitness"] = 0  # the store keeps its own copy
    store.close()
    assert open_same().latest_hall_of_fame()[0]["fitness"] == 2.0


def test_hall_of_fame_refuses_bad_input(store: Store) -> None:
    with pytest.raises(InvalidDocument, match="entries must be a list"):
        store.save_hall_of_fame({"family": "x"}, source="s")  # type: ignore[arg-type]
    with pytest.raises(InvalidDocument, match=r"entries\[1\] must be a dict"):
        store.save_hall_of_fame([{"family": "x"}, "y"], source="s")
    with pytest.raises(InvalidDocument, match="source must be a non-empty str"):
        store.save_hall_of_fame([{"family": "x"}], source="")
    assert store.latest_hall_of_fame() is None


# -- audit events -------------------------------------------------------------------


def test_audit_events_newest_first(store: Store) -> None:
    for minutes, kind in [(2, "approve"), (0, "launch"), (5, "rollback"), (1, "promote")]:
        store.record_audit(
            {
                "kind": kind,
                "actor": "alice",
                "at": (T0 + timedelta(minutes=minutes)).isoformat(),
                "details": {"run_id": "r1", "minutes": minutes},
            }
        )
    events = store.list_audit()
    assert [e["kind"] for e in events] == ["rollback", "approve", "promote", "launch"]
    assert events[0] == {
        "kind": "rollback",
        "actor": "alice",
        "at": "2025-03-01T09:35:00.000000+00:00",
        "details": {"run_id": "r1", "minutes": 5},
    }
    assert [e["kind"] for e in store.list_audit(limit=2)] == ["rollback", "approve"]


def test_audit_event_defaults(store: Store) -> None:
    store.record_audit({"kind": "login", "actor": "bob", "ip": "10.0.0.1"})
    (event,) = store.list_audit()
    assert event["details"] == {} and event["ip"] == "10.0.0.1"
    moment = datetime.fromisoformat(event["at"])
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"actor": "a"}, "kind must be a non-empty str"),
        ({"kind": "k"}, "actor must be a non-empty str"),
        ({"kind": "k", "actor": "a", "details": "text"}, "details must be a dict"),
        ({"kind": "k", "actor": "a", "at": "2025-01-01T00:00:00"}, "no UTC offset"),
        ({"kind": "k", "actor": "a", "details": {"s": {1, 2}}}, r"details\.s: set"),
        ("launch", "audit event must be a dict"),
    ],
)
def test_audit_refuses_bad_events(store: Store, event: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.record_audit(event)
    assert store.list_audit() == []
    with pytest.raises(InvalidDocument, match="limit"):
        store.list_audit(limit=0)


# -- lifetime ----------------------------------------------------------------------


def test_context_manager_closes(open_same: Opener) -> None:
    with open_same() as store:
        run_id = store.create_run(make_run())
    with pytest.raises(StoreError, match="closed"):
        store.get_run(run_id)
    store.close()  # idempotent
    with open_same() as again:
        assert again.get_run(run_id)["run_id"] == run_id


def test_two_store_objects_share_one_database(open_same: Opener) -> None:
    writer, reader = open_same(), open_same()
    run_id = writer.create_run(make_run())
    writer.append_ledger(run_id, [make_txn(0)])
    assert reader.get_run(run_id)["status"] == "running"
    assert reader.append_ledger(run_id, [make_txn(0), make_txn(1)]) == 1
    assert len(writer.get_ledger(run_id)) == 2


def test_one_store_is_usable_from_several_threads(store: Store) -> None:
    run_id = store.create_run(make_run())
    errors: list[BaseException] = []
    counts: list[int] = []

    def work(worker: int) -> None:
        try:
            for k in range(10):
                # Every worker sends overlapping batches: each txn is new exactly once.
                batch = [make_txn(n) for n in range(k * 3, k * 3 + 6)]
                counts.append(store.append_ledger(run_id, batch))
                store.record_audit({"kind": "tick", "actor": f"w{worker}"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 33
    assert [t["seq"] for t in store.get_ledger(run_id)] == list(range(33))
    assert len(store.list_audit(limit=100)) == 40


# -- open_store and settings -------------------------------------------------------


def test_open_store_relative_url_creates_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///nested/dir/runs.db") as store:
        assert isinstance(store, SQLiteStore)
        store.create_run(make_run(run_id="rel"))
    assert (tmp_path / "nested" / "dir" / "runs.db").is_file()
    with open_store("sqlite:///./nested/dir/runs.db") as store:
        assert store.get_run("rel")["run_id"] == "rel"


def test_open_store_absolute_url(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "deeper" / "x.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    with open_store(url) as store:
        store.create_run(make_run(run_id="abs"))
    assert target.is_file()
    with SQLiteStore(target) as store:
        assert store.get_run("abs")["run_id"] == "abs"


def test_open_store_memory_databases_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///:memory:") as one, open_store("SQLITE:///:memory:") as two:
        one.create_run(make_run(run_id="mem"))
        assert one.get_run("mem")["status"] == "running"
        with pytest.raises(RunNotFound):
            two.get_run("mem")
    assert list(tmp_path.iterdir()) == []


def test_open_store_none_reads_cohortlab_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env" / "store.db"
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{target}")
    with open_store(None) as store:
        store.create_run(make_run(run_id="env"))
    assert target.is_file()
    with open_store() as store:
        assert store.get_run("env")["run_id"] == "env"


def test_open_store_default_is_cohortlab_db_in_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHORTLAB_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        store.create_run(make_run())
    assert (tmp_path / "cohortlab.db").is_file()


@pytest.mark.parametrize("url", ["mongodb://localhost:27017/cohortlab", "mongodb+srv://u:hunter2@c.example/db"])
def test_open_store_mongodb_is_not_in_this_version(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert "MongoDB adapter is not part of this version" in message
    assert "sqlite:///./cohortlab.db" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:s3cret@db/x", r"'postgresql://user:\*\*\*@db/x' has an unsupported scheme"),
        ("redis://localhost:6379/0", "'redis://localhost:6379/0' has an unsupported scheme"),
        ("cohortlab.db", "'cohortlab.db' has an unsupported scheme"),
        ("sqlite:cohortlab.db", "unsupported scheme"),
        ("", "unsupported scheme"),
        ("sqlite://host/x.db", "names a host"),
        ("sqlite:///", "has no database path"),
        ("sqlite:///x.db?mode=ro", "query string"),
    ],
)
def test_open_store_refuses_other_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_open_store_refuses_non_string() -> None:
    with pytest.raises(StoreError, match="must be a str"):
        open_store(Path("x.db"))  # type: ignore[arg-type]


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORE", "REDIS_URL", "BROKER_URL", "DATA_DIR"):
        monkeypatch.delenv(f"COHORTLAB_{name}", raising=False)
    defaults = get_settings()
    assert defaults.store == "sqlite:///./cohortlab.db"
    assert defaults.redis_url is None and defaults.broker_url is None and defaults.data_dir is None

    monkeypatch.setenv("COHORTLAB_STORE", "sqlite:////srv/runs.db")
    monkeypatch.setenv("COHORTLAB_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("COHORTLAB_BROKER_URL", "")
    monkeypatch.setenv("COHORTLAB_DATA_DIR", "/data/bars")
    current = get_settings()  # a fresh read, not a cached object
    assert current.store == "sqlite:////srv/runs.db"
    assert current.redis_url == "redis://cache:6379/0"
    assert current.broker_url is None
    assert current.data_dir == "/data/bars"

    monkeypatch.setenv("COHORTLAB_STORE", "  ")
    with pytest.raises(ValidationError, match="COHORTLAB_STORE is empty"):
        Settings()


# -- SQLite adapter specifics --------------------------------------------------------


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def test_sqlite_schema_pragmas_and_idempotent_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # type: ignore[union-attr]
        run_id = store.create_run(make_run())
    with SQLiteStore(path) as store:  # schema creation runs again, harmlessly
        assert store.get_run(run_id)["status"] == "running"
    conn = _raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "sim_runs_intraday",
        "cohort_summaries",
        "agent_results",
        "trades",
        "ledger",
        "equity_curves",
        "genomes",
        "audit_events",
    } <= tables
    conn.close()


def test_sqlite_listing_uses_an_index_for_order(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = _raw(path)
    for where, params in [
        ("", ()),
        ("WHERE (created_at, run_id) < (?, ?)", ("x", "y")),
        ("WHERE status = ? AND (created_at, run_id) < (?, ?)", ("running", "x", "y")),
        ("WHERE kind = ?", ("cohort",)),
    ]:
        plan = " | ".join(
            r["detail"]
            for r in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT run_id FROM sim_runs_intraday {where} "
                "ORDER BY created_at DESC, run_id DESC LIMIT 20",
                params,
            )
        )
        assert "INDEX sim_runs_intraday_by_" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    conn.close()


def test_sqlite_keeps_every_hall_of_fame_version_and_exact_amount_text(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.save_hall_of_fame([{"g": 1}], source="a")
        store.save_hall_of_fame([{"g": 2}], source="b")
        run_id = store.create_run(make_run())
        store.append_ledger(run_id, [make_txn(0, amount="0.10000000")])
    conn = _raw(path)
    rows = conn.execute("SELECT source, saved_at FROM genomes ORDER BY version").fetchall()
    assert [r["source"] for r in rows] == ["a", "b"]
    assert all(datetime.fromisoformat(r["saved_at"]).tzinfo is not None for r in rows)
    (doc,) = conn.execute("SELECT doc FROM ledger").fetchone()
    assert '"amount":"0.10000000"' in doc and '"amount":"-0.10000000"' in doc
    conn.close()


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite, just some text that is long enough " * 20)
    with pytest.raises(StoreError, match="notes.db"):
        SQLiteStore(path)
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteStore(tmp_path / "missing-folder" / "x.db")


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version 2"):
        SQLiteStore(path)
