"""Documents of the deployment aggregate (shapes: see
:mod:`manager.store.ports.deployments`)."""

from __future__ import annotations

from typing import Any

from manager.store.documents.promotions import check_status
from manager.store.documents.values import (
    check_id,
    check_limit,
    check_offset,
    copy_extra_fields,
    require_fields,
    require_int,
    require_mapping,
    require_str,
    timestamp_or_now,
    to_document,
    utc_now,
)
from manager.store.errors import InvalidDocument

__all__ = ["FIXED_KEYS", "check_deployment_page", "check_last_bar", "prepare_changes", "prepare_deployment",
           "prepare_incident"]

#: keys an update may never change
FIXED_KEYS = ("deployment_id", "promotion_id", "created_at", "updated_at")


def check_last_bar(value: Any, where: str = "last_bar") -> int:
    """A bar index >= -1 (-1 = no bar processed yet)."""
    n = require_int(value, where)
    if n < -1:
        raise InvalidDocument(f"{where}={n} is not allowed; allowed: an int >= -1")
    return n


def prepare_deployment(doc: Any) -> dict[str, Any]:
    """Validate a new deployment and return the document to store.

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (named
            ``deployment.<field>``), a value that is not JSON-able.
    """
    require_mapping(doc, "deployment")
    require_fields(doc, ("deployment_id", "promotion_id", "status"), "deployment")
    created = timestamp_or_now(doc.get("created_at"), "deployment.created_at")
    out: dict[str, Any] = {
        "deployment_id": check_id(doc["deployment_id"], "deployment.deployment_id"),
        "promotion_id": check_id(doc["promotion_id"], "deployment.promotion_id"),
        "status": check_status(doc["status"], "deployment.status"),
        "last_bar": check_last_bar(doc.get("last_bar", -1), "deployment.last_bar"),
        "created_at": created,
        "updated_at": created,
    }
    return copy_extra_fields(out, doc, "deployment")


def prepare_changes(changes: Any) -> dict[str, Any]:
    """Validate the changes of a conditional update (``updated_at`` = now added).

    Raises:
        InvalidDocument: not a dict, a fixed key, a bad ``status`` / ``last_bar``.
    """
    require_mapping(changes, "deployment changes")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if not isinstance(key, str):
            raise InvalidDocument(f"deployment changes: key {key!r} is not a str")
        if key in FIXED_KEYS:
            raise InvalidDocument(f"deployment changes: {key} cannot change")
        if key == "status":
            out[key] = check_status(value, "deployment changes.status")
        elif key == "last_bar":
            out[key] = check_last_bar(value, "deployment changes.last_bar")
        else:
            out[key] = to_document(value, f"deployment changes.{key}")
    out["updated_at"] = utc_now()
    return out


def prepare_incident(deployment_id: str, incident: Any) -> dict[str, Any]:
    """Validate an incident; ``deployment_id`` and ``recorded_at`` added (``seq`` by the adapter)."""
    require_mapping(incident, "incident")
    out: dict[str, Any] = {"deployment_id": deployment_id,
                           "trigger": require_str(incident.get("trigger"), "incident.trigger"),
                           "recorded_at": utc_now()}
    for key, value in incident.items():
        if key in ("deployment_id", "seq", "recorded_at"):
            continue
        if not isinstance(key, str):
            raise InvalidDocument(f"incident: key {key!r} is not a str")
        if key not in out:
            out[key] = to_document(value, f"incident.{key}")
    return out


def check_deployment_page(status: Any, limit: Any, offset: Any) -> tuple[str | None, int, int]:
    return (None if status is None else check_status(status)), check_limit(limit), check_offset(offset)
