"""Facts particular to the MongoDB adapter: collections and indexes, the queries it
sends, compensation without transactions, the transaction path, chunked curves,
and the sync/async bridge."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from manager.store import RunStateError, StoreError
from tests.manager.store.builders import (
    T0,
    assert_same_array,
    knowledge_at,
    knowledge_pages,
    make_listing_runs,
    make_results,
    make_run,
    make_txn,
    mongo_docs,
    mongo_index_keys,
    paginate,
    run_at,
    snapshot,
)
from tests.manager.store.mongo_server import MongoServer


def test_mongo_collections_and_indexes(mongo: Callable[..., Any]) -> None:
    store = mongo()

    async def names(db: Any) -> list[str]:
        return await db.list_collection_names()

    assert {
        "sim_runs_intraday", "cohort_summaries", "ledger", "genomes", "audit_events", "knowledge",
        "agent_results", "trades", "equity_curves", "populations", "search_trials",
        "search_studies", "promotion_log", "schema_migrations",
    } <= set(store.run_async(names))
    assert mongo_index_keys(store, "ledger")[(("run_id", 1), ("txn_id", 1))] is True
    assert mongo_index_keys(store, "ledger")[(("run_id", 1), ("seq", 1))] is True
    assert (("created_at", 1), ("run_id", 1)) in mongo_index_keys(store, "sim_runs_intraday")
    assert mongo_index_keys(store, "search_trials")[(("study", 1), ("index", 1))] is True


def test_mongo_ledger_key_is_enforced_by_the_database(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    assert store.append_ledger(run_id, [make_txn(0)]) == 1
    (row,) = mongo_docs(store, "ledger")
    assert row["doc"] == make_txn(0) and row["txn_id"] == "t00000" and row["seq"] == 0
    assert "attempt" not in row

    async def insert_again(db: Any) -> None:
        await db.ledger.insert_one({"run_id": run_id, "txn_id": "t00000", "seq": 99})

    with pytest.raises(StoreError, match="11000|UNIQUE|duplicate"):
        store.run_async(insert_again)
    assert len(mongo_docs(store, "ledger")) == 1


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
    assert [c for p in paginate(store, limit=3) for c in p] == [f"r{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    assert [c for p in knowledge_pages(store, limit=3) for c in p] == [f"k{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
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
    rows = {row["_id"]: row for row in mongo_docs(store, "sim_runs_intraday")}
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
    keys = mongo_index_keys(store, "sim_runs_intraday")
    for key in [(("kind", 1), ("created_us", 1), ("run_id", 1)),
                (("kind", 1), ("day", 1), ("created_us", 1), ("run_id", 1)),
                (("kind", 1), ("bankroll", 1), ("created_us", 1), ("run_id", 1))]:
        assert key in keys


def test_mongo_run_header_is_a_sub_document_and_feeds_the_listing(mongo: Callable[..., Any]) -> None:
    store = mongo()
    make_listing_runs(store)
    rows = {row["_id"]: row for row in mongo_docs(store, "sim_runs_intraday")}
    done = rows["done-2"]
    assert done["header"] == store.get_run("done-2")["header"]
    assert done["header"]["day"] == "2025-03-03" and "header" not in done["doc"]
    assert (done["date"], done["bankroll"], done["quote"], done["agents"]) == (
        done["header"]["day"], done["header"]["bankroll"], done["header"]["quote"],
        done["header"]["agents"])
    assert rows["bt"]["header"]["seeded_from"] == "backtest"  # every kind has a header


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
    raw_run = mongo_docs(store, "sim_runs_intraday")
    _fail_on_curves(store)
    with pytest.raises(StoreError, match="connection lost while writing curves"):
        store.complete_run(run_id, **make_results())
    assert snapshot(store, run_id) == before
    assert mongo_docs(store, "sim_runs_intraday") == raw_run  # the claim was released
    for name in ("cohort_summaries", "agent_results", "trades", "equity_curves"):
        assert mongo_docs(store, name) == []
    assert [r["txn_id"] for r in mongo_docs(store, "ledger")] == ["pre-1"]
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
    assert len(mongo_docs(store, "agent_results")) == 3 and len(mongo_docs(store, "ledger")) == 4
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
    assert len(mongo_docs(retry, "agent_results")) == 2
    assert [t["seq"] for t in retry.get_ledger(run_id)] == [0, 1, 2, 100]
    assert len({r["attempt"] for r in mongo_docs(retry, "equity_curves")}) == 1


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
        assert mongo_docs(store, name) == []
    assert "attempt" not in mongo_docs(store, "sim_runs_intraday")[0]


def test_mongo_curves_are_npy_bytes_and_large_ones_are_chunked(mongo: Callable[..., Any]) -> None:
    store = mongo()
    run_id = store.create_run(make_run())
    big = np.arange(1_300_000, dtype=np.float64).reshape(1000, 1300)  # 10.4 MB > one chunk
    small = np.array([1.0, np.nan])
    store.complete_run(run_id, summary={}, agents=[], trades=[], ledger=[],
                       curves={"big": big, "small": small}, timings={})
    rows = mongo_docs(store, "equity_curves")
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
    assert mongo_docs(store, "agent_results") == [] and len(mongo_docs(store, "ledger")) == 2
    del store._insert_many
    with pytest.raises(StoreError, match="seq 2 is already used"):
        bad = make_results()
        bad["ledger"].append(make_txn(2, txn_id="other-with-seq-2"))
        store.complete_run(run_id, **bad)
    store.complete_run(run_id, **make_results())
    assert [t["seq"] for t in store.get_ledger(run_id)] == [0, 1, 2, 100, 101]
    assert store.get_agents(run_id) == make_results()["agents"]
    with pytest.raises(RunStateError):
        store.fail_run(run_id, "late")
    other = store.create_run(make_run())
    store.append_ledger(other, [make_txn(0)])
    store.fail_run(other, "boom")
    assert store.get_ledger(other) == [] and mongo_docs(store, "ledger", {"run_id": other}) == []


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
    assert len(mongo_docs(store, "ledger")) == 1
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
            assert mongo_docs(stores[0], "agent_results", {"run_id": run_id}) == []
            continue
        assert outcomes.count("ok") == 1
        winner = outcomes.index("ok")
        assert run["status"] == "completed" and run["summary"] == {"writer": winner}
        assert len(stores[1].get_agents(run_id)) == winner + 2
        assert len(mongo_docs(stores[0], "agent_results", {"run_id": run_id})) == winner + 2
        assert [t["seq"] for t in stores[1].get_ledger(run_id)] == [0, 1, 2]
        assert len(mongo_docs(stores[0], "ledger", {"run_id": run_id})) == 3

