"""Migration 0003: the cohort listing -- denormalised fields, their indexes, a backfill.

``list_cohort_summaries`` reads flat fields stored on each cohort run
(:data:`~manager.store.documents.runs.COHORT_LISTING_FIELDS`: the date of the
traded window, bankroll, quote, agents -- the run header's, see 0005 -- and
the parent's ROI, final equity, max drawdown, peak utilisation, breaches and
failed agents from the summary), which the adapters keep on every write since
this version. This migration adds them to the runs stored before and creates
the indexes of the listing. Nothing here reads a run's config: the header
fields are filled from the header (0005 backfills the header of runs stored
without one, and their listing fields with it).

MongoDB (``sim_runs_intraday``):

- indexes ``(kind, created_us, run_id)`` -- the newest-first cohort listing and
  ``created_after`` --, ``(kind, day, created_us, run_id)`` -- by date -- and
  ``(kind, bankroll, created_us, run_id)`` -- by bankroll;
- backfill of every cohort run without ``created_us`` (:func:`backfill_cohort_listing`).

SQLite (``sim_runs_intraday``): the columns ``date, bankroll, quote, agents,
roi, final_equity, max_drawdown, peak_utilisation, breaches, failed_agents``
when missing, the metrics filled for every completed cohort run in the same
transaction, and the indexes ``(kind, date, created_at, run_id)`` and ``(kind,
bankroll, created_at, run_id)`` (the existing ``(kind, created_at, run_id)``
serves the unfiltered listing).

Both are idempotent: applied again they change nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from manager.store.documents import COHORT_LISTING_FIELDS, LISTING_METRICS, listing_metrics
from migrations import Migration, ensure_collection, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

# The listing columns (name, SQL type) in the order of COHORT_LISTING_FIELDS, and
# the indexes of the filtered listing.
_LISTING_COLUMNS = (
    ("date", "TEXT"),
    ("bankroll", "REAL"),
    ("quote", "TEXT"),
    ("agents", "INTEGER"),
    ("roi", "REAL"),
    ("final_equity", "REAL"),
    ("max_drawdown", "REAL"),
    ("peak_utilisation", "REAL"),
    ("breaches", "INTEGER"),
    ("failed_agents", "INTEGER"),
)
assert tuple(name for name, _ in _LISTING_COLUMNS) == COHORT_LISTING_FIELDS
_LISTING_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_cohorts_by_date "
    "ON sim_runs_intraday (kind, date, created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_cohorts_by_bankroll "
    "ON sim_runs_intraday (kind, bankroll, created_at, run_id)",
)
_METRICS_SET = ", ".join(f"{name} = ?" for name in LISTING_METRICS)
_BATCH = 500


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add the missing listing columns; when a metric column was added, fill the
    metrics of every completed cohort run from its summary (as ``complete_run``
    would have); then make sure the indexes exist. Runs inside the caller's
    write transaction, so the columns and their values appear together."""
    present = sqlite_columns(conn, "sim_runs_intraday")
    missing = [(name, sql) for name, sql in _LISTING_COLUMNS if name not in present]
    for name, sql in missing:
        conn.execute(f"ALTER TABLE sim_runs_intraday ADD COLUMN {name} {sql}")
    if any(name in LISTING_METRICS for name, _ in missing):
        # Ids first, then batches: no cursor stays open over rows being updated,
        # and only one batch of summaries is in memory at a time.
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
                    summary_doc: Any = json.loads(summary)
                except ValueError:  # a damaged document: leave its fields empty
                    summary_doc = None
                fields = listing_metrics("cohort", summary_doc)
                updates.append((*(fields[name] for name in LISTING_METRICS), run_id))
            conn.executemany(
                f"UPDATE sim_runs_intraday SET {_METRICS_SET} WHERE run_id = ?", updates)
    for statement in _LISTING_INDEXES:
        conn.execute(statement)


async def backfill_cohort_listing(db: "AsyncDatabase", batch: int = 500) -> int:
    """Fill the listing fields of cohort runs stored without them.

    A run lacking ``created_us`` was written before the fields existed; its
    fields are computed from its header (when it has one yet) and, when
    completed, its summary (of the completion that won, see ``attempt``),
    exactly as ``create_run`` / ``complete_run`` would have
    (:func:`manager.store.mongo.listing_set`). Each update is conditioned on
    the run still lacking the fields and having the status read, so a run that
    a current store completes or fails meanwhile keeps what that store wrote.
    Idempotent: a second call finds nothing to do.

    Returns:
        How many runs were updated.
    """
    from pymongo import UpdateOne  # the MongoDB driver is an optional dependency

    from manager.store.mongo import RUNS, SUMMARIES, listing_set
    from manager.store.mongo.client import chunks

    runs = db[RUNS]
    query = {"kind": {"$eq": "cohort"}, "created_us": {"$exists": False}}
    ids = [row["_id"] async for row in runs.find(query, {"_id": 1})]
    updated = 0
    for chunk in chunks(ids, batch):
        rows = await runs.find(
            {"_id": {"$in": chunk}},
            {"kind": 1, "status": 1, "created_at": 1, "attempt": 1, "header": 1},
        ).to_list(None)
        completed = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        summaries: dict[str, Any] = {}
        if completed:
            async for doc in db[SUMMARIES].find({"_id": {"$in": list(completed)}}):
                if doc.get("attempt") == completed[doc["_id"]]:
                    summaries[doc["_id"]] = doc.get("summary")
        ops = [
            UpdateOne(
                {"_id": r["_id"], "status": r["status"], "created_us": {"$exists": False}},
                {"$set": listing_set(
                    r["kind"], r["created_at"], r.get("header"), summaries.get(r["_id"]))},
            )
            for r in rows
        ]
        if ops:
            result = await runs.bulk_write(ops, ordered=False)
            updated += result.modified_count
    return updated


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the listing indexes and backfill the listing fields."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import RUNS

    await ensure_collection(db, RUNS, [
        IndexModel([("kind", UP), ("created_us", UP), ("run_id", UP)], name="cohorts_by_created"),
        IndexModel([("kind", UP), ("day", UP), ("created_us", UP), ("run_id", UP)],
                   name="cohorts_by_date"),
        IndexModel([("kind", UP), ("bankroll", UP), ("created_us", UP), ("run_id", UP)],
                   name="cohorts_by_bankroll"),
    ])
    await backfill_cohort_listing(db)


MIGRATION = Migration(
    version=3,
    name="cohort_listing",
    description="cohort listing fields on runs (date, bankroll, quote, agents, parent "
                "metrics) with their indexes, backfilled from stored summaries",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
