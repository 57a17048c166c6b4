"""Cohort jobs (``POST /api/cohorts``, the dashboard's launch form): where they run and how their state is read.

Where a job runs:

* **Celery** — when a broker is configured (``COHORTLAB_BROKER_URL``, the Celery
  app is not eager): ``run_cohort_task.apply_async(args=[run_id, request],
  task_id=run_id)``. The job id *is* the run id and the Celery task id, so any
  API process can answer ``GET /api/jobs/{id}`` from the result backend
  (``AsyncResult``: ``PENDING`` -> queued, ``STARTED``/``PROGRESS``/``RETRY`` ->
  running with the worker's stage, ``SUCCESS``/``FAILURE`` -> completed/failed).
* **In process** — without a broker: one process-wide
  ``ThreadPoolExecutor`` (:data:`JOB_WORKERS` threads) in the API process runs
  :func:`manager.launch.execute_cohort`, the same path as the task and the CLI
  (load bars, seed agents, simulate, store). Jobs queue when all threads are
  busy. A job dies with its process: a run killed mid-way stays ``running`` in
  the store. Use a broker for anything that must survive a restart or scale
  past one machine.

Every job submitted by this process is kept in an in-memory registry
(:data:`REGISTRY`, the most recent :data:`MAX_JOBS`), which records the stages
of in-process jobs: ``queued``, then :data:`manager.launch.STAGES` (``loading ->
seeding -> simulating -> storing``), then ``completed | failed``. A job id the
registry does not know (another API process, a restart, a run started from the
CLI) is answered from the Celery result backend (when a broker is configured) and
from the store: ``running`` / ``completed`` / ``failed`` runs map to the same job
states.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from manager.launch import execute_cohort
from manager.runner import CohortRequest
from manager.services import current_settings
from manager.store import NotFound, RunNotFound, Store, StoreError, new_run_id, open_store

__all__ = ["JOB_WORKERS", "MAX_JOBS", "REGISTRY", "Job", "JobRegistry", "celery_enabled", "job_status",
           "submit_cohort"]

log = logging.getLogger("cohortlab.jobs")

JOB_WORKERS = 2
"""Threads of the in-process executor (cohorts run at most this many at once per API process)."""

MAX_JOBS = 1000
"""Jobs the registry remembers (oldest finished ones are forgotten first)."""

STATES = ("queued", "running", "completed", "failed")
"""The ``state`` of a job (its finer ``stage`` is in :func:`job_status`)."""


@dataclass
class Job:
    """One submitted cohort.

    Attributes:
        job_id: the job's id (equal to ``run_id``).
        run_id: the run the job writes to the store.
        mode: ``"thread"`` (in-process executor) or ``"celery"``.
        state: one of :data:`STATES`.
        stage: the finer step (``queued``, a :data:`manager.launch.STAGES` name, ``completed``, ``failed``).
        error: ``"<ExceptionClass>: <message>"`` once failed, else None.
        submitted, finished: Unix times (s); ``finished`` is None while the job runs.
    """

    job_id: str
    run_id: str
    mode: str  # "thread" | "celery"
    state: str = "queued"
    stage: str = "queued"
    error: str | None = None
    submitted: float = field(default_factory=time.time)
    finished: float | None = None

    def view(self) -> dict[str, Any]:
        """``{"job_id", "state", "stage", "run_id", "error", "elapsed_s"}`` (seconds since
        submission, until it finished; rounded to ms)."""
        end = self.finished if self.finished is not None else time.time()
        return {"job_id": self.job_id, "state": self.state, "stage": self.stage, "run_id": self.run_id,
                "error": self.error, "elapsed_s": round(max(end - self.submitted, 0.0), 3)}


class JobRegistry:
    """Thread-safe, bounded map job id -> :class:`Job`.

    Args:
        limit: most jobs remembered; past it the oldest finished job is forgotten
            (the oldest job of all when none has finished).
    """

    def __init__(self, limit: int = MAX_JOBS) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def add(self, job: Job) -> None:
        """Register ``job`` (replacing one with the same id), forgetting old jobs past the limit."""
        with self._lock:
            self._jobs[job.job_id] = job
            while len(self._jobs) > self.limit:
                done = next((k for k, j in self._jobs.items() if j.state in ("completed", "failed")), None)
                self._jobs.pop(done if done is not None else next(iter(self._jobs)))

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id``, or None when this registry does not know it."""
        with self._lock:
            return self._jobs.get(job_id)

    def update(self, job_id: str, **changes: Any) -> None:
        """Set attributes of the job ``job_id`` (no-op for an unknown id)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                for key, value in changes.items():
                    setattr(job, key, value)


REGISTRY = JobRegistry()
"""The jobs submitted by this process."""

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=JOB_WORKERS, thread_name_prefix="cohortlab-job")
        return _executor


def celery_enabled() -> bool:
    """True when cohorts go to Celery workers (a broker is configured and the Celery app is not eager)."""
    if not current_settings().broker_url:
        return False
    from manager.celery_app import app

    return not app.conf.task_always_eager


def submit_cohort(req: CohortRequest) -> Job:
    """Queue one cohort (Celery with a broker, else the in-process executor).

    Returns:
        The registered job (``job_id == run_id``).

    Raises:
        Whatever the broker client raises when it cannot publish (the caller
        answers 503); nothing is registered then.
    """
    run_id = new_run_id()
    if celery_enabled():
        from manager.tasks import cohort_request_to_dict, run_cohort_task

        # a short publish retry: an unreachable broker answers 503 within seconds, not minutes
        run_cohort_task.apply_async(args=[run_id, cohort_request_to_dict(req)], task_id=run_id, retry=True,
                                    retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                                  "interval_max": 1})
        job = Job(job_id=run_id, run_id=run_id, mode="celery")
        REGISTRY.add(job)
        return job
    # recorded before the 202: a queued job never vanishes, and a dead process's
    # runs are recovered (manager.recovery); a store that cannot record it -> 503
    from manager.recovery import record_accepted_job
    from manager.services import shared_store

    record_accepted_job(shared_store(), run_id, req)
    return requeue_job(run_id, req)


def requeue_job(run_id: str, req: CohortRequest) -> Job:
    """Queue run ``run_id`` on the in-process executor (its run is already
    recorded and leased by this process: a new job, or a recovered one)."""
    job = Job(job_id=run_id, run_id=run_id, mode="thread")
    REGISTRY.add(job)
    _start_lease_keeper()
    _pool().submit(_run_in_process, job.job_id, req)
    return job


_keeper: threading.Thread | None = None


def _keep_leases() -> None:
    """Renew this process's lease on every unfinished in-process job's run (also while
    it waits in the queue or loads its bars), every third of the lease."""
    from manager.leases import lease_s, process_owner
    from manager.services import shared_store

    while True:
        seconds = lease_s()
        time.sleep(seconds / 3)
        with REGISTRY._lock:
            pending = [j.run_id for j in REGISTRY._jobs.values()
                       if j.mode == "thread" and j.state in ("queued", "running")]
        for run_id in pending:
            try:
                shared_store().renew_lease(run_id, process_owner(), seconds)
            except StoreError:  # busy or down: the next beat tries again
                log.warning("could not renew the lease of job %s", run_id, exc_info=True)


def _start_lease_keeper() -> None:
    global _keeper
    with _executor_lock:
        if _keeper is None or not _keeper.is_alive():
            _keeper = threading.Thread(target=_keep_leases, name="cohortlab-job-leases", daemon=True)
            _keeper.start()


def _run_in_process(job_id: str, req: CohortRequest) -> None:
    """The body of an in-process job: :func:`manager.launch.execute_cohort` with the registry as stage sink."""
    REGISTRY.update(job_id, state="running", stage="loading")
    try:
        with open_store() as store:
            execute_cohort(req, store, run_id=job_id, on_stage=lambda stage: REGISTRY.update(job_id, stage=stage),
                           extra={"job_id": job_id, "launched_by": "api"})
        REGISTRY.update(job_id, state="completed", stage="completed", finished=time.time())
    except Exception as exc:  # noqa: BLE001 - the job's outcome, reported through /api/jobs
        if not isinstance(exc, (ValueError, StoreError, OSError)):
            log.exception("cohort job %s failed", job_id)
        from manager.data_roots import public_error  # HTTP readers need no token: no paths, no cell values

        log.info("cohort job %s failed: %s: %s", job_id, type(exc).__name__, exc)
        _fail_recorded_run(job_id, exc)
        REGISTRY.update(job_id, state="failed", stage="failed", error=public_error(f"{type(exc).__name__}: {exc}"),
                        finished=time.time())


def _fail_recorded_run(run_id: str, exc: BaseException) -> None:
    """Fail the run recorded at submission when the job failed before the run
    started (bad input found while loading): it must not stay ``running``."""
    from manager.services import shared_store

    try:
        store = shared_store()
        if store.get_run(run_id)["status"] == "running":
            store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
    except StoreError:  # gone, finished meanwhile, or the store is failing: the job has the error
        pass


# ----------------------------------------------------------------- reading a job's state


def _parse_iso(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _from_run(job_id: str, run: dict) -> dict[str, Any]:
    status = run["status"]
    start = _parse_iso(run.get("created_at"))
    end = _parse_iso(run.get("finished_at")) or time.time()
    return {"job_id": job_id, "state": status, "stage": status, "run_id": run["run_id"],
            "error": run.get("reason") if status == "failed" else None,
            "elapsed_s": round(max(end - start, 0.0), 3) if start else None}


def _from_celery(job_id: str, job: Job | None, store: Store) -> dict[str, Any] | None:
    from celery.result import AsyncResult

    from manager.celery_app import app

    res = AsyncResult(job_id, app=app)
    state, info = res.state, res.info
    base = job.view() if job else {"job_id": job_id, "run_id": job_id, "error": None, "elapsed_s": None}
    if state == "PENDING":  # also what Celery says about ids it never saw
        if job is None:
            return None
        return {**base, "state": "queued", "stage": "queued"}
    if state in ("STARTED", "RECEIVED"):
        return {**base, "state": "running", "stage": "started"}
    if state == "PROGRESS":
        stage = info.get("stage", "running") if isinstance(info, dict) else "running"
        return {**base, "state": "running", "stage": stage}
    if state == "RETRY":
        return {**base, "state": "running", "stage": "retrying", "error": f"{type(info).__name__}: {info}"}
    if state == "SUCCESS":
        result = info if isinstance(info, dict) else {}
        done = _elapsed_done(job, res, store, job_id)
        if result.get("status") == "failed":
            return {**base, "state": "failed", "stage": "failed", "error": result.get("reason"), **done}
        return {**base, "state": "completed", "stage": "completed", **done}
    if state in ("FAILURE", "REVOKED"):
        error = f"{type(info).__name__}: {info}" if isinstance(info, BaseException) else str(state).lower()
        try:
            reason = store.get_run(job_id).get("reason")
            error = reason or error
        except NotFound:
            pass
        return {**base, "state": "failed", "stage": "failed", "error": error,
                **_elapsed_done(job, res, store, job_id)}
    return {**base, "state": "running", "stage": state.lower()}


def _elapsed_done(job: Job | None, res: Any, store: Store, run_id: str) -> dict[str, Any]:
    """Submission to finish when this process submitted the job, else the run's own duration."""
    done = getattr(res, "date_done", None)
    if job is not None and isinstance(done, datetime):
        if done.tzinfo is None:
            done = done.replace(tzinfo=timezone.utc)
        return {"elapsed_s": round(max(done.timestamp() - job.submitted, 0.0), 3)}
    try:
        view = _from_run(run_id, store.get_run(run_id))
    except NotFound:
        return {}
    return {"elapsed_s": view["elapsed_s"]}


def _finished_run(store: Store, run_id: str) -> dict | None:
    """The stored run ``run_id`` when it is completed or failed, else None (also
    when the store cannot be read: the result backend answers then)."""
    try:
        run = store.get_run(run_id)
    except StoreError:
        return None
    return run if run.get("status") in ("completed", "failed") else None


def job_status(store: Store, job_id: str) -> dict[str, Any]:
    """``{"job_id", "state", "stage", "run_id", "error", "elapsed_s"}`` of a job.

    ``state`` is ``queued | running | completed | failed``; ``stage`` the finer
    step (``queued, loading, simulating, storing, completed, failed``; for Celery
    jobs also ``started`` / ``retrying``; ``running`` for a run known only from
    the store).

    Raises:
        NotFound: neither the registry, the result backend nor the store knows it.
    """
    job = REGISTRY.get(job_id)
    if job is not None and job.mode == "thread":
        return job.view()
    if job is not None or celery_enabled():
        # the store is the source of truth: a finished run wins over the last Celery result
        # (all deliveries of a task share task_id = run_id; a late duplicate may have failed)
        finished = _finished_run(store, job_id)
        if finished is not None:
            return _from_run(job_id, finished)
        try:
            view = _from_celery(job_id, job, store)
        except Exception:  # noqa: BLE001 - backend unreachable: what we know, else the store
            log.warning("result backend unavailable for job %s", job_id, exc_info=True)
            view = job.view() if job is not None else None
        if view is not None:
            return view
    try:
        return _from_run(job_id, store.get_run(job_id))
    except RunNotFound:
        raise NotFound(f"no job {job_id!r}") from None
