"""The production Celery app with a faulty cohort runner, for the dead-letter tests
(``celery -A tests.faults.dead_letter_app worker``). Same tasks and settings; the
worker-side ``execute_cohort`` is wrapped (before the pool forks) so that:

* every delivery that reaches it appends a line ``<run_id>`` to
  ``$DEAD_LETTER_TEST_DIR/deliveries``, and to ``.../simulations`` when it holds the
  run and starts simulating (a duplicate refused by a live lease never gets there);
* a run id listed in ``$DEAD_LETTER_TEST_DIR/kill`` SIGKILLs its own worker process
  when it starts simulating (the run is already ``running`` in the store);
* a run id listed in ``$DEAD_LETTER_TEST_DIR/slow`` sleeps ``$DEAD_LETTER_SLOW_S``
  seconds before simulating (a task longer than the visibility timeout).
"""
import os
import signal
import time
from pathlib import Path

import manager.tasks as tasks
from manager.celery_app import app  # noqa: F401 - the app the worker runs

_real_execute_cohort = tasks.execute_cohort


def _listed(name: str, run_id: str) -> bool:
    f = Path(os.environ["DEAD_LETTER_TEST_DIR"]) / name
    return f.exists() and run_id in f.read_text().split()


def _note(name: str, run_id: str) -> None:
    with open(Path(os.environ["DEAD_LETTER_TEST_DIR"]) / name, "a") as f:
        f.write(f"{run_id}\n")


def _faulty_execute_cohort(req, store, *, run_id=None, on_stage=lambda stage: None, **kwargs):
    _note("deliveries", run_id)

    def stage(name: str) -> None:
        if name == "simulating":
            _note("simulations", run_id)
        if name == "simulating" and _listed("kill", run_id):
            os.kill(os.getpid(), signal.SIGKILL)
        if name == "simulating" and _listed("slow", run_id):
            time.sleep(float(os.environ.get("DEAD_LETTER_SLOW_S", "5")))
        on_stage(name)

    return _real_execute_cohort(req, store, run_id=run_id, on_stage=stage, **kwargs)


tasks.execute_cohort = _faulty_execute_cohort
