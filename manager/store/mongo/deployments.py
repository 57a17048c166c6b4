"""The MongoDB adapter's deployment port
(:class:`~manager.store.ports.deployments.DeploymentStore`): the collections
``deployments`` and ``deployment_incidents`` (indexes from migration 0012).

``deployments``: ``_id = deployment_id``; ``promotion_id`` (unique index: one
deployment per promotion), ``status``, ``last_bar``, ``created_at``,
``created_us`` (what the listing sorts on), ``updated_at``, the whole deployment
in ``doc``. An update is a compare-and-set: ``find_one_and_update({_id,
last_bar: expected[, status: expected]}, {$set: ...})`` -- of two workers
expecting the same bar only one matches.

``deployment_incidents``: ``_id = "<deployment_id>:<seq>"``, ``deployment_id``,
``seq``, ``doc``; a concurrent append that takes the same ``seq`` gets a
duplicate key and retries with the next one.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from manager.store.documents import created_micros
from manager.store.documents.deployments import (
    check_deployment_page,
    check_last_bar,
    prepare_changes,
    prepare_deployment,
    prepare_incident,
)
from manager.store.documents.promotions import check_status
from manager.store.documents.values import check_id
from manager.store.errors import NotFound, StoreError
from manager.store.mongo.client import MongoClientBase
from manager.store.mongo.names import DEPLOYMENT_INCIDENTS, DEPLOYMENTS

__all__ = ["MongoDeployments"]

_ORDER = [("created_us", -1), ("_id", 1)]


class MongoDeployments(MongoClientBase):
    """Implements the deployment port on MongoDB (a mixin of
    :class:`~manager.store.mongo.MongoStore`)."""

    def create_deployment(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_deployment(doc)
        coll = self._coll(DEPLOYMENTS)
        row = {"_id": prepared["deployment_id"],
               **{k: prepared[k] for k in ("promotion_id", "status", "last_bar", "created_at", "updated_at")},
               "created_us": created_micros(prepared["created_at"]), "doc": prepared, "rev": 0}

        async def create() -> dict[str, Any]:
            for _ in range(2):
                seen = await coll.find_one({"promotion_id": {"$eq": prepared["promotion_id"]}}, {"doc": 1})
                if seen is not None:
                    return seen["doc"]
                try:
                    await coll.insert_one(dict(row))
                    return prepared
                except DuplicateKeyError:
                    if await coll.find_one({"_id": prepared["deployment_id"],
                                            "promotion_id": {"$ne": prepared["promotion_id"]}}, {"_id": 1}):
                        raise StoreError(f"a deployment with deployment_id {prepared['deployment_id']!r} "
                                         f"exists for another promotion") from None
            raise StoreError(f"could not create the deployment of promotion {prepared['promotion_id']!r}")

        return self._call(create())

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        deployment_id = check_id(deployment_id, "deployment_id")

        async def read() -> Any:
            return await self._coll(DEPLOYMENTS).find_one({"_id": deployment_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
        return row["doc"]

    def list_deployments(self, status: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[dict[str, Any]]:
        status, limit, offset = check_deployment_page(status, limit, offset)
        query = {} if status is None else {"status": {"$eq": status}}

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(DEPLOYMENTS).find(query, {"doc": 1}).sort(_ORDER).skip(offset).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

    def update_deployment(self, deployment_id: str, expected_last_bar: int, changes: dict[str, Any], *,
                          expected_status: str | None = None) -> bool:
        deployment_id = check_id(deployment_id, "deployment_id")
        expected_last_bar = check_last_bar(expected_last_bar, "expected_last_bar")
        if expected_status is not None:
            expected_status = check_status(expected_status, "expected_status")
        changes = prepare_changes(changes)
        coll = self._coll(DEPLOYMENTS)

        async def move() -> bool:
            for _ in range(100):  # a concurrent write between the read and the compare-and-set: re-check
                seen = await coll.find_one({"_id": deployment_id})
                if seen is None:
                    raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
                if seen["last_bar"] != expected_last_bar or (expected_status is not None
                                                             and seen["status"] != expected_status):
                    return False
                doc = {**seen["doc"], **changes}
                rev = int(seen.get("rev", 0))
                row = await coll.find_one_and_update(
                    {"_id": deployment_id, "last_bar": {"$eq": expected_last_bar}, "rev": {"$eq": rev}},
                    {"$set": {"status": doc["status"], "last_bar": doc["last_bar"],
                              "updated_at": doc["updated_at"], "doc": doc, "rev": rev + 1}},
                    return_document=ReturnDocument.AFTER)
                if row is not None:
                    return True
            raise StoreError(f"deployment {deployment_id!r}: too many concurrent updates")

        return self._call(move())

    def record_incident(self, deployment_id: str, incident: dict[str, Any]) -> dict[str, Any]:
        deployment_id = check_id(deployment_id, "deployment_id")
        prepared = prepare_incident(deployment_id, incident)
        coll = self._coll(DEPLOYMENT_INCIDENTS)

        async def append() -> dict[str, Any]:
            if await self._coll(DEPLOYMENTS).find_one({"_id": deployment_id}, {"_id": 1}) is None:
                raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
            for _ in range(100):
                last = await coll.find_one({"deployment_id": {"$eq": deployment_id}}, {"seq": 1},
                                           sort=[("seq", -1)])
                seq = 1 if last is None else int(last["seq"]) + 1
                out = {**prepared, "seq": seq}
                try:
                    await coll.insert_one({"_id": f"{deployment_id}:{seq}", "deployment_id": deployment_id,
                                           "seq": seq, "doc": out})
                    return out
                except DuplicateKeyError:
                    continue
            raise StoreError(f"could not append an incident to deployment {deployment_id!r}")

        return self._call(append())

    def list_incidents(self, deployment_id: str) -> list[dict[str, Any]]:
        deployment_id = check_id(deployment_id, "deployment_id")

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(DEPLOYMENT_INCIDENTS).find({"deployment_id": {"$eq": deployment_id}}).sort(
                [("seq", 1)])
            return [row["doc"] async for row in cursor]

        return self._call(read())
