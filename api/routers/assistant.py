"""The assistant's read-only views: recent cohort status and bankroll use."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from api.deps import get_store
from api.problems import problem_responses
from api.schemas import BankrollSummary, StatusRecent
from manager import read_model
from manager.store import Store

router = APIRouter(prefix="/api/assistant/cohorts", tags=["assistant"])


@router.get("/status", response_model=StatusRecent, summary="Recent cohorts and their status",
            responses=problem_responses(422))
def status(limit: int = Query(10, ge=1, le=100, description="How many recent cohorts."),
           store: Store = Depends(get_store)):
    """The most recent cohort runs (running, completed or failed), newest first, with
    parent ROI, final equity and drawdown once completed, and counts by status."""
    return read_model.status_recent(store, limit)


@router.get("/bankroll-summary", response_model=BankrollSummary, summary="Bankroll use of recent cohorts",
            responses=problem_responses(422))
def bankroll_summary(days: int = Query(7, ge=1, le=90, description="Look-back in days (by creation time)."),
                     store: Store = Depends(get_store)):
    """Per completed cohort of the last `days` days: bankroll, quote, peak utilisation,
    mean gross exposure, unallocated cash, final equity, ROI and PnL; totals per quote
    currency."""
    return read_model.bankroll_summary(store, days)
