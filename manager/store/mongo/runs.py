"""The MongoDB adapter's runs port (:class:`~manager.store.ports.runs.RunStore`):
runs, their results and the listings (the ledger journal is in
:mod:`~manager.store.mongo.ledger`).

A run is one document of ``sim_runs_intraday``: ``_id`` = ``run_id``, the
store's fields, the typed ``header`` sub-document, the caller's document in
``doc``, and for cohorts the listing fields of :func:`listing_set`. Results
are children tagged with the ``attempt`` of the completion that wrote them
(see :mod:`manager.store.mongo`, "Atomicity").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from manager.store.errors import InvalidDocument, RunNotFound, RunStateError, StoreError
from manager.store.documents import (
    COHORT_SUMMARY_KEYS,
    RUN_KINDS,
    RUN_STATUSES,
    check_cohort_listing,
    check_limit,
    check_run_id,
    cohort_listing_fields,
    created_micros,
    decode_array,
    empty_header,
    encode_array,
    lease_deadline,
    prepare_agent,
    prepare_run,
    prepare_trade,
    require_list,
    require_mapping,
    require_str,
    to_document,
    utc_now,
)
from manager.store.mongo.client import Retry, chunks, is_duplicate, keyset
from manager.store.mongo.ledger import MongoLedger, prepare_ledger
from manager.store.mongo.names import AGENTS, CHILDREN, CURVES, LEDGER, RUNS, SUMMARIES, TRADES

__all__ = ["MongoRuns", "listing_set"]

_CHUNK_BYTES = 8 * 1024 * 1024  # a curve's .npy bytes per document (BSON limit: 16 MiB)


class _Results:
    """complete_run's input, validated and turned into documents (no I/O)."""

    def __init__(
        self,
        summary: Any,
        agents: Any,
        trades: Any,
        ledger: Any,
        curves: Any,
        timings: Any,
        run_id: str,
    ) -> None:
        self.summary = to_document(require_mapping(summary, "summary"), "summary")
        self.timings = to_document(require_mapping(timings, "timings"), "timings")
        self.agents: list[dict[str, Any]] = []
        seen_agents: set[str] = set()
        for rank, agent in enumerate(require_list(agents, "agents")):
            doc = prepare_agent(agent, f"agents[{rank}]")
            if doc["agent_id"] in seen_agents:
                raise InvalidDocument(
                    f"agents[{rank}] agent_id {doc['agent_id']!r} appears twice; "
                    "agent ids must be unique within a run"
                )
            seen_agents.add(doc["agent_id"])
            self.agents.append(doc)
        self.trades = [
            prepare_trade(trade, f"trades[{position}]")
            for position, trade in enumerate(require_list(trades, "trades"))
        ]
        self.ledger = prepare_ledger(ledger, "ledger", run_id)
        if not isinstance(curves, Mapping):
            raise InvalidDocument(
                f"curves must be a dict of name -> numpy.ndarray, got {type(curves).__name__}"
            )
        self.curves: list[tuple[str, np.ndarray, bytes]] = []
        for name, array in curves.items():
            require_str(name, f"curves key {name!r}")
            self.curves.append((str.__str__(name), array, encode_array(array, f"curves[{name!r}]")))


def _run_document(row: Mapping[str, Any], summary: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": row["run_id"],
        "kind": row["kind"],
        "status": row["status"],
        "created_at": row["created_at"],
        "finished_at": row.get("finished_at"),
        "data_label": row["data_label"],
        # a run stored before migration 0005 (opened with migrate=False) has none yet
        "header": row.get("header") or empty_header(row["data_label"]),
    }
    doc.update(row["doc"])
    doc["reason"] = row.get("reason")
    doc["timings"] = row.get("timings")
    doc["summary"] = summary
    if row.get("owner") is not None or row.get("lease_until") is not None:  # the lease (0008)
        doc["owner"], doc["lease_until"] = row.get("owner"), row.get("lease_until")
    return doc


def listing_set(
    kind: str, created_at: str, header: Mapping[str, Any] | None, summary: Any = None
) -> dict[str, Any]:
    """The listing fields of a cohort run as stored on its run document ({} for
    other kinds): :data:`~manager.store.documents.runs.COHORT_LISTING_FIELDS`
    (from the header and the summary, see
    :func:`~manager.store.documents.runs.cohort_listing_fields`) plus the
    integer keys the listing filters and sorts on: ``day`` (``YYYYMMDD`` of
    ``date``, or None) and ``created_us`` (``created_at`` in microseconds).

    Args:
        kind: the run's kind.
        created_at: its canonical ``created_at``.
        header: its typed header (None: unknown).
        summary: the summary of its completion (None before).
    """
    if kind != "cohort":
        return {}
    fields = cohort_listing_fields(kind, header, summary)
    date = fields["date"]
    fields["day"] = None if date is None else int(date.replace("-", ""))
    fields["created_us"] = created_micros(created_at)
    return fields


_SUMMARY_PROJECTION = {key: 1 for key in COHORT_SUMMARY_KEYS} | {"_id": 0}


def _summary_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in COHORT_SUMMARY_KEYS}


class MongoRuns(MongoLedger):
    """Implements :class:`~manager.store.ports.runs.RunStore` on MongoDB (a mixin
    of :class:`~manager.store.mongo.MongoStore`; the ledger half is inherited
    from :class:`~manager.store.mongo.ledger.MongoLedger`)."""

    def create_run(self, run: dict[str, Any]) -> str:
        doc = prepare_run(run)
        row = {
            "_id": doc["run_id"],
            "run_id": doc["run_id"],
            "kind": doc["kind"],
            "status": doc["status"],
            "created_at": doc["created_at"],
            "finished_at": None,
            "data_label": doc["data_label"],
            "header": doc["header"],
            "reason": None,
            "timings": None,
            "doc": {key: value for key, value in doc.items() if key not in (
                "run_id", "kind", "status", "created_at", "data_label", "header", "owner", "lease_until")},
        }
        if "owner" in doc:  # the lease, top-level for claim_run's atomic filter
            row["owner"], row["lease_until"] = doc["owner"], doc["lease_until"]
        row.update(listing_set(doc["kind"], doc["created_at"], doc["header"]))

        async def insert() -> None:
            try:
                await self._coll(RUNS).insert_one(row)
            except DuplicateKeyError:
                raise StoreError(f"a run with run_id {doc['run_id']!r} already exists") from None

        self._call(insert())
        return doc["run_id"]

    def complete_run(
        self,
        run_id: str,
        *,
        summary: dict[str, Any],
        agents: list[dict[str, Any]],
        trades: list[dict[str, Any]],
        ledger: list[dict[str, Any]],
        curves: dict[str, np.ndarray],
        timings: dict[str, Any],
    ) -> None:
        check_run_id(run_id)
        # Same order of checks as the SQLite adapter: the run's state first,
        # then the input (validated here, before anything is written).
        row = self._call(self._run_row(run_id))
        if row["status"] != "running":
            raise RunStateError(
                f"run {run_id!r} is {row['status']!r}; only a 'running' run can be completed"
            )
        results = _Results(summary, agents, trades, ledger, curves, timings, run_id)
        listing = listing_set(row["kind"], row["created_at"], row.get("header"), results.summary)
        self._call(self._atomic(
            lambda session: self._complete(run_id, results, listing, session)))

    async def _complete(
        self,
        run_id: str,
        results: _Results,
        listing: dict[str, Any],
        session: AsyncClientSession | None,
    ) -> None:
        token = uuid.uuid4().hex
        runs = self._coll(RUNS)
        claimed = await runs.update_one(
            {"_id": run_id, "status": "running"}, {"$set": {"attempt": token}}, session=session
        )
        if claimed.matched_count == 0:
            row = await self._run_row(run_id, session)
            raise RunStateError(
                f"run {run_id!r} is {row['status']!r}; only a 'running' run can be completed"
            )
        try:
            # Leftovers of earlier attempts that crashed before compensating.
            for name in CHILDREN:
                await self._coll(name).delete_many(
                    {"run_id": {"$eq": run_id}, "attempt": {"$nin": [None, token]}},
                    session=session,
                )
            new = await self._new_transactions(run_id, results.ledger, "ledger", session)
            await self._coll(SUMMARIES).insert_one(
                {"_id": run_id, "run_id": run_id, "summary": results.summary, "attempt": token},
                session=session,
            )
            await self._insert_many(AGENTS, [
                {"run_id": run_id, "rank": rank, "agent_id": doc["agent_id"], "doc": doc,
                 "attempt": token}
                for rank, doc in enumerate(results.agents)
            ], session)
            await self._insert_many(TRADES, [
                {"run_id": run_id, "position": position, "agent_id": doc["agent_id"], "doc": doc,
                 "attempt": token}
                for position, doc in enumerate(results.trades)
            ], session)
            await self._insert_ledger(run_id, new, "ledger", session, token)
            curve_rows = []
            for position, (name, array, data) in enumerate(results.curves):
                pieces = [data[i:i + _CHUNK_BYTES] for i in range(0, len(data), _CHUNK_BYTES)]
                for chunk, piece in enumerate(pieces or [b""]):
                    curve_rows.append({
                        "run_id": run_id, "name": name, "position": position, "chunk": chunk,
                        "chunks": len(pieces), "dtype": array.dtype.str,
                        "shape": list(array.shape), "npy": piece, "attempt": token,
                    })
            await self._insert_many(CURVES, curve_rows, session)
            flipped = await runs.update_one(
                {"_id": run_id, "status": "running", "attempt": token},
                {"$set": {"status": "completed", "finished_at": utc_now(),
                          "timings": results.timings, "reason": None, **listing}},
                session=session,
            )
            if flipped.matched_count == 0:
                row = await self._run_row(run_id, session)
                if row["status"] != "running":
                    raise RunStateError(
                        f"run {run_id!r} became {row['status']!r} while it was being completed"
                    )
                raise StoreError(
                    f"run {run_id!r} was being completed by another writer at the same time; "
                    "nothing of this attempt was kept"
                )
        except BaseException as exc:
            if session is not None:
                if is_duplicate(exc):
                    raise Retry() from exc
                raise
            await self._compensate(run_id, token, exc)
            if is_duplicate(exc):
                raise StoreError(
                    f"run {run_id!r} was being completed by another writer at the same time; "
                    "nothing of this attempt was kept"
                ) from None
            raise

    async def _compensate(self, run_id: str, token: str, exc: BaseException) -> None:
        """Delete what a failed completion attempt wrote and release its claim."""
        try:
            for name in CHILDREN:
                await self._coll(name).delete_many({"run_id": {"$eq": run_id}, "attempt": token})
            await self._coll(RUNS).update_one(
                {"_id": run_id, "status": "running", "attempt": token},
                {"$unset": {"attempt": ""}},
            )
        except PyMongoError as cleanup:  # pragma: no cover - needs a server dying mid-way
            exc.add_note(
                f"cleaning up the failed completion of run {run_id!r} also failed "
                f"({self._scrub(str(cleanup))}); the leftovers are invisible to readers "
                "and removed by the next complete_run"
            )

    async def _insert_many(
        self, name: str, rows: list[dict[str, Any]], session: AsyncClientSession | None
    ) -> None:
        if rows:
            await self._coll(name).insert_many(rows, ordered=True, session=session)

    def claim_run(self, run_id: str, owner: str, lease_s: float) -> bool:
        check_run_id(run_id)
        owner = require_str(owner, "claim_run owner")
        until = lease_deadline(lease_s)

        async def claim() -> bool:
            # Compare-and-set on the lease read: atomic (find_one_and_update matches
            # only while nobody changed owner/lease_until meanwhile); no $or, whose
            # range branch nx-27017 evaluates without the _id condition.
            seen = await self._coll(RUNS).find_one(
                {"_id": run_id}, {"status": 1, "owner": 1, "lease_until": 1})
            if seen is None:
                raise RunNotFound(f"no run with run_id {run_id!r}")
            lease = seen.get("lease_until")
            if seen["status"] != "running" or not (
                    lease is None or lease <= utc_now() or seen.get("owner") == owner):
                return False
            row = await self._coll(RUNS).find_one_and_update(
                {"_id": run_id, "status": "running", "owner": seen.get("owner"), "lease_until": lease},
                {"$set": {"owner": owner, "lease_until": until}},
                projection={"_id": 1},
            )
            return row is not None

        return self._call(claim())

    def refresh_run(self, run_id: str, run: dict[str, Any]) -> None:
        check_run_id(run_id)
        doc = prepare_run({**require_mapping(run, "run"), "run_id": run_id, "created_at": None,
                           "owner": None, "lease_until": None})

        async def refresh() -> None:
            row = await self._run_row(run_id)
            fields = {
                "kind": doc["kind"], "data_label": doc["data_label"], "header": doc["header"],
                "doc": {key: value for key, value in doc.items() if key not in (
                    "run_id", "kind", "status", "created_at", "data_label", "header", "owner",
                    "lease_until")},
                **listing_set(doc["kind"], row["created_at"], doc["header"]),
            }
            done = await self._coll(RUNS).update_one({"_id": run_id, "status": "running"}, {"$set": fields})
            if done.matched_count == 0:
                status = (await self._run_row(run_id))["status"]
                raise RunStateError(f"run {run_id!r} is {status!r}; only a 'running' run can be refreshed")

        self._call(refresh())

    def renew_lease(self, run_id: str, owner: str, lease_s: float) -> bool:
        check_run_id(run_id)
        owner = require_str(owner, "renew_lease owner")
        until = lease_deadline(lease_s)

        async def renew() -> bool:
            row = await self._coll(RUNS).find_one_and_update(
                {"_id": run_id, "status": "running", "owner": owner},
                {"$set": {"lease_until": until}},
                projection={"_id": 1},
            )
            if row is None:
                await self._run_row(run_id)  # RunNotFound
                return False
            return True

        return self._call(renew())

    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        reason = require_str(reason, "fail_run reason")
        timings_doc = (
            None if timings is None else to_document(require_mapping(timings, "timings"), "timings")
        )
        check_run_id(run_id)
        # The listing fields again from the header alone (no summary: a failed
        # run has no metrics); the run is read first for its kind and header.
        row = self._call(self._run_row(run_id))
        listing = listing_set(row["kind"], row["created_at"], row.get("header"))

        async def body(session: AsyncClientSession | None) -> None:
            # Status first, children after: a concurrent append_ledger or
            # complete_run sees "failed" and backs off.
            flipped = await self._coll(RUNS).update_one(
                {"_id": run_id, "status": {"$in": ["running", "failed"]}},
                {"$set": {"status": "failed", "finished_at": utc_now(), "reason": reason,
                          "timings": timings_doc, **listing},
                 "$unset": {"attempt": ""}},
                session=session,
            )
            if flipped.matched_count == 0:
                await self._run_row(run_id, session)  # RunNotFound
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; a completed run cannot be failed "
                    "(its results would be deleted)"
                )
            for name in CHILDREN:
                await self._coll(name).delete_many({"run_id": {"$eq": run_id}}, session=session)

        self._call(self._atomic(body))

    def get_run(self, run_id: str) -> dict[str, Any]:
        check_run_id(run_id)

        async def read() -> dict[str, Any]:
            row = await self._run_row(run_id)
            summaries = await self._summaries([row])
            return _run_document(row, summaries.get(run_id))

        return self._call(read())

    async def _summaries(self, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Summaries of the completed runs among ``rows`` (run_id -> summary)."""
        wanted = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        found: dict[str, Any] = {}
        for ids in chunks(list(wanted)):
            async for doc in self._coll(SUMMARIES).find({"_id": {"$in": ids}}):
                if doc.get("attempt") == wanted[doc["_id"]]:
                    found[doc["_id"]] = doc["summary"]
        return found

    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        query: dict[str, Any] = {}
        if status is not None:
            if status not in RUN_STATUSES:
                raise InvalidDocument(
                    f"status {status!r} is not allowed; allowed: {', '.join(RUN_STATUSES)} or None"
                )
            query["status"] = status
        if kind is not None:
            if kind not in RUN_KINDS:
                raise InvalidDocument(
                    f"kind {kind!r} is not allowed; allowed: {', '.join(RUN_KINDS)} or None"
                )
            query["kind"] = kind
        if before is not None:
            check_run_id(before)

        async def read() -> list[dict[str, Any]]:
            runs = self._coll(RUNS)
            if before is not None:
                cursor = await runs.find_one({"_id": before}, {"created_at": 1, "run_id": 1})
                if cursor is None:
                    raise RunNotFound(f"list_runs cursor before={before!r} names no run")
                query.update(keyset(cursor["created_at"], "run_id", cursor["run_id"]))
            rows = await runs.find(query).sort(
                [("created_at", -1), ("run_id", -1)]).limit(limit).to_list(None)
            summaries = await self._summaries(rows)
            return [_run_document(row, summaries.get(row["_id"])) for row in rows]

        return self._call(read())

    def list_cohort_summaries(
        self,
        *,
        date: str | None = None,
        bankroll: float | None = None,
        created_after: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        date, bankroll, created_after, limit, offset = check_cohort_listing(
            date, bankroll, created_after, limit, offset
        )
        # Equalities first, then the created_us range: each combination is one
        # range of a migration-0003 index, read in listing order (see the
        # docstring of manager.store.mongo for why "$eq" and integers).
        query: dict[str, Any] = {"kind": {"$eq": "cohort"}}
        if date is not None:
            query["day"] = {"$eq": int(date.replace("-", ""))}
        if bankroll is not None:
            query["bankroll"] = {"$eq": bankroll}
        if created_after is not None:
            query["created_us"] = {"$gt": created_micros(created_after)}

        async def read() -> dict[str, Any]:
            runs = self._coll(RUNS)
            rows = await runs.find(query, _SUMMARY_PROJECTION).sort(
                [("created_us", -1), ("run_id", -1)]).skip(offset).limit(limit).to_list(None)
            counted = await self._database().command({"count": RUNS, "query": query})
            return {"items": [_summary_row(row) for row in rows], "total": int(counted["n"])}

        return self._call(read())

    # -- results -----------------------------------------------------------------

    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            cursor = self._coll(AGENTS).find(
                {"run_id": {"$eq": run_id}, "attempt": row.get("attempt")}).sort("rank", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        if agent_id is not None:
            require_str(agent_id, "agent_id")
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            query: dict[str, Any] = {"run_id": {"$eq": run_id}}
            if agent_id is not None:
                query["agent_id"] = agent_id
            query["attempt"] = row.get("attempt")
            cursor = self._coll(TRADES).find(query).sort("position", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] == "failed":
                return []
            tags: list[Any] = [None]
            if row["status"] == "completed":
                tags.append(row.get("attempt"))
            cursor = self._coll(LEDGER).find(
                {"run_id": {"$eq": run_id}, "attempt": {"$in": tags}}).sort("seq", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            cursor = self._coll(CURVES).find(
                {"run_id": {"$eq": run_id}, "attempt": row.get("attempt")},
                {"name": 1, "position": 1, "chunk": 1, "npy": 1},
            )
            return await cursor.to_list(None)

        rows = self._call(read())
        rows.sort(key=lambda r: (r["position"], r["chunk"]))
        parts: dict[str, list[bytes]] = {}
        for r in rows:
            parts.setdefault(r["name"], []).append(bytes(r["npy"]))
        return {name: decode_array(b"".join(pieces)) for name, pieces in parts.items()}

