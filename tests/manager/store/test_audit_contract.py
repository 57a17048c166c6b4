"""Contract of the audit port (:class:`manager.store.ports.audit.AuditStore`) on every
adapter, and of what every store shares: one error base, closing, several store
objects and threads on one database."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, RunNotFound, Store, StoreError
from tests.manager.store.builders import T0, Opener, make_run, make_txn


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


# -- every store ---------------------------------------------------------------


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


