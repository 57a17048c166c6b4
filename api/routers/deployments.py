"""Micro-live deployments (issue 14): read them, roll them back, extend or pause them.

``GET /api/deployments``, ``GET /api/deployments/{deployment_id}``
    :func:`manager.deployments.list_deployments` (pages, ``status`` filter) and
    :func:`manager.deployments.get_deployment` (with its incidents); open reads.
``POST /api/deployments/{deployment_id}/rollback`` (action ``rollback``: ops, risk, admin)
    :func:`manager.deployments.rollback` on the deployment's own bars
    (:func:`manager.deployments.deployment_market`).
``POST /api/deployments/{deployment_id}/extend`` (action ``extend``: risk, admin)
    :func:`manager.deployments.extend`.
``POST /api/deployments/{deployment_id}/pause`` (action ``pause``: ops, risk, admin)
    :func:`manager.deployments.pause`.

The roles are :data:`manager.users.PERMISSIONS`; notes are required (422). The use cases'
refusals (:class:`manager.deployments.DeploymentError`) are problem documents with their
``status`` (404 unknown, 409 not in a state that allows it, 403, 422); documents go out
through :func:`manager.data_roots.public_view` (no server paths).
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api.deps import Principal, get_store, require_permission
from api.problems import ApiProblem, problem_responses
from api.schemas import (ID_PATTERN, DeploymentControl, DeploymentDetail, DeploymentExtension, DeploymentPage)
from manager import deployments as D
from manager.data_roots import public_error, public_view
from manager.store import Store

__all__ = ["router"]

router = APIRouter(tags=["deployments"])

_TYPES = {404: "not-found", 409: "conflict", 403: "forbidden", 422: "validation-error"}

DEPLOYMENT_ID = Path(pattern=ID_PATTERN, description="The deployment's id (`dep-...`).",
                     examples=["dep-0123456789ab"])


def _problem(exc: D.DeploymentError, principal: Principal | None = None) -> ApiProblem:
    """A use case's refusal as a problem document with its status (a 403 names the caller and role)."""
    detail = public_error(str(exc)) or type(exc).__name__
    status = int(getattr(exc, "status", 400))
    if status == 403 and principal is not None:
        detail = f"user {principal.name!r} (role {principal.role}) may not do this: {detail}"
    errors = [{"field": "notes" if "notes" in str(exc) else "days", "message": detail}] if status == 422 else []
    return ApiProblem(status, detail, type_=_TYPES.get(status), errors=errors,
                      title="Request validation failed" if status == 422 else None)


def _doc(store: Store, deployment_id: str) -> JSONResponse:
    return JSONResponse(public_view(D.get_deployment(store, deployment_id)))


@router.get("/api/deployments", response_model=DeploymentPage, summary="Deployments, newest first",
            responses=problem_responses(422, 503))
def list_deployments(
    status: str | None = Query(None, pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Only deployments in this "
                               "state (`running`, `paused`, `rolled_back`).", examples=["running"]),
    limit: int = Query(50, ge=1, le=500, description="Deployments per page."),
    offset: int = Query(0, ge=0, le=10_000_000, description="Deployments to skip."),
    store: Store = Depends(get_store),
):
    """Deployments, newest first, with their allocation, broker state, timer and controls; without
    their ledger, fills and curves (``fills_count``, ``ledger_transactions``: read the deployment)."""
    try:
        items = [D.deployment_brief(d) for d in D.list_deployments(store, status=status, limit=limit, offset=offset)]
    except D.DeploymentError as exc:
        raise _problem(exc) from None
    return JSONResponse(public_view({"items": items, "limit": limit, "offset": offset}))


@router.get("/api/deployments/{deployment_id}", response_model=DeploymentDetail, summary="A deployment",
            responses=problem_responses(404, 422, 503))
def get_deployment(deployment_id: str = DEPLOYMENT_ID, store: Store = Depends(get_store)):
    """A deployment with its rollback incidents (their figures). 404: no such deployment."""
    try:
        return _doc(store, deployment_id)
    except D.DeploymentError as exc:
        raise _problem(exc) from None


@router.post("/api/deployments/{deployment_id}/rollback", response_model=DeploymentDetail,
             summary="Roll a deployment back now (role ops, risk or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def rollback(body: DeploymentControl, deployment_id: str = DEPLOYMENT_ID, store: Store = Depends(get_store),
             principal: Principal = Depends(require_permission("rollback"))):
    """Flatten at the last processed close, return the capital to the parent and set the
    deployment and its promotion `rolled_back`, recording a `manual` incident with who and why.
    A rolled-back deployment is answered as it is. 404: no such deployment; 400: its bars
    cannot be reloaded."""
    try:
        market = D.deployment_market(D.get_deployment(store, deployment_id))
        D.rollback(store, deployment_id, "manual", market=market, actor=principal, notes=body.notes)
        return _doc(store, deployment_id)
    except D.DeploymentError as exc:
        raise _problem(exc, principal) from None


@router.post("/api/deployments/{deployment_id}/extend", response_model=DeploymentDetail,
             summary="Extend the rollback timer (role risk or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def extend(body: DeploymentExtension, deployment_id: str = DEPLOYMENT_ID, store: Store = Depends(get_store),
           principal: Principal = Depends(require_permission("extend"))):
    """Move `expires_at` `days` later (a re-approval). 409: the deployment is rolled back."""
    try:
        D.extend(store, deployment_id, actor=principal, notes=body.notes, days=body.days)
        return _doc(store, deployment_id)
    except D.DeploymentError as exc:
        raise _problem(exc, principal) from None


@router.post("/api/deployments/{deployment_id}/pause", response_model=DeploymentDetail,
             summary="Pause a running deployment (role ops, risk or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def pause(body: DeploymentControl, deployment_id: str = DEPLOYMENT_ID, store: Store = Depends(get_store),
          principal: Principal = Depends(require_permission("pause"))):
    """Stop stepping a running deployment (positions are kept). 409: it is not running."""
    try:
        D.pause(store, deployment_id, actor=principal, notes=body.notes)
        return _doc(store, deployment_id)
    except D.DeploymentError as exc:
        raise _problem(exc, principal) from None
