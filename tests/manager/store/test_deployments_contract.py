"""Contract of the deployment port (:mod:`manager.store.ports.deployments`) on
every adapter: one deployment per promotion (idempotent create), reads and the
listing, the conditional update on the last processed bar (two workers racing
on one bar: exactly one wins), and the append-only incident log."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, StoreError
from tests.manager.store.builders import Opener


def deployment(did: str = "dep-1", pid: str = "promo-1", created: str = "2025-03-01T00:00:00Z",
               **kw: Any) -> dict[str, Any]:
    return {"deployment_id": did, "promotion_id": pid, "status": "running", "created_at": created,
            "allocation": {"amount": 0.005}, "broker": {"cash_units": 500000}, **kw}


def test_create_is_idempotent_per_promotion(open_same: Opener) -> None:
    store = open_same()
    first = store.create_deployment(deployment())
    assert first["last_bar"] == -1 and first["status"] == "running" and first["updated_at"] == first["created_at"]
    again = store.create_deployment(deployment("dep-2"))  # a retried start with a new id
    assert again == first and again["deployment_id"] == "dep-1"
    assert [d["deployment_id"] for d in open_same().list_deployments()] == ["dep-1"]
    with pytest.raises(StoreError, match="another promotion"):
        store.create_deployment(deployment("dep-1", "promo-2"))
    assert store.get_deployment("dep-1") == first


def test_listing_newest_first_filtered_paged(store) -> None:
    for i in range(3):
        store.create_deployment(deployment(f"dep-{i}", f"promo-{i}", created=f"2025-03-0{i + 1}T00:00:00Z"))
    assert store.update_deployment("dep-1", -1, {"status": "rolled_back"})
    assert [d["deployment_id"] for d in store.list_deployments()] == ["dep-2", "dep-1", "dep-0"]
    assert [d["deployment_id"] for d in store.list_deployments(status="running")] == ["dep-2", "dep-0"]
    assert [d["deployment_id"] for d in store.list_deployments(limit=1, offset=1)] == ["dep-1"]
    assert store.list_deployments(status="paused") == []


def test_conditional_update_on_the_last_bar(open_same: Opener) -> None:
    store = open_same()
    store.create_deployment(deployment())
    assert store.update_deployment("dep-1", -1, {"last_bar": 100, "equity": [1.0]}) is True
    assert store.update_deployment("dep-1", -1, {"last_bar": 101}) is False  # stale: already moved on
    got = open_same().get_deployment("dep-1")
    assert got["last_bar"] == 100 and got["equity"] == [1.0] and got["allocation"] == {"amount": 0.005}
    assert got["updated_at"] >= got["created_at"]
    assert store.update_deployment("dep-1", 100, {"status": "paused"}, expected_status="paused") is False
    assert store.update_deployment("dep-1", 100, {"status": "paused"}, expected_status="running") is True
    assert store.get_deployment("dep-1")["status"] == "paused"
    assert [d["deployment_id"] for d in store.list_deployments(status="paused")] == ["dep-1"]


def test_update_errors(store) -> None:
    store.create_deployment(deployment())
    with pytest.raises(NotFound):
        store.update_deployment("nope", -1, {"last_bar": 1})
    for bad in ({"deployment_id": "x"}, {"promotion_id": "x"}, {"created_at": "x"}, {"last_bar": -2},
                {"last_bar": "1"}, {"status": "Bad Status"}):
        with pytest.raises(InvalidDocument):
            store.update_deployment("dep-1", -1, bad)
    with pytest.raises(InvalidDocument):
        store.update_deployment("dep-1", "x", {})
    with pytest.raises(NotFound):
        store.get_deployment("nope")
    with pytest.raises(InvalidDocument):
        store.get_deployment("bad id!")
    with pytest.raises(InvalidDocument, match="promotion_id"):
        store.create_deployment({"deployment_id": "d", "status": "running"})
    with pytest.raises(InvalidDocument):
        store.list_deployments(limit=0)
    assert store.get_deployment("dep-1")["last_bar"] == -1  # nothing written


def test_two_workers_racing_on_one_bar_one_wins(open_same: Opener) -> None:
    open_same().create_deployment(deployment())
    for bar in range(5):  # several rounds: each bar advanced by exactly one worker
        results: list[bool] = []
        barrier = threading.Barrier(2)

        def worker(name: str) -> None:
            store = open_same()
            barrier.wait()
            results.append(store.update_deployment("dep-1", bar - 1, {"last_bar": bar, "by": name}))

        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, True]
        assert open_same().get_deployment("dep-1")["last_bar"] == bar


def test_incidents_append_only_in_order(open_same: Opener) -> None:
    store = open_same()
    store.create_deployment(deployment())
    a = store.record_incident("dep-1", {"trigger": "drawdown", "figure": 0.07, "threshold": 0.05,
                                        "detail": {"peak_equity": 1.0}})
    b = store.record_incident("dep-1", {"trigger": "kill_switch", "figure": 1.0, "seq": 99})
    assert (a["seq"], b["seq"]) == (1, 2) and a["deployment_id"] == "dep-1" and "recorded_at" in a
    assert open_same().list_incidents("dep-1") == [a, b]
    assert store.list_incidents("other") == []
    with pytest.raises(NotFound):
        store.record_incident("nope", {"trigger": "timer"})
    with pytest.raises(InvalidDocument, match="trigger"):
        store.record_incident("dep-1", {"figure": 1.0})


def test_concurrent_incidents_get_distinct_seqs(open_same: Opener) -> None:
    open_same().create_deployment(deployment())
    barrier = threading.Barrier(4)

    def worker(i: int) -> None:
        store = open_same()
        barrier.wait()
        store.record_incident("dep-1", {"trigger": "variance", "n": i})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = open_same().list_incidents("dep-1")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4] and sorted(r["n"] for r in rows) == [0, 1, 2, 3]
