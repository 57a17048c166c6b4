"""The production Celery app with an instrumented deployment store, for the
deployment restart-safety test (``celery -A tests.faults.deployment_worker_app
worker``). Same tasks and settings; the worker-side
``SQLiteStore.update_deployment`` (the conditional save of a step) is wrapped
(before the pool forks) so that, in ``$DEPLOYMENT_TEST_DIR``:

* every save appends ``begin <expected_last_bar> <new_last_bar>`` to ``notes``
  before it writes and ``commit <expected_last_bar> <new_last_bar> <ok>`` after;
* a line ``before <bar>`` in ``hold`` makes the save whose expected last bar is
  ``<bar>`` note ``held-before <bar>`` and sleep (*before* writing: the step's
  work is computed, not saved), once; ``after <bar>`` likewise notes
  ``held-after <bar>`` and sleeps *after* the save committed (before the task
  returns and its message is acknowledged); each hold first notes
  ``task-<before|after> <bar> <task id>``. The test SIGKILLs the worker while
  it sleeps; the sleep only chooses where the kill lands, it changes nothing
  the step computes or saves.
"""
import os
import time
from pathlib import Path

import manager.tasks  # noqa: F401 - the tasks the worker runs
from manager.celery_app import app  # noqa: F401 - the app the worker runs
from manager.store import SQLiteStore

HOLD_S = 60.0  # far longer than the test waits before killing
_real_update = SQLiteStore.update_deployment


def _dir() -> Path:
    return Path(os.environ["DEPLOYMENT_TEST_DIR"])


def _note(line: str) -> None:
    with open(_dir() / "notes", "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _hold(where: str, bar: int) -> None:
    hold, notes = _dir() / "hold", _dir() / "notes"
    if not hold.exists() or f"{where} {bar}" not in hold.read_text().splitlines():
        return
    if notes.exists() and f"held-{where} {bar}" in notes.read_text().splitlines():
        return  # once: the redelivered tick goes through
    from celery import current_task

    _note(f"task-{where} {bar} {current_task.request.id if current_task else '?'}")
    _note(f"held-{where} {bar}")
    time.sleep(HOLD_S)


def _update_deployment(self, deployment_id, expected_last_bar, changes, *, expected_status=None):
    new_last = changes.get("last_bar", expected_last_bar)
    _note(f"begin {expected_last_bar} {new_last}")
    _hold("before", int(expected_last_bar))
    ok = _real_update(self, deployment_id, expected_last_bar, changes, expected_status=expected_status)
    _note(f"commit {expected_last_bar} {new_last} {int(bool(ok))}")
    if ok:
        _hold("after", int(expected_last_bar))
    return ok


SQLiteStore.update_deployment = _update_deployment
