"""Reports: the cohort report and the daily report as CSV or PDF (issue 15).

``GET /api/reports/cohorts/{run_id}?format=csv|pdf``
    :func:`manager.reports.cohort_report_view` of one cohort run; 404 for an unknown run
    (or a run that is not a cohort).
``GET /api/reports/daily/{date}?format=csv|pdf``
    :func:`manager.reports.daily_report_view` of every cohort that traded the UTC day
    ``date`` (``YYYY-MM-DD``); 422 for a date that is not one.

CSV: one file, a ``section`` column per row (:data:`manager.reports.CSV_FIELDS`). PDF:
WeasyPrint (``cohortlab[reports]``); 503 when the server has no PDF renderer. Errors are
problem documents; data folders appear by name only (never a server path).
"""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from api.deps import get_store
from api.schemas import ID_PATTERN
from api.problems import ApiProblem, problem_responses
from manager import reports as R
from manager.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/api/reports", tags=["reports"])

FORMAT = Query("pdf", description="`csv` (one CSV, a `section` column per row) or `pdf`.")
RUN_ID = Path(..., pattern=ID_PATTERN, description="The cohort's run id.")


def _answer(view: dict, fmt: str, name: str) -> Response:
    if fmt == "csv":
        return StreamingResponse(R.report_csv_chunks(view), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    try:
        pdf = R.render_pdf(view)
    except R.ReportsUnavailable as exc:
        raise ApiProblem(503, str(exc).split(" (")[0], type_="reports-unavailable") from None
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'})


@router.get("/cohorts/{run_id}", summary="Cohort report (CSV or PDF)", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/pdf": {}},
                             "description": "The report file"}, **problem_responses(404, 422, 503)})
def cohort_report(run_id: str = RUN_ID, format: Literal["csv", "pdf"] = FORMAT,
                  store: Store = Depends(get_store)) -> Response:
    """One cohort run's report: hourly PnL breakdown of the parent (quote currency),
    leverage decisions with their rationale, bankroll figures, baselines, promotions with
    their checklist and signatures, rollback incidents, commentary, compliance notes."""
    return _answer(R.cohort_report_view(store, run_id), format, f"report-{run_id}")


@router.get("/daily/{date}", summary="Daily report (CSV or PDF)", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/pdf": {}},
                             "description": "The report file"}, **problem_responses(422, 503)})
def daily_report(date: str = Path(..., pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"},
                                  description="UTC day, YYYY-MM-DD", examples=["2018-01-15"]),
                 format: Literal["csv", "pdf"] = FORMAT, store: Store = Depends(get_store)) -> Response:
    """The report of every cohort that traded the UTC day ``date``, with that day's policy
    decisions, promotions, rollback incidents and kill-switch changes."""
    try:
        day = R.parse_day(date).isoformat()
    except R.ReportError as exc:
        raise ApiProblem(422, str(exc), type_="validation-error", title="Request validation failed",
                         errors=[{"field": "date", "message": str(exc)}]) from None
    return _answer(R.daily_report_view(store, day), format, f"report-daily-{day}")
