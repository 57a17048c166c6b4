"""The MongoDB adapter's assistant port (:class:`~manager.store.ports.intents.IntentStore`):
the collections ``intents`` and ``knowledge_entries`` (migration 0014).

``intents``: ``_id = intent_id``; ``kind``, ``status``, ``created_us`` (what the listing
sorts on), the whole intent in ``doc``. A conditional update is ``find_one_and_update``
with ``status`` in the filter; a report append is a compare-and-set on ``n_reports`` (the
number of reports): read, refuse a day already reported, then set the new list only if
``n_reports`` did not move (so a day is reported once).

``knowledge_entries``: ``_id = entry_id``; ``kind``, ``market``, ``links`` (array; the
link filter is an equality on it), ``created_at``, ``created_us``, the entry in ``doc``.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from manager.store.documents import created_micros
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
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import INTENTS, KNOWLEDGE_ENTRIES

__all__ = ["MongoIntents"]

_ORDER = [("created_us", -1), ("_id", 1)]


def _sorted(doc: dict[str, Any]) -> dict[str, Any]:
    doc["reports"] = sorted(doc.get("reports", []), key=lambda r: r["day"])
    return doc


class MongoIntents(MongoClientBase):
    """Implements the assistant port on MongoDB (a mixin of :class:`~manager.store.mongo.MongoStore`)."""

    def create_intent(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_intent(doc)
        row = {"_id": prepared["intent_id"], "kind": prepared["kind"], "status": prepared["status"],
               "created_us": created_micros(prepared["created_at"]), "n_reports": 0, "doc": prepared}

        async def insert() -> None:
            try:
                await self._coll(INTENTS).insert_one(row)
            except DuplicateKeyError:
                raise StoreError(f"an intent with intent_id {prepared['intent_id']!r} exists") from None

        self._call(insert())
        return prepared

    def get_intent(self, intent_id: str) -> dict[str, Any]:
        intent_id = check_id(intent_id, "intent_id")

        async def read() -> Any:
            return await self._coll(INTENTS).find_one({"_id": intent_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no intent with intent_id {intent_id!r}")
        return _sorted(row["doc"])

    def update_intent(self, intent_id: str, changes: dict[str, Any], *,
                      expected_status: str | None = None) -> dict[str, Any] | None:
        intent_id = check_id(intent_id, "intent_id")
        changes = prepare_intent_changes(changes)
        now = utc_now()
        update: dict[str, Any] = {f"doc.{k}": v for k, v in changes.items()}
        update["doc.updated_at"] = now
        if "status" in changes:
            update["status"] = changes["status"]
        flt: dict[str, Any] = {"_id": intent_id}
        if expected_status is not None:
            flt["status"] = {"$eq": expected_status}
        coll = self._coll(INTENTS)

        async def run() -> Any:
            moved = await coll.find_one_and_update(flt, {"$set": update}, {"doc": 1},
                                                   return_document=ReturnDocument.AFTER)
            if moved is None and await coll.find_one({"_id": intent_id}, {"_id": 1}) is None:
                raise NotFound(f"no intent with intent_id {intent_id!r}")
            return moved

        moved = self._call(run())
        return None if moved is None else _sorted(moved["doc"])

    def add_intent_report(self, intent_id: str, report: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        intent_id = check_id(intent_id, "intent_id")
        report = prepare_intent_report(report)
        coll = self._coll(INTENTS)

        async def run() -> tuple[Any, bool]:
            for _ in range(100):  # compare-and-set on the number of reports
                seen = await coll.find_one({"_id": intent_id}, {"doc": 1, "n_reports": 1})
                if seen is None:
                    raise NotFound(f"no intent with intent_id {intent_id!r}")
                reports = seen["doc"].get("reports", [])
                if any(r["day"] == report["day"] for r in reports):
                    return seen, False
                n = int(seen.get("n_reports", 0))
                moved = await coll.find_one_and_update(
                    {"_id": intent_id, "n_reports": {"$eq": n}},
                    {"$set": {"doc.reports": sorted([*reports, report], key=lambda r: r["day"]),
                              "n_reports": n + 1, "doc.updated_at": utc_now()}}, {"doc": 1},
                    return_document=ReturnDocument.AFTER)
                if moved is not None:
                    return moved, True
            raise StoreError(f"intent {intent_id!r}: too many concurrent reports")

        row, added = self._call(run())
        return _sorted(row["doc"]), added

    def list_intents(self, kind: str | None = None, status: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]:
        kind, status, limit, offset = check_intent_page(kind, status, limit, offset)
        query: dict[str, Any] = {}
        if kind is not None:
            query["kind"] = {"$eq": kind}
        if status is not None:
            query["status"] = {"$eq": status}

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(INTENTS).find(query, {"doc": 1}).sort(_ORDER).skip(offset).limit(limit)
            return [_sorted(row["doc"]) async for row in cursor]

        return self._call(read())

    def add_knowledge_entry(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_knowledge_entry(doc)
        row = {"_id": prepared["entry_id"], "kind": prepared["kind"], "market": prepared["market"],
               "links": prepared["links"], "created_at": prepared["created_at"],
               "created_us": created_micros(prepared["created_at"]), "doc": prepared}

        async def insert() -> None:
            try:
                await self._coll(KNOWLEDGE_ENTRIES).insert_one(row)
            except DuplicateKeyError:
                raise StoreError(f"a knowledge entry with entry_id {prepared['entry_id']!r} exists") from None

        self._call(insert())
        return prepared

    def get_knowledge_entry(self, entry_id: str) -> dict[str, Any]:
        entry_id = check_id(entry_id, "entry_id")

        async def read() -> Any:
            return await self._coll(KNOWLEDGE_ENTRIES).find_one({"_id": entry_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no knowledge entry with entry_id {entry_id!r}")
        return row["doc"]

    def list_knowledge_entries(self, *, kind: str | None = None, market: str | None = None,
                               link: str | None = None, since: str | None = None, until: str | None = None,
                               limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        f = check_knowledge_filters(kind, market, link, since, until, limit, offset)
        query: dict[str, Any] = {}
        for field in ("kind", "market"):
            if f[field] is not None:
                query[field] = {"$eq": f[field]}
        if f["link"] is not None:
            query["links"] = {"$in": [f["link"]]}  # any element of the array
        span: dict[str, Any] = {}
        if f["since"] is not None:
            span["$gte"] = created_micros(f["since"])
        if f["until"] is not None:
            span["$lt"] = created_micros(f["until"])
        if span:
            query["created_us"] = span

        async def read() -> list[dict[str, Any]]:
            cursor = (self._coll(KNOWLEDGE_ENTRIES).find(query, {"doc": 1}).sort(_ORDER)
                      .skip(f["offset"]).limit(f["limit"]))
            return [row["doc"] async for row in cursor]

        return self._call(read())
