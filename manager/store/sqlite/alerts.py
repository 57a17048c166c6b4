"""The SQLite adapter's alert port (:class:`~manager.store.ports.alerts.AlertStore`):
the table ``alert_deliveries`` (migration 0013).

Creation is one ``BEGIN IMMEDIATE`` transaction: the newest alert of the same
``(rule, subject)`` created after ``quiet_since`` is looked up (index
``(rule, subject, created_at)``); if there is one its ``suppressed`` count goes
up, else the new row is inserted. A delivery attempt is a read-modify-write in
one write transaction.
"""

from __future__ import annotations

import json
from typing import Any

from manager.store.documents.alerts import attempt_changes, check_alert_page, prepare_alert
from manager.store.documents.values import check_id, normalise_timestamp
from manager.store.errors import NotFound, StoreError
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLiteAlerts"]


class SQLiteAlerts(SQLiteConnection):
    """Implements the alert port on SQLite (a mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    def create_alert(self, doc: dict[str, Any], *, quiet_since: str | None = None) -> tuple[dict[str, Any], bool]:
        prepared = prepare_alert(doc)
        since = None if quiet_since is None else normalise_timestamp(quiet_since, "quiet_since")
        with self._transaction(write=True) as conn:
            if since is not None:
                row = conn.execute(
                    "SELECT alert_id, doc FROM alert_deliveries WHERE rule = ? AND subject = ? AND created_at > ? "
                    "ORDER BY created_at DESC, alert_id DESC LIMIT 1",
                    (prepared["rule"], prepared["subject"], since)).fetchone()
                if row is not None:
                    earlier = json.loads(row["doc"])
                    earlier["suppressed"] = int(earlier.get("suppressed", 0)) + 1
                    conn.execute("UPDATE alert_deliveries SET doc = ? WHERE alert_id = ?",
                                 (dumps(earlier), row["alert_id"]))
                    return earlier, False
            if conn.execute("SELECT 1 FROM alert_deliveries WHERE alert_id = ?",
                            (prepared["alert_id"],)).fetchone() is not None:
                raise StoreError(f"an alert with alert_id {prepared['alert_id']!r} exists")
            conn.execute(
                "INSERT INTO alert_deliveries (alert_id, rule, subject, status, created_at, updated_at, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (prepared["alert_id"], prepared["rule"], prepared["subject"], prepared["status"],
                 prepared["created_at"], prepared["updated_at"], dumps(prepared)))
        return prepared, True

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        alert_id = check_id(alert_id, "alert_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM alert_deliveries WHERE alert_id = ?", (alert_id,)).fetchone()
        if row is None:
            raise NotFound(f"no alert with alert_id {alert_id!r}")
        return json.loads(row["doc"])

    def record_alert_attempt(self, alert_id: str, *, ok: bool, error: str | None = None,
                             final: bool = False, at: str | None = None) -> dict[str, Any]:
        alert_id = check_id(alert_id, "alert_id")
        attempt_changes({}, ok=ok, error=error, final=final, at=at)  # validate before the transaction
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT doc FROM alert_deliveries WHERE alert_id = ?", (alert_id,)).fetchone()
            if row is None:
                raise NotFound(f"no alert with alert_id {alert_id!r}")
            doc = attempt_changes(json.loads(row["doc"]), ok=ok, error=error, final=final, at=at)
            conn.execute("UPDATE alert_deliveries SET status = ?, updated_at = ?, doc = ? WHERE alert_id = ?",
                         (doc["status"], doc["updated_at"], dumps(doc), alert_id))
        return doc

    def list_alerts(self, rule: str | None = None, status: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[dict[str, Any]]:
        rule, status, limit, offset = check_alert_page(rule, status, limit, offset)
        clauses, params = [], []
        if rule is not None:
            clauses.append("rule = ?")
            params.append(rule)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT doc FROM alert_deliveries{where} ORDER BY created_at DESC, alert_id ASC LIMIT ? OFFSET ?",
                (*params, limit, offset)).fetchall()
        return [json.loads(row["doc"]) for row in rows]
