"""The operators' dashboard: every route of ``web``, assembled into one router.

Mounted by :func:`api.app.create_app` with ``app.include_router(web.routes.router)``.
Pages are Jinja2 templates (:mod:`web.templating`); HTMX swaps partials (the cohort
table, the leaderboard, the progress card); Plotly figures are built server-side
(:mod:`web.figures`) and drawn by plotly.js. All data comes from the read model
(:mod:`manager.read_model`) through the process-wide store
(:func:`manager.services.shared_store`); ``web`` never imports ``api``.

=============================  =====================================================
module                         routes (all ``text/html`` unless an asset)
=============================  =====================================================
:mod:`web.assets`              ``/static/vendor/plotly.min.js``, ``/static/vendor/htmx.min.js``,
                               ``/static/{name}``
:mod:`web.pages.cohorts`       ``GET /trading/cohorts``
:mod:`web.pages.launch`        ``GET /trading/cohorts/new``
:mod:`web.pages.cohort`        ``GET /trading/cohorts/{run_id}``, ``.../progress``
:mod:`web.pages.leaderboard`   ``GET /trading/cohorts/{run_id}/leaderboard``
:mod:`web.pages.agent`         ``GET /trading/cohorts/{run_id}/agents/{agent_id}``
:mod:`web.pages.campaigns`     ``GET /trading/campaigns``, ``.../{campaign_id}``, ``GET /trading/promotions/review``
                               (the Day-3 modal), ``POST /trading/promotions/propose``,
                               ``.../{promotion_id}/approve``, ``.../reject`` (CSRF-checked)
:mod:`web.pages.deployments`   ``GET /trading/deployments``, ``.../{deployment_id}``, ``.../live`` (polled partial),
                               ``POST .../{deployment_id}/rollback``, ``.../extend``, ``.../pause``, ``.../resume``
                               (CSRF-checked)
:mod:`web.pages.assistant`     ``GET /trading/assistant/grow`` (the "Grow $X over N days" form), ``POST`` it (the
                               feasibility partial), ``POST /trading/assistant/intents/{intent_id}/confirm``,
                               ``GET /trading/assistant/intents/{intent_id}`` (the plan page), ``.../live`` (polled
                               partial), ``GET /toasts`` (polled by every page), ``POST /toasts/dismiss``
                               (POSTs CSRF-checked)
:mod:`web.pages.knowledge`     ``GET /knowledge``, ``GET /knowledge/export.csv``, ``.../export.pdf``
:mod:`web.pages.risk`          ``GET /risk/leverage``, ``GET /risk/leverage/decisions`` (audit-log partial)
:mod:`web.pages.signin`        ``GET /signin``, ``POST /signin``, ``POST /signout`` (CSRF-checked)
this module                    ``GET /trading`` (-> the list), any other ``/trading/...`` (404)
=============================  =====================================================

Errors of these routes are HTML pages (:mod:`web.errors`: 404 unknown
cohort/agent/page, 400 bad query, 503 store unavailable, 500 otherwise; details
of 500s go to the log only).
"""
from __future__ import annotations

from fastapi.responses import HTMLResponse, Response

from web import assets
from web.errors import PageError, html_router
from web.pages import (agent, assistant, campaigns, cohort, cohorts, deployments, knowledge, launch, leaderboard, risk,
                       signin)

__all__ = ["router"]

router = html_router()
"""The dashboard's routes (``app.include_router(web.routes.router)``)."""

# order matters: /trading/cohorts/new before /trading/cohorts/{run_id}; the catch-all last
for _part in (assets, cohorts, launch, cohort, leaderboard, agent, campaigns, deployments, assistant, knowledge, risk,
              signin):
    router.include_router(_part.router)


@router.get("/trading", response_class=HTMLResponse)
def trading_root() -> Response:
    """``/trading`` -> the cohort list (307)."""
    return Response(status_code=307, headers={"Location": "/trading/cohorts"})


@router.get("/trading/{rest:path}", response_class=HTMLResponse)
def trading_not_found(rest: str) -> HTMLResponse:
    """Any other page under ``/trading``: the HTML 404 page.

    Raises:
        PageError: always (404).
    """
    raise PageError(404, "Page not found", f"There is no dashboard page /trading/{rest}.")
