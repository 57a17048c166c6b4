"""Documents of the audit aggregate: audit events (shape: see
:mod:`manager.store.ports.audit`)."""

from __future__ import annotations

from typing import Any

from manager.store.errors import InvalidDocument
from manager.store.documents.values import require_mapping, require_str, timestamp_or_now, to_document

__all__ = ["AUDIT_FIELDS", "prepare_audit_event"]

AUDIT_FIELDS: tuple[str, ...] = ("kind", "actor", "at", "details")
"""Keys every stored audit event has."""


def prepare_audit_event(event: Any) -> dict[str, Any]:
    """Validate an audit event and fill defaults.

    Args:
        event: dict with ``kind`` and ``actor`` (non-empty str), optional ``at``
            (ISO 8601 with offset; default now) and ``details`` (dict; default
            ``{}``); other keys are kept.

    Returns:
        A new dict: ``kind``, ``actor``, ``at`` (canonical UTC), ``details``, then
        other keys.

    Raises:
        InvalidDocument: a missing or wrong-typed field or a value that is not
            JSON-able.
    """
    require_mapping(event, "audit event")
    at = event.get("at")
    out: dict[str, Any] = {
        "kind": require_str(event.get("kind"), "audit event kind"),
        "actor": require_str(event.get("actor"), "audit event actor"),
        "at": timestamp_or_now(at, "audit event at"),
        "details": to_document(
            require_mapping(event.get("details", {}), "audit event details"),
            "audit event.details",
        ),
    }
    for key, value in event.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"audit event: key {key!r} is not a str")
            out[key] = to_document(value, f"audit event.{key}")
    return out


