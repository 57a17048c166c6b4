"""Day-3 promotion (issue 13): readiness, the requests and their signed steps.

``GET /api/assistant/cohorts/{cohort_id}/promotion-readiness``
    :func:`manager.promotions.readiness` of a campaign day >= 3 (open read).
``GET /api/promotions``, ``GET /api/promotions/{promotion_id}``
    :func:`manager.promotions.list_promotions` (JSON pages, or ``format=csv``: every match,
    columns :data:`manager.campaign_views.PROMOTION_CSV_FIELDS`) and
    :func:`manager.promotions.get_promotion`.
``POST /api/promotions`` (action ``propose``: ops, admin)
    :func:`manager.promotions.propose`.
``POST /api/promotions/{promotion_id}/approve`` and ``/reject``
    :func:`manager.promotions.approve` / :func:`~manager.promotions.reject`: any authenticated
    principal; the use case checks the role of the step (ops, then risk) and the separation of
    duties.

The promoter settings are :func:`manager.campaign_views.promoter_config`. The use cases'
refusals (:class:`manager.promotions.PromotionError`) are problem documents with their
``status`` (404, 409, 403, 422); nothing here answers with a server path.
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Principal, current_principal, get_store, require_permission
from api.problems import ApiProblem, problem_responses
from api.schemas import (ID_PATTERN, PromotionApproval, PromotionDetail, PromotionDoc, PromotionPage,
                         PromotionProposal, PromotionReadiness, PromotionRejection)
from evolution.promoter import PromoterConfig, PromoterError
from manager import campaign_views, promotions
from manager.data_roots import public_error
from manager.report import csv_chunks
from manager.store import Store

__all__ = ["router"]

router = APIRouter(tags=["promotions"])

_TYPES = {404: "not-found", 409: "conflict", 403: "forbidden", 422: "validation-error"}

PROMOTION_ID = Path(pattern=ID_PATTERN, description="The request's id (`promo-...`).", examples=["promo-0123456789ab"])


def _config() -> PromoterConfig:
    """The configured promoter settings (503 when they do not validate: a server misconfiguration)."""
    try:
        return campaign_views.promoter_config()
    except PromoterError as exc:
        raise ApiProblem(503, f"the server's promoter settings are invalid: {exc}", type_="misconfigured") from None


def _problem(exc: promotions.PromotionError, principal: Principal | None = None) -> ApiProblem:
    """A use case's refusal as a problem document with its status (a 403 names the caller and role)."""
    detail = public_error(str(exc)) or type(exc).__name__
    if exc.status == 403 and principal is not None:
        detail = f"user {principal.name!r} (role {principal.role}) may not do this: {detail}"
    errors = [{"field": "notes", "message": detail}] if exc.status == 422 and "notes" in str(exc) else []
    return ApiProblem(exc.status, detail, type_=_TYPES.get(exc.status), errors=errors,
                      title="Request validation failed" if exc.status == 422 else None)


@router.get("/api/assistant/cohorts/{cohort_id}/promotion-readiness", response_model=PromotionReadiness,
            summary="Promotion-readiness of a campaign day >= 3", tags=["assistant", "promotions"],
            responses=problem_responses(404, 422, 503))
def readiness(cohort_id: str = Path(pattern=ID_PATTERN, description="The cohort run of a campaign day >= 3."),
              store: Store = Depends(get_store)):
    """The promoter's review of the campaign day this cohort run is: every guard rail of the
    proposal (else of the best candidate) with figure, threshold and verdict; the blocking
    items; the checklist hash an approver signs; the allocation; the next step (propose,
    approve by which role, deploy, blocked) and the open request, if any.

    404: no such run or its campaign is not stored; 422: the run is not a campaign day, or its
    day is < 3."""
    try:
        return JSONResponse(promotions.readiness(store, cohort_id, config=_config()))
    except promotions.PromotionError as exc:
        raise _problem(exc) from None


@router.get(
    "/api/promotions", response_model=PromotionPage, summary="Promotion requests (JSON or CSV)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "A page of requests, newest first; with `format=csv` every matching request "
                                    "as CSV."},
               **problem_responses(422, 503)},
)
def list_promotions(
    status: str | None = Query(None, pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Only requests in this state "
                               "(`proposed`, `ops_approved`, `risk_approved`, `rejected`, `expired`).",
                               examples=["proposed"]),
    campaign_id: str | None = Query(None, pattern=ID_PATTERN, description="Only requests of this campaign."),
    limit: int = Query(50, ge=1, le=500, description="Requests per page (JSON only)."),
    offset: int = Query(0, ge=0, le=10_000_000, description="Requests to skip (JSON only)."),
    format: Literal["json", "csv"] = Query("json", description="`csv` answers **every** request matching the "
                                           "filters (`limit` and `offset` do not apply) as a streamed CSV "
                                           "attachment; `X-Total-Count` is their number."),
    store: Store = Depends(get_store),
):
    """Promotion requests, newest first, with their proposer, signed steps, checklist hash and
    allocation. CSV columns: `promotion_id, campaign_id, day, date, run_id, agent_id, status,
    created_at, expires_at, proposed_by, proposed_at, ops_signed_by, risk_signed_by, rejected_by,
    allocation, bankroll, gross_exposure, checklist_hash` (signers as `user (role) at time`)."""
    try:
        page = promotions.list_promotions(store, status=status, campaign_id=campaign_id,
                                          limit=limit if format == "json" else 1,
                                          offset=offset if format == "json" else 0)
    except promotions.PromotionError as exc:
        raise _problem(exc) from None
    if format == "csv":
        rows = campaign_views.promotion_rows(store, status=status, campaign_id=campaign_id)
        return StreamingResponse(csv_chunks(rows, campaign_views.PROMOTION_CSV_FIELDS),
                                 media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="promotions.csv"',
                                          "X-Total-Count": str(page["total"])})
    return JSONResponse({**page, "limit": limit, "offset": offset})


@router.get("/api/promotions/{promotion_id}", response_model=PromotionDetail, summary="A promotion request",
            responses=problem_responses(404, 422, 503))
def get_promotion(promotion_id: str = PROMOTION_ID, store: Store = Depends(get_store)):
    """A request with its signed steps, its `promotion_log` entries and its next step."""
    try:
        return JSONResponse(promotions.get_promotion(store, promotion_id))
    except promotions.PromotionError as exc:
        raise _problem(exc) from None


@router.post("/api/promotions", response_model=PromotionDoc, status_code=201,
             summary="Propose a Day-3 promotion (role ops or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def propose(body: PromotionProposal, store: Store = Depends(get_store),
            principal: Principal = Depends(require_permission("propose"))):
    """Propose an agent of a campaign day >= 3 (default: the promoter's proposal). Needs the
    role ops or admin (action `propose`). 422: notes missing, day < 3, an unknown agent or one
    failing a guard rail (listed); 409: a request of that day is already open; 404: no such
    campaign. The request stores its checklist snapshot, its hash and the promoter settings."""
    try:
        doc = promotions.propose(store, principal, body.campaign_id, body.day, body.agent_id, body.notes,
                                 config=_config())
    except promotions.PromotionError as exc:
        raise _problem(exc, principal) from None
    return JSONResponse(doc, status_code=201)


@router.post("/api/promotions/{promotion_id}/approve", response_model=PromotionDoc,
             summary="Sign the next approval step (the step's role: ops, then risk)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def approve(body: PromotionApproval, promotion_id: str = PROMOTION_ID, store: Store = Depends(get_store),
            principal: Principal = Depends(current_principal)):
    """Sign the next step of a request with notes and the hash of the checklist you reviewed.
    403: your role is not the step's (ops signs `ops_approved`, risk `risk_approved`), or you
    already signed a step of it; 409: it is not open (approved, rejected, expired), another
    approval won, or the figures changed (re-approval needed); 404: no such request."""
    try:
        return JSONResponse(promotions.approve(store, principal, promotion_id, body.notes, body.checklist_hash))
    except promotions.PromotionError as exc:
        raise _problem(exc, principal) from None


@router.post("/api/promotions/{promotion_id}/reject", response_model=PromotionDoc,
             summary="Reject an open request (role ops, risk or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def reject(body: PromotionRejection, promotion_id: str = PROMOTION_ID, store: Store = Depends(get_store),
           principal: Principal = Depends(current_principal)):
    """Reject an open request with notes (roles of its chain: ops, risk, admin). 409: it is no
    longer open; 404: no such request. A new proposal can then be made."""
    try:
        return JSONResponse(promotions.reject(store, principal, promotion_id, body.notes))
    except promotions.PromotionError as exc:
        raise _problem(exc, principal) from None
