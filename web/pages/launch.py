"""``GET /trading/cohorts/new``: the guided launch form.

The form posts JSON to ``POST /api/cohorts`` from the browser (``web/static/cohortlab.js``)
with the bearer token the operator typed (never stored), shows refused fields next
to their inputs, then opens the cohort page with ``?job=<job_id>``.
"""
from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import HTMLResponse

from manager import services
from web.errors import html_router
from web.templating import render

__all__ = ["new_cohort_page", "router"]

log = logging.getLogger("cohortlab.web")

router = html_router()


@router.get("/trading/cohorts/new", response_class=HTMLResponse)
def new_cohort_page(request: Request) -> HTMLResponse:
    """The launch form; it names the server's default data folder (``COHORTLAB_DATA_DIR``) when set."""
    data_dir = None
    try:
        data_dir = services.current_settings().data_dir
    except Exception:  # noqa: BLE001 - bad settings must not hide the form
        log.warning("settings could not be read for the launch form", exc_info=True)
    return render(request, "new.html", {"nav": "new", "data_dir": data_dir})
