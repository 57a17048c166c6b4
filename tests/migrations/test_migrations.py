"""Schema migrations (migrations/): versioned, recorded in the database, idempotent,
the one schema scheme of both adapters.

Run against SQLite and against MongoDB (the nx-27017 server the tests start, or
``COHORTLAB_TEST_MONGODB_URL``); the ``target`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from manager.cli import app
from manager.store import SQLiteStore, Store, StoreError, open_store
from migrations import MIGRATIONS, apply_migrations, migration_status
from tests.helpers import ROOT
from tests.manager.store.builders import cohort_header, make_listing_runs, make_run, tables
from tests.migrations.targets import Target

# The released migrations, in order; later ones are appended (ALL_IDS / VERSIONS follow the
# package, so adding a migration does not break the tests that count them).
RELEASED = ["0001_intraday_indexes", "0002_store_indexes", "0003_cohort_listing",
            "0004_market_of_learning", "0005_run_header"]
ALL_IDS = [m.id for m in MIGRATIONS]
VERSIONS = [m.version for m in MIGRATIONS]
APPLIED = "applied: " + ", ".join(ALL_IDS)


def test_migrations_are_numbered_in_order() -> None:
    assert ALL_IDS[:len(RELEASED)] == RELEASED
    assert "0007_baseline_percentile" in ALL_IDS
    assert VERSIONS == list(range(1, len(MIGRATIONS) + 1))
    assert ALL_IDS == [f"{v:04d}_{m.name}" for v, m in zip(VERSIONS, MIGRATIONS)]
    assert all(m.name and m.description and callable(m.sqlite) and callable(m.mongo) for m in MIGRATIONS)


def _index_keys(schema: Any, collection: str) -> dict[tuple[tuple[str, int], ...], bool]:
    return {tuple(i["key"]): bool(i.get("unique")) for i in schema["indexes"][collection].values()}


def test_apply_twice_changes_nothing(target: Target) -> None:
    store = target.open()
    status = migration_status(store)
    assert [(s["id"], s["applied"], s["applied_at"]) for s in status] == [(i, False, None) for i in ALL_IDS]

    assert apply_migrations(store) == ALL_IDS
    first = target.schema(store)
    status = migration_status(store)
    assert [s["id"] for s in status] == ALL_IDS and all(s["applied"] and s["known"] for s in status)
    assert all(s["applied_at"] for s in status)

    assert apply_migrations(store) == []  # the second run applies nothing ...
    assert target.schema(store) == first  # ... and changes nothing: same indexes, same records
    again = target.open()  # also from another connection
    assert apply_migrations(again) == []
    assert target.schema(again) == first
    assert migration_status(again) == status


def test_first_migration_creates_the_intraday_indexes(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    schema = target.schema(store)
    if target.kind == "sqlite":
        indexes = {(row[2], row[1]) for row in schema["objects"] if row[0] == "index"}
        for table, name in [
            ("promotion_log", "promotion_log_by_agent"),
            ("promotion_log", "promotion_log_by_status"),
            ("sim_runs_intraday", "sim_runs_intraday_by_created"),
            ("audit_events", "audit_events_by_at"),
        ]:
            assert (table, name) in indexes
        tables = {row[1] for row in schema["objects"] if row[0] == "table"}
        assert {"promotion_log", "schema_migrations", "ledger", "cohort_summaries"} <= tables
        records = schema["records"]
        assert [r[0] for r in records] == ALL_IDS and [r[1] for r in records] == VERSIONS
        return
    assert {"sim_runs_intraday", "cohort_summaries", "ledger", "promotion_log", "audit_events",
            "schema_migrations"} <= set(schema["collections"])
    assert _index_keys(schema, "ledger")[(("run_id", 1), ("txn_id", 1))] is True
    assert _index_keys(schema, "ledger")[(("run_id", 1), ("seq", 1))] is True
    assert (("created_at", 1), ("run_id", 1)) in _index_keys(schema, "sim_runs_intraday")
    assert (("status", 1), ("created_at", 1), ("run_id", 1)) in _index_keys(schema, "sim_runs_intraday")
    assert _index_keys(schema, "cohort_summaries")[(("run_id", 1),)] is True
    assert (("at", 1), ("event_id", 1)) in _index_keys(schema, "audit_events")
    assert (("agent_id", 1), ("created_at", 1)) in _index_keys(schema, "promotion_log")
    assert (("status", 1), ("created_at", 1)) in _index_keys(schema, "promotion_log")
    assert [(r["_id"], r["version"], r["name"]) for r in schema["records"]] == [
        (m.id, m.version, m.name) for m in MIGRATIONS]


def test_migrations_keep_existing_data(target: Target) -> None:
    store = target.open()
    apply_migrations(store)  # the store needs its tables / indexes before it is used
    run_id = store.create_run(make_run(header=cohort_header("2025-03-01")))
    store.save_population("p1", [{"g": 1}], {"mode": "daily", "market": "m"})
    before = store.get_run(run_id)
    _forget_records(target, store)
    assert apply_migrations(store) == ALL_IDS  # every step again, over stored data
    assert store.get_run(run_id) == before
    assert store.latest_population(market="m")["cycle_id"] == "p1"


def _forget_records(target: Target, store: Any, ids: list[str] | None = None) -> None:
    """Delete the records of ``ids`` (default: all), so those migrations are pending again."""
    ids = ALL_IDS if ids is None else ids
    if target.kind == "sqlite":
        conn = sqlite3.connect(store.path)
        with conn:
            conn.executemany("DELETE FROM schema_migrations WHERE id = ?", [(i,) for i in ids])
        conn.close()
    else:
        store.run_async(lambda db: db.schema_migrations.delete_many({"_id": {"$in": ids}}))


# -- 0003: the cohort listing fields, backfilled -------------------------------------------


_METRICS = ("roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents")


def _mongo_runs(store: Any) -> list[dict[str, Any]]:
    async def read(db: Any) -> list[dict[str, Any]]:
        return await db.sim_runs_intraday.find({}).sort("_id", 1).to_list(None)

    return store.run_async(read)


async def _unlist_mongo(db: Any) -> None:
    """The runs as cohortlab left them before 0003 (their headers kept): no listing
    fields, indexes or record."""
    fields = ["date", "day", "created_us", "bankroll", "quote", "agents", *_METRICS]
    await db.sim_runs_intraday.update_many({}, {"$unset": dict.fromkeys(fields, "")})
    for name, info in (await db.sim_runs_intraday.index_information()).items():
        if any(key in ("created_us", "day") for key, _ in info["key"]):
            await db.sim_runs_intraday.drop_index(name)
    await db.schema_migrations.delete_one({"_id": "0003_cohort_listing"})


def _sqlite_metrics(path: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT run_id, {', '.join(_METRICS)} FROM sim_runs_intraday ORDER BY run_id").fetchall()
    finally:
        conn.close()


def test_cohort_listing_migration_backfills_runs_stored_before_it(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    make_listing_runs(store)  # completed, running, failed cohorts and a backtest
    listing = store.list_cohort_summaries()
    assert listing["total"] == 4 and listing["items"][-1]["roi"] == 0.0125
    if target.kind == "sqlite":
        path = store.path  # type: ignore[attr-defined]
        stored = _sqlite_metrics(path)
        assert stored[0] == ("bt",) + (None,) * 6  # a backtest has no metrics
        store.close()
        conn = sqlite3.connect(path, isolation_level=None)  # the file as it was before 0003
        conn.execute("DROP INDEX sim_runs_intraday_cohorts_by_date")
        conn.execute("DROP INDEX sim_runs_intraday_cohorts_by_bankroll")
        for name in _METRICS:
            conn.execute(f"ALTER TABLE sim_runs_intraday DROP COLUMN {name}")
        conn.execute("DELETE FROM schema_migrations WHERE id = '0003_cohort_listing'")
        conn.execute("BEGIN IMMEDIATE")  # the migration step itself
        MIGRATIONS[2].sqlite(conn)
        conn.execute("COMMIT")
        assert _sqlite_metrics(path) == stored
        conn.execute("BEGIN IMMEDIATE")  # again: nothing changes
        MIGRATIONS[2].sqlite(conn)
        conn.execute("COMMIT")
        conn.close()
        assert _sqlite_metrics(path) == stored
        again = target.open()  # the step is done; 0003 is only recorded
        assert apply_migrations(again) == ["0003_cohort_listing"]
        assert again.list_cohort_summaries() == listing
        assert _sqlite_metrics(path) == stored
        return
    stored = _mongo_runs(store)
    store.run_async(_unlist_mongo)
    assert _mongo_runs(store) != stored
    assert apply_migrations(store) == ["0003_cohort_listing"]
    assert _mongo_runs(store) == stored  # every field as the writes had stored it
    assert store.list_cohort_summaries() == listing
    assert store.list_cohort_summaries(date="2025-03-03")["total"] == 1
    first = target.schema(store)
    store.run_async(lambda db: db.schema_migrations.delete_one({"_id": "0003_cohort_listing"}))
    assert apply_migrations(store) == ["0003_cohort_listing"]  # applied again: no run changes
    assert _mongo_runs(store) == stored
    assert target.schema(store)["indexes"] == first["indexes"]


def test_concurrent_migrators_apply_each_migration_once(target: Target) -> None:
    stores = [target.open() for _ in range(3)]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(store: Store) -> None:
        try:
            barrier.wait()
            results.append(apply_migrations(store))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(i for r in results for i in r) == ALL_IDS  # every migration recorded once
    assert [s["applied"] for s in migration_status(stores[0])] == [True] * len(ALL_IDS)


def test_open_store_applies_pending_migrations_unless_told_not_to(target: Target) -> None:
    with open_store(target.url, migrate=False) as store:
        assert not any(s["applied"] for s in migration_status(store))
    with open_store(target.url) as store:
        assert all(s["applied"] for s in migration_status(store))


def test_status_lists_records_of_a_newer_cohortlab(target: Target) -> None:
    store = target.open()
    apply_migrations(store)
    if target.kind == "sqlite":
        conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
        with conn:
            conn.execute("INSERT INTO schema_migrations VALUES ('0099_future', 99, 'future', 'x')")
        conn.close()
    else:
        async def insert(db: Any) -> None:
            await db.schema_migrations.insert_one(
                {"_id": "0099_future", "version": 99, "name": "future", "applied_at": "x"})

        store.run_async(insert)
    status = migration_status(store)
    assert status[-1] == {"id": "0099_future", "version": 99, "name": "future", "applied": True,
                          "applied_at": "x", "known": False}
    assert apply_migrations(store) == []


def test_a_failing_sqlite_migration_records_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from migrations import m0002_store_indexes

    def broken(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error (test)")

    import migrations

    broken_migration = migrations.Migration(
        version=2, name="store_indexes", description="broken", sqlite=broken,
        mongo=m0002_store_indexes.MIGRATION.mongo)

    monkeypatch.setattr(migrations, "MIGRATIONS", (MIGRATIONS[0], broken_migration))
    with SQLiteStore(tmp_path / "f.db", migrate=False) as store:
        with pytest.raises(StoreError, match="disk I/O error"):
            apply_migrations(store)
        assert not any(s["applied"] for s in migration_status(store))
        assert tables(Path(store.path)) == set()  # 0001 was rolled back too
        monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS)
        assert apply_migrations(store) == ALL_IDS


# -- the command and the script -----------------------------------------------------------


def test_cli_migrate_and_status(target: Target) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "--status", "--store", target.url])
    assert result.exit_code == 0, result.output
    assert result.output.count("pending") == len(ALL_IDS)
    result = runner.invoke(app, ["migrate", "--store", target.url])
    assert result.exit_code == 0, result.output
    assert APPLIED in " ".join(result.output.split())  # the console may wrap the line
    result = runner.invoke(app, ["migrate", "--store", target.url])
    assert result.exit_code == 0, result.output
    assert "nothing to apply; the store is up to date" in result.output
    assert "pending" not in result.output and result.output.count("applied 20") == len(ALL_IDS)


def test_cli_migrate_reports_store_errors() -> None:
    result = CliRunner().invoke(app, ["migrate", "--store", "postgresql://u:s3cret@db/x"])
    assert result.exit_code == 2
    assert "unsupported scheme" in result.output and "s3cret" not in result.output


def test_script_calls_the_same_function(target: Target) -> None:
    script = ROOT / "scripts" / "migrate_intraday_indexes.py"
    run = [sys.executable, str(script), "--store", target.url]
    first = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert APPLIED in " ".join(first.stdout.split())
    second = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "nothing to apply" in second.stdout
    bad = subprocess.run([sys.executable, str(script), "--store", "redis://x"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "unsupported scheme" in bad.stderr
