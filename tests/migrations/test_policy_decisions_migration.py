"""Migration 0009: the ``policy_decisions`` and ``kill_switch`` tables (SQLite) and the
``policy_decisions`` indexes (MongoDB), added to a database migrated up to 0008, on both
adapters; idempotent."""

from __future__ import annotations

import sqlite3
from typing import Any

from migrations import MIGRATIONS, apply_migrations
from migrations.m0009_policy_decisions import MIGRATION
from tests.migrations.targets import Target

ID = "0009_policy_decisions"


def _as_before_0009(target: Target, store: Any) -> Any:
    """No policy tables / collections and no 0009 record, as before this version."""
    if target.kind == "sqlite":
        path = store.path
        store.close()
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("DROP TABLE policy_decisions")
            conn.execute("DROP TABLE kill_switch")
            conn.execute(f"DELETE FROM schema_migrations WHERE id = '{ID}'")
        conn.execute("PRAGMA user_version = 8")
        conn.close()
        return target.open()

    async def strip(db: Any) -> None:
        await db.drop_collection("policy_decisions")
        await db.drop_collection("kill_switch")
        await db.schema_migrations.delete_one({"_id": ID})

    store.run_async(strip)
    return store


def _policy_schema(target: Target, store: Any) -> Any:
    schema = target.schema(store)
    if target.kind == "sqlite":
        return sorted(row for row in schema["objects"]
                      if row[2] in ("policy_decisions", "kill_switch"))
    return {name: {tuple(i["key"]): bool(i.get("unique"))
                   for i in schema["indexes"][name].values()}
            for name in ("policy_decisions", "kill_switch") if name in schema["indexes"]}


def test_0009_is_the_latest_registered_migration() -> None:
    assert MIGRATIONS[8] is MIGRATION and MIGRATION.id == ID


def test_policy_decisions_migration_creates_the_schema_once(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    store.record_audit({"kind": "launch", "actor": "a"})
    store = _as_before_0009(target, store)
    assert apply_migrations(store) == [ID]
    schema = _policy_schema(target, store)
    if target.kind == "sqlite":
        names = {(row[0], row[1]) for row in schema}
        assert {("table", "policy_decisions"), ("table", "kill_switch"),
                ("index", "policy_decisions_by_subject"), ("index", "policy_decisions_by_end"),
                ("trigger", "policy_decisions_append_only")} <= names
        sql = {row[1]: row[3] for row in schema}
        assert "UNIQUE (market, subject, period)" in sql["policy_decisions"]
        assert "(market, subject, period_end)" in sql["policy_decisions_by_subject"]
    else:
        keys = schema["policy_decisions"]
        assert keys[(("market", 1), ("subject", 1), ("period", 1))] is True
        assert keys[(("market", 1), ("subject", 1), ("period_end_us", 1))] is False
        assert keys[(("period_end_us", 1),)] is False
        assert "kill_switch" in schema
    # the store works on it, and older data is kept
    assert [e["kind"] for e in store.list_audit()] == ["launch"]
    assert store.kill_switch()["on"] is False
    store.set_kill_switch(True, actor="a", reason="r")
    assert store.kill_switch()["on"] is True
    # idempotent: nothing pending, and the step applied again changes nothing
    assert apply_migrations(store) == []
    if target.kind == "sqlite":
        store.run_transaction(MIGRATION.sqlite)
    else:
        store.run_async(MIGRATION.mongo)
    assert _policy_schema(target, store) == schema
    assert store.kill_switch()["on"] is True
    store.close()
