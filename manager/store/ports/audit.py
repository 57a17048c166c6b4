"""The audit port: an append-only log of who did what, when.

Audit event (what :meth:`AuditStore.list_audit` returns; see
:func:`~manager.store.documents.audit.prepare_audit_event`)::

    {
        "kind": str,              # e.g. "launch", "approve", "rollback"
        "actor": str,             # who did it
        "at": str,                # ISO 8601 UTC (canonical); default: when recorded
        "details": dict,          # JSON-able; {} when absent
        ...                       # any further JSON-able caller keys, as given
    }
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["AuditStore"]


class AuditStore(ABC):
    """Persistence port of the audit aggregate. Every method raises
    :class:`~manager.store.errors.StoreError` subclasses only."""

    # -- audit -----------------------------------------------------------------

    @abstractmethod
    def record_audit(self, event: dict[str, Any]) -> None:
        """Append an audit event (see :func:`~manager.store.documents.audit.prepare_audit_event` for its shape).

        Raises:
            InvalidDocument: bad event.
        """

    @abstractmethod
    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return up to ``limit`` audit events, newest ``at`` first.

        Raises:
            InvalidDocument: ``limit`` not an int from 1 to :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
        """

