"""Documents of the campaign and promotion aggregates (shapes: see
:mod:`manager.store.ports.promotions`)."""

from __future__ import annotations

import re
from typing import Any

from manager.store.errors import InvalidDocument
from manager.store.documents.values import (
    check_id,
    check_limit,
    check_offset,
    copy_extra_fields,
    normalise_timestamp,
    require_fields,
    require_int,
    require_list,
    require_mapping,
    require_str,
    timestamp_or_now,
    to_document,
    utc_now,
)

__all__ = [
    "check_promotion_filters",
    "check_status",
    "prepare_campaign",
    "prepare_promotion",
    "prepare_step",
    "promotion_audit_event",
    "promotion_log_row",
]

_STATUS = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_status(value: Any, where: str = "status") -> str:
    """A status name: 1 to 64 characters ``[a-z0-9_]`` starting with a letter."""
    text = require_str(value, where)
    if not _STATUS.match(text):
        raise InvalidDocument(f"{where}={text!r} is not a status name; allowed: [a-z][a-z0-9_]*")
    return text


def prepare_campaign(doc: Any) -> dict[str, Any]:
    """Validate a campaign and return the document to store (``saved_at`` = now).

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (named
            ``campaign.<field>``), a value that is not JSON-able.
    """
    require_mapping(doc, "campaign")
    require_fields(doc, ("campaign_id", "market", "report"), "campaign")
    created = doc.get("created_at")
    out: dict[str, Any] = {
        "campaign_id": check_id(doc["campaign_id"], "campaign.campaign_id"),
        "market": require_str(doc["market"], "campaign.market"),
        "created_at": timestamp_or_now(created, "campaign.created_at"),
        "report": to_document(require_mapping(doc["report"], "campaign.report"), "campaign.report"),
        "run_ids": [require_str(r, "campaign.run_ids[]") for r in require_list(doc.get("run_ids", []),
                                                                                 "campaign.run_ids")],
        "saved_at": utc_now(),
    }
    return copy_extra_fields(out, doc, "campaign")


def prepare_promotion(doc: Any) -> dict[str, Any]:
    """Validate a new promotion request and return the document to store.

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (named
            ``promotion.<field>``), a value that is not JSON-able.
    """
    require_mapping(doc, "promotion")
    require_fields(doc, ("promotion_id", "campaign_id", "day", "run_id", "agent_id", "status"), "promotion")
    created = timestamp_or_now(doc.get("created_at"), "promotion.created_at")
    expires = doc.get("expires_at")
    day = require_int(doc["day"], "promotion.day")
    if day < 1:
        raise InvalidDocument(f"promotion.day={day} must be >= 1")
    out: dict[str, Any] = {
        "promotion_id": check_id(doc["promotion_id"], "promotion.promotion_id"),
        "campaign_id": check_id(doc["campaign_id"], "promotion.campaign_id"),
        "day": day,
        "run_id": require_str(doc["run_id"], "promotion.run_id"),
        "agent_id": require_str(doc["agent_id"], "promotion.agent_id"),
        "status": check_status(doc["status"], "promotion.status"),
        "created_at": created,
        "updated_at": created,
        "expires_at": None if expires is None else normalise_timestamp(expires, "promotion.expires_at"),
        "steps": [prepare_step(s) for s in require_list(doc.get("steps", []), "promotion.steps")],
    }
    return copy_extra_fields(out, doc, "promotion")


def prepare_step(step: Any) -> dict[str, Any]:
    """A signed step: ``user`` (non-empty str), ``at`` (canonical UTC, default now),
    other JSON-able keys as given."""
    require_mapping(step, "promotion step")
    at = step.get("at")
    out: dict[str, Any] = {
        "user": require_str(step.get("user"), "promotion step.user"),
        "at": timestamp_or_now(at, "promotion step.at"),
    }
    return copy_extra_fields(out, step, "promotion step")


def promotion_log_row(promotion: dict[str, Any], from_status: str | None, to_status: str,
                      step: dict[str, Any]) -> dict[str, Any]:
    """The ``promotion_log`` row of a transition (without ``log_id``)."""
    return {"promotion_id": promotion["promotion_id"], "agent_id": promotion["agent_id"],
            "run_id": promotion["run_id"], "from_status": from_status, "status": to_status,
            "actor": step["user"], "created_at": step["at"], "doc": step}


def promotion_audit_event(promotion: dict[str, Any], from_status: str | None, to_status: str,
                          step: dict[str, Any]) -> dict[str, Any]:
    """The audit event of a transition: kind ``promotion.<to_status>``."""
    details = {"promotion_id": promotion["promotion_id"], "campaign_id": promotion["campaign_id"],
               "agent_id": promotion["agent_id"], "from": from_status, "to": to_status}
    for key in ("role", "notes", "checklist_hash", "reason"):
        if key in step:
            details[key] = step[key]
    return {"kind": f"promotion.{to_status}", "actor": step["user"], "at": step["at"], "details": details}


def check_promotion_filters(status: Any, campaign_id: Any) -> dict[str, Any]:
    """``{"status", "campaign_id"}`` checked (None = no filter)."""
    return {"status": None if status is None else check_status(status),
            "campaign_id": None if campaign_id is None else check_id(campaign_id, "campaign_id")}


def check_page(limit: Any, offset: Any) -> tuple[int, int]:
    return check_limit(limit), check_offset(offset)
