"""The MongoDB adapter's ledger journal (part of the runs port,
:class:`~manager.store.ports.runs.RunStore`): idempotent appends to
``ledger``, shared by ``append_ledger`` and ``complete_run``.

The idempotency rests on the unique index ``(run_id, txn_id)`` of migration
0001; ``(run_id, seq)`` is unique too. Without transactions a partly written
batch is deleted again (see :mod:`manager.store.mongo`, "Atomicity").
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, PyMongoError

from manager.store.errors import InvalidDocument, RunNotFound, RunStateError, StoreError
from manager.store.documents import check_run_id, prepare_txn, require_list
from manager.store.mongo.client import (
    DUPLICATE_KEY,
    MongoClientBase,
    Retry,
    chunks,
    is_duplicate,
)
from manager.store.mongo.names import LEDGER, RUNS

__all__ = ["MongoLedger", "prepare_ledger"]


def prepare_ledger(txns: Any, where: str, run_id: str) -> list[tuple[int, dict[str, Any]]]:
    """Validate transactions; refuse a txn_id or a seq used twice in the list.

    Returns ``(position in the list, transaction)`` pairs.
    """
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, raw in enumerate(require_list(txns, where)):
        txn = prepare_txn(raw, f"{where}[{i}]")
        if txn["txn_id"] in seen:
            raise InvalidDocument(
                f"{where}[{i}] txn_id {txn['txn_id']!r} appears twice in the list; "
                "txn_id must be unique within a run"
            )
        seen.add(txn["txn_id"])
        out.append((i, txn))
    seqs: set[int] = set()
    for i, txn in out:
        if txn["seq"] in seqs:
            raise _seq_error(where, i, txn, run_id)
        seqs.add(txn["seq"])
    return out


def _seq_error(where: str, i: int, txn: dict[str, Any], run_id: str) -> StoreError:
    return StoreError(
        f"{where}[{i}] (txn_id {txn['txn_id']!r}) seq {txn['seq']} is already used by "
        f"another transaction of run {run_id!r}; seq must be unique within a run"
    )


def _conflict_error(where: str, i: int, txn_id: str, run_id: str) -> StoreError:
    return StoreError(
        f"{where}[{i}] txn_id {txn_id!r} is already stored for run {run_id!r} "
        "with different content; a txn_id names one transaction only"
    )


class MongoLedger(MongoClientBase):
    """The ledger half of the MongoDB runs port (a mixin of
    :class:`~manager.store.mongo.MongoStore`)."""

    async def _run_row(
        self, run_id: str, session: AsyncClientSession | None = None
    ) -> dict[str, Any]:
        row = await self._coll(RUNS).find_one({"_id": run_id}, session=session)
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return row

    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        check_run_id(run_id)
        row = self._call(self._run_row(run_id))
        if row["status"] == "failed":
            raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        prepared = prepare_ledger(txns, "txns", run_id)
        return self._call(self._atomic(lambda session: self._append(run_id, prepared, session)))

    async def _append(
        self,
        run_id: str,
        prepared: list[tuple[int, dict[str, Any]]],
        session: AsyncClientSession | None,
    ) -> int:
        row = await self._run_row(run_id, session)
        status = row["status"]
        if status == "failed":
            raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        new = await self._new_transactions(run_id, prepared, "txns", session)
        if new and status == "completed":
            raise RunStateError(
                f"run {run_id!r} is 'completed'; its ledger is closed "
                f"({len(new)} of the transactions are new)"
            )
        try:
            inserted = await self._insert_ledger(run_id, new, "txns", session, None)
        except BaseException as exc:
            if session is not None and is_duplicate(exc):
                raise Retry() from exc
            raise
        if session is None and inserted:
            # Without a transaction a fail_run may have run meanwhile: it wins.
            after = await self._run_row(run_id)
            if after["status"] == "failed":
                await self._coll(LEDGER).delete_many({"_id": {"$in": inserted}})
                raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        return len(inserted)

    async def _new_transactions(
        self,
        run_id: str,
        prepared: list[tuple[int, dict[str, Any]]],
        where: str,
        session: AsyncClientSession | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Drop transactions stored with identical content; refuse conflicting ones.

        Raises StoreError for a txn_id stored with other content, or a seq that
        another stored transaction uses.
        """
        ledger = self._coll(LEDGER)
        stored: dict[str, Any] = {}
        for ids in chunks([txn["txn_id"] for _, txn in prepared]):
            async for doc in ledger.find(
                {"run_id": {"$eq": run_id}, "txn_id": {"$in": ids}}, {"txn_id": 1, "doc": 1},
                session=session,
            ):
                stored[doc["txn_id"]] = doc["doc"]
        new = []
        for i, txn in prepared:
            if txn["txn_id"] in stored:
                if stored[txn["txn_id"]] != txn:
                    raise _conflict_error(where, i, txn["txn_id"], run_id)
                continue
            new.append((i, txn))
        by_seq = {txn["seq"]: (i, txn) for i, txn in new}
        raced: set[str] = set()
        for seqs in chunks(list(by_seq)):
            async for taken in ledger.find(
                {"run_id": {"$eq": run_id}, "seq": {"$in": seqs}},
                {"seq": 1, "txn_id": 1, "doc": 1},
                session=session,
            ):
                i, txn = by_seq[taken["seq"]]
                if taken["txn_id"] != txn["txn_id"]:
                    raise _seq_error(where, i, txn, run_id)
                # Stored by a concurrent writer between the two reads.
                if taken["doc"] != txn:
                    raise _conflict_error(where, i, txn["txn_id"], run_id)
                raced.add(txn["txn_id"])
        return [(i, txn) for i, txn in new if txn["txn_id"] not in raced]

    async def _insert_ledger(
        self,
        run_id: str,
        new: list[tuple[int, dict[str, Any]]],
        where: str,
        session: AsyncClientSession | None,
        token: str | None,
    ) -> list[ObjectId]:
        """Insert transactions; returns the ``_id`` of those inserted.

        A duplicate key on a transaction stored meanwhile with identical content
        (a concurrent writer of the same batch) is ignored. Any other failure
        deletes what this call inserted (when not in a transaction) and raises.
        """
        if not new:
            return []
        rows = []
        for _, txn in new:
            row = {"_id": ObjectId(), "run_id": run_id, "txn_id": txn["txn_id"], "seq": txn["seq"],
                   "bar": txn["bar"], "time": txn["time"], "kind": txn["kind"], "doc": txn}
            if token is not None:
                row["attempt"] = token
            rows.append(row)
        try:
            await self._coll(LEDGER).insert_many(rows, ordered=False, session=session)
            return [row["_id"] for row in rows]
        except BulkWriteError as exc:
            if session is not None:
                raise
            failed = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        except BaseException as exc:
            # E.g. the connection dropped half-way: some rows may be stored.
            if session is None and token is None:  # complete_run compensates by token itself
                try:
                    await self._coll(LEDGER).delete_many(
                        {"_id": {"$in": [r["_id"] for r in rows]}})
                except PyMongoError as cleanup:  # pragma: no cover - server gone
                    exc.add_note(f"removing the partly appended batch failed too: {cleanup}")
            raise
        inserted = [row["_id"] for k, row in enumerate(rows) if k not in failed]
        problem: BaseException | None = None
        for k in sorted(failed):
            error = failed[k]
            i, txn = new[k]
            if error.get("code") != DUPLICATE_KEY:
                problem = StoreError(
                    f"{where}[{i}] (txn_id {txn['txn_id']!r}) could not be stored: "
                    f"{self._scrub(str(error.get('errmsg')))}"
                )
                break
            # Which unique key was hit? Read instead of parsing server messages.
            same = await self._coll(LEDGER).find_one(
                {"run_id": {"$eq": run_id}, "txn_id": txn["txn_id"]}, {"doc": 1}
            )
            if same is None:
                problem = _seq_error(where, i, txn, run_id)
                break
            if same["doc"] != txn:
                problem = _conflict_error(where, i, txn["txn_id"], run_id)
                break
        if problem is not None:
            if token is None and inserted:  # complete_run compensates by token itself
                await self._coll(LEDGER).delete_many({"_id": {"$in": inserted}})
            raise problem
        return inserted

