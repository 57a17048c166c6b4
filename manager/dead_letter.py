"""Dead letter for tasks that keep killing their worker.

A run task (``run_id`` first argument) is ``acks_late`` with ``reject_on_worker_lost``:
a worker process that dies mid-task (SIGKILL, the OOM killer, a segfault) leaves the
message to be delivered again. A task that *itself* kills its worker would loop for
ever. :func:`dead_letter` counts, per run id, the deliveries that started and never
returned -- a Redis counter on the broker's Redis (key ``cohortlab:deliveries:<run_id>``):
``INCR`` when a delivery starts, ``DECR`` when it returns in any way (result, error,
retry), so only deliveries whose process died stay counted. When a delivery starts and
the count exceeds ``COHORTLAB_MAX_DELIVERIES`` (default 3), the run is stored ``failed``
with the reason ``dead-letter: delivered N times without finishing (the task kills its
worker?)`` and the delivery returns the run's brief without running anything: the
message is acknowledged and never delivered again.

No broker, an eager call, or a broker that is not Redis: no counting. A Redis error
while counting never fails the task (the delivery runs uncounted).

Copies of the same task that run *at the same time* (a visibility timeout shorter
than the task) count too while they run. So a run still ``running`` under a live lease
(``lease_until`` in the future: its owner is alive, :mod:`manager.leases`) is never
dead-lettered: that delivery goes on as usual (the run's lease refuses it, and it is
retried); the run is dead-lettered by the first delivery after the lease expired.
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
from datetime import datetime, timezone
from typing import Any, Callable

from manager.settings import get_settings
from manager.store import RunNotFound, open_store

__all__ = ["KEY", "dead_letter", "dead_letter_reason", "delivery_counter", "fail_dead_letter"]

log = logging.getLogger("cohortlab.tasks")

#: the Redis key of a run's unfinished-delivery count
KEY = "cohortlab:deliveries:{run_id}"

_CLIENTS: dict[str, Any] = {}


def dead_letter_reason(deliveries: int) -> str:
    """The reason stored on a dead-lettered run."""
    return f"dead-letter: delivered {deliveries} times without finishing (the task kills its worker?)"


def delivery_counter():
    """The Redis client the counter lives on: the broker's Redis, else the result
    backend's, else ``COHORTLAB_REDIS_URL``'s; None when none of them is Redis."""
    s = get_settings()
    url = next((u for u in (s.broker_url, s.result_backend, s.redis_url)
                if u and u.startswith(("redis://", "rediss://", "unix://"))), None)
    if url is None:
        return None
    if url not in _CLIENTS:
        import redis

        timeout = float(os.environ.get("COHORTLAB_CONNECT_TIMEOUT_S", "1.0"))
        _CLIENTS[url] = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=max(timeout, 5.0))
    return _CLIENTS[url]


def _ttl(limit: int) -> int:
    # long enough to outlive every redelivery (each waits at most one visibility timeout)
    visibility = int(os.environ.get("COHORTLAB_VISIBILITY_TIMEOUT_S", "3600"))
    return max(86_400, visibility * (limit + 2))


def _lease_live(run: dict) -> bool:
    until = run.get("lease_until")
    if not until:
        return False
    try:
        deadline = datetime.fromisoformat(str(until))
    except ValueError:
        return False
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=timezone.utc)
    return deadline > datetime.now(timezone.utc)


def fail_dead_letter(run_id: str, deliveries: int) -> dict | None:
    """Store run ``run_id`` as ``failed`` with :func:`dead_letter_reason` (a run that
    does not exist yet -- the worker died before creating it -- is created failed);
    a run already ``completed`` or ``failed`` is left as it is.

    Returns:
        ``{"run_id", "status", "reason"}`` of the stored run; None (nothing changed)
        when the run is ``running`` under a live lease: a live worker executes it.
    """
    reason = dead_letter_reason(deliveries)
    with open_store() as store:
        try:
            run = store.get_run(run_id)
        except RunNotFound:
            store.create_run({"run_id": run_id, "kind": "cohort", "config": {}, "genomes": [],
                              "data_label": "dead-letter"})
            run = store.get_run(run_id)
        if run["status"] == "running":
            if _lease_live(run):
                return None
            store.fail_run(run_id, reason)
            run = store.get_run(run_id)
            log.error("run %s dead-lettered: %s", run_id, reason)
    return {"run_id": run_id, "status": run["status"], "reason": run.get("reason")}


def dead_letter(fun: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a bound run task (``fun(self, run_id, ...)``, under ``@app.task``) with
    the dead-letter counter described in the module docstring. The signature is kept,
    so Celery still checks the task's arguments."""

    @functools.wraps(fun)
    def guarded(self, run_id, *args, **kwargs):
        counter = None if self.request.is_eager else delivery_counter()
        key = KEY.format(run_id=run_id)
        if counter is not None:
            limit = get_settings().max_deliveries
            try:
                with counter.pipeline() as pipe:
                    started, _ = pipe.incr(key).expire(key, _ttl(limit)).execute()
            except Exception:  # noqa: BLE001 - bookkeeping never fails the task
                log.warning("dead-letter counter unavailable for run %s", run_id, exc_info=True)
                counter = None
            else:
                if started > limit:  # the earlier deliveries never returned: do not run it again
                    dead = fail_dead_letter(run_id, started - 1)
                    if dead is not None:
                        return dead
        try:
            return fun(self, run_id, *args, **kwargs)
        finally:
            if counter is not None:
                try:
                    if counter.decr(key) <= 0:
                        counter.delete(key)
                except Exception:  # noqa: BLE001
                    log.warning("could not decrement the dead-letter counter of run %s", run_id, exc_info=True)

    guarded.__signature__ = inspect.signature(fun)
    return guarded
