"""Versioned, idempotent schema migrations of the store: the one versioning
scheme of both adapters (SQLite tables and their DDL, MongoDB collections and
indexes, and the backfills that go with them).

Each :class:`Migration` has a version, a name (its id is ``"0001_intraday_indexes"``)
and one apply function per adapter. Applied migrations are recorded in the
database itself -- the collection ``schema_migrations`` on MongoDB, the table
``schema_migrations`` on SQLite -- with their id, version, name and when they
were applied. :func:`apply_migrations` applies the pending ones in version
order; running it again applies nothing and changes nothing (every step is also
idempotent on its own: ``CREATE ... IF NOT EXISTS``, columns added only when
missing, ``createIndexes`` with fixed names and options), so two processes
migrating at once are safe.

This package sits above the store: it imports :mod:`manager.store`, never the
other way round. :mod:`manager.bootstrap` installs :func:`apply_migrations` as
the store's migrator (:mod:`manager.store.schema`), so
:func:`manager.store.open_store`, ``SQLiteStore(path)`` and ``MongoStore(url)``
apply pending migrations when they open a store, unless told not to
(``migrate=False``): the adapters have no schema of their own (SQLite's tables
are created by 0001 and 0002), and the MongoDB adapter relies on the unique
index of migration 0001 for idempotent ledger appends.

Use ``cohortlab migrate [--store URL] [--status]`` or
``python scripts/migrate_intraday_indexes.py --store URL``.

SQLite files written before the migrations owned the DDL carry their layout
version (1 to 4) in ``PRAGMA user_version`` and may lack some records; every
SQLite step is idempotent, so applying the missing ones upgrades them in place
with their data. Since then :func:`apply_migrations` keeps ``user_version``
equal to the latest migration it knows (a fence, not a second scheme: older
cohortlab releases read only ``user_version`` and so refuse a file they do not
understand) and refuses a file whose ``user_version`` is newer than that.

Adding a migration: a module ``mNNNN_<name>.py`` defining ``MIGRATION``, appended
to :data:`MIGRATIONS`. Never renumber one that was released.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from manager.store import SQLiteStore, Store, StoreError, open_store
from manager.store.documents import utc_now

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

__all__ = [
    "MIGRATIONS",
    "Migration",
    "apply_migrations",
    "format_status",
    "migrate_url",
    "migration_status",
    "sqlite_columns",
]

RECORDS = "schema_migrations"
"""Collection (MongoDB) / table (SQLite) holding one record per applied migration."""


@dataclass(frozen=True)
class Migration:
    """One schema migration.

    Attributes:
        version: 1, 2, 3, ... (applied in this order).
        name: short snake_case name.
        description: what it does, one sentence.
        sqlite: applies it to an SQLite connection inside the caller's write
            transaction (must not commit); idempotent.
        mongo: ``async`` function applying it to a PyMongo ``AsyncDatabase``.
    """

    version: int
    name: str
    description: str
    sqlite: Callable[[sqlite3.Connection], None]
    mongo: Callable[["AsyncDatabase"], Awaitable[None]]

    @property
    def id(self) -> str:
        """``"<version, 4 digits>_<name>"``, e.g. ``"0001_intraday_indexes"``."""
        return f"{self.version:04d}_{self.name}"


def _load() -> tuple[Migration, ...]:
    from migrations import (m0001_intraday_indexes, m0002_store_indexes, m0003_cohort_listing,
                            m0004_market_of_learning, m0005_run_header, m0006_training_windows,
                            m0007_baseline_percentile, m0008_run_lease, m0009_policy_decisions)
    from migrations import m0010_users
    from migrations import m0011_promotions
    from migrations import m0012_deployments
    from migrations import m0013_alert_deliveries
    from migrations import m0014_intents_knowledge

    found = (
        m0001_intraday_indexes.MIGRATION,
        m0002_store_indexes.MIGRATION,
        m0003_cohort_listing.MIGRATION,
        m0004_market_of_learning.MIGRATION,
        m0005_run_header.MIGRATION,
        m0006_training_windows.MIGRATION,
        m0007_baseline_percentile.MIGRATION,
        m0008_run_lease.MIGRATION,
        m0009_policy_decisions.MIGRATION,
        m0010_users.MIGRATION,
        m0011_promotions.MIGRATION,
        m0012_deployments.MIGRATION,
        m0013_alert_deliveries.MIGRATION,
        m0014_intents_knowledge.MIGRATION,
    )
    versions = [m.version for m in found]
    assert versions == list(range(1, len(found) + 1)), versions
    return found


def apply_migrations(store: Store) -> list[str]:
    """Apply the migrations not yet recorded in ``store``'s database.

    Args:
        store: an open :class:`~manager.store.sqlite.SQLiteStore` or
            :class:`~manager.store.mongo.MongoStore`.

    Returns:
        Ids of the migrations this call applied, in order (``[]`` when the
        database was up to date).

    Raises:
        StoreError: the adapter has no migrations, an SQLite file written by a
            newer cohortlab (``user_version`` above the latest migration), or a
            step failed. On SQLite all pending migrations run in one
            transaction, so nothing of them is kept; on MongoDB the migrations
            before the failing one stay recorded (index builds cannot be rolled
            back). Either way fix and re-run.
    """
    if isinstance(store, SQLiteStore):
        return _apply_sqlite(store)
    return _mongo(store).run_async(_apply_mongo)


def migration_status(store: Store) -> list[dict[str, Any]]:
    """Which migrations the database has; changes nothing.

    Returns:
        One dict per known migration in version order, then one per record this
        version of cohortlab does not know (written by a newer one):
        ``{"id", "version", "name", "applied": bool, "applied_at": str | None,
        "known": bool}``.
    """
    if isinstance(store, SQLiteStore):
        records = _sqlite_records(store)
    else:
        records = _mongo(store).run_async(_mongo_records)
    out = []
    for migration in MIGRATIONS:
        record = records.pop(migration.id, None)
        out.append({
            "id": migration.id,
            "version": migration.version,
            "name": migration.name,
            "applied": record is not None,
            "applied_at": None if record is None else record["applied_at"],
            "known": True,
        })
    for record in sorted(records.values(), key=lambda r: (r["version"], r["id"])):
        out.append({**record, "applied": True, "known": False})
    return out


def migrate_url(
    url: str | None = None, *, status_only: bool = False
) -> tuple[list[str], list[dict[str, Any]]]:
    """Open the store at ``url``, apply pending migrations, and report.

    What ``cohortlab migrate`` and ``scripts/migrate_intraday_indexes.py`` run.

    Args:
        url: store URL (``sqlite:///...`` or ``mongodb://...``); ``None`` = the
            ``COHORTLAB_STORE`` setting.
        status_only: apply nothing, only report.

    Returns:
        ``(applied ids, migration_status(...) afterwards)``.

    Raises:
        StoreError: the store cannot be opened, or a migration failed.
    """
    with open_store(url, migrate=False) as store:
        applied = [] if status_only else apply_migrations(store)
        return applied, migration_status(store)


def format_status(rows: list[dict[str, Any]]) -> list[str]:
    """One line per migration: id, then its state (``applied <when>`` / ``pending``).

    Args:
        rows: :func:`migration_status` rows.
    """
    lines = []
    for row in rows:
        if not row["known"]:
            state = f"applied {row['applied_at']} (unknown to this cohortlab: newer?)"
        elif row["applied"]:
            state = f"applied {row['applied_at']}"
        else:
            state = "pending"
        lines.append(f"{row['id']:<28} {state}")
    return lines


# -- SQLite ------------------------------------------------------------------------

_SQLITE_RECORDS = f"""
CREATE TABLE IF NOT EXISTS {RECORDS} (
    id         TEXT PRIMARY KEY,
    version    INTEGER NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


def sqlite_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of an SQLite ``table`` (empty if it does not exist)."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _latest() -> int:
    return max(migration.version for migration in MIGRATIONS)


def _apply_sqlite(store: SQLiteStore) -> list[str]:
    # One BEGIN IMMEDIATE transaction: concurrent migrators queue up, and the
    # second one finds everything recorded; a failing step keeps nothing.
    def apply(conn: sqlite3.Connection) -> list[str]:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        latest = _latest()
        if version > latest:
            raise StoreError(
                f"SQLite database {store.path!r} has schema version {version}; this "
                f"cohortlab understands up to {latest} -- upgrade cohortlab"
            )
        conn.execute(_SQLITE_RECORDS)
        done = {row[0] for row in conn.execute(f"SELECT id FROM {RECORDS}")}
        applied: list[str] = []
        for migration in MIGRATIONS:
            if migration.id in done:
                continue
            migration.sqlite(conn)
            conn.execute(
                f"INSERT INTO {RECORDS} (id, version, name, applied_at) VALUES (?, ?, ?, ?)",
                (migration.id, migration.version, migration.name, utc_now()),
            )
            applied.append(migration.id)
        if version != latest:
            conn.execute(f"PRAGMA user_version = {latest:d}")
        return applied

    return store.run_transaction(apply, write=True)


def _sqlite_records(store: SQLiteStore) -> dict[str, dict[str, Any]]:
    def read(conn: sqlite3.Connection) -> list[Any]:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (RECORDS,)
        ).fetchone()
        if exists is None:
            return []
        return conn.execute(f"SELECT id, version, name, applied_at FROM {RECORDS}").fetchall()

    return {
        row[0]: {"id": row[0], "version": row[1], "name": row[2], "applied_at": row[3]}
        for row in store.run_transaction(read, write=False)
    }


# -- MongoDB -----------------------------------------------------------------------


def _mongo(store: Store) -> Any:
    # imported here: the MongoDB driver is an optional dependency
    from manager.store.mongo import MongoStore

    if not isinstance(store, MongoStore):
        raise StoreError(
            f"no migrations for a {type(store).__name__}; supported: SQLiteStore, MongoStore"
        )
    return store


async def _apply_mongo(db: "AsyncDatabase") -> list[str]:
    from pymongo.errors import DuplicateKeyError

    records = db[RECORDS]
    done = {row["_id"] async for row in records.find({}, {"_id": 1})}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.id in done:
            continue
        await migration.mongo(db)
        try:
            await records.insert_one({
                "_id": migration.id,
                "version": migration.version,
                "name": migration.name,
                "applied_at": utc_now(),
            })
        except DuplicateKeyError:  # a concurrent migrator recorded it first
            continue
        applied.append(migration.id)
    return applied


async def _mongo_records(db: "AsyncDatabase") -> dict[str, dict[str, Any]]:
    return {
        row["_id"]: {
            "id": row["_id"],
            "version": row.get("version"),
            "name": row.get("name"),
            "applied_at": row.get("applied_at"),
        }
        async for row in db[RECORDS].find({})
    }


async def ensure_collection(db: "AsyncDatabase", name: str, indexes: list[Any]) -> None:
    """Create collection ``name`` if missing, then its ``indexes`` (``IndexModel``s).

    Both steps are idempotent: an existing collection is kept, and an index that
    exists with the same name, keys and options is left alone. An index of the
    same name with other keys or options is an error (MongoDB refuses it).
    """
    from pymongo.errors import CollectionInvalid, OperationFailure

    try:
        await db.create_collection(name)
    except CollectionInvalid:
        pass  # exists (pymongo checks first)
    except OperationFailure as exc:
        if exc.code != 48:  # NamespaceExists: a concurrent migrator created it
            raise
    if indexes:
        await db[name].create_indexes(indexes)


# Loaded last: the migration modules import the helpers above.
MIGRATIONS: tuple[Migration, ...] = _load()
"""Every migration, in version order."""
