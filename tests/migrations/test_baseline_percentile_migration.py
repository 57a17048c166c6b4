"""Migration 0007: the cohort listing's ``baseline_percentile`` backfilled from the stored
summaries of runs written before it, on both adapters; idempotent."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

from migrations import apply_migrations
from tests.manager.store.builders import T0, cohort_at, cohort_header, cohort_summary, complete_cohort
from tests.migrations.targets import Target

ID = "0007_baseline_percentile"


def _as_before_0007(target: Target, store: Any) -> Any:
    """No ``baseline_percentile`` column / field and no 0007 record, as before this version."""
    if target.kind == "sqlite":
        path = store.path
        store.close()
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("ALTER TABLE sim_runs_intraday DROP COLUMN baseline_percentile")
            conn.execute(f"DELETE FROM schema_migrations WHERE id = '{ID}'")
        conn.execute("PRAGMA user_version = 6")
        conn.close()
        return target.open()

    async def strip(db: Any) -> None:
        await db.sim_runs_intraday.update_many({}, {"$unset": {"baseline_percentile": ""}})
        await db.schema_migrations.delete_one({"_id": ID})

    store.run_async(strip)
    return store


def test_baseline_percentile_is_backfilled_from_stored_summaries(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    with_baselines = {**cohort_summary("2025-03-01T00:00:00Z"), "baselines": {"random": {"percentile": 35.0}}}
    cohort_at(store, T0 + timedelta(minutes=1), "with", header=cohort_header("2025-03-01", 1000.0, agents=3))
    complete_cohort(store, "with", with_baselines)
    cohort_at(store, T0 + timedelta(minutes=2), "without", header=cohort_header("2025-03-01", 1000.0, agents=3))
    complete_cohort(store, "without", cohort_summary("2025-03-01T00:00:00Z"))
    cohort_at(store, T0 + timedelta(minutes=3), "running", header=cohort_header("2025-03-01", 1000.0))
    listing = store.list_cohort_summaries()
    store = _as_before_0007(target, store)
    assert apply_migrations(store) == [ID]
    after = store.list_cohort_summaries()
    assert after == listing
    assert {r["run_id"]: r["baseline_percentile"] for r in after["items"]} == {
        "with": 35.0, "without": None, "running": None}
    assert apply_migrations(store) == []  # nothing pending, nothing changed
    assert store.list_cohort_summaries() == after
    store.close()
