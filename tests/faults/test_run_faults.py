"""Runs never stay stuck: retries that run out, duplicate deliveries, job state
from the store, and a broker that is down (real closed port, real API server)."""
from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from manager import jobs
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest, RunAlreadyFinished
from manager.store import new_run_id, open_store
from manager.tasks import cohort_request_to_dict, run_cohort_task
from tests.api.server import AUTH, TOKEN, ApiServer, free_port

REQ = CohortRequest(bars=BarsRequest(start="2024-01-01", end="2024-01-02"), agents=4, seed_from="random",
                    baselines=0)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.delenv("COHORTLAB_BROKER_URL", raising=False)
    return url


def _running_run(url: str) -> str:
    with open_store(url) as store:
        return store.create_run({"run_id": new_run_id(), "kind": "cohort", "config": {}, "genomes": [],
                                 "data_label": "test"})


def test_exhausted_retries_store_the_run_as_failed(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _running_run(store_url)
    calls = []

    def down(*args, **kwargs):
        calls.append(1)
        raise ConnectionError("redis went away")

    monkeypatch.setattr("manager.tasks.execute_cohort", down)
    # the last retry Celery allows (request.retries == max_retries): retry() re-raises the error
    result = run_cohort_task.apply(args=[run_id, cohort_request_to_dict(REQ)], throw=False,
                                   retries=run_cohort_task.max_retries)
    assert result.state == "FAILURE" and len(calls) == 1
    with open_store(store_url) as store:
        run = store.get_run(run_id)
    assert run["status"] == "failed"
    assert run["reason"] == "retries exhausted: ConnectionError: redis went away"


def test_a_permanent_error_escaping_the_task_fails_the_run(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _running_run(store_url)

    def boom(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr("manager.tasks.execute_cohort", boom)
    result = run_cohort_task.apply(args=[run_id, cohort_request_to_dict(REQ)], throw=False)
    assert result.state == "FAILURE"
    with open_store(store_url) as store:
        assert store.get_run(run_id)["reason"] == "KeyError: 'bug'"


def test_a_redelivery_of_a_finished_run_returns_the_stored_result(store_url: str) -> None:
    run_id = new_run_id()
    with open_store(store_url) as store:
        execute_cohort(REQ, store, run_id=run_id)
    brief = run_cohort_task.apply(args=[run_id, cohort_request_to_dict(REQ)]).get()
    assert brief["run_id"] == run_id and brief["status"] == "completed" and brief["reason"] is None


def test_a_duplicate_that_loses_the_race_returns_the_winner(store_url: str) -> None:
    """Two copies of one delivery simulate in parallel; the second to store finds
    the run completed: it gets RunAlreadyFinished (the task returns the stored
    result), never RunStateError, and never turns the completed run into failed."""
    run_id = new_run_id()
    with open_store(store_url) as a, open_store(store_url) as b:
        def on_stage(stage: str) -> None:
            if stage == "storing":  # copy B finishes first
                execute_cohort(REQ, b, run_id=run_id)

        with pytest.raises(RunAlreadyFinished) as caught:
            execute_cohort(REQ, a, run_id=run_id, on_stage=on_stage)
        assert caught.value.run["status"] == "completed"
        assert a.get_run(run_id)["status"] == "completed"


def test_job_state_comes_from_the_store_not_the_last_celery_result(store_url: str) -> None:
    run_id = _running_run(store_url)
    jobs.REGISTRY.add(jobs.Job(job_id=run_id, run_id=run_id, mode="celery"))
    with open_store(store_url) as store:
        store.fail_run(run_id, "RunError: the real reason")
        view = jobs.job_status(store, run_id)  # no backend is asked: the store already knows
    assert view["state"] == "failed" and view["error"] == "RunError: the real reason"


def test_post_cohorts_with_the_broker_down_answers_503_fast(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    with ApiServer(tmp_path, COHORTLAB_STORE=f"sqlite:///{tmp_path / 'api.db'}", COHORTLAB_API_TOKEN=TOKEN,
                   COHORTLAB_BROKER_URL=f"redis://127.0.0.1:{closed}/0") as srv:
        t0 = time.monotonic()
        r = httpx.post(srv.base + "/api/cohorts", json={"agents": 4}, headers=AUTH, timeout=30)
        took = time.monotonic() - t0
    assert r.status_code == 503, r.text
    assert took < 3.0, f"503 took {took:.1f} s"
