"""Migration 0013: alerts and their delivery record
(:class:`~manager.store.ports.alerts.AlertStore`).

SQLite:

- ``alert_deliveries``: ``alert_id`` PK, ``rule``, ``subject``, ``status``
  (``pending`` / ``sent`` / ``failed``), ``created_at``, ``updated_at``, ``doc``
  (JSON: title, body, figures, attempts, attempt log, last error); indexes
  ``(rule, subject, created_at)`` (the dedup / rate-limit look-up),
  ``(status, created_at)`` and ``(created_at, alert_id)`` (the listing).

MongoDB: ``alert_deliveries`` (``(rule, subject, created_us)``,
``(status, created_us)``, ``(created_us)``) and ``alert_gates`` (one document
per ``(rule, subject)``: ``_id`` is the key, ``last_us`` the creation time of
its latest alert; moved by a compare-and-set).

Idempotent: ``IF NOT EXISTS`` and indexes with fixed names and options.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        alert_id    TEXT PRIMARY KEY,
        rule        TEXT NOT NULL,
        subject     TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        doc         TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_by_key ON alert_deliveries (rule, subject, created_at)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_by_status ON alert_deliveries (status, created_at)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_by_created ON alert_deliveries (created_at, alert_id)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``alert_deliveries`` and its indexes."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``alert_deliveries`` and ``alert_gates`` with their indexes."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo.names import ALERT_DELIVERIES, ALERT_GATES

    await ensure_collection(db, ALERT_DELIVERIES, [
        IndexModel([("rule", UP), ("subject", UP), ("created_us", UP)], name="alert_deliveries_by_key"),
        IndexModel([("status", UP), ("created_us", UP)], name="alert_deliveries_by_status"),
        IndexModel([("created_us", UP)], name="alert_deliveries_by_created"),
    ])
    await ensure_collection(db, ALERT_GATES, [])


MIGRATION = Migration(
    version=13,
    name="alert_deliveries",
    description="alerts (deduplicated and rate-limited per rule and subject) and their delivery record "
                "(sent / failed, attempts, errors)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
