"""The alert port: alerts raised by the rules of :mod:`manager.alerts` and the
record of their delivery (sent / failed, attempts, errors).

Alert (what :meth:`AlertStore.create_alert` takes; see
:func:`~manager.store.documents.alerts.prepare_alert`)::

    {
        "alert_id": str,           # id (check_id rules)
        "rule": str,               # e.g. "parent_drawdown", "kill_switch" (lower case, [a-z0-9_])
        "subject": str,            # what it is about: a run id, a deployment id, "kill_switch", ...
        "severity": str,           # "info" | "warning" | "critical"
        "title": str,              # one line
        "body": str,               # the message, with its figures and units
        "status": str,             # set by the store: "pending" -> "sent" | "failed"
        "attempts": int,           # set by the store: delivery attempts so far
        "attempt_log": [           # set by the store, one entry per attempt, oldest first
            {"at": str, "ok": bool, "error": str | None},
        ],
        "last_error": str | None,  # the error of the latest failed attempt
        "suppressed": int,         # later alerts of the same (rule, subject) it silenced
        "created_at": str,         # ISO 8601 UTC (canonical); default now
        "updated_at": str,         # set by the store
        ...                        # figures, channel names: JSON-able
    }

**Deduplication / rate limit.** :meth:`AlertStore.create_alert` takes
``quiet_since``: when an alert of the same ``(rule, subject)`` was created
*after* that moment, nothing is created -- the earlier alert's ``suppressed``
count goes up by one and it is returned with ``created=False``. The check and
the insert are one atomic step (SQLite: one ``BEGIN IMMEDIATE`` transaction;
MongoDB: a gate document per ``(rule, subject)`` moved by a compare-and-set), so
of two workers raising the same alert at once only one creates it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["AlertStore"]


class AlertStore(ABC):
    """Persistence port of alerts and their delivery record.

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    @abstractmethod
    def create_alert(self, doc: dict[str, Any], *, quiet_since: str | None = None) -> tuple[dict[str, Any], bool]:
        """Store a new ``pending`` alert unless its ``(rule, subject)`` is quiet.

        Args:
            doc: the alert (shape in the module docstring).
            quiet_since: ISO 8601 moment; an alert of the same ``(rule, subject)``
                created strictly after it suppresses this one. None = never suppressed.

        Returns:
            ``(alert, True)`` with the stored alert, or ``(earlier, False)`` with the
            alert that suppressed it (its ``suppressed`` count incremented).

        Raises:
            InvalidDocument: a missing or wrong-typed field (named), a bad ``quiet_since``.
            StoreError: ``alert_id`` exists already.
        """

    @abstractmethod
    def get_alert(self, alert_id: str) -> dict[str, Any]:
        """The alert as it is now.

        Raises:
            InvalidDocument: a bad id.
            NotFound: no alert with that id.
        """

    @abstractmethod
    def record_alert_attempt(self, alert_id: str, *, ok: bool, error: str | None = None,
                             final: bool = False, at: str | None = None) -> dict[str, Any]:
        """Record one delivery attempt: ``attempts`` + 1, the attempt appended to
        ``attempt_log``; status ``sent`` when ``ok``, ``failed`` when not ok and
        ``final`` (no retry left), else it stays ``pending``.

        Returns:
            The alert as stored afterwards.

        Raises:
            InvalidDocument: bad arguments.
            NotFound: no alert with that id.
        """

    @abstractmethod
    def list_alerts(self, rule: str | None = None, status: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[dict[str, Any]]:
        """Alerts, newest ``created_at`` first (ties: by id); ``rule`` and ``status`` exact filters.

        Raises:
            InvalidDocument: a bad rule, status, ``limit`` or ``offset``.
        """
