"""One cohort: ``GET /trading/cohorts/{run_id}`` and its progress partial.

``GET /trading/cohorts/{run_id}``
    Live progress while the run is queued or running, the failure reason when it
    failed, and once completed the bankroll badge, risk gauges, equity curves,
    utilisation / gross exposure against their ceilings and the sortable
    leaderboard (``sort``, ``order``: see :mod:`web.pages.leaderboard`). ``job``
    names the job of ``POST /api/cohorts`` (default: the run id), so a cohort that
    is queued or loading (not stored yet) has a page too.
    A cohort run of a campaign day >= 3 also gets the "Review Day-3 promotion" button (the
    modal of :mod:`web.pages.campaigns`).
``GET /trading/cohorts/{run_id}/progress?job=ID``
    The progress card, polled every second by the cohort page; answers
    ``HX-Refresh: true`` once the run completed or failed (the page reloads in full).

The facts about the run (traded day and window, bankroll and quote, data, where
the genomes came from) come from its header (:func:`manager.read_model.run_header`),
known from the moment the run is stored; the report adds the rest once completed.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from manager import jobs
from manager.data_roots import public_error
from manager.launch import STAGES as LAUNCH_STAGES
from manager.store import NotFound, Store
from web import figures
from web.errors import PageError, html_router
from web.formatting import finite
from web.pages import detail_or_none, store
from web.pages.campaigns import review_button
from web.pages.leaderboard import leaderboard_context
from web.templating import render

__all__ = ["STAGES", "cohort_page", "cohort_progress", "job_info", "progress_context", "router"]

log = logging.getLogger("cohortlab.web")

STAGES = ("queued", *LAUNCH_STAGES, "completed")
"""The steps the progress card shows: queued, :data:`manager.launch.STAGES`, completed."""

router = html_router()


def job_info(db: Store, job_id: str | None) -> dict[str, Any] | None:
    """``{"state", "stage", "error", "elapsed_s"}`` of a job of ``POST /api/cohorts``, or None.

    Read through :func:`manager.jobs.job_status` (this process's job registry, the
    Celery result backend, else the store); a job nobody knows, or a lookup that
    fails, gives None (the page then relies on the store alone).
    """
    if not job_id:
        return None
    try:
        info = jobs.job_status(db, job_id)
    except NotFound:
        return None
    except Exception:  # noqa: BLE001 - the stage is a nicety; the store says whether the run finished
        log.debug("job %s could not be read", job_id, exc_info=True)
        return None
    if not isinstance(info, Mapping):
        return None
    return {"state": str(info.get("state") or "").lower() or None, "stage": info.get("stage"),
            "error": public_error(info.get("error")), "elapsed_s": info.get("elapsed_s")}


def progress_context(run_id: str, detail: dict | None, job: dict | None, job_id: str | None) -> dict[str, Any]:
    """The context of ``partials/progress.html``.

    Args:
        run_id: the cohort.
        detail: its :func:`manager.read_model.cohort_detail`, None while not stored.
        job: its :func:`job_info`, or None.
        job_id: the ``job`` query parameter (kept in the polling URL).

    Returns:
        ``{"run", "job", "stages", "stage_index", "elapsed", "progress_url"}``:
        ``stage_index`` indexes :data:`STAGES`; ``elapsed`` is whole seconds (None
        when unknown).
    """
    run = dict(detail["run"]) if detail else {"run_id": run_id, "status": "queued"}
    if job and detail is None:  # not stored yet (queued, loading) or refused before it was stored
        run["status"] = {"failed": "failed", "running": "running"}.get(job.get("state") or "", "queued")
        run["reason"] = job.get("error")
    stage = (job or {}).get("stage")
    if run.get("status") == "completed":
        index = STAGES.index("completed")
    elif stage in STAGES:
        index = STAGES.index(stage)
    elif detail is not None:
        index = STAGES.index("simulating")  # the run document exists from the start of the simulation
    elif job and job.get("state") in ("running", "started", "progress"):
        index = STAGES.index("loading")
    else:
        index = 0
    elapsed = None
    created = run.get("created_at")
    if job and finite(job.get("elapsed_s")) is not None:
        elapsed = int(finite(job["elapsed_s"]) or 0)
    elif created:
        try:
            started = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            elapsed = max(0, int((datetime.now(timezone.utc) - started).total_seconds()))
        except ValueError:
            pass
    query = urlencode({"job": job_id}) if job_id else ""
    return {"run": run, "job": job, "stages": STAGES, "stage_index": index, "elapsed": elapsed,
            "progress_url": f"/trading/cohorts/{run_id}/progress" + (f"?{query}" if query else "")}


def _facts(detail: Mapping[str, Any]) -> dict[str, Any]:
    """What the page head shows about a stored run: from its header, and from the report
    once there (the window's timeframe, bars and symbols; the allocation)."""
    run, summary = detail["run"], detail.get("summary") or {}
    header = run.get("header") or {}
    window = summary.get("window")
    if not window and (header.get("window_start") or header.get("window_end")):
        window = {"start": header.get("window_start"), "end": header.get("window_end")}
    # the allocation policy is not part of the run header: the report's, else the request's
    allocation = summary.get("allocation") or (run.get("request") or {}).get("allocation")
    return {"header": header, "quote": header.get("quote") or "", "bankroll": header.get("bankroll"),
            "allocation": allocation, "window": window, "settings": summary.get("settings")}


def _run_and_job(db: Store, run_id: str, job: str | None) -> tuple[dict | None, dict | None]:
    """The stored cohort detail (None while not stored) and, unless it completed, its job's state.

    Raises:
        PageError: 404 when neither the store nor a job knows ``run_id``.
    """
    detail = detail_or_none(db, run_id)
    job_state = None if detail and detail["run"].get("status") == "completed" else job_info(db, job or run_id)
    if detail is None and job_state is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    return detail, job_state


@router.get("/trading/cohorts/{run_id}", response_class=HTMLResponse)
def cohort_page(request: Request, run_id: str, job: str | None = None, sort: str | None = None,
                order: str | None = None, db: Store = Depends(store)) -> HTMLResponse:
    """One cohort: live progress while it runs, everything once it completed.

    Raises:
        PageError: 404 when neither the store nor a job knows ``run_id``.
    """
    detail, job_state = _run_and_job(db, run_id, job)
    context: dict[str, Any] = {"nav": "cohorts", "charts": False, "limits": {}, "summary": None, "quote": "",
                               "bankroll": None, "allocation": None, "window": None, "settings": None,
                               "header": {}, "stored": detail is not None, "annualised": None,
                               "baselines": None}
    context.update(progress_context(run_id, detail, job_state, job))
    if detail is not None:
        summary = detail.get("summary")
        context.update(_facts(detail), summary=summary, limits=detail.get("limits") or {},
                       cycle=detail.get("cycle"))
        if detail["run"].get("status") == "completed" and summary:
            curves, limits, quote = detail.get("curves") or {}, context["limits"], context["quote"]
            context["charts"] = True
            context["figures"] = {
                "equity": figures.to_json(figures.equity_figure(curves, quote)),
                "exposure": figures.to_json(figures.exposure_figure(curves, limits)),
                "gauges": figures.to_json(figures.gauges_figure(summary.get("parent") or {}, limits)),
            }
            # against chance (manager.baselines): absent for runs without baselines
            baselines = summary.get("baselines")
            context["baselines"] = baselines or None
            if baselines:
                context["figures"]["baselines"] = figures.to_json(figures.baseline_figure(baselines))
            context.update(leaderboard_context(run_id, list(summary.get("agents") or []), sort, order,
                                               summary.get("window")))
    context["review"] = review_button(db, run_id) if detail is not None else None
    return render(request, "cohort.html", context)


@router.get("/trading/cohorts/{run_id}/progress", response_class=HTMLResponse)
def cohort_progress(request: Request, run_id: str, job: str | None = None,
                    db: Store = Depends(store)) -> HTMLResponse:
    """The progress card; ``HX-Refresh: true`` once the run completed or failed.

    Raises:
        PageError: 404 when neither the store nor a job knows ``run_id``.
    """
    detail, job_state = _run_and_job(db, run_id, job)
    context = progress_context(run_id, detail, job_state, job)
    if context["run"].get("status") == "completed":
        return HTMLResponse(f'<section id="progress" class="progress-card">Completed — '
                            f'<a href="/trading/cohorts/{escape(run_id)}">open the results</a>.</section>',
                            headers={"HX-Refresh": "true"})
    # a failure reloads the page too, so the header's badges say so
    headers = {"HX-Refresh": "true"} if context["run"].get("status") == "failed" else None
    return render(request, "partials/progress.html", context, headers=headers)
