"""Migration 0001: indexes of the intraday run collections.

MongoDB (collections created if missing):

- ``sim_runs_intraday``: ``(created_at, run_id)`` -- the newest-first keyset
  listing --, and ``(status, created_at, run_id)``, ``(kind, created_at, run_id)``
  for the filtered listings;
- ``cohort_summaries``: ``run_id`` unique;
- ``ledger``: ``(run_id, txn_id)`` unique -- the idempotency key of ledger
  appends -- and ``(run_id, seq)`` unique (journal order);
- ``promotion_log``: ``(agent_id, created_at)`` and ``(status, created_at)``;
- ``audit_events``: ``(at, event_id)`` (newest first, ties in insertion order).

SQLite: the tables of the adapter already carry these keys (the ledger's primary
key is ``(run_id, txn_id)``, ``(run_id, seq)`` is unique); this creates the
``promotion_log`` table with its indexes and makes sure the listing indexes exist.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
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
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_created ON sim_runs_intraday (created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_status "
    "ON sim_runs_intraday (status, created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_kind ON sim_runs_intraday (kind, created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS audit_events_by_at ON audit_events (at, event_id)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    from pymongo import ASCENDING as UP
    from pymongo import IndexModel

    from manager.store.mongo import AUDIT, LEDGER, PROMOTIONS, RUNS, SUMMARIES

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
