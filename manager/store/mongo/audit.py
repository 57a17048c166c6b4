"""The MongoDB adapter's audit port (:class:`~manager.store.ports.audit.AuditStore`):
``audit_events``, read newest first through the index ``(at, event_id)`` of
migration 0001."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from manager.store.documents import check_limit, prepare_audit_event
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import AUDIT

__all__ = ["MongoAudit", "audit_row"]


def audit_row(doc: dict[str, Any], event_id: ObjectId | None = None) -> dict[str, Any]:
    """The ``audit_events`` row of a prepared event. ``event_id`` (= ``_id``; default
    a new one) breaks ties of ``at`` in insertion order; a field of its own because
    nx-27017 cannot index ``_id`` in a compound index."""
    event_id = ObjectId() if event_id is None else event_id
    return {"_id": event_id, "event_id": event_id, "at": doc["at"], "kind": doc["kind"],
            "actor": doc["actor"], "doc": doc}


class MongoAudit(MongoClientBase):
    """Implements :class:`~manager.store.ports.audit.AuditStore` on MongoDB (a
    mixin of :class:`~manager.store.mongo.MongoStore`)."""

    def record_audit(self, event: dict[str, Any]) -> None:
        doc = prepare_audit_event(event)

        async def insert() -> None:
            await self._coll(AUDIT).insert_one(audit_row(doc))

        self._call(insert())

    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(AUDIT).find({}, {"doc": 1}).sort(
                [("at", -1), ("event_id", -1)]).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

