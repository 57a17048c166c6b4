"""The MongoDB adapter's campaign and promotion ports
(:class:`~manager.store.ports.promotions.CampaignStore`,
:class:`~manager.store.ports.promotions.PromotionStore`): the collections
``campaigns``, ``promotions`` and ``promotion_log`` (indexes from migration 0011).

``campaigns``: ``_id = campaign_id``; ``market``, ``created_at``, ``created_us``
(its microseconds, what the listing sorts on), the whole campaign in ``doc``.

``promotions``: ``_id = promotion_id``; the filtered fields flat (``status``,
``campaign_id``, ``agent_id``, ``run_id``, ``created_at``, ``created_us``,
``updated_at``, ``expires_at``), the whole request in ``doc`` and ``log_seq``
(how many log rows it has). A transition is a compare-and-set:
``find_one_and_update({_id, status: from, log_seq: seen}, {$set: new status,
doc, log_seq + 1, pending})`` -- of two concurrent writers from one status only
one matches. The log row (``_id = "<promotion_id>:<seq>"``) and the audit event
(a fixed ``ObjectId``) go with it as ``pending`` and are then inserted (a
duplicate key means "already written") and ``pending`` cleared: inside a
transaction where the server has them, else in that order, a pending pair a
failure left behind being written by the next read of the request.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from manager.store.documents import created_micros, prepare_audit_event
from manager.store.documents.promotions import (
    check_page,
    check_promotion_filters,
    check_status,
    prepare_campaign,
    prepare_promotion,
    prepare_step,
    promotion_audit_event,
    promotion_log_row,
)
from manager.store.documents.values import check_id
from manager.store.errors import NotFound, StoreError
from manager.store.mongo.audit import audit_row
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import AUDIT, CAMPAIGNS, PROMOTION_REQUESTS, PROMOTIONS

__all__ = ["MongoPromotions"]

_ORDER = [("created_us", -1), ("_id", 1)]


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: {"$eq": v} for k, v in filters.items() if v is not None}


def _pending(doc: dict[str, Any], seq: int, from_status: str | None, to_status: str,
             step: dict[str, Any]) -> dict[str, Any]:
    log = {"_id": f"{doc['promotion_id']}:{seq}", "seq": seq,
           **promotion_log_row(doc, from_status, to_status, step)}
    event = prepare_audit_event(promotion_audit_event(doc, from_status, to_status, step))
    return {"id": str(ObjectId()), "log": log, "event": event}


class MongoPromotions(MongoClientBase):
    """Implements the campaign and promotion ports on MongoDB (a mixin of
    :class:`~manager.store.mongo.MongoStore`)."""

    # -- campaigns -----------------------------------------------------------------

    def save_campaign(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_campaign(doc)
        coll = self._coll(CAMPAIGNS)

        async def save() -> dict[str, Any]:
            row = await coll.find_one({"_id": prepared["campaign_id"]}, {"created_at": 1})
            if row is not None:
                prepared["created_at"] = row["created_at"]
            await coll.replace_one(
                {"_id": prepared["campaign_id"]},
                {"_id": prepared["campaign_id"], "market": prepared["market"], "created_at": prepared["created_at"],
                 "created_us": created_micros(prepared["created_at"]), "doc": prepared},
                upsert=True)
            return prepared

        return self._call(save())

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        campaign_id = check_id(campaign_id, "campaign_id")

        async def read() -> Any:
            return await self._coll(CAMPAIGNS).find_one({"_id": campaign_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no campaign with campaign_id {campaign_id!r}")
        return row["doc"]

    def list_campaigns(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        limit, offset = check_page(limit, offset)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(CAMPAIGNS).find({}, {"doc": 1}).sort(_ORDER).skip(offset).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

    # -- promotions ----------------------------------------------------------------

    async def _flush(self, row: dict[str, Any] | None,
                     session: AsyncClientSession | None = None) -> None:
        """Write the log row and audit event pending on ``row`` (once), then clear it."""
        if row is None or not row.get("pending"):
            return
        pending = row["pending"]
        try:
            await self._coll(PROMOTIONS).insert_one(dict(pending["log"]), session=session)
        except DuplicateKeyError:
            pass
        try:
            await self._coll(AUDIT).insert_one(audit_row(pending["event"], ObjectId(pending["id"])),
                                               session=session)
        except DuplicateKeyError:
            pass
        await self._coll(PROMOTION_REQUESTS).update_one(
            {"_id": row["_id"], "pending.id": {"$eq": pending["id"]}}, {"$unset": {"pending": ""}},
            session=session)

    async def _row(self, promotion_id: str) -> dict[str, Any]:
        row = await self._coll(PROMOTION_REQUESTS).find_one({"_id": promotion_id})
        if row is None:
            raise NotFound(f"no promotion with promotion_id {promotion_id!r}")
        if row.get("pending"):
            await self._flush(row)
        return row

    def create_promotion(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_promotion(doc)
        actor = (prepared.get("proposed_by") or {}).get("user") or "system"
        step = prepare_step({"user": actor, "at": prepared["created_at"], "kind": "created"})
        pending = _pending(prepared, 1, None, prepared["status"], step)
        row = {"_id": prepared["promotion_id"],
               **{k: prepared[k] for k in ("status", "campaign_id", "agent_id", "run_id", "created_at",
                                           "updated_at", "expires_at")},
               "created_us": created_micros(prepared["created_at"]), "doc": prepared, "log_seq": 1,
               "pending": pending}

        async def create(session: AsyncClientSession | None) -> None:
            try:
                await self._coll(PROMOTION_REQUESTS).insert_one(dict(row), session=session)
            except DuplicateKeyError:
                raise StoreError(f"a promotion with promotion_id {prepared['promotion_id']!r} exists") from None
            await self._flush(row, session)

        self._call(self._atomic(create))
        return prepared

    def get_promotion(self, promotion_id: str) -> dict[str, Any]:
        promotion_id = check_id(promotion_id, "promotion_id")
        return self._call(self._row(promotion_id))["doc"]

    def list_promotions(self, *, status: str | None = None, campaign_id: str | None = None,
                        limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        query = _query(check_promotion_filters(status, campaign_id))
        limit, offset = check_page(limit, offset)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(PROMOTION_REQUESTS).find(query, {"doc": 1}).sort(_ORDER).skip(offset).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

    def count_promotions(self, *, status: str | None = None, campaign_id: str | None = None) -> int:
        query = _query(check_promotion_filters(status, campaign_id))

        async def count() -> int:
            return int((await self._database().command({"count": PROMOTION_REQUESTS, "query": query}))["n"])

        return self._call(count())

    def transition_promotion(self, promotion_id: str, from_status: str, to_status: str,
                             step: dict[str, Any]) -> bool:
        promotion_id = check_id(promotion_id, "promotion_id")
        from_status = check_status(from_status, "from_status")
        to_status = check_status(to_status, "to_status")
        step = prepare_step(step)

        async def move(session: AsyncClientSession | None) -> bool:
            seen = await self._row(promotion_id)
            if seen["status"] != from_status:
                return False
            doc = dict(seen["doc"])
            doc["status"], doc["updated_at"] = to_status, step["at"]
            doc["steps"] = [*doc.get("steps", []), step]
            seq = int(seen.get("log_seq", 0)) + 1
            pending = _pending(doc, seq, from_status, to_status, step)
            row = await self._coll(PROMOTION_REQUESTS).find_one_and_update(
                {"_id": promotion_id, "status": {"$eq": from_status}, "log_seq": {"$eq": seq - 1}},
                {"$set": {"status": to_status, "updated_at": step["at"], "doc": doc, "log_seq": seq,
                          "pending": pending}},
                return_document=ReturnDocument.AFTER, session=session)
            if row is None:
                return False
            await self._flush(row, session)
            return True

        return self._call(self._atomic(move))

    def promotion_log(self, promotion_id: str) -> list[dict[str, Any]]:
        promotion_id = check_id(promotion_id, "promotion_id")

        async def read() -> list[dict[str, Any]]:
            try:
                await self._row(promotion_id)
            except NotFound:
                return []
            cursor = self._coll(PROMOTIONS).find({"promotion_id": {"$eq": promotion_id}}).sort([("seq", 1)])
            return [{k: v for k, v in row.items() if k != "_id"} async for row in cursor]

        return self._call(read())
