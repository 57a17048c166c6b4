"""Restart safety of micro-live deployments (issue 14): "SIGKILL the worker
mid-deployment, check there are no double fills" -- a killed worker resumes from
the last processed bar, orders are idempotent per (deployment, bar).

Real faults on real services: Celery worker subprocesses (``-A
tests.faults.deployment_worker_app``: the production app, its deployment save
instrumented to note and, once, hold where the test wants the kill to land) on the
local Redis (database 14, a queue of the test's own) and an SQLite store holding a
campaign on binance-5m and its ``risk_approved`` promotion. The test feeds
``cohortlab.deployments_tick`` (``now`` far past the data, a few bars per tick) so
the first tick starts the deployment and the next ones advance it tick by tick;
it SIGKILLs the worker's process group twice, each time with ticks queued and one
in flight:

1. after a step computed its bars but *before* it saved them (the work is lost,
   the tick's message is redelivered);
2. right *after* a step saved its bars, before the task returned (its message is
   unacknowledged and redelivered: a replay of a tick that already took effect);

then restarts the worker and ticks on until the deployment ends (the rollback
timer, or an earlier trigger: ``now`` is far past the data). The result is compared
with an independent reference: the same promotion started on another store and
stepped in-process, without any kill, with :func:`manager.deployments.step` to the
same bars (the tick's bar boundaries, on the market loaded once): same fills (one
per order id, none twice), bars, equity, broker state, rollback, ledger (hash chain
verified, every transaction balanced)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from manager import deployments as dep
from manager.settings import Settings
from manager.store import SQLiteStore, open_store
from simulator.ledger_chain import verify_chain
from tests.helpers import BINANCE, ROOT
from tests.manager.test_deployments import approved

REDIS = "redis://127.0.0.1:6379/14"
CELERY = str(Path(sys.executable).with_name("celery"))
TASK = "cohortlab.deployments_tick"
NOW = "2019-01-01T00:00:00+00:00"  # far past the data (2018-01-10 .. 2018-01-30): replayed tick by tick
MAX_BARS = 10  # bars per tick
DEADLINE_S = 90.0  # the whole worker part; it takes ~20 s


def _redis_up() -> bool:
    try:
        return redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


pytestmark = [pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379"),
              pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")]


def _seed(path: Path) -> None:
    """A campaign on binance-5m (evidence through 2018-01-14) and its risk_approved promotion."""
    with SQLiteStore(path) as s:
        s.save_campaign({"campaign_id": "camp-1", "market": "binance-5m:ETH_BTC",
                         "report": {"days": [{"date": "2018-01-14"}], "holdout": {"date": None}},
                         "source": {"data": str(BINANCE), "symbols": ["ETH_BTC"], "quote": None},
                         "warmup_bars": 100})
        approved(s)


def _reference(path: Path) -> dict:
    """The same promotion deployed on its own store and stepped in-process, never killed:
    started as the tick starts it, then :func:`dep.step` to each tick boundary
    (``start - 1 + k * MAX_BARS``) on the deployment's whole market, loaded once."""
    dep.forget()
    _seed(path)
    with SQLiteStore(path) as s:
        started = dep.start_approved(s, NOW)
        assert not started["errors"] and len(started["started"]) == 1, started
        did = started["started"][0]
        doc = s.get_deployment(did)
        market = dep.deployment_market(doc)
        start = int(doc["start_bar"])
        target = start - 1
        while doc["status"] == dep.RUNNING and target < market.n_bars - 1:
            target = min(target + MAX_BARS, market.n_bars - 1)
            doc = dep.step(s, did, target, market=market)["deployment"]
        doc = s.get_deployment(did)
    dep.forget()
    return doc


class Cluster:
    """Worker subprocesses on the test's own queue (each in its own process group,
    all killed at the end), a client app sending ticks to that queue, the notes the
    instrumented workers write."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch):
        from manager.celery_app import make_app

        self.tmp, self.queue = tmp, f"cohortlab-deprestart-{uuid.uuid4().hex[:12]}"
        self.db = tmp / "s.db"
        self.store = f"sqlite:///{self.db}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
        # a killed worker's unacknowledged tick comes back after 2 s (swept every second)
        self.env.update(COHORTLAB_BROKER_URL=REDIS, COHORTLAB_STORE=self.store, COHORTLAB_TASK_QUEUE=self.queue,
                        COHORTLAB_METRICS_PORT="0", COHORTLAB_VISIBILITY_TIMEOUT_S="2",
                        COHORTLAB_RESTORE_SWEEP_S="1", DEPLOYMENT_TEST_DIR=str(tmp), PYTHONPATH=str(ROOT))
        self.procs: list[subprocess.Popen] = []
        self.results: list = []
        self.redis = redis.Redis.from_url(REDIS)
        monkeypatch.setenv("COHORTLAB_TASK_QUEUE", self.queue)
        self.app = make_app(Settings(broker_url=REDIS, store=self.store))

    def worker(self, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "a")
        p = subprocess.Popen([CELERY, "-A", "tests.faults.deployment_worker_app", "worker", "-n", f"{name}@%h",
                              "-c", "1", "-P", "prefork", "-Q", self.queue, "--without-gossip",
                              "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
                             env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def kill(self, p: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group (main process and pool child)."""
        os.killpg(p.pid, signal.SIGKILL)
        assert p.wait(timeout=10) == -signal.SIGKILL

    def tick(self):
        self.results.append(self.app.send_task(TASK, kwargs={"now": NOW, "max_bars": MAX_BARS}))

    def queued(self) -> int:
        return self.redis.llen(self.queue)

    def unacked(self) -> int:
        ids = [r.id.encode() for r in self.results]
        return sum(1 for v in self.redis.hvals("unacked") if any(t in v for t in ids))

    def notes(self) -> list[str]:
        f = self.tmp / "notes"
        return f.read_text().splitlines() if f.exists() else []

    def hold(self, where: str, bar: int) -> None:
        with open(self.tmp / "hold", "a") as f:
            f.write(f"{where} {bar}\n")

    def deployment(self) -> dict | None:
        with open_store(self.store) as st:
            deps = st.list_deployments()
        assert len(deps) <= 1, f"more than one deployment for one promotion: {[d['deployment_id'] for d in deps]}"
        return deps[0] if deps else None

    def log(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("w*.log")))

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for key in self.redis.scan_iter(f"*{self.queue}*"):
            self.redis.delete(key)
        ids = {r.id for r in self.results}
        for tid in ids:
            self.redis.delete(f"celery-task-meta-{tid}")
        for field, v in self.redis.hgetall("unacked").items():
            if any(tid.encode() in v for tid in ids):
                self.redis.hdel("unacked", field)
                self.redis.zrem("unacked_index", field)


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    c = Cluster(tmp_path, monkeypatch)
    try:
        yield c
    finally:
        c.close()


def _feed_until(c: Cluster, cond, what: str, deadline: float, depth: int = 3):
    """Keep ``depth`` ticks queued until ``cond()`` is truthy (polled every 20 ms)."""
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        if c.queued() < depth:
            c.tick()
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; notes: {c.notes()[-12:]}\n{c.log()}")


def _noted(c: Cluster, line: str):
    return lambda: line in c.notes()


def _strip(doc: dict, value):
    """``value`` with the deployment's id replaced by a placeholder (order ids, ledger accounts)."""
    if isinstance(value, str):
        return value.replace(doc["deployment_id"], "<dep>")
    if isinstance(value, list):
        return [_strip(doc, v) for v in value]
    if isinstance(value, dict):
        return {k: _strip(doc, v) for k, v in value.items()}
    return value


def _ledger_checked(doc: dict) -> list[dict]:
    assert verify_chain(doc["ledger"], stored_head=doc["ledger_head"]).ok
    for t in doc["ledger"]:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0, f"unbalanced transaction {t}"
    # compared across deployments without the hashes (they cover the deployment id in the accounts)
    return [{k: v for k, v in _strip(doc, t).items() if k not in ("hash", "prev_hash")} for t in doc["ledger"]]


def test_sigkill_of_the_worker_mid_deployment_leaves_no_double_fill(cluster, tmp_path):
    ref = _reference(tmp_path / "ref.db")
    start, final = int(ref["start_bar"]), int(ref["last_bar"])
    n_ticks = (final - start) // MAX_BARS + 1
    assert n_ticks >= 9, f"the reference deployment ended after {n_ticks} ticks: too short to kill mid-way"
    assert ref["fills"], "the reference never traded: nothing to double-fill"
    # the kill points (a tick's expected last bar): a third and two thirds of the way
    before = start - 1 + (n_ticks // 3) * MAX_BARS
    after = start - 1 + (2 * n_ticks // 3) * MAX_BARS
    c = cluster
    c.hold("before", before)
    c.hold("after", after)
    _seed(c.db)
    deadline = time.time() + DEADLINE_S

    # worker 1: starts the deployment, advances it; killed with a step computed but not saved
    w1 = c.worker("w1")
    _feed_until(c, _noted(c, f"held-before {before}"), f"a step from bar {before} about to save", deadline)
    assert c.queued() > 0, "no tick queued behind the one in flight"
    c.kill(w1)
    d = c.deployment()
    assert d is not None and d["status"] == "running"
    assert start < d["last_bar"] == before < final, (d["last_bar"], start, final)
    assert f"commit {before} {before + MAX_BARS} 1" not in c.notes()
    fills_at_kill = len(d["fills"])

    # worker 2: the lost step is redone (redelivered or the next tick); killed right after a save
    w2 = c.worker("w2")
    _feed_until(c, _noted(c, f"held-after {after}"), f"a step from bar {after} saved", deadline)
    assert c.queued() > 0, "no tick queued behind the one in flight"
    c.kill(w2)
    d = c.deployment()
    assert d["status"] == "running" and start < d["last_bar"] == after + MAX_BARS < final, (d["last_bar"], final)
    assert len(d["fills"]) >= fills_at_kill
    assert c.notes().count(f"commit {before} {before + MAX_BARS} 1") == 1  # the lost step, saved once

    # worker 3: ticks on until the deployment ended (rolled back, or stopped at the data's end)
    c.worker("w3")

    def ended():
        doc = c.deployment()
        if doc["status"] != "running":
            return doc
        if doc["last_bar"] >= final and c.queued() == 0 and c.unacked() == 0:
            return doc  # nothing more to step (or the reference ended earlier: the comparison tells)
        return None

    got = _feed_until(c, ended, "the deployment to end", deadline)
    # every tick sent finished (the killed ones redelivered), none failed
    outs = {}
    for r in c.results:
        outs[r.id] = r.get(timeout=max(deadline - time.time(), 1))
        assert not outs[r.id]["errors"], outs[r.id]
    got = c.deployment()
    did = got["deployment_id"]
    # the killed ticks came back: the one killed before its save redid the lost step from
    # bar `before`; the one killed after its save did not redo it, it stepped the next bars
    held = {line.split()[0]: line.split()[2] for line in c.notes() if line.startswith("task-")}
    assert outs[held["task-before"]]["advanced"][did]["from"] == before
    assert outs[held["task-after"]]["advanced"].get(did, {}).get("from", after + MAX_BARS) == after + MAX_BARS

    # no double fill: one fill per order id, each order id the deployment's own
    ids = [f["client_order_id"] for f in got["fills"]]
    assert len(ids) == len(set(ids)), f"double fills: {sorted(i for i in ids if ids.count(i) > 1)}"
    assert all(i.startswith(f"{got['deployment_id']}:") for i in ids)
    assert [f["seq"] for f in got["fills"]] == sorted(f["seq"] for f in got["fills"])
    # the same deployment as the one never killed
    assert got["start_bar"] == start and got["last_bar"] == final and got["status"] == ref["status"]
    assert _strip(got, got["fills"]) == _strip(ref, ref["fills"])
    assert got["timestamps"] == ref["timestamps"] and len(got["equity"]) == final - start + 1
    assert got["equity"] == pytest.approx(ref["equity"], rel=1e-12, abs=1e-12)
    assert _strip(got, got["broker"]) == _strip(ref, ref["broker"])
    assert (got.get("rollback") or {}).get("reason") == (ref.get("rollback") or {}).get("reason")
    assert (got.get("rollback") or {}).get("bar") == (ref.get("rollback") or {}).get("bar")
    assert _ledger_checked(got) == _ledger_checked(ref)
    # every bar processed once: one begin-commit per tick boundary, the held one saved once
    commits = [line for line in c.notes() if line.startswith("commit ") and line.endswith(" 1")]
    steps = [line for line in commits if line.split()[1] != line.split()[2]]
    assert len(steps) == len(set(steps)) == n_ticks, steps
