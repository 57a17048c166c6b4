"""Contract tests of the storage port (manager.store.base.Store).

Every test taking the ``store`` or ``open_same`` fixture runs against every adapter
in ``ADAPTERS``. To add an adapter, add one entry there: a function of the pytest
``request`` and ``tmp_path`` returning a zero-argument opener that opens a store on
one fresh, private database (each call opens that same database again).

The ``mongo`` adapter runs against an nx-27017 server (a MongoDB wire-protocol
server on SQLite) started once per session on a free local port with its own
data folder, or against the real server named by ``COHORTLAB_TEST_MONGODB_URL``;
every test gets a fresh database. Cases that fail only because of an nx-27017
gap are marked ``xfail(strict=True)`` under nx-27017 (``NX_27017_GAPS``).

The last sections test ``open_store`` URL parsing, the settings, and facts
particular to the SQLite and MongoDB adapters.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
    NotFound,
    RunNotFound,
    RunStateError,
    SQLiteStore,
    Store,
    StoreError,
    StudyMismatch,
    new_run_id,
    open_store,
)
from manager.store.sqlite import SCHEMA_VERSION

Opener = Callable[[], Store]


def _sqlite_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    path = tmp_path / "contract-sqlite" / "store.db"
    path.parent.mkdir()
    return lambda: SQLiteStore(path)


# -- the MongoDB server of the session ---------------------------------------------------


@dataclass
class MongoServer:
    """A MongoDB server for the tests: ``url`` without a database; ``nx`` = nx-27017."""

    url: str
    nx: bool

    def drop(self, database: str) -> None:
        from pymongo import MongoClient

        with MongoClient(self.url, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_nx_27017(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start nx-27017 on a free localhost port with its own data folder."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    for attempt in range(3):  # the free port may be taken before the server binds it
        port = _free_port()
        out = (folder / f"server-{attempt}.out").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(folder / "data"), "--pid-file", str(folder / f"nx-{attempt}.pid"),
             "--log-file", str(folder / f"nx-{attempt}.log")],
            stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        url = f"mongodb://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with MongoClient(url, serverSelectionTimeoutMS=250) as client:
                    client.admin.command("ping")
                return proc, url
            except PyMongoError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (folder / f"server-{attempt}.out").read_text(errors="replace")[-2000:]
    pytest.fail(f"nx-27017 did not start; its output:\n{log}")


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory):
    """The real server of ``COHORTLAB_TEST_MONGODB_URL``, else an nx-27017 subprocess."""
    url = os.environ.get("COHORTLAB_TEST_MONGODB_URL", "").strip()
    if url:
        yield MongoServer(url=url, nx=False)
        return
    try:
        import nx_27017  # noqa: F401
    except ImportError:
        pytest.skip("nx-27017 is not installed (pip install -e '.[test]'), "
                    "and COHORTLAB_TEST_MONGODB_URL is not set")
    proc, url = _start_nx_27017(tmp_path_factory.mktemp("nx-27017"))
    try:
        yield MongoServer(url=url, nx=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fresh_database() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


def _mongo_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    from manager.store.mongo import MongoStore

    server: MongoServer = request.getfixturevalue("mongo_server")
    database = fresh_database()
    request.addfinalizer(lambda: server.drop(database))
    gap = NX_27017_GAPS.get(request.node.name) or NX_27017_GAPS.get(request.node.originalname)
    if server.nx and gap:
        request.applymarker(pytest.mark.xfail(reason=f"nx-27017 gap: {gap}", strict=True))
    return lambda: MongoStore(server.url, database=database)


# Contract cases that fail on nx-27017 only because of a gap of nx-27017 (the
# adapter is right for MongoDB): test name (with parameters, or without for all
# of them) -> the gap. Each is listed in the README's MongoDB section.
NX_27017_GAPS: dict[str, str] = {}


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], Opener]] = {
    "sqlite": _sqlite_adapter,
    "mongo": _mongo_adapter,
}


@pytest.fixture(params=sorted(ADAPTERS))
def open_same(request: pytest.FixtureRequest, tmp_path: Path):
    """Opener of stores on one fresh database of the parametrised adapter."""
    opener = ADAPTERS[request.param](request, tmp_path)
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


# -- cohort summary listing (offset pages, filters, total) ----------------------------------


def cohort_request(start: str | None = None, bankroll: float | None = 1000.0,
                   quote: str | None = None, agents: int = 3) -> dict[str, Any]:
    """A run config as the runner records it: ``{"request": asdict(CohortRequest)}``."""
    return {"request": {"bankroll": bankroll, "agents": agents, "seed": 7,
                        "bars": {"data": None, "symbols": None, "start": start, "end": None,
                                 "warmup_bars": 200, "quote": quote, "seed": 0}},
            "seeded_from": "random"}


def cohort_summary(start: str, *, bankroll: float = 1000.0, quote: str = "BTC", agents: int = 3,
                   roi: float = 0.0125, breaches: int = 2, failed: int = 1) -> dict[str, Any]:
    """A summary shaped like ``manager.report.cohort_report``."""
    return {
        "run_id": "x", "seed": 7, "bankroll": bankroll, "allocation": "equal",
        "window": {"start": start, "end": "later", "timeframe": "5m", "bars": 288,
                   "symbols": ["ETH_BTC", "LTC_BTC"]},
        "parent": {"final_equity": bankroll * (1 + roi), "roi": roi, "max_drawdown": 0.031,
                   "peak_gross_exposure": 0.9, "peak_utilisation": 0.75, "unallocated_cash": 0.0,
                   "breaches": breaches, "sharpe": 1.4, "mean_gross_exposure": 0.5,
                   "liquidations": 0, "fees": 1.5, "failed_agents": failed},
        "agents": [{"agent_id": f"a{i}", "family": "sma_cross", "roi": roi, "rank": i + 1}
                   for i in range(agents)],
        "hourly": [{"hour": 0, "pnl": 1.0, "gross_exposure": 0.5}],
        "ledger": {"transactions": 0, "balanced": True},
        "failed_agents": [{"agent_id": f"f{i}", "family": "sma_cross", "error": "boom"}
                          for i in range(failed)],
        "data": "binance-5m", "quote": quote, "settings": {"fee_bps": 10},
    }


def cohort_at(store: Store, when: datetime, run_id: str, **overrides: Any) -> str:
    return store.create_run(make_run(created_at=when.isoformat(), run_id=run_id, **overrides))


def complete_cohort(store: Store, run_id: str, summary: dict[str, Any]) -> None:
    agents = [{"agent_id": a["agent_id"], "rank": a["rank"]} for a in summary.get("agents", [])]
    store.complete_run(run_id, summary=summary, agents=agents, trades=[], ledger=[],
                       curves={"parent_equity": np.array([1.0, 1.01])}, timings={"simulate_s": 0.1})


def listed(store: Store, **kwargs: Any) -> list[str]:
    return [row["run_id"] for row in store.list_cohort_summaries(**kwargs)["items"]]


def test_cohort_summaries_list_every_status_with_known_fields(open_same: Opener) -> None:
    store = open_same()
    T = T0
    cohort_at(store, T + timedelta(minutes=1), "done",
              config=cohort_request("2025-03-01", 1000.0), genomes=[{"g": i} for i in range(3)])
    complete_cohort(store, "done", cohort_summary("2025-03-01T00:00:00Z", quote="BTC", agents=3))
    cohort_at(store, T + timedelta(minutes=2), "running",
              config=cohort_request("2025-03-02T06:00", 500, quote="USD"))
    # A completion that is refused changes nothing of the listing either.
    with pytest.raises(InvalidDocument):
        store.complete_run("running", summary=cohort_summary("2025-03-02T06:00:00Z"),
                           agents=[{"agent_id": "a"}, {"agent_id": "a"}], trades=[], ledger=[],
                           curves={}, timings={})
    cohort_at(store, T + timedelta(minutes=3), "window", window_start="2025-03-03T23:30:00-02:00")
    cohort_at(store, T + timedelta(minutes=4), "nothing", config={})
    cohort_at(store, T + timedelta(minutes=5), "failed", config=cohort_request("2025-03-01", 1000))
    store.fail_run("failed", "engine exploded", {"failed_after_s": 1.0})
    cohort_at(store, T + timedelta(minutes=6), "backtest", kind="backtest")

    page = store.list_cohort_summaries()
    assert page["total"] == 5
    rows = {row["run_id"]: row for row in page["items"]}
    assert [row["run_id"] for row in page["items"]] == ["failed", "nothing", "window", "running", "done"]
    assert all(list(row) == [
        "run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote",
        "agents", "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation",
        "breaches", "failed_agents"] for row in page["items"])
    done = dict(rows["done"])
    assert isinstance(done.pop("finished_at"), str)
    assert done == {
        "run_id": "done", "created_at": (T + timedelta(minutes=1)).isoformat(timespec="microseconds"),
        "status": "completed", "reason": None, "date": "2025-03-01", "bankroll": 1000.0,
        "quote": "BTC", "agents": 3, "data_label": "binance:1m:2025-03-01",
        "roi": 0.0125, "final_equity": 1012.5, "max_drawdown": 0.031, "peak_utilisation": 0.75,
        "breaches": 2, "failed_agents": 1,
    }
    metrics = ("roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents")
    running = rows["running"]
    assert running["status"] == "running" and running["finished_at"] is None
    assert (running["date"], running["bankroll"], running["quote"], running["agents"]) == (
        "2025-03-02", 500.0, "USD", 2)  # agents: the genomes it was created with
    assert all(running[k] is None for k in metrics)
    window = rows["window"]  # the recorded start, in UTC
    assert (window["date"], window["bankroll"], window["quote"]) == ("2025-03-04", None, None)
    assert all(window[k] is None for k in metrics)
    assert rows["nothing"]["date"] is None and rows["nothing"]["agents"] == 2
    failed = rows["failed"]
    assert failed["status"] == "failed" and failed["reason"] == "engine exploded"
    assert isinstance(failed["finished_at"], str)
    assert (failed["date"], failed["bankroll"]) == ("2025-03-01", 1000.0)
    assert all(failed[k] is None for k in metrics)
    # Stored, not computed per call: another store object on the database sees the same.
    assert open_same().list_cohort_summaries() == page


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
                  config=cohort_request(requested, bankroll))
        if start is not None:
            complete_cohort(store, run_id, cohort_summary(start, bankroll=bankroll))
    store.fail_run("e", "boom")
    cohort_at(store, T0 + timedelta(minutes=7), "bt", kind="backtest",
              config=cohort_request("2025-03-01", 1000.0))

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
        cohort_at(store, when, run_id, config=cohort_request("2025-03-01"))
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

    spec = importlib.util.spec_from_file_location(
        "bench_fill", Path(__file__).resolve().parents[1] / "scripts" / "bench_fill.py")
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
        cohort_at(store, when, run_id, config=cohort_request(day, bankroll))
        status = "running"
        if i % 10 == 0:
            complete_cohort(store, run_id, cohort_summary(f"{day}T00:00:00Z", bankroll=bankroll,
                                                          roi=i / 10_000))
            status = "completed"
        elif i % 15 == 1:
            store.fail_run(run_id, "boom")
            status = "failed"
        if i % 40 == 0:
            cohort_at(store, when, f"b{i:04d}", kind="backtest", config=cohort_request(day, bankroll))
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
        assert (row["agents"], row["quote"]) == ((3, "BTC") if fact["status"] == "completed" else (2, None))
    for filters in [{"date": "2025-03-04"}, {"bankroll": 250.5}, {"date": "2025-03-07", "bankroll": 100.0},
                    {"created_after": (T0 + timedelta(seconds=700)).isoformat()},
                    {"date": "2025-03-01", "created_after": (T0 + timedelta(seconds=900)).isoformat()}]:
        assert [r["run_id"] for r in every_page(50, **filters)] == want(**filters), filters
    for offset in (0, 20, 980, 1999, 2000):
        assert listed(store, limit=20, offset=offset) == want()[offset:offset + 20]


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


def test_hall_of_fame_filtered_by_market(open_same: Opener) -> None:
    """Seeding never crosses markets: the latest version *of a market* is found,
    and a version saved without a market (unknown) matches no market filter."""
    store = open_same()
    btc = [{"family": "sma_cross", "params": {"fast": 5}}]
    usd = [{"family": "rsi_reversion", "params": {"period": 9}}]
    store.save_hall_of_fame([{"family": "legacy"}], source="old")
    assert store.latest_hall_of_fame(market="binance-5m|5m|BTC") is None
    store.save_hall_of_fame(btc, source="c1", market="binance-5m|5m|BTC")
    store.save_hall_of_fame(usd, source="c2", market="coinbase-1m|1m|USD")
    assert store.latest_hall_of_fame(market="binance-5m|5m|BTC") == btc
    assert store.latest_hall_of_fame(market="coinbase-1m|1m|USD") == usd
    assert store.latest_hall_of_fame() == usd
    assert store.latest_hall_of_fame(market="SYNTHETIC|5m|USD") is None
    store.close()
    assert open_same().latest_hall_of_fame(market="binance-5m|5m|BTC") == btc
    with pytest.raises(InvalidDocument):
        open_same().latest_hall_of_fame(market="")


def test_latest_population_filtered_by_market_and_mode(store: Store) -> None:
    g = [{"family": "sma_cross", "params": {}}]
    store.save_population("p-btc-daily", g, {"mode": "daily", "market": "binance-5m|5m|BTC"})
    store.save_population("p-usd-daily", g, {"mode": "daily", "market": "coinbase-1m|1m|USD"})
    store.save_population("p-btc-intra", g, {"mode": "intraday", "market": "binance-5m|5m|BTC"})
    store.save_population("p-none", g, {"mode": "daily"})
    assert store.latest_population(market="binance-5m|5m|BTC")["cycle_id"] == "p-btc-intra"
    assert store.latest_population("daily", market="binance-5m|5m|BTC")["cycle_id"] == "p-btc-daily"
    assert store.latest_population("daily", market="coinbase-1m|1m|USD")["cycle_id"] == "p-usd-daily"
    assert store.latest_population("intraday", market="coinbase-1m|1m|USD") is None
    assert store.latest_population("daily")["cycle_id"] == "p-none"
    with pytest.raises(InvalidDocument):
        store.save_population("p-bad", g, {"mode": "daily", "market": 5})


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


# -- learning: populations -------------------------------------------------------------


def make_genomes(n: int = 3, tag: str = "g") -> list[dict[str, Any]]:
    return [
        {"id": f"{tag}{i}", "family": "sma_cross", "params": {"fast": 3 + i, "slow": 20}, "leverage": 1.5}
        for i in range(n)
    ]


def test_population_round_trip(open_same: Opener) -> None:
    store = open_same()
    genomes = make_genomes(tag="c1-")
    meta = {"mode": "daily", "generation": 4, "seed": np.int64(7), "fitness": (1.5, 0.25)}
    before = datetime.now(timezone.utc)
    assert store.save_population("cycle-1", genomes, meta) is None
    got = store.get_population("cycle-1")
    assert list(got) == ["cycle_id", "saved_at", "genomes", "meta"]
    assert got["cycle_id"] == "cycle-1"
    assert got["genomes"] == genomes
    assert got["meta"] == {"mode": "daily", "generation": 4, "seed": 7, "fitness": [1.5, 0.25]}
    saved = datetime.fromisoformat(got["saved_at"])
    assert saved.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= saved <= datetime.now(timezone.utc)
    genomes[0]["leverage"] = 9.0  # the store keeps its own copy
    got["genomes"][1]["leverage"] = 8.0
    store.close()
    again = open_same()
    assert again.get_population("cycle-1")["genomes"] == make_genomes(tag="c1-")
    assert again.latest_population() == again.get_population("cycle-1")


def test_latest_population_is_the_last_saved_optionally_by_mode(store: Store) -> None:
    assert store.latest_population() is None
    assert store.latest_population(mode="daily") is None
    # Cycle ids deliberately not in save order: "latest" means last saved.
    saves = [("c-9", "daily"), ("c-1", "intraday"), ("c-5", "daily"), ("c-3", None), ("c-2", "intraday")]
    for cycle_id, mode in saves:
        meta = {"generation": 1} if mode is None else {"mode": mode, "generation": 1}
        store.save_population(cycle_id, make_genomes(1, tag=cycle_id), meta)
    assert store.latest_population()["cycle_id"] == "c-2"
    assert store.latest_population(mode="daily")["cycle_id"] == "c-5"
    assert store.latest_population(mode="intraday")["cycle_id"] == "c-2"
    assert store.latest_population(mode="weekly") is None
    assert store.latest_population(mode="daily")["meta"] == {"mode": "daily", "generation": 1}
    store.save_population("c-0", make_genomes(1), {"mode": None})
    assert store.latest_population()["cycle_id"] == "c-0"
    assert store.latest_population(mode="daily")["cycle_id"] == "c-5"


def test_latest_population_follows_save_order_in_quick_succession(open_same: Opener) -> None:
    one, two = open_same(), open_same()
    for i in range(30):  # saves may share a timestamp; save order still decides
        (one if i % 2 else two).save_population(f"q{i:02d}", make_genomes(1), {"mode": "intraday"})
        assert one.latest_population()["cycle_id"] == f"q{i:02d}"
        assert two.latest_population(mode="intraday")["cycle_id"] == f"q{i:02d}"


def test_duplicate_population_is_refused_and_original_kept(store: Store) -> None:
    store.save_population("cycle-1", make_genomes(2), {"mode": "daily"})
    with pytest.raises(StoreError, match="'cycle-1' already exists"):
        store.save_population("cycle-1", make_genomes(5), {"mode": "intraday"})
    got = store.get_population("cycle-1")
    assert len(got["genomes"]) == 2 and got["meta"] == {"mode": "daily"}
    assert store.latest_population(mode="intraday") is None


def test_unknown_population_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="no population with cycle_id 'missing'"):
        store.get_population("missing")
    with pytest.raises(InvalidDocument, match="not valid"):
        store.get_population("no spaces")


@pytest.mark.parametrize(
    ("cycle_id", "genomes", "meta", "message"),
    [
        ("bad id", [{"g": 1}], {}, "population cycle_id 'bad id' is not valid"),
        (None, [{"g": 1}], {}, "population cycle_id None is not valid"),
        ("c", {"g": 1}, {}, "population genomes must be a list"),
        ("c", [], {}, "has no genomes"),
        ("c", [{"g": 1}, "sma"], {}, r"population genomes\[1\] must be a dict"),
        ("c", [{"g": Decimal("1.5")}], {}, r"population\.genomes\[0\]\.g: Decimal"),
        ("c", [{"g": float("inf")}], {}, "use None"),
        ("c", [{"g": 1}], ["daily"], "population meta must be a dict"),
        ("c", [{"g": 1}], {"mode": 3}, "population meta mode must be a non-empty str"),
        ("c", [{"g": 1}], {"mode": ""}, "population meta mode must be a non-empty str"),
        ("c", [{"g": 1}], {"at": datetime(2025, 1, 1)}, r"population\.meta\.at: datetime"),
        ("c", [{"g": 1}], {2: "x"}, "not a str"),
    ],
)
def test_save_population_refuses_bad_input(
    store: Store, cycle_id: Any, genomes: Any, meta: Any, message: str
) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_population(cycle_id, genomes, meta)
    assert store.latest_population() is None


@pytest.mark.parametrize("mode", ["", 3, ["daily"]])
def test_latest_population_refuses_bad_mode(store: Store, mode: Any) -> None:
    with pytest.raises(InvalidDocument, match="mode must be a non-empty str"):
        store.latest_population(mode=mode)


# -- learning: knowledge base -------------------------------------------------------------


def make_knowledge(cycle_id: str, mode: str = "daily", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "cycle_id": cycle_id,
        "mode": mode,
        "tried": {"families": ["sma_cross", "rsi_revert"], "population": 30, "generations": 12},
        "winner": {"family": "sma_cross", "params": {"fast": 5, "slow": 20}},
        "in_sample": {"sharpe": 1.8, "roi": 0.021},
        "out_of_sample": {"sharpe": 0.9, "roi": 0.008, "psr": 0.71},
    }
    record.update(extra)
    return record


def knowledge_at(store: Store, cycle_id: str, when: datetime, mode: str = "daily") -> str:
    return store.save_knowledge(make_knowledge(cycle_id, mode, created_at=when.isoformat()))


def test_knowledge_round_trip_and_defaults(open_same: Opener) -> None:
    store = open_same()
    record = make_knowledge("k1", notes=("walk-forward", 3), windows=np.int32(4))
    before = datetime.now(timezone.utc)
    assert store.save_knowledge(record) == "k1"
    got = store.get_knowledge("k1")
    assert list(got)[:3] == ["cycle_id", "mode", "created_at"]
    created = datetime.fromisoformat(got["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    want = {**record, "created_at": got["created_at"], "notes": ["walk-forward", 3], "windows": 4}
    assert got == want
    record["winner"]["params"]["fast"] = 99  # the store keeps its own copy
    store.close()
    assert open_same().get_knowledge("k1")["winner"]["params"]["fast"] == 5


def test_knowledge_created_at_is_normalised(store: Store) -> None:
    store.save_knowledge(make_knowledge("k2", created_at="2025-03-01T11:30:00+02:00"))
    assert store.get_knowledge("k2")["created_at"] == "2025-03-01T09:30:00.000000+00:00"
    store.save_knowledge(make_knowledge("k3", created_at=T0))
    assert store.get_knowledge("k3")["created_at"] == "2025-03-01T09:30:00.000000+00:00"


def _knowledge_order(store: Store, **filters: Any) -> list[str]:
    return [r["cycle_id"] for r in store.list_knowledge(limit=1000, **filters)]


def _knowledge_pages(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    before = None
    while True:
        page = [r["cycle_id"] for r in store.list_knowledge(limit=limit, before=before, **filters)]
        if not page:
            return pages
        assert len(page) <= limit
        pages.append(page)
        before = page[-1]
        assert len(pages) < 100, "pagination does not terminate"


def test_list_knowledge_newest_first_with_pagination_and_ties(store: Store) -> None:
    assert store.list_knowledge() == []
    expected: list[tuple[str, str]] = []
    for i in range(17):
        when = T0 + timedelta(hours=i // 3)  # groups of three share created_at
        cycle_id = f"cy{(i * 5) % 17:02d}"
        knowledge_at(store, cycle_id, when)
        expected.append((when.isoformat(), cycle_id))
    want = [cycle_id for _, cycle_id in sorted(expected, reverse=True)]
    assert _knowledge_order(store) == want
    assert [r["cycle_id"] for r in store.list_knowledge(limit=4)] == want[:4]
    pages = _knowledge_pages(store, limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 4, 1]
    assert [c for page in pages for c in page] == want
    assert len(store.list_knowledge()) == 17  # default limit 50


def test_list_knowledge_pages_do_not_shift_when_new_records_arrive(store: Store) -> None:
    for i in range(6):
        knowledge_at(store, f"old-{i}", T0 + timedelta(days=i))
    first = [r["cycle_id"] for r in store.list_knowledge(limit=3)]
    assert first == ["old-5", "old-4", "old-3"]
    for i in range(3):
        knowledge_at(store, f"new-{i}", T0 + timedelta(days=30 + i))
    second = [r["cycle_id"] for r in store.list_knowledge(limit=3, before=first[-1])]
    assert second == ["old-2", "old-1", "old-0"]
    assert store.list_knowledge(limit=3, before="old-0") == []


def test_list_knowledge_by_mode_with_pagination(store: Store) -> None:
    for i in range(10):
        knowledge_at(store, f"m{i:02d}", T0 + timedelta(days=i), mode="intraday" if i % 3 == 0 else "daily")
    assert _knowledge_order(store, mode="intraday") == ["m09", "m06", "m03", "m00"]
    daily = _knowledge_order(store, mode="daily")
    assert daily == ["m08", "m07", "m05", "m04", "m02", "m01"]
    assert [c for page in _knowledge_pages(store, limit=4, mode="daily") for c in page] == daily
    assert all(r["mode"] == "daily" for r in store.list_knowledge(mode="daily"))
    # The cursor need not match the filter: it is a position in the listing order.
    assert _knowledge_order(store, before="m06", mode="daily") == ["m05", "m04", "m02", "m01"]
    assert store.list_knowledge(mode="weekly") == []


def test_duplicate_knowledge_is_refused_and_original_kept(store: Store) -> None:
    store.save_knowledge(make_knowledge("k1", in_sample={"sharpe": 1.0}))
    with pytest.raises(StoreError, match="'k1' already exists"):
        store.save_knowledge(make_knowledge("k1", mode="intraday", in_sample={"sharpe": 2.0}))
    got = store.get_knowledge("k1")
    assert got["mode"] == "daily" and got["in_sample"] == {"sharpe": 1.0}
    assert len(store.list_knowledge()) == 1


def test_unknown_knowledge_raises_not_found(store: Store) -> None:
    knowledge_at(store, "exists", T0)
    with pytest.raises(NotFound, match="no knowledge record with cycle_id 'missing'"):
        store.get_knowledge("missing")
    with pytest.raises(NotFound, match="before='missing' names no knowledge record"):
        store.list_knowledge(before="missing")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("k1", "knowledge record must be a dict"),
        ({"mode": "daily"}, r"missing \['cycle_id'\]"),
        ({"cycle_id": "k1"}, r"missing \['mode'\]"),
        ({"cycle_id": "k 1", "mode": "daily"}, "knowledge cycle_id 'k 1' is not valid"),
        ({"cycle_id": "k1", "mode": ""}, "knowledge mode must be a non-empty str"),
        ({"cycle_id": "k1", "mode": None}, "knowledge mode must be a non-empty str"),
        ({"cycle_id": "k1", "mode": "daily", "created_at": "2025-03-01"}, "no UTC offset"),
        ({"cycle_id": "k1", "mode": "daily", "created_at": 17}, "must be an ISO 8601 string"),
        ({"cycle_id": "k1", "mode": "daily", "oos": {"sharpe": float("nan")}}, r"knowledge\.oos\.sharpe: float nan"),
        ({"cycle_id": "k1", "mode": "daily", "tried": {"x", "y"}}, r"knowledge\.tried: set"),
        ({"cycle_id": "k1", "mode": "daily", "pnl": Decimal("1.2")}, r"knowledge\.pnl: Decimal"),
        ({"cycle_id": "k1", "mode": "daily", 5: "x"}, "key 5 is not a str"),
    ],
)
def test_save_knowledge_refuses_bad_records(store: Store, record: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_knowledge(record)
    assert store.list_knowledge() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "out of range"),
        ({"limit": 1001}, "out of range"),
        ({"limit": 2.0}, "must be an int"),
        ({"mode": ""}, "mode must be a non-empty str"),
        ({"mode": 1}, "mode must be a non-empty str"),
        ({"before": "bad id"}, "not valid"),
    ],
)
def test_list_knowledge_refuses_bad_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.list_knowledge(**kwargs)


# -- learning: search trials --------------------------------------------------------------


def make_trial(i: int, value: float | None = None, **extra: Any) -> dict[str, Any]:
    trial: dict[str, Any] = {
        "params": {"mutpb": 0.1 + i / 100, "cxpb": 0.5, "pop": 20 + i, "family": "sma_cross"},
        "value": -0.5 * i if value is None else value,
    }
    trial.update(extra)
    return trial


def test_trials_round_trip_in_index_order(store: Store) -> None:
    assert store.list_trials("wf:daily") == []
    before = datetime.now(timezone.utc)
    assert store.save_trial("wf:daily", make_trial(0, value=1.25, seconds=3.5)) == 0
    assert store.save_trial("wf:daily", make_trial(1, value=np.float32(0.5))) == 1
    assert store.save_trial("wf:daily", make_trial(2, value=np.int64(2))) == 2
    trials = store.list_trials("wf:daily")
    assert [t["index"] for t in trials] == [0, 1, 2]
    assert list(trials[0]) == ["index", "params", "value", "seconds", "saved_at"]
    assert trials[0]["params"] == make_trial(0)["params"]
    assert trials[0]["seconds"] == 3.5
    assert [t["value"] for t in trials] == [1.25, 0.5, 2.0]
    assert all(type(t["value"]) is float for t in trials)
    stamps = [datetime.fromisoformat(t["saved_at"]) for t in trials]
    assert all(s.utcoffset() == timedelta(0) for s in stamps)
    assert stamps == sorted(stamps) and stamps[0] >= before - timedelta(seconds=1)


def test_studies_number_their_trials_independently(store: Store) -> None:
    assert [store.save_trial("a", make_trial(i)) for i in range(3)] == [0, 1, 2]
    assert [store.save_trial("b", make_trial(i)) for i in range(2)] == [0, 1]
    assert store.save_trial("a", make_trial(3)) == 3
    assert [t["params"]["pop"] for t in store.list_trials("a")] == [20, 21, 22, 23]
    assert [t["params"]["pop"] for t in store.list_trials("b")] == [20, 21]


def test_trials_resume_across_reopen(open_same: Opener) -> None:
    first = open_same()
    for i in range(3):
        assert first.save_trial("resume", make_trial(i)) == i
    first.close()
    second = open_same()  # a new process resuming the search
    done = second.list_trials("resume")
    assert [t["index"] for t in done] == [0, 1, 2]
    assert [t["params"] for t in done] == [make_trial(i)["params"] for i in range(3)]
    assert second.save_trial("resume", make_trial(3)) == 3
    assert second.save_trial("resume", make_trial(4)) == 4
    second.close()
    third = open_same()
    trials = third.list_trials("resume")
    assert [t["index"] for t in trials] == [0, 1, 2, 3, 4]
    assert [t["value"] for t in trials] == [-0.5 * i for i in range(5)]


def test_trials_appended_concurrently_get_consecutive_indexes(open_same: Opener) -> None:
    stores = [open_same(), open_same()]  # two connections to one database
    errors: list[BaseException] = []
    returned: list[tuple[int, int, int]] = []

    def work(worker: int) -> None:
        try:
            for k in range(10):
                index = stores[worker % 2].save_trial("shared", make_trial(k, worker=worker, k=k))
                returned.append((index, worker, k))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(i for i, _, _ in returned) == list(range(40))
    trials = stores[0].list_trials("shared")
    assert [t["index"] for t in trials] == list(range(40))
    # Each index holds the trial that was told it, and each worker's trials keep their order.
    by_index = {t["index"]: (t["worker"], t["k"]) for t in trials}
    assert all(by_index[i] == (w, k) for i, w, k in returned)
    for worker in range(4):
        assert [t["k"] for t in trials if t["worker"] == worker] == list(range(10))


def test_list_studies_summarises_each_study(store: Store) -> None:
    assert store.list_studies() == []
    for value in (0.4, -1.5, 2.0):
        store.save_trial("alpha", make_trial(0, value=value))
    store.save_trial("beta", make_trial(0, value=3))
    store.save_study_meta("gamma", {"space": {"fast": [2, 10]}})
    studies = store.list_studies()
    assert [s["study"] for s in studies] == ["gamma", "beta", "alpha"]  # most recently updated first
    by_name = {s["study"]: s for s in studies}
    alpha = by_name["alpha"]
    assert list(alpha) == ["study", "trials", "best_value", "updated_at", "meta"]
    assert alpha["trials"] == 3 and alpha["best_value"] == -1.5 and alpha["meta"] is None
    assert alpha["updated_at"] == store.list_trials("alpha")[-1]["saved_at"]
    assert by_name["beta"]["best_value"] == 3.0 and type(by_name["beta"]["best_value"]) is float
    assert by_name["gamma"] == {
        "study": "gamma",
        "trials": 0,
        "best_value": None,
        "updated_at": by_name["gamma"]["updated_at"],
        "meta": {"space": {"fast": [2, 10]}},
    }
    store.save_trial("alpha", make_trial(1, value=-2.0))
    studies = store.list_studies()
    assert studies[0]["study"] == "alpha" and studies[0]["trials"] == 4
    assert studies[0]["best_value"] == -2.0


@pytest.mark.parametrize(
    ("study", "trial", "message"),
    [
        ("bad study", make_trial(0), "study 'bad study' is not valid"),
        ("", make_trial(0), "study '' is not valid"),
        ("s", [0.1, 0.5], "trial must be a dict"),
        ("s", {"value": 1.0}, "trial is missing 'params'"),
        ("s", {"params": [0.1, 0.5], "value": 1.0}, "trial params must be a dict"),
        ("s", {"params": {"a": 1}}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": None}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": "0.5"}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": True}, "trial value must be a finite number"),
        ("s", {"params": {"a": 1}, "value": float("nan")}, "trial value=nan is not a finite number"),
        ("s", {"params": {"a": 1}, "value": float("-inf")}, "trial value=-inf is not a finite number"),
        ("s", {"params": {"a": float("inf")}, "value": 1.0}, r"trial\.params\.a: float inf"),
        ("s", {"params": {"a": {1, 2}}, "value": 1.0}, r"trial\.params\.a: set"),
        ("s", make_trial(0, index=4), r"store-set keys \['index'\]"),
        ("s", make_trial(0, saved_at="2025-01-01T00:00:00Z"), r"store-set keys \['saved_at'\]"),
        ("s", make_trial(0, started=datetime(2025, 1, 1)), r"trial\.started: datetime"),
    ],
)
def test_save_trial_refuses_bad_input(store: Store, study: Any, trial: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_trial(study, trial)
    assert store.list_studies() == []
    # A refused trial uses no index.
    assert store.save_trial("s", make_trial(0)) == 0


def test_list_trials_refuses_a_bad_study_name(store: Store) -> None:
    with pytest.raises(InvalidDocument, match="study 'a b' is not valid"):
        store.list_trials("a b")
    with pytest.raises(InvalidDocument, match="study None is not valid"):
        store.get_study_meta(None)  # type: ignore[arg-type]


SPACE_META = {
    "space": {"mutpb": [0.05, 0.5, "uniform"], "pop": [10, 60]},
    "objective": "neg_oos_sharpe",
    "n_initial_points": 10,
    "seed": 7,
}


def test_study_meta_round_trip_and_resume_check(open_same: Opener) -> None:
    store = open_same()
    assert store.get_study_meta("s1") is None
    store.save_study_meta("s1", SPACE_META)
    assert store.get_study_meta("s1") == SPACE_META
    store.save_study_meta("s1", {**SPACE_META, "seed": 7.0})  # same settings: accepted, unchanged
    store.close()
    store = open_same()
    assert store.get_study_meta("s1") == SPACE_META
    other = {
        **SPACE_META,
        "space": {"mutpb": [0.05, 0.9, "uniform"], "pop": [10, 60], "cxpb": [0.1, 0.9]},
        "seed": True,
    }
    del other["objective"]
    with pytest.raises(StudyMismatch) as info:
        store.save_study_meta("s1", other)
    message = str(info.value)
    assert "study 's1' was started with other settings" in message
    assert "space.mutpb: stored [0.05, 0.5, 'uniform'], given [0.05, 0.9, 'uniform']" in message
    assert "space.cxpb: stored <missing>, given [0.1, 0.9]" in message
    assert "objective: stored 'neg_oos_sharpe', given <missing>" in message
    assert "seed: stored 7, given True" in message
    assert isinstance(info.value, StoreError)
    assert info.value.study == "s1"
    assert [path for path, _, _ in info.value.differences] == [
        "space.mutpb",
        "space.cxpb",
        "objective",
        "seed",
    ]
    assert store.get_study_meta("s1") == SPACE_META  # nothing changed
    store.save_study_meta("s1", other, replace=True)
    assert store.get_study_meta("s1") == other


def test_study_meta_is_independent_of_trials(store: Store) -> None:
    store.save_trial("s2", make_trial(0))
    assert store.get_study_meta("s2") is None
    store.save_study_meta("s2", {"space": {}})
    assert store.save_trial("s2", make_trial(1)) == 1
    (entry,) = store.list_studies()
    assert entry["trials"] == 2 and entry["meta"] == {"space": {}}


@pytest.mark.parametrize(
    ("study", "meta", "message"),
    [
        ("bad study", {}, "study 'bad study' is not valid"),
        ("s", ["mutpb"], "study meta must be a dict"),
        ("s", {"space": {"a": (0, float("nan"))}}, r"study meta\.space\.a\[1\]: float nan"),
        ("s", {"space": range(3)}, r"study meta\.space: range"),
    ],
)
def test_save_study_meta_refuses_bad_input(store: Store, study: Any, meta: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.save_study_meta(study, meta)
    assert store.list_studies() == []


def test_not_found_errors_share_one_base(store: Store) -> None:
    assert issubclass(RunNotFound, NotFound) and issubclass(NotFound, StoreError)
    for call in (lambda: store.get_run("nope"), lambda: store.get_population("nope")):
        with pytest.raises(NotFound, match="nope"):
            call()


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


def _with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{hosts}/{database}" + (f"?{query}" if query else "")


def test_open_store_mongodb_selects_the_mongodb_adapter(mongo_server: MongoServer) -> None:
    from manager.store.mongo import MongoStore

    database = fresh_database()
    try:
        with open_store(_with_database(mongo_server.url, database)) as store:
            assert isinstance(store, MongoStore)
            assert store.database_name == database
            run_id = store.create_run(make_run())
        with open_store("  " + _with_database(mongo_server.url, database) + "  ") as store:
            assert store.get_run(run_id)["status"] == "running"
        # No path: the default database (opened without migrating, so nothing is written).
        with open_store(_with_database(mongo_server.url, ""), migrate=False) as store:
            assert store.database_name == "cohortlab"
    finally:
        mongo_server.drop(database)


def test_open_store_mongodb_unreachable_is_a_store_error_without_the_password() -> None:
    url = f"mongodb://ops:hunter2@127.0.0.1:{_free_port()}/db?serverSelectionTimeoutMS=200"
    with pytest.raises(StoreError, match="cannot reach MongoDB") as info:
        open_store(url)
    assert "hunter2" not in str(info.value)
    assert "ops:***@127.0.0.1" in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://127.0.0.1:1/bad.name", "database name 'bad.name' is not valid"),
        ("mongodb://127.0.0.1:1/" + "x" * 64, "is not valid"),
        ("mongodb://u:hunter2@127.0.0.1:notaport/db", "URL .* is not valid: Port contains non-digit"),
        ("mongodb://u:hunter2@/db", "URL .* is not valid: Empty host"),
    ],
)
def test_open_store_mongodb_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


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
        "populations",
        "knowledge",
        "search_trials",
        "search_studies",
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
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}; .* up to {SCHEMA_VERSION}"):
        SQLiteStore(path)


# The version-1 schema exactly as cohortlab wrote it before the learning tables
# (schema version 2) existed: a frozen copy, so the upgrade test does not drift
# with the adapter's own DDL.
_V1_DDL = """
CREATE TABLE sim_runs_intraday (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('cohort', 'backtest')),
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    created_at TEXT NOT NULL, finished_at TEXT, data_label TEXT NOT NULL,
    reason TEXT, timings TEXT, doc TEXT NOT NULL
);
CREATE INDEX sim_runs_intraday_by_created ON sim_runs_intraday (created_at, run_id);
CREATE INDEX sim_runs_intraday_by_status ON sim_runs_intraday (status, created_at, run_id);
CREATE INDEX sim_runs_intraday_by_kind ON sim_runs_intraday (kind, created_at, run_id);
CREATE TABLE cohort_summaries (
    run_id TEXT PRIMARY KEY REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    summary TEXT NOT NULL
);
CREATE TABLE agent_results (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    rank INTEGER NOT NULL, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, rank), UNIQUE (run_id, agent_id)
);
CREATE TABLE trades (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    position INTEGER NOT NULL, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX trades_by_agent ON trades (run_id, agent_id, position);
CREATE TABLE ledger (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    txn_id TEXT NOT NULL, seq INTEGER NOT NULL, bar INTEGER NOT NULL, time TEXT NOT NULL,
    kind TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, txn_id), UNIQUE (run_id, seq)
);
CREATE TABLE equity_curves (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    name TEXT NOT NULL, position INTEGER NOT NULL, dtype TEXT NOT NULL,
    shape TEXT NOT NULL, npy BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE genomes (
    version INTEGER PRIMARY KEY AUTOINCREMENT, saved_at TEXT NOT NULL,
    source TEXT NOT NULL, entries TEXT NOT NULL
);
CREATE TABLE audit_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    actor TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at, event_id);
PRAGMA user_version = 1;
"""

_LEARNING_TABLES = {"populations", "knowledge", "search_trials", "search_studies"}


def _make_v1_database(path: Path) -> None:
    """A version-1 file holding one run with a ledger entry, a hall of fame and
    an audit event, written with raw SQL in the version-1 layout."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_V1_DDL)
    with conn:
        conn.execute(
            "INSERT INTO sim_runs_intraday (run_id, kind, status, created_at, data_label, doc) "
            "VALUES ('v1-run', 'cohort', 'running', '2025-01-02T03:04:05.000000+00:00', "
            "'binance:1m', ?)",
            ('{"config":{"agents":3},"genomes":[{"family":"sma_cross"}]}',),
        )
        txn = make_txn(0)
        conn.execute(
            "INSERT INTO ledger (run_id, txn_id, seq, bar, time, kind, doc) "
            "VALUES ('v1-run', ?, 0, 0, ?, 'fill', ?)",
            (txn["txn_id"], txn["time"], json.dumps(txn)),
        )
        conn.execute(
            "INSERT INTO genomes (saved_at, source, entries) VALUES "
            "('2025-01-02T00:00:00.000000+00:00', 'run:v1', '[{\"family\":\"sma_cross\"}]')"
        )
        conn.execute(
            "INSERT INTO audit_events (at, kind, actor, doc) VALUES "
            "('2025-01-02T00:00:00.000000+00:00', 'launch', 'alice', ?)",
            ('{"kind":"launch","actor":"alice","at":"2025-01-02T00:00:00.000000+00:00","details":{}}',),
        )
    conn.close()


def _tables(path: Path) -> set[str]:
    conn = _raw(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def _user_version(path: Path) -> int:
    conn = _raw(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_sqlite_upgrades_a_version_1_database_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _make_v1_database(path)
    assert _user_version(path) == 1
    assert not _LEARNING_TABLES & _tables(path)

    with SQLiteStore(path) as store:
        assert SCHEMA_VERSION == 4
        assert _user_version(path) == SCHEMA_VERSION
        assert _LEARNING_TABLES <= _tables(path)
        run = store.get_run("v1-run")
        assert run["status"] == "running" and run["config"] == {"agents": 3}
        assert [t["txn_id"] for t in store.get_ledger("v1-run")] == ["t00000"]
        assert store.latest_hall_of_fame() == [{"family": "sma_cross"}]
        assert [e["kind"] for e in store.list_audit()] == ["launch"]
        # The old data keeps working and the new tables are usable.
        assert store.append_ledger("v1-run", [make_txn(1)]) == 1
        store.save_population("cy1", [{"g": 1}], {"mode": "daily"})
        store.save_knowledge({"cycle_id": "cy1", "mode": "daily"})
        assert store.save_trial("s", {"params": {"x": 1}, "value": 0.5}) == 0
        store.save_study_meta("s", {"space": {"x": [0, 1]}})

    with SQLiteStore(path) as store:  # the upgrade is idempotent
        assert _user_version(path) == SCHEMA_VERSION
        assert store.get_population("cy1")["genomes"] == [{"g": 1}]
        assert store.get_knowledge("cy1")["mode"] == "daily"
        assert store.save_trial("s", {"params": {"x": 2}, "value": 0.25}) == 1
        assert len(store.get_ledger("v1-run")) == 2
        assert store.get_study_meta("s") == {"space": {"x": [0, 1]}}
    conn = _raw(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_sqlite_upgrade_by_two_openers_at_once(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _make_v1_database(path)
    errors: list[BaseException] = []
    stores: list[SQLiteStore] = []
    barrier = threading.Barrier(4)

    def open_it() -> None:
        try:
            barrier.wait()
            stores.append(SQLiteStore(path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert _user_version(path) == SCHEMA_VERSION
        assert stores[0].get_run("v1-run")["data_label"] == "binance:1m"
        assert [s.save_trial("race", {"params": {}, "value": 1.0}) for s in stores] == [0, 1, 2, 3]
    finally:
        for s in stores:
            s.close()


def test_sqlite_learning_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = _raw(path)
    queries = [
        ("SELECT doc FROM knowledge ORDER BY created_at DESC, cycle_id DESC LIMIT 20", ()),
        (
            "SELECT doc FROM knowledge WHERE mode = ? AND (created_at, cycle_id) < (?, ?) "
            "ORDER BY created_at DESC, cycle_id DESC LIMIT 20",
            ("daily", "x", "y"),
        ),
        ("SELECT cycle_id FROM populations WHERE mode = ? ORDER BY seq DESC LIMIT 1", ("daily",)),
        ("SELECT doc FROM search_trials WHERE study = ? ORDER BY idx", ("s",)),
    ]
    for sql, params in queries:
        plan = " | ".join(r["detail"] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN" not in plan or "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    conn.close()


def test_sqlite_cohort_listing_reads_pages_and_totals_from_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = _raw(path)
    filters = {"date": ("date = ?", "2025-03-01"), "bankroll": ("bankroll = ?", 1000.0),
               "created_after": ("created_at > ?", "2025-03-01T00:00:00.000000+00:00")}
    for names in [(), ("date",), ("bankroll",), ("created_after",), ("date", "created_after"),
                  ("bankroll", "created_after")]:
        condition = " AND ".join(["kind = 'cohort'", *(filters[n][0] for n in names)])
        params = tuple(filters[n][1] for n in names)
        for sql in (
            f"SELECT rowid FROM sim_runs_intraday WHERE {condition} "
            "ORDER BY created_at DESC, run_id DESC LIMIT 20 OFFSET 980",
            f"SELECT COUNT(*) FROM sim_runs_intraday WHERE {condition}",
        ):
            plan = " | ".join(r["detail"] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "USING COVERING INDEX sim_runs_intraday_" in plan, (names, plan)
            assert "TEMP B-TREE" not in plan, (names, plan)
    conn.close()


_LISTING_COLUMN_NAMES = ("date", "bankroll", "quote", "agents", "roi", "final_equity", "max_drawdown",
                         "peak_utilisation", "breaches", "failed_agents")


def make_listing_runs(store: Store) -> None:
    """Cohorts in every state (and a backtest) for the listing upgrade tests."""
    cohort_at(store, T0, "done", config=cohort_request("2025-03-01", 1000.0))
    complete_cohort(store, "done", cohort_summary("2025-03-01T00:00:00Z", quote="BTC"))
    cohort_at(store, T0 + timedelta(minutes=1), "done-2", config=cohort_request("2025-03-02", 250.0))
    complete_cohort(store, "done-2", cohort_summary("2025-03-02T21:00:00-05:00", bankroll=250.0,
                                                    quote="USD", roi=-0.5, breaches=0, failed=0))
    cohort_at(store, T0 + timedelta(minutes=2), "running", config=cohort_request("2025-03-04T08:00"))
    cohort_at(store, T0 + timedelta(minutes=3), "failed", window_start="2025-03-05T00:00:00Z")
    store.fail_run("failed", "boom")
    cohort_at(store, T0 + timedelta(minutes=4), "bt", kind="backtest")


def _strip_to_schema_2(path: Path) -> None:
    """Turn a current SQLite file into the version-2 layout: no listing columns or indexes."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP INDEX sim_runs_intraday_cohorts_by_date")
        conn.execute("DROP INDEX sim_runs_intraday_cohorts_by_bankroll")
        for name in _LISTING_COLUMN_NAMES:
            conn.execute(f"ALTER TABLE sim_runs_intraday DROP COLUMN {name}")
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _listing_columns(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT run_id, {', '.join(_LISTING_COLUMN_NAMES)} FROM sim_runs_intraday ORDER BY run_id"
        ).fetchall()
    finally:
        conn.close()


def test_sqlite_upgrade_to_version_3_backfills_the_cohort_listing(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with SQLiteStore(path) as store:
        make_listing_runs(store)
        listing = store.list_cohort_summaries()
    columns = _listing_columns(path)
    assert [c[0] for c in columns] == ["bt", "done", "done-2", "failed", "running"]
    assert columns[0][1:] == (None,) * 10  # a backtest has no listing fields
    _strip_to_schema_2(path)
    assert _user_version(path) == 2

    with SQLiteStore(path) as store:  # upgraded and backfilled on open
        assert _user_version(path) == SCHEMA_VERSION
        assert store.list_cohort_summaries() == listing
        assert store.list_cohort_summaries(date="2025-03-03")["total"] == 1  # done-2, in UTC
    assert _listing_columns(path) == columns  # exactly what the writes had stored
    with SQLiteStore(path) as store:  # idempotent
        assert store.list_cohort_summaries() == listing
    conn = _raw(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


# -- MongoDB adapter specifics ---------------------------------------------------------


@pytest.fixture
def mongo(mongo_server: MongoServer):
    """Opener of MongoStores on one fresh database (keyword arguments are passed on)."""
    from manager.store.mongo import MongoStore

    database = fresh_database()
    opened: list[Store] = []

    def make(**kwargs: Any) -> Any:
        store = MongoStore(mongo_server.url, database=database, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    mongo_server.drop(database)


def _docs(store: Any, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async def read(db: Any) -> list[dict[str, Any]]:
        return await db[collection].find(query or {}).to_list(None)

    return store.run_async(read)


def _index_keys(store: Any, collection: str) -> dict[tuple[tuple[str, int], ...], bool]:
    """Index key patterns of a collection -> unique (names differ between servers)."""
    async def read(db: Any) -> dict[str, Any]:
        return await db[collection].index_information()

    return {tuple(info["key"]): bool(info.get("unique")) for info in store.run_async(read).values()}


def test_mongo_collections_and_indexes(mongo: Callable[..., Any]) -> None:
    store = mongo()

    async def names(db: Any) -> list[str]:
        return await db.list_collection_names()

    assert {
        "sim_runs_intraday", "cohort_summaries", "ledger", "genomes", "audit_events", "knowledge",
        "agent_results", "trades", "equity_curves", "populations", "search_trials",
        "search_studies", "promotion_log", "schema_migrations",
    } <= set(store.run_async(names))
    assert _index_keys(store, "ledger")[(("run_id", 1), ("txn_id", 1))] is True
    assert _index_keys(store, "ledger")[(("run_id", 1), ("seq", 1))] is True
    assert (("created_at", 1), ("run_id", 1)) in _index_keys(store, "sim_runs_intraday")
    assert _index_keys(store, "search_trials")[(("study", 1), ("index", 1))] is True


def test_mongo_ledger_key_is_enforced_by_the_database(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    assert store.append_ledger(run_id, [make_txn(0)]) == 1
    (row,) = _docs(store, "ledger")
    assert row["doc"] == make_txn(0) and row["txn_id"] == "t00000" and row["seq"] == 0
    assert "attempt" not in row

    async def insert_again(db: Any) -> None:
        await db.ledger.insert_one({"run_id": run_id, "txn_id": "t00000", "seq": 99})

    with pytest.raises(StoreError, match="11000|UNIQUE|duplicate"):
        store.run_async(insert_again)
    assert len(_docs(store, "ledger")) == 1


def test_mongo_listing_is_keyset_paginated_never_skip(mongo: Callable[..., Any]) -> None:
    from pymongo import monitoring

    class Finds(monitoring.CommandListener):
        def __init__(self) -> None:
            self.commands: list[dict[str, Any]] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name == "find":
                self.commands.append(dict(event.command))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    listener = Finds()
    store = mongo(client_options={"event_listeners": [listener]})
    for i in range(7):
        run_at(store, T0 + timedelta(seconds=i // 2), run_id=f"r{i}")
        knowledge_at(store, f"k{i}", T0 + timedelta(seconds=i // 2))
    listener.commands.clear()
    assert [c for p in _paginate(store, limit=3) for c in p] == [f"r{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    assert [c for p in _knowledge_pages(store, limit=3) for c in p] == [f"k{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    listings = [c for c in listener.commands if c["find"] in ("sim_runs_intraday", "knowledge") and "sort" in c]
    assert len(listings) == 8
    assert all("skip" not in c for c in listener.commands)
    for c in listings:
        assert list(c["sort"].items())[0] == ("created_at", -1)
    pages_after_first = [c for c in listings if "$or" in c["filter"]]
    assert len(pages_after_first) == 6


def test_mongo_explain_uses_the_listing_index(mongo_server: MongoServer, mongo: Callable[..., Any]) -> None:
    if mongo_server.nx:
        pytest.skip("nx-27017 explains every query as a table scan (see README)")
    store = mongo()
    for i in range(5):
        run_at(store, T0 + timedelta(minutes=i), run_id=f"r{i}")

    async def explain(db: Any) -> dict[str, Any]:
        query = {"$or": [{"created_at": {"$lt": "z"}}, {"created_at": "z", "run_id": {"$lt": "r"}}]}
        return await db.sim_runs_intraday.find(query).sort(
            [("created_at", -1), ("run_id", -1)]).limit(2).explain()

    plan = json.dumps(store.run_async(explain)["queryPlanner"]["winningPlan"], default=str)
    assert "IXSCAN" in plan and '"SORT"' not in plan


def test_mongo_cohort_listing_fields_are_stored_on_the_run(mongo: Callable[..., Any]) -> None:
    store = mongo()
    make_listing_runs(store)
    rows = {row["_id"]: row for row in _docs(store, "sim_runs_intraday")}
    assert not {"date", "day", "created_us", "roi"} & set(rows["bt"])  # only cohorts carry them
    done = rows["done-2"]
    assert {k: done[k] for k in ("date", "day", "bankroll", "quote", "agents", "roi", "breaches",
                                 "failed_agents")} == {
        "date": "2025-03-03", "day": 20250303, "bankroll": 250.0, "quote": "USD", "agents": 3,
        "roi": -0.5, "breaches": 0, "failed_agents": 0}
    assert done["created_us"] == (T0 + timedelta(minutes=1) - datetime(1970, 1, 1, tzinfo=timezone.utc)) \
        // timedelta(microseconds=1)
    assert rows["failed"]["day"] == 20250305 and rows["failed"]["roi"] is None
    assert rows["running"]["day"] == 20250304
    keys = _index_keys(store, "sim_runs_intraday")
    for key in [(("kind", 1), ("created_us", 1), ("run_id", 1)),
                (("kind", 1), ("day", 1), ("created_us", 1), ("run_id", 1)),
                (("kind", 1), ("bankroll", 1), ("created_us", 1), ("run_id", 1))]:
        assert key in keys


def test_mongo_cohort_listing_is_one_find_and_one_count(mongo: Callable[..., Any]) -> None:
    from pymongo import monitoring

    class Commands(monitoring.CommandListener):
        def __init__(self) -> None:
            self.commands: list[dict[str, Any]] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.commands.append({"name": event.command_name, **dict(event.command)})

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    listener = Commands()
    store = mongo(client_options={"event_listeners": [listener]})
    make_listing_runs(store)
    listener.commands.clear()
    page = store.list_cohort_summaries(date="2025-03-01", bankroll=1000, limit=5, offset=0,
                                       created_after="2020-01-01T00:00:00Z")
    assert [r["run_id"] for r in page["items"]] == ["done"] and page["total"] == 1
    (find, count) = listener.commands
    assert find["name"] == "find" and find["find"] == "sim_runs_intraday"
    assert list(find["sort"].items()) == [("created_us", -1), ("run_id", -1)]
    assert find["filter"] == {"kind": {"$eq": "cohort"}, "day": {"$eq": 20250301},
                              "bankroll": {"$eq": 1000.0},
                              "created_us": {"$gt": 1577836800000000}}
    assert count["name"] == "count" and count["query"] == find["filter"]
    listener.commands.clear()
    store.list_cohort_summaries(limit=2, offset=3)
    (find, _) = listener.commands
    assert find["skip"] == 3 and find["limit"] == 2


def test_mongo_explain_uses_the_cohort_listing_indexes(
    mongo_server: MongoServer, mongo: Callable[..., Any]
) -> None:
    if mongo_server.nx:
        pytest.skip("nx-27017 explains every query as a table scan (see README)")
    store = mongo()
    make_listing_runs(store)

    async def explain(db: Any, query: dict[str, Any]) -> dict[str, Any]:
        return await db.sim_runs_intraday.find(query).sort(
            [("created_us", -1), ("run_id", -1)]).skip(1).limit(2).explain()

    for query in [{"kind": {"$eq": "cohort"}},
                  {"kind": {"$eq": "cohort"}, "day": {"$eq": 20250301}},
                  {"kind": {"$eq": "cohort"}, "bankroll": {"$eq": 1000.0}},
                  {"kind": {"$eq": "cohort"}, "created_us": {"$gt": 0}}]:
        result = store.run_async(lambda db, q=query: explain(db, q))
        plan = json.dumps(result["queryPlanner"]["winningPlan"], default=str)
        assert "IXSCAN" in plan and '"SORT"' not in plan, (query, plan)


def _fail_on_curves(store: Any) -> None:
    from pymongo.errors import AutoReconnect

    original = store._insert_many

    async def insert_many(name: str, rows: list[dict[str, Any]], session: Any) -> None:
        if name == "equity_curves":
            raise AutoReconnect("connection lost while writing curves (test)")
        await original(name, rows, session)

    store._insert_many = insert_many


def test_mongo_complete_run_compensates_a_failure_half_way(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(100, txn_id="pre-1")])
    before = snapshot(store, run_id)
    raw_run = _docs(store, "sim_runs_intraday")
    _fail_on_curves(store)
    with pytest.raises(StoreError, match="connection lost while writing curves"):
        store.complete_run(run_id, **make_results())
    assert snapshot(store, run_id) == before
    assert _docs(store, "sim_runs_intraday") == raw_run  # the claim was released
    for name in ("cohort_summaries", "agent_results", "trades", "equity_curves"):
        assert _docs(store, name) == []
    assert [r["txn_id"] for r in _docs(store, "ledger")] == ["pre-1"]
    del store._insert_many
    store.complete_run(run_id, **make_results())
    assert [t["seq"] for t in store.get_ledger(run_id)] == [0, 1, 2, 100]


def test_mongo_leftovers_of_a_crashed_completion_are_invisible_then_removed(
    mongo: Callable[..., Any],
) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(100, txn_id="pre-1")])
    _fail_on_curves(store)

    async def crash(*args: Any) -> None:  # the process died: no compensation
        return None

    store._compensate = crash
    with pytest.raises(StoreError):
        store.complete_run(run_id, **make_results())
    assert len(_docs(store, "agent_results")) == 3 and len(_docs(store, "ledger")) == 4
    # Readers see the run as it was.
    assert store.get_run(run_id)["status"] == "running" and store.get_run(run_id)["summary"] is None
    assert store.get_agents(run_id) == [] and store.get_trades(run_id) == []
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["pre-1"]
    assert store.list_runs()[0]["summary"] is None

    retry = mongo()  # e.g. the retried task in another process
    results = make_results()
    results["agents"] = results["agents"][:2]
    retry.complete_run(run_id, **results)
    assert retry.get_agents(run_id) == results["agents"]
    assert len(_docs(retry, "agent_results")) == 2
    assert [t["seq"] for t in retry.get_ledger(run_id)] == [0, 1, 2, 100]
    assert len({r["attempt"] for r in _docs(retry, "equity_curves")}) == 1


def test_mongo_fail_run_removes_leftovers_too(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    _fail_on_curves(store)

    async def crash(*args: Any) -> None:
        return None

    store._compensate = crash
    with pytest.raises(StoreError):
        store.complete_run(run_id, **make_results())
    store.fail_run(run_id, "worker lost")
    for name in ("cohort_summaries", "agent_results", "trades", "equity_curves", "ledger"):
        assert _docs(store, name) == []
    assert "attempt" not in _docs(store, "sim_runs_intraday")[0]


def test_mongo_curves_are_npy_bytes_and_large_ones_are_chunked(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    big = np.arange(1_300_000, dtype=np.float64).reshape(1000, 1300)  # 10.4 MB > one chunk
    small = np.array([1.0, np.nan])
    store.complete_run(run_id, summary={}, agents=[], trades=[], ledger=[],
                       curves={"big": big, "small": small}, timings={})
    rows = _docs(store, "equity_curves")
    assert sorted((r["name"], r["chunk"]) for r in rows) == [("big", 0), ("big", 1), ("small", 0)]
    first = next(r for r in rows if r["name"] == "small")
    assert bytes(first["npy"]).startswith(b"\x93NUMPY")
    assert first["dtype"] == "<f8" and first["shape"] == [2]
    got = store.get_curves(run_id)
    assert list(got) == ["big", "small"]
    assert_same_array(got["big"], big)
    assert_same_array(got["small"], small)


def test_mongo_store_works_from_inside_a_running_event_loop(mongo: Callable[..., Any]) -> None:
    import asyncio

    store = mongo()

    async def handler() -> str:  # e.g. an async web handler calling the sync port
        run_id = store.create_run(make_run())
        return store.get_run(run_id)["status"]

    assert asyncio.run(handler()) == "running"


def test_mongo_refuses_calls_from_its_own_loop_thread(mongo: Callable[..., Any]) -> None:
    store = mongo()

    async def nested(db: Any) -> Any:
        return store.list_runs()

    with pytest.raises(StoreError, match="would deadlock"):
        store.run_async(nested)


def test_mongo_transactions_follow_the_server(mongo_server: MongoServer, mongo: Callable[..., Any]) -> None:
    store = mongo()

    async def hello(db: Any) -> dict[str, Any]:
        return await db.client.admin.command("hello")

    info = store.run_async(hello)
    assert store.transactions == ("setName" in info or info.get("msg") == "isdbgrid")
    if mongo_server.nx:
        assert store.transactions is False  # nx-27017 says it is a standalone server


def test_mongo_transaction_path(mongo_server: MongoServer, mongo: Callable[..., Any]) -> None:
    """complete_run / append_ledger / fail_run inside multi-document transactions.

    A replica set uses them by itself; nx-27017 accepts them when forced (it has
    no isolation between concurrent transactions, so only one thread here).
    """
    probe = mongo()
    if not mongo_server.nx and not probe.transactions:
        pytest.skip("the server given by COHORTLAB_TEST_MONGODB_URL has no transactions")
    store = mongo(transactions=True)
    assert store.transactions is True
    run_id = store.create_run(make_run())
    assert store.append_ledger(run_id, [make_txn(100, txn_id="pre-1")]) == 1
    assert store.append_ledger(run_id, [make_txn(100, txn_id="pre-1"), make_txn(101)]) == 1
    with pytest.raises(StoreError, match="different content"):
        store.append_ledger(run_id, [make_txn(102), make_txn(101, amount="3")])
    before = snapshot(store, run_id)
    _fail_on_curves(store)
    with pytest.raises(StoreError, match="connection lost while writing curves"):
        store.complete_run(run_id, **make_results())
    assert snapshot(store, run_id) == before  # the transaction was aborted
    assert _docs(store, "agent_results") == [] and len(_docs(store, "ledger")) == 2
    del store._insert_many
    with pytest.raises(StoreError, match="seq 2 is already used"):
        bad = make_results()
        _duplicate_seq(bad)
        store.complete_run(run_id, **bad)
    store.complete_run(run_id, **make_results())
    assert [t["seq"] for t in store.get_ledger(run_id)] == [0, 1, 2, 100, 101]
    assert store.get_agents(run_id) == make_results()["agents"]
    with pytest.raises(RunStateError):
        store.fail_run(run_id, "late")
    other = store.create_run(make_run())
    store.append_ledger(other, [make_txn(0)])
    store.fail_run(other, "boom")
    assert store.get_ledger(other) == [] and _docs(store, "ledger", {"run_id": other}) == []


def test_mongo_append_ledger_removes_a_partly_written_batch(
    mongo: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.errors import AutoReconnect

    store = mongo()
    run_id = store.create_run(make_run())
    store.append_ledger(run_id, [make_txn(0)])
    original = AsyncCollection.insert_many

    async def drops_half_way(self: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        if self.name == "ledger":
            await original(self, rows[:2], *args, **kwargs)
            raise AutoReconnect("connection reset (test)")
        return await original(self, rows, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "insert_many", drops_half_way)
    with pytest.raises(StoreError, match="connection reset"):
        store.append_ledger(run_id, [make_txn(n) for n in range(1, 6)])
    monkeypatch.setattr(AsyncCollection, "insert_many", original)
    assert [t["txn_id"] for t in store.get_ledger(run_id)] == ["t00000"]
    assert len(_docs(store, "ledger")) == 1
    assert store.append_ledger(run_id, [make_txn(n) for n in range(1, 6)]) == 5


def test_mongo_concurrent_completions_of_one_run_leave_one_result(mongo: Callable[..., Any]) -> None:
    stores = [mongo(), mongo()]
    for round_ in range(4):
        run_id = stores[0].create_run(make_run())
        outcomes: list[Any] = [None, None]
        barrier = threading.Barrier(2)

        def complete(k: int) -> None:
            results = make_results()
            results["summary"] = {"writer": k}
            results["agents"] = results["agents"][: k + 2]
            barrier.wait()
            try:
                stores[k].complete_run(run_id, **results)
                outcomes[k] = "ok"
            except StoreError as exc:  # RunStateError or "being completed by another writer"
                outcomes[k] = exc

        threads = [threading.Thread(target=complete, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(o == "ok" or isinstance(o, StoreError) for o in outcomes), outcomes
        run = stores[0].get_run(run_id)
        if "ok" not in outcomes:  # both lost a race: the run stays as it was
            assert run["status"] == "running"
            assert _docs(stores[0], "agent_results", {"run_id": run_id}) == []
            continue
        assert outcomes.count("ok") == 1
        winner = outcomes.index("ok")
        assert run["status"] == "completed" and run["summary"] == {"writer": winner}
        assert len(stores[1].get_agents(run_id)) == winner + 2
        assert len(_docs(stores[0], "agent_results", {"run_id": run_id})) == winner + 2
        assert [t["seq"] for t in stores[1].get_ledger(run_id)] == [0, 1, 2]
        assert len(_docs(stores[0], "ledger", {"run_id": run_id})) == 3
