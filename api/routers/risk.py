"""Risk: the leverage policy's read side and the kill switch.

``GET /api/risk/leverage``
    :func:`manager.policy.leverage_panel`: current tier per subject, the kill switch and
    its history, the latest completed cohort's risk report and hard stops, tier paths.
``GET /api/risk/decisions``
    :func:`manager.policy.tier_history`: the stored policy decisions, filtered, newest
    first, as JSON pages or (``format=csv``) one CSV of every matching decision.
``POST /api/risk/kill-switch``
    :func:`manager.policy.set_kill_switch` (role risk or admin; audited with the caller as actor).

Every answer comes from those use cases; this module only maps HTTP to them. The
store's refusals of a filter (``InvalidDocument``) are 422 problem documents naming
the field; nothing here answers with a server path.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Principal, get_store, require_permission
from api.problems import ApiProblem, problem_responses
from api.schemas import DecisionPage, KillSwitchChange, KillSwitchState, LeveragePanel
from manager import policy
from manager.report import csv_chunks
from manager.store import InvalidDocument, Store

__all__ = ["DECISION_CSV_FIELDS", "router"]

router = APIRouter(prefix="/api/risk", tags=["risk"])

DECISION_CSV_FIELDS = policy.DECISION_CSV_FIELDS
"""The columns of ``GET /api/risk/decisions?format=csv``, in order."""

_FILTERS = ("market", "subject", "subject_kind", "trigger", "source", "since", "until", "limit", "offset")

_MOMENT = {"pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$",
           "json_schema_extra": {"format": "date-time"}}

MARKET = Query(None, min_length=1, max_length=200, description="Only this market key (`binance-5m|5m|BTC`).",
               examples=["binance-5m|5m|BTC"])


def _invalid_filter(exc: InvalidDocument) -> ApiProblem:
    """A 422 naming the filter the store refused (its message starts with the name)."""
    message = str(exc)
    field = next((f for f in _FILTERS if message.startswith((f + "=", f + " "))), "query")
    return ApiProblem(422, f"{field}: {message}" if field != "query" else message, type_="validation-error",
                      title="Request validation failed", errors=[{"field": field, "message": message}])


@router.get("/leverage", response_model=LeveragePanel, summary="Leverage tiers, kill switch and bankroll at risk",
            responses=problem_responses(422, 503))
def leverage(market: str | None = MARKET, store: Store = Depends(get_store)):
    """The tier in force per subject (parents first) with the next planned tier and the
    step-down and their triggers; the kill switch (`on`, who, when, why) and its recent
    audit events; the risk report of the latest completed cohort (VaR/CVaR of the parent's
    per-bar returns over one bar, as a fraction of the bankroll and in its quote currency;
    stress scenarios; Kelly leverage per agent) and its daily hard stops; and each
    subject's tier path over its latest decisions (for a chart).

    Tiers are multiples of equity (ceilings on gross exposure); while the kill switch is on
    every tier reads 0 with trigger `kill_switch`."""
    try:
        return JSONResponse(policy.leverage_panel(store, market=market))
    except InvalidDocument as exc:
        raise _invalid_filter(exc) from None


@router.get(
    "/decisions", response_model=DecisionPage, summary="Policy decisions: the audit log of tiers (JSON or CSV)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "A page of decisions, newest period first; with `format=csv` every matching "
                                    "decision as CSV."},
               **problem_responses(422, 503)},
)
def decisions(
    market: str | None = MARKET,
    subject: str | None = Query(None, min_length=1, max_length=200, description="Only this subject "
                                "(`lineage:<founder>` or `parent:<scope>`).", examples=["parent:camp1"]),
    subject_kind: Literal["lineage", "parent"] | None = Query(None, description="Only lineages or only parents."),
    trigger: str | None = Query(None, min_length=1, max_length=100, description="Only decisions this rule set "
                                "(`step_up`, `hold`, `losing_period`, `drawdown_reset`, `hard_stop`, "
                                "`kill_switch`, ...).", examples=["step_up"]),
    source: str | None = Query(None, min_length=1, max_length=200, description="Only decisions of this run or "
                               "campaign id."),
    since: str | None = Query(None, min_length=1, max_length=64, **_MOMENT, description="Only periods ending at or after "
                              "this moment: ISO 8601 with a UTC offset (`2018-01-16T00:00:00Z`).",
                              examples=["2018-01-16T00:00:00Z"]),
    until: str | None = Query(None, min_length=1, max_length=64, **_MOMENT, description="Only periods ending before this "
                              "moment (exclusive), ISO 8601 with a UTC offset."),
    limit: int = Query(50, ge=1, le=500, description="Decisions per page (JSON only)."),
    offset: int = Query(0, ge=0, le=10_000_000, description="Decisions to skip (JSON only)."),
    format: Literal["json", "csv"] = Query("json", description="`csv` answers **every** decision matching the "
                                           "filters (`limit` and `offset` do not apply) as a streamed CSV "
                                           "attachment; `X-Total-Count` is their number."),
    store: Store = Depends(get_store),
):
    """Stored policy decisions, newest `period_end` first: per subject and period the tier
    before and after, the rule that fired with its figures (`rationale.figures`: name,
    value, unit, whether annualised, the sample it was measured on, threshold, passed),
    the Kelly cap, the next planned tier and its trigger, the policy settings and the
    run or campaign it came from. Decisions are append-only."""
    filters = {"market": market, "subject": subject, "subject_kind": subject_kind, "trigger": trigger,
               "source": source, "since": since, "until": until}
    try:
        rows, total = policy.tier_history(store, **filters, limit=limit if format == "json" else 1,
                                          offset=offset if format == "json" else 0)
    except InvalidDocument as exc:
        raise _invalid_filter(exc) from None
    if format == "csv":
        return StreamingResponse(csv_chunks(policy.all_decisions(store, **filters), DECISION_CSV_FIELDS),
                                 media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="policy-decisions.csv"',
                                          "X-Total-Count": str(total)})
    return JSONResponse({"items": rows, "total": total, "limit": limit, "offset": offset})


@router.post("/kill-switch", response_model=KillSwitchState, summary="Turn the kill switch on or off (role risk or admin)",
             responses=problem_responses(400, 401, 403, 422, 503))
def kill_switch(body: KillSwitchChange, store: Store = Depends(get_store),
                principal: Principal = Depends(require_permission("kill_switch"))):
    """Set the kill switch. Needs the role `risk` or `admin` (action `kill_switch`): 401
    without credentials, 403 for another role.

    While on, every cohort trades under 0x ceilings (no agent takes exposure) and the
    policy decides 0x for every subject; turning it off lets each subject's next decision
    resume at the base tier. Every change, even to the same state, is an audit event
    (`kill_switch.on` / `kill_switch.off`) with the caller as actor and the reason; the
    answer is the new state."""
    try:
        return JSONResponse(policy.set_kill_switch(store, body.on, actor=principal.actor, reason=body.reason))
    except InvalidDocument as exc:
        message = str(exc)
        raise ApiProblem(422, f"reason: {message}", type_="validation-error", title="Request validation failed",
                         errors=[{"field": "reason", "message": message}]) from None
