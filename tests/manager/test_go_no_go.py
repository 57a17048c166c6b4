"""The Day-3 go/no-go review (:mod:`manager.go_no_go`, beat task ``cohortlab.day3_review``)
on a real 3-day campaign stored in SQLite (:mod:`tests.promotion_campaign`): a go opens
one request proposed by ``system`` for the promoter's proposal, a no-go records the
blocking rails with their figures, each campaign day is decided once, a day proposed by
hand is left alone, a campaign before Day 3 waits, overdue requests expire, and a
campaign that cannot be reviewed fails the task (counted) without stopping the others."""
from __future__ import annotations

import json
import logging
import shutil

import pytest

from evolution.promoter import PromoterConfig
from manager import go_no_go as G
from manager import metrics, tasks
from manager import promotions as P
from manager.celery_app import DAY3_REVIEW_ENTRY, beat_schedule
from manager.settings import Settings
from manager.store import SQLiteStore
from tests.helpers import BINANCE
from tests.promotion_campaign import BEST, RELAXED, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

T0 = "2026-01-05T09:00:00+00:00"


class User:
    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("go_no_go") / "s.db"
    with SQLiteStore(path) as s:
        report = run(s)
    return path, report


@pytest.fixture
def db(stored, tmp_path):
    shutil.copy(stored[0], tmp_path / "s.db")
    return tmp_path / "s.db"


@pytest.fixture
def store(db):
    with SQLiteStore(db) as s:
        yield s


def test_the_beat_runs_it_daily_after_the_scoring():
    entry = beat_schedule(Settings())[DAY3_REVIEW_ENTRY]
    assert entry["task"] == "cohortlab.day3_review"
    assert entry["schedule"].hour == {0} and entry["schedule"].minute == {45}
    assert tasks.app.conf.beat_schedule[DAY3_REVIEW_ENTRY]["task"] == "cohortlab.day3_review"


def test_ranking_day():
    days = [{"date": f"2018-01-1{i}"} for i in range(4, 8)]
    assert G.ranking_day({"report": {"days": days, "rule": {"ranked_on": "2018-01-16"}}}) == 3
    assert G.ranking_day({"report": {"days": days}}) == 4
    assert G.ranking_day({"report": {"days": []}}) is None


def test_a_go_opens_one_request_by_system_and_is_decided_once(store, stored, caplog):
    cid = stored[1]["campaign_id"]
    seen = []
    with caplog.at_level(logging.INFO, logger="cohortlab.go_no_go"):
        out = G.review_campaigns(store, T0, config=RELAXED, notify=lambda kind, d: seen.append((kind, d)))
    pid = out["opened"][cid]
    doc = store.get_promotion(pid)
    assert doc["status"] == "proposed" and doc["agent_id"] == BEST and doc["day"] == 3
    assert doc["proposed_by"]["user"] == "system" and doc["created_at"].startswith("2026-01-05T09:00")
    assert doc["expires_at"].startswith("2026-01-06T09:00")  # the 24 h approval window from the review
    # the same checklist as a person's proposal would carry
    assert doc["checklist_hash"] == P.readiness(store, stored[1]["days"][2]["run_id"], config=RELAXED)["checklist_hash"]
    camp = store.get_campaign(cid)
    assert camp["go_no_go"]["3"]["decision"] == "go" and camp["go_no_go"]["3"]["promotion_id"] == pid
    assert camp["report"] == stored[1]  # only go_no_go was added
    assert [k for k, _ in seen] == ["go"] and seen[0][1]["promotion_id"] == pid
    assert any(pid in r.getMessage() and "awaiting ops approval" in r.getMessage() for r in caplog.records)
    events = [e for e in store.list_audit(limit=100) if e["kind"] == "promotion.go_no_go"]
    assert len(events) == 1 and events[0]["details"]["promotion_id"] == pid
    again = G.review_campaigns(store, T0, config=RELAXED)
    assert again["opened"] == {} and cid not in again["no_go"]
    assert store.count_promotions(campaign_id=cid) == 1
    # the approvers take it from there: ops then risk
    signed = P.approve(store, User("olga", "ops"), pid, "checked the day", doc["checklist_hash"], now=T0)
    assert signed["status"] == "ops_approved"


def test_a_no_go_records_the_blocking_rails_with_their_figures(store, stored):
    cid = stored[1]["campaign_id"]
    out = G.review_campaigns(store, T0)  # default rails: the cycle's PBO 0.65 > 0.5 blocks
    assert out["opened"] == {}
    blocking = out["no_go"][cid]
    pbo = next(b for b in blocking if b.startswith("pbo"))
    review = P.review_campaign_day(store, cid, 3, PromoterConfig())
    figure = next(c["figure"] for c in review.blocking if c["name"] == "pbo")
    assert f"= {figure} " in pbo and "needs" in pbo
    assert store.get_campaign(cid)["go_no_go"]["3"]["blocking"] == blocking
    assert store.count_promotions(campaign_id=cid) == 0
    assert G.review_campaigns(store, T0, config=RELAXED)["opened"] == {}  # decided once


def test_a_day_proposed_by_hand_is_left_alone(store, stored):
    cid = stored[1]["campaign_id"]
    mine = P.propose(store, User("olga", "ops"), cid, 3, notes="mine", config=RELAXED, now=T0)
    out = G.review_campaigns(store, T0, config=RELAXED)
    assert out["manual"] == [cid] and out["opened"] == {}
    assert [d["promotion_id"] for d in store.list_promotions(campaign_id=cid)] == [mine["promotion_id"]]


def test_before_day_3_a_campaign_waits(store, stored):
    cid = stored[1]["campaign_id"]
    camp = store.get_campaign(cid)
    two = {**camp, "campaign_id": "camp-two-days",
           "report": {**camp["report"], "days": camp["report"]["days"][:2],
                      "rule": {**camp["report"]["rule"], "ranked_on": camp["report"]["days"][1]["date"]}}}
    store.save_campaign(two)
    out = G.review_campaigns(store, T0, config=RELAXED)
    assert out["waiting"] == {"camp-two-days": "ranking day 2 < 3"}
    assert cid in out["opened"]


def test_overdue_requests_expire_in_the_same_pass(store, stored):
    cid = stored[1]["campaign_id"]
    pid = G.review_campaigns(store, T0, config=RELAXED)["opened"][cid]
    later = G.review_campaigns(store, "2026-01-06T09:00:01+00:00", config=RELAXED)
    assert later["expired"] == [pid] and store.get_promotion(pid)["status"] == "expired"
    assert later["opened"] == {}  # the day was decided; an operator may re-propose by hand


def test_a_campaign_that_cannot_be_reviewed_fails_the_task_and_the_others_are_reviewed(db, stored, monkeypatch):
    cid = stored[1]["campaign_id"]
    with SQLiteStore(db) as s:
        camp = s.get_campaign(cid)
        s.save_campaign({**camp, "campaign_id": "camp-gone", "source": {**camp["source"], "data": str(db.parent / "gone")}})
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{db}")
    monkeypatch.setenv("COHORTLAB_PROMOTER", json.dumps(RELAXED.to_dict()))
    name = "cohortlab.day3_review"
    before = metrics.registry().get_sample_value("cohortlab_scheduler_failures_total", {"task": name}) or 0.0
    res = tasks.day3_review.apply(kwargs={"now": T0}, throw=False)
    assert res.failed() and isinstance(res.result, tasks.Day3ReviewError) and "camp-gone" in str(res.result)
    assert metrics.registry().get_sample_value("cohortlab_scheduler_failures_total", {"task": name}) == before + 1
    with SQLiteStore(db) as s:
        assert s.get_campaign(cid)["go_no_go"]["3"]["decision"] == "go"  # the other campaign was reviewed
        assert "go_no_go" not in s.get_campaign("camp-gone")  # retried next pass
        assert s.count_promotions(campaign_id=cid) == 1
