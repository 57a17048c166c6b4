"""The assistant's pages (issue 15): "Grow $X over N days", the plan page and the toasts.

``GET /trading/assistant/grow``
    The form (:func:`manager.assistant_views.grow_form`): bankroll, target (a return in % or an
    amount), days, risk appetite, data folder and symbols, start day, cohort size and GA
    generations, with the server's defaults.
``POST /trading/assistant/grow`` (action ``launch``: ops, admin; CSRF-checked)
    Drafts the intent (:func:`manager.intents.draft_grow`, as ``POST /api/assistant/intents/grow``)
    and answers the feasibility partial (HTMX target ``#grow-result``): prerequisites pass/fail,
    the probability of reaching the target, the fan chart (expected path with its 5-95 % band
    and the target), the bankroll at risk (VaR/CVaR with horizon and sample), the refusal or
    block, and -- for a draft -- the Confirm button carrying the confirm token. 401 signed out,
    403 role, 422 bad fields (shown next to them); nothing is stored then.
``POST /trading/assistant/intents/{intent_id}/confirm`` (action ``launch``; CSRF-checked)
    :func:`manager.intents.confirm_grow` with the form's ``confirm_token``, then to the plan page
    (``HX-Redirect`` for HTMX, else 303). A refusal (401, 403, 404, 409 stale token / not a draft)
    answers the partial with the reason.
``GET /trading/assistant/intents/{intent_id}`` and ``.../live``
    The plan page (:func:`manager.assistant_views.plan_view`): status, the daily plan and the
    actual against plan day by day (table and chart), the narratives; the live part is polled
    every 5 s over HTMX while the plan runs (its partial without a trigger stops the polling).
``GET /toasts`` and ``POST /toasts/dismiss`` (CSRF-checked)
    The toasts partial polled every 15 s by every page (``base.html``): recent alerts (kill
    switch, rollback, promotions, failed tasks...) and the approvals waiting for the signed-in
    user's role; dismissing one (``alert_id``, or ``all``) hides it for this session.
"""
from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from manager import assistant_views, intents, services, users
from manager.data_roots import public_error
from manager.store import Store
from web import figures
from web.auth import form_data, session, session_principal
from web.errors import PageError, html_router
from web.pages import store
from web.templating import is_partial, render

__all__ = ["confirm", "grow_page", "grow_submit", "plan_page", "router", "toasts_partial"]

router = html_router()

MAX_DISMISSED = 50
"""Most dismissed alert ids a session remembers."""


def _principal(request: Request, db: Store):
    return session_principal(request, db, services.current_settings().api_token)


def _actor(principal) -> str:
    return principal.name if ":" in principal.name else f"user:{principal.name}"


def _settings():
    try:
        return services.current_settings()
    except Exception:  # noqa: BLE001 - bad settings must not hide the form
        return None


@router.get("/trading/assistant/grow", response_class=HTMLResponse)
def grow_page(request: Request) -> HTMLResponse:
    """The "Grow $X over N days" form (a query string pre-fills it, e.g. ``?bankroll=500&days=10``)."""
    form = assistant_views.grow_form(_settings())
    values = {**form["defaults"], **{k: v for k, v in request.query_params.items() if k in form["defaults"]}}
    return render(request, "assistant_grow.html", {"nav": "cohorts", "charts": True, "form": form,
                                                   "values": values, "errors": {}})


def _result(request: Request, *, result=None, errors=None, flash=None, status_code: int = 200) -> HTMLResponse:
    figure = None
    if result and result["path"]:
        figure = figures.to_json(figures.fan_figure(result["path"], result["bankroll"], result["target_amount"],
                                                    result["quote"]))
    return render(request, "partials/grow_result.html",
                  {"result": result, "errors": errors or {}, "flash": flash, "figure": figure},
                  status_code=status_code)


def _grow_sync(request: Request, db: Store, form: dict[str, str]) -> HTMLResponse:
    principal = _principal(request, db)
    if principal is None:
        return _result(request, status_code=401, flash={"ok": False, "text": "Sign in first: your session ended or "
                                                                            "you are signed out. Nothing was drafted."})
    request.state.principal = principal
    if not users.can(principal, "launch"):
        return _result(request, status_code=403, flash={
            "ok": False, "text": f"{principal.role}: needs role {' or '.join(sorted(users.PERMISSIONS['launch']))} "
                                 f"to draft a plan. Nothing was drafted."})
    settings = _settings()
    data_dir = str(settings.data_dir) if settings is not None and getattr(settings, "data_dir", None) else None
    inp, errors = assistant_views.parse_grow_form(form, data_dir)
    if inp is None:
        return _result(request, status_code=422, errors=errors,
                       flash={"ok": False, "text": "Check the fields marked below. Nothing was drafted."})
    try:
        doc = intents.draft_grow(db, inp, actor=_actor(principal))
    except intents.IntentError as exc:
        field = {"target_return": "target", "target_amount": "target"}.get(exc.field or "", exc.field or "form")
        return _result(request, status_code=int(exc.status), errors={field: public_error(str(exc)) or str(exc)},
                       flash={"ok": False, "text": "Nothing was drafted."})
    return _result(request, result=assistant_views.grow_result(doc))


@router.post("/trading/assistant/grow", response_class=HTMLResponse)
async def grow_submit(request: Request, db: Store = Depends(store)) -> HTMLResponse:
    """Draft the plan and answer its feasibility (the partial of ``#grow-result``)."""
    form = await form_data(request)
    return await run_in_threadpool(_grow_sync, request, db, form)


def _confirm_sync(request: Request, db: Store, form: dict[str, str], intent_id: str) -> Response:
    principal = _principal(request, db)

    def refused(status: int, text: str) -> HTMLResponse:
        try:
            result = assistant_views.grow_result(intents.get_intent(db, intent_id))
        except intents.IntentNotFound:
            result = None
        return _result(request, result=result, status_code=status, flash={"ok": False, "text": text})

    if principal is None:
        return refused(401, "Sign in first: your session ended or you are signed out. Nothing was started.")
    request.state.principal = principal
    if not users.can(principal, "launch"):
        return refused(403, f"{principal.role}: needs role {' or '.join(sorted(users.PERMISSIONS['launch']))} to "
                            f"confirm a plan. Nothing was started.")
    try:
        intents.confirm_grow(db, intent_id, form.get("confirm_token", ""), actor=_actor(principal))
    except intents.IntentNotFound:
        raise PageError(404, "Plan not found", f"There is no plan {intent_id!r} in this store.") from None
    except intents.IntentError as exc:
        return refused(int(exc.status), f"{public_error(str(exc)) or type(exc).__name__} (nothing was started)")
    where = f"/trading/assistant/intents/{intent_id}"
    if is_partial(request):
        return Response(status_code=200, headers={"HX-Redirect": where})
    return Response(status_code=303, headers={"Location": where})


@router.post("/trading/assistant/intents/{intent_id}/confirm", response_class=HTMLResponse)
async def confirm(request: Request, intent_id: str, db: Store = Depends(store)) -> Response:
    """Confirm a drafted plan (form: ``confirm_token``) and open its plan page."""
    form = await form_data(request)
    return await run_in_threadpool(_confirm_sync, request, db, form, intent_id)


def _plan(db: Store, intent_id: str) -> dict:
    try:
        view = assistant_views.plan_view(intents.get_intent(db, intent_id))
    except intents.IntentNotFound:
        raise PageError(404, "Plan not found", f"There is no plan {intent_id!r} in this store.") from None
    figure = None
    if view["plan_rows"] and any(r["expected_equity"] is not None for r in view["rows"]):
        figure = figures.to_json(figures.plan_figure(view["plan_rows"], view["bankroll"], view["target_amount"],
                                                     view["quote"]))
    return {"plan": view, "figure": figure}


@router.get("/trading/assistant/intents/{intent_id}", response_class=HTMLResponse)
def plan_page(request: Request, intent_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """A grow plan: its daily plan and the actual against plan day by day.

    Raises:
        PageError: 404 for an unknown plan.
    """
    return render(request, "intent.html", {"nav": "cohorts", "charts": True, **_plan(db, intent_id)})


@router.get("/trading/assistant/intents/{intent_id}/live", response_class=HTMLResponse)
def plan_live(request: Request, intent_id: str, db: Store = Depends(store)) -> HTMLResponse:
    """The plan page's live part (polled every 5 s while running); a plain request goes to the page."""
    if not is_partial(request):
        return HTMLResponse(status_code=303, headers={"Location": f"/trading/assistant/intents/{intent_id}"})
    return render(request, "partials/intent_live.html", _plan(db, intent_id))


def _dismissed(request: Request) -> list[str]:
    found = session(request).get("toasts_dismissed")
    return [str(x) for x in found] if isinstance(found, list) else []


def _toasts(request: Request, db: Store) -> HTMLResponse:
    principal = _principal(request, db) if session(request).get("user") else None
    view = assistant_views.toasts(db, principal.role, set(_dismissed(request))) if principal is not None else None
    return render(request, "partials/toasts.html", {"toasts": view})


@router.get("/toasts", response_class=HTMLResponse)
def toasts_partial(request: Request, db: Store = Depends(store)) -> HTMLResponse:
    """The toasts (empty when signed out)."""
    return _toasts(request, db)


@router.post("/toasts/dismiss", response_class=HTMLResponse)
async def toasts_dismiss(request: Request, db: Store = Depends(store)) -> HTMLResponse:
    """Hide an alert's toast for this session (form: ``alert_id``; ``all`` = every one shown)."""
    form = await form_data(request)

    def work() -> HTMLResponse:
        ids = _dismissed(request)
        wanted = (form.get("alert_id") or "").strip()
        if wanted == "all":
            principal = _principal(request, db) if session(request).get("user") else None
            if principal is not None:
                ids += [a["alert_id"] for a in assistant_views.toasts(db, principal.role, set(ids))["alerts"]]
        elif wanted:
            ids.append(wanted)
        session(request)["toasts_dismissed"] = list(dict.fromkeys(ids))[-MAX_DISMISSED:]
        return _toasts(request, db)

    return await run_in_threadpool(work)
