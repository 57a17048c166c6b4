"""The dashboard's pages, one module per page (each with its ``router``):

=====================  ===========================================================
module                 routes
=====================  ===========================================================
:mod:`.cohorts`        ``GET /trading/cohorts`` (list; the table partial for HTMX)
:mod:`.launch`         ``GET /trading/cohorts/new`` (the launch form)
:mod:`.cohort`         ``GET /trading/cohorts/{run_id}`` and ``.../progress``
:mod:`.leaderboard`    ``GET /trading/cohorts/{run_id}/leaderboard`` (sorted table partial)
:mod:`.agent`          ``GET /trading/cohorts/{run_id}/agents/{agent_id}``
:mod:`.campaigns`      ``GET /trading/campaigns``, ``.../{campaign_id}``, the Day-3 review modal and its POSTs
:mod:`.deployments`    ``GET /trading/deployments``, ``.../{deployment_id}``, its live partial and control POSTs
:mod:`.assistant`      ``GET/POST /trading/assistant/grow``, the confirm POST, the plan page, the toasts
:mod:`.knowledge`      ``GET /knowledge`` and its CSV / PDF exports
:mod:`.risk`           ``GET /risk/leverage`` and ``.../decisions`` (the audit-log partial)
=====================  ===========================================================

All data comes from the read model (:mod:`manager.read_model`) through the
process-wide store (:func:`store`); jobs from :mod:`manager.jobs`.
"""
from __future__ import annotations

from typing import Any

from manager import read_model, services
from manager.store import NotFound, Store

__all__ = ["detail_or_none", "store"]


def store() -> Store:
    """Dependency: the process-wide store (:func:`manager.services.shared_store`).

    Raises:
        StoreError: the store cannot be opened (the 503 page).
    """
    return services.shared_store()


def detail_or_none(db: Store, run_id: str) -> dict[str, Any] | None:
    """:func:`manager.read_model.cohort_detail` of ``run_id``, or None when there is no such
    cohort (or the id cannot be one)."""
    try:
        return read_model.cohort_detail(db, run_id)
    except NotFound:
        return None
    except ValueError:  # QueryError / InvalidDocument: a run id that cannot exist
        return None
