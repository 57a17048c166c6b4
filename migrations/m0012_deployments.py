"""Migration 0012: micro-live deployments and their rollback incidents
(:class:`~manager.store.ports.deployments.DeploymentStore`).

SQLite:

- ``deployments``: ``deployment_id`` PK, ``promotion_id`` UNIQUE (one deployment
  per promotion: idempotent start), ``status``, ``last_bar`` (the conditional
  update's guard), ``created_at``, ``updated_at``, ``doc`` (JSON); index
  ``(status, created_at)``, ``(created_at, deployment_id)``;
- ``deployment_incidents``: ``incident_id`` PK (autoincrement),
  ``deployment_id``, ``seq`` (UNIQUE with the deployment), ``trigger``,
  ``recorded_at``, ``doc`` (JSON); append-only.

MongoDB: ``deployments`` (unique index ``promotion_id``; ``(status, created_us)``,
``(created_us)``) and ``deployment_incidents`` (unique ``(deployment_id, seq)``).

Idempotent: ``IF NOT EXISTS`` and indexes with fixed names and options.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS deployments (
        deployment_id TEXT PRIMARY KEY,
        promotion_id  TEXT NOT NULL UNIQUE,
        status        TEXT NOT NULL,
        last_bar      INTEGER NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        doc           TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS deployments_by_status ON deployments (status, created_at)",
    "CREATE INDEX IF NOT EXISTS deployments_by_created ON deployments (created_at, deployment_id)",
    """CREATE TABLE IF NOT EXISTS deployment_incidents (
        incident_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        trigger       TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        doc           TEXT NOT NULL,
        UNIQUE (deployment_id, seq)
    )""",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``deployments`` and ``deployment_incidents``."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``deployments`` and ``deployment_incidents`` with their indexes."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo.names import DEPLOYMENT_INCIDENTS, DEPLOYMENTS

    await ensure_collection(db, DEPLOYMENTS, [
        IndexModel([("promotion_id", UP)], name="deployments_by_promotion", unique=True),
        IndexModel([("status", UP), ("created_us", UP)], name="deployments_by_status"),
        IndexModel([("created_us", UP)], name="deployments_by_created"),
    ])
    await ensure_collection(db, DEPLOYMENT_INCIDENTS, [
        IndexModel([("deployment_id", UP), ("seq", UP)], name="deployment_incidents_by_seq", unique=True),
    ])


MIGRATION = Migration(
    version=12,
    name="deployments",
    description="micro-live deployments (one per promotion, conditional on the last processed bar) "
                "and their append-only rollback incidents",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
