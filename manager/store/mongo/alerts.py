"""The MongoDB adapter's alert port (:class:`~manager.store.ports.alerts.AlertStore`):
the collections ``alert_deliveries`` and ``alert_gates`` (migration 0013).

``alert_deliveries``: ``_id = alert_id``; ``rule``, ``subject``, ``status``,
``created_at``, ``created_us`` (what the listing sorts on), ``updated_at``, the
whole alert in ``doc``.

``alert_gates``: one document per ``(rule, subject)``, ``_id =
"<rule>\\x1f<subject>"``, ``last_us`` (creation time of the latest alert, µs since
1970) and ``alert_id``. Creating an alert first takes the gate: ``insert_one``
(no alert of that key yet) or ``find_one_and_update({_id, last_us <= quiet_since},
{$set: ...})`` (a compare-and-set). Of two workers raising the same alert, only
one takes the gate; the other finds the gate moved and counts as suppressed on
the alert that holds it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from manager.store.documents import created_micros
from manager.store.documents.alerts import attempt_changes, check_alert_page, prepare_alert
from manager.store.documents.values import check_id, normalise_timestamp
from manager.store.errors import NotFound, StoreError
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import ALERT_DELIVERIES, ALERT_GATES

__all__ = ["MongoAlerts"]

_ORDER = [("created_us", -1), ("_id", 1)]


class MongoAlerts(MongoClientBase):
    """Implements the alert port on MongoDB (a mixin of :class:`~manager.store.mongo.MongoStore`)."""

    def create_alert(self, doc: dict[str, Any], *, quiet_since: str | None = None) -> tuple[dict[str, Any], bool]:
        prepared = prepare_alert(doc)
        since_us = None if quiet_since is None else created_micros(normalise_timestamp(quiet_since, "quiet_since"))
        created_us = created_micros(prepared["created_at"])
        key = f"{prepared['rule']}\x1f{prepared['subject']}"
        gates, alerts = self._coll(ALERT_GATES), self._coll(ALERT_DELIVERIES)
        row = {"_id": prepared["alert_id"], "rule": prepared["rule"], "subject": prepared["subject"],
               "status": prepared["status"], "created_at": prepared["created_at"], "created_us": created_us,
               "updated_at": prepared["updated_at"], "doc": prepared}

        async def suppressed_by(gate: dict[str, Any] | None) -> tuple[dict[str, Any], bool] | None:
            if gate is None:
                return None
            earlier = await alerts.find_one_and_update(
                {"_id": gate["alert_id"]}, {"$inc": {"doc.suppressed": 1}}, {"doc": 1},
                return_document=ReturnDocument.AFTER)
            return (earlier["doc"], False) if earlier is not None else None

        async def create() -> tuple[dict[str, Any], bool]:
            if await alerts.find_one({"_id": prepared["alert_id"]}, {"_id": 1}) is not None:
                raise StoreError(f"an alert with alert_id {prepared['alert_id']!r} exists")
            for _ in range(100):
                try:
                    await gates.insert_one({"_id": key, "last_us": created_us, "alert_id": prepared["alert_id"]})
                    break
                except DuplicateKeyError:
                    pass
                flt: dict[str, Any] = {"_id": key}
                if since_us is not None:
                    flt["last_us"] = {"$lte": since_us}
                took = await gates.find_one_and_update(
                    flt, {"$set": {"last_us": created_us, "alert_id": prepared["alert_id"]}})
                if took is not None:
                    break
                gate = await gates.find_one({"_id": key})
                out = await suppressed_by(gate)
                if out is not None:
                    return out
                # the gate names an alert that is not stored (yet): a racing creator; look again
                await asyncio.sleep(0.005)
            else:
                raise StoreError(f"could not create the alert {prepared['alert_id']!r}: too much contention")
            try:
                await alerts.insert_one(row)
            except DuplicateKeyError:
                raise StoreError(f"an alert with alert_id {prepared['alert_id']!r} exists") from None
            return prepared, True

        return self._call(create())

    def get_alert(self, alert_id: str) -> dict[str, Any]:
        alert_id = check_id(alert_id, "alert_id")

        async def read() -> Any:
            return await self._coll(ALERT_DELIVERIES).find_one({"_id": alert_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no alert with alert_id {alert_id!r}")
        return row["doc"]

    def record_alert_attempt(self, alert_id: str, *, ok: bool, error: str | None = None,
                             final: bool = False, at: str | None = None) -> dict[str, Any]:
        alert_id = check_id(alert_id, "alert_id")
        attempt_changes({}, ok=ok, error=error, final=final, at=at)  # validate first
        coll = self._coll(ALERT_DELIVERIES)

        async def record() -> dict[str, Any]:
            for _ in range(100):  # compare-and-set on the attempt count
                seen = await coll.find_one({"_id": alert_id}, {"doc": 1})
                if seen is None:
                    raise NotFound(f"no alert with alert_id {alert_id!r}")
                before = int(seen["doc"].get("attempts", 0))
                doc = attempt_changes(seen["doc"], ok=ok, error=error, final=final, at=at)
                moved = await coll.find_one_and_update(
                    {"_id": alert_id, "doc.attempts": {"$eq": before}},
                    {"$set": {"status": doc["status"], "updated_at": doc["updated_at"],
                              "doc.status": doc["status"], "doc.attempts": doc["attempts"],
                              "doc.attempt_log": doc["attempt_log"], "doc.last_error": doc["last_error"],
                              "doc.updated_at": doc["updated_at"]}},
                    {"doc": 1}, return_document=ReturnDocument.AFTER)
                if moved is not None:
                    return moved["doc"]
            raise StoreError(f"alert {alert_id!r}: too many concurrent updates")

        return self._call(record())

    def list_alerts(self, rule: str | None = None, status: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[dict[str, Any]]:
        rule, status, limit, offset = check_alert_page(rule, status, limit, offset)
        query: dict[str, Any] = {}
        if rule is not None:
            query["rule"] = {"$eq": rule}
        if status is not None:
            query["status"] = {"$eq": status}

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(ALERT_DELIVERIES).find(query, {"doc": 1}).sort(_ORDER).skip(offset).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())
