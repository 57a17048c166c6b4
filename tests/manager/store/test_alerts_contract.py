"""Contract of the alert port (:mod:`manager.store.ports.alerts`) on every adapter:
creation with the per-(rule, subject) quiet window (dedup / rate limit, atomic under
a race), delivery attempts (pending -> sent | failed, attempts and their log), reads
and the listing."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, StoreError
from tests.manager.store.builders import Opener


def alert(aid: str = "al-1", rule: str = "parent_drawdown", subject: str = "run-1",
          created: str = "2025-03-01T00:00:00Z", **kw: Any) -> dict[str, Any]:
    return {"alert_id": aid, "rule": rule, "subject": subject, "severity": "critical",
            "title": "parent drawdown 7.5 % > 5 %", "body": "max drawdown 7.50 % (threshold 5.00 %)",
            "created_at": created, "figures": {"max_drawdown": 0.075}, **kw}


def test_create_read_and_store_fields(open_same: Opener) -> None:
    store = open_same()
    got, created = store.create_alert(alert(status="sent", attempts=9))  # store keys are ignored
    assert created is True
    assert got["status"] == "pending" and got["attempts"] == 0 and got["attempt_log"] == []
    assert got["suppressed"] == 0 and got["last_error"] is None and got["figures"] == {"max_drawdown": 0.075}
    assert got["created_at"] == got["updated_at"] == "2025-03-01T00:00:00.000000+00:00"
    assert open_same().get_alert("al-1") == got
    with pytest.raises(StoreError, match="exists"):
        store.create_alert(alert())
    with pytest.raises(NotFound):
        store.get_alert("nope")


@pytest.mark.parametrize("bad, match", [
    ({"rule": "Parent Drawdown"}, "alert.rule"),
    ({"subject": ""}, "alert.subject"),
    ({"severity": "loud"}, "alert.severity"),
    ({"title": None}, "alert.title"),
    ({"alert_id": "bad id"}, "alert.alert_id"),
])
def test_invalid_alerts(store, bad: dict, match: str) -> None:
    with pytest.raises(InvalidDocument, match=match):
        store.create_alert({**alert(), **bad})
    with pytest.raises(InvalidDocument, match="quiet_since"):
        store.create_alert(alert(), quiet_since="yesterday")


def test_quiet_window_per_rule_and_subject(open_same: Opener) -> None:
    store = open_same()
    assert store.create_alert(alert("al-1", created="2025-03-01T00:00:00Z"))[1]
    # same (rule, subject), created after the quiet_since moment: suppressed, counted on the first
    earlier, created = store.create_alert(alert("al-2", created="2025-03-01T00:05:00Z"),
                                          quiet_since="2025-02-28T23:50:00Z")
    assert created is False and earlier["alert_id"] == "al-1" and earlier["suppressed"] == 1
    with pytest.raises(NotFound):
        store.get_alert("al-2")
    # another subject or another rule is not suppressed
    assert store.create_alert(alert("al-3", subject="run-2", created="2025-03-01T00:05:00Z"),
                              quiet_since="2025-02-28T23:50:00Z")[1]
    assert store.create_alert(alert("al-4", rule="utilisation", created="2025-03-01T00:05:00Z"),
                              quiet_since="2025-02-28T23:50:00Z")[1]
    # after the window (the earlier alert is not after quiet_since): created
    assert store.create_alert(alert("al-5", created="2025-03-01T00:20:00Z"),
                              quiet_since="2025-03-01T00:00:00Z")[1]
    # no quiet window: always created
    assert store.create_alert(alert("al-6", created="2025-03-01T00:21:00Z"))[1]
    assert open_same().get_alert("al-1")["suppressed"] == 1
    assert [a["alert_id"] for a in store.list_alerts(rule="parent_drawdown")] == ["al-6", "al-5", "al-3", "al-1"]


def test_delivery_attempts(open_same: Opener) -> None:
    store = open_same()
    store.create_alert(alert())
    after = store.record_alert_attempt("al-1", ok=False, error="HTTP 500", at="2025-03-01T00:00:01Z")
    assert after["status"] == "pending" and after["attempts"] == 1 and after["last_error"] == "HTTP 500"
    after = store.record_alert_attempt("al-1", ok=True, at="2025-03-01T00:00:03Z")
    assert after["status"] == "sent" and after["attempts"] == 2
    assert after["attempt_log"] == [
        {"at": "2025-03-01T00:00:01.000000+00:00", "ok": False, "error": "HTTP 500"},
        {"at": "2025-03-01T00:00:03.000000+00:00", "ok": True, "error": None}]
    assert open_same().get_alert("al-1") == after
    store.create_alert(alert("al-2", subject="run-2"))
    store.record_alert_attempt("al-2", ok=False, error="refused")
    failed = store.record_alert_attempt("al-2", ok=False, error="refused again", final=True)
    assert failed["status"] == "failed" and failed["attempts"] == 2 and failed["last_error"] == "refused again"
    assert [a["alert_id"] for a in store.list_alerts(status="failed")] == ["al-2"]
    assert [a["alert_id"] for a in store.list_alerts(status="sent")] == ["al-1"]
    with pytest.raises(NotFound):
        store.record_alert_attempt("nope", ok=True)
    with pytest.raises(InvalidDocument):
        store.record_alert_attempt("al-1", ok="yes")  # type: ignore[arg-type]


def test_listing_newest_first_filtered_paged(store) -> None:
    for i in range(3):
        store.create_alert(alert(f"al-{i}", subject=f"run-{i}", created=f"2025-03-0{i + 1}T00:00:00Z"))
    assert [a["alert_id"] for a in store.list_alerts()] == ["al-2", "al-1", "al-0"]
    assert [a["alert_id"] for a in store.list_alerts(limit=1, offset=1)] == ["al-1"]
    assert store.list_alerts(rule="kill_switch") == []
    with pytest.raises(InvalidDocument):
        store.list_alerts(status="lost")
    with pytest.raises(InvalidDocument):
        store.list_alerts(rule="Bad Rule")


def test_racing_creators_make_one_alert(open_same: Opener) -> None:
    stores = [open_same() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[Any] = []

    def raise_it(i: int) -> None:
        barrier.wait()
        results.append(stores[i].create_alert(alert(f"al-{i}", created=f"2025-03-01T00:00:0{i}Z"),
                                              quiet_since="2025-02-28T00:00:00Z"))

    threads = [threading.Thread(target=raise_it, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _doc, created in results) == 1
    kept = stores[0].list_alerts()
    assert len(kept) == 1 and kept[0]["suppressed"] == len(stores) - 1
