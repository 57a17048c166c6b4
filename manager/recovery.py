"""Runs never stay stuck: record in-process jobs when they are accepted, and
recover the runs whose owner died (the API's startup hook and ``cohortlab runs
recover``).

An in-process job (the API without a broker, :mod:`manager.jobs`) is recorded in
the store before the API answers 202: a ``running`` run with the request in its
config, no header yet (its bars are not loaded), ``launched_by = "api"`` and
this process's lease (:mod:`manager.leases`), which the process keeps renewing
while the job waits and runs. When the job starts, the run document is filled in
(:meth:`~manager.store.ports.runs.RunStore.refresh_run`).

If the process dies (SIGKILL, a crash, a restart), its in-process runs stay
``running`` with a lease that runs out. :func:`recover_runs` finds the ones whose
lease expired, claims each (atomically: two recovering processes never both act
on a run) and fails it with the reason ``interrupted: ...`` -- or re-queues it
(``requeue=True``): the same run id executes again, from its stored request.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable

from manager.leases import lease_fields, lease_s, process_owner
from manager.runner import BarsRequest, CohortRequest, _jsonable
from manager.store import RunStateError, Store, StoreError
from manager.store.documents import utc_now
from simulator.engine import EngineConfig

__all__ = ["INTERRUPTED", "Recovered", "record_accepted_job", "recover_runs", "request_from_config",
           "RecoverySweep"]

log = logging.getLogger("cohortlab.recovery")

INTERRUPTED = ("interrupted: the process that ran this in-process job stopped (killed, crashed or "
               "restarted) before it finished")
"""The reason of a run failed by recovery."""

IN_PROCESS = "api"
"""``config["launched_by"]`` of runs executed in-process by the API."""


def record_accepted_job(store: Store, run_id: str, req: CohortRequest, *, job_id: str | None = None) -> str:
    """Record an accepted in-process job as a ``running`` run owned by this process.

    Returns:
        The run id. Raises StoreError when the store cannot record it (the caller
        answers 503 and queues nothing).
    """
    return store.create_run({
        "run_id": run_id, "kind": "cohort", "header": None,
        "config": {"request": _jsonable(asdict(req)), "job_id": job_id or run_id, "launched_by": IN_PROCESS},
        "genomes": [], "data_label": req.bars.data or "SYNTHETIC",
        "queued_job": job_id or run_id, **lease_fields(),
    })


def request_from_config(config: dict) -> CohortRequest:
    """The :class:`CohortRequest` stored in a run's ``config["request"]``.

    Raises:
        ValueError, TypeError: no or a malformed stored request.
    """
    d = dict(config["request"])
    bars = BarsRequest(**d.pop("bars", {}))
    engine = EngineConfig(**d.pop("engine", {}))
    return CohortRequest(bars=bars, engine=engine, **d)


@dataclass
class Recovered:
    """What recovery did to one run: ``action`` is ``failed`` or ``requeued``
    (``skipped`` when it could not, with ``detail``)."""

    run_id: str
    action: str
    detail: str = ""


def _expired(run: dict, now: str) -> bool:
    until = run.get("lease_until")
    return until is None or until <= now


def _in_process_running(store: Store) -> list[dict]:
    runs: list[dict] = []
    before = None
    while True:
        page = store.list_runs(limit=200, before=before, status="running")
        runs += [r for r in page if (r.get("config") or {}).get("launched_by") == IN_PROCESS]
        if len(page) < 200:
            return runs
        before = page[-1]["run_id"]


def recover_runs(store: Store, *, requeue: bool = False,
                 submit: Callable[[str, CohortRequest], Any] | None = None) -> list[Recovered]:
    """Fail (reason :data:`INTERRUPTED`) or re-queue the in-process runs whose
    owner died: ``running``, ``launched_by = "api"``, lease expired (or none).

    Args:
        requeue: re-queue instead of failing: each run is claimed for this process
            and ``submit(run_id, request)`` executes it again under its run id (a
            run whose stored request cannot be read is failed instead).
        submit: how to re-queue (required with ``requeue``).

    Returns:
        One :class:`Recovered` per run acted on, oldest first. Runs with a live
        lease (a live process executes them) are left alone.
    """
    if requeue and submit is None:
        raise ValueError("requeue needs a submit function")
    owner, seconds = process_owner(), lease_s()
    done: list[Recovered] = []
    for run in reversed(_in_process_running(store)):
        run_id = run["run_id"]
        if not _expired(run, utc_now()):
            continue
        try:
            if not store.claim_run(run_id, owner, seconds):  # another recoverer, or it finished
                continue
            if requeue:
                try:
                    req = request_from_config(run.get("config") or {})
                except (KeyError, TypeError, ValueError) as exc:
                    store.fail_run(run_id, f"{INTERRUPTED}; its request could not be re-queued ({exc})")
                    done.append(Recovered(run_id, "failed", "stored request unreadable"))
                    continue
                submit(run_id, req)
                done.append(Recovered(run_id, "requeued"))
            else:
                store.fail_run(run_id, INTERRUPTED)
                done.append(Recovered(run_id, "failed"))
        except RunStateError:  # finished meanwhile
            continue
        except StoreError as exc:
            log.warning("could not recover run %s: %s", run_id, exc)
            done.append(Recovered(run_id, "skipped", str(exc)))
    return done


class RecoverySweep:
    """The API's recovery: :func:`recover_runs` when the server starts, then
    every lease period (a daemon thread), so runs of a process that died just
    before a restart -- their lease still live at startup -- are recovered once
    it runs out. Errors are logged, never raised: the server starts anyway.

    Args:
        open_store: returns the store to recover (the process-wide one).
        interval_s: seconds between sweeps (default: the lease period).
    """

    def __init__(self, open_store: Callable[[], Store], interval_s: float | None = None) -> None:
        self.open_store = open_store
        self.interval_s = interval_s or lease_s()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cohortlab-recovery", daemon=True)

    def sweep(self) -> list[Recovered]:
        try:
            done = recover_runs(self.open_store())
        except Exception:  # noqa: BLE001 - the store is down: next sweep
            log.warning("run recovery failed", exc_info=True)
            return []
        for item in done:
            log.warning("recovered run %s: %s %s", item.run_id, item.action, item.detail)
        return done

    def _loop(self) -> None:
        self.sweep()
        while not self._stop.wait(self.interval_s):
            self.sweep()

    def start(self) -> "RecoverySweep":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
