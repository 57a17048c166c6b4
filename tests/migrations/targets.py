"""A database to migrate, seen through one interface for both adapters (not a test module)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from manager.store import Store


class Target:
    """A fresh, unmigrated database of one adapter, plus a raw view of its schema.

    Args:
        kind: ``"sqlite"`` or ``"mongo"``.
        url: its store URL.
        open_fn: opens a store on it without migrating.
        schema: the raw schema of an open store (objects, indexes, records).
    """

    def __init__(self, kind: str, url: str, open_fn: Callable[[], Store],
                 schema: Callable[[Store], Any]) -> None:
        self.kind, self.url, self._open, self._schema = kind, url, open_fn, schema
        self.opened: list[Store] = []

    def open(self) -> Store:
        """A new store object on the database (closed by the fixture)."""
        store = self._open()
        self.opened.append(store)
        return store

    def schema(self, store: Store) -> Any:
        """The raw schema as ``store`` sees it."""
        return self._schema(store)


def sqlite_schema(store: Store) -> Any:
    """Objects of ``sqlite_master`` and the migration records of an SQLite store."""
    conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
    try:
        objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        records = conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()
    finally:
        conn.close()
    return {"objects": objects, "records": records}


def mongo_schema(store: Any) -> Any:
    """Collections, their indexes and the migration records of a MongoStore."""
    async def read(db: Any) -> Any:
        names = sorted(await db.list_collection_names())
        indexes = {name: await db[name].index_information() for name in names}
        records = await db.schema_migrations.find({}).sort("version", 1).to_list(None)
        return {"collections": names, "indexes": indexes, "records": records}

    return store.run_async(read)
