"""Migration 0005: the typed run header of runs stored before it, backfilled from their
old documents on both adapters; the listing reads it afterwards."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from migrations import apply_migrations
from tests.manager.store.builders import (
    LEGACY_HEADERS,
    T0,
    assert_legacy_listing,
    cohort_at,
    cohort_header,
    make_legacy_runs,
    mongo_docs,
)
from tests.migrations.targets import Target

_HEADER_COLUMNS = ("window_start", "window_end", "market", "seeded_from")


def _as_before_0005(target: Target, store: Any, document_headers: dict[str, dict[str, Any]]) -> Any:
    """Turn the database into what cohortlab left before 0005: no header fields (the
    listing's date, bankroll, quote, agents empty), no 0005 record; the runs of
    ``document_headers`` carry that header as a key of their document, as the
    runner wrote it then. Returns the store to use afterwards."""
    if target.kind == "sqlite":
        path = store.path
        store.close()
        conn = sqlite3.connect(path)
        with conn:
            for name in _HEADER_COLUMNS:
                conn.execute(f"ALTER TABLE sim_runs_intraday DROP COLUMN {name}")
            conn.execute("UPDATE sim_runs_intraday SET date = NULL, bankroll = NULL, quote = NULL, "
                         "agents = NULL")
            for run_id, header in document_headers.items():
                conn.execute("UPDATE sim_runs_intraday SET doc = json_set(doc, '$.header', json(?)) "
                             "WHERE run_id = ?", (json.dumps(header), run_id))
            conn.execute("DELETE FROM schema_migrations WHERE id = '0005_run_header'")
        conn.execute("PRAGMA user_version = 4")
        conn.close()
        return target.open()

    async def strip(db: Any) -> None:
        await db.sim_runs_intraday.update_many({}, {"$unset": dict.fromkeys(
            ["header", "date", "day", "bankroll", "quote", "agents"], "")})
        for run_id, header in document_headers.items():
            await db.sim_runs_intraday.update_one({"_id": run_id}, {"$set": {"doc.header": header}})
        await db.schema_migrations.delete_one({"_id": "0005_run_header"})

    store.run_async(strip)
    return store


def _headers(store: Any, run_ids: Any) -> dict[str, Any]:
    return {run_id: store.get_run(run_id)["header"] for run_id in run_ids}


def test_run_header_migration_backfills_runs_stored_without_one(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    make_legacy_runs(store)  # documents as cohortlab wrote them before the header
    before = {run_id: store.get_run(run_id) for run_id in LEGACY_HEADERS}
    assert {run["header"]["day"] for run in before.values()} == {None}
    store = _as_before_0005(target, store, {})

    assert apply_migrations(store) == ["0005_run_header"]
    assert _headers(store, LEGACY_HEADERS) == LEGACY_HEADERS
    for run_id, run in before.items():  # nothing else of the runs changed
        assert {**store.get_run(run_id), "header": None} == {**run, "header": None}
    assert_legacy_listing(store)

    listing = store.list_cohort_summaries()
    assert apply_migrations(store) == []
    _forget_0005(target, store)
    assert apply_migrations(store) == ["0005_run_header"]  # applied again: nothing changes
    assert _headers(store, LEGACY_HEADERS) == LEGACY_HEADERS
    assert store.list_cohort_summaries() == listing


def _forget_0005(target: Target, store: Any) -> None:
    """Delete the record of 0005, so that it is pending again."""
    if target.kind == "mongo":
        store.run_async(lambda db: db.schema_migrations.delete_one({"_id": "0005_run_header"}))
        return
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("DELETE FROM schema_migrations WHERE id = '0005_run_header'")
    conn.close()


def test_a_header_the_runner_stored_in_the_document_is_kept(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    written = cohort_header("2025-03-07T06:00:00Z", 2500.0, quote="USD", agents=30,
                            market="coinbase-1m|1m|USD", seeded_from="hall_of_fame")
    broken = {**written, "bankroll": "lots"}  # not a valid header: derived like any old run
    cohort_at(store, T0, "runner", config={"request": {"bankroll": 1.0}})
    cohort_at(store, T0, "broken", config={"request": {"bankroll": 3.0, "bars": {"start": "2025-03-08"}}})
    store = _as_before_0005(target, store, {"runner": written, "broken": broken})

    assert apply_migrations(store) == ["0005_run_header"]
    assert store.get_run("runner")["header"] == written
    assert store.get_run("broken")["header"]["bankroll"] == 3.0
    assert store.get_run("broken")["header"]["day"] == "2025-03-08"
    assert [r["run_id"] for r in store.list_cohort_summaries(bankroll=2500)["items"]] == ["runner"]
    if target.kind == "sqlite":  # the document keeps no copy of it
        conn = sqlite3.connect(store.path)
        docs = [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM sim_runs_intraday")]
        conn.close()
    else:
        docs = [row["doc"] for row in mongo_docs(store, "sim_runs_intraday")]
    assert docs and not any("header" in doc for doc in docs)
