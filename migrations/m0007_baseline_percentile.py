"""Migration 0007: the cohort listing's ``baseline_percentile`` field.

The cohort's ROI percentile (0..100) among its random-genome cohorts
(``summary["baselines"]["random"]["percentile"]``, :mod:`manager.baselines`) is a
listing field since this version
(:data:`~manager.store.documents.runs.BASELINE_LISTING_FIELDS`), kept by both
adapters on every write. This migration adds it to the runs stored before: the
percentile of a completed cohort run whose summary has baselines, None otherwise
(runs stored before baselines existed have none).

SQLite (``sim_runs_intraday``): the column ``baseline_percentile REAL`` when
missing, filled from the summaries of completed cohort runs in the same transaction.

MongoDB (``sim_runs_intraday``): every cohort run without the field gets it (from the
summary of the completion that won, see ``attempt``), conditioned on the run's status
being still the one read.

Both are idempotent: applied again they change nothing. (Version 0006 is another
migration of the same release; this one does not depend on it.)
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from manager.store.documents import BASELINE_LISTING_FIELDS, baseline_listing_fields
from migrations import Migration, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_BATCH = 500
assert BASELINE_LISTING_FIELDS == ("baseline_percentile",)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add ``baseline_percentile`` when missing and fill it for every completed cohort
    run from its summary (inside the caller's write transaction)."""
    if "baseline_percentile" in sqlite_columns(conn, "sim_runs_intraday"):
        return
    conn.execute("ALTER TABLE sim_runs_intraday ADD COLUMN baseline_percentile REAL")
    ids = [row[0] for row in conn.execute(
        "SELECT r.run_id FROM sim_runs_intraday AS r JOIN cohort_summaries AS s "
        "ON s.run_id = r.run_id WHERE r.kind = 'cohort'")]
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = conn.execute(
            f"SELECT run_id, summary FROM cohort_summaries "
            f"WHERE run_id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
        updates = []
        for run_id, summary in rows:
            try:
                doc: Any = json.loads(summary)
            except ValueError:  # a damaged document: leave the field empty
                doc = None
            updates.append((baseline_listing_fields("cohort", doc)["baseline_percentile"], run_id))
        conn.executemany("UPDATE sim_runs_intraday SET baseline_percentile = ? WHERE run_id = ?", updates)


async def apply_mongo(db: "AsyncDatabase", batch: int = 500) -> None:
    """Set ``baseline_percentile`` on every cohort run stored without it."""
    from pymongo import UpdateOne  # the MongoDB driver is an optional dependency

    from manager.store.mongo import RUNS, SUMMARIES
    from manager.store.mongo.client import chunks

    runs = db[RUNS]
    query = {"kind": {"$eq": "cohort"}, "baseline_percentile": {"$exists": False}}
    ids = [row["_id"] async for row in runs.find(query, {"_id": 1})]
    for chunk in chunks(ids, batch):
        rows = await runs.find({"_id": {"$in": chunk}}, {"status": 1, "attempt": 1}).to_list(None)
        completed = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        summaries: dict[str, Any] = {}
        if completed:
            async for doc in db[SUMMARIES].find({"_id": {"$in": list(completed)}}):
                if doc.get("attempt") == completed[doc["_id"]]:
                    summaries[doc["_id"]] = doc.get("summary")
        ops = [UpdateOne({"_id": r["_id"], "status": r["status"], "baseline_percentile": {"$exists": False}},
                         {"$set": baseline_listing_fields("cohort", summaries.get(r["_id"]))})
               for r in rows]
        if ops:
            await runs.bulk_write(ops, ordered=False)


MIGRATION = Migration(
    version=7,
    name="baseline_percentile",
    description="cohort listing field baseline_percentile (the cohort's percentile among "
                "random-genome cohorts), backfilled from stored summaries",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
