"""Campaigns and the Day-3 promotion modal (issue 13).

``GET /trading/campaigns``
    Stored campaigns, newest first (:func:`manager.campaign_views.campaign_list`).
``GET /trading/campaigns/{campaign_id}``
    Day by day (:func:`manager.campaign_views.campaign_view`): the parent's ROI, percentile
    against random cohorts, max drawdown, the best agent and a link to each day's cohort page;
    the baselines and the policy tiers of each day; the candidates with their holdout
    confirmation; on days >= 3 a "Review Day-3 promotion" button.
``GET /trading/promotions/review?run_id=``
    The modal (an HTMX partial, :func:`manager.campaign_views.promotion_review`): allocation,
    its VaR/CVaR, tier and Kelly cap, the checklist, the equity curve against its baselines,
    the signatures, a notes field and the Promote / Approve / Reject buttons -- enabled only
    when every guard rail passes and the signed-in user holds the next step's role, otherwise
    disabled with the reason.
``POST /trading/promotions/propose``, ``POST /trading/promotions/{promotion_id}/approve``, ``.../reject``
    The buttons: the same use cases as the API (:mod:`manager.promotions`) as the session's
    user (re-checked in the store); CSRF-checked like every dashboard POST. They answer the
    modal again with the outcome (the use case's status on a refusal: 401, 403, 404, 409, 422).
"""
from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from evolution.promoter import PromoterError
from manager import campaign_views, promotions, services
from manager.data_roots import public_error
from manager.store import NotFound, Store
from web import figures
from web.auth import form_data, session_principal
from web.errors import PageError, html_router
from web.pages import store
from web.templating import render

__all__ = ["campaign_page", "campaigns_page", "review_modal", "router"]

router = html_router()


@router.get("/trading/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, db: Store = Depends(store)) -> HTMLResponse:
    """The stored campaigns, newest first."""
    return render(request, "campaigns.html", {"nav": "campaigns", "campaigns": campaign_views.campaign_list(db)})


@router.get("/trading/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, campaign_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """One campaign, day by day.

    Raises:
        PageError: 404 for an unknown campaign.
    """
    try:
        view = campaign_views.campaign_view(db, campaign_id)
    except (NotFound, ValueError):
        raise PageError(404, "Campaign not found", f"There is no campaign {campaign_id!r} in this store.") from None
    return render(request, "campaign.html", {"nav": "campaigns", "charts": True, "campaign": view})


def _principal(request: Request, db: Store):
    return session_principal(request, db, services.current_settings().api_token)


def _modal(request: Request, db: Store, run_id: str, *, flash: dict | None = None,
           status_code: int = 200) -> HTMLResponse:
    """The review modal of ``run_id`` for the session's user, with an optional outcome message."""
    try:
        config = campaign_views.promoter_config()
    except PromoterError as exc:
        raise PageError(503, "Promoter settings invalid", str(exc)) from None
    try:
        view = campaign_views.promotion_review(db, run_id, _principal(request, db), config=config)
    except promotions.PromotionError as exc:
        raise PageError(exc.status, "No promotion review", public_error(str(exc)) or "") from None
    figure = None
    if (view["risk"] or {}).get("curves"):
        figure = figures.to_json(figures.promotion_figure(view["risk"]["curves"], view["quote"] or "",
                                                          view["baselines"], view["candidate"]))
    return render(request, "partials/promotion_review.html",
                  {"review": view, "flash": flash, "figure": figure}, status_code=status_code)


@router.get("/trading/promotions/review", response_class=HTMLResponse)
def review_modal(request: Request, run_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """The Day-3 review modal of a campaign run (the partial HTMX puts into ``#modal``).

    Raises:
        PageError: 404 no such run or campaign; 422 not a campaign day >= 3.
    """
    return _modal(request, db, run_id)


async def _act(request: Request, db: Store, action: str, promotion_id: str | None = None) -> HTMLResponse:
    """Read the form, then run the use case in the thread pool (the store blocks)."""
    form = await form_data(request)
    return await run_in_threadpool(_act_sync, request, db, form, action, promotion_id)


def _act_sync(request: Request, db: Store, form: dict[str, str], action: str,
              promotion_id: str | None) -> HTMLResponse:
    run_id = form.get("run_id", "").strip()
    if not run_id:
        raise PageError(422, "Bad request", "run_id is required")
    principal = _principal(request, db)
    if principal is None:
        return _modal(request, db, run_id, status_code=401,
                      flash={"ok": False, "text": "Sign in first: your session ended or you are signed out."})
    request.state.principal = principal
    notes = form.get("notes", "")
    try:
        if action == "propose":
            doc = promotions.propose(db, principal, form.get("campaign_id", ""), int(form.get("day") or 0),
                                     form.get("agent_id") or None, notes, config=campaign_views.promoter_config())
            text = f"Proposed {doc['agent_id']} as {doc['promotion_id']}: {doc['status']}."
        elif action == "approve":
            doc = promotions.approve(db, principal, promotion_id or "", notes, form.get("checklist_hash", ""))
            text = f"Signed: {doc['promotion_id']} is now {doc['status']}."
        else:
            doc = promotions.reject(db, principal, promotion_id or "", notes)
            text = f"Rejected {doc['promotion_id']}."
    except promotions.PromotionError as exc:
        return _modal(request, db, run_id, status_code=exc.status,
                      flash={"ok": False, "text": public_error(str(exc)) or type(exc).__name__})
    except ValueError:  # day not a number
        return _modal(request, db, run_id, status_code=422, flash={"ok": False, "text": "day must be a number"})
    return _modal(request, db, run_id, flash={"ok": True, "text": text})


@router.post("/trading/promotions/propose", response_class=HTMLResponse)
async def propose(request: Request, db: Store = Depends(store)) -> HTMLResponse:
    """Propose the candidate (form: ``run_id``, ``campaign_id``, ``day``, ``agent_id``, ``notes``)."""
    return await _act(request, db, "propose")


@router.post("/trading/promotions/{promotion_id}/approve", response_class=HTMLResponse)
async def approve(request: Request, promotion_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """Sign the next step (form: ``run_id``, ``notes``, ``checklist_hash``)."""
    return await _act(request, db, "approve", promotion_id)


@router.post("/trading/promotions/{promotion_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, promotion_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """Reject the open request (form: ``run_id``, ``notes``)."""
    return await _act(request, db, "reject", promotion_id)


def review_button(db: Store, run_id: str) -> dict[str, Any] | None:
    """The campaign day of a cohort run when it may be reviewed (day >= 3), for the cohort page."""
    found = campaign_views.campaign_of_run(db, run_id)
    return found if found and found["reviewable"] else None
