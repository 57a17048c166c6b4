"""The SQLite adapter's deployment port
(:class:`~manager.store.ports.deployments.DeploymentStore`): the tables
``deployments`` and ``deployment_incidents`` (migration 0012).

Creation is one ``BEGIN IMMEDIATE`` transaction: the promotion's existing row is
returned if there is one (``promotion_id`` is UNIQUE), else the row is inserted.
An update is ``UPDATE deployments ... WHERE deployment_id = ? AND last_bar = ?
[AND status = ?]`` after reading the row in the same write transaction: a
second writer expecting the same bar changes 0 rows and gets False.
"""

from __future__ import annotations

import json
from typing import Any

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
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLiteDeployments"]


class SQLiteDeployments(SQLiteConnection):
    """Implements the deployment port on SQLite (a mixin of
    :class:`~manager.store.sqlite.SQLiteStore`)."""

    def create_deployment(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_deployment(doc)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT doc FROM deployments WHERE promotion_id = ?",
                               (prepared["promotion_id"],)).fetchone()
            if row is not None:
                return json.loads(row["doc"])
            if conn.execute("SELECT 1 FROM deployments WHERE deployment_id = ?",
                            (prepared["deployment_id"],)).fetchone() is not None:
                raise StoreError(f"a deployment with deployment_id {prepared['deployment_id']!r} exists "
                                 f"for another promotion")
            conn.execute(
                "INSERT INTO deployments (deployment_id, promotion_id, status, last_bar, created_at, updated_at, "
                "doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (prepared["deployment_id"], prepared["promotion_id"], prepared["status"], prepared["last_bar"],
                 prepared["created_at"], prepared["updated_at"], dumps(prepared)))
        return prepared

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        deployment_id = check_id(deployment_id, "deployment_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM deployments WHERE deployment_id = ?", (deployment_id,)).fetchone()
        if row is None:
            raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
        return json.loads(row["doc"])

    def list_deployments(self, status: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[dict[str, Any]]:
        status, limit, offset = check_deployment_page(status, limit, offset)
        where, params = ("", []) if status is None else (" WHERE status = ?", [status])
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT doc FROM deployments{where} ORDER BY created_at DESC, deployment_id ASC "
                "LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def update_deployment(self, deployment_id: str, expected_last_bar: int, changes: dict[str, Any], *,
                          expected_status: str | None = None) -> bool:
        deployment_id = check_id(deployment_id, "deployment_id")
        expected_last_bar = check_last_bar(expected_last_bar, "expected_last_bar")
        if expected_status is not None:
            expected_status = check_status(expected_status, "expected_status")
        changes = prepare_changes(changes)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT status, last_bar, doc FROM deployments WHERE deployment_id = ?",
                               (deployment_id,)).fetchone()
            if row is None:
                raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
            if row["last_bar"] != expected_last_bar or (expected_status is not None
                                                        and row["status"] != expected_status):
                return False
            doc = {**json.loads(row["doc"]), **changes}
            sql = ("UPDATE deployments SET status = ?, last_bar = ?, updated_at = ?, doc = ? "
                   "WHERE deployment_id = ? AND last_bar = ?")
            params: list[Any] = [doc["status"], doc["last_bar"], doc["updated_at"], dumps(doc), deployment_id,
                                 expected_last_bar]
            if expected_status is not None:
                sql += " AND status = ?"
                params.append(expected_status)
            return conn.execute(sql, params).rowcount == 1

    def record_incident(self, deployment_id: str, incident: dict[str, Any]) -> dict[str, Any]:
        deployment_id = check_id(deployment_id, "deployment_id")
        prepared = prepare_incident(deployment_id, incident)
        with self._transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM deployments WHERE deployment_id = ?",
                            (deployment_id,)).fetchone() is None:
                raise NotFound(f"no deployment with deployment_id {deployment_id!r}")
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM deployment_incidents WHERE deployment_id = ?",
                               (deployment_id,)).fetchone()[0]
            prepared["seq"] = int(seq)
            conn.execute(
                "INSERT INTO deployment_incidents (deployment_id, seq, trigger, recorded_at, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (deployment_id, prepared["seq"], prepared["trigger"], prepared["recorded_at"], dumps(prepared)))
        return prepared

    def list_incidents(self, deployment_id: str) -> list[dict[str, Any]]:
        deployment_id = check_id(deployment_id, "deployment_id")
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT doc FROM deployment_incidents WHERE deployment_id = ? ORDER BY seq",
                                (deployment_id,)).fetchall()
        return [json.loads(row["doc"]) for row in rows]
