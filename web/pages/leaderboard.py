"""The cohort leaderboard: server-side sorting, rows formatted once in Python, and
``GET /trading/cohorts/{run_id}/leaderboard?sort=KEY&order=asc|desc`` (the table
partial HTMX swaps in when a column header is clicked).

Columns are :data:`manager.report.LEADERBOARD_COLUMNS`; the first click on a column
sorts it best-first (its ``ascending`` flag), the next click flips the order.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from manager import display
from manager.report import LEADERBOARD_COLUMNS
from manager.store import Store
from web.errors import PageError, html_router
from web.formatting import finite, money, num, pct, plain, sign
from web.pages import detail_or_none, store
from web.templating import render

__all__ = ["LeaderboardRow", "cohort_leaderboard", "leaderboard_context", "leaderboard_row", "router",
           "sorted_leaderboard"]

_ASCENDING = {c.key for c in LEADERBOARD_COLUMNS if c.ascending}
_SORT_KEYS = {c.key for c in LEADERBOARD_COLUMNS}
_TEXT_KEYS = {c.key for c in LEADERBOARD_COLUMNS if not c.numeric}

router = html_router()


def sorted_leaderboard(agents: list[dict], sort: str | None, order: str | None) -> tuple[list[dict], str, str]:
    """The leaderboard rows sorted by ``sort`` in ``order``.

    Args:
        agents: leaderboard rows (the report's ``agents``).
        sort: a column key of :data:`~manager.report.LEADERBOARD_COLUMNS`; anything else sorts by ``rank``.
        order: ``asc`` or ``desc``; anything else is the column's best-first order.

    Returns:
        ``(rows, key, order)``: the sorted rows (missing values last) and the sort used.
    """
    key = sort if sort in _SORT_KEYS else "rank"
    if order not in ("asc", "desc"):
        order = "asc" if key in _ASCENDING else "desc"

    def value(a: dict) -> Any:
        v = a.get(key)
        if key in _TEXT_KEYS:
            return str(v or "")
        f = finite(v)
        return f if f is not None else (-math.inf if order == "desc" else math.inf)  # missing values last

    return sorted(agents, key=value, reverse=order == "desc"), key, order


def leaderboard_context(run_id: str, agents: list[dict], sort: str | None, order: str | None,
                        window: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The context of ``partials/leaderboard.html``.

    Args:
        run_id: the cohort (for the row and sort links).
        agents, sort, order: see :func:`sorted_leaderboard`.
        window: the report's window; it words how Sharpe and Sortino were annualised
            (``annualised``: see :func:`manager.display.annualisation`).

    Returns:
        ``{"leaderboard": [LeaderboardRow], "sort", "order", "columns", "sort_url",
        "sort_page_url", "annualised"}``; ``sort_url(key)`` is the partial's URL that
        sorts by ``key`` (flipping the order of the sorted column), ``sort_page_url(key)``
        the same sort as a whole page (without JavaScript).
    """
    rows, key, order = sorted_leaderboard(agents, sort, order)

    def sort_url(column: str) -> str:
        if column == key:
            new_order = "desc" if order == "asc" else "asc"
        else:
            new_order = "asc" if column in _ASCENDING else "desc"
        return f"/trading/cohorts/{run_id}/leaderboard?" + urlencode({"sort": column, "order": new_order})

    def sort_page_url(column: str) -> str:
        return sort_url(column).replace("/leaderboard?", "?", 1) + "#leaderboard"

    return {"leaderboard": [leaderboard_row(run_id, a) for a in rows], "sort": key, "order": order,
            "columns": LEADERBOARD_COLUMNS, "sort_url": sort_url, "sort_page_url": sort_page_url,
            "annualised": display.annualisation(window)}


class LeaderboardRow(NamedTuple):
    """One leaderboard row, formatted once in Python (a 200-agent table rendered cell by
    cell through Jinja filters took ~15 ms). ``attrs`` and ``numbers`` are markup."""

    agent_id: str
    href: str
    rank: str
    family: str
    failed: bool
    liquidated: bool
    attrs: Markup
    numbers: Markup


# The cells after rank, agent and family (which the template renders itself), by column key.
# money, pct and num only ever give digits, signs, "." "," "%" and "—", so only the
# pass-through values are escaped.
_CELLS: dict[str, Callable[[Any], str]] = {
    "allocated": lambda v: f'<td class="num">{money(v)}</td>',
    "final_equity": lambda v: f'<td class="num">{money(v)}</td>',
    "roi": lambda v: f'<td class="num {sign(v)}">{pct(v)}</td>',
    "sharpe": lambda v: f'<td class="num">{num(v)}</td>',
    "sortino": lambda v: f'<td class="num">{num(v)}</td>',
    "max_drawdown": lambda v: f'<td class="num">{pct(v)}</td>',
    "trades": lambda v: f'<td class="num">{escape(plain(v))}</td>',
    "win_rate": lambda v: f'<td class="num">{pct(v, 0)}</td>',
    "utilisation": lambda v: f'<td class="num">{pct(v)}</td>',
    "breaches": lambda v: f'<td class="num">{escape(plain(v))}</td>',
    "confidence": lambda v: f'<td class="num">{num(v)}</td>',
}
_LEADING = ("rank", "agent_id", "family")
_CELL_COLUMNS = tuple((c.key, _CELLS[c.key]) for c in LEADERBOARD_COLUMNS if c.key not in _LEADING)
if tuple(c.key for c in LEADERBOARD_COLUMNS[:len(_LEADING)]) != _LEADING:  # pragma: no cover - a broken edit
    raise RuntimeError(f"LEADERBOARD_COLUMNS must start with {_LEADING} (partials/leaderboard.html renders them)")


def leaderboard_row(run_id: str, a: Mapping[str, Any]) -> LeaderboardRow:
    """A leaderboard row of cohort ``run_id`` from the report's agent row ``a``: its link,
    flags (failed, liquidated) and the numeric cells after rank, agent and family, in
    :data:`~manager.report.LEADERBOARD_COLUMNS` order (text values escaped)."""
    get = a.get
    cells = [cell(get(key)) for key, cell in _CELL_COLUMNS]
    failed, liquidated = bool(get("failed")), bool(get("liquidated"))
    attrs = ' class="row-failed"' if failed else (' class="row-liquidated"' if liquidated else "")
    agent_id = str(get("agent_id") or "")
    return LeaderboardRow(agent_id=agent_id, href=f"/trading/cohorts/{run_id}/agents/{agent_id}",
                          rank=plain(get("rank")), family=plain(get("family")), failed=failed,
                          liquidated=liquidated, attrs=Markup(attrs), numbers=Markup("\n      ".join(cells)))


@router.get("/trading/cohorts/{run_id}/leaderboard", response_class=HTMLResponse)
def cohort_leaderboard(request: Request, run_id: str, sort: str | None = None, order: str | None = None,
                       db: Store = Depends(store)) -> HTMLResponse:
    """The leaderboard table partial sorted by ``sort`` (a column key) in ``order``.

    Raises:
        PageError: 404 for an unknown cohort.
    """
    detail = detail_or_none(db, run_id)
    if detail is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    summary = detail.get("summary") or {}
    agents = list(summary.get("agents") or [])
    context = {"run": detail["run"], **leaderboard_context(run_id, agents, sort, order, summary.get("window"))}
    return render(request, "partials/leaderboard.html", context)
