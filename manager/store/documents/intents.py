"""Documents of the assistant's intents and the knowledge base (shapes: see
:mod:`manager.store.ports.intents`)."""

from __future__ import annotations

import re
from typing import Any

from manager.store.documents.values import (
    check_id,
    check_limit,
    check_offset,
    copy_extra_fields,
    normalise_timestamp,
    require_fields,
    require_int,
    require_mapping,
    require_str,
    timestamp_or_now,
    to_document,
)
from manager.store.errors import InvalidDocument

__all__ = ["INTENT_KINDS", "INTENT_STATUSES", "check_intent_page", "check_knowledge_filters", "check_link",
           "prepare_intent", "prepare_intent_changes", "prepare_intent_report", "prepare_knowledge_entry"]

#: what an intent asks for
INTENT_KINDS = ("grow", "fund_tomorrow")
#: the life of an intent: a draft waits for its confirmation; ``refused`` (implausible target or no
#: evidence) and ``blocked`` (a prerequisite failed) never run; a confirmed one runs, then completes or fails
INTENT_STATUSES = ("draft", "refused", "blocked", "running", "completed", "failed", "cancelled")
#: keys the store sets (a caller's values are ignored on creation)
_STORE_KEYS = ("reports", "updated_at")

_KIND_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_LINK_RE = re.compile(r"[a-z][a-z_]{0,31}:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_MAX_LINKS = 50


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    text = require_str(value, where)
    if text not in allowed:
        raise InvalidDocument(f"{where}={text!r} is not allowed; allowed: {', '.join(allowed)}")
    return text


def prepare_intent(doc: Any) -> dict[str, Any]:
    """Validate a new intent and return the document to store (no reports yet).

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (named ``intent.<field>``),
            a value that is not JSON-able.
    """
    require_mapping(doc, "intent")
    require_fields(doc, ("intent_id", "kind", "status"), "intent")
    created = timestamp_or_now(doc.get("created_at"), "intent.created_at")
    out: dict[str, Any] = {
        "intent_id": check_id(doc["intent_id"], "intent.intent_id"),
        "kind": _choice(doc["kind"], INTENT_KINDS, "intent.kind"),
        "status": _choice(doc["status"], INTENT_STATUSES, "intent.status"),
        "created_at": created,
        "updated_at": created,
        "reports": [],
    }
    return copy_extra_fields(out, doc, "intent", _STORE_KEYS)


def prepare_intent_changes(changes: Any) -> dict[str, Any]:
    """Validate the fields an update sets (``status`` checked; ``intent_id``, ``kind``,
    ``created_at`` and ``reports`` may not change).

    Raises:
        InvalidDocument: a forbidden or bad field.
    """
    require_mapping(changes, "changes")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("intent_id", "kind", "created_at", "reports", "updated_at"):
            raise InvalidDocument(f"changes.{key} may not be changed")
        if not isinstance(key, str):
            raise InvalidDocument(f"changes: key {key!r} is not a str")
        out[key] = (_choice(value, INTENT_STATUSES, "changes.status") if key == "status"
                    else to_document(value, f"changes.{key}"))
    return out


def prepare_intent_report(report: Any) -> dict[str, Any]:
    """Validate one actual-against-plan report: ``day`` (int >= 1) required, the rest JSON-able.

    Raises:
        InvalidDocument: not a dict, no or a bad ``day``.
    """
    require_mapping(report, "report")
    require_fields(report, ("day",), "report")
    day = require_int(report["day"], "report.day")
    if day < 1:
        raise InvalidDocument(f"report.day={day} must be >= 1")
    at = report.get("at")
    out = {"day": day, "at": timestamp_or_now(at, "report.at")}
    return copy_extra_fields(out, report, "report", ())


def check_kind(value: Any, where: str = "kind") -> str:
    """A knowledge entry kind: lower case ``[a-z][a-z0-9_.]*``, at most 64 characters."""
    text = require_str(value, where)
    if not _KIND_RE.fullmatch(text):
        raise InvalidDocument(f"{where}={text!r} is not allowed; allowed: lower case letters, digits, _ and . "
                              f"(e.g. 'assistant.fund_tomorrow'), at most 64 characters")
    return text


def check_link(value: Any, where: str = "link") -> str:
    """A link ``"<kind>:<id>"``, e.g. ``"run:20250301-..."``, ``"promotion:pro-..."``, ``"intent:int-..."``."""
    text = require_str(value, where)
    if not _LINK_RE.fullmatch(text):
        raise InvalidDocument(f"{where}={text!r} is not a link; allowed: '<kind>:<id>' such as 'run:RUN_ID', "
                              f"'campaign:ID', 'promotion:ID', 'deployment:ID', 'intent:ID'")
    return text


def prepare_knowledge_entry(doc: Any) -> dict[str, Any]:
    """Validate a new knowledge entry.

    Required: ``entry_id``, ``kind``, ``title``. Optional: ``market`` (str or None), ``links``
    (list of ``"<kind>:<id>"``, at most 50, duplicates dropped), ``created_at`` (default now),
    ``narrative`` (str); anything else JSON-able is kept.

    Raises:
        InvalidDocument: a missing or wrong-typed field (named ``entry.<field>``).
    """
    require_mapping(doc, "entry")
    require_fields(doc, ("entry_id", "kind", "title"), "entry")
    created = timestamp_or_now(doc.get("created_at"), "entry.created_at")
    market = doc.get("market")
    links_in = doc.get("links") or []
    if not isinstance(links_in, (list, tuple)):
        raise InvalidDocument("entry.links must be a list of '<kind>:<id>' strings")
    if len(links_in) > _MAX_LINKS:
        raise InvalidDocument(f"entry.links has {len(links_in)} links; allowed: at most {_MAX_LINKS}")
    links: list[str] = []
    for i, link in enumerate(links_in):
        text = check_link(link, f"entry.links[{i}]")
        if text not in links:
            links.append(text)
    out: dict[str, Any] = {
        "entry_id": check_id(doc["entry_id"], "entry.entry_id"),
        "kind": check_kind(doc["kind"], "entry.kind"),
        "title": require_str(doc["title"], "entry.title"),
        "market": None if market is None else require_str(market, "entry.market"),
        "links": links,
        "narrative": require_str(doc.get("narrative", ""), "entry.narrative", empty=True),
        "created_at": created,
    }
    return copy_extra_fields(out, doc, "entry", ())


def check_intent_page(kind: Any, status: Any, limit: Any, offset: Any) -> tuple[str | None, str | None, int, int]:
    """Validated ``(kind, status, limit, offset)`` of :meth:`list_intents`."""
    return (None if kind is None else _choice(kind, INTENT_KINDS, "kind"),
            None if status is None else _choice(status, INTENT_STATUSES, "status"),
            check_limit(limit), check_offset(offset))


def check_knowledge_filters(kind: Any, market: Any, link: Any, since: Any, until: Any, limit: Any,
                            offset: Any) -> dict[str, Any]:
    """Validated filters of :meth:`list_knowledge_entries` (timestamps normalised)."""
    return {
        "kind": None if kind is None else check_kind(kind),
        "market": None if market is None else require_str(market, "market"),
        "link": None if link is None else check_link(link),
        "since": None if since is None else normalise_timestamp(since, "since"),
        "until": None if until is None else normalise_timestamp(until, "until"),
        "limit": check_limit(limit), "offset": check_offset(offset),
    }
