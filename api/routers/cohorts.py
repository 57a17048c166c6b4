"""Cohorts: ``GET /api/cohorts/{run_id}`` (+ agents, ledger) and ``POST /api/cohorts``."""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Path as PathParam, Query
from fastapi.responses import JSONResponse

from api.deps import get_settings_dep, get_store, require_permission
from api.problems import ApiProblem, problem_responses
from api.schemas import ID_PATTERN, AgentDetail, CohortDetail, CohortLaunch, JobAccepted, LedgerPage
from manager import data_roots, jobs, read_model
from manager.limits import LimitExceeded, check_cohort_size
from manager.runner import BarsRequest, CohortRequest
from manager.times import RunError
from manager.settings import Settings
from manager.store import RunNotFound, Store
from simulator.data import DATA_SUFFIXES, parse_symbol
from simulator.engine import EngineConfig

router = APIRouter(prefix="/api/cohorts", tags=["cohorts"])

RUN_ID = PathParam(..., pattern=ID_PATTERN, description="The cohort's run id.")


def _not_found_yet(run_id: str, exc: RunNotFound) -> RunNotFound:
    """A 404 that says when a job for the id is still queued or loading."""
    job = jobs.REGISTRY.get(run_id)
    if job is not None and job.state in ("queued", "running"):
        return RunNotFound(f"cohort {run_id} is not stored yet (job {job.state}, stage {job.stage}); "
                           f"poll /api/jobs/{run_id}")
    return exc


@router.get("/{run_id}", response_model=CohortDetail, summary="A cohort: report, curves and limits",
            responses=problem_responses(404, 422))
def cohort_detail(run_id: str = RUN_ID, store: Store = Depends(get_store)):
    """The run, its stored report (None until completed), the parent and agent equity
    curves, gross exposure (fraction of parent equity) and utilisation (fraction of
    allocated capital) per bar, downsampled to at most 2,000 bars, and the parent limits."""
    try:
        return JSONResponse(read_model.cohort_detail(store, run_id))
    except RunNotFound as exc:
        raise _not_found_yet(run_id, exc) from None


@router.get("/{run_id}/agents/{agent_id}", response_model=AgentDetail,
            summary="One agent: leaderboard row, trades, equity and prices", responses=problem_responses(404, 422))
def agent_detail(run_id: str = RUN_ID,
                 agent_id: str = PathParam(..., pattern=ID_PATTERN, description="Agent id, e.g. `a07`."),
                 store: Store = Depends(get_store)):
    """The agent's leaderboard row (with its genome), its round-trip trades, its equity
    curve and the OHLC bars of the symbols it traded over the run window."""
    try:
        return JSONResponse(read_model.agent_detail(store, run_id, agent_id))
    except RunNotFound as exc:
        raise _not_found_yet(run_id, exc) from None


@router.get("/{run_id}/ledger", response_model=LedgerPage, summary="A page of the cohort's ledger journal",
            responses=problem_responses(404, 422))
def ledger(run_id: str = RUN_ID, page: int = Query(1, ge=1, le=1_000_000),
           page_size: int = Query(50, ge=1, le=500), store: Store = Depends(get_store)):
    """Journal transactions in `seq` order; each posting's `amount`/`qty` is an exact
    decimal string and the postings of a transaction sum to zero."""
    try:
        return JSONResponse(read_model.ledger_page(store, run_id, page, page_size))
    except RunNotFound as exc:
        raise _not_found_yet(run_id, exc) from None


def _data_problem(field: str, message: str) -> ApiProblem:
    return ApiProblem(422, f"{field}: {message}", type_="validation-error", title="Request validation failed",
                      errors=[{"field": field, "message": message}])


def _preflight(body: CohortLaunch, settings: Settings) -> str | None:
    """The data folder to use; 422 naming the field when it or a symbol is unusable.

    ``data`` is a folder NAME under the data roots (:func:`manager.data_roots.resolve_data_folder`:
    it and its files must resolve, after symlinks, under a root); the messages name no server
    path and list no files. Without ``data``, the server's own default (``COHORTLAB_DATA_DIR``).
    """
    if body.data is not None:
        try:
            path = data_roots.resolve_data_folder(body.data)
        except data_roots.DataFolderError as exc:
            raise _data_problem("data", str(exc)) from None
    elif settings.data_dir is not None:
        path = Path(settings.data_dir)
        if not path.is_dir():
            raise ApiProblem(422, "COHORTLAB_DATA_DIR is not a folder on the API host",
                             type_="validation-error", title="Request validation failed",
                             errors=[{"field": "data", "message": "the server's default data folder is missing"}])
    else:
        return None  # ./data when it holds bars, else SYNTHETIC
    available = sorted({parse_symbol(p)[0] for p in path.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(DATA_SUFFIXES)})
    if not available:
        raise _data_problem("data", f"the data folder holds no bar files ({', '.join(DATA_SUFFIXES)})")
    unknown = [s for s in body.symbols or [] if s not in available]
    if unknown:
        raise _data_problem("symbols", f"unknown symbol(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return str(path)


def _check_size(req: CohortRequest, settings: Settings) -> None:
    """422 before queueing when the cohort's estimated size is above the limits
    (:func:`manager.limits.check_cohort_size`), its window is outside pandas'
    timestamp range or a SYNTHETIC symbol is unknown; the message gives the
    estimate and the limit (no server path)."""
    try:
        check_cohort_size(req.bars, req.agents, req.baselines, settings)
    except RunError as exc:
        message = str(exc)
        field = ("body" if isinstance(exc, LimitExceeded) else "symbols" if "symbol" in message
                 else "start" if "--start" in message else "end" if "--end" in message else "body")
        raise ApiProblem(422, f"{field}: {message}", type_="validation-error", title="Request validation failed",
                         errors=[{"field": field, "message": message}]) from None


def _check_seed_from(choice: str, store: Store) -> None:
    """``seed_from`` over HTTP: ``latest``, ``random`` or a stored run id (never a server file)."""
    if choice in ("latest", "random"):
        return
    try:
        store.get_run(choice)
    except RunNotFound:
        message = f"no stored run {choice!r}; allowed: latest, random, or the id of a stored run"
        raise ApiProblem(422, f"seed_from: {message}", type_="validation-error", title="Request validation failed",
                         errors=[{"field": "seed_from", "message": message}]) from None


@router.post("", status_code=202, response_model=JobAccepted, summary="Launch a cohort (role ops or admin)",
             dependencies=[Depends(require_permission("launch"))], responses=problem_responses(401, 403, 422, 503))
def launch_cohort(body: CohortLaunch, settings: Settings = Depends(get_settings_dep),
                  store: Store = Depends(get_store)):
    """Queue one intraday cohort. Needs the role `ops` or `admin` (action `launch`): a personal
    bearer token, the bootstrap `COHORTLAB_API_TOKEN`, or a signed-in dashboard session with its
    `X-CSRF-Token`. 401 without credentials, 403 for another role.

    With `COHORTLAB_BROKER_URL` set the cohort runs on a Celery worker; without, in a
    thread pool of this API process. Poll `status_url` until `state` is `completed` or
    `failed`; the cohort then appears in `GET /api/experiments/cohorts`."""
    data = _preflight(body, settings)
    _check_seed_from(body.seed_from, store)
    req = CohortRequest(
        bars=BarsRequest(data=data, symbols=body.symbols, start=body.start, end=body.end, quote=body.quote,
                         seed=body.seed),
        bankroll=body.bankroll, agents=body.agents, seed=body.seed, allocation=body.allocation,
        seed_from=body.seed_from, engine=EngineConfig(daily_hard_stop=body.daily_hard_stop), policy=body.policy)
    _check_size(req, settings)
    try:
        job = jobs.submit_cohort(req)
    except Exception as exc:  # noqa: BLE001 - the broker refused or is down
        jobs.log.error("could not queue a cohort", exc_info=exc)
        raise ApiProblem(503, "could not queue the cohort: the job broker is unavailable", type_="broker-unavailable")
    status_url = f"/api/jobs/{job.job_id}"
    return JSONResponse({"job_id": job.job_id, "run_id": job.run_id, "status_url": status_url,
                         "cohort_url": f"/trading/cohorts/{job.run_id}"},
                        status_code=202, headers={"Location": status_url})
