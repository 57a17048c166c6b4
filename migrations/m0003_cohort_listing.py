"""Migration 0003: the cohort listing -- denormalised fields, their indexes, a backfill.

:meth:`~manager.store.base.Store.list_cohort_summaries` reads flat fields stored
on each cohort run (:data:`~manager.store.base.COHORT_LISTING_FIELDS`: the date
of the traded window, bankroll, quote, agents and the parent's ROI, final
equity, max drawdown, peak utilisation, breaches and failed agents), which the
adapters keep on every write since this version. This migration adds them to
the runs stored before, from each run's document and (completed runs) its
summary, and creates the indexes of the listing.

MongoDB (``sim_runs_intraday``):

- indexes ``(kind, created_us, run_id)`` -- the newest-first cohort listing and
  ``created_after`` --, ``(kind, day, created_us, run_id)`` -- by date -- and
  ``(kind, bankroll, created_us, run_id)`` -- by bankroll;
- backfill of every cohort run without ``created_us``
  (:func:`manager.store.mongo.backfill_cohort_listing`).

SQLite (``sim_runs_intraday``): the columns ``date, bankroll, quote, agents,
roi, final_equity, max_drawdown, peak_utilisation, breaches, failed_agents``
when missing, filled for every cohort run in the same transaction, and the
indexes ``(kind, date, created_at, run_id)`` and ``(kind, bankroll, created_at,
run_id)`` (:func:`manager.store.sqlite.ensure_cohort_listing`; the existing
``(kind, created_at, run_id)`` serves the unfiltered listing). The SQLite
adapter runs the same step when it opens a file of schema version < 3, so on a
store opened by this cohortlab the migration finds it done and only records it.

Both are idempotent: applied again they change nothing.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase


def apply_sqlite(conn: sqlite3.Connection) -> None:
    from manager.store.sqlite import ensure_cohort_listing

    ensure_cohort_listing(conn)


async def apply_mongo(db: "AsyncDatabase") -> None:
    from pymongo import ASCENDING as UP
    from pymongo import IndexModel

    from manager.store.mongo import RUNS, backfill_cohort_listing

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
