"""Migration 0004: the market a population or hall-of-fame version was bred on.

A stored population or hall of fame may seed a run only when it was bred on the
run's market (:mod:`manager.seeding`): the stores keep the market key
(``"<data>|<timeframe>|<quote>"``, e.g. ``"binance-5m|5m|BTC"``) on each
population and hall-of-fame version, and filter on it.

MongoDB: indexes ``populations (market, mode, seq)`` and ``genomes (market,
version)``; populations saved before get ``market`` from ``meta.market`` when
they have one. Hall-of-fame versions saved before keep no market (unknown: never
matched, so they no longer seed runs).

SQLite: the ``market`` columns of ``populations`` and ``genomes`` and the same
indexes; populations saved before get ``market`` from ``meta.market``.

Both are idempotent: applied again they change nothing.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase


_MARKET_INDEXES = (
    "CREATE INDEX IF NOT EXISTS populations_by_market ON populations (market, mode, seq)",
    "CREATE INDEX IF NOT EXISTS genomes_by_market ON genomes (market, version)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add the ``market`` column of ``populations`` and ``genomes`` where missing
    (populations saved before get their ``meta["market"]`` when they have one;
    hall-of-fame versions stay NULL: unknown market, never matched by a market
    filter), then the indexes. Runs inside the caller's write transaction."""
    added = False
    for table in ("populations", "genomes"):
        if "market" not in sqlite_columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN market TEXT")
            added = True
    if added:
        conn.execute("UPDATE populations SET market = json_extract(meta, '$.market') "
                     "WHERE market IS NULL AND json_type(meta, '$.market') = 'text'")
    for statement in _MARKET_INDEXES:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the market indexes and copy ``meta.market`` onto older populations."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import names as m

    await ensure_collection(db, m.POPULATIONS, [
        IndexModel([("market", UP), ("mode", UP), ("seq", UP)], name="populations_by_market"),
    ])
    await ensure_collection(db, m.HALL_OF_FAME, [
        IndexModel([("market", UP), ("version", UP)], name="genomes_by_market"),
    ])
    coll = db[m.POPULATIONS]
    async for row in coll.find({"market": {"$exists": False}}, {"_id": 1, "meta": 1}):
        market = (row.get("meta") or {}).get("market")
        await coll.update_one({"_id": row["_id"]},
                              {"$set": {"market": market if isinstance(market, str) and market else None}})


MIGRATION = Migration(
    version=4,
    name="market_of_learning",
    description="market key on populations and hall-of-fame versions, with indexes "
                "(seeding never crosses markets)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
