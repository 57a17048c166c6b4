"""Documents of the policy aggregate: risk-policy decisions and the kill switch
(shapes: see :mod:`manager.store.ports.policy`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from manager.store.errors import InvalidDocument
from manager.store.documents.values import (
    check_day,
    check_limit,
    check_offset,
    normalise_timestamp,
    require_fields,
    require_mapping,
    require_number,
    require_str,
    timestamp_or_now,
    to_document,
    utc_now,
)

__all__ = [
    "KILL_SWITCH_KINDS",
    "POLICY_DECISION_FIELDS",
    "SUBJECT_KINDS",
    "check_policy_filters",
    "kill_switch_event",
    "kill_switch_off",
    "prepare_kill_switch",
    "prepare_policy_decision",
    "check_as_of",
    "check_page",
]

SUBJECT_KINDS: tuple[str, ...] = ("lineage", "parent")
"""Allowed ``subject_kind`` values; a decision's ``subject`` starts with ``"<kind>:"``."""

POLICY_DECISION_FIELDS: tuple[str, ...] = (
    "decision_id", "market", "subject", "subject_kind", "period", "period_end",
    "previous_tier", "tier", "next_tier", "trigger", "next_trigger", "rule",
    "rationale", "config", "source", "decided_at",
)
"""Keys every policy decision has (given by the caller); the store adds ``recorded_at``."""

_TIERS = ("previous_tier", "tier", "next_tier")

KILL_SWITCH_KINDS: tuple[str, ...] = ("kill_switch.on", "kill_switch.off")
"""Audit event kinds written by ``set_kill_switch`` (``on`` / ``off``)."""


def _tier(value: Any, where: str) -> float:
    number = require_number(value, where)
    if number < 0:
        raise InvalidDocument(f"{where}={number!r} is negative; allowed: a finite number >= 0")
    return number


def prepare_policy_decision(decision: Any) -> dict[str, Any]:
    """Validate a policy decision and return the document to store.

    Args:
        decision: dict with every key of :data:`POLICY_DECISION_FIELDS`:
            ``decision_id``, ``market``, ``subject``, ``trigger``, ``rule`` (non-empty
            str), ``subject_kind`` (one of :data:`SUBJECT_KINDS`; ``subject`` must
            start with ``"<subject_kind>:"``), ``period`` (``"YYYY-MM-DD"``),
            ``period_end`` and ``decided_at`` (ISO 8601 with a UTC offset, or aware
            datetimes), ``previous_tier`` / ``tier`` / ``next_tier`` (finite numbers
            >= 0), ``next_trigger`` (str, may be empty), ``rationale`` / ``config``
            (JSON-able dicts), ``source`` (non-empty str or None). Other str keys
            are kept (JSON-able).

    Returns:
        A new dict: the fields above (times in canonical UTC, tiers as float),
        ``recorded_at`` (now, canonical UTC), then the other keys.

    Raises:
        InvalidDocument: not a dict, a missing or wrong-typed field (the message
            names it: ``policy decision.<field>``), or a value that is not JSON-able.
    """
    require_mapping(decision, "policy decision")
    require_fields(decision, POLICY_DECISION_FIELDS, "policy decision")

    def where(field: str) -> str:
        return f"policy decision.{field}"

    kind = decision["subject_kind"]
    if not isinstance(kind, str) or kind not in SUBJECT_KINDS:
        raise InvalidDocument(
            f"{where('subject_kind')}={kind!r} is not allowed; allowed: {', '.join(SUBJECT_KINDS)}"
        )
    subject = require_str(decision["subject"], where("subject"))
    if not subject.startswith(f"{kind}:") or subject == f"{kind}:":
        raise InvalidDocument(
            f"{where('subject')}={subject!r} does not match subject_kind {kind!r}; "
            f"allowed: '{kind}:<id>'"
        )
    source = decision["source"]
    out: dict[str, Any] = {
        "decision_id": require_str(decision["decision_id"], where("decision_id")),
        "market": require_str(decision["market"], where("market")),
        "subject": subject,
        "subject_kind": str.__str__(kind),
        "period": check_day(decision["period"], where("period"), "the evaluation period"),
        "period_end": normalise_timestamp(decision["period_end"], where("period_end")),
        **{tier: _tier(decision[tier], where(tier)) for tier in _TIERS},
        "trigger": require_str(decision["trigger"], where("trigger")),
        "next_trigger": require_str(decision["next_trigger"], where("next_trigger"), empty=True),
        "rule": require_str(decision["rule"], where("rule")),
        "rationale": to_document(require_mapping(decision["rationale"], where("rationale")),
                                 where("rationale")),
        "config": to_document(require_mapping(decision["config"], where("config")), where("config")),
        "source": None if source is None else require_str(source, where("source")),
        "decided_at": normalise_timestamp(decision["decided_at"], where("decided_at")),
        "recorded_at": utc_now(),
    }
    for key, value in decision.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"policy decision: key {key!r} is not a str")
            out[key] = to_document(value, where(key))
    return out


def check_as_of(as_of: Any) -> str:
    """Validate the moment of a point-in-time lookup (ISO 8601 with a UTC offset,
    or an aware datetime) and return it in canonical UTC form.

    Raises:
        InvalidDocument: anything else.
    """
    return normalise_timestamp(as_of, "as_of")


def check_policy_filters(
    market: Any, subject: Any, subject_kind: Any, trigger: Any, since: Any, until: Any,
    source: Any = None,
) -> dict[str, Any]:
    """Validate the filters of ``list_policy_decisions`` / ``count_policy_decisions``.

    Returns:
        ``{"market", "subject", "subject_kind", "trigger", "source", "since", "until"}``: None
        (no filter) or the checked value (``since`` / ``until`` canonical UTC).

    Raises:
        InvalidDocument: a filter that is not None and not a non-empty str, a
            ``subject_kind`` outside :data:`SUBJECT_KINDS`, an unparseable or naive
            ``since`` / ``until``.
    """
    out: dict[str, Any] = {}
    for name, value in (("market", market), ("subject", subject), ("trigger", trigger), ("source", source)):
        out[name] = None if value is None else require_str(value, name)
    if subject_kind is not None and (not isinstance(subject_kind, str)
                                     or subject_kind not in SUBJECT_KINDS):
        raise InvalidDocument(
            f"subject_kind={subject_kind!r} is not allowed; allowed: "
            f"{', '.join(SUBJECT_KINDS)} or None"
        )
    out["subject_kind"] = subject_kind
    out["since"] = None if since is None else normalise_timestamp(since, "since")
    out["until"] = None if until is None else normalise_timestamp(until, "until")
    return out


def check_page(limit: Any, offset: Any) -> tuple[int, int]:
    """``(limit, offset)`` checked (:func:`check_limit`, :func:`check_offset`)."""
    return check_limit(limit), check_offset(offset)


def kill_switch_off() -> dict[str, Any]:
    """The state of a kill switch that was never set."""
    return {"on": False, "actor": None, "reason": None, "at": None}


def prepare_kill_switch(
    on: Any, actor: Any, reason: Any, at: str | datetime | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a kill-switch change.

    Args:
        on: the new state (a bool).
        actor: who changes it (non-empty str).
        reason: why (non-empty str).
        at: when (ISO 8601 with a UTC offset or an aware datetime); None = now.

    Returns:
        ``(state, audit event)``: the state ``{"on", "actor", "reason", "at"}``
        (``at`` canonical UTC) and the audit event recording the change
        (kind ``kill_switch.on`` / ``kill_switch.off``, ``details {"reason"}``).

    Raises:
        InvalidDocument: a non-bool ``on``, an empty actor or reason, a bad ``at``.
    """
    if not isinstance(on, bool):
        raise InvalidDocument(f"kill switch on must be a bool, got {type(on).__name__} {on!r:.80}")
    state = {
        "on": on,
        "actor": require_str(actor, "kill switch actor"),
        "reason": require_str(reason, "kill switch reason"),
        "at": timestamp_or_now(at, "kill switch at"),
    }
    return state, kill_switch_event(state)


def kill_switch_event(state: dict[str, Any]) -> dict[str, Any]:
    """The audit event of a (prepared) kill-switch state."""
    return {
        "kind": KILL_SWITCH_KINDS[0] if state["on"] else KILL_SWITCH_KINDS[1],
        "actor": state["actor"],
        "at": state["at"],
        "details": {"reason": state["reason"]},
    }
