"""Contract of the assistant port (:mod:`manager.store.ports.intents`) on every adapter:
intents (creation, conditional status changes, one report per day, the listing) and the
knowledge base's entries (creation, filters by kind, market, link and time, order)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, StoreError
from tests.manager.store.builders import Opener


def intent(iid: str = "int-1", status: str = "draft", created: str = "2025-03-01T00:00:00Z",
           **kw: Any) -> dict[str, Any]:
    return {"intent_id": iid, "kind": "grow", "status": status, "created_at": created,
            "inputs": {"bankroll": 1000.0, "days": 3}, "plan": [{"day": 1, "expected_return": 0.001}], **kw}


def entry(eid: str = "k-1", kind: str = "assistant.fund_tomorrow", created: str = "2025-03-01T00:00:00Z",
          **kw: Any) -> dict[str, Any]:
    return {"entry_id": eid, "kind": kind, "title": "fund tomorrow", "narrative": "figures ...",
            "market": "binance-5m/5m/BTC", "links": ["run:r1", "intent:int-1"], "created_at": created, **kw}


def test_create_read_update(open_same: Opener) -> None:
    store = open_same()
    got = store.create_intent(intent(reports=[{"day": 9}]))  # reports are the store's
    assert got["reports"] == [] and got["created_at"] == got["updated_at"] == "2025-03-01T00:00:00.000000+00:00"
    assert got["inputs"] == {"bankroll": 1000.0, "days": 3}
    assert open_same().get_intent("int-1") == got
    with pytest.raises(StoreError, match="exists"):
        store.create_intent(intent())
    with pytest.raises(NotFound):
        store.get_intent("nope")
    after = store.update_intent("int-1", {"status": "running", "confirmed_by": "user:otto"}, expected_status="draft")
    assert after["status"] == "running" and after["confirmed_by"] == "user:otto"
    assert store.update_intent("int-1", {"status": "running"}, expected_status="draft") is None
    assert open_same().get_intent("int-1")["status"] == "running"
    assert store.update_intent("int-1", {"status": "completed"})["status"] == "completed"
    with pytest.raises(NotFound):
        store.update_intent("nope", {"status": "running"})


@pytest.mark.parametrize("bad, match", [
    ({"kind": "shrink"}, "intent.kind"),
    ({"status": "maybe"}, "intent.status"),
    ({"intent_id": "bad id"}, "intent.intent_id"),
    ({"created_at": "yesterday"}, "intent.created_at"),
])
def test_invalid_intents(store, bad: dict, match: str) -> None:
    with pytest.raises(InvalidDocument, match=match):
        store.create_intent({**intent(), **bad})


def test_update_refuses_store_fields_and_bad_status(store) -> None:
    store.create_intent(intent())
    for changes, match in (({"reports": []}, "reports"), ({"kind": "grow"}, "kind"), ({"status": "x"}, "status")):
        with pytest.raises(InvalidDocument, match=match):
            store.update_intent("int-1", changes)


def test_one_report_per_day_in_day_order(open_same: Opener) -> None:
    store = open_same()
    store.create_intent(intent())
    doc, added = store.add_intent_report("int-1", {"day": 2, "actual_return": 0.01, "at": "2025-03-03T00:00:00Z"})
    assert added and [r["day"] for r in doc["reports"]] == [2]
    doc, added = store.add_intent_report("int-1", {"day": 1, "actual_return": -0.01})
    assert added and [r["day"] for r in doc["reports"]] == [1, 2]
    doc, added = store.add_intent_report("int-1", {"day": 2, "actual_return": 0.99})
    assert not added and doc["reports"][1]["actual_return"] == 0.01
    assert open_same().get_intent("int-1")["reports"] == doc["reports"]
    with pytest.raises(InvalidDocument, match="report.day"):
        store.add_intent_report("int-1", {"day": 0})
    with pytest.raises(NotFound):
        store.add_intent_report("nope", {"day": 1})


def test_concurrent_confirmations_one_wins(open_same: Opener) -> None:
    open_same().create_intent(intent())
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def confirm(i: int) -> None:
        store = open_same()
        barrier.wait()
        results.append(store.update_intent("int-1", {"status": "running", "by": i}, expected_status="draft"))

    threads = [threading.Thread(target=confirm, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_intent_listing(store) -> None:
    store.create_intent(intent("int-1", created="2025-03-01T00:00:00Z"))
    store.create_intent(intent("int-2", status="refused", created="2025-03-02T00:00:00Z"))
    store.create_intent({**intent("int-3", created="2025-03-03T00:00:00Z"), "kind": "fund_tomorrow"})
    assert [d["intent_id"] for d in store.list_intents()] == ["int-3", "int-2", "int-1"]
    assert [d["intent_id"] for d in store.list_intents(kind="grow")] == ["int-2", "int-1"]
    assert [d["intent_id"] for d in store.list_intents(status="refused")] == ["int-2"]
    assert [d["intent_id"] for d in store.list_intents(limit=1, offset=1)] == ["int-2"]
    with pytest.raises(InvalidDocument):
        store.list_intents(status="nope")


def test_knowledge_entries_and_filters(open_same: Opener) -> None:
    store = open_same()
    got = store.add_knowledge_entry(entry(links=["run:r1", "intent:int-1", "run:r1"]))
    assert got["links"] == ["run:r1", "intent:int-1"] and got["market"] == "binance-5m/5m/BTC"
    assert open_same().get_knowledge_entry("k-1") == got
    with pytest.raises(StoreError, match="exists"):
        store.add_knowledge_entry(entry())
    with pytest.raises(NotFound):
        store.get_knowledge_entry("nope")
    store.add_knowledge_entry(entry("k-2", kind="assistant.grow", created="2025-03-02T00:00:00Z",
                                    links=["intent:int-2"], market=None))
    store.add_knowledge_entry(entry("k-3", created="2025-03-03T00:00:00Z", links=["promotion:pro-1"],
                                    market="coinbase-1m/1m/USD"))
    ids = lambda **f: [e["entry_id"] for e in store.list_knowledge_entries(**f)]  # noqa: E731
    assert ids() == ["k-3", "k-2", "k-1"]
    assert ids(kind="assistant.fund_tomorrow") == ["k-3", "k-1"]
    assert ids(market="binance-5m/5m/BTC") == ["k-1"]
    assert ids(link="intent:int-1") == ["k-1"] and ids(link="promotion:pro-1") == ["k-3"]
    assert ids(link="run:nope") == []
    assert ids(since="2025-03-02T00:00:00Z") == ["k-3", "k-2"]
    assert ids(until="2025-03-02T00:00:00Z") == ["k-1"]
    assert ids(since="2025-03-02T00:00:00Z", until="2025-03-03T00:00:00Z") == ["k-2"]
    assert ids(limit=1, offset=2) == ["k-1"]


@pytest.mark.parametrize("bad, match", [
    ({"kind": "Assistant Grow"}, "entry.kind"),
    ({"links": ["no-colon"]}, r"entry.links\[0\]"),
    ({"links": "run:r1"}, "entry.links"),
    ({"title": None}, "entry.title"),
    ({"market": 5}, "entry.market"),
])
def test_invalid_entries(store, bad: dict, match: str) -> None:
    with pytest.raises(InvalidDocument, match=match):
        store.add_knowledge_entry({**entry(), **bad})
    with pytest.raises(InvalidDocument, match="link"):
        store.list_knowledge_entries(link="nolink")
