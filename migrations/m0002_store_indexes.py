"""Migration 0002: the learning tables (SQLite) and the indexes of the other collections.

MongoDB, the indexes of the other collections the adapter uses (created if missing):

- ``agent_results``: ``(run_id, rank)`` and ``(run_id, agent_id)`` unique;
- ``trades``: ``(run_id, position)`` unique, ``(run_id, agent_id, position)``;
- ``equity_curves``: ``(run_id, name, chunk)`` unique;
- ``genomes`` (hall of fame): ``version`` unique (save order);
- ``populations``: ``seq`` unique (save order), ``(mode, seq)``;
- ``knowledge``: ``(created_at, cycle_id)``, ``(mode, created_at, cycle_id)``;
- ``search_trials``: ``(study, index)`` unique (gapless numbering per study);
- ``search_studies``: keyed by ``_id`` only.

SQLite: the tables of the learning loop with these keys (what schema version 2
of the SQLite adapter added): ``populations`` (``seq`` autoincrement = save
order, ``cycle_id`` unique, index ``(mode, seq)``), ``knowledge`` (indexes
``(created_at, cycle_id)``, ``(mode, created_at, cycle_id)``),
``search_trials`` (primary key ``(study, idx)``) and ``search_studies``. The
other tables' keys come with 0001. Every statement is ``IF NOT EXISTS``.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase


# The learning tables as schema version 2 of the SQLite adapter created them.
_SQLITE = (
    """CREATE TABLE IF NOT EXISTS populations (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        cycle_id TEXT NOT NULL UNIQUE,
        saved_at TEXT NOT NULL,
        mode     TEXT,
        genomes  TEXT NOT NULL,
        meta     TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS populations_by_mode ON populations (mode, seq)""",
    """CREATE TABLE IF NOT EXISTS knowledge (
        cycle_id   TEXT PRIMARY KEY,
        mode       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        doc        TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS knowledge_by_created ON knowledge (created_at, cycle_id)""",
    """CREATE INDEX IF NOT EXISTS knowledge_by_mode ON knowledge (mode, created_at, cycle_id)""",
    """CREATE TABLE IF NOT EXISTS search_trials (
        study    TEXT NOT NULL,
        idx      INTEGER NOT NULL CHECK (idx >= 0),
        value    REAL NOT NULL,
        saved_at TEXT NOT NULL,
        doc      TEXT NOT NULL,
        PRIMARY KEY (study, idx)
    )""",
    """CREATE TABLE IF NOT EXISTS search_studies (
        study      TEXT PRIMARY KEY,
        meta       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create the learning tables and their indexes where missing."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the collections and indexes of results, hall of fame and learning."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import names as m

    await ensure_collection(db, m.AGENTS, [
        IndexModel([("run_id", UP), ("rank", UP)], name="agents_by_rank", unique=True),
        IndexModel([("run_id", UP), ("agent_id", UP)], name="agents_by_id", unique=True),
    ])
    await ensure_collection(db, m.TRADES, [
        IndexModel([("run_id", UP), ("position", UP)], name="trades_by_position", unique=True),
        IndexModel([("run_id", UP), ("agent_id", UP), ("position", UP)], name="trades_by_agent"),
    ])
    await ensure_collection(db, m.CURVES, [
        IndexModel([("run_id", UP), ("name", UP), ("chunk", UP)], name="curves_by_name", unique=True),
    ])
    await ensure_collection(db, m.HALL_OF_FAME, [
        IndexModel([("version", UP)], name="genomes_by_version", unique=True),
    ])
    await ensure_collection(db, m.POPULATIONS, [
        IndexModel([("seq", UP)], name="populations_by_seq", unique=True),
        IndexModel([("mode", UP), ("seq", UP)], name="populations_by_mode"),
    ])
    await ensure_collection(db, m.KNOWLEDGE, [
        IndexModel([("created_at", UP), ("cycle_id", UP)], name="knowledge_by_created"),
        IndexModel([("mode", UP), ("created_at", UP), ("cycle_id", UP)], name="knowledge_by_mode"),
    ])
    await ensure_collection(db, m.TRIALS, [
        IndexModel([("study", UP), ("index", UP)], name="trials_by_index", unique=True),
    ])
    await ensure_collection(db, m.STUDIES, [])


MIGRATION = Migration(
    version=2,
    name="store_indexes",
    description="indexes of agent results, trades, curves, hall of fame, populations, "
                "knowledge and search trials",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
