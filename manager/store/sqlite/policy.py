"""The SQLite adapter's policy port (:class:`~manager.store.ports.policy.PolicyStore`):
the tables ``policy_decisions`` and ``kill_switch`` (created by migration 0009).

``policy_decisions`` keeps each decision whole in ``doc`` (JSON) and the fields
it is filtered, ordered and keyed on as columns: ``UNIQUE (market, subject,
period)`` makes recording idempotent, the index ``(market, subject, period_end)``
serves the point-in-time lookup (one index seek per subject), ``(period_end,
subject)`` the listing; a trigger refuses every ``UPDATE`` (append-only).
``kill_switch`` has at most one row (``id = 1``); a change of it and its audit
event are written in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from manager.store.documents import (
    KILL_SWITCH_KINDS,
    check_as_of,
    check_limit,
    check_page,
    check_policy_filters,
    kill_switch_off,
    prepare_audit_event,
    prepare_kill_switch,
    prepare_policy_decision,
    require_str,
)
from manager.store.errors import StoreError
from manager.store.sqlite.audit import insert_audit
from manager.store.sqlite.connection import SQLiteConnection, dumps

__all__ = ["SQLitePolicy"]

_LIST_ORDER = " ORDER BY period_end DESC, subject ASC, market ASC"


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE ...`` and its parameters for the checked filters that are not None."""
    parts: list[str] = []
    params: list[Any] = []
    for column in ("market", "subject", "subject_kind", "trigger", "source"):
        if filters[column] is not None:
            parts.append(f"{column} = ?")
            params.append(filters[column])
    if filters["since"] is not None:
        parts.append("period_end >= ?")
        params.append(filters["since"])
    if filters["until"] is not None:
        parts.append("period_end < ?")
        params.append(filters["until"])
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


class SQLitePolicy(SQLiteConnection):
    """Implements :class:`~manager.store.ports.policy.PolicyStore` on SQLite (a
    mixin of :class:`~manager.store.sqlite.SQLiteStore`)."""

    # -- policy decisions ------------------------------------------------------------

    def record_policy_decision(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        prepared = prepare_policy_decision(doc)
        key = (prepared["market"], prepared["subject"], prepared["period"])
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT doc FROM policy_decisions WHERE market = ? AND subject = ? AND period = ?",
                key,
            ).fetchone()
            if row is not None:
                return json.loads(row["doc"]), False
            if conn.execute("SELECT 1 FROM policy_decisions WHERE decision_id = ?",
                            (prepared["decision_id"],)).fetchone() is not None:
                raise StoreError(
                    f"decision_id {prepared['decision_id']!r} is already the id of a policy "
                    f"decision of another (market, subject, period) than {key!r}"
                )
            conn.execute(
                "INSERT INTO policy_decisions (decision_id, market, subject, subject_kind, period, "
                "period_end, tier, trigger, source, decided_at, recorded_at, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (prepared["decision_id"], *key[:2], prepared["subject_kind"], key[2],
                 prepared["period_end"], prepared["tier"], prepared["trigger"],
                 prepared["source"], prepared["decided_at"], prepared["recorded_at"],
                 dumps(prepared)),
            )
        return prepared, True

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
        filters = check_policy_filters(market, subject, subject_kind, trigger, since, until, source)
        limit, offset = check_page(limit, offset)
        where, params = _where(filters)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT doc FROM policy_decisions{where}{_LIST_ORDER} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

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
        filters = check_policy_filters(market, subject, subject_kind, trigger, since, until, source)
        where, params = _where(filters)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"SELECT COUNT(*) FROM policy_decisions{where}", params).fetchone()
        return int(row[0])

    def policy_tiers(self, market: str, as_of: str | datetime) -> dict[str, dict[str, Any]]:
        market = require_str(market, "market")
        as_of = check_as_of(as_of)
        # The subjects with a decision by as_of, then each one's latest: both read
        # the index (market, subject, period_end) -- one seek per subject.
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT s.subject AS subject, (SELECT q.doc FROM policy_decisions AS q "
                "WHERE q.market = ?1 AND q.subject = s.subject AND q.period_end <= ?2 "
                "ORDER BY q.period_end DESC, q.period DESC LIMIT 1) AS doc "
                "FROM (SELECT DISTINCT subject FROM policy_decisions "
                "WHERE market = ?1 AND period_end <= ?2) AS s",
                (market, as_of),
            ).fetchall()
        return {row["subject"]: json.loads(row["doc"]) for row in rows}

    # -- kill switch ---------------------------------------------------------------------

    def kill_switch(self) -> dict[str, Any]:
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT is_on, actor, reason, at FROM kill_switch WHERE id = 1").fetchone()
        if row is None:
            return kill_switch_off()
        return {"on": bool(row["is_on"]), "actor": row["actor"], "reason": row["reason"],
                "at": row["at"]}

    def set_kill_switch(
        self, on: bool, *, actor: str, reason: str, at: str | datetime | None = None,
    ) -> dict[str, Any]:
        state, event = prepare_kill_switch(on, actor, reason, at)
        event = prepare_audit_event(event)
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO kill_switch (id, is_on, actor, reason, at) VALUES (1, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET is_on = excluded.is_on, actor = excluded.actor, "
                "reason = excluded.reason, at = excluded.at",
                (int(state["on"]), state["actor"], state["reason"], state["at"]),
            )
            insert_audit(conn, event)
        return state

    def kill_switch_history(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT doc FROM audit_events WHERE kind IN (?, ?) "
                "ORDER BY at DESC, event_id DESC LIMIT ?",
                (*KILL_SWITCH_KINDS, limit),
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]
