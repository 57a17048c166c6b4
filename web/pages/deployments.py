"""Micro-live deployments (issue 14): the list, one deployment's page and its manual controls.

``GET /trading/deployments``
    Every deployment, newest first (:func:`manager.deployment_views.deployment_list`), with a
    ``status`` filter (``running``, ``paused``, ``rolled_back``; another value: 400 page).
``GET /trading/deployments/{deployment_id}``
    One deployment (:func:`manager.deployment_views.deployment_view`): the equity curve against
    its allocation and its drawdown rollback level, the rollback timer, open positions, recent
    fills, the rollback incidents with their figures, the controls log and the Rollback / Extend /
    Pause / Resume buttons -- enabled only for the roles of :data:`manager.users.PERMISSIONS`,
    otherwise disabled with the reason. Unknown id: the 404 page.
``GET /trading/deployments/{deployment_id}/live``
    The live part (status, figures, chart, positions, fills) as an HTMX partial; the page polls it
    every 5 s while the deployment is not rolled back (the partial of a rolled-back one carries no
    trigger, so polling stops).
``POST /trading/deployments/{deployment_id}/rollback``, ``.../extend``, ``.../pause``, ``.../resume``
    The buttons (form: ``notes``, and ``days`` for extend): :func:`manager.deployments.rollback`
    (manual, on the deployment's own bars), :func:`~manager.deployments.extend`,
    :func:`~manager.deployments.pause`, :func:`~manager.deployments.resume` as the session's user
    (re-checked in the store); CSRF-checked like every dashboard POST. They answer the page's
    body again with the outcome; a refusal changes nothing and is shown inline with the use
    case's status (401 signed out, 403 role, 404, 409 state, 422 notes or days, 400 bars).
"""
from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from manager import deployment_views, deployments, services
from manager.data_roots import public_error
from manager.store import Store
from web import figures
from web.auth import form_data, session_principal
from web.errors import PageError, html_router
from web.pages import store
from web.templating import is_partial, render

__all__ = ["ACTIONS", "deployment_page", "deployments_page", "live_partial", "router"]

router = html_router()

ACTIONS = ("rollback", "extend", "pause", "resume")
"""The manual controls, each a ``POST /trading/deployments/{deployment_id}/<action>``."""


def _principal(request: Request, db: Store):
    return session_principal(request, db, services.current_settings().api_token)


@router.get("/trading/deployments", response_class=HTMLResponse)
def deployments_page(request: Request, status: str | None = None, db: Store = Depends(store)) -> HTMLResponse:
    """Every deployment, newest first (``status``: only that state; empty = all).

    Raises:
        PageError: 400 for a status that is not a deployment state.
    """
    status = status or None
    try:
        rows = deployment_views.deployment_list(db, status=status)
    except deployments.DeploymentError as exc:
        raise PageError(400, "Bad request", str(exc)) from None
    return render(request, "deployments.html", {"nav": "deployments", "deployments": rows, "status": status,
                                                "statuses": deployment_views.STATUSES})


def _view(request: Request, db: Store, deployment_id: str) -> dict:
    try:
        return deployment_views.deployment_view(db, deployment_id, _principal(request, db))
    except deployments.DeploymentNotFound:
        raise PageError(404, "Deployment not found",
                        f"There is no deployment {deployment_id!r} in this store.") from None


def _context(view: dict) -> dict:
    figure = None
    if view["series"]["timestamps"]:
        figure = figures.to_json(figures.deployment_figure(view["series"], view["quote"], view["allocation"],
                                                           view["thresholds"]["max_drawdown"]))
    return {"d": view, "figure": figure}


@router.get("/trading/deployments/{deployment_id}", response_class=HTMLResponse)
def deployment_page(request: Request, deployment_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """One deployment's page.

    Raises:
        PageError: 404 for an unknown deployment.
    """
    view = _view(request, db, deployment_id)
    return render(request, "deployment.html", {"nav": "deployments", "charts": True, **_context(view)})


@router.get("/trading/deployments/{deployment_id}/live", response_class=HTMLResponse)
def live_partial(request: Request, deployment_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """The live part of a deployment's page (the HTMX partial polled every 5 s); a plain
    request (no ``HX-Request``) is sent to the whole page.

    Raises:
        PageError: 404 for an unknown deployment.
    """
    if not is_partial(request):
        return HTMLResponse(status_code=303, headers={"Location": f"/trading/deployments/{deployment_id}"})
    view = _view(request, db, deployment_id)
    return render(request, "partials/deployment_live.html", _context(view))


def _body(request: Request, db: Store, deployment_id: str, *, flash: dict | None = None,
          status_code: int = 200) -> HTMLResponse:
    view = _view(request, db, deployment_id)
    return render(request, "partials/deployment_body.html", {**_context(view), "flash": flash},
                  status_code=status_code)


def _act_sync(request: Request, db: Store, form: dict[str, str], action: str, deployment_id: str) -> HTMLResponse:
    principal = _principal(request, db)
    if principal is None:
        return _body(request, db, deployment_id, status_code=401,
                     flash={"ok": False, "text": "Sign in first: your session ended or you are signed out. "
                                                 "Nothing was changed."})
    request.state.principal = principal
    notes = form.get("notes", "")
    try:
        if action == "rollback":
            doc = deployments.get_deployment(db, deployment_id)
            if principal.role not in deployments.CONTROL_ROLES or not notes.strip():
                # the use case refuses the role (403) or missing notes (422) before it reads the
                # market, so it is asked before the bars are loaded from disk
                deployments.rollback(db, deployment_id, "manual", market=None, actor=principal, notes=notes)
            if doc["status"] == deployments.ROLLED_BACK:  # the use case would answer it as it is
                raise deployments.DeploymentConflict(f"deployment {deployment_id} is already rolled back")
            market = deployments.deployment_market(doc)
            doc = deployments.rollback(db, deployment_id, "manual", market=market, actor=principal, notes=notes)
            text = f"Rolled back {deployment_id}: final equity {doc['rollback']['final_equity']:.8g}."
        elif action == "extend":
            raw = (form.get("days") or "").strip()
            try:
                days = float(raw)
            except ValueError:
                raise deployments.DeploymentInvalid(f"days={raw!r}; allowed: a number of days in (0, 30]") from None
            doc = deployments.extend(db, deployment_id, actor=principal, notes=notes, days=days)
            text = f"Extended the rollback timer by {days:g} day(s): it now expires {doc['expires_at']}."
        elif action == "pause":
            deployments.pause(db, deployment_id, actor=principal, notes=notes)
            text = f"Paused {deployment_id}: it is not stepped until resumed (positions kept)."
        else:
            deployments.resume(db, deployment_id, actor=principal, notes=notes)
            text = f"Resumed {deployment_id}."
    except deployments.DeploymentNotFound:
        raise PageError(404, "Deployment not found",
                        f"There is no deployment {deployment_id!r} in this store.") from None
    except deployments.DeploymentError as exc:
        return _body(request, db, deployment_id, status_code=int(getattr(exc, "status", 400)),
                     flash={"ok": False, "text": f"{public_error(str(exc)) or type(exc).__name__} "
                                                 f"(nothing was changed)"})
    return _body(request, db, deployment_id, flash={"ok": True, "text": text})


def _route(action: str):
    async def act(request: Request, deployment_id: str, db: Store = Depends(store)) -> HTMLResponse:
        form = await form_data(request)
        return await run_in_threadpool(_act_sync, request, db, form, action, deployment_id)

    act.__name__ = f"deployment_{action}"
    act.__doc__ = (f"The {action} button (form: ``notes``{', ``days``' if action == 'extend' else ''}): the "
                   f"page's body again with the outcome.")
    return act


for _action in ACTIONS:
    router.add_api_route(f"/trading/deployments/{{deployment_id}}/{_action}", _route(_action), methods=["POST"],
                         response_class=HTMLResponse)
