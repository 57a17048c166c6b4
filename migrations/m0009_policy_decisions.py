"""Migration 0009: risk-policy decisions and the kill switch
(:class:`~manager.store.ports.policy.PolicyStore`).

SQLite:

- ``policy_decisions``: ``decision_id`` primary key, the columns the port keys,
  filters and orders on (``market``, ``subject``, ``subject_kind``, ``period``,
  ``period_end``, ``tier``, ``trigger``, ``source``, ``decided_at``,
  ``recorded_at``) and the whole decision as JSON (``doc``);
  ``UNIQUE (market, subject, period)`` (one decision per key: idempotent
  recording); indexes ``(market, subject, period_end)`` (the point-in-time
  lookup) and ``(period_end, subject)`` (the listing); a trigger refusing
  ``UPDATE`` (decisions are append-only);
- ``kill_switch``: at most one row (``id = 1``): ``is_on``, ``actor``,
  ``reason``, ``at``.

MongoDB: the collections ``policy_decisions`` (indexes: ``(market, subject,
period)`` unique, ``(market, subject, period_end_us)``, ``(period_end_us)``;
``period_end_us`` is ``period_end`` in microseconds since 1970, what the
adapter compares and sorts, see :mod:`manager.store.mongo.policy`) and
``kill_switch`` (one document, keyed by ``_id``).

Both are idempotent (``IF NOT EXISTS``; indexes with fixed names and options).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS policy_decisions (
        decision_id  TEXT PRIMARY KEY,
        market       TEXT NOT NULL,
        subject      TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        period       TEXT NOT NULL,
        period_end   TEXT NOT NULL,
        tier         REAL NOT NULL CHECK (tier >= 0),
        trigger      TEXT NOT NULL,
        source       TEXT,
        decided_at   TEXT NOT NULL,
        recorded_at  TEXT NOT NULL,
        doc          TEXT NOT NULL,
        UNIQUE (market, subject, period)
    )""",
    """CREATE INDEX IF NOT EXISTS policy_decisions_by_subject
        ON policy_decisions (market, subject, period_end)""",
    """CREATE INDEX IF NOT EXISTS policy_decisions_by_end
        ON policy_decisions (period_end, subject)""",
    """CREATE TRIGGER IF NOT EXISTS policy_decisions_append_only
        BEFORE UPDATE ON policy_decisions
        BEGIN SELECT RAISE(ABORT, 'policy_decisions is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS kill_switch (
        id     INTEGER PRIMARY KEY CHECK (id = 1),
        is_on  INTEGER NOT NULL CHECK (is_on IN (0, 1)),
        actor  TEXT NOT NULL,
        reason TEXT NOT NULL,
        at     TEXT NOT NULL
    )""",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``policy_decisions`` (keys, indexes, append-only trigger) and
    ``kill_switch`` where missing."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``policy_decisions`` with its indexes, and ``kill_switch``."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import KILL_SWITCH, POLICY_DECISIONS

    await ensure_collection(db, POLICY_DECISIONS, [
        IndexModel([("market", UP), ("subject", UP), ("period", UP)],
                   name="policy_by_key", unique=True),
        IndexModel([("market", UP), ("subject", UP), ("period_end_us", UP)],
                   name="policy_by_subject"),
        IndexModel([("period_end_us", UP)], name="policy_by_end"),
    ])
    await ensure_collection(db, KILL_SWITCH, [])


MIGRATION = Migration(
    version=9,
    name="policy_decisions",
    description="risk-policy decisions (unique per market, subject and period; point-in-time "
                "index) and the persisted kill switch",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
