"""``GET /api/experiments/cohorts``: the stored cohorts, paged and filtered, as JSON or CSV."""
from __future__ import annotations

import csv
import io
from datetime import date as Date
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api import queries
from api.deps import get_store
from api.problems import problem_responses
from api.schemas import CohortPage
from manager.store import Store

router = APIRouter(prefix="/api/experiments", tags=["experiments"])


def rows_csv(items: list[dict]) -> str:
    """The rows as CSV (header :data:`api.queries.COHORT_ROW_FIELDS`; None as empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(queries.COHORT_ROW_FIELDS)
    for row in items:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in queries.COHORT_ROW_FIELDS])
    return buf.getvalue()


@router.get(
    "/cohorts", response_model=CohortPage, summary="List cohorts (JSON or CSV)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                     "description": "A page of cohorts, newest first (CSV with `format=csv`)."},
               **problem_responses(422, 501, 503)},
)
def list_cohorts(
    date: Date | None = Query(None, description="Only cohorts that traded this UTC day (YYYY-MM-DD)."),
    bankroll: float | None = Query(None, gt=0, allow_inf_nan=False,
                                   description="Only cohorts with this parent bankroll (quote currency)."),
    page: int = Query(1, ge=1, le=1_000_000, description="1-based page number."),
    page_size: int = Query(20, ge=1, le=200, description="Rows per page."),
    format: Literal["json", "csv"] = Query("json", description="`csv` answers the same rows as a CSV attachment."),
    store: Store = Depends(get_store),
):
    """Stored cohorts newest first, with their parent figures (ROI, final equity, drawdown,
    peak utilisation, breaches, failed agents). Money is in each row's `quote` currency."""
    result = queries.cohort_list(store, date=date, bankroll=bankroll, page=page, page_size=page_size)
    if format == "csv":
        name = f"cohorts-page{page}.csv"
        return Response(rows_csv(result["items"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "X-Total-Count": str(result["total"])})
    return result
