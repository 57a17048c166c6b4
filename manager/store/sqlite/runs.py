"""The SQLite adapter's runs port (:class:`~manager.store.ports.runs.RunStore`):
runs, results, the ledger journal and the cohort listing.

Tables (created by the migrations, see :mod:`manager.store.sqlite`):
``sim_runs_intraday`` (one row per run; the typed header in columns ``date``
(the header's ``day``), ``window_start``, ``window_end``, ``bankroll``,
``quote``, ``agents``, ``market``, ``seeded_from``, with ``data_label``; the
listing metrics of a completed cohort in ``roi`` ... ``failed_agents`` and
``baseline_percentile`` (0007); the
rest of the document as JSON in ``doc``), and its children
``cohort_summaries``, ``agent_results``, ``trades``, ``ledger``,
``equity_curves``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

import numpy as np

from manager.store.errors import InvalidDocument, RunNotFound, RunStateError, StoreError
from manager.store.documents import (
    BASELINE_LISTING_FIELDS,
    COHORT_SUMMARY_KEYS,
    LISTING_METRICS,
    RUN_HEADER_FIELDS,
    RUN_KINDS,
    RUN_STATUSES,
    check_cohort_listing,
    check_limit,
    check_run_id,
    decode_array,
    encode_array,
    baseline_listing_fields,
    lease_deadline,
    listing_metrics,
    prepare_agent,
    prepare_run,
    prepare_trade,
    prepare_txn,
    require_list,
    require_mapping,
    require_str,
    to_document,
    utc_now,
)
from manager.store.sqlite.connection import SQLiteConnection, dumps, loads

__all__ = ["HEADER_COLUMNS", "SQLiteRuns"]

HEADER_COLUMNS: dict[str, str] = {
    "day": "date", "window_start": "window_start", "window_end": "window_end",
    "bankroll": "bankroll", "quote": "quote", "agents": "agents", "data_label": "data_label",
    "market": "market", "seeded_from": "seeded_from",
}
"""Header field -> its column of ``sim_runs_intraday`` (the header's ``day`` is
the listing's ``date`` column; ``data_label`` is the run's own)."""
assert tuple(HEADER_COLUMNS) == RUN_HEADER_FIELDS

# Header columns written by create_run (data_label is written as the run's).
_HEADER_WRITTEN = tuple((key, column) for key, column in HEADER_COLUMNS.items()
                        if key != "data_label")
# Run-document keys kept in their own columns rather than in ``doc``.
_RUN_COLUMNS = ("run_id", "kind", "status", "created_at", "data_label", "header", "owner", "lease_until")
_RUN_SELECT = (
    "SELECT r.run_id, r.kind, r.status, r.created_at, r.finished_at, r.data_label, "
    f"{', '.join('r.' + column for _, column in _HEADER_WRITTEN)}, "
    "r.reason, r.timings, r.doc, r.owner, r.lease_until, s.summary "
    "FROM sim_runs_intraday AS r LEFT JOIN cohort_summaries AS s ON s.run_id = r.run_id"
)
_CHILD_TABLES = ("cohort_summaries", "agent_results", "trades", "ledger", "equity_curves")
# the summary-derived listing columns: 0003's metrics and 0007's baseline percentile
_SUMMARY_COLUMNS = (*LISTING_METRICS, *BASELINE_LISTING_FIELDS)
_METRICS_SET = ", ".join(f"{name} = ?" for name in _SUMMARY_COLUMNS)


def _metrics(kind: str, summary: Any) -> tuple[Any, ...]:
    fields = {**listing_metrics(kind, summary), **baseline_listing_fields(kind, summary)}
    return tuple(fields[name] for name in _SUMMARY_COLUMNS)


def _run_doc(row: sqlite3.Row) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": row["run_id"],
        "kind": row["kind"],
        "status": row["status"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "data_label": row["data_label"],
        "header": {key: row[column] for key, column in HEADER_COLUMNS.items()},
    }
    doc.update(json.loads(row["doc"]))
    doc["reason"] = row["reason"]
    doc["timings"] = loads(row["timings"])
    doc["summary"] = loads(row["summary"])
    if row["owner"] is not None or row["lease_until"] is not None:  # the lease (0008)
        doc["owner"], doc["lease_until"] = row["owner"], row["lease_until"]
    return doc


class SQLiteRuns(SQLiteConnection):
    """Implements :class:`~manager.store.ports.runs.RunStore` on SQLite (a mixin
    of :class:`~manager.store.sqlite.SQLiteStore`)."""

    # -- runs ------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> str:
        doc = prepare_run(run)
        body = {key: value for key, value in doc.items() if key not in _RUN_COLUMNS}
        header = doc["header"]
        columns = ", ".join(column for _, column in _HEADER_WRITTEN)
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO sim_runs_intraday "
                    f"(run_id, kind, status, created_at, data_label, doc, owner, lease_until, {columns}) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?{', ?' * len(_HEADER_WRITTEN)})",
                    (
                        doc["run_id"],
                        doc["kind"],
                        doc["status"],
                        doc["created_at"],
                        doc["data_label"],
                        dumps(body),
                        doc.get("owner"),
                        doc.get("lease_until"),
                        *(header[key] for key, _ in _HEADER_WRITTEN),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"a run with run_id {doc['run_id']!r} already exists") from exc
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
        # Items are validated while they are written, inside the transaction: a bad
        # item anywhere rolls back everything written before it.
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status != "running":
                raise RunStateError(
                    f"run {run_id!r} is {status!r}; only a 'running' run can be completed"
                )
            summary_doc = to_document(require_mapping(summary, "summary"), "summary")
            (kind,) = conn.execute(
                "SELECT kind FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
            ).fetchone()
            timings_doc = to_document(require_mapping(timings, "timings"), "timings")
            conn.execute(
                "INSERT INTO cohort_summaries (run_id, summary) VALUES (?, ?)",
                (run_id, dumps(summary_doc)),
            )
            seen_agents: set[str] = set()
            for rank, agent in enumerate(require_list(agents, "agents")):
                doc = prepare_agent(agent, f"agents[{rank}]")
                if doc["agent_id"] in seen_agents:
                    raise InvalidDocument(
                        f"agents[{rank}] agent_id {doc['agent_id']!r} appears twice; "
                        "agent ids must be unique within a run"
                    )
                seen_agents.add(doc["agent_id"])
                conn.execute(
                    "INSERT INTO agent_results (run_id, rank, agent_id, doc) VALUES (?, ?, ?, ?)",
                    (run_id, rank, doc["agent_id"], dumps(doc)),
                )
            for position, trade in enumerate(require_list(trades, "trades")):
                doc = prepare_trade(trade, f"trades[{position}]")
                conn.execute(
                    "INSERT INTO trades (run_id, position, agent_id, doc) VALUES (?, ?, ?, ?)",
                    (run_id, position, doc["agent_id"], dumps(doc)),
                )
            self._insert_ledger(conn, run_id, ledger, "ledger")
            if not isinstance(curves, Mapping):
                raise InvalidDocument(
                    f"curves must be a dict of name -> numpy.ndarray, got {type(curves).__name__}"
                )
            for position, (name, array) in enumerate(curves.items()):
                require_str(name, f"curves key {name!r}")
                data = encode_array(array, f"curves[{name!r}]")
                conn.execute(
                    "INSERT INTO equity_curves (run_id, name, position, dtype, shape, npy) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, name, position, array.dtype.str, dumps(list(array.shape)), data),
                )
            conn.execute(
                "UPDATE sim_runs_intraday SET status = 'completed', finished_at = ?, "
                f"timings = ?, reason = NULL, {_METRICS_SET} WHERE run_id = ?",
                (utc_now(), dumps(timings_doc), *_metrics(kind, summary_doc), run_id),
            )

    def claim_run(self, run_id: str, owner: str, lease_s: float) -> bool:
        check_run_id(run_id)
        owner = require_str(owner, "claim_run owner")
        with self._transaction(write=True) as conn:
            self._status(conn, run_id)  # RunNotFound
            now = utc_now()
            claimed = conn.execute(
                "UPDATE sim_runs_intraday SET owner = ?, lease_until = ? WHERE run_id = ? "
                "AND status = 'running' AND (lease_until IS NULL OR lease_until <= ? OR owner = ?)",
                (owner, lease_deadline(lease_s), run_id, now, owner),
            ).rowcount
        return claimed == 1

    def refresh_run(self, run_id: str, run: dict[str, Any]) -> None:
        check_run_id(run_id)
        doc = prepare_run({**require_mapping(run, "run"), "run_id": run_id, "created_at": None,
                           "owner": None, "lease_until": None})
        body = {key: value for key, value in doc.items() if key not in _RUN_COLUMNS}
        header = doc["header"]
        columns = ", ".join(f"{column} = ?" for _, column in _HEADER_WRITTEN)
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status != "running":
                raise RunStateError(f"run {run_id!r} is {status!r}; only a 'running' run can be refreshed")
            conn.execute(
                f"UPDATE sim_runs_intraday SET kind = ?, data_label = ?, doc = ?, {columns} WHERE run_id = ?",
                (doc["kind"], doc["data_label"], dumps(body),
                 *(header[key] for key, _ in _HEADER_WRITTEN), run_id),
            )

    def renew_lease(self, run_id: str, owner: str, lease_s: float) -> bool:
        check_run_id(run_id)
        owner = require_str(owner, "renew_lease owner")
        with self._transaction(write=True) as conn:
            self._status(conn, run_id)  # RunNotFound
            renewed = conn.execute(
                "UPDATE sim_runs_intraday SET lease_until = ? WHERE run_id = ? "
                "AND status = 'running' AND owner = ?",
                (lease_deadline(lease_s), run_id, owner),
            ).rowcount
        return renewed == 1

    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        reason = require_str(reason, "fail_run reason")
        timings_doc = (
            None
            if timings is None
            else to_document(require_mapping(timings, "timings"), "timings")
        )
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status == "completed":
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; a completed run cannot be failed "
                    "(its results would be deleted)"
                )
            for table in _CHILD_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            (kind,) = conn.execute(
                "SELECT kind FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
            ).fetchone()
            conn.execute(
                "UPDATE sim_runs_intraday SET status = 'failed', finished_at = ?, reason = ?, "
                f"timings = ?, {_METRICS_SET} WHERE run_id = ?",
                (
                    utc_now(),
                    reason,
                    None if timings_doc is None else dumps(timings_doc),
                    *_metrics(kind, None),
                    run_id,
                ),
            )

    def get_run(self, run_id: str) -> dict[str, Any]:
        check_run_id(run_id)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{_RUN_SELECT} WHERE r.run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return _run_doc(row)

    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            if status not in RUN_STATUSES:
                raise InvalidDocument(
                    f"status {status!r} is not allowed; allowed: {', '.join(RUN_STATUSES)} or None"
                )
            where.append("r.status = ?")
            params.append(status)
        if kind is not None:
            if kind not in RUN_KINDS:
                raise InvalidDocument(
                    f"kind {kind!r} is not allowed; allowed: {', '.join(RUN_KINDS)} or None"
                )
            where.append("r.kind = ?")
            params.append(kind)
        if before is not None:
            check_run_id(before)
        with self._transaction(write=False) as conn:
            if before is not None:
                cursor = conn.execute(
                    "SELECT created_at, run_id FROM sim_runs_intraday WHERE run_id = ?", (before,)
                ).fetchone()
                if cursor is None:
                    raise RunNotFound(f"list_runs cursor before={before!r} names no run")
                where.append("(r.created_at, r.run_id) < (?, ?)")
                params.extend((cursor["created_at"], cursor["run_id"]))
            sql = _RUN_SELECT
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [_run_doc(row) for row in rows]

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
        # kind first, then an equality filter, then created_at: every filter
        # combination is a range of one index read in listing order (no sort).
        where = ["kind = 'cohort'"]
        params: list[Any] = []
        if date is not None:
            where.append("date = ?")
            params.append(date)
        if bankroll is not None:
            where.append("bankroll = ?")
            params.append(bankroll)
        if created_after is not None:
            where.append("created_at > ?")
            params.append(created_after)
        condition = " AND ".join(where)
        # The page's rowids come from the index alone (an offset skips index
        # entries, not table rows); only the page's rows are then read.
        page = (
            f"SELECT rowid FROM sim_runs_intraday WHERE {condition} "
            "ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?"
        )
        columns = ", ".join(COHORT_SUMMARY_KEYS)
        with self._transaction(write=False) as conn:
            total = conn.execute(
                f"SELECT COUNT(*) FROM sim_runs_intraday WHERE {condition}", params
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT {columns} FROM sim_runs_intraday WHERE rowid IN ({page}) "
                "ORDER BY created_at DESC, run_id DESC",
                (*params, limit, offset),
            ).fetchall()
        return {"items": [dict(zip(COHORT_SUMMARY_KEYS, row)) for row in rows], "total": total}

    # -- results and the ledger ----------------------------------------------------

    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT doc FROM agent_results WHERE run_id = ? ORDER BY rank", (run_id,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        if agent_id is not None:
            require_str(agent_id, "agent_id")
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            if agent_id is None:
                rows = conn.execute(
                    "SELECT doc FROM trades WHERE run_id = ? ORDER BY position", (run_id,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM trades WHERE run_id = ? AND agent_id = ? ORDER BY position",
                    (run_id, agent_id),
                ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT doc FROM ledger WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT name, npy FROM equity_curves WHERE run_id = ? ORDER BY position",
                (run_id,),
            ).fetchall()
        return {row["name"]: decode_array(row["npy"]) for row in rows}

    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status == "failed":
                raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
            added = self._insert_ledger(conn, run_id, txns, "txns")
            if added and status == "completed":
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; its ledger is closed "
                    f"({added} of the transactions are new)"
                )
        return added

    @staticmethod
    def _insert_ledger(conn: sqlite3.Connection, run_id: str, txns: Any, where: str) -> int:
        """Insert transactions one by one; skip identical ones already stored.

        Returns how many were inserted. Raises on a duplicate ``txn_id`` inside
        ``txns``, a ``txn_id`` stored with other content, or a reused ``seq``.
        """
        seen: set[str] = set()
        added = 0
        for i, raw in enumerate(require_list(txns, where)):
            txn = prepare_txn(raw, f"{where}[{i}]")
            txn_id = txn["txn_id"]
            if txn_id in seen:
                raise InvalidDocument(
                    f"{where}[{i}] txn_id {txn_id!r} appears twice in the list; "
                    "txn_id must be unique within a run"
                )
            seen.add(txn_id)
            stored = conn.execute(
                "SELECT doc FROM ledger WHERE run_id = ? AND txn_id = ?", (run_id, txn_id)
            ).fetchone()
            if stored is not None:
                if json.loads(stored["doc"]) != txn:
                    raise StoreError(
                        f"{where}[{i}] txn_id {txn_id!r} is already stored for run {run_id!r} "
                        "with different content; a txn_id names one transaction only"
                    )
                continue
            try:
                conn.execute(
                    "INSERT INTO ledger (run_id, txn_id, seq, bar, time, kind, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, txn_id, txn["seq"], txn["bar"], txn["time"], txn["kind"], dumps(txn)),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"{where}[{i}] (txn_id {txn_id!r}) seq {txn['seq']} is already used by "
                    f"another transaction of run {run_id!r}; seq must be unique within a run"
                ) from exc
            added += 1
        return added

