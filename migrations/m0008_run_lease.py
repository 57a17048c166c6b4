"""Migration 0008: the run lease (``owner``, ``lease_until``).

A run being executed carries the token of the process executing it (``owner``)
and when its lease runs out (``lease_until``, ISO 8601 UTC in the store's
canonical form, which sorts in time order); the executor renews it while it
runs (a heartbeat) and another process takes the run over only once the lease
has expired (:meth:`~manager.store.ports.runs.RunStore.claim_run`). Runs stored
before have no lease: they are claimable, as before.

SQLite (``sim_runs_intraday``): the columns ``owner TEXT`` and ``lease_until TEXT``
when missing, and an index on ``(status, lease_until)`` for recovery's scan of
expired leases.

MongoDB (``sim_runs_intraday``): the index ``status_lease`` on ``(status,
lease_until)``; the fields are written by ``create_run`` / ``claim_run`` (a
run without them has no lease).

Both are idempotent.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add the lease columns when missing, and their index."""
    columns = sqlite_columns(conn, "sim_runs_intraday")
    for name in ("owner", "lease_until"):
        if name not in columns:
            conn.execute(f"ALTER TABLE sim_runs_intraday ADD COLUMN {name} TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS sim_runs_status_lease "
                 "ON sim_runs_intraday (status, lease_until)")


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the ``status_lease`` index."""
    from manager.store.mongo import RUNS

    await db[RUNS].create_index([("status", 1), ("lease_until", 1)], name="status_lease")


MIGRATION = Migration(
    version=8,
    name="run_lease",
    description="run lease: owner token and lease_until (heartbeat; only expired leases are taken over)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
