"""``GET /risk/leverage``: the leverage policy at a glance, and its audit log.

The page shows :func:`manager.policy.leverage_panel`: the tier in force per subject
(with the next planned tier, the step-down and their triggers), the bankroll at risk
of the latest completed cohort (VaR/CVaR, stress scenarios), its daily hard stops, the
kill switch and its history, and a chart of the tiers over time
(:func:`web.figures.tier_figure`). Below, the policy decisions
(:func:`manager.policy.tier_history`), newest first, each row expandable to its
rationale; ``GET /risk/leverage/decisions`` answers that table alone for HTMX paging.

Query: ``market`` (one market key), ``subject`` and ``trigger`` (audit-log filters),
``page`` (1-based, audit log). Bad values are explained on the page.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from manager import policy
from manager.store import InvalidDocument, Store
from web import figures
from web.errors import html_router
from web.pages import store
from web.templating import is_partial, render

__all__ = ["DECISIONS_PER_PAGE", "decisions_context", "leverage_page", "router"]

DECISIONS_PER_PAGE = 10
"""Rows of the audit log per page."""

router = html_router()


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def decisions_context(db: Store, market: str | None, subject: str | None, trigger: str | None,
                      page: str | None) -> dict[str, Any]:
    """The context of ``partials/risk_decisions.html``: one page of decisions and the links
    to the others (``decisions``, ``total``, ``page``, ``pages``, ``decisions_error``,
    ``decision_url``, ``decision_page_url``)."""
    error = None
    try:
        n = int(page) if page and page.strip() else 1
    except ValueError:
        n = 0
    if n < 1:
        error, n = f"page {page!r} must be a whole number from 1", 1
    filters = {"market": market, "subject": subject, "trigger": trigger}
    rows: list[dict] = []
    total = 0
    try:
        rows, total = policy.tier_history(db, **filters, limit=DECISIONS_PER_PAGE,
                                          offset=(n - 1) * DECISIONS_PER_PAGE)
    except InvalidDocument as exc:
        error = str(exc)
    pages = -(-total // DECISIONS_PER_PAGE)
    query = {k: v for k, v in filters.items() if v}

    def url(path: str, number: int) -> str:
        return path + "?" + urlencode({**query, **({"page": number} if number > 1 else {})})

    return {"decisions": rows, "total": total, "page": n, "pages": pages, "decisions_error": error,
            "filters": filters, "filtered": bool(query),
            "decision_page_url": lambda k: url("/risk/leverage/decisions", k),
            "decision_full_url": lambda k: url("/risk/leverage", k),
            "csv_url": "/api/risk/decisions?" + urlencode({"format": "csv", **query})}


@router.get("/risk/leverage", response_class=HTMLResponse)
def leverage_page(request: Request, market: str | None = None, subject: str | None = None,
                  trigger: str | None = None, page: str | None = None,
                  db: Store = Depends(store)) -> HTMLResponse:
    """The leverage page (full page; with ``HX-Request`` only the audit log)."""
    market, subject, trigger = _text(market), _text(subject), _text(trigger)
    context = decisions_context(db, market, subject, trigger, page)
    headers = {"Vary": "HX-Request"}
    if is_partial(request):
        return render(request, "partials/risk_decisions.html", context, headers=headers)
    error = None
    try:
        panel = policy.leverage_panel(db, market=market)
    except InvalidDocument as exc:
        error = str(exc)
        panel = policy.leverage_panel(db)
    paths = panel.get("tier_paths") or {}
    context.update(nav="risk", charts=bool(paths), panel=panel, panel_error=error, market=market,
                   figure=figures.to_json(figures.tier_figure(paths)) if paths else None)
    return render(request, "risk_leverage.html", context, headers=headers)


@router.get("/risk/leverage/decisions", response_class=HTMLResponse)
def leverage_decisions(request: Request, market: str | None = None, subject: str | None = None,
                       trigger: str | None = None, page: str | None = None,
                       db: Store = Depends(store)) -> HTMLResponse:
    """The audit log of policy decisions alone (the partial HTMX swaps when paging)."""
    context = decisions_context(db, _text(market), _text(subject), _text(trigger), page)
    return render(request, "partials/risk_decisions.html", context)
