"""``GET /api/experiments/cohorts``: the stored cohorts, filtered, as JSON pages or one CSV of every row."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date as Date
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import get_store
from api.problems import ApiProblem, problem_responses
from api.schemas import CohortPage
from manager import read_model
from manager.report import csv_chunks as report_csv_chunks
from manager.store import Store

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def rows_csv(items: Iterable[dict]) -> str:
    """The rows as CSV (header :data:`manager.read_model.COHORT_ROW_FIELDS`; None as empty)."""
    return "".join(csv_chunks(items))


def csv_chunks(items: Iterable[dict], rows_per_chunk: int = 500) -> Iterator[str]:
    """The cohort rows as CSV chunks (:func:`manager.report.csv_chunks` with
    :data:`manager.read_model.COHORT_ROW_FIELDS`)."""
    return report_csv_chunks(items, read_model.COHORT_ROW_FIELDS, rows_per_chunk)


def _day(text: str | None) -> Date | None:
    """``YYYY-MM-DD`` as a date (the pattern is checked by FastAPI; this checks the calendar).

    Raises:
        ApiProblem: 422 naming ``date`` for a day that does not exist (``2018-02-30``).
    """
    if text is None:
        return None
    try:
        return Date.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not a calendar day (YYYY-MM-DD)"
        raise ApiProblem(422, f"date: {message}", type_="validation-error", title="Request validation failed",
                         errors=[{"field": "date", "message": message}]) from None


@router.get(
    "/cohorts", response_model=CohortPage, summary="List cohorts (JSON or CSV)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "A page of cohorts, newest first; with `format=csv` every matching "
                                    "cohort as CSV."},
               **problem_responses(422, 501, 503)},
)
def list_cohorts(
    date: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"},
                             description="Only cohorts that traded this UTC day (YYYY-MM-DD)."),
    bankroll: float | None = Query(None, gt=0, allow_inf_nan=False,
                                   description="Only cohorts with this parent bankroll (quote currency)."),
    page: int = Query(1, ge=1, le=1_000_000, description="1-based page number (JSON only)."),
    page_size: int = Query(20, ge=1, le=200, description="Rows per page (JSON only)."),
    format: Literal["json", "csv"] = Query("json", description="`csv` answers **every** cohort matching the "
                                           "filters (`page` and `page_size` do not apply) as a streamed CSV "
                                           "attachment; `X-Total-Count` is their number."),
    store: Store = Depends(get_store),
):
    """Stored cohorts newest first, with their parent figures (ROI, final equity, drawdown,
    peak utilisation, breaches, failed agents). Money is in each row's `quote` currency.

    JSON answers one page; CSV (`format=csv`) streams every matching row, read from the
    store page by page."""
    date = _day(date)
    if format == "csv":
        total, rows = read_model.cohort_export(store, date=date, bankroll=bankroll)
        parts = ["cohorts", *(f"{k}-{v}" for k, v in (("date", date), ("bankroll", bankroll)) if v is not None)]
        name = "-".join(str(p) for p in parts) + ".csv"
        return StreamingResponse(csv_chunks(rows), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "X-Total-Count": str(total)})
    return read_model.cohort_list(store, date=date, bankroll=bankroll, page=page, page_size=page_size)
