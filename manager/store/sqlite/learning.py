"""The SQLite adapter's learning port
(:class:`~manager.store.ports.learning.LearningStore`): the hall of fame
(``genomes``), ``populations``, ``knowledge``, ``search_trials`` and
``search_studies`` (tables created by the migrations, see
:mod:`manager.store.sqlite`). The training windows and markets the
``trained_by`` / ``market`` filters read are columns (migration 0006).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

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
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLiteLearning"]


def _where(**filters: str | None) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE ...`` and its parameters for the filters that are not None:
    ``trained_by`` means ``train_end <= ?`` (NULL never matches), any other
    name ``<name> = ?``; ``("", ())`` without filters."""
    parts, params = [], []
    for name, value in filters.items():
        if value is not None:
            parts.append("train_end <= ?" if name == "trained_by" else f"{name} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(params)


class SQLiteLearning(SQLiteConnection):
    """Implements :class:`~manager.store.ports.learning.LearningStore` on SQLite
    (a mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    # -- hall of fame --------------------------------------------------------------

    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None, *, train_start: str | None = None,
                          train_end: str | None = None) -> None:
        docs, source = prepare_hall_of_fame(entries, source)
        market = check_mode(market, "hall of fame market")
        train_start, train_end = training_window(train_start, train_end, "hall of fame")
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO genomes (saved_at, source, entries, market, train_start, train_end) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (utc_now(), source, dumps(docs), market, train_start, train_end),
            )

    def latest_hall_of_fame(self, market: str | None = None,
                            trained_by: str | None = None) -> list[dict[str, Any]] | None:
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)
        sql, where = "SELECT entries FROM genomes", _where(market=market, trained_by=trained_by)
        sql, params = sql + where[0], where[1]
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{sql} ORDER BY version DESC LIMIT 1", params).fetchone()
        return None if row is None else json.loads(row["entries"])

    # -- learning: populations -------------------------------------------------------

    @staticmethod
    def _population_doc(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "cycle_id": row["cycle_id"],
            "saved_at": row["saved_at"],
            "genomes": json.loads(row["genomes"]),
            "meta": json.loads(row["meta"]),
        }

    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        cycle_id, docs, meta_doc, mode, market = prepare_population(cycle_id, genomes, meta)
        train_start, train_end = population_window(meta_doc)
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO populations (cycle_id, saved_at, mode, genomes, meta, market, "
                    "train_start, train_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (cycle_id, utc_now(), mode, dumps(docs), dumps(meta_doc), market,
                     train_start, train_end),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"a population with cycle_id {cycle_id!r} already exists; "
                    "populations are never overwritten"
                ) from exc

    def latest_population(self, mode: str | None = None, market: str | None = None,
                          trained_by: str | None = None) -> dict[str, Any] | None:
        mode = check_mode(mode)
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)
        where, params = _where(market=market, mode=mode, trained_by=trained_by)
        sql = "SELECT cycle_id, saved_at, genomes, meta FROM populations" + where
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{sql} ORDER BY seq DESC LIMIT 1", params).fetchone()
        return None if row is None else self._population_doc(row)

    def get_population(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT cycle_id, saved_at, genomes, meta FROM populations WHERE cycle_id = ?",
                (cycle_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no population with cycle_id {cycle_id!r}")
        return self._population_doc(row)

    # -- learning: knowledge base ------------------------------------------------------

    def save_knowledge(self, record: dict[str, Any]) -> str:
        doc = prepare_knowledge(record)
        market, train_start, train_end, data_end = knowledge_window(doc)
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO knowledge (cycle_id, mode, created_at, doc, market, train_start, "
                    "train_end, data_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc["cycle_id"], doc["mode"], doc["created_at"], dumps(doc), market,
                     train_start, train_end, data_end),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"a knowledge record with cycle_id {doc['cycle_id']!r} already exists; "
                    "knowledge records are never overwritten"
                ) from exc
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
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("mode", mode), ("market", market)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if trained_by is not None:
            where.append("data_end <= ?")
            params.append(trained_by)
        with self._transaction(write=False) as conn:
            if before is not None:
                cursor = conn.execute(
                    "SELECT created_at, cycle_id FROM knowledge WHERE cycle_id = ?", (before,)
                ).fetchone()
                if cursor is None:
                    raise NotFound(
                        f"list_knowledge cursor before={before!r} names no knowledge record"
                    )
                where.append("(created_at, cycle_id) < (?, ?)")
                params.extend((cursor["created_at"], cursor["cycle_id"]))
            sql = "SELECT doc FROM knowledge"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY created_at DESC, cycle_id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT doc FROM knowledge WHERE cycle_id = ?", (cycle_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no knowledge record with cycle_id {cycle_id!r}")
        return json.loads(row["doc"])

    # -- learning: search trials ---------------------------------------------------------

    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        study, doc = prepare_trial(study, trial)
        # BEGIN IMMEDIATE holds the write lock from the MAX() to the INSERT, so
        # concurrent appenders (threads or processes) get consecutive indexes.
        with self._transaction(write=True) as conn:
            index = conn.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM search_trials WHERE study = ?", (study,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO search_trials (study, idx, value, saved_at, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (study, index, doc["value"], utc_now(), dumps(doc)),
            )
        return int(index)

    def list_trials(self, study: str) -> list[dict[str, Any]]:
        check_id(study, "study")
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT idx, saved_at, doc FROM search_trials WHERE study = ? ORDER BY idx",
                (study,),
            ).fetchall()
        return [
            {"index": row["idx"], **json.loads(row["doc"]), "saved_at": row["saved_at"]}
            for row in rows
        ]

    def list_studies(self, market: str | None = None,
                     trained_by: str | None = None) -> list[dict[str, Any]]:
        market = check_mode(market, "market")
        trained_by = check_trained_by(trained_by)
        filtered = market is not None or trained_by is not None
        where, params = _where(market=market, trained_by=trained_by)
        with self._transaction(write=False) as conn:
            trials = conn.execute(
                "SELECT study, COUNT(*) AS n, MIN(value) AS best, MAX(saved_at) AS last "
                "FROM search_trials GROUP BY study"
            ).fetchall()
            metas = conn.execute(
                "SELECT study, meta, updated_at FROM search_studies" + where, params).fetchall()
        if filtered:  # only studies whose meta matched
            keep = {row["study"] for row in metas}
            trials = [row for row in trials if row["study"] in keep]
        studies: dict[str, dict[str, Any]] = {}
        for row in trials:
            studies[row["study"]] = {
                "study": row["study"],
                "trials": row["n"],
                "best_value": float(row["best"]),
                "updated_at": row["last"],
                "meta": None,
            }
        for row in metas:
            entry = studies.setdefault(
                row["study"],
                {
                    "study": row["study"],
                    "trials": 0,
                    "best_value": None,
                    "updated_at": row["updated_at"],
                    "meta": None,
                },
            )
            entry["meta"] = json.loads(row["meta"])
            entry["updated_at"] = max(entry["updated_at"], row["updated_at"])
        ordered = sorted(studies.values(), key=lambda e: e["study"])
        ordered.sort(key=lambda e: e["updated_at"], reverse=True)
        return ordered

    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        study, meta_doc = prepare_study_meta(study, meta)
        market, train_end = study_window(meta_doc)
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT meta FROM search_studies WHERE study = ?", (study,)
            ).fetchone()
            now = utc_now()
            if row is None:
                conn.execute(
                    "INSERT INTO search_studies (study, meta, created_at, updated_at, market, "
                    "train_end) VALUES (?, ?, ?, ?, ?, ?)",
                    (study, dumps(meta_doc), now, now, market, train_end),
                )
                return
            stored = json.loads(row["meta"])
            if not replace:
                check_study_meta(study, stored, meta_doc)  # raises if they differ
                return
            conn.execute(
                "UPDATE search_studies SET meta = ?, updated_at = ?, market = ?, train_end = ? "
                "WHERE study = ?",
                (dumps(meta_doc), now, market, train_end, study),
            )

    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        check_id(study, "study")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT meta FROM search_studies WHERE study = ?", (study,)
            ).fetchone()
        return None if row is None else json.loads(row["meta"])

