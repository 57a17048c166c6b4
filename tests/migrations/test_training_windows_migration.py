"""Migration 0006: the training windows of learning artefacts stored before it,
backfilled from what their documents recorded, indexed, and idempotent (SQLite
and MongoDB)."""

from __future__ import annotations

import sqlite3
from typing import Any

from migrations import apply_migrations
from migrations.m0006_training_windows import legacy_window
from tests.migrations.targets import Target

M = "binance-5m|5m|BTC"
ID = "0006_training_windows"
_COLUMNS = {"populations": ("train_start", "train_end"), "genomes": ("train_start", "train_end"),
            "knowledge": ("market", "train_start", "train_end", "data_end"),
            "search_studies": ("market", "train_end")}
_INDEXES = ("populations_by_training", "genomes_by_training", "knowledge_by_training",
            "search_studies_by_training")


def _old_artefacts(store: Any) -> None:
    """What cohortlab stored before 0006: windows only as text in the documents."""
    store.save_population("daily-20180115T0000-aa", [{"g": 1}], {
        "mode": "daily", "market": M, "train": "[2018-01-12T00:00:00Z, 2018-01-15T00:00:00Z)",
        "validation": "[2018-01-15T00:00:00Z, 2018-01-16T00:00:00Z)"})
    store.save_population("daily-odd", [{"g": 2}], {"mode": "daily", "market": M, "train": "garbage"})
    store.save_hall_of_fame([{"g": 1}], source="daily-20180115T0000-aa", market=M)
    store.save_hall_of_fame([{"g": 9}], source="run-1", market=M)  # not a cycle: stays unknown
    store.save_knowledge({"cycle_id": "daily-20180115T0000-aa", "mode": "daily",
                          "train": {"start": "2018-01-12 00:00:00+00:00", "end": "2018-01-15 00:00:00+00:00"},
                          "validation": {"start": "2018-01-15 00:00:00+00:00",
                                         "end": "2018-01-16 00:00:00+00:00"}})
    store.save_study_meta("s1", {"market": M, "train_end": "2018-01-15T00:00:00Z"})


def _as_before_0006(target: Target, store: Any) -> Any:
    """Drop the columns / fields and indexes of 0006 and its record."""
    if target.kind == "sqlite":
        path = store.path
        store.close()
        conn = sqlite3.connect(path)
        with conn:
            for index in _INDEXES:
                conn.execute(f"DROP INDEX {index}")
            for table, columns in _COLUMNS.items():
                for column in columns:
                    conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
            conn.execute("DELETE FROM schema_migrations WHERE id = ?", (ID,))
        conn.execute("PRAGMA user_version = 5")
        conn.close()
        return target.open()

    async def strip(db: Any) -> None:
        for name, fields in (("populations", _COLUMNS["populations"]), ("genomes", _COLUMNS["genomes"]),
                             ("knowledge", _COLUMNS["knowledge"]), ("search_studies", _COLUMNS["search_studies"])):
            await db[name].update_many({}, {"$unset": dict.fromkeys(fields, "")})
        for index in _INDEXES:
            coll = index.partition("_by_")[0]
            try:
                await db[coll].drop_index(index)
            except Exception:  # nx-27017 ignores index names: drop by key pattern below
                pass
        await db.schema_migrations.delete_one({"_id": ID})

    store.run_async(strip)
    return store


def _forget(target: Target, store: Any) -> None:
    if target.kind == "sqlite":
        conn = sqlite3.connect(store.path)
        with conn:
            conn.execute("DELETE FROM schema_migrations WHERE id = ?", (ID,))
        conn.close()
    else:
        store.run_async(lambda db: db.schema_migrations.delete_one({"_id": ID}))


def _seen(store: Any) -> dict[str, Any]:
    t = "2018-01-15T00:00:00Z"
    return {
        "population": (store.latest_population(market=M, trained_by=t) or {}).get("cycle_id"),
        "population_meta": store.get_population("daily-20180115T0000-aa")["meta"],
        "hof": store.latest_hall_of_fame(market=M, trained_by=t),
        "hof_early": store.latest_hall_of_fame(market=M, trained_by="2018-01-14T00:00:00Z"),
        "knowledge_15": [r["cycle_id"] for r in store.list_knowledge(market=M, trained_by=t)],
        "knowledge_16": [r["cycle_id"] for r in store.list_knowledge(market=M, trained_by="2018-01-16T00:00:00Z")],
        "studies": [s["study"] for s in store.list_studies(market=M, trained_by=t)],
    }


def test_0006_backfills_windows_and_is_idempotent(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    _old_artefacts(store)
    store = _as_before_0006(target, store)
    assert apply_migrations(store) == [ID]
    seen = _seen(store)
    assert seen == {
        "population": "daily-20180115T0000-aa",  # "daily-odd" has no readable window: never matched
        "population_meta": {"mode": "daily", "market": M,
                            "train": "[2018-01-12T00:00:00Z, 2018-01-15T00:00:00Z)",
                            "validation": "[2018-01-15T00:00:00Z, 2018-01-16T00:00:00Z)"},
        "hof": [{"g": 1}],  # the cycle's version got its population's window; "run-1" stays unknown
        "hof_early": None,
        "knowledge_15": [],  # its out-of-sample figures reach the 16th
        "knowledge_16": ["daily-20180115T0000-aa"],
        "studies": ["s1"],
    }
    assert apply_migrations(store) == []  # nothing pending, nothing changed
    assert _seen(store) == seen
    _forget(target, store)  # the step itself applied again changes nothing either
    assert apply_migrations(store) == [ID]
    assert _seen(store) == seen


def test_0006_indexes(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    schema = target.schema(store)
    if target.kind == "sqlite":
        names = {row[1] for row in schema["objects"] if row[0] == "index"}
        assert set(_INDEXES) <= names
        return
    keys = {name: {tuple(i["key"]) for i in schema["indexes"][name].values()}
            for name in ("populations", "genomes", "knowledge", "search_studies")}
    assert (("market", 1), ("mode", 1), ("train_end", 1)) in keys["populations"]
    assert (("market", 1), ("train_end", 1)) in keys["genomes"]
    assert (("market", 1), ("data_end", 1)) in keys["knowledge"]
    assert (("market", 1), ("train_end", 1)) in keys["search_studies"]


def test_legacy_window_reads_both_old_forms_and_never_raises() -> None:
    assert legacy_window("[2018-01-12T00:00:00Z, 2018-01-15T00:00:00Z)") == (
        "2018-01-12T00:00:00.000000+00:00", "2018-01-15T00:00:00.000000+00:00")
    assert legacy_window({"start": "2018-01-12 00:00:00+00:00", "end": "2018-01-15 00:00:00+00:00"})[1] == \
        "2018-01-15T00:00:00.000000+00:00"
    for bad in (None, "", "garbage", "[x, y)", {"start": "2018-01-15T00:00:00Z", "end": "2018-01-12T00:00:00Z"},
                {"start": "2018-01-12T00:00:00"}, 5):
        assert legacy_window(bad) == (None, None)
