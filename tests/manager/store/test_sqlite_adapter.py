"""Facts particular to the SQLite adapter: pragmas, query plans, the schema coming
from the migrations only, and files written by older versions (schema versions 1
and 2) upgrading in place with their data."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from manager.store import RUN_HEADER_FIELDS, SQLiteStore, StoreError, open_store
from manager.store.schema import install_migrator
from migrations import MIGRATIONS, apply_migrations, migration_status
from tests.manager.store.builders import (
    LEGACY_HEADERS,
    assert_legacy_listing,
    make_legacy_runs,
    make_run,
    make_txn,
    raw,
    tables,
    user_version,
)

LATEST = MIGRATIONS[-1].version
"""The latest migration: what ``PRAGMA user_version`` of a migrated file says."""


def test_sqlite_schema_pragmas_and_idempotent_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # type: ignore[union-attr]
        run_id = store.create_run(make_run())
    with SQLiteStore(path) as store:  # migrating runs again, harmlessly
        assert store.get_run(run_id)["status"] == "running"
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "sim_runs_intraday",
        "cohort_summaries",
        "agent_results",
        "trades",
        "ledger",
        "equity_curves",
        "genomes",
        "audit_events",
        "populations",
        "knowledge",
        "search_trials",
        "search_studies",
        "schema_migrations",
    } <= tables
    columns = {r[1] for r in conn.execute("PRAGMA table_info(sim_runs_intraday)")}
    assert {"date", "window_start", "window_end", "bankroll", "quote", "agents", "data_label",
            "market", "seeded_from"} <= columns  # the typed header, as columns
    conn.close()


def test_sqlite_adapter_creates_no_tables_itself(tmp_path: Path) -> None:
    """The schema is the migrations': without migrating, a new file stays empty."""
    path = tmp_path / "bare.db"
    with SQLiteStore(path, migrate=False) as store:
        assert tables(path) == set()
        with pytest.raises(StoreError, match="no such table"):
            store.create_run(make_run())
        assert apply_migrations(store) == [m.id for m in MIGRATIONS]
        assert store.get_run(store.create_run(make_run()))["status"] == "running"


def test_opening_without_an_installed_migrator_is_a_clear_error(tmp_path: Path) -> None:
    previous = install_migrator(None)
    try:
        with pytest.raises(StoreError, match="no schema migrator is installed"):
            SQLiteStore(tmp_path / "x.db")
        with pytest.raises(StoreError, match="no schema migrator is installed"):
            open_store(f"sqlite:///{tmp_path / 'y.db'}")
        SQLiteStore(tmp_path / "z.db", migrate=False).close()
    finally:
        install_migrator(previous)


def test_sqlite_listing_uses_an_index_for_order(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = raw(path)
    for where, params in [
        ("", ()),
        ("WHERE (created_at, run_id) < (?, ?)", ("x", "y")),
        ("WHERE status = ? AND (created_at, run_id) < (?, ?)", ("running", "x", "y")),
        ("WHERE kind = ?", ("cohort",)),
    ]:
        plan = " | ".join(
            r["detail"]
            for r in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT run_id FROM sim_runs_intraday {where} "
                "ORDER BY created_at DESC, run_id DESC LIMIT 20",
                params,
            )
        )
        assert "INDEX sim_runs_intraday_by_" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    conn.close()


def test_sqlite_keeps_every_hall_of_fame_version_and_exact_amount_text(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.save_hall_of_fame([{"g": 1}], source="a")
        store.save_hall_of_fame([{"g": 2}], source="b")
        run_id = store.create_run(make_run())
        store.append_ledger(run_id, [make_txn(0, amount="0.10000000")])
    conn = raw(path)
    rows = conn.execute("SELECT source, saved_at FROM genomes ORDER BY version").fetchall()
    assert [r["source"] for r in rows] == ["a", "b"]
    assert all(datetime.fromisoformat(r["saved_at"]).tzinfo is not None for r in rows)
    (doc,) = conn.execute("SELECT doc FROM ledger").fetchone()
    assert '"amount":"0.10000000"' in doc and '"amount":"-0.10000000"' in doc
    conn.close()


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not sqlite, just some text that is long enough " * 20)
    with pytest.raises(StoreError, match="notes.db"):
        SQLiteStore(path)
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteStore(tmp_path / "missing-folder" / "x.db")


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {LATEST + 1}; .* up to {LATEST}"):
        SQLiteStore(path)
    assert tables(path) == set()  # nothing was written


# The version-1 schema exactly as cohortlab wrote it before the learning tables
# (schema version 2) existed: a frozen copy, so the upgrade test does not drift
# with the adapter's own DDL.
_V1_DDL = """
CREATE TABLE sim_runs_intraday (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('cohort', 'backtest')),
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    created_at TEXT NOT NULL, finished_at TEXT, data_label TEXT NOT NULL,
    reason TEXT, timings TEXT, doc TEXT NOT NULL
);
CREATE INDEX sim_runs_intraday_by_created ON sim_runs_intraday (created_at, run_id);
CREATE INDEX sim_runs_intraday_by_status ON sim_runs_intraday (status, created_at, run_id);
CREATE INDEX sim_runs_intraday_by_kind ON sim_runs_intraday (kind, created_at, run_id);
CREATE TABLE cohort_summaries (
    run_id TEXT PRIMARY KEY REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    summary TEXT NOT NULL
);
CREATE TABLE agent_results (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    rank INTEGER NOT NULL, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, rank), UNIQUE (run_id, agent_id)
);
CREATE TABLE trades (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    position INTEGER NOT NULL, agent_id TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX trades_by_agent ON trades (run_id, agent_id, position);
CREATE TABLE ledger (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    txn_id TEXT NOT NULL, seq INTEGER NOT NULL, bar INTEGER NOT NULL, time TEXT NOT NULL,
    kind TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (run_id, txn_id), UNIQUE (run_id, seq)
);
CREATE TABLE equity_curves (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    name TEXT NOT NULL, position INTEGER NOT NULL, dtype TEXT NOT NULL,
    shape TEXT NOT NULL, npy BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE genomes (
    version INTEGER PRIMARY KEY AUTOINCREMENT, saved_at TEXT NOT NULL,
    source TEXT NOT NULL, entries TEXT NOT NULL
);
CREATE TABLE audit_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL,
    actor TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at, event_id);
PRAGMA user_version = 1;
"""

_LEARNING_TABLES = {"populations", "knowledge", "search_trials", "search_studies"}


def _make_v1_database(path: Path) -> None:
    """A version-1 file holding one run with a ledger entry, a hall of fame and
    an audit event, written with raw SQL in the version-1 layout."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_V1_DDL)
    with conn:
        conn.execute(
            "INSERT INTO sim_runs_intraday (run_id, kind, status, created_at, data_label, doc) "
            "VALUES ('v1-run', 'cohort', 'running', '2025-01-02T03:04:05.000000+00:00', "
            "'binance:1m', ?)",
            ('{"config":{"agents":3},"genomes":[{"family":"sma_cross"}]}',),
        )
        txn = make_txn(0)
        conn.execute(
            "INSERT INTO ledger (run_id, txn_id, seq, bar, time, kind, doc) "
            "VALUES ('v1-run', ?, 0, 0, ?, 'fill', ?)",
            (txn["txn_id"], txn["time"], json.dumps(txn)),
        )
        conn.execute(
            "INSERT INTO genomes (saved_at, source, entries) VALUES "
            "('2025-01-02T00:00:00.000000+00:00', 'run:v1', '[{\"family\":\"sma_cross\"}]')"
        )
        conn.execute(
            "INSERT INTO audit_events (at, kind, actor, doc) VALUES "
            "('2025-01-02T00:00:00.000000+00:00', 'launch', 'alice', ?)",
            ('{"kind":"launch","actor":"alice","at":"2025-01-02T00:00:00.000000+00:00","details":{}}',),
        )
    conn.close()


def test_sqlite_upgrades_a_version_1_database_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _make_v1_database(path)
    assert user_version(path) == 1
    assert not _LEARNING_TABLES & tables(path)

    with SQLiteStore(path) as store:
        assert user_version(path) == LATEST
        assert _LEARNING_TABLES <= tables(path)
        run = store.get_run("v1-run")
        assert run["status"] == "running" and run["config"] == {"agents": 3}
        assert run["header"] == {**dict.fromkeys(RUN_HEADER_FIELDS), "agents": 1,
                                 "data_label": "binance:1m"}  # backfilled: one genome
        assert [t["txn_id"] for t in store.get_ledger("v1-run")] == ["t00000"]
        assert store.latest_hall_of_fame() == [{"family": "sma_cross"}]
        assert [e["kind"] for e in store.list_audit()] == ["launch"]
        # The old data keeps working and the new tables are usable.
        assert store.append_ledger("v1-run", [make_txn(1)]) == 1
        store.save_population("cy1", [{"g": 1}], {"mode": "daily"})
        store.save_knowledge({"cycle_id": "cy1", "mode": "daily"})
        assert store.save_trial("s", {"params": {"x": 1}, "value": 0.5}) == 0
        store.save_study_meta("s", {"space": {"x": [0, 1]}})

    with SQLiteStore(path) as store:  # the upgrade is idempotent
        assert user_version(path) == LATEST
        assert [s["applied"] for s in migration_status(store)] == [True] * len(MIGRATIONS)
        assert store.get_population("cy1")["genomes"] == [{"g": 1}]
        assert store.get_knowledge("cy1")["mode"] == "daily"
        assert store.save_trial("s", {"params": {"x": 2}, "value": 0.25}) == 1
        assert len(store.get_ledger("v1-run")) == 2
        assert store.get_study_meta("s") == {"space": {"x": [0, 1]}}
    conn = raw(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_sqlite_upgrade_by_two_openers_at_once(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _make_v1_database(path)
    errors: list[BaseException] = []
    stores: list[SQLiteStore] = []
    barrier = threading.Barrier(4)

    def open_it() -> None:
        try:
            barrier.wait()
            stores.append(SQLiteStore(path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert user_version(path) == LATEST
        assert stores[0].get_run("v1-run")["data_label"] == "binance:1m"
        assert [s.save_trial("race", {"params": {}, "value": 1.0}) for s in stores] == [0, 1, 2, 3]
    finally:
        for s in stores:
            s.close()


def test_sqlite_learning_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = raw(path)
    queries = [
        ("SELECT doc FROM knowledge ORDER BY created_at DESC, cycle_id DESC LIMIT 20", ()),
        (
            "SELECT doc FROM knowledge WHERE mode = ? AND (created_at, cycle_id) < (?, ?) "
            "ORDER BY created_at DESC, cycle_id DESC LIMIT 20",
            ("daily", "x", "y"),
        ),
        ("SELECT cycle_id FROM populations WHERE mode = ? ORDER BY seq DESC LIMIT 1", ("daily",)),
        ("SELECT doc FROM search_trials WHERE study = ? ORDER BY idx", ("s",)),
    ]
    for sql, params in queries:
        plan = " | ".join(r["detail"] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN" not in plan or "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    conn.close()


def test_sqlite_cohort_listing_reads_pages_and_totals_from_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = raw(path)
    filters = {"date": ("date = ?", "2025-03-01"), "bankroll": ("bankroll = ?", 1000.0),
               "created_after": ("created_at > ?", "2025-03-01T00:00:00.000000+00:00")}
    for names in [(), ("date",), ("bankroll",), ("created_after",), ("date", "created_after"),
                  ("bankroll", "created_after")]:
        condition = " AND ".join(["kind = 'cohort'", *(filters[n][0] for n in names)])
        params = tuple(filters[n][1] for n in names)
        for sql in (
            f"SELECT rowid FROM sim_runs_intraday WHERE {condition} "
            "ORDER BY created_at DESC, run_id DESC LIMIT 20 OFFSET 980",
            f"SELECT COUNT(*) FROM sim_runs_intraday WHERE {condition}",
        ):
            plan = " | ".join(r["detail"] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "USING COVERING INDEX sim_runs_intraday_" in plan, (names, plan)
            assert "TEMP B-TREE" not in plan, (names, plan)
    conn.close()


_LISTING_COLUMN_NAMES = ("date", "bankroll", "quote", "agents", "roi", "final_equity", "max_drawdown",
                         "peak_utilisation", "breaches", "failed_agents")
_HEADER_COLUMN_NAMES = ("window_start", "window_end", "market", "seeded_from")


def _strip_to_schema_2(path: Path) -> None:
    """Turn a current SQLite file into the version-2 layout as a cohortlab of that
    version left it: no listing, header or market columns, none of their indexes,
    only the records of migrations 0001 and 0002, ``user_version`` 2."""
    conn = sqlite3.connect(path)
    with conn:
        for index in ("sim_runs_intraday_cohorts_by_date", "sim_runs_intraday_cohorts_by_bankroll",
                      "populations_by_market", "genomes_by_market"):
            conn.execute(f"DROP INDEX {index}")
        for name in _LISTING_COLUMN_NAMES + _HEADER_COLUMN_NAMES:
            conn.execute(f"ALTER TABLE sim_runs_intraday DROP COLUMN {name}")
        # migration 0006 (training windows): its indexes, then its columns
        for index in ("populations_by_training", "genomes_by_training", "knowledge_by_training",
                      "search_studies_by_training"):
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        for table, columns in (("populations", ("train_start", "train_end")),
                               ("genomes", ("train_start", "train_end")),
                               ("knowledge", ("market", "train_start", "train_end", "data_end")),
                               ("search_studies", ("market", "train_end"))):
            for column in columns:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        for table in ("populations", "genomes"):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN market")
        conn.execute("DELETE FROM schema_migrations WHERE version > 2")
    conn.execute("PRAGMA user_version = 2")
    conn.close()


def _listing_columns(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            f"SELECT run_id, {', '.join(_LISTING_COLUMN_NAMES)} FROM sim_runs_intraday ORDER BY run_id"
        ).fetchall()
    finally:
        conn.close()


def test_sqlite_upgrade_of_a_version_2_file_backfills_the_listing_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with SQLiteStore(path) as store:
        make_legacy_runs(store)  # documents as a version-2 cohortlab wrote them
        store.save_population("p1", [{"g": 1}], {"mode": "daily", "market": "binance-5m|5m|BTC"})
    _strip_to_schema_2(path)
    assert user_version(path) == 2

    with SQLiteStore(path) as store:  # upgraded and backfilled on open
        assert user_version(path) == LATEST
        assert_legacy_listing(store)
        assert {run_id: store.get_run(run_id)["header"] for run_id in LEGACY_HEADERS} == LEGACY_HEADERS
        assert store.latest_population(market="binance-5m|5m|BTC")["cycle_id"] == "p1"
        listing = store.list_cohort_summaries()
    columns = _listing_columns(path)
    with SQLiteStore(path) as store:  # idempotent
        assert store.list_cohort_summaries() == listing
    assert _listing_columns(path) == columns
    conn = raw(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
