"""``/knowledge``: one history of what happened (issue 15).

``GET /knowledge``
    :func:`manager.knowledge.history`: intraday cohort runs, bankroll inputs (grow intents),
    Day-3 decisions (go/no-go and promotion requests), leverage adjustments (policy decisions
    that changed a tier), rollback incidents and the assistant's recommendations, newest first;
    each item links to its cohort, campaign (where a promotion is reviewed), deployment or plan
    page. Query: ``kind`` (a key of :data:`manager.knowledge.HISTORY_KINDS`, or several separated by
    commas: a query parameter is given once),
    ``start`` / ``end`` (``YYYY-MM-DD``, inclusive, on the day the item is about), ``market``
    (market key), ``page``. Bad values: the 400 page.
``GET /knowledge/export.csv``, ``GET /knowledge/export.pdf``
    Every item the filters match (up to 1000): CSV (:func:`manager.report.csv_chunks`, columns
    :data:`manager.knowledge.HISTORY_FIELDS`) or PDF (WeasyPrint, as the reports; 503 without it).
"""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from manager import knowledge
from manager.report import csv_chunks
from manager.reports import ReportsUnavailable
from manager.store import Store
from web.errors import PageError, html_router
from web.pages import store
from web.templating import render

__all__ = ["PAGE_SIZE", "knowledge_csv", "knowledge_page", "knowledge_pdf", "router"]

router = html_router()

PAGE_SIZE = 50
"""Items per page."""

EXPORT_MAX = 1000
"""Most items an export holds."""


def _filters(kind: list[str] | None, start: str | None, end: str | None, market: str | None) -> dict:
    return {"kinds": [k.strip() for k in (kind or "").split(",") if k.strip()], "start": (start or "").strip() or None,
            "end": (end or "").strip() or None, "market": (market or "").strip() or None}


def _history(db: Store, f: dict, limit: int, offset: int = 0) -> dict:
    try:
        return knowledge.history(db, kinds=f["kinds"] or None, start=f["start"], end=f["end"], market=f["market"],
                                 limit=limit, offset=offset)
    except ValueError as exc:
        raise PageError(400, "Bad request", str(exc)) from None


def _query(f: dict, **extra) -> str:
    pairs = [("kind", ",".join(f["kinds"]))] if f["kinds"] else []
    pairs += [(k, f[k]) for k in ("start", "end", "market") if f[k]]
    pairs += [(k, v) for k, v in extra.items() if v is not None]
    return urlencode(pairs)


@router.get("/knowledge", response_class=HTMLResponse)
def knowledge_page(request: Request, kind: str | None = None, start: str | None = None,
                   end: str | None = None, market: str | None = None, page: int = 1,
                   db: Store = Depends(store)) -> HTMLResponse:
    """The history, filtered and paged.

    Raises:
        PageError: 400 for an unknown kind, a bad day or page.
    """
    f = _filters(kind, start, end, market)
    if page < 1:
        raise PageError(400, "Bad request", f"page={page}; allowed: 1 or more")
    view = _history(db, f, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages = max(1, -(-view["total"] // PAGE_SIZE))
    q = _query(f)
    return render(request, "knowledge.html", {
        "nav": "knowledge", "view": view, "filters": f, "kinds": knowledge.HISTORY_KINDS, "page": page,
        "pages": pages, "csv_url": "/knowledge/export.csv" + (f"?{q}" if q else ""),
        "pdf_url": "/knowledge/export.pdf" + (f"?{q}" if q else ""),
        "page_url": lambda n: "/knowledge?" + _query(f, page=n)})


@router.get("/knowledge/export.csv")
def knowledge_csv(kind: str | None = None, start: str | None = None, end: str | None = None,
                  market: str | None = None, db: Store = Depends(store)) -> Response:
    """The filtered history as CSV (newest first)."""
    view = _history(db, _filters(kind, start, end, market), EXPORT_MAX)
    rows = knowledge.history_csv_rows(view["items"])
    return StreamingResponse(csv_chunks(rows, knowledge.HISTORY_FIELDS), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="knowledge.csv"'})


@router.get("/knowledge/export.pdf")
def knowledge_pdf(kind: str | None = None, start: str | None = None, end: str | None = None,
                  market: str | None = None, db: Store = Depends(store)) -> Response:
    """The filtered history as PDF (503 page without WeasyPrint)."""
    f = _filters(kind, start, end, market)
    view = _history(db, f, EXPORT_MAX)
    try:
        pdf = knowledge.history_pdf(view, f)
    except ReportsUnavailable as exc:
        raise PageError(503, "PDF export unavailable", f"{exc} The CSV export works without it.") from None
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="knowledge.pdf"'})
