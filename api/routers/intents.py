"""The assistant's intents (issue 15); a thin adapter of :mod:`manager.intents`.

``POST /api/assistant/intents/grow`` (action ``launch``: ops, admin)
    :func:`manager.intents.draft_grow`: prerequisites, feasibility, the daily plan and a
    ``confirm`` step; stored ``draft``, ``refused`` or ``blocked``. 201.
``POST /api/assistant/intents/{intent_id}/confirm`` (action ``launch``)
    :func:`manager.intents.confirm_grow`: starts the days (a Celery chain). 202; 409 not a draft
    or a stale token.
``GET /api/assistant/intents/fund-tomorrow``
    :func:`manager.intents.fund_tomorrow` (logged to the knowledge base).
``GET /api/assistant/intents/{intent_id}``
    the plan and its progress.
``POST /api/assistant/intents`` (action ``launch``)
    :func:`manager.intent_grammar.parse` then the intent; 422 listing the supported phrasings.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Path as PathParam
from fastapi.responses import JSONResponse

from api.deps import Principal, get_settings_dep, get_store, require_permission
from api.intent_schemas import ConfirmIntent, FundTomorrow, GrowRequest, IntentView, TextIntent, TextIntentAnswer
from api.problems import ApiProblem, problem_responses
from api.schemas import ID_PATTERN
from manager import data_roots, intents
from manager.intent_grammar import GrammarError, parse
from manager.settings import Settings
from manager.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/api/assistant/intents", tags=["assistant"])

INTENT_ID = PathParam(pattern=ID_PATTERN, description="The intent's id (`int-...`).", examples=["int-0123456789ab"])
_TYPES = {404: "not-found", 409: "conflict", 422: "validation-error"}


def _problem(exc: intents.IntentError) -> ApiProblem:
    status = int(exc.status)
    errors = [{"field": exc.field or "body", "message": str(exc)}] if status == 422 else []
    return ApiProblem(status, str(exc), type_=_TYPES.get(status), errors=errors,
                      title="Request validation failed" if status == 422 else None)


def _actor(principal: Principal) -> str:
    return principal.name if ":" in principal.name else f"user:{principal.name}"


def _data(name: str | None, settings: Settings) -> str | None:
    """The data folder's real path (422 naming ``data`` when unusable); no server path is echoed."""
    if name is not None:
        try:
            return str(data_roots.resolve_data_folder(name))
        except data_roots.DataFolderError as exc:
            raise ApiProblem(422, f"data: {exc}", type_="validation-error", title="Request validation failed",
                             errors=[{"field": "data", "message": str(exc)}]) from None
    if settings.data_dir is not None and Path(settings.data_dir).is_dir():
        return str(settings.data_dir)
    return None


def _draft(store: Store, inp: intents.GrowInput, principal: Principal) -> dict:
    try:
        return intents.draft_grow(store, inp, actor=_actor(principal))
    except intents.IntentError as exc:
        raise _problem(exc) from None


@router.post("/grow", status_code=201, response_model=IntentView,
             summary="Draft a 'grow $X over N days' plan (role ops or admin)",
             responses=problem_responses(400, 401, 403, 422, 503))
def grow(body: GrowRequest, store: Store = Depends(get_store), settings: Settings = Depends(get_settings_dep),
         principal: Principal = Depends(require_permission("launch"))):
    """Check the prerequisites (data covers the period, store, broker, kill switch: each pass/fail),
    compute the feasibility from the stored cohort days of this market (bootstrap probability of
    reaching the target, expected path with its 5-95 % band, VaR/CVaR at the plan's tier) and store
    the intent: `draft` with a `confirm` step, or `refused` / `blocked` with the reason. Nothing runs
    until `POST .../{intent_id}/confirm`."""
    target = body.target
    inp = intents.GrowInput(bankroll=body.bankroll, days=body.days,
                            target_amount=target.amount if target else None,
                            target_return=target.return_ if target else None,
                            risk_appetite=body.risk_appetite, data=_data(body.data, settings), symbols=body.symbols,
                            start=body.start.isoformat() if body.start else None, agents=body.agents,
                            generations=body.generations)
    return JSONResponse(_draft(store, inp, principal), status_code=201)


@router.post("/{intent_id}/confirm", status_code=202, response_model=IntentView,
             summary="Confirm a drafted plan and start it (role ops or admin)",
             responses=problem_responses(400, 401, 403, 404, 409, 422, 503))
def confirm(body: ConfirmIntent, intent_id: str = INTENT_ID, store: Store = Depends(get_store),
            principal: Principal = Depends(require_permission("launch"))):
    """Start the plan's days as a Celery chain, one day per task (without a broker: in this
    process). 409: not a draft (refused, blocked, already running) or a stale token."""
    try:
        return JSONResponse(intents.confirm_grow(store, intent_id, body.confirm_token, actor=_actor(principal)),
                            status_code=202)
    except intents.IntentError as exc:
        raise _problem(exc) from None


@router.get("/fund-tomorrow", response_model=FundTomorrow, summary="What should I fund tomorrow?",
            responses=problem_responses(503))
def fund_tomorrow(store: Store = Depends(get_store)):
    """Agents ranked on point-in-time evidence (holdout, DSR, PBO, percentile vs random cohorts,
    policy tier), recommended bankroll adjustments within the policy, pending approvals, blockers
    and a narrative; each answer is logged to the knowledge base."""
    return JSONResponse(intents.fund_tomorrow(store))


@router.get("/{intent_id}", response_model=IntentView, summary="An intent: its plan and progress",
            responses=problem_responses(404, 422))
def get_intent(intent_id: str = INTENT_ID, store: Store = Depends(get_store)):
    """The intent with its daily plan, the actual-against-plan reports so far and `progress`."""
    try:
        return JSONResponse(intents.get_intent(store, intent_id))
    except intents.IntentError as exc:
        raise _problem(exc) from None


@router.post("", response_model=TextIntentAnswer, summary="Ask in words (role ops or admin)",
             responses=problem_responses(400, 401, 403, 422, 503))
def ask(body: TextIntent, store: Store = Depends(get_store), settings: Settings = Depends(get_settings_dep),
        principal: Principal = Depends(require_permission("launch"))):
    """Parse the text with the assistant's grammar and run the intent: a grow phrase drafts a plan
    (as `POST .../grow`; nothing runs before its confirmation), a fund-tomorrow phrase answers it.
    422 for text the grammar does not know, listing the supported phrasings."""
    try:
        parsed = parse(body.text)
    except GrammarError as exc:
        raise ApiProblem(422, str(exc), type_="validation-error", title="Request validation failed",
                         errors=[{"field": "text", "message": f"supported: {p}"} for p in exc.supported]) from None
    if parsed.intent == "fund_tomorrow":
        result = intents.fund_tomorrow(store, actor=_actor(principal))
        return JSONResponse({"parsed": parsed.to_dict(), "would": "answer 'what should I fund tomorrow?' from the "
                             "stored evidence and log the answer to the knowledge base", "result": result})
    p = parsed.params
    inp = intents.GrowInput(bankroll=p["bankroll"], days=p["days"], target_amount=p["target_amount"],
                            target_return=p["target_return"], risk_appetite=p["risk_appetite"] or "medium",
                            data=_data(body.data, settings), symbols=body.symbols)
    result = _draft(store, inp, principal)
    would = (f"draft a plan to grow {p['bankroll']:,.2f} over {p['days']} day(s); it is {result['status']}"
             + ("; nothing runs until POST " + result["confirm"]["path"] if result.get("confirm") else ""))
    return JSONResponse({"parsed": parsed.to_dict(), "would": would, "result": result})
