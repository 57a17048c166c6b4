"""The MongoDB adapter's policy port (:class:`~manager.store.ports.policy.PolicyStore`):
``policy_decisions`` and ``kill_switch`` (indexes from migration 0009).

``policy_decisions``: ``_id = decision_id``; the keyed and filtered fields flat
(``market``, ``subject``, ``subject_kind``, ``period``, ``period_end``, ``tier``,
``trigger``, ``source``, ``decided_at``, ``recorded_at``), ``period_end_us``
(``period_end`` in microseconds since 1970: every range, sort and index on the
period's end uses it, as the run listing uses ``created_us``: nx-27017 compares
date-like strings as times of whole seconds, which would let a decision ending
a microsecond after ``as_of`` through) and the whole decision in ``doc``. The
unique index ``(market, subject, period)`` makes recording idempotent (a writer
that loses a race reads the winner's decision); the point-in-time lookup is one
aggregation (``$match`` market and ``period_end_us <= as_of`` on the index
``(market, subject, period_end_us)``, ``$sort``, ``$group`` taking each
subject's first). Nothing updates or deletes a decision.

``kill_switch``: one document ``_id = "state"`` (``on``, ``actor``, ``reason``,
``at``). A change writes the state together with its audit event as
``pending`` (and ``pending_id``, the event's fixed ``_id`` as hex text: nx-27017
matches no ObjectId outside ``_id``), then the event into
``audit_events``, then clears ``pending``: in one transaction where the server
has them, else in this order, and a pending event a failure left behind is
written (once: its ``_id`` is fixed) by the next read or change of the switch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from manager.store.documents import (
    KILL_SWITCH_KINDS,
    check_as_of,
    check_limit,
    check_page,
    check_policy_filters,
    created_micros,
    kill_switch_off,
    prepare_audit_event,
    prepare_kill_switch,
    prepare_policy_decision,
    require_str,
)
from manager.store.errors import StoreError
from manager.store.mongo.audit import audit_row
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import AUDIT, KILL_SWITCH, POLICY_DECISIONS

__all__ = ["MongoPolicy"]

_STATE = "state"
_LIST_ORDER = [("period_end_us", -1), ("subject", 1), ("market", 1)]


def _query(filters: dict[str, Any]) -> dict[str, Any]:
    """The query of the checked filters that are not None (``$eq``: see
    :mod:`manager.store.mongo` on nx-27017)."""
    query: dict[str, Any] = {}
    for name in ("market", "subject", "subject_kind", "trigger", "source"):
        if filters[name] is not None:
            query[name] = {"$eq": filters[name]}
    bounds: dict[str, Any] = {}
    if filters["since"] is not None:
        bounds["$gte"] = created_micros(filters["since"])
    if filters["until"] is not None:
        bounds["$lt"] = created_micros(filters["until"])
    if bounds:
        query["period_end_us"] = bounds
    return query


class MongoPolicy(MongoClientBase):
    """Implements :class:`~manager.store.ports.policy.PolicyStore` on MongoDB (a
    mixin of :class:`~manager.store.mongo.MongoStore`)."""

    # -- policy decisions ------------------------------------------------------------

    def record_policy_decision(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        prepared = prepare_policy_decision(doc)
        coll = self._coll(POLICY_DECISIONS)
        key = {name: {"$eq": prepared[name]} for name in ("market", "subject", "period")}

        async def stored() -> Any:
            return await coll.find_one(key, {"doc": 1})

        async def record() -> tuple[dict[str, Any], bool]:
            row = await stored()
            if row is not None:
                return row["doc"], False
            try:
                await coll.insert_one({
                    "_id": prepared["decision_id"],
                    **{name: prepared[name] for name in (
                        "decision_id", "market", "subject", "subject_kind", "period",
                        "period_end", "tier", "trigger", "source", "decided_at", "recorded_at")},
                    "period_end_us": created_micros(prepared["period_end"]),
                    "doc": prepared,
                })
            except DuplicateKeyError:
                row = await stored()  # a concurrent writer recorded this key first
                if row is not None:
                    return row["doc"], False
                raise StoreError(
                    f"decision_id {prepared['decision_id']!r} is already the id of a policy "
                    "decision of another (market, subject, period) than "
                    f"{(prepared['market'], prepared['subject'], prepared['period'])!r}"
                ) from None
            return prepared, True

        return self._call(record())

    def list_policy_decisions(
        self,
        *,
        market: str | None = None,
        subject: str | None = None,
        subject_kind: str | None = None,
        trigger: str | None = None,
        source: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        query = _query(check_policy_filters(market, subject, subject_kind, trigger, since, until, source))
        limit, offset = check_page(limit, offset)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(POLICY_DECISIONS).find(query, {"doc": 1}).sort(
                _LIST_ORDER).skip(offset).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

    def count_policy_decisions(
        self,
        *,
        market: str | None = None,
        subject: str | None = None,
        subject_kind: str | None = None,
        trigger: str | None = None,
        source: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> int:
        query = _query(check_policy_filters(market, subject, subject_kind, trigger, since, until, source))

        async def count() -> int:
            counted = await self._database().command(
                {"count": POLICY_DECISIONS, "query": query})
            return int(counted["n"])

        return self._call(count())

    def policy_tiers(self, market: str, as_of: str | datetime) -> dict[str, dict[str, Any]]:
        market = require_str(market, "market")
        as_of = check_as_of(as_of)
        pipeline = [
            {"$match": {"market": {"$eq": market},
                        "period_end_us": {"$lte": created_micros(as_of)}}},
            {"$sort": {"subject": 1, "period_end_us": -1, "period": -1}},
            {"$group": {"_id": "$subject", "doc": {"$first": "$doc"}}},
        ]

        async def read() -> dict[str, dict[str, Any]]:
            cursor = await self._coll(POLICY_DECISIONS).aggregate(pipeline)
            return {row["_id"]: row["doc"] async for row in cursor}

        return self._call(read())

    # -- kill switch ---------------------------------------------------------------------

    async def _write_event(self, event_id: ObjectId, event: dict[str, Any],
                           session: AsyncClientSession | None = None) -> None:
        try:
            await self._coll(AUDIT).insert_one(audit_row(event, event_id), session=session)
        except DuplicateKeyError:
            pass  # written before (by an earlier attempt or another reader)

    async def _switch_state(self) -> Any:
        """The state document, after writing the audit event a failed change left pending."""
        coll = self._coll(KILL_SWITCH)
        row = await coll.find_one({"_id": _STATE})
        if row is not None and row.get("pending_id") is not None:
            await self._write_event(ObjectId(row["pending_id"]), row["pending"])
            await coll.update_one({"_id": _STATE, "pending_id": {"$eq": row["pending_id"]}},
                                  {"$unset": {"pending": "", "pending_id": ""}})
        return row

    def kill_switch(self) -> dict[str, Any]:
        row = self._call(self._switch_state())
        if row is None:
            return kill_switch_off()
        return {"on": bool(row["on"]), "actor": row["actor"], "reason": row["reason"],
                "at": row["at"]}

    def set_kill_switch(
        self, on: bool, *, actor: str, reason: str, at: str | datetime | None = None,
    ) -> dict[str, Any]:
        state, event = prepare_kill_switch(on, actor, reason, at)
        event = prepare_audit_event(event)
        event_id = ObjectId()
        pending_id = str(event_id)
        coll = self._coll(KILL_SWITCH)

        async def change(session: AsyncClientSession | None) -> None:
            await coll.update_one(
                {"_id": _STATE},
                {"$set": {**state, "pending": event, "pending_id": pending_id}},
                upsert=True, session=session)
            await self._write_event(event_id, event, session)
            await coll.update_one({"_id": _STATE, "pending_id": {"$eq": pending_id}},
                                  {"$unset": {"pending": "", "pending_id": ""}}, session=session)

        async def run() -> None:
            await self._switch_state()  # an earlier change's pending event first
            await self._atomic(change)

        self._call(run())
        return state

    def kill_switch_history(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(AUDIT).find(
                {"kind": {"$in": list(KILL_SWITCH_KINDS)}}, {"doc": 1}).sort(
                [("at", -1), ("event_id", -1)]).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())
