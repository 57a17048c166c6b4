"""Migration 0011: stored campaigns and Day-3 promotion requests
(:class:`~manager.store.ports.promotions.CampaignStore`,
:class:`~manager.store.ports.promotions.PromotionStore`).

Decision on ``promotion_log``: migration 0001 created it with ``promotion_id`` as
its PRIMARY KEY (one row per promotion), which cannot hold an append-only log of
transitions. It never had a writer, so this migration **rebuilds** it on SQLite
as the log (rows copied over if any exist, each as ``seq`` 1): ``log_id``
autoincrement primary key, ``(promotion_id, seq)`` unique, plus ``from_status``
and ``actor``; the indexes of 0001 (``(agent_id, created_at)``, ``(status,
created_at)``) are recreated. The current state of each request lives in the new
table ``promotions`` (one row per request, updated by conditional transitions).

SQLite:

- ``campaigns``: ``campaign_id`` PK, ``market``, ``created_at``, ``saved_at``,
  ``doc`` (JSON); index ``(created_at, campaign_id)``;
- ``promotions``: ``promotion_id`` PK, ``campaign_id``, ``agent_id``, ``run_id``,
  ``status``, ``created_at``, ``updated_at``, ``expires_at``, ``doc`` (JSON);
  indexes ``(status, created_at)``, ``(campaign_id, created_at)``,
  ``(status, expires_at)`` (the expiry sweep);
- ``promotion_log`` rebuilt as above.

MongoDB: ``campaigns`` (index ``(created_us)``), ``promotions`` (indexes
``(status, created_us)``, ``(campaign_id, created_us)``, ``(created_us)``) and on
``promotion_log`` (a collection: appending needs no rebuild) the unique index
``(promotion_id, seq)``.

Idempotent: ``IF NOT EXISTS``, the rebuild only when ``seq`` is missing, indexes
with fixed names and options.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS campaigns (
        campaign_id TEXT PRIMARY KEY,
        market      TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        saved_at    TEXT NOT NULL,
        doc         TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS campaigns_by_created ON campaigns (created_at, campaign_id)",
    """CREATE TABLE IF NOT EXISTS promotions (
        promotion_id TEXT PRIMARY KEY,
        campaign_id  TEXT NOT NULL,
        agent_id     TEXT NOT NULL,
        run_id       TEXT NOT NULL,
        status       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        expires_at   TEXT,
        doc          TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS promotions_by_status ON promotions (status, created_at)",
    "CREATE INDEX IF NOT EXISTS promotions_by_campaign ON promotions (campaign_id, created_at)",
    "CREATE INDEX IF NOT EXISTS promotions_by_expiry ON promotions (status, expires_at)",
)

_LOG = """CREATE TABLE promotion_log (
        log_id       INTEGER PRIMARY KEY AUTOINCREMENT,
        promotion_id TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        agent_id     TEXT NOT NULL,
        run_id       TEXT,
        from_status  TEXT,
        status       TEXT NOT NULL,
        actor        TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        doc          TEXT NOT NULL,
        UNIQUE (promotion_id, seq)
    )"""


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``campaigns`` and ``promotions``; rebuild ``promotion_log`` as an
    append-only log (its 0001 form keyed rows by promotion)."""
    for statement in _SQLITE:
        conn.execute(statement)
    columns = sqlite_columns(conn, "promotion_log")
    if "seq" not in columns:
        if columns:
            conn.execute("ALTER TABLE promotion_log RENAME TO promotion_log_0001")
            conn.execute("DROP INDEX IF EXISTS promotion_log_by_agent")
            conn.execute("DROP INDEX IF EXISTS promotion_log_by_status")
        conn.execute(_LOG)
        if columns:
            conn.execute(
                "INSERT INTO promotion_log (promotion_id, seq, agent_id, run_id, from_status, status, actor, "
                "created_at, doc) SELECT promotion_id, 1, agent_id, run_id, NULL, status, 'system', "
                "created_at, doc FROM promotion_log_0001")
            conn.execute("DROP TABLE promotion_log_0001")
    conn.execute("CREATE INDEX IF NOT EXISTS promotion_log_by_agent ON promotion_log (agent_id, created_at)")
    conn.execute("CREATE INDEX IF NOT EXISTS promotion_log_by_status ON promotion_log (status, created_at)")


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``campaigns`` and ``promotions`` with their indexes; index the log."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo.names import CAMPAIGNS, PROMOTION_REQUESTS, PROMOTIONS

    await ensure_collection(db, CAMPAIGNS, [IndexModel([("created_us", UP)], name="campaigns_by_created")])
    await ensure_collection(db, PROMOTION_REQUESTS, [
        IndexModel([("status", UP), ("created_us", UP)], name="promotion_requests_by_status"),
        IndexModel([("campaign_id", UP), ("created_us", UP)], name="promotion_requests_by_campaign"),
        IndexModel([("created_us", UP)], name="promotion_requests_by_created"),
    ])
    await ensure_collection(db, PROMOTIONS, [
        IndexModel([("promotion_id", UP), ("seq", UP)], name="promotion_log_by_request", unique=True),
    ])


MIGRATION = Migration(
    version=11,
    name="promotions",
    description="stored campaigns, promotion requests (current state) and promotion_log rebuilt as an "
                "append-only transition log",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
