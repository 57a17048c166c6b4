"""Migration 0002: indexes of the other collections the MongoDB adapter uses.

MongoDB (collections created if missing):

- ``agent_results``: ``(run_id, rank)`` and ``(run_id, agent_id)`` unique;
- ``trades``: ``(run_id, position)`` unique, ``(run_id, agent_id, position)``;
- ``equity_curves``: ``(run_id, name, chunk)`` unique;
- ``genomes`` (hall of fame): ``version`` unique (save order);
- ``populations``: ``seq`` unique (save order), ``(mode, seq)``;
- ``knowledge``: ``(created_at, cycle_id)``, ``(mode, created_at, cycle_id)``;
- ``search_trials``: ``(study, index)`` unique (gapless numbering per study);
- ``search_studies``: keyed by ``_id`` only.

SQLite: nothing to do -- :class:`~manager.store.sqlite.SQLiteStore` creates these
tables and keys itself when it opens a file; the migration is only recorded.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Nothing: the SQLite adapter's own schema has these keys."""


async def apply_mongo(db: "AsyncDatabase") -> None:
    from pymongo import ASCENDING as UP
    from pymongo import IndexModel

    from manager.store import mongo as m

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
