"""Documents of the alert aggregate (shapes: see :mod:`manager.store.ports.alerts`)."""

from __future__ import annotations

import re
from typing import Any

from manager.store.documents.values import (
    check_id,
    check_limit,
    check_offset,
    copy_extra_fields,
    require_fields,
    require_mapping,
    require_str,
    timestamp_or_now,
)
from manager.store.errors import InvalidDocument

__all__ = ["ALERT_STATUSES", "SEVERITIES", "STORE_KEYS", "attempt_changes", "check_alert_page", "check_rule",
           "check_subject", "prepare_alert"]

#: the delivery states of an alert
ALERT_STATUSES = ("pending", "sent", "failed")
#: how bad an alert is
SEVERITIES = ("info", "warning", "critical")
#: keys the store sets (a caller's values are ignored)
STORE_KEYS = ("status", "attempts", "attempt_log", "last_error", "suppressed", "updated_at")

_RULE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_SUBJECT = 200


def check_rule(value: Any, where: str = "rule") -> str:
    """A rule name: lower case ``[a-z][a-z0-9_]*``, at most 64 characters."""
    text = require_str(value, where)
    if not _RULE_RE.fullmatch(text):
        raise InvalidDocument(f"{where}={text!r} is not allowed; allowed: lower case letters, digits and _ "
                              f"(e.g. 'parent_drawdown'), at most 64 characters")
    return text


def check_subject(value: Any, where: str = "subject") -> str:
    """A non-empty subject of at most 200 characters."""
    text = require_str(value, where)
    if len(text) > _MAX_SUBJECT:
        raise InvalidDocument(f"{where} is {len(text)} characters long; allowed: at most {_MAX_SUBJECT}")
    return text


def _check_choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    text = require_str(value, where)
    if text not in allowed:
        raise InvalidDocument(f"{where}={text!r} is not allowed; allowed: {', '.join(allowed)}")
    return text


def prepare_alert(doc: Any) -> dict[str, Any]:
    """Validate a new alert and return the document to store (``pending``, 0 attempts).

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (named
            ``alert.<field>``), a value that is not JSON-able.
    """
    require_mapping(doc, "alert")
    require_fields(doc, ("alert_id", "rule", "subject", "title", "body"), "alert")
    created = timestamp_or_now(doc.get("created_at"), "alert.created_at")
    out: dict[str, Any] = {
        "alert_id": check_id(doc["alert_id"], "alert.alert_id"),
        "rule": check_rule(doc["rule"], "alert.rule"),
        "subject": check_subject(doc["subject"], "alert.subject"),
        "severity": _check_choice(doc.get("severity", "warning"), SEVERITIES, "alert.severity"),
        "title": require_str(doc["title"], "alert.title"),
        "body": require_str(doc["body"], "alert.body", empty=True),
        "status": "pending",
        "attempts": 0,
        "attempt_log": [],
        "last_error": None,
        "suppressed": 0,
        "created_at": created,
        "updated_at": created,
    }
    return copy_extra_fields(out, doc, "alert", STORE_KEYS)


def attempt_changes(doc: dict[str, Any], *, ok: Any, error: Any, final: Any, at: Any) -> dict[str, Any]:
    """The alert after one more delivery attempt (see
    :meth:`~manager.store.ports.alerts.AlertStore.record_alert_attempt`).

    Raises:
        InvalidDocument: ``ok``/``final`` not bools, ``error`` not a str or None, a bad ``at``.
    """
    if not isinstance(ok, bool) or not isinstance(final, bool):
        raise InvalidDocument("ok and final must be bools")
    if error is not None and not isinstance(error, str):
        raise InvalidDocument(f"error={error!r} must be a str or None")
    at = timestamp_or_now(at, "at")
    entry = {"at": at, "ok": ok, "error": None if ok else (error or "delivery failed")}
    status = "sent" if ok else ("failed" if final else "pending")
    return {**doc, "status": status, "attempts": int(doc.get("attempts", 0)) + 1,
            "attempt_log": [*doc.get("attempt_log", []), entry],
            "last_error": doc.get("last_error") if ok else entry["error"], "updated_at": at}


def check_alert_page(rule: Any, status: Any, limit: Any, offset: Any) -> tuple[str | None, str | None, int, int]:
    """Validated ``(rule, status, limit, offset)`` of :meth:`list_alerts`."""
    return (None if rule is None else check_rule(rule),
            None if status is None else _check_choice(status, ALERT_STATUSES, "status"),
            check_limit(limit), check_offset(offset))
