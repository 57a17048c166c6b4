"""The promotion use cases (:mod:`manager.promotions`) on a real campaign stored in
SQLite (:mod:`tests.promotion_campaign`): readiness, the approval chain with its
role and separation-of-duties rules, expiry, stale checklists, the read side,
and the lifecycle as a hypothesis state machine."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from manager import promotions as P
from manager.store import SQLiteStore
from tests.helpers import BINANCE
from tests.promotion_campaign import BEST, RELAXED, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class User:
    name: str
    role: str


OLGA, OTTO = User("olga", "ops"), User("otto", "ops")
RICK, RITA = User("rick", "risk"), User("rita", "risk")
ADA, VIC = User("ada", "admin"), User("vic", "viewer")
USERS = [OLGA, OTTO, RICK, RITA, ADA, VIC]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("promotions") / "s.db"
    with SQLiteStore(path) as s:
        report = run(s)
    return path, report


@pytest.fixture
def store(stored, tmp_path):
    import shutil

    path, _ = stored
    shutil.copy(path, tmp_path / "s.db")
    with SQLiteStore(tmp_path / "s.db") as s:
        yield s


@pytest.fixture
def cid(stored) -> str:
    return stored[1]["campaign_id"]


def test_campaign_is_stored(store, stored) -> None:
    _, report = stored
    camp = store.get_campaign(report["campaign_id"])
    assert camp["report"]["candidates"] == report["candidates"]
    assert camp["run_ids"] == [d["run_id"] for d in report["days"]]
    assert camp["market"] == "binance-5m|5m|BTC" and camp["source"]["symbols"] == ["ETH_BTC", "LTC_BTC", "XMR_BTC"]


def test_readiness(store, stored, cid) -> None:
    _, report = stored
    r = P.readiness(store, report["days"][2]["run_id"], config=RELAXED)
    assert r["ready"] and r["candidate"] == BEST and r["campaign_id"] == cid and r["day"] == 3
    assert r["next_step"]["action"] == "propose" and len(r["checklist_hash"]) == 64
    assert all(c["passed"] for c in r["checklist"]) and r["blocking"] == []
    # the policy context came from the store: a06's lineage has a tier in force
    assert next(c for c in r["checklist"] if c["name"] == "policy")["figure"] is not None
    blocked = P.readiness(store, report["days"][2]["run_id"])  # defaults: PBO blocks
    assert not blocked["ready"] and blocked["next_step"]["action"] == "blocked"
    assert "pbo" in blocked["next_step"]["detail"]
    with pytest.raises(P.ValidationError, match="opens after Day 3"):
        P.readiness(store, report["days"][1]["run_id"])
    with pytest.raises(P.PromotionNotFound):
        P.readiness(store, "no-such-run")


def test_happy_path_ops_proposes_and_approves_then_risk(store, cid) -> None:
    doc = P.propose(store, OLGA, cid, 3, notes="a06 passes everything", config=RELAXED, now=T0)
    assert doc["status"] == "proposed" and doc["agent_id"] == BEST
    assert doc["expires_at"].startswith("2026-01-06T09:00:00")
    h = doc["checklist_hash"]
    assert h == P.readiness(store, doc["run_id"], config=RELAXED)["checklist_hash"]
    doc = P.approve(store, OLGA, doc["promotion_id"], "ops ok", h, now=T0 + timedelta(hours=1))
    assert doc["status"] == "ops_approved"
    with pytest.raises(P.SeparationOfDuties):
        P.approve(store, User("olga", "risk"), doc["promotion_id"], "me again", h, now=T0 + timedelta(hours=2))
    doc = P.approve(store, RICK, doc["promotion_id"], "risk ok", h, now=T0 + timedelta(hours=2))
    assert doc["status"] == "risk_approved"
    signed = [(s["user"], s["role"], s["notes"], s["checklist_hash"]) for s in doc["steps"]]
    assert signed == [("olga", "ops", "ops ok", h), ("rick", "risk", "risk ok", h)]
    full = P.get_promotion(store, doc["promotion_id"])
    assert full["next_step"] == {"action": "deploy", "role": None, "detail": "queued for deployment"}
    assert [(r["from_status"], r["status"]) for r in full["log"]] == [
        (None, "proposed"), ("proposed", "ops_approved"), ("ops_approved", "risk_approved")]
    kinds = [e["kind"] for e in store.list_audit(10)]
    assert {"promotion.proposed", "promotion.ops_approved", "promotion.risk_approved"} <= set(kinds)
    with pytest.raises(P.StateConflict):
        P.approve(store, RITA, doc["promotion_id"], "again", h, now=T0 + timedelta(hours=3))
    page = P.list_promotions(store, status="risk_approved")
    assert page["total"] == 1 and page["items"][0]["promotion_id"] == doc["promotion_id"]
    with pytest.raises(P.StateConflict, match="queued for deployment"):  # one promotion per campaign day
        P.propose(store, OLGA, cid, 3, notes="again", config=RELAXED, now=T0 + timedelta(hours=4))


def test_roles_notes_and_order(store, cid) -> None:
    with pytest.raises(P.RoleError):
        P.propose(store, RICK, cid, 3, notes="x", config=RELAXED)
    with pytest.raises(P.RoleError):
        P.propose(store, VIC, cid, 3, notes="x", config=RELAXED)
    with pytest.raises(P.ValidationError, match="notes"):
        P.propose(store, OLGA, cid, 3, notes="  ", config=RELAXED)
    with pytest.raises(P.ValidationError, match="fails guard rail"):
        P.propose(store, OLGA, cid, 3, agent_id="a02", notes="x", config=RELAXED)
    with pytest.raises(P.ValidationError, match="no candidate passes"):
        P.propose(store, OLGA, cid, 3, notes="x")  # default guard rails
    doc = P.propose(store, ADA, cid, 3, notes="x", config=RELAXED, now=T0)
    with pytest.raises(P.StateConflict, match="already"):
        P.propose(store, OLGA, cid, 3, notes="x", config=RELAXED, now=T0)
    h = doc["checklist_hash"]
    with pytest.raises(P.RoleError, match="needs role ops"):
        P.approve(store, RICK, doc["promotion_id"], "risk first?", h, now=T0)
    with pytest.raises(P.ValidationError, match="notes"):
        P.approve(store, OLGA, doc["promotion_id"], "", h, now=T0)
    with pytest.raises(P.RoleError):
        P.reject(store, VIC, doc["promotion_id"], "no", now=T0)
    doc = P.reject(store, RICK, doc["promotion_id"], "not today", now=T0)
    assert doc["status"] == "rejected"
    with pytest.raises(P.StateConflict):
        P.approve(store, OLGA, doc["promotion_id"], "late", h, now=T0)
    again = P.propose(store, OLGA, cid, 3, notes="re-proposed", config=RELAXED, now=T0)  # re-propose
    assert again["status"] == "proposed"


def test_proposer_may_not_sign_a_later_step(store, cid) -> None:
    chain = P.ApprovalChain(steps=(P.ApprovalStep("ops", "ops_approved"), P.ApprovalStep("admin", "admin_approved")))
    doc = P.propose(store, ADA, cid, 3, notes="x", config=RELAXED, chain=chain, now=T0)
    doc = P.approve(store, OTTO, doc["promotion_id"], "ok", doc["checklist_hash"], now=T0)
    with pytest.raises(P.SeparationOfDuties, match="proposed"):
        P.approve(store, ADA, doc["promotion_id"], "mine", doc["checklist_hash"], now=T0)
    strict = P.ApprovalChain(proposer_may_sign_first=False)
    P.reject(store, ADA, doc["promotion_id"], "reset", now=T0)
    doc = P.propose(store, OLGA, cid, 3, notes="x", config=RELAXED, chain=strict, now=T0)
    with pytest.raises(P.SeparationOfDuties):
        P.approve(store, OLGA, doc["promotion_id"], "mine", doc["checklist_hash"], now=T0)


def test_expiry(store, cid) -> None:
    doc = P.propose(store, OLGA, cid, 3, notes="x", config=RELAXED, now=T0)
    assert P.expire_due(store, T0 + timedelta(hours=23)) == []
    with pytest.raises(P.StateConflict, match="expired"):
        P.approve(store, OLGA, doc["promotion_id"], "too late", doc["checklist_hash"], now=T0 + timedelta(hours=25))
    assert P.get_promotion(store, doc["promotion_id"])["status"] == "expired"
    doc = P.propose(store, OLGA, cid, 3, notes="x", config=RELAXED, now=T0 + timedelta(hours=30),
                    chain=P.ApprovalChain(window_hours=2))
    assert P.expire_due(store, T0 + timedelta(hours=31)) == []
    assert P.expire_due(store, T0 + timedelta(hours=32)) == [doc["promotion_id"]]
    log = P.get_promotion(store, doc["promotion_id"])["log"]
    assert log[-1]["status"] == "expired" and log[-1]["actor"] == "system"


def test_stale_checklist_needs_reapproval(store, cid) -> None:
    doc = P.propose(store, OLGA, cid, 3, notes="x", config=RELAXED, now=T0)
    with pytest.raises(P.StaleChecklist, match="re-approval needed"):
        P.approve(store, OLGA, doc["promotion_id"], "ok", "0" * 64, now=T0)  # not what is current
    store.set_kill_switch(True, actor="rick", reason="drill")  # the figures change
    with pytest.raises(P.StaleChecklist, match="re-approval needed"):
        P.approve(store, OLGA, doc["promotion_id"], "ok", doc["checklist_hash"], now=T0)
    events = [e for e in store.list_audit(20) if e["kind"] == "promotion.reapproval_needed"]
    assert len(events) == 2 and events[0]["details"]["promotion_id"] == doc["promotion_id"]
    assert P.get_promotion(store, doc["promotion_id"])["status"] == "proposed"
    store.set_kill_switch(False, actor="rick", reason="drill over")
    assert P.approve(store, OLGA, doc["promotion_id"], "ok", doc["checklist_hash"], now=T0)["status"] == "ops_approved"


# -- the lifecycle as a state machine --------------------------------------------------------------

ALLOWED = {(None, "proposed"), ("proposed", "ops_approved"), ("ops_approved", "risk_approved"),
           ("proposed", "rejected"), ("ops_approved", "rejected"), ("proposed", "expired"),
           ("ops_approved", "expired")}


@pytest.fixture(scope="module")
def machine_store(stored, tmp_path_factory):
    import shutil

    path = tmp_path_factory.mktemp("machine") / "s.db"
    shutil.copy(stored[0], path)
    with SQLiteStore(path) as s:
        yield s, stored[1]["campaign_id"]


def test_lifecycle_state_machine(machine_store) -> None:
    """Random sequences of propose / approve (current or stale hash) / reject /
    time passing / expire by random users of every role never reach
    risk_approved without an ops signature then a risk signature by two
    distinct users; every logged transition is an allowed edge; closed
    requests never change."""
    store, cid = machine_store

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            P.expire_due(store, datetime(2100, 1, 1, tzinfo=timezone.utc))  # nothing open from earlier runs
            self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)
            self.ids: list[str] = []
            self.closed: dict[str, dict] = {}

        @rule(user=st.sampled_from(USERS))
        def propose(self, user) -> None:
            try:
                doc = P.propose(store, user, cid, 3, notes="n", config=RELAXED, now=self.now)
                self.ids.append(doc["promotion_id"])
            except (P.RoleError, P.StateConflict) as exc:
                assert isinstance(exc, P.RoleError) == (user.role not in ("ops", "admin"))

        @rule(user=st.sampled_from(USERS), stale=st.booleans(), which=st.integers(0, 3))
        def approve(self, user, stale, which) -> None:
            if not self.ids:
                return
            pid = self.ids[-1 - which % len(self.ids)]
            h = "f" * 64 if stale else store.get_promotion(pid)["checklist_hash"]
            try:
                P.approve(store, user, pid, "n", h, now=self.now)
                assert not stale
            except (P.RoleError, P.SeparationOfDuties, P.StateConflict, P.StaleChecklist):
                pass

        @rule(user=st.sampled_from(USERS), which=st.integers(0, 3))
        def reject(self, user, which) -> None:
            if not self.ids:
                return
            try:
                P.reject(store, user, self.ids[-1 - which % len(self.ids)], "n", now=self.now)
            except (P.RoleError, P.StateConflict):
                pass

        @rule(hours=st.integers(0, 30))
        def time_passes(self, hours) -> None:
            self.now += timedelta(hours=hours)
            P.expire_due(store, self.now)

        @invariant()
        def chain_holds(self) -> None:
            for pid in self.ids:
                doc = store.get_promotion(pid)
                approvals = [s for s in doc["steps"] if s.get("kind") == "approve"]
                if doc["status"] == "risk_approved":
                    assert [s["role"] for s in approvals] == ["ops", "risk"]
                    assert approvals[0]["user"] != approvals[1]["user"]
                    assert approvals[1]["user"] != doc["proposed_by"]["user"]
                assert len({s["user"] for s in approvals}) == len(approvals)
                log = store.promotion_log(pid)
                assert all((r["from_status"], r["status"]) in ALLOWED for r in log)
                if pid in self.closed:
                    assert doc == self.closed[pid]
                elif doc["status"] in ("risk_approved", "rejected", "expired"):
                    self.closed[pid] = doc

    Lifecycle.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None,
                                           suppress_health_check=list(HealthCheck))
    Lifecycle.TestCase().runTest()
