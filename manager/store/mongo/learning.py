"""The MongoDB adapter's learning port
(:class:`~manager.store.ports.learning.LearningStore`): the hall of fame
(``genomes``), ``populations``, ``knowledge``, ``search_trials`` and
``search_studies`` (indexes from migrations 0002, 0004 and 0006: the markets
and training windows the ``market`` / ``trained_by`` filters read are fields
of each document).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from manager.store.errors import NotFound, StoreError
from manager.store.documents import (
    check_id,
    check_limit,
    check_mode,
    check_study_meta,
    check_trained_by,
    knowledge_window,
    population_window,
    prepare_hall_of_fame,
    prepare_knowledge,
    prepare_population,
    prepare_study_meta,
    prepare_trial,
    study_window,
    training_window,
    utc_now,
)
from manager.store.mongo.client import MongoClientBase, keyset
from manager.store.mongo.names import HALL_OF_FAME, KNOWLEDGE, POPULATIONS, STUDIES, TRIALS

__all__ = ["MongoLearning", "population_document"]

INSERT_RETRIES = 1000
"""Attempts to take the next number of a sequence under contention."""


def _query(**filters: str | None) -> dict[str, Any]:
    """The query of the filters that are not None: ``trained_by`` means
    ``train_end <= value`` (a missing or null ``train_end`` never matches: it
    must be a str), any other name equality."""
    query: dict[str, Any] = {}
    for name, value in filters.items():
        if value is not None:
            if name == "trained_by":
                query["train_end"] = {"$lte": value, "$gte": ""}
            else:
                query[name] = {"$eq": value}
    return query


def population_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored population row as the port returns it."""
    return {
        "cycle_id": row["cycle_id"],
        "saved_at": row["saved_at"],
        "genomes": row["genomes"],
        "meta": row["meta"],
    }


class MongoLearning(MongoClientBase):
    """Implements :class:`~manager.store.ports.learning.LearningStore` on MongoDB
    (a mixin of :class:`~manager.store.mongo.MongoStore`)."""

    async def _insert_numbered(
        self,
        name: str,
        field: str,
        make: Callable[[int], dict[str, Any]],
        scope: dict[str, Any] | None = None,
        exists: Callable[[], Awaitable[bool]] | None = None,
    ) -> int:
        """Insert ``make(n)`` where ``n`` is one more than the largest ``field``
        within ``scope`` (0 for the first), retrying when a concurrent writer took
        the same number (the unique index on ``field`` decides). ``exists`` tells a
        duplicate of another unique key (then StoreError is left to the caller)."""
        coll = self._coll(name)
        for _ in range(INSERT_RETRIES):
            last = await coll.find_one(scope or {}, {field: 1}, sort=[(field, -1)])
            number = 0 if last is None else int(last[field]) + 1
            try:
                await coll.insert_one(make(number))
                return number
            except DuplicateKeyError:
                if exists is not None and await exists():
                    raise
                await asyncio.sleep(0)
        raise StoreError(f"MongoDB {self._shown}: could not number a new {name} document")

    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None, *, train_start: str | None = None,
                          train_end: str | None = None) -> None:
        docs, source = prepare_hall_of_fame(entries, source)
        market = check_mode(market, "hall of fame market")
        train_start, train_end = training_window(train_start, train_end, "hall of fame")
        self._call(self._insert_numbered(
            HALL_OF_FAME, "version",
            lambda n: {"version": n, "saved_at": utc_now(), "source": source, "market": market,
                       "train_start": train_start, "train_end": train_end, "entries": docs},
        ))

    def latest_hall_of_fame(self, market: str | None = None,
                            trained_by: str | None = None) -> list[dict[str, Any]] | None:
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)

        async def read() -> Any:
            query = _query(market=market, trained_by=trained_by)
            return await self._coll(HALL_OF_FAME).find_one(
                query, {"entries": 1}, sort=[("version", -1)])

        row = self._call(read())
        return None if row is None else row["entries"]

    # -- learning: populations ------------------------------------------------------------

    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        cycle_id, docs, meta_doc, mode, market = prepare_population(cycle_id, genomes, meta)
        train_start, train_end = population_window(meta_doc)
        coll = self._coll(POPULATIONS)

        async def exists() -> bool:
            return await coll.find_one({"_id": cycle_id}, {"_id": 1}) is not None

        async def insert() -> None:
            try:
                await self._insert_numbered(
                    POPULATIONS, "seq",
                    lambda n: {"_id": cycle_id, "cycle_id": cycle_id, "seq": n,
                               "saved_at": utc_now(), "mode": mode, "market": market,
                               "train_start": train_start, "train_end": train_end,
                               "genomes": docs, "meta": meta_doc},
                    exists=exists,
                )
            except DuplicateKeyError:
                raise StoreError(
                    f"a population with cycle_id {cycle_id!r} already exists; "
                    "populations are never overwritten"
                ) from None

        self._call(insert())

    def latest_population(self, mode: str | None = None, market: str | None = None,
                          trained_by: str | None = None) -> dict[str, Any] | None:
        mode = check_mode(mode)
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)

        async def read() -> Any:
            query = _query(market=market, mode=mode, trained_by=trained_by)
            return await self._coll(POPULATIONS).find_one(query, sort=[("seq", -1)])

        row = self._call(read())
        return None if row is None else population_document(row)

    def get_population(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")

        async def read() -> Any:
            return await self._coll(POPULATIONS).find_one({"_id": cycle_id})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no population with cycle_id {cycle_id!r}")
        return population_document(row)

    # -- learning: knowledge base ----------------------------------------------------------

    def save_knowledge(self, record: dict[str, Any]) -> str:
        doc = prepare_knowledge(record)
        market, train_start, train_end, data_end = knowledge_window(doc)

        async def insert() -> None:
            try:
                await self._coll(KNOWLEDGE).insert_one({
                    "_id": doc["cycle_id"], "cycle_id": doc["cycle_id"], "mode": doc["mode"],
                    "created_at": doc["created_at"], "market": market, "train_start": train_start,
                    "train_end": train_end, "data_end": data_end, "doc": doc,
                })
            except DuplicateKeyError:
                raise StoreError(
                    f"a knowledge record with cycle_id {doc['cycle_id']!r} already exists; "
                    "knowledge records are never overwritten"
                ) from None

        self._call(insert())
        return doc["cycle_id"]

    def list_knowledge(
        self, limit: int = 50, before: str | None = None, mode: str | None = None,
        market: str | None = None, trained_by: str | None = None,
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        mode = check_mode(mode)
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)
        if before is not None:
            check_id(before, "list_knowledge cursor before")

        async def read() -> list[dict[str, Any]]:
            coll = self._coll(KNOWLEDGE)
            query: dict[str, Any] = _query(mode=mode, market=market)
            if trained_by is not None:
                query["data_end"] = {"$lte": trained_by, "$gte": ""}
            if before is not None:
                cursor = await coll.find_one({"_id": before}, {"created_at": 1, "cycle_id": 1})
                if cursor is None:
                    raise NotFound(
                        f"list_knowledge cursor before={before!r} names no knowledge record"
                    )
                query.update(keyset(cursor["created_at"], "cycle_id", cursor["cycle_id"]))
            rows = coll.find(query, {"doc": 1}).sort(
                [("created_at", -1), ("cycle_id", -1)]).limit(limit)
            return [row["doc"] async for row in rows]

        return self._call(read())

    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")

        async def read() -> Any:
            return await self._coll(KNOWLEDGE).find_one({"_id": cycle_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no knowledge record with cycle_id {cycle_id!r}")
        return row["doc"]

    # -- learning: search trials ------------------------------------------------------------

    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        study, doc = prepare_trial(study, trial)
        return self._call(self._insert_numbered(
            TRIALS, "index",
            lambda n: {"study": study, "index": n, "value": doc["value"], "saved_at": utc_now(),
                       "doc": doc},
            scope={"study": study},
        ))

    def list_trials(self, study: str) -> list[dict[str, Any]]:
        check_id(study, "study")

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(TRIALS).find({"study": study}).sort("index", 1)
            return [
                {"index": row["index"], **row["doc"], "saved_at": row["saved_at"]}
                async for row in cursor
            ]

        return self._call(read())

    def list_studies(self, market: str | None = None,
                     trained_by: str | None = None) -> list[dict[str, Any]]:
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)
        filtered = market is not None or trained_by is not None

        async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            groups = await self._coll(TRIALS).aggregate([
                {"$group": {"_id": "$study", "n": {"$sum": 1}, "best": {"$min": "$value"},
                            "last": {"$max": "$saved_at"}}},
            ])
            trials = await groups.to_list(None)
            metas = await self._coll(STUDIES).find(
                _query(market=market, trained_by=trained_by)).to_list(None)
            return trials, metas

        trials, metas = self._call(read())
        if filtered:  # only studies whose meta matched
            keep = {row["_id"] for row in metas}
            trials = [row for row in trials if row["_id"] in keep]
        studies: dict[str, dict[str, Any]] = {}
        for row in trials:
            studies[row["_id"]] = {
                "study": row["_id"],
                "trials": int(row["n"]),
                "best_value": float(row["best"]),
                "updated_at": row["last"],
                "meta": None,
            }
        for row in metas:
            entry = studies.setdefault(row["_id"], {
                "study": row["_id"],
                "trials": 0,
                "best_value": None,
                "updated_at": row["updated_at"],
                "meta": None,
            })
            entry["meta"] = row["meta"]
            entry["updated_at"] = max(entry["updated_at"], row["updated_at"])
        ordered = sorted(studies.values(), key=lambda e: e["study"])
        ordered.sort(key=lambda e: e["updated_at"], reverse=True)
        return ordered

    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        study, meta_doc = prepare_study_meta(study, meta)
        market, train_end = study_window(meta_doc)

        async def save() -> None:
            coll = self._coll(STUDIES)
            now = utc_now()
            try:
                await coll.insert_one(
                    {"_id": study, "meta": meta_doc, "created_at": now, "updated_at": now,
                     "market": market, "train_end": train_end})
                return
            except DuplicateKeyError:
                pass
            row = await coll.find_one({"_id": study})
            if not replace:
                check_study_meta(study, row["meta"], meta_doc)  # raises if they differ
                return
            await coll.update_one(
                {"_id": study}, {"$set": {"meta": meta_doc, "updated_at": now, "market": market,
                                          "train_end": train_end}})

        self._call(save())

    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        check_id(study, "study")

        async def read() -> Any:
            return await self._coll(STUDIES).find_one({"_id": study}, {"meta": 1})

        row = self._call(read())
        return None if row is None else row["meta"]

