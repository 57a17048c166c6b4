"""Contract of the policy port (:class:`manager.store.ports.policy.PolicyStore`) on every
adapter: policy decisions are append-only and idempotent per (market, subject, period),
listed and counted with exact filters, looked up point in time; the kill switch is
persisted and every change is an audit event."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from manager.store import InvalidDocument, SQLiteStore, Store, StoreError
from manager.store.documents import MAX_LIST_LIMIT, POLICY_DECISION_FIELDS
from tests.manager.store.builders import Opener

MARKET = "binance-5m|5m|BTC"
OTHER = "binance-5m|5m|ETH"
DAY1 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def _end(day: int) -> datetime:
    """End of evaluation period ``day`` (1 = 2025-03-01): midnight after it."""
    return DAY1 + timedelta(days=day)


def decision(day: int = 1, subject: str = "lineage:L1", market: str = MARKET,
             tier: float = 1.0, **overrides: Any) -> dict[str, Any]:
    period = (DAY1 + timedelta(days=day - 1)).strftime("%Y-%m-%d")
    doc: dict[str, Any] = {
        "decision_id": f"{market}|{subject}|{period}",
        "market": market,
        "subject": subject,
        "subject_kind": subject.split(":", 1)[0],
        "period": period,
        "period_end": _end(day).isoformat().replace("+00:00", "Z"),
        "previous_tier": 1.0,
        "tier": tier,
        "next_tier": tier * 1.5,
        "trigger": "ramp",
        "next_trigger": "sharpe>1 for 2 days",
        "rule": "ramp_on_profit",
        "rationale": {"sharpe": 1.4, "days": [1, 2]},
        "config": {"max_tier": 5.0},
        "source": f"run-{day}",
        "decided_at": (_end(day) + timedelta(minutes=5)).isoformat(),
    }
    doc.update(overrides)
    return doc


# -- recording ----------------------------------------------------------------------------


def test_record_stores_the_decision_canonically(open_same: Opener) -> None:
    store = open_same()
    stored, created = store.record_policy_decision(decision(1, tier=2, extra={"k": [1]}))
    assert created is True
    assert stored["period_end"] == "2025-03-02T00:00:00.000000+00:00"
    assert stored["decided_at"] == "2025-03-02T00:05:00.000000+00:00"
    assert stored["tier"] == 2.0 and isinstance(stored["tier"], float)
    assert stored["extra"] == {"k": [1]} and stored["recorded_at"]
    assert set(POLICY_DECISION_FIELDS) <= set(stored)
    assert open_same().list_policy_decisions() == [stored]  # persisted, as returned


def test_record_is_idempotent_and_never_overwrites(store: Store) -> None:
    first, created = store.record_policy_decision(decision(1, tier=2.0))
    assert created is True
    again, created = store.record_policy_decision(
        decision(1, tier=3.0, trigger="step_down", decision_id="another-id"))
    assert created is False
    assert again == first and again["tier"] == 2.0 and again["trigger"] == "ramp"
    assert store.list_policy_decisions() == [first]
    assert store.count_policy_decisions() == 1


def test_concurrent_records_of_one_key_store_it_once(open_same: Opener) -> None:
    stores = [open_same() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list[tuple[dict[str, Any], bool]] = []
    errors: list[BaseException] = []

    def work(store: Store, tier: float) -> None:
        try:
            barrier.wait()
            results.append(store.record_policy_decision(decision(1, tier=tier)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, float(i))) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(created for _, created in results) == 1
    (winner,) = [doc for doc, created in results if created]
    assert all(doc == winner for doc, _ in results)
    assert stores[0].list_policy_decisions() == [winner]


def test_a_decision_id_of_another_key_is_refused(store: Store) -> None:
    store.record_policy_decision(decision(1, decision_id="d1"))
    with pytest.raises(StoreError, match="d1"):
        store.record_policy_decision(decision(2, decision_id="d1"))
    assert store.count_policy_decisions() == 1


def test_the_port_has_no_update_path(store: Store) -> None:
    names = {n for n in dir(store) if "policy" in n or "decision" in n}
    assert names == {"record_policy_decision", "list_policy_decisions",
                     "count_policy_decisions", "policy_tiers"}


def test_sqlite_refuses_updates_of_decisions(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    store.record_policy_decision(decision(1))
    with pytest.raises(StoreError, match="append-only"):
        store.run_transaction(lambda conn: conn.execute("UPDATE policy_decisions SET tier = 9"))
    assert store.list_policy_decisions()[0]["tier"] == 1.0
    store.close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"market": ""}, r"policy decision\.market must be a non-empty str"),
        ({"decision_id": 7}, r"policy decision\.decision_id must be a non-empty str"),
        ({"subject_kind": "agent"}, r"policy decision\.subject_kind='agent' is not allowed"),
        ({"subject_kind": "parent"}, r"policy decision\.subject='lineage:L1' does not match"),
        ({"period": "2025-03-32"}, r"policy decision\.period="),
        ({"period_end": "2025-03-02T00:00:00"}, r"policy decision\.period_end=.*no UTC offset"),
        ({"decided_at": "yesterday"}, r"policy decision\.decided_at="),
        ({"tier": -0.5}, r"policy decision\.tier=-0\.5 is negative"),
        ({"next_tier": float("nan")}, r"policy decision\.next_tier=nan is not a finite"),
        ({"previous_tier": "1"}, r"policy decision\.previous_tier must be a finite number"),
        ({"tier": True}, r"policy decision\.tier must be a finite number"),
        ({"trigger": None}, r"policy decision\.trigger must be a non-empty str"),
        ({"next_trigger": 3}, r"policy decision\.next_trigger must be a str"),
        ({"rule": ""}, r"policy decision\.rule must be a non-empty str"),
        ({"rationale": []}, r"policy decision\.rationale must be a dict"),
        ({"config": {"x": {1, 2}}}, r"policy decision\.config\.x: set"),
        ({"source": ""}, r"policy decision\.source must be a non-empty str"),
    ],
)
def test_invalid_decisions_are_refused_naming_the_field(
        store: Store, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.record_policy_decision(decision(1, **overrides))
    assert store.count_policy_decisions() == 0


@pytest.mark.parametrize("field", POLICY_DECISION_FIELDS)
def test_every_field_is_required(store: Store, field: str) -> None:
    doc = decision(1)
    del doc[field]
    with pytest.raises(InvalidDocument, match=rf"policy decision\.{field} is missing"):
        store.record_policy_decision(doc)
    with pytest.raises(InvalidDocument, match="policy decision must be a dict"):
        store.record_policy_decision("tier 2")  # type: ignore[arg-type]


def test_optional_values_are_accepted(store: Store) -> None:
    stored, _ = store.record_policy_decision(
        decision(1, subject="parent:main", source=None, next_trigger="", tier=0))
    assert (stored["source"], stored["next_trigger"], stored["tier"]) == (None, "", 0.0)
    assert stored["subject_kind"] == "parent"


# -- listing and counting -----------------------------------------------------------------


def _fill(store: Store) -> None:
    for day in (1, 2, 3):
        store.record_policy_decision(decision(day, "lineage:L1", tier=float(day)))
        store.record_policy_decision(decision(day, "lineage:L2", tier=1.0, trigger="hold"))
        store.record_policy_decision(decision(day, "parent:main", tier=1.0, trigger="hold"))
    store.record_policy_decision(decision(2, "lineage:L1", market=OTHER))


def _keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["period"][-2:], r["subject"], r["market"][-3:]) for r in rows]


def test_list_is_newest_period_end_first_with_ties_by_subject(store: Store) -> None:
    _fill(store)
    rows = store.list_policy_decisions()
    assert _keys(rows) == [
        ("03", "lineage:L1", "BTC"), ("03", "lineage:L2", "BTC"), ("03", "parent:main", "BTC"),
        ("02", "lineage:L1", "BTC"), ("02", "lineage:L1", "ETH"), ("02", "lineage:L2", "BTC"),
        ("02", "parent:main", "BTC"),
        ("01", "lineage:L1", "BTC"), ("01", "lineage:L2", "BTC"), ("01", "parent:main", "BTC"),
    ]
    assert store.count_policy_decisions() == 10
    # pages neither skip nor repeat
    pages = [store.list_policy_decisions(limit=3, offset=o) for o in range(0, 12, 3)]
    assert [r for page in pages for r in page] == rows
    assert store.list_policy_decisions(offset=10) == []


def test_list_and_count_filter_exactly(store: Store) -> None:
    _fill(store)
    cases: list[tuple[dict[str, Any], int]] = [
        ({"market": OTHER}, 1),
        ({"market": MARKET}, 9),
        ({"market": "binance-5m|5m"}, 0),  # exact, not a prefix
        ({"subject": "lineage:L1"}, 4),
        ({"subject": "lineage"}, 0),
        ({"subject_kind": "parent"}, 3),
        ({"subject_kind": "lineage", "market": MARKET}, 6),
        ({"trigger": "hold"}, 6),
        ({"trigger": "ramp", "market": MARKET, "subject": "lineage:L1"}, 3),
        ({"source": "run-2"}, 4),  # day 2's three on MARKET and L1's on OTHER
        ({"source": "run-2", "market": MARKET}, 3),
        ({"source": "run-9"}, 0),
        # since inclusive, until exclusive, on period_end
        ({"since": _end(2)}, 7),
        ({"since": _end(2).isoformat()}, 7),
        ({"until": _end(2)}, 3),
        ({"since": "2025-03-03T00:00:00Z", "until": "2025-03-04T00:00:00+00:00"}, 4),
        ({"since": _end(3), "until": _end(3)}, 0),
        ({"since": _end(2) + timedelta(microseconds=1)}, 3),
        ({"until": _end(1) + timedelta(microseconds=1)}, 3),
        ({"since": _end(3) + timedelta(microseconds=1)}, 0),
    ]
    for filters, expected in cases:
        rows = store.list_policy_decisions(**filters, limit=MAX_LIST_LIMIT)
        assert len(rows) == expected, filters
        assert store.count_policy_decisions(**filters) == expected, filters
    rows = store.list_policy_decisions(subject="lineage:L1", market=MARKET)
    assert [r["tier"] for r in rows] == [3.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIST_LIMIT + 1}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"market": ""}, "market"),
        ({"subject": 3}, "subject"),
        ({"subject_kind": "agent"}, "subject_kind"),
        ({"trigger": ""}, "trigger"),
        ({"since": "2025-03-01T00:00:00"}, "since"),
        ({"until": "soon"}, "until"),
    ],
)
def test_list_refuses_bad_arguments(store: Store, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.list_policy_decisions(**kwargs)
    count_kwargs = {k: v for k, v in kwargs.items() if k not in ("limit", "offset")}
    if count_kwargs:
        with pytest.raises(InvalidDocument, match=message):
            store.count_policy_decisions(**count_kwargs)


# -- point in time ------------------------------------------------------------------------


def test_policy_tiers_is_point_in_time(store: Store) -> None:
    _fill(store)
    assert store.policy_tiers(MARKET, _end(1) - timedelta(microseconds=1)) == {}
    just_before = store.policy_tiers(MARKET, _end(2) - timedelta(microseconds=1))
    assert {d["period"] for d in just_before.values()} == {"2025-03-01"}
    # between the ends of day 2 and day 3: the day-2 decisions
    as_of = _end(2) + timedelta(hours=12)
    tiers = store.policy_tiers(MARKET, as_of)
    assert set(tiers) == {"lineage:L1", "lineage:L2", "parent:main"}
    assert {s: d["period"] for s, d in tiers.items()} == dict.fromkeys(tiers, "2025-03-02")
    assert tiers["lineage:L1"]["tier"] == 2.0 and tiers["lineage:L1"]["market"] == MARKET
    assert tiers == store.policy_tiers(MARKET, as_of.isoformat())  # str or datetime
    # period_end <= as_of: a decision counts from the moment its period ends
    assert store.policy_tiers(MARKET, _end(3))["lineage:L1"]["tier"] == 3.0
    assert store.policy_tiers(MARKET, "2025-03-04T00:59:59+01:00")["lineage:L1"]["tier"] == 2.0
    # a later decision never leaks into an earlier moment
    store.record_policy_decision(decision(4, "lineage:L1", tier=9.0))
    store.record_policy_decision(decision(4, "lineage:NEW", tier=9.0))
    assert store.policy_tiers(MARKET, as_of) == tiers
    assert store.policy_tiers(MARKET, _end(4))["lineage:NEW"]["tier"] == 9.0
    # markets never mix
    assert set(store.policy_tiers(OTHER, as_of)) == {"lineage:L1"}
    assert store.policy_tiers("binance-5m|5m|SOL", as_of) == {}


def test_policy_tiers_refuses_bad_arguments(store: Store) -> None:
    with pytest.raises(InvalidDocument, match="as_of"):
        store.policy_tiers(MARKET, "2025-03-02T00:00:00")  # naive
    with pytest.raises(InvalidDocument, match="as_of"):
        store.policy_tiers(MARKET, datetime(2025, 3, 2))
    with pytest.raises(InvalidDocument, match="market"):
        store.policy_tiers("", _end(1))


def test_sqlite_policy_tiers_reads_the_point_in_time_index(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "p.db")
    _fill(store)

    def plan(conn: sqlite3.Connection) -> str:
        rows = conn.execute(
            "EXPLAIN QUERY PLAN SELECT s.subject, (SELECT q.doc FROM policy_decisions AS q "
            "WHERE q.market = ?1 AND q.subject = s.subject AND q.period_end <= ?2 "
            "ORDER BY q.period_end DESC, q.period DESC LIMIT 1) FROM (SELECT DISTINCT subject "
            "FROM policy_decisions WHERE market = ?1 AND period_end <= ?2) AS s",
            (MARKET, "2025-03-03")).fetchall()
        return " | ".join(str(row[3]) for row in rows)

    shown = store.run_transaction(plan, write=False)
    assert "policy_decisions_by_subject" in shown and "SCAN policy_decisions" not in shown, shown
    store.close()


# -- kill switch -------------------------------------------------------------------------


def test_kill_switch_is_off_until_set(store: Store) -> None:
    assert store.kill_switch() == {"on": False, "actor": None, "reason": None, "at": None}
    assert store.kill_switch_history() == []


def test_kill_switch_round_trip_with_audit_events(open_same: Opener) -> None:
    store = open_same()
    on = store.set_kill_switch(True, actor="alice", reason="drawdown 12%",
                               at="2025-03-02T10:00:00Z")
    assert on == {"on": True, "actor": "alice", "reason": "drawdown 12%",
                  "at": "2025-03-02T10:00:00.000000+00:00"}
    assert open_same().kill_switch() == on  # persisted
    off = store.set_kill_switch(False, actor="bob", reason="reviewed",
                                at=datetime(2025, 3, 2, 12, tzinfo=timezone.utc))
    assert store.kill_switch() == off and off["on"] is False and off["actor"] == "bob"
    store.record_audit({"kind": "launch", "actor": "carol", "at": "2025-03-02T11:00:00Z"})
    events = store.list_audit()
    assert [(e["kind"], e["actor"], e["details"]) for e in events] == [
        ("kill_switch.off", "bob", {"reason": "reviewed"}),
        ("launch", "carol", {}),
        ("kill_switch.on", "alice", {"reason": "drawdown 12%"}),
    ]
    assert events[0]["at"] == "2025-03-02T12:00:00.000000+00:00"
    assert events[2]["at"] == "2025-03-02T10:00:00.000000+00:00"
    assert store.kill_switch_history() == [events[0], events[2]]
    assert store.kill_switch_history(limit=1) == [events[0]]


def test_kill_switch_default_time_is_now(store: Store) -> None:
    state = store.set_kill_switch(True, actor="ops", reason="manual")
    moment = datetime.fromisoformat(state["at"])
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(minutes=1)
    assert store.list_audit()[0]["at"] == state["at"]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((True,), {"actor": "a", "reason": ""}, "reason must be a non-empty str"),
        ((True,), {"actor": "a", "reason": None}, "reason must be a non-empty str"),
        ((True,), {"actor": "", "reason": "r"}, "actor must be a non-empty str"),
        (("on",), {"actor": "a", "reason": "r"}, "on must be a bool"),
        ((1,), {"actor": "a", "reason": "r"}, "on must be a bool"),
        ((True,), {"actor": "a", "reason": "r", "at": "2025-03-02T10:00:00"}, "no UTC offset"),
    ],
)
def test_kill_switch_refuses_bad_changes(
        store: Store, args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        store.set_kill_switch(*args, **kwargs)
    assert store.kill_switch()["on"] is False
    assert store.list_audit() == []
    with pytest.raises(InvalidDocument, match="limit"):
        store.kill_switch_history(limit=0)


def test_mongo_writes_a_kill_switch_event_left_pending_once(mongo: Any) -> None:
    """A change that failed after writing the state (its event still pending) is
    audited by the next read or change, exactly once."""
    from bson import ObjectId

    store = mongo()
    event_id = ObjectId()
    event = {"kind": "kill_switch.on", "actor": "alice", "at": "2025-03-02T10:00:00.000000+00:00",
             "details": {"reason": "crash"}}

    async def crashed_change(db: Any) -> None:
        await db.kill_switch.insert_one({
            "_id": "state", "on": True, "actor": "alice", "reason": "crash",
            "at": event["at"], "pending": event, "pending_id": str(event_id)})

    store.run_async(crashed_change)
    assert store.kill_switch()["on"] is True
    assert store.kill_switch()["reason"] == "crash"
    assert store.list_audit() == [event]
    store.set_kill_switch(False, actor="bob", reason="ok", at="2025-03-02T11:00:00Z")
    assert [e["kind"] for e in store.kill_switch_history()] == ["kill_switch.off", "kill_switch.on"]

    async def state(db: Any) -> Any:
        return await db.kill_switch.find_one({"_id": "state"})

    assert "pending" not in store.run_async(state)


def test_mongo_kill_switch_in_a_transaction(mongo: Any) -> None:
    """The transaction path (a replica set; on nx-27017 from one thread only)."""
    store = mongo(transactions=True)
    state = store.set_kill_switch(True, actor="alice", reason="halt", at="2025-03-02T10:00:00Z")
    assert mongo().kill_switch() == state
    assert [(e["kind"], e["details"]) for e in store.kill_switch_history()] == [
        ("kill_switch.on", {"reason": "halt"})]
