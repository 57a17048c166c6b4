"""Dead letter: a task that kills its own worker is delivered at most
COHORTLAB_MAX_DELIVERIES times, then its run is stored ``failed`` and the message is
acknowledged; and a visibility timeout shorter than the task runs the run once.

Real faults on real services: Celery worker subprocesses (``-A
tests.faults.dead_letter_app``, whose cohort runner SIGKILLs its own process for
listed run ids) on the local Redis (database 12, a queue of the test's own), an SQLite
store shared by the workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from manager.celery_app import make_app
from manager.dead_letter import KEY, dead_letter_reason
from manager.runner import BarsRequest, CohortRequest
from manager.settings import Settings
from manager.store import new_run_id, open_store
from manager.tasks import cohort_request_to_dict
from simulator.ledger import verify_journal
from tests.helpers import ROOT

REDIS = "redis://127.0.0.1:6379/12"
CELERY = str(Path(sys.executable).with_name("celery"))
REQ = cohort_request_to_dict(CohortRequest(bars=BarsRequest(start="2024-01-01", end="2024-01-02"), agents=4,
                                           seed_from="random", baselines=0))


def _redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")


class Cluster:
    """Worker subprocesses on the test's own queue (each in its own process group,
    all killed at the end), a client app sending to that queue, the fault lists."""

    def __init__(self, tmp: Path, **env: str):
        self.tmp, self.queue = tmp, f"cohortlab-dl-{uuid.uuid4().hex[:12]}"
        self.store = f"sqlite:///{tmp / 'runs.db'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
        self.env.update(COHORTLAB_BROKER_URL=REDIS, COHORTLAB_STORE=self.store, COHORTLAB_TASK_QUEUE=self.queue,
                        COHORTLAB_METRICS_PORT="0", COHORTLAB_VISIBILITY_TIMEOUT_S="2",
                        COHORTLAB_RESTORE_SWEEP_S="1", COHORTLAB_RUN_LEASE_S="2", DEAD_LETTER_TEST_DIR=str(tmp), PYTHONPATH=str(ROOT))
        self.env.update(env)
        self.procs: list[subprocess.Popen] = []
        self.task_ids: list[str] = []
        self.run_ids: list[str] = []
        self.redis = redis.Redis.from_url(REDIS)

    def worker(self, name: str, pool: str = "prefork") -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "a")
        p = subprocess.Popen([CELERY, "-A", "tests.faults.dead_letter_app", "worker", "-n", f"{name}@%h", "-c", "1",
                              "-P", pool, "-Q", self.queue, "--without-gossip", "--without-mingle",
                              "--without-heartbeat", "--loglevel=INFO"],
                             env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def send(self, run_id: str, *, kill: bool = False, slow: bool = False):
        for flag, name in ((kill, "kill"), (slow, "slow")):
            if flag:
                with open(self.tmp / name, "a") as f:
                    f.write(run_id + "\n")
        self.run_ids.append(run_id)
        old = os.environ.get("COHORTLAB_TASK_QUEUE")
        os.environ["COHORTLAB_TASK_QUEUE"] = self.queue
        try:
            res = make_app(Settings(broker_url=REDIS, store=self.store)).send_task(
                "cohortlab.run_cohort", args=[run_id, REQ])
        finally:
            if old is None:
                os.environ.pop("COHORTLAB_TASK_QUEUE")
            else:
                os.environ["COHORTLAB_TASK_QUEUE"] = old
        self.task_ids.append(res.id)
        return res

    def count(self, what: str, run_id: str) -> int:
        """How many deliveries (or retries) reached the runner (``deliveries``) or simulated."""
        f = self.tmp / what
        return f.read_text().split().count(run_id) if f.exists() else 0

    def run(self, run_id: str) -> dict | None:
        with open_store(self.store) as st:
            try:
                return st.get_run(run_id)
            except Exception:  # noqa: BLE001 - not there yet
                return None

    def ours_pending(self) -> int:
        """Our messages still queued or unacknowledged."""
        unacked = [v for v in self.redis.hvals("unacked") if any(t.encode() in v for t in self.task_ids)]
        return self.redis.llen(self.queue) + len(unacked)

    def close(self) -> None:
        # a warm shutdown first: a worker SIGKILLed inside kombu's restore sweep (every second here)
        # would leave the db's unacked_mutex locked for its 300 s expiry, stalling the next test's restores
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for key in self.redis.scan_iter(f"*{self.queue}*"):
            self.redis.delete(key)
        for tid in self.task_ids:
            self.redis.delete(f"celery-task-meta-{tid}")
            for field, v in self.redis.hgetall("unacked").items():
                if tid.encode() in v:
                    self.redis.hdel("unacked", field)
                    self.redis.zrem("unacked_index", field)
        for rid in self.run_ids:
            self.redis.delete(KEY.format(run_id=rid))


@pytest.fixture
def cluster(tmp_path):
    made: list[Cluster] = []

    def make(**env: str) -> Cluster:
        made.append(Cluster(tmp_path, **env))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _wait(cond, timeout: float, what: str, step: float = 0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _dead_lettered(c: Cluster, rid: str, deliveries: int) -> None:
    # generous: each redelivery first waits out the killed delivery's lease and a retry countdown, and a
    # fresh clone's first worker processes pay numba's compile before their cache exists
    try:
        run = _wait(lambda: (lambda r: r if r and r["status"] == "failed" else None)(c.run(rid)), 150,
                    "the run to be dead-lettered")
    except AssertionError as exc:  # say what the workers and Redis were doing (a rare flake here)
        logs = {p.name: p.read_text()[-1500:] for p in sorted(c.tmp.glob("*.log"))}
        state = {"run": c.run(rid), "ours_pending": c.ours_pending(), "deliveries": c.count("deliveries", rid),
                 "unacked_mutex_ttl": c.redis.ttl("unacked_mutex"), "unacked": c.redis.hlen("unacked")}
        raise AssertionError(f"{exc}; state {state}; worker logs {logs}") from None
    assert run["reason"] == dead_letter_reason(deliveries)
    assert c.count("simulations", rid) == deliveries  # each of them simulated and killed its worker


def test_a_task_killing_its_pool_process_is_dead_lettered_after_max_deliveries(cluster):
    # prefork: the pool process dies, the worker rejects the message with requeue (reject_on_worker_lost)
    # and it comes straight back -- without the dead letter, for ever. (A long visibility timeout: the
    # retries the run's lease causes wait with a countdown, and a shorter one would duplicate them.)
    c = cluster(COHORTLAB_VISIBILITY_TIMEOUT_S="60")
    c.worker("w1")
    rid = new_run_id()
    res = c.send(rid, kill=True)
    _dead_lettered(c, rid, 3)  # COHORTLAB_MAX_DELIVERIES defaults to 3
    out = res.get(timeout=20)  # the 4th delivery returned (and was acknowledged)
    assert out["status"] == "failed" and out["reason"] == dead_letter_reason(3)
    _wait(lambda: c.ours_pending() == 0, 30, "no message of ours left")
    seen = c.count("deliveries", rid)
    time.sleep(3)  # nothing comes back
    assert c.count("deliveries", rid) == seen and c.count("simulations", rid) == 3
    assert c.ours_pending() == 0
    # a later, healthy run on the same worker is not affected
    ok = new_run_id()
    assert c.send(ok).get(timeout=60)["status"] == "completed"
    assert c.redis.get(KEY.format(run_id=ok)) is None  # deliveries that return leave no count


def test_a_task_killing_its_whole_worker_is_dead_lettered_when_the_worker_restarts(cluster):
    # solo pool: the whole worker dies with the message unacknowledged; the test is the supervisor that
    # restarts it, the restarted worker restores the message after the visibility timeout
    c = cluster(COHORTLAB_MAX_DELIVERIES="2")
    rid = new_run_id()
    c.send(rid, kill=True)
    for i in range(2):
        w = c.worker("w1", pool="solo")
        _wait(lambda: c.count("simulations", rid) == i + 1, 30, f"delivery {i + 1}")
        assert w.wait(timeout=10) == -signal.SIGKILL
    assert c.run(rid)["status"] == "running"
    c.worker("w1", pool="solo")
    _dead_lettered(c, rid, 2)
    _wait(lambda: c.ours_pending() == 0, 30, "no message of ours left")
    seen = c.count("deliveries", rid)
    time.sleep(3)  # > visibility timeout + sweep: nothing comes back
    assert c.count("deliveries", rid) == seen and c.count("simulations", rid) == 2
    assert c.ours_pending() == 0


def test_a_visibility_timeout_shorter_than_the_task_completes_the_run_once(cluster):
    # the task sleeps 5 s while the visibility timeout is 2 s: a second worker gets a duplicate delivery
    c = cluster(DEAD_LETTER_SLOW_S="5")
    c.worker("w1")
    c.worker("w2")
    rid = new_run_id()
    res = c.send(rid, slow=True)
    _wait(lambda: c.count("deliveries", rid) >= 2, 30, "a duplicate delivery while the first still runs")
    _wait(lambda: (r := c.run(rid)) and r["status"] == "completed", 60, "the run to complete")
    _wait(lambda: c.ours_pending() == 0 and c.redis.get(KEY.format(run_id=rid)) is None, 30,
          "every copy to return")
    assert res.get(timeout=10)["status"] == "completed"
    assert c.count("simulations", rid) == 1  # the duplicate found the run leased, then finished
    with open_store(c.store) as st:
        assert [r["run_id"] for r in st.list_runs()] == [rid]
        run, journal = st.get_run(rid), st.get_ledger(rid)
    assert run["status"] == "completed"
    assert len({t["txn_id"] for t in journal}) == len(journal) == run["summary"]["ledger"]["transactions"]
    assert verify_journal(journal, run["summary"]["final_state"]).ok


def test_eager_calls_do_not_count(tmp_path, monkeypatch):
    # no broker: the task runs in-process, the dead letter is a no-op (no Redis is asked)
    from manager import dead_letter
    from manager.tasks import run_cohort_task

    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.delenv("COHORTLAB_BROKER_URL", raising=False)
    monkeypatch.setenv("COHORTLAB_MAX_DELIVERIES", "1")

    def no_redis():
        raise AssertionError("the eager task asked for the dead-letter counter")

    monkeypatch.setattr(dead_letter, "delivery_counter", no_redis)
    rid = new_run_id()
    for _ in range(3):  # more calls than COHORTLAB_MAX_DELIVERIES: the same stored result each time
        assert run_cohort_task.apply(args=[rid, REQ]).get()["status"] == "completed"


def test_the_guarded_tasks_keep_their_signature():
    # Celery checks a task's arguments against the function's signature
    import inspect

    from manager.tasks import run_campaign_day, run_cohort_task

    assert list(inspect.signature(run_cohort_task.run).parameters) == ["self", "run_id", "request", "genomes"]
    assert "day_number" in inspect.signature(run_campaign_day.run).parameters
    assert inspect.getfullargspec(run_cohort_task.run).args == ["self", "run_id", "request", "genomes"]
