"""Runs never stay stuck: leases and recovery.

- SIGKILL of a real API subprocess (in-process jobs) with jobs in flight and one
  queued: after a restart every one is a ``failed`` run with reason
  ``interrupted``, ``GET /api/jobs/{id}`` answers (no 404) and the dashboard's
  cohort page shows the reason.
- A live lease is never taken over, an expired one is (the runner's ``_start``).
- ``cohortlab runs recover`` by hand (fail, and ``--requeue``).
The lease contract of both adapters is in ``tests/manager/store/test_lease_contract.py``.
"""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from manager.cli import app as cli
from manager.launch import execute_cohort
from manager.leases import process_owner
from manager.recovery import INTERRUPTED, record_accepted_job, recover_runs
from manager.runner import BarsRequest, CohortRequest
from manager.store import RunLeased, new_run_id, open_store
from tests.api.server import AUTH, TOKEN, ApiServer
from tests.helpers import BINANCE

REQ = CohortRequest(bars=BarsRequest(start="2024-01-01", end="2024-01-02"), agents=4, seed_from="random",
                    baselines=0)


def _iso(delta_s: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta_s)).isoformat()


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.delenv("COHORTLAB_BROKER_URL", raising=False)
    return url


def _leased_run(url: str, owner: str, until: str, **config) -> str:
    with open_store(url) as store:
        return store.create_run({"run_id": new_run_id(), "kind": "cohort", "config": dict(config), "genomes": [],
                                 "data_label": "test", "owner": owner, "lease_until": until})


# ----------------------------------------------------------------- takeover


def test_a_live_lease_is_not_taken_over(store_url: str) -> None:
    run_id = _leased_run(store_url, "someone-alive", _iso(60))
    with open_store(store_url) as store:
        with pytest.raises(RunLeased, match="live lease"):
            execute_cohort(REQ, store, run_id=run_id)
        run = store.get_run(run_id)
    assert (run["status"], run["owner"]) == ("running", "someone-alive")  # untouched


def test_an_expired_lease_is_taken_over_and_the_run_completes(store_url: str) -> None:
    run_id = _leased_run(store_url, "someone-dead", _iso(-1))
    with open_store(store_url) as store:
        got, _, _ = execute_cohort(REQ, store, run_id=run_id)
        run = store.get_run(run_id)
    assert got == run_id and run["status"] == "completed" and run["owner"] == process_owner()


def test_a_live_lease_is_a_transient_error_of_the_task() -> None:
    from manager.tasks import TRANSIENT, fail_unfinished_run

    assert issubclass(RunLeased, TRANSIENT)
    assert fail_unfinished_run("x-1", RunLeased("live")) is False  # a live owner's run is never failed


def test_the_heartbeat_renews_the_lease_while_the_run_executes(store_url: str, monkeypatch) -> None:
    monkeypatch.setenv("COHORTLAB_RUN_LEASE_S", "0.3")
    from manager import runner

    seen = []
    real = runner.simulate_cohort

    def slow(*args, **kwargs):
        with open_store(store_url) as other:
            run = other.list_runs(limit=1)[0]
            first = run["lease_until"]
            time.sleep(0.6)  # two lease periods: only the heartbeat keeps it alive
            seen.append((first, other.get_run(run["run_id"])["lease_until"]))
            assert not other.claim_run(run["run_id"], "intruder", 1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "simulate_cohort", slow)
    with open_store(store_url) as store:
        execute_cohort(REQ, store)
    assert seen and seen[0][1] > seen[0][0]


# ----------------------------------------------------------------- runs recover


def test_recover_fails_expired_in_process_runs_only(store_url: str) -> None:
    dead = _leased_run(store_url, "dead", _iso(-1), launched_by="api")
    live = _leased_run(store_url, "alive", _iso(60), launched_by="api")
    worker = _leased_run(store_url, "dead-worker", _iso(-1), task_id="t")  # a Celery run: the broker redelivers it
    with open_store(store_url) as store:
        done = recover_runs(store)
        assert [(d.run_id, d.action) for d in done] == [(dead, "failed")]
        assert store.get_run(dead)["reason"] == INTERRUPTED
        assert store.get_run(live)["status"] == "running" and store.get_run(worker)["status"] == "running"
        assert recover_runs(store) == []  # nothing left


def test_runs_recover_cli_fails_and_requeues(store_url: str, monkeypatch) -> None:
    monkeypatch.setenv("COHORTLAB_RUN_LEASE_S", "0.2")
    with open_store(store_url) as store:
        failed = record_accepted_job(store, new_run_id(), REQ)
        requeued = record_accepted_job(store, new_run_id(), REQ)
    time.sleep(0.3)  # their "API process" never renews: the leases expire
    out = CliRunner().invoke(cli, ["runs", "recover", "--store", store_url])
    assert out.exit_code == 0, out.output
    assert f"{failed}: failed" in out.output and f"{requeued}: failed" in out.output
    with open_store(store_url) as store:
        assert store.get_run(failed)["reason"].startswith("interrupted")
        again = record_accepted_job(store, new_run_id(), REQ)
    time.sleep(0.3)
    out = CliRunner().invoke(cli, ["runs", "recover", "--requeue", "--store", store_url])
    assert out.exit_code == 0, out.output
    assert f"{again}: requeued (completed)" in out.output
    with open_store(store_url) as store:
        run = store.get_run(again)
    assert run["status"] == "completed" and run["header"]["agents"] == 4 and len(run["genomes"]) == 4


# ----------------------------------------------------------------- SIGKILL of the API


@pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")
def test_sigkill_of_the_api_leaves_no_stuck_or_vanished_job(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    env = {"COHORTLAB_STORE": url, "COHORTLAB_API_TOKEN": TOKEN, "COHORTLAB_RUN_LEASE_S": "1"}
    # long cohorts: two run on the executor's two threads, the third waits in its queue
    body = {"bankroll": 1000, "agents": 60, "data": BINANCE.name, "start": "2018-01-10T06:00",
            "end": "2018-01-30T04:00", "seed_from": "random"}
    server = ApiServer(tmp_path, **env)
    with server:
        with httpx.Client(base_url=server.base, timeout=10) as client:
            ids = []
            for seed in (1, 2, 3):
                r = client.post("/api/cohorts", json={**body, "seed": seed}, headers=AUTH)
                assert r.status_code == 202, r.text
                ids.append(r.json()["job_id"])
            deadline = time.time() + 60
            while time.time() < deadline:
                states = [client.get(f"/api/jobs/{i}").json()["stage"] for i in ids]
                if states.count("simulating") >= 1 and states[-1] == "queued":
                    break
                time.sleep(0.05)
            assert states[-1] == "queued", states
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
    with open_store(url) as store:  # recorded before the 202: nothing vanished, all stuck "running"
        assert {store.get_run(i)["status"] for i in ids} == {"running"}
    time.sleep(1.5)  # the dead process's leases run out
    with ApiServer(tmp_path, **env) as again, httpx.Client(base_url=again.base, timeout=10) as client:
        deadline = time.time() + 30
        while time.time() < deadline:
            jobs = [client.get(f"/api/jobs/{i}") for i in ids]
            if all(j.status_code == 200 and j.json()["state"] == "failed" for j in jobs):
                break
            time.sleep(0.1)
        for j in jobs:
            assert j.status_code == 200, j.text
            assert j.json()["state"] == "failed" and j.json()["error"].startswith("interrupted"), j.json()
        for i in ids:
            page = client.get(f"/trading/cohorts/{i}")
            assert page.status_code == 200 and "interrupted" in page.text, page.text[:500]
    with open_store(url) as store:
        assert {store.get_run(i)["reason"] for i in ids} == {INTERRUPTED}
