"""Migration 0014: the assistant's intents and the knowledge base
(:class:`~manager.store.ports.intents.IntentStore`).

SQLite:

- ``intents``: ``intent_id`` PK, ``kind``, ``status``, ``created_at``, ``updated_at``,
  ``doc`` (JSON: inputs, prerequisites, feasibility, the daily plan, the reports);
  indexes ``(kind, status, created_at)`` and ``(created_at, intent_id)``.
- ``knowledge_entries``: ``entry_id`` PK, ``kind``, ``market``, ``created_at``, ``links``
  (JSON array of ``"<kind>:<id>"``), ``doc``; indexes ``(kind, created_at)``,
  ``(market, created_at)``, ``(created_at, entry_id)``. (``knowledge`` is the learning
  loop's record of past cycles, a different aggregate.)

MongoDB: ``intents`` (``(kind, status, created_us)``, ``(created_us)``) and
``knowledge_entries`` (``(kind, created_us)``, ``(market, created_us)``, ``(links)``
multikey, ``(created_us)``).

Idempotent: ``IF NOT EXISTS`` and indexes with fixed names and options.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS intents (
        intent_id   TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        doc         TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS intents_by_kind ON intents (kind, status, created_at)",
    "CREATE INDEX IF NOT EXISTS intents_by_created ON intents (created_at, intent_id)",
    """CREATE TABLE IF NOT EXISTS knowledge_entries (
        entry_id    TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        market      TEXT,
        created_at  TEXT NOT NULL,
        links       TEXT NOT NULL,
        doc         TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS knowledge_entries_by_kind ON knowledge_entries (kind, created_at)",
    "CREATE INDEX IF NOT EXISTS knowledge_entries_by_market ON knowledge_entries (market, created_at)",
    "CREATE INDEX IF NOT EXISTS knowledge_entries_by_created ON knowledge_entries (created_at, entry_id)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``intents`` and ``knowledge_entries`` with their indexes."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``intents`` and ``knowledge_entries`` with their indexes."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo.names import INTENTS, KNOWLEDGE_ENTRIES

    await ensure_collection(db, INTENTS, [
        IndexModel([("kind", UP), ("status", UP), ("created_us", UP)], name="intents_by_kind"),
        IndexModel([("created_us", UP)], name="intents_by_created"),
    ])
    await ensure_collection(db, KNOWLEDGE_ENTRIES, [
        IndexModel([("kind", UP), ("created_us", UP)], name="knowledge_entries_by_kind"),
        IndexModel([("market", UP), ("created_us", UP)], name="knowledge_entries_by_market"),
        IndexModel([("links", UP)], name="knowledge_entries_by_link"),
        IndexModel([("created_us", UP)], name="knowledge_entries_by_created"),
    ])


MIGRATION = Migration(
    version=14,
    name="intents_knowledge",
    description="assistant intents (grow plans with their daily plan and actual-against-plan reports, "
                "fund-tomorrow answers) and the knowledge base's entries (kind, market, links)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
