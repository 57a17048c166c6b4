"""Use cases of Day-3 promotion: the promotion-readiness of a campaign day, and
the approval chain of a promotion request (propose, approve, reject, expire,
read). The CLI, the API and the dashboard call these functions only.

**Readiness.** :func:`readiness` reviews the cohort run of day >= 3 of a stored
campaign with :func:`evolution.promoter.promote_intraday_candidate` (the
guard rails and their defaults are documented there and in the README's
"Day-3 promotion"): it loads the campaign, the ranking day's bars and the policy
context (the lineage tiers and Kelly caps in force after the ranking day, the
kill switch) and returns the checklist, the blocking items and the next step.

**Lifecycle.** ``proposed -> ops_approved -> risk_approved`` with the exits
``rejected`` (any open state, by a role of :attr:`ApprovalChain.reject_roles`)
and ``expired`` (the approval window, default 24 h, elapsed:
:func:`expire_due`, and any action on an overdue request). ``risk_approved``
(the last step of the chain) means **queued for deployment**; deploying is the
next issue's. The chain -- roles, order, count -- is :class:`ApprovalChain`;
the chain a request was proposed under is stored with it, so changing the
configuration never changes requests in flight.

**Separation of duties.** The same user never signs two *approval* steps of
one request. The proposer MAY sign the first approval step (the issue's journey:
"ops proposes and approves"; :attr:`ApprovalChain.proposer_may_sign_first`,
default True) but no later one, so a request reaches the end of the default
chain only with two distinct approvers, holding ops then risk.

**Signed steps.** Each step records ``user``, ``role``, ``at``, ``notes``
(required, non-empty) and ``checklist_hash``: the SHA-256 of the canonical JSON
(:func:`checklist_digest`) of the checklist snapshot the signer saw. At approval
the checklist is recomputed; if its hash differs from the one passed in, or
from the one the request was proposed with (the figures changed between
steps), the approval is refused with :class:`StaleChecklist` ("re-approval
needed": reject and re-propose) and the refusal is recorded as an audit event
``promotion.reapproval_needed``.

**Concurrency.** Every transition is a conditional update on the current status
(:meth:`~manager.store.ports.promotions.PromotionStore.transition_promotion`):
of two concurrent approvals of one step exactly one wins; the other gets
:class:`StateConflict`. A transition already made (same step, same signer)
is reported as a conflict, never applied twice.

**Roles and permissions.** Any principal with ``name`` and ``role`` may act (the
tests use plain objects). When it is a :class:`manager.users.Principal` (the CLI,
the API and the dashboard pass one), :func:`propose` also requires
``manager.users.PERMISSIONS["propose"]`` and :func:`reject`
``PERMISSIONS["reject"]`` (:func:`manager.users.require`; a refusal is a
:class:`RoleError` carrying its message). Each approval step needs the role the
request's chain names for it (ops step: ``ops``, risk step: ``risk``).

One source of truth: the default chain's ``propose_roles`` and ``reject_roles`` are
*derived* from ``PERMISSIONS["propose"]`` / ``PERMISSIONS["reject"]`` (in the order of
``manager.users.ROLES``), and ``PERMISSIONS["approve:ops"]`` / ``["approve:risk"]`` must
equal the roles of the default chain's steps (a test checks it). When a configured chain
disagrees with ``PERMISSIONS``, **the chain wins** for what it configures (it is
configurable and stored with each request): a step is signed by the chain's role for it,
whatever ``approve:*`` says, and ``chain.propose_roles`` / ``chain.reject_roles`` are
checked for every principal. ``PERMISSIONS`` can only narrow propose and reject further for
users (both must allow); it never widens what the chain allows.

**Metrics.** Every transition made here counts in ``cohortlab_promotions_total{status}``
(the new status: proposed, ops_approved, risk_approved, rejected, expired) through the lazy
:func:`_metrics` hook (no-op without prometheus-client).
"""
from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import pandas as pd

from evolution.promoter import (FIRST_DAY, PromoterConfig, PromoterError, PromotionContext, PromotionReview,
                                promote_intraday_candidate)
from manager import users as _users
from manager.alerts import notify_promotion
from manager.learning_jobs import Source
from manager.store import NotFound, Store, offset_pages
from simulator.engine import EngineConfig

__all__ = ["ApprovalChain", "ApprovalStep", "Principal", "PromotionError", "PromotionNotFound", "RoleError",
           "SeparationOfDuties", "StaleChecklist", "StateConflict", "ValidationError", "PROPOSED", "REJECTED",
           "EXPIRED", "approve", "checklist_digest", "expire_due", "get_promotion", "list_promotions", "open_request",
           "propose", "readiness", "reject", "review_campaign_day"]

PROPOSED, REJECTED, EXPIRED = "proposed", "rejected", "expired"
SYSTEM = "system"


# -- errors ---------------------------------------------------------------------------------------

class PromotionError(ValueError):
    """A promotion use case refused; the message says what to fix. ``status`` is the
    HTTP status an adapter should answer with."""

    status = 400


class PromotionNotFound(PromotionError):
    """No such campaign, run or promotion request."""

    status = 404


class StateConflict(PromotionError):
    """The request is not in a state that allows this (already moved on, rejected,
    expired, or another approval won)."""

    status = 409


class RoleError(PromotionError):
    """The principal's role may not take this step."""

    status = 403


class SeparationOfDuties(PromotionError):
    """The principal already signed a step of this request."""

    status = 403


class StaleChecklist(PromotionError):
    """The checklist changed since the signer (or the proposer) saw it: re-approval needed."""

    status = 409


class ValidationError(PromotionError):
    """Bad input (empty notes, unknown agent, day < 3, a candidate that fails a guard rail)."""

    status = 422


# -- configuration --------------------------------------------------------------------------------

def _permitted(action: str) -> tuple[str, ...]:
    """The roles of ``manager.users.PERMISSIONS[action]`` in the order of ``ROLES``."""
    allowed = _users.roles_for(action)
    return tuple(r for r in _users.ROLES if r in allowed)


class Principal(Protocol):
    """Who acts: ``manager.users.Principal`` (``name``, ``role``) satisfies it."""

    name: str
    role: str


@dataclass(frozen=True)
class ApprovalStep:
    """One approval step: the role that signs it and the status it leads to."""

    role: str
    status: str


@dataclass(frozen=True)
class ApprovalChain:
    """The approval chain (roles, order, count) and its rules.

    Attributes:
        steps: the approval steps in order (default: ops -> ``ops_approved``, then
            risk -> ``risk_approved``); the last step's status means queued for deployment.
        propose_roles: roles that may propose (default: ``manager.users.PERMISSIONS["propose"]``,
            ops and admin).
        reject_roles: roles that may reject an open request (default:
            ``PERMISSIONS["reject"]``, ops, risk and admin).
        window_hours: the approval window from the proposal (24 h); past it the
            request expires.
        proposer_may_sign_first: the proposer may sign the first approval step (True).
    """

    steps: tuple[ApprovalStep, ...] = (ApprovalStep("ops", "ops_approved"), ApprovalStep("risk", "risk_approved"))
    propose_roles: tuple[str, ...] = field(default_factory=lambda: _permitted("propose"))
    reject_roles: tuple[str, ...] = field(default_factory=lambda: _permitted("reject"))
    window_hours: float = 24.0
    proposer_may_sign_first: bool = True

    def __post_init__(self) -> None:
        statuses = [s.status for s in self.steps]
        if not self.steps:
            raise ValueError("an approval chain needs at least one step")
        if len(set(statuses)) != len(statuses) or set(statuses) & {PROPOSED, REJECTED, EXPIRED}:
            raise ValueError(f"approval step statuses {statuses} must be distinct and not "
                             f"{PROPOSED}/{REJECTED}/{EXPIRED}")
        if not (math.isfinite(self.window_hours) and self.window_hours > 0):
            raise ValueError(f"window_hours={self.window_hours!r} must be > 0")

    def to_dict(self) -> dict:
        return {"steps": [asdict(s) for s in self.steps], "propose_roles": list(self.propose_roles),
                "reject_roles": list(self.reject_roles), "window_hours": self.window_hours,
                "proposer_may_sign_first": self.proposer_may_sign_first}

    @classmethod
    def from_dict(cls, d: dict) -> "ApprovalChain":
        return cls(steps=tuple(ApprovalStep(**s) for s in d["steps"]), propose_roles=tuple(d["propose_roles"]),
                   reject_roles=tuple(d["reject_roles"]), window_hours=float(d["window_hours"]),
                   proposer_may_sign_first=bool(d["proposer_may_sign_first"]))

    @property
    def final(self) -> str:
        """The status that means queued for deployment."""
        return self.steps[-1].status

    def open_statuses(self) -> tuple[str, ...]:
        """States a request can still move on from (approve, reject, expire)."""
        return (PROPOSED, *(s.status for s in self.steps[:-1]))


# -- helpers --------------------------------------------------------------------------------------

def _now(now: datetime | str | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    ts = pd.Timestamp(now)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _round(x: Any) -> Any:
    """Floats to 12 significant digits (a snapshot must not depend on the last bits
    of a summation order), recursively."""
    if isinstance(x, float):
        return float(f"{x:.12g}") if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    return x


def checklist_digest(snapshot: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of a checklist snapshot: keys sorted,
    no whitespace, UTF-8, no NaN (RFC 8785's intent for our value types)."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _snapshot(review: PromotionReview, candidate: dict) -> dict:
    """What an approver sees and signs: the candidate's checks and allocation."""
    return _round({"campaign_id": review.campaign_id, "day": review.day, "date": review.date,
                   "agent_id": candidate["agent_id"], "checks": candidate["checks"],
                   "allocation": candidate["allocation"], "config": review.config})


def _need_notes(notes: Any) -> str:
    if not isinstance(notes, str) or not notes.strip():
        raise ValidationError("notes are required: say why (a non-empty text)")
    return notes.strip()


def _who(principal: Principal) -> tuple[str, str]:
    name, role = getattr(principal, "name", None), getattr(principal, "role", None)
    if not isinstance(name, str) or not name or not isinstance(role, str) or not role:
        raise ValidationError("the principal needs a non-empty name and role")
    return name, role


def _require(principal: Principal, action: str) -> None:
    """For a :class:`manager.users.Principal`: ``manager.users.require(principal, action)``,
    its refusal as a :class:`RoleError`. Other principals: nothing (the chain decides)."""
    if isinstance(principal, _users.Principal):
        try:
            _users.require(principal, action)
        except _users.PermissionDenied as exc:
            raise RoleError(str(exc)) from None


def _metrics():
    try:
        from manager import metrics
    except ImportError:  # the base install has no prometheus-client: nothing to export to
        return None
    return metrics


def _count(status: str) -> None:
    """One transition to ``status`` (``cohortlab_promotions_total{status}``)."""
    m = _metrics()
    if m is not None:
        m.record_promotion(status)


# -- readiness ------------------------------------------------------------------------------------

def _campaign(store: Store, campaign_id: str) -> dict:
    try:
        return store.get_campaign(campaign_id)
    except NotFound:
        raise PromotionNotFound(f"no stored campaign {campaign_id!r}: run it with a store "
                                "(cohortlab campaign) first") from None
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _context(store: Store, camp: dict, day: int) -> tuple[PromotionContext, Any]:
    """The ranking day's bars and the figures from outside evolution."""
    report = camp["report"]
    days = report.get("days") or []
    if not isinstance(day, int) or isinstance(day, bool) or day < FIRST_DAY:
        raise ValidationError(f"day={day!r}: promotion opens after Day {FIRST_DAY}")
    if day > len(days):
        raise ValidationError(f"day={day} is beyond campaign {camp['campaign_id']}'s {len(days)} day(s)")
    rep = days[day - 1]
    run = store.get_run(rep["run_id"])
    start = pd.Timestamp(rep["date"], tz="UTC")
    end = start + pd.Timedelta(days=1)
    warmup = int(camp.get("warmup_bars", 200))
    src = Source(**(camp.get("source") or {}))
    market = src.load(start, end, warmup).between(start, end, warmup)
    engine = EngineConfig(**((run.get("config") or {}).get("request") or {}).get("engine", {}))
    bankroll = float((run.get("header") or {}).get("bankroll") or camp.get("bankroll") or 0.0)
    docs = store.policy_tiers(camp["market"], _iso(end.to_pydatetime()))
    tiers, kelly, lineages = {}, {}, {}
    for a in rep["agents"]:
        subject = (a.get("tier") or {}).get("lineage")
        lineages[a["agent_id"]] = subject
        doc = docs.get(subject) if subject else None
        if doc is not None:
            tiers[a["agent_id"]] = float(doc["tier"])
            kelly[a["agent_id"]] = ((doc.get("rationale") or {}).get("kelly") or {}).get("cap")
    ks = bool(store.kill_switch().get("on"))
    return PromotionContext(bankroll=bankroll, engine=engine, tiers=tiers, kelly_caps=kelly, lineages=lineages,
                            kill_switch=ks, pbo=rep.get("pbo")), market


def review_campaign_day(store: Store, campaign_id: str, day: int,
                        config: PromoterConfig = PromoterConfig()) -> PromotionReview:
    """The promoter's review of day ``day`` of a stored campaign (loads what it needs).

    Raises:
        PromotionNotFound: no such campaign. ValidationError: a day < 3 or beyond the campaign.
    """
    camp = _campaign(store, campaign_id)
    ctx, market = _context(store, camp, day)
    try:
        return promote_intraday_candidate(camp["report"], day, market, config=config, context=ctx)
    except PromoterError as exc:
        raise ValidationError(str(exc)) from None


def _next_step(doc: dict | None, chain: ApprovalChain, review: PromotionReview | None) -> dict:
    if doc is None:
        if review is not None and review.proposal is None:
            names = ", ".join(c["name"] for c in review.blocking)
            return {"action": "blocked", "role": None,
                    "detail": f"no candidate passes every guard rail (blocking: {names})"}
        return {"action": "propose", "role": list(chain.propose_roles),
                "detail": f"propose agent {review.proposal['agent_id'] if review else '?'} (notes required)"}
    stored = ApprovalChain.from_dict(doc["chain"])
    status = doc["status"]
    if status in stored.open_statuses():
        step = stored.steps[_signed(doc)]
        return {"action": "approve", "role": [step.role], "status": step.status,
                "detail": f"{step.role} signs {step.status} by {doc.get('expires_at')} (notes required), or reject"}
    if status == stored.final:
        return {"action": "deploy", "role": None, "detail": "queued for deployment"}
    return {"action": "none", "role": None, "detail": f"the request is {status}; a new proposal may be made"}


def _signed(doc: dict) -> int:
    return sum(1 for s in doc.get("steps", []) if s.get("kind") == "approve")


def readiness(store: Store, run_id: str, *, config: PromoterConfig = PromoterConfig(),
              chain: ApprovalChain = ApprovalChain()) -> dict:
    """The promotion-readiness of a cohort run that is day >= 3 of a stored campaign.

    Returns:
        ``{"run_id", "campaign_id", "day", "date", "ready": bool, "candidate": agent id | None,
        "checklist": [checks] of the proposal (else of the best candidate), "checklist_digest",
        "allocation", "blocking": [failed checks], "next_step": {"action", "role", "detail"},
        "open_promotion": id | None, "candidates": [...]}``.

    Raises:
        PromotionNotFound: no such run, or its campaign is not stored.
        ValidationError: the run is not part of a campaign, or its day is < 3.
    """
    try:
        run = store.get_run(run_id)
    except NotFound:
        raise PromotionNotFound(f"no run {run_id!r}") from None
    cfg = run.get("config") or {}
    campaign_id, day = cfg.get("campaign_id"), cfg.get("campaign_day")
    if not campaign_id or not day:
        raise ValidationError(f"run {run_id!r} is not a campaign day: promotion reviews campaign days >= 3")
    if day < FIRST_DAY:
        raise ValidationError(f"run {run_id!r} is day {day} of campaign {campaign_id}: promotion opens after "
                              f"Day {FIRST_DAY}")
    review = review_campaign_day(store, campaign_id, int(day), config)
    best = review.proposal or review.candidates[0]
    snap = _snapshot(review, best)
    open_docs = [d for d in store.list_promotions(campaign_id=campaign_id, limit=100)
                 if d["day"] == day and d["status"] in ApprovalChain.from_dict(d["chain"]).open_statuses()]
    current = open_docs[0] if open_docs else None
    return {"run_id": run_id, "campaign_id": campaign_id, "day": int(day), "date": review.date,
            "ready": review.proposal is not None, "candidate": best["agent_id"] if review.proposal else None,
            "best_agent": best["agent_id"], "checklist": best["checks"], "checklist_hash": checklist_digest(snap),
            "allocation": best["allocation"], "blocking": review.blocking,
            "next_step": _next_step(current, chain, review),
            "open_promotion": current["promotion_id"] if current else None,
            "candidates": review.candidates}


# -- the approval chain ---------------------------------------------------------------------------

def _get(store: Store, promotion_id: str) -> dict:
    try:
        return store.get_promotion(promotion_id)
    except NotFound:
        raise PromotionNotFound(f"no promotion {promotion_id!r}") from None
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def propose(store: Store, principal: Principal, campaign_id: str, day: int, agent_id: str | None = None,
            notes: str = "", *, config: PromoterConfig = PromoterConfig(), chain: ApprovalChain = ApprovalChain(),
            now: datetime | str | None = None) -> dict:
    """Propose the promotion of an agent of campaign day ``day`` (default: the
    promoter's proposal). Its checklist snapshot and hash are stored with it.

    Raises:
        RoleError: the principal's role is not in ``chain.propose_roles``.
        ValidationError: empty notes, day < 3, an unknown agent, or a candidate
            failing a guard rail (the message lists them).
        StateConflict: a request of this campaign day is already open or fully approved.
        PromotionNotFound: no such campaign.
    """
    name, role = _who(principal)
    _require(principal, "propose")
    if role not in chain.propose_roles:
        raise RoleError(f"{name} ({role}) may not propose; allowed roles: {', '.join(chain.propose_roles)}")
    notes = _need_notes(notes)
    review = review_campaign_day(store, campaign_id, day, config)
    return open_request(store, review, (name, role), campaign_id, day, agent_id, notes, config=config,
                        chain=chain, now=now)


def open_request(store: Store, review: PromotionReview, proposer: tuple[str, str], campaign_id: str, day: int,
                 agent_id: str | None, notes: str, *, config: PromoterConfig, chain: ApprovalChain,
                 now: datetime | str | None = None) -> dict:
    """Store a ``proposed`` request from a promoter ``review`` of campaign day ``day``.

    :func:`propose` calls it after checking the proposer's role; the Day-3
    go/no-go review (:mod:`manager.go_no_go`) calls it as ``("system", "system")``
    (the scheduler proposes; people approve). ``agent_id`` None takes the
    promoter's proposal.

    Raises:
        ValidationError: no candidate passes, an unknown agent, or a failing candidate.
        StateConflict: a request of this campaign day is already open or fully approved.
    """
    name, role = proposer
    if agent_id is None:
        if review.proposal is None:
            raise ValidationError("no candidate passes every guard rail; blocking: " + "; ".join(
                f"{c['name']} = {c['figure']} (needs {c['threshold']})" for c in review.blocking))
        cand = review.proposal
    else:
        cand = next((c for c in review.candidates if c["agent_id"] == agent_id), None)
        if cand is None:
            raise ValidationError(f"agent {agent_id!r} did not trade day {day} of {campaign_id}; allowed: "
                                  + ", ".join(c["agent_id"] for c in review.candidates))
        if not cand["passed"]:
            raise ValidationError(f"agent {agent_id} fails guard rail(s): " + "; ".join(
                f"{c['name']} = {c['figure']} (needs {c['threshold']})" for c in cand["checks"] if not c["passed"]))
    for d in store.list_promotions(campaign_id=campaign_id, limit=100):
        d_chain = ApprovalChain.from_dict(d["chain"])
        if d["day"] == day and d["status"] in d_chain.open_statuses():
            raise StateConflict(f"promotion {d['promotion_id']} of {campaign_id} day {day} is already "
                                f"{d['status']}: approve or reject it first")
        if d["day"] == day and d["status"] == d_chain.steps[-1].status:  # fully approved: queued to deploy
            raise StateConflict(f"promotion {d['promotion_id']} of {campaign_id} day {day} is already "
                                f"{d['status']} (queued for deployment): one promotion per campaign day")
    at = _now(now)
    snap = _snapshot(review, cand)
    digest = checklist_digest(snap)
    doc = {
        "promotion_id": f"promo-{uuid.uuid4().hex[:12]}", "campaign_id": campaign_id, "day": int(day),
        "date": review.date, "run_id": review.run_id, "agent_id": cand["agent_id"], "genome": cand["genome"],
        "status": PROPOSED, "created_at": _iso(at), "expires_at": _iso(at + timedelta(hours=chain.window_hours)),
        "proposed_by": {"user": name, "role": role, "at": _iso(at), "notes": notes, "checklist_hash": digest},
        "checklist": snap, "checklist_hash": digest, "allocation": cand["allocation"],
        "chain": chain.to_dict(), "promoter": config.to_dict(), "steps": [],
    }
    created = store.create_promotion(doc)
    _count(PROPOSED)
    notify_promotion(store, created)
    return created


def _expire(store: Store, doc: dict, at: datetime) -> bool | None:
    """Expire ``doc`` if its window ended by ``at``: None when not due, True when this
    call expired it, False when another writer moved it first."""
    chain = ApprovalChain.from_dict(doc["chain"])
    if doc["status"] in chain.open_statuses() and doc.get("expires_at") and _now(doc["expires_at"]) <= at:
        moved = store.transition_promotion(doc["promotion_id"], doc["status"], EXPIRED, {
            "user": SYSTEM, "role": SYSTEM, "at": _iso(at), "kind": "expire",
            "reason": f"approval window of {chain.window_hours:g} h elapsed at {doc['expires_at']}"})
        if moved:
            _count(EXPIRED)
        return bool(moved)
    return None


def _expire_if_due(store: Store, doc: dict, at: datetime) -> bool:
    """Whether ``doc`` was due (and is now expired, by this call or another writer)."""
    return _expire(store, doc, at) is not None


def approve(store: Store, principal: Principal, promotion_id: str, notes: str, checklist_hash: str, *,
            now: datetime | str | None = None) -> dict:
    """Sign the next approval step of a request.

    Args:
        principal: the signer (``name``, ``role``).
        promotion_id: the request.
        notes: why (required, non-empty).
        checklist_hash: the :func:`checklist_digest` of the checklist the signer saw
            (``readiness(...)["checklist_hash"]`` or the request's ``checklist_hash``).
        now: the moment (default now; tests pass it).

    Returns:
        The request after the transition.

    Raises:
        PromotionNotFound, ValidationError (empty notes or hash),
        StateConflict (not open, expired, or another approval won),
        RoleError (the step needs another role), SeparationOfDuties (already
        signed a step, or proposed and the step is not the first),
        StaleChecklist (figures changed: re-approval needed; recorded as the audit
        event ``promotion.reapproval_needed``).
    """
    name, role = _who(principal)
    notes = _need_notes(notes)
    if not isinstance(checklist_hash, str) or not checklist_hash:
        raise ValidationError("checklist_hash is required: the hash of the checklist you reviewed")
    at = _now(now)
    doc = _get(store, promotion_id)
    chain = ApprovalChain.from_dict(doc["chain"])
    if _expire_if_due(store, doc, at):
        raise StateConflict(f"promotion {promotion_id} expired at {doc['expires_at']}: propose it again")
    if doc["status"] not in chain.open_statuses():
        raise StateConflict(f"promotion {promotion_id} is {doc['status']}: nothing to approve")
    idx = _signed(doc)
    step = chain.steps[idx]
    if role != step.role:
        earlier = [s for s in doc.get("steps", []) if s.get("kind") == "approve" and s.get("role") == role]
        if earlier:  # the step this signer came for was signed meanwhile
            raise StateConflict(f"the {role} step of {promotion_id} was already signed by {earlier[0]['user']}; "
                                f"it is now {doc['status']}")
        raise RoleError(f"the next step ({step.status}) needs role {step.role}; {name} is {role}")
    signers = [s["user"] for s in doc.get("steps", []) if s.get("kind") == "approve"]
    proposer = doc["proposed_by"]["user"]
    if name in signers:
        raise SeparationOfDuties(f"{name} already signed a step of {promotion_id}: another {step.role} user "
                                 "must sign this one")
    if name == proposer and (idx > 0 or not chain.proposer_may_sign_first):
        raise SeparationOfDuties(f"{name} proposed {promotion_id} and may sign only its first step: another "
                                 f"{step.role} user must sign {step.status}")
    review = review_campaign_day(store, doc["campaign_id"], doc["day"], PromoterConfig.from_dict(doc["promoter"]))
    cand = next((c for c in review.candidates if c["agent_id"] == doc["agent_id"]), None)
    current = checklist_digest(_snapshot(review, cand)) if cand else None
    if current != checklist_hash or current != doc["checklist_hash"]:
        why = ("the checklist you saw is not the current one" if current != checklist_hash else
               "the figures changed since the proposal")
        store.record_audit({"kind": "promotion.reapproval_needed", "actor": name, "at": _iso(at), "details": {
            "promotion_id": promotion_id, "seen": checklist_hash, "current": current,
            "proposed": doc["checklist_hash"], "reason": why}})
        raise StaleChecklist(f"re-approval needed: {why} (current hash {current}, seen {checklist_hash}, "
                             f"proposed {doc['checklist_hash']}); reload the checklist, reject this request "
                             "and propose again")
    ok = store.transition_promotion(promotion_id, doc["status"], step.status, {
        "user": name, "role": role, "at": _iso(at), "notes": notes, "checklist_hash": current,
        "kind": "approve", "step": step.status})
    if not ok:
        raise StateConflict(f"promotion {promotion_id} is no longer {doc['status']}: another decision won; "
                            "reload it")
    _count(step.status)
    out = _get(store, promotion_id)
    notify_promotion(store, out)
    return out


def reject(store: Store, principal: Principal, promotion_id: str, notes: str, *,
           now: datetime | str | None = None) -> dict:
    """Reject an open request (roles of the request's ``chain.reject_roles``; notes required).

    Raises:
        PromotionNotFound, ValidationError, RoleError, StateConflict (not open, expired, or moved on).
    """
    name, role = _who(principal)
    notes = _need_notes(notes)
    at = _now(now)
    doc = _get(store, promotion_id)
    chain = ApprovalChain.from_dict(doc["chain"])
    _require(principal, "reject")
    if role not in chain.reject_roles:
        raise RoleError(f"{name} ({role}) may not reject; allowed roles: {', '.join(chain.reject_roles)}")
    if _expire_if_due(store, doc, at):
        raise StateConflict(f"promotion {promotion_id} expired at {doc['expires_at']}")
    if doc["status"] not in chain.open_statuses():
        raise StateConflict(f"promotion {promotion_id} is {doc['status']}: nothing to reject")
    ok = store.transition_promotion(promotion_id, doc["status"], REJECTED, {
        "user": name, "role": role, "at": _iso(at), "notes": notes, "kind": "reject"})
    if not ok:
        raise StateConflict(f"promotion {promotion_id} is no longer {doc['status']}; reload it")
    _count(REJECTED)
    out = _get(store, promotion_id)
    notify_promotion(store, out)
    return out


def expire_due(store: Store, now: datetime | str | None = None) -> list[str]:
    """Expire every open request whose approval window ended by ``now`` (default
    now); what a periodic task runs. Returns the ids expired by this call."""
    at = _now(now)
    # every request (open statuses depend on each request's chain); only those this call moved
    # count, not one another writer moved first
    return [doc["promotion_id"] for doc in offset_pages(store.list_promotions) if _expire(store, doc, at)]


def list_promotions(store: Store, *, status: str | None = None, campaign_id: str | None = None,
                    limit: int = 50, offset: int = 0) -> dict:
    """A page of requests, newest first: ``{"items", "total", "limit", "offset"}``."""
    try:
        items = store.list_promotions(status=status, campaign_id=campaign_id, limit=limit, offset=offset)
        total = store.count_promotions(status=status, campaign_id=campaign_id)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def get_promotion(store: Store, promotion_id: str) -> dict:
    """A request with its log (``"log"``) and next step (``"next_step"``)."""
    doc = _get(store, promotion_id)
    return {**doc, "log": store.promotion_log(promotion_id),
            "next_step": _next_step(doc, ApprovalChain.from_dict(doc["chain"]), None)}
