"""Contract of the campaign and promotion ports (:mod:`manager.store.ports.promotions`)
on every adapter: campaigns saved, replaced, read and listed; promotion requests
created, listed, counted, moved by conditional transitions that log every step in
``promotion_log`` and ``audit_events``; two threads racing on one transition:
exactly one wins."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from manager.store import InvalidDocument, NotFound, StoreError
from tests.manager.store.builders import Opener


def campaign(cid: str = "camp-1", created: str = "2025-03-01T00:00:00Z", **kw: Any) -> dict[str, Any]:
    return {"campaign_id": cid, "market": "binance-5m|5m|BTC", "created_at": created,
            "report": {"days": [{"date": "2018-01-14", "run_id": "r1"}], "candidates": []},
            "run_ids": ["r1", "r2", "r3"], **kw}


def promotion(pid: str = "promo-1", status: str = "proposed", created: str = "2025-03-01T00:00:00Z",
              campaign_id: str = "camp-1", **kw: Any) -> dict[str, Any]:
    return {"promotion_id": pid, "campaign_id": campaign_id, "day": 3, "run_id": "r3", "agent_id": "a06",
            "status": status, "created_at": created, "expires_at": "2025-03-02T00:00:00Z",
            "proposed_by": {"user": "olga", "role": "ops"}, "checklist_hash": "ab" * 32, **kw}


# -- campaigns ------------------------------------------------------------------------------------


def test_campaign_round_trip_and_replace(open_same: Opener) -> None:
    store = open_same()
    saved = store.save_campaign(campaign(source={"data": "x"}))
    assert saved["run_ids"] == ["r1", "r2", "r3"] and saved["source"] == {"data": "x"}
    assert store.get_campaign("camp-1") == saved
    again = store.save_campaign(campaign(created="2026-01-01T00:00:00Z", run_ids=["r9"]))
    assert again["created_at"] == saved["created_at"]  # the first save's
    assert open_same().get_campaign("camp-1")["run_ids"] == ["r9"]


def test_campaign_listing_newest_first_paged(store) -> None:
    for i in range(3):
        store.save_campaign(campaign(f"camp-{i}", created=f"2025-03-0{i + 1}T00:00:00Z"))
    assert [c["campaign_id"] for c in store.list_campaigns()] == ["camp-2", "camp-1", "camp-0"]
    assert [c["campaign_id"] for c in store.list_campaigns(limit=1, offset=1)] == ["camp-1"]


def test_campaign_errors(store) -> None:
    with pytest.raises(NotFound):
        store.get_campaign("nope")
    with pytest.raises(InvalidDocument, match="campaign.market"):
        store.save_campaign({"campaign_id": "c", "report": {}})
    with pytest.raises(InvalidDocument):
        store.get_campaign("bad id!")
    with pytest.raises(InvalidDocument):
        store.list_campaigns(limit=0)


# -- promotions -----------------------------------------------------------------------------------


def test_create_get_list_count(store) -> None:
    created = store.create_promotion(promotion())
    assert created["status"] == "proposed" and created["steps"] == []
    assert created["updated_at"] == created["created_at"]
    assert store.get_promotion("promo-1") == created
    store.create_promotion(promotion("promo-2", created="2025-03-02T00:00:00Z", campaign_id="camp-2"))
    assert [p["promotion_id"] for p in store.list_promotions()] == ["promo-2", "promo-1"]
    assert [p["promotion_id"] for p in store.list_promotions(campaign_id="camp-1")] == ["promo-1"]
    assert store.count_promotions() == 2 and store.count_promotions(status="rejected") == 0
    assert store.count_promotions(status="proposed", campaign_id="camp-2") == 1
    with pytest.raises(StoreError, match="exists"):
        store.create_promotion(promotion())
    with pytest.raises(NotFound):
        store.get_promotion("promo-9")
    with pytest.raises(InvalidDocument, match="promotion.status"):
        store.create_promotion(promotion("promo-3", status="Bad Status"))
    with pytest.raises(InvalidDocument, match="promotion.agent_id"):
        store.create_promotion({k: v for k, v in promotion("promo-4").items() if k != "agent_id"})


def test_creation_is_logged_and_audited(store) -> None:
    store.create_promotion(promotion())
    (row,) = store.promotion_log("promo-1")
    assert (row["seq"], row["from_status"], row["status"], row["actor"]) == (1, None, "proposed", "olga")
    assert row["agent_id"] == "a06" and row["run_id"] == "r3"
    event = store.list_audit(1)[0]
    assert event["kind"] == "promotion.proposed" and event["actor"] == "olga"
    assert event["details"]["promotion_id"] == "promo-1"


def test_transition_is_conditional_and_logged(open_same: Opener) -> None:
    store = open_same()
    store.create_promotion(promotion())
    step = {"user": "olga", "role": "ops", "notes": "fine", "checklist_hash": "ab" * 32, "kind": "approve",
            "at": "2025-03-01T01:00:00Z"}
    assert store.transition_promotion("promo-1", "proposed", "ops_approved", step) is True
    assert store.transition_promotion("promo-1", "proposed", "ops_approved", step) is False  # idempotent
    assert store.transition_promotion("promo-1", "proposed", "rejected", {"user": "rick"}) is False
    doc = open_same().get_promotion("promo-1")
    assert doc["status"] == "ops_approved" and doc["updated_at"].startswith("2025-03-01T01:00:00")
    assert [s["user"] for s in doc["steps"]] == ["olga"] and doc["steps"][0]["notes"] == "fine"
    assert store.list_promotions(status="ops_approved")[0]["promotion_id"] == "promo-1"
    log = store.promotion_log("promo-1")
    assert [(r["seq"], r["from_status"], r["status"]) for r in log] == [
        (1, None, "proposed"), (2, "proposed", "ops_approved")]
    assert log[1]["doc"]["checklist_hash"] == "ab" * 32
    kinds = [e["kind"] for e in store.list_audit(10)]
    assert kinds.count("promotion.ops_approved") == 1 and kinds.count("promotion.rejected") == 0
    with pytest.raises(NotFound):
        store.transition_promotion("promo-9", "proposed", "ops_approved", step)
    with pytest.raises(InvalidDocument):
        store.transition_promotion("promo-1", "ops_approved", "risk_approved", {"user": ""})


def test_two_threads_racing_on_one_transition_one_wins(open_same: Opener) -> None:
    """Two approvers of the same step at the same time, each on its own store
    object (as two API workers): exactly one transition is made and logged."""
    setup = open_same()
    for i in range(5):
        setup.create_promotion(promotion(f"promo-{i}"))
    stores = [open_same(), open_same()]
    for i in range(5):
        barrier = threading.Barrier(2)
        results: list[bool] = []
        errors: list[BaseException] = []

        def go(k: int) -> None:
            try:
                barrier.wait()
                results.append(stores[k].transition_promotion(
                    f"promo-{i}", "proposed", "ops_approved", {"user": f"user{k}", "kind": "approve"}))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sorted(results) == [False, True]
        doc = setup.get_promotion(f"promo-{i}")
        assert len(doc["steps"]) == 1 and doc["status"] == "ops_approved"
        assert [r["status"] for r in setup.promotion_log(f"promo-{i}")] == ["proposed", "ops_approved"]
