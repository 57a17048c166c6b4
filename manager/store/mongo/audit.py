"""The MongoDB adapter's audit port (:class:`~manager.store.ports.audit.AuditStore`):
``audit_events``, read newest first through the index ``(at, event_id)`` of
migration 0001."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from manager.store.documents import check_limit, prepare_audit_event
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import AUDIT

__all__ = ["MongoAudit"]


class MongoAudit(MongoClientBase):
    """Implements :class:`~manager.store.ports.audit.AuditStore` on MongoDB (a
    mixin of :class:`~manager.store.mongo.MongoStore`)."""

    def record_audit(self, event: dict[str, Any]) -> None:
        doc = prepare_audit_event(event)

        async def insert() -> None:
            # event_id (= _id) breaks ties of ``at`` in insertion order; a field of
            # its own because nx-27017 cannot index ``_id`` in a compound index.
            event_id = ObjectId()
            await self._coll(AUDIT).insert_one({"_id": event_id, "event_id": event_id,
                                                "at": doc["at"], "kind": doc["kind"],
                                                "actor": doc["actor"], "doc": doc})

        self._call(insert())

    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(AUDIT).find({}, {"doc": 1}).sort(
                [("at", -1), ("event_id", -1)]).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

