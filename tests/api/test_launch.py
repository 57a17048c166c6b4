"""``POST /api/cohorts`` and ``GET /api/jobs/{id}``: a cohort launched in the server's
thread pool and polled to the end, a job that fails, the bearer token, validation
problems naming the field, a broker that refuses the job, and (with the local Redis
up) a cohort run by a real Celery worker subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from manager.store import SQLiteStore, open_store
from tests.api.server import AUTH, TOKEN, ApiServer, assert_problem, wait_for_job
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

REDIS = "redis://127.0.0.1:6379/13"


def test_launch_a_cohort_and_poll_the_job(client, runs):
    body = {"bankroll": 250, "agents": 4, "allocation": "equal", "symbols": ["ETH_BTC", "LTC_BTC"],
            "start": "2018-01-17", "end": "2018-01-17T12:00", "seed": 3, "data": BINANCE.name}
    r = client.post("/api/cohorts", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    accepted = r.json()
    run_id = accepted["run_id"]
    assert accepted == {"job_id": run_id, "run_id": run_id, "status_url": f"/api/jobs/{run_id}",
                        "cohort_url": f"/trading/cohorts/{run_id}"}
    assert r.headers["location"] == accepted["status_url"]
    job, stages = wait_for_job(client, accepted["status_url"])
    assert job["state"] == "completed", job
    assert job["error"] is None and job["run_id"] == run_id and job["elapsed_s"] > 0
    assert stages[-1] == "completed"
    order = ["queued", "loading", "seeding", "simulating", "storing", "completed"]
    assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)  # never backwards
    detail = client.get(f"/api/cohorts/{run_id}").json()
    assert detail["run"]["status"] == "completed"
    assert detail["summary"]["bankroll"] == 250 and len(detail["summary"]["agents"]) == 4
    assert detail["summary"]["window"]["symbols"] == ["ETH_BTC", "LTC_BTC"]
    assert len(detail["curves"]["timestamps"]) == 144  # 12 h of 5-minute bars
    assert detail["run"]["request"]["allocation"] == "equal"
    assert detail["run"]["request"]["engine"]["daily_hard_stop"] == 0.05  # the product's default
    assert detail["summary"]["settings"]["daily_hard_stop"] == 0.05
    header = detail["run"]["header"]
    assert (header["day"], header["window_start"], header["window_end"]) == (
        "2018-01-17", "2018-01-17T00:00:00Z", "2018-01-17T12:00:00Z")
    assert (header["bankroll"], header["quote"], header["agents"]) == (250.0, "BTC", 4)
    if hasattr(SQLiteStore, "list_cohort_summaries"):
        listed = client.get("/api/experiments/cohorts", params={"date": "2018-01-17"}).json()
        assert [row["run_id"] for row in listed["items"]] == [run_id]
        assert listed["items"][0]["bankroll"] == 250 and listed["items"][0]["status"] == "completed"
    status = client.get("/api/assistant/cohorts/status").json()
    assert status["items"][0]["run_id"] == run_id


def test_a_job_that_fails_reports_why(client):
    # a window with no bars in the data: accepted (the bars are loaded by the job), then failed
    r = client.post("/api/cohorts", json={"bankroll": 100, "agents": 2, "data": BINANCE.name,
                                          "start": "2030-01-01"}, headers=AUTH)
    assert r.status_code == 202, r.text
    job, _ = wait_for_job(client, r.json()["status_url"])
    assert job["state"] == "failed" and job["stage"] == "failed"
    assert "2030" in job["error"] or "window" in job["error"], job


def test_launch_needs_the_bearer_token(client):
    before = client.get("/api/assistant/cohorts/status", params={"limit": 100}).json()["items"]
    body = assert_problem(client.post("/api/cohorts", json={"bankroll": 100}), 401)
    assert "bearer" in body["detail"].lower()
    assert client.post("/api/cohorts", json={"bankroll": 100}).headers["www-authenticate"].startswith("Bearer")
    assert_problem(client.post("/api/cohorts", json={"bankroll": 100},
                               headers={"Authorization": "Bearer wrong"}), 401)
    assert_problem(client.post("/api/cohorts", json={"bankroll": 100},
                               headers={"Authorization": f"Basic {TOKEN}"}), 401)
    after = client.get("/api/assistant/cohorts/status", params={"limit": 100}).json()["items"]
    assert after == before  # nothing was launched


def test_validation_problems_name_the_field(client):
    body = assert_problem(client.post("/api/cohorts", json={"bankroll": 10}, headers=AUTH), 422)
    assert body["type"].endswith("validation-error")
    assert body["errors"] == [{"field": "bankroll", "message": "Input should be greater than or equal to 50"}]
    assert "bankroll" in body["detail"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 200000, "agents": 0, "allocation": "greedy", "start": "yesterday", "colour": "red"}), 422)
    assert sorted(e["field"] for e in body["errors"]) == ["agents", "allocation", "bankroll", "colour", "start"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 100, "start": "2018-01-16", "end": "2018-01-15"}), 422)
    assert [e["field"] for e in body["errors"]] == ["end"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 100, "daily_hard_stop": 1.5, "policy": "maybe"}), 422)
    assert sorted(e["field"] for e in body["errors"]) == ["daily_hard_stop", "policy"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 100, "data": BINANCE.name, "symbols": ["ETH_BTC", "DOGE_BTC"]}), 422)
    assert [e["field"] for e in body["errors"]] == ["symbols"] and "DOGE_BTC" in body["detail"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100,
                                                                          "data": "/no/such/folder"}), 422)
    assert [e["field"] for e in body["errors"]] == ["data"]
    body = assert_problem(client.post("/api/cohorts", headers={**AUTH, "Content-Type": "application/json"},
                                      content=b"{not json"), 422)
    assert [e["field"] for e in body["errors"]] == ["body"]


def test_a_broker_that_refuses_the_job_is_a_503_problem(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from manager import jobs
    from manager.tasks import run_cohort_task

    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    monkeypatch.setattr(jobs, "celery_enabled", lambda: True)

    def refuse(*_, **__):
        raise ConnectionError("redis://:hunter2@broker:6379 refused")

    monkeypatch.setattr(run_cohort_task, "apply_async", refuse)
    client = TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1")
    r = client.post("/api/cohorts", json={"bankroll": 100, "agents": 2}, headers=AUTH)
    body = assert_problem(r, 503)
    assert "broker" in body["detail"] and "hunter2" not in r.text


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")
def test_launch_on_a_celery_worker(seeded, tmp_path):
    import redis

    _, url, _ = seeded
    queue = f"cohortlab-api-test-{uuid.uuid4().hex[:12]}"
    env = {"COHORTLAB_STORE": url, "COHORTLAB_API_TOKEN": TOKEN, "COHORTLAB_BROKER_URL": REDIS,
           "COHORTLAB_TASK_QUEUE": queue}
    with ApiServer(tmp_path, **env) as srv:
        worker_log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "manager.celery_app", "worker", "-n",
             f"{queue}@%h", "-c", "1", "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO"], env=srv.env, cwd=tmp_path, stdout=worker_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        run_id = None
        try:
            with httpx.Client(base_url=srv.base, timeout=30) as c:
                assert c.get("/readyz").json()["checks"]["broker"] == {"ok": True, "error": None}
                r = c.post("/api/cohorts", headers=AUTH, json={
                    "bankroll": 300, "agents": 3, "data": BINANCE.name, "symbols": ["ETH_BTC"],
                    "start": "2018-01-18", "end": "2018-01-18T06:00"})
                assert r.status_code == 202, r.text
                run_id = r.json()["run_id"]
                job, stages = wait_for_job(c, r.json()["status_url"], timeout=120)
                assert job["state"] == "completed", (job, (tmp_path / "worker.log").read_text()[-3000:])
                order = ["queued", "started", "loading", "seeding", "simulating", "storing", "completed"]
                assert stages[-1] == "completed" and set(stages) <= set(order), stages
                assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
                assert c.get(f"/api/cohorts/{run_id}").json()["run"]["status"] == "completed"
                with open_store(url) as store:
                    assert store.get_run(run_id)["config"]["task_id"] == run_id  # the job id is the task id
        finally:
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            worker.wait(timeout=10)
            r = redis.Redis.from_url(REDIS)
            for key in r.scan_iter(f"*{queue}*"):
                r.delete(key)
            if run_id:
                r.delete(f"celery-task-meta-{run_id}")
