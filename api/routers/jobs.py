"""``GET /api/jobs/{job_id}``: the state of a cohort job."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.deps import get_store
from api.problems import problem_responses
from api.schemas import ID_PATTERN, JobStatus
from manager import jobs
from manager.data_roots import public_error
from manager.store import Store

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobStatus, summary="State of a cohort job",
            responses=problem_responses(404, 422))
def job_status(job_id: str = Path(..., pattern=ID_PATTERN, description="The job id (= run id)."),
               store: Store = Depends(get_store)):
    """`state`: queued, running, completed or failed; `stage`: the step (queued, loading,
    simulating, storing, completed, failed). Read from this process's job registry, the
    Celery result backend (with a broker) or, for runs it does not know, the store. `error`
    names the file (relative to its data root) and the row, never cell contents or server paths."""
    view = dict(jobs.job_status(store, job_id))
    view["error"] = public_error(view.get("error"))
    return view
