"""The SQLite adapter's campaign and promotion ports
(:class:`~manager.store.ports.promotions.CampaignStore`,
:class:`~manager.store.ports.promotions.PromotionStore`): the tables
``campaigns``, ``promotions`` and ``promotion_log`` (migration 0011).

A transition is one ``BEGIN IMMEDIATE`` transaction: ``UPDATE promotions ...
WHERE promotion_id = ? AND status = ?`` (the conditional update: a second writer
from the same status changes 0 rows and gets False), then the log row and the
audit event -- all three or nothing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from manager.store.documents import prepare_audit_event
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
from manager.store.sqlite.audit import insert_audit
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLitePromotions"]


def _insert_log(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM promotion_log WHERE promotion_id = ?",
                       (row["promotion_id"],)).fetchone()[0]
    conn.execute(
        "INSERT INTO promotion_log (promotion_id, seq, agent_id, run_id, from_status, status, actor, "
        "created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row["promotion_id"], seq, row["agent_id"], row["run_id"], row["from_status"], row["status"],
         row["actor"], row["created_at"], dumps(row["doc"])),
    )


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    parts, params = [], []
    for column in ("status", "campaign_id"):
        if filters[column] is not None:
            parts.append(f"{column} = ?")
            params.append(filters[column])
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


class SQLitePromotions(SQLiteConnection):
    """Implements the campaign and promotion ports on SQLite (a mixin of
    :class:`~manager.store.sqlite.SQLiteStore`)."""

    # -- campaigns -----------------------------------------------------------------

    def save_campaign(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_campaign(doc)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT created_at FROM campaigns WHERE campaign_id = ?",
                               (prepared["campaign_id"],)).fetchone()
            if row is not None:
                prepared["created_at"] = row["created_at"]
            conn.execute(
                "INSERT INTO campaigns (campaign_id, market, created_at, saved_at, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign_id) DO UPDATE SET "
                "market = excluded.market, saved_at = excluded.saved_at, doc = excluded.doc",
                (prepared["campaign_id"], prepared["market"], prepared["created_at"],
                 prepared["saved_at"], dumps(prepared)),
            )
        return prepared

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        campaign_id = check_id(campaign_id, "campaign_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM campaigns WHERE campaign_id = ?",
                               (campaign_id,)).fetchone()
        if row is None:
            raise NotFound(f"no campaign with campaign_id {campaign_id!r}")
        return json.loads(row["doc"])

    def list_campaigns(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        limit, offset = check_page(limit, offset)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT doc FROM campaigns ORDER BY created_at DESC, campaign_id ASC LIMIT ? OFFSET ?",
                (limit, offset)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    # -- promotions ----------------------------------------------------------------

    def create_promotion(self, doc: dict[str, Any]) -> dict[str, Any]:
        prepared = prepare_promotion(doc)
        actor = (prepared.get("proposed_by") or {}).get("user") or "system"
        step = prepare_step({"user": actor, "at": prepared["created_at"], "kind": "created"})
        with self._transaction(write=True) as conn:
            if conn.execute("SELECT 1 FROM promotions WHERE promotion_id = ?",
                            (prepared["promotion_id"],)).fetchone() is not None:
                raise StoreError(f"a promotion with promotion_id {prepared['promotion_id']!r} exists")
            conn.execute(
                "INSERT INTO promotions (promotion_id, campaign_id, agent_id, run_id, status, created_at, "
                "updated_at, expires_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (prepared["promotion_id"], prepared["campaign_id"], prepared["agent_id"], prepared["run_id"],
                 prepared["status"], prepared["created_at"], prepared["updated_at"], prepared["expires_at"],
                 dumps(prepared)),
            )
            _insert_log(conn, promotion_log_row(prepared, None, prepared["status"], step))
            insert_audit(conn, prepare_audit_event(
                promotion_audit_event(prepared, None, prepared["status"], step)))
        return prepared

    def get_promotion(self, promotion_id: str) -> dict[str, Any]:
        promotion_id = check_id(promotion_id, "promotion_id")
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT doc FROM promotions WHERE promotion_id = ?",
                               (promotion_id,)).fetchone()
        if row is None:
            raise NotFound(f"no promotion with promotion_id {promotion_id!r}")
        return json.loads(row["doc"])

    def list_promotions(self, *, status: str | None = None, campaign_id: str | None = None,
                        limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        where, params = _where(check_promotion_filters(status, campaign_id))
        limit, offset = check_page(limit, offset)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT doc FROM promotions{where} ORDER BY created_at DESC, promotion_id ASC "
                "LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def count_promotions(self, *, status: str | None = None, campaign_id: str | None = None) -> int:
        where, params = _where(check_promotion_filters(status, campaign_id))
        with self._transaction(write=False) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM promotions{where}", params).fetchone()[0])

    def transition_promotion(self, promotion_id: str, from_status: str, to_status: str,
                             step: dict[str, Any]) -> bool:
        promotion_id = check_id(promotion_id, "promotion_id")
        from_status = check_status(from_status, "from_status")
        to_status = check_status(to_status, "to_status")
        step = prepare_step(step)
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT status, doc FROM promotions WHERE promotion_id = ?",
                               (promotion_id,)).fetchone()
            if row is None:
                raise NotFound(f"no promotion with promotion_id {promotion_id!r}")
            if row["status"] != from_status:
                return False
            doc = json.loads(row["doc"])
            doc["status"], doc["updated_at"] = to_status, step["at"]
            doc["steps"] = [*doc.get("steps", []), step]
            changed = conn.execute(
                "UPDATE promotions SET status = ?, updated_at = ?, doc = ? "
                "WHERE promotion_id = ? AND status = ?",
                (to_status, step["at"], dumps(doc), promotion_id, from_status)).rowcount
            if changed != 1:
                return False
            _insert_log(conn, promotion_log_row(doc, from_status, to_status, step))
            insert_audit(conn, prepare_audit_event(promotion_audit_event(doc, from_status, to_status, step)))
        return True

    def promotion_log(self, promotion_id: str) -> list[dict[str, Any]]:
        promotion_id = check_id(promotion_id, "promotion_id")
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT seq, promotion_id, agent_id, run_id, from_status, status, actor, created_at, doc "
                "FROM promotion_log WHERE promotion_id = ? ORDER BY seq", (promotion_id,)).fetchall()
        return [{**{k: row[k] for k in row.keys() if k != "doc"}, "doc": json.loads(row["doc"])} for row in rows]
