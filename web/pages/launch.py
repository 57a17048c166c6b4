"""``GET /trading/cohorts/new``: the guided launch form.

The form posts JSON to ``POST /api/cohorts`` from the browser (``web/static/cohortlab.js``)
with the bearer token the operator typed (never stored), shows refused fields next
to their inputs, then opens the cohort page with ``?job=<job_id>``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse

from manager import services
from manager.data_roots import data_roots, list_data_folders, public_label
from web.errors import html_router
from web.templating import render

__all__ = ["new_cohort_page", "router"]

log = logging.getLogger("cohortlab.web")

router = html_router()


@router.get("/trading/cohorts/new", response_class=HTMLResponse)
def new_cohort_page(request: Request) -> HTMLResponse:
    """The launch form. It lists the data folders under the data roots by name, with their
    symbols and first/last bar (:func:`manager.data_roots.list_data_folders`), and names the
    server's default (``COHORTLAB_DATA_DIR``) by its folder name -- never a server path."""
    data_dir, folders = None, []
    try:
        settings = services.current_settings()
        if settings.data_dir:
            data_dir = public_label(str(Path(settings.data_dir).resolve()), data_roots(settings))
        folders = list_data_folders(data_roots(settings))
    except Exception:  # noqa: BLE001 - bad settings or an unreadable root must not hide the form
        log.warning("settings or data folders could not be read for the launch form", exc_info=True)
    return render(request, "new.html", {"nav": "new", "data_dir": data_dir, "folders": folders})
