"""Migration 0001: the intraday run tables (SQLite) and their indexes (both adapters).

SQLite: the tables of runs and their results, the hall of fame and audit events
(``sim_runs_intraday``, ``cohort_summaries``, ``agent_results``, ``trades``,
``ledger`` -- primary key ``(run_id, txn_id)``, the idempotency key of ledger
appends, and ``(run_id, seq)`` unique --, ``equity_curves``, ``genomes``,
``audit_events``; what schema version 1 of the SQLite adapter created), the
``promotion_log`` table, and the indexes: ``(created_at, run_id)`` -- the
newest-first keyset listing --, ``(status, created_at, run_id)``, ``(kind,
created_at, run_id)``, ``trades (run_id, agent_id, position)``,
``audit_events (at, event_id)``, ``promotion_log (agent_id, created_at)`` and
``(status, created_at)``. Every statement is ``IF NOT EXISTS``: on a file the
adapter created before the migrations owned the DDL it changes nothing but
what is missing.

MongoDB (collections created if missing):

- ``sim_runs_intraday``: ``(created_at, run_id)``, ``(status, created_at, run_id)``,
  ``(kind, created_at, run_id)``;
- ``cohort_summaries``: ``run_id`` unique;
- ``ledger``: ``(run_id, txn_id)`` unique -- the idempotency key of ledger
  appends -- and ``(run_id, seq)`` unique (journal order);
- ``promotion_log``: ``(agent_id, created_at)`` and ``(status, created_at)``;
- ``audit_events``: ``(at, event_id)`` (newest first, ties in insertion order).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

# The tables and indexes as schema version 1 of the SQLite adapter created them,
# then the promotion log.
_SQLITE = (
    """CREATE TABLE IF NOT EXISTS sim_runs_intraday (
        run_id      TEXT PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('cohort', 'backtest')),
        status      TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
        created_at  TEXT NOT NULL,
        finished_at TEXT,
        data_label  TEXT NOT NULL,
        reason      TEXT,
        timings     TEXT,
        doc         TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_created
        ON sim_runs_intraday (created_at, run_id)""",
    """CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_status
        ON sim_runs_intraday (status, created_at, run_id)""",
    """CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_kind
        ON sim_runs_intraday (kind, created_at, run_id)""",
    """CREATE TABLE IF NOT EXISTS cohort_summaries (
        run_id  TEXT PRIMARY KEY
                REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
        summary TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS agent_results (
        run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
        rank     INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        doc      TEXT NOT NULL,
        PRIMARY KEY (run_id, rank),
        UNIQUE (run_id, agent_id)
    )""",
    """CREATE TABLE IF NOT EXISTS trades (
        run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        doc      TEXT NOT NULL,
        PRIMARY KEY (run_id, position)
    )""",
    """CREATE INDEX IF NOT EXISTS trades_by_agent ON trades (run_id, agent_id, position)""",
    """CREATE TABLE IF NOT EXISTS ledger (
        run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
        txn_id TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        bar    INTEGER NOT NULL,
        time   TEXT NOT NULL,
        kind   TEXT NOT NULL,
        doc    TEXT NOT NULL,
        PRIMARY KEY (run_id, txn_id),
        UNIQUE (run_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS equity_curves (
        run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
        name     TEXT NOT NULL,
        position INTEGER NOT NULL,
        dtype    TEXT NOT NULL,
        shape    TEXT NOT NULL,
        npy      BLOB NOT NULL,
        PRIMARY KEY (run_id, name)
    )""",
    """CREATE TABLE IF NOT EXISTS genomes (
        version  INTEGER PRIMARY KEY AUTOINCREMENT,
        saved_at TEXT NOT NULL,
        source   TEXT NOT NULL,
        entries  TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS audit_events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        kind     TEXT NOT NULL,
        actor    TEXT NOT NULL,
        doc      TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS audit_events_by_at ON audit_events (at, event_id)""",
    """CREATE TABLE IF NOT EXISTS promotion_log (
        promotion_id TEXT PRIMARY KEY,
        agent_id     TEXT NOT NULL,
        run_id       TEXT,
        status       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        doc          TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS promotion_log_by_agent ON promotion_log (agent_id, created_at)",
    "CREATE INDEX IF NOT EXISTS promotion_log_by_status ON promotion_log (status, created_at)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create the run, result, ledger, hall-of-fame, audit and promotion tables
    and their indexes where missing."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the collections and indexes of runs, summaries, ledger, promotions and audit."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo.names import AUDIT, LEDGER, PROMOTIONS, RUNS, SUMMARIES

    await ensure_collection(db, RUNS, [
        IndexModel([("created_at", UP), ("run_id", UP)], name="runs_by_created"),
        IndexModel([("status", UP), ("created_at", UP), ("run_id", UP)], name="runs_by_status"),
        IndexModel([("kind", UP), ("created_at", UP), ("run_id", UP)], name="runs_by_kind"),
    ])
    await ensure_collection(db, SUMMARIES, [
        IndexModel([("run_id", UP)], name="summaries_by_run", unique=True),
    ])
    await ensure_collection(db, LEDGER, [
        IndexModel([("run_id", UP), ("txn_id", UP)], name="ledger_txn_unique", unique=True),
        IndexModel([("run_id", UP), ("seq", UP)], name="ledger_seq_unique", unique=True),
    ])
    await ensure_collection(db, PROMOTIONS, [
        IndexModel([("agent_id", UP), ("created_at", UP)], name="promotions_by_agent"),
        IndexModel([("status", UP), ("created_at", UP)], name="promotions_by_status"),
    ])
    await ensure_collection(db, AUDIT, [
        IndexModel([("at", UP), ("event_id", UP)], name="audit_by_at"),
    ])


MIGRATION = Migration(
    version=1,
    name="intraday_indexes",
    description="indexes of runs, summaries, ledger (unique run_id+txn_id), promotion log, audit",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
