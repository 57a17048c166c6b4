"""The SQLite adapter's audit port (:class:`~manager.store.ports.audit.AuditStore`):
the ``audit_events`` table (created by the migrations)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from manager.store.documents import check_limit, prepare_audit_event
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLiteAudit", "insert_audit"]


def insert_audit(conn: sqlite3.Connection, doc: dict[str, Any]) -> None:
    """Insert a prepared audit event inside the caller's write transaction."""
    conn.execute(
        "INSERT INTO audit_events (at, kind, actor, doc) VALUES (?, ?, ?, ?)",
        (doc["at"], doc["kind"], doc["actor"], dumps(doc)),
    )


class SQLiteAudit(SQLiteConnection):
    """Implements :class:`~manager.store.ports.audit.AuditStore` on SQLite (a
    mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    # -- audit -------------------------------------------------------------------

    def record_audit(self, event: dict[str, Any]) -> None:
        doc = prepare_audit_event(event)
        with self._transaction(write=True) as conn:
            insert_audit(conn, doc)

    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT doc FROM audit_events ORDER BY at DESC, event_id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

