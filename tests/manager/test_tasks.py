"""Celery against the real services on this machine: real worker subprocesses
on the local Redis (database 12, flushed before and after), a real beat, an
SQLite store shared by the workers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from manager.celery_app import DAILY_SCORING_ENTRY, INTRADAY_ENTRY, beat_schedule, make_app
from manager.runner import BarsRequest, CohortRequest
from manager.settings import Settings
from manager.store import new_run_id, open_store
from manager.tasks import cohort_request_to_dict
from simulator.ledger import verify_journal

from tests.helpers import ROOT  # noqa: E402
BINANCE = ROOT.parent / "shared" / "data" / "binance-5m"
REDIS = "redis://127.0.0.1:6379/12"
CELERY = str(Path(sys.executable).with_name("celery"))


def _redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")


@pytest.fixture
def env(tmp_path):
    queue = f"cohortlab-test-{uuid.uuid4().hex[:12]}"  # this test's own queue: no cross-talk with other runs
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    e = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
    e.update(COHORTLAB_BROKER_URL=REDIS, COHORTLAB_STORE=f"sqlite:///{tmp_path / 'runs.db'}", COHORTLAB_TASK_QUEUE=queue,
             COHORTLAB_METRICS_PORT="0", COHORTLAB_VISIBILITY_TIMEOUT_S="4", COHORTLAB_RESTORE_SWEEP_S="1",
             COHORTLAB_RUN_LEASE_S="2",  # a killed worker's run is taken over 2 s after its last heartbeat
             PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), PYTHONPATH=str(ROOT))
    yield e
    r = redis.Redis.from_url(REDIS)  # clean up after ourselves: our queue and our task results
    for key in r.scan_iter(f"*{queue}*"):
        r.delete(key)
    for tid in TASK_IDS:
        r.delete(f"celery-task-meta-{tid}")
    TASK_IDS.clear()


class Procs:
    """Worker/beat subprocesses, each in its own process group; all killed at the end."""

    def __init__(self, env, tmp_path):
        self.env, self.tmp, self.procs = env, tmp_path, []

    def worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        p = subprocess.Popen([CELERY, "-A", "manager.celery_app", "worker", "-n", f"{name}@%h", "-c", str(concurrency),
                              "-Q", self.env["COHORTLAB_TASK_QUEUE"],
                              "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
                             env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def beat(self) -> subprocess.Popen:
        log = open(self.tmp / "beat.log", "w")
        p = subprocess.Popen([CELERY, "-A", "tests.manager.celery_beat_test_app", "beat", "-s", str(self.tmp / "beat-schedule"),
                              "--loglevel=INFO"], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        return p

    @staticmethod
    def kill(p: subprocess.Popen) -> None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                self.kill(p)


@pytest.fixture
def procs(env, tmp_path):
    ps = Procs(env, tmp_path)
    yield ps
    ps.close()


@pytest.fixture
def client(env, monkeypatch):  # sends to this test's queue
    monkeypatch.setenv("COHORTLAB_TASK_QUEUE", env["COHORTLAB_TASK_QUEUE"])
    return make_app(Settings(broker_url=REDIS, store=env["COHORTLAB_STORE"]))


TASK_IDS: list[str] = []


def send(client, name, args):
    res = client.send_task(name, args=args)
    TASK_IDS.append(res.id)
    return res


def _request(agents=6, start="2018-01-15", end=None) -> dict:
    return cohort_request_to_dict(CohortRequest(
        bars=BarsRequest(data=str(BINANCE), start=start, end=end), agents=agents, seed=7))


def _wait(cond, timeout: float, what: str, step: float = 0.05):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _status(store_url: str, run_id: str) -> str | None:
    with open_store(store_url) as st:
        try:
            return st.get_run(run_id)["status"]
        except Exception:
            return None


def _check_ledger(store_url: str, run_id: str) -> int:
    with open_store(store_url) as st:
        run = st.get_run(run_id)
        journal = st.get_ledger(run_id)
    assert run["status"] == "completed"
    assert len({t["txn_id"] for t in journal}) == len(journal) == run["summary"]["ledger"]["transactions"]
    assert verify_journal(journal, run["summary"]["final_state"]).ok
    return len(journal)


def test_worker_runs_a_cohort_end_to_end_into_the_store(env, procs, client):
    procs.worker("w1")
    rid = new_run_id()
    res = send(client, "cohortlab.run_cohort", [rid, _request()])
    out = res.get(timeout=120)
    assert out["run_id"] == rid and out["status"] == "completed"
    _check_ledger(env["COHORTLAB_STORE"], rid)
    # delivering the same task again changes nothing (idempotent by run id)
    again = send(client, "cohortlab.run_cohort", [rid, _request()]).get(timeout=60)
    assert again["status"] == "completed"
    with open_store(env["COHORTLAB_STORE"]) as st:
        assert [r["run_id"] for r in st.list_runs()] == [rid]
    # the worker's pool process wrote its metrics for the multiprocess collector
    assert any(Path(env["PROMETHEUS_MULTIPROC_DIR"]).iterdir())


def test_beat_emits_the_scheduled_tasks(env, procs):
    procs.beat()
    r = redis.Redis.from_url(REDIS)

    def names():
        return [json.loads(m)["headers"]["task"] for m in r.lrange(env["COHORTLAB_TASK_QUEUE"], 0, -1)]

    found = _wait(lambda: (lambda n: n if n.count("cohortlab.score_day") >= 2
                           and n.count("cohortlab.run_learning_cycle") >= 2 else None)(names()),
                  40, "beat to send both scheduled tasks twice", step=0.2)
    assert set(found) == {"cohortlab.score_day", "cohortlab.run_learning_cycle"}


def test_production_schedule():
    s = beat_schedule(Settings(intraday_every_hours=2.5, daily_scoring_minute=7))
    assert s[INTRADAY_ENTRY]["schedule"].total_seconds() == 2.5 * 3600
    assert s[INTRADAY_ENTRY]["kwargs"]["mode"] == "intraday"
    cron = s[DAILY_SCORING_ENTRY]["schedule"]
    assert cron.hour == {0} and cron.minute == {7}
    with pytest.raises(ValueError, match="between 2 and 4"):
        Settings(intraday_every_hours=6)


def test_killed_worker_is_replaced_and_the_run_completes_once(env, procs, client):
    w1 = procs.worker("w1")
    rid = new_run_id()
    # a long cohort: 60 agents on all 20 days of bars (a few seconds of work after the run is created)
    res = send(client, "cohortlab.run_cohort", [rid, _request(agents=60, start="2018-01-10T06:00",
                                                                       end="2018-01-30T04:00")])
    _wait(lambda: _status(env["COHORTLAB_STORE"], rid) == "running", 120, "the run to start")
    procs.kill(w1)  # mid-task: the message was not acknowledged
    assert _status(env["COHORTLAB_STORE"], rid) == "running"
    procs.worker("w2")
    out = res.get(timeout=180)
    assert out["status"] == "completed"
    # the killed worker never finished it; the replacement did
    assert "succeeded" not in (procs.tmp / "w1.log").read_text()
    _wait(lambda: f"'run_id': '{rid}'" in (procs.tmp / "w2.log").read_text(), 30,
          "the replacement worker to log the finished task")  # logged just after the result is stored
    with open_store(env["COHORTLAB_STORE"]) as st:
        assert [r["run_id"] for r in st.list_runs()] == [rid]
    _check_ledger(env["COHORTLAB_STORE"], rid)


def test_twenty_cohorts_on_two_workers_none_lost_none_doubled(env, procs, client):
    procs.worker("w1")
    procs.worker("w2")
    ids = [new_run_id() for _ in range(20)]
    results = [send(client, "cohortlab.run_cohort", [rid, _request(agents=4, start=f"2018-01-{11 + i % 15:02d}")])
               for i, rid in enumerate(ids)]
    outs = [r.get(timeout=300) for r in results]
    assert [o["status"] for o in outs] == ["completed"] * 20
    with open_store(env["COHORTLAB_STORE"]) as st:
        stored = [r["run_id"] for r in st.list_runs(limit=100)]
    assert sorted(stored) == sorted(ids)
    for rid in ids:
        _check_ledger(env["COHORTLAB_STORE"], rid)
