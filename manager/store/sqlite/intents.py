"""The SQLite adapter's assistant port (:class:`~manager.store.ports.intents.IntentStore`):
the tables ``intents`` and ``knowledge_entries`` (migration 0014).

A conditional update or a report append is a read-modify-write inside one ``BEGIN
IMMEDIATE`` transaction, so two writers are serialised: the second sees the first's
status (or day) and changes nothing. The link filter reads ``links`` with ``json_each``.
"""

from __future__ import annotations

import json
from typing import Any

from manager.store.documents.intents import (
    check_intent_page,
    check_knowledge_filters,
    prepare_intent,
    prepare_intent_changes,
    prepare_intent_report,
    prepare_knowledge_entry,
)
from manager.store.documents.values import check_id, utc_now
from manager.store.errors import NotFound, StoreError
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLiteIntents"]


class SQLiteIntents(SQLiteConnection):
    """Implements the assistant port on SQLite (a mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    def create_intent(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_intent(doc)
        with self._transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM intents WHERE intent_id = ?", (prepared["intent_id"],)).fetchone():
                raise StoreError(f"an intent with intent_id {prepared['intent_id']!r} exists")
            conn.execute("INSERT INTO intents (intent_id, kind, status, created_at, updated_at, doc) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (prepared["intent_id"], prepared["kind"], prepared["status"], prepared["created_at"],
                          prepared["updated_at"], dumps(prepared)))
        return prepared

    def get_intent(self, intent_id: str) -> dict[str, Any]:
        intent_id = check_id(intent_id, "intent_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
        if row is None:
            raise NotFound(f"no intent with intent_id {intent_id!r}")
        return json.loads(row["doc"])

    def _write_intent(self, conn: Any, doc: dict[str, Any]) -> None:
        conn.execute("UPDATE intents SET status = ?, updated_at = ?, doc = ? WHERE intent_id = ?",
                     (doc["status"], doc["updated_at"], dumps(doc), doc["intent_id"]))

    def update_intent(self, intent_id: str, changes: dict[str, Any], *,
                      expected_status: str | None = None) -> dict[str, Any] | None:
        intent_id = check_id(intent_id, "intent_id")
        changes = prepare_intent_changes(changes)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT doc FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
            if row is None:
                raise NotFound(f"no intent with intent_id {intent_id!r}")
            doc = json.loads(row["doc"])
            if expected_status is not None and doc["status"] != expected_status:
                return None
            doc = {**doc, **changes, "updated_at": utc_now()}
            self._write_intent(conn, doc)
        return doc

    def add_intent_report(self, intent_id: str, report: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        intent_id = check_id(intent_id, "intent_id")
        report = prepare_intent_report(report)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT doc FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
            if row is None:
                raise NotFound(f"no intent with intent_id {intent_id!r}")
            doc = json.loads(row["doc"])
            if any(r["day"] == report["day"] for r in doc.get("reports", [])):
                return doc, False
            doc["reports"] = sorted([*doc.get("reports", []), report], key=lambda r: r["day"])
            doc["updated_at"] = utc_now()
            self._write_intent(conn, doc)
        return doc, True

    def list_intents(self, kind: str | None = None, status: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]:
        kind, status, limit, offset = check_intent_page(kind, status, limit, offset)
        clauses, params = [], []
        for column, value in (("kind", kind), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._transaction(write=False) as conn:
            rows = conn.execute(f"SELECT doc FROM intents{where} ORDER BY created_at DESC, intent_id ASC "
                                "LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [json.loads(r["doc"]) for r in rows]

    def add_knowledge_entry(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_knowledge_entry(doc)
        with self._transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM knowledge_entries WHERE entry_id = ?",
                            (prepared["entry_id"],)).fetchone():
                raise StoreError(f"a knowledge entry with entry_id {prepared['entry_id']!r} exists")
            conn.execute("INSERT INTO knowledge_entries (entry_id, kind, market, created_at, links, doc) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (prepared["entry_id"], prepared["kind"], prepared["market"], prepared["created_at"],
                          dumps(prepared["links"]), dumps(prepared)))
        return prepared

    def get_knowledge_entry(self, entry_id: str) -> dict[str, Any]:
        entry_id = check_id(entry_id, "entry_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM knowledge_entries WHERE entry_id = ?", (entry_id,)).fetchone()
        if row is None:
            raise NotFound(f"no knowledge entry with entry_id {entry_id!r}")
        return json.loads(row["doc"])

    def list_knowledge_entries(self, *, kind: str | None = None, market: str | None = None,
                               link: str | None = None, since: str | None = None, until: str | None = None,
                               limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        f = check_knowledge_filters(kind, market, link, since, until, limit, offset)
        clauses, params = [], []
        for column in ("kind", "market"):
            if f[column] is not None:
                clauses.append(f"{column} = ?")
                params.append(f[column])
        if f["link"] is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(knowledge_entries.links) WHERE value = ?)")
            params.append(f["link"])
        if f["since"] is not None:
            clauses.append("created_at >= ?")
            params.append(f["since"])
        if f["until"] is not None:
            clauses.append("created_at < ?")
            params.append(f["until"])
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._transaction(write=False) as conn:
            rows = conn.execute(f"SELECT doc FROM knowledge_entries{where} ORDER BY created_at DESC, entry_id ASC "
                                "LIMIT ? OFFSET ?", (*params, f["limit"], f["offset"])).fetchall()
        return [json.loads(r["doc"]) for r in rows]
