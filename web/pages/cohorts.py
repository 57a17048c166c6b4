"""``GET /trading/cohorts``: the cohort list.

Query: ``date`` (``YYYY-MM-DD``, traded UTC day), ``bankroll`` (quote currency),
``page`` (1-based), ``page_size`` (1-100, default 20). Bad values are explained on
the page (not an error page). With ``HX-Request`` (and no history restore) only
the table partial is returned. The CSV link exports every cohort the filters
match (``GET /api/experiments/cohorts?format=csv``), not only the page shown.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date as Date
from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from manager import read_model
from manager.store import Store
from web.errors import html_router
from web.formatting import finite
from web.pages import store
from web.templating import is_partial, render

__all__ = ["PAGE_SIZE", "cohorts_page", "parse_filters", "router"]

PAGE_SIZE = 20
"""Rows per page unless ``page_size`` says otherwise."""

router = html_router()


def parse_filters(date: str | None, bankroll: str | None, page: str | None,
                  page_size: str | None) -> tuple[dict[str, Any], str | None]:
    """The list's query strings as typed filters, and a message naming every bad one.

    Returns:
        ``({"date": "YYYY-MM-DD" | None, "bankroll": float | None, "bankroll_text": str,
        "page": int, "page_size": int}, message | None)``; a bad value keeps its default.
    """
    out: dict[str, Any] = {"date": None, "bankroll": None, "bankroll_text": (bankroll or "").strip(), "page": 1,
                           "page_size": PAGE_SIZE}
    errors = []
    if date and date.strip():
        try:
            out["date"] = Date.fromisoformat(date.strip()).isoformat()
        except ValueError:
            errors.append(f"date {date!r} is not a day (use YYYY-MM-DD)")
    if out["bankroll_text"]:
        v = finite(out["bankroll_text"].replace(",", ""))
        if v is None or v <= 0:
            errors.append(f"bankroll {bankroll!r} is not a positive amount")
        else:
            out["bankroll"] = v
    for key, raw, top in (("page", page, 10**9), ("page_size", page_size, 100)):
        if raw is None or not raw.strip():
            continue
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if not 1 <= n <= top:
            errors.append(f"{key} {raw!r} must be a whole number from 1 to {top}")
        else:
            out[key] = n
    return out, ("; ".join(errors) or None)


def _list_query(filters: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    q = {"date": filters.get("date"), "bankroll": filters.get("bankroll_text") if filters.get("bankroll") else None}
    if filters.get("page_size") and filters["page_size"] != PAGE_SIZE:
        q["page_size"] = filters["page_size"]
    q.update(extra)
    return {k: v for k, v in q.items() if v not in (None, "")}


@router.get("/trading/cohorts", response_class=HTMLResponse)
def cohorts_page(request: Request, date: str | None = None, bankroll: str | None = None, page: str | None = None,
                 page_size: str | None = None, db: Store = Depends(store)) -> HTMLResponse:
    """The cohort list (full page, or the table partial for an HTMX swap)."""
    filters, error = parse_filters(date, bankroll, page, page_size)
    empty = {"items": [], "total": 0, "page": 1, "page_size": filters["page_size"], "pages": 0, "next_page": None}
    result = empty
    if error is None:
        try:
            result = read_model.cohort_list(db, date=filters["date"], bankroll=filters["bankroll"],
                                            page=filters["page"], page_size=filters["page_size"])
        except ValueError as exc:  # QueryError
            error = str(exc)
    csv_query = {k: v for k, v in _list_query(filters).items() if k in ("date", "bankroll")}
    context = {
        "nav": "cohorts", "filters": filters, "result": result, "error": error,
        "filtered": bool(filters["date"] or filters["bankroll"] or error),
        # every cohort the filters match (the API streams them all), not only the page shown
        "csv_url": "/api/experiments/cohorts?" + urlencode({"format": "csv", **csv_query}),
        "page_url": lambda n: "/trading/cohorts?" + urlencode(_list_query(filters, page=n)),
    }
    headers = {"Vary": "HX-Request"}
    if is_partial(request):
        return render(request, "partials/cohort_table.html", context, headers=headers)
    return render(request, "cohorts.html", context, headers=headers)
