"""Contract of the run lease on every adapter (:meth:`RunStore.claim_run`,
:meth:`RunStore.renew_lease`, ``owner``/``lease_until`` of ``create_run``): a
live lease is never taken over, an expired one (or none) is, atomically."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from manager.store import InvalidDocument, RunNotFound, Store
from tests.manager.store.builders import Opener, make_run


def _iso(delta_s: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat()


def test_create_run_stores_the_lease_canonically(store: Store) -> None:
    rid = store.create_run(make_run(owner="a", lease_until="2099-01-01T00:00:00Z"))
    doc = store.get_run(rid)
    assert (doc["owner"], doc["lease_until"]) == ("a", "2099-01-01T00:00:00.000000+00:00")
    assert "owner" not in store.get_run(store.create_run(make_run()))  # no lease: no keys
    with pytest.raises(InvalidDocument, match="lease_until"):
        store.create_run(make_run(owner="a", lease_until="tomorrow"))
    with pytest.raises(InvalidDocument, match="owner"):
        store.create_run(make_run(owner=7, lease_until=_iso(60)))


def test_a_live_lease_is_not_taken_over_an_expired_one_is(open_same: Opener) -> None:
    store = open_same()
    live = store.create_run(make_run(owner="a", lease_until=_iso(60)))
    expired = store.create_run(make_run(owner="a", lease_until=_iso(-1)))
    none = store.create_run(make_run())
    assert store.claim_run(live, "b", 30) is False
    assert store.get_run(live)["owner"] == "a"
    assert store.claim_run(live, "a", 30) is True  # its owner again
    assert store.claim_run(expired, "b", 30) is True
    assert store.claim_run(none, "b", 30) is True
    doc = open_same().get_run(expired)  # stored, not cached
    assert doc["owner"] == "b" and doc["lease_until"] > _iso(20)
    assert store.claim_run(expired, "a", 30) is False  # b's lease is live now


def test_renew_extends_only_the_owners_lease_of_a_running_run(store: Store) -> None:
    rid = store.create_run(make_run(owner="a", lease_until=_iso(1)))
    assert store.renew_lease(rid, "a", 120) is True
    assert store.get_run(rid)["lease_until"] > _iso(100)
    assert store.renew_lease(rid, "b", 120) is False
    store.fail_run(rid, "boom")
    assert store.renew_lease(rid, "a", 120) is False
    assert store.claim_run(rid, "a", 120) is False  # finished runs are never claimed


def test_finished_runs_and_unknown_ids(store: Store) -> None:
    rid = store.create_run(make_run(owner="a", lease_until=_iso(-5)))
    store.complete_run(rid, summary={}, agents=[], trades=[], ledger=[], curves={}, timings={})
    assert store.claim_run(rid, "b", 10) is False
    with pytest.raises(RunNotFound):
        store.claim_run("nope-1", "b", 10)
    with pytest.raises(RunNotFound):
        store.renew_lease("nope-1", "b", 10)
    with pytest.raises(InvalidDocument):
        store.claim_run(rid, "b", 0)


def test_one_claim_wins_when_many_race(open_same: Opener) -> None:
    rid = open_same().create_run(make_run(owner="dead", lease_until=_iso(-1)))
    stores = [open_same() for _ in range(6)]
    wins: list[str] = []
    barrier = threading.Barrier(len(stores))

    def claim(i: int) -> None:
        barrier.wait()
        if stores[i].claim_run(rid, f"w{i}", 60):
            wins.append(f"w{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and open_same().get_run(rid)["owner"] == wins[0]


def test_refresh_run_replaces_the_creation_document_of_a_running_run(open_same: Opener) -> None:
    from manager.store import RunStateError
    from tests.manager.store.builders import cohort_header

    store = open_same()
    rid = store.create_run(make_run(owner="a", lease_until=_iso(60), config={"queued": True}, genomes=[],
                                    data_label="x"))
    before = store.get_run(rid)
    header = cohort_header("2025-03-01T00:00:00Z", 1000, quote="BTC", agents=2)
    store.refresh_run(rid, make_run(header=header, job_id="j1"))
    doc = open_same().get_run(rid)
    assert doc["config"] == make_run()["config"] and len(doc["genomes"]) == 2 and doc["job_id"] == "j1"
    assert doc["header"]["quote"] == "BTC" and doc["data_label"] == make_run()["data_label"]
    assert (doc["created_at"], doc["owner"], doc["lease_until"], doc["status"]) == (
        before["created_at"], "a", before["lease_until"], "running")
    rows = store.list_cohort_summaries(date="2025-03-01")["items"]
    assert [(r["run_id"], r["quote"], r["bankroll"]) for r in rows] == [(rid, "BTC", 1000.0)]
    store.fail_run(rid, "boom")
    with pytest.raises(RunStateError):
        store.refresh_run(rid, make_run())
