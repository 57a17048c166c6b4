"""Migration 0010: users and their roles (:class:`~manager.store.ports.users.UsersStore`).

SQLite: the table ``users`` (``user_id`` primary key, ``name`` unique, ``role``,
``token_hash`` -- an argon2 hash, never a token --, ``created_at``,
``revoked_at``, ``rotated_at``) with an index ``(created_at, name)`` (the listing).

MongoDB: the collection ``users`` (``_id = user_id``) with a unique index on
``name`` and an index ``(created_at, name)``.

Both are idempotent (``IF NOT EXISTS``; indexes with fixed names and options).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from migrations import Migration, ensure_collection

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

_SQLITE = (
    """CREATE TABLE IF NOT EXISTS users (
        user_id    TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        role       TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        rotated_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS users_by_created ON users (created_at, name)",
)


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Create ``users`` and its listing index where missing."""
    for statement in _SQLITE:
        conn.execute(statement)


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create ``users`` with its unique ``name`` index and the listing index."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import USERS

    await ensure_collection(db, USERS, [
        IndexModel([("name", UP)], name="users_by_name", unique=True),
        IndexModel([("created_at", UP), ("name", UP)], name="users_by_created"),
    ])


MIGRATION = Migration(
    version=10,
    name="users",
    description="users with roles and argon2 token hashes (name unique)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
