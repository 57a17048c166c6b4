"""The beat task ``cohortlab.expire_promotions`` (issue 13): its schedule entry and
setting, the task run in process (``Task.apply``: Celery's tracer and signals) and by a
real worker on the local Redis, the expired requests in the store, and the counters
``cohortlab_promotions_total{status="expired"}`` and
``cohortlab_scheduler_failures_total{task}``."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, multiprocess

from manager import metrics, tasks
from manager import promotions as P
from manager import users
from manager.celery_app import PROMOTION_EXPIRY_ENTRY, beat_schedule, promotion_expiry_seconds
from manager.settings import Settings
from manager.store import SQLiteStore, open_store
from tests.helpers import BINANCE
from tests.manager.test_tasks import _redis_up, client, env, procs, send  # noqa: F401 - fixtures
from tests.promotion_campaign import RELAXED, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

TASK = "cohortlab.expire_promotions"
LONG_AGO = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("promotion-expiry") / "s.db"
    with SQLiteStore(path) as s:
        report = run(s)
    return path, report


def _with_overdue_request(stored, path) -> str:
    """Copy the campaign's store to ``path`` and propose there a request whose 24 h window ended."""
    shutil.copy(stored[0], path)
    with SQLiteStore(path) as s:
        doc = P.propose(s, users.Principal("olga", "ops"), stored[1]["campaign_id"], 3, notes="old",
                        config=RELAXED, now=LONG_AGO)
    return doc["promotion_id"]


def _sample(name: str, labels: dict, registry=None) -> float:
    return (registry or metrics.registry()).get_sample_value(name, labels) or 0.0


def test_schedule_entry_and_setting(monkeypatch):
    monkeypatch.delenv("COHORTLAB_PROMOTION_EXPIRY_S", raising=False)
    entry = beat_schedule(Settings())[PROMOTION_EXPIRY_ENTRY]
    assert entry["task"] == TASK and entry["schedule"].total_seconds() == 300
    assert tasks.app.conf.beat_schedule[PROMOTION_EXPIRY_ENTRY]["task"] == TASK
    monkeypatch.setenv("COHORTLAB_PROMOTION_EXPIRY_S", "60")
    assert promotion_expiry_seconds() == 60
    assert beat_schedule(Settings())[PROMOTION_EXPIRY_ENTRY]["schedule"].total_seconds() == 60
    assert beat_schedule(Settings(), promotion_expiry_s=5)[PROMOTION_EXPIRY_ENTRY]["schedule"].total_seconds() == 5
    for bad in ("0", "-3", "soon", "inf"):
        monkeypatch.setenv("COHORTLAB_PROMOTION_EXPIRY_S", bad)
        with pytest.raises(ValueError, match="COHORTLAB_PROMOTION_EXPIRY_S"):
            beat_schedule(Settings())


def test_task_expires_overdue_requests_in_process(stored, tmp_path, monkeypatch):
    pid = _with_overdue_request(stored, tmp_path / "s.db")
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 's.db'}")
    with open_store() as s:
        assert s.get_promotion(pid)["status"] == "proposed"
    before = _sample("cohortlab_promotions_total", {"status": "expired"})
    out = tasks.expire_promotions.apply().get()
    assert out["expired"] == [pid] and out["count"] == 1
    with open_store() as s:
        doc = s.get_promotion(pid)
        log = s.promotion_log(pid)
    assert doc["status"] == "expired" and doc["steps"][-1]["user"] == "system"
    assert [(r["from_status"], r["status"]) for r in log] == [(None, "proposed"), ("proposed", "expired")]
    assert _sample("cohortlab_promotions_total", {"status": "expired"}) == before + 1
    # idempotent: a second sweep finds nothing and counts nothing
    assert tasks.expire_promotions.apply().get()["count"] == 0
    assert _sample("cohortlab_promotions_total", {"status": "expired"}) == before + 1


def test_task_failure_is_counted(monkeypatch, tmp_path):
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 's.db'}")

    def broken(store, now=None):
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr(tasks, "expire_due", broken)
    before = _sample("cohortlab_scheduler_failures_total", {"task": TASK})
    res = tasks.expire_promotions.apply(throw=False)
    assert res.failed() and "the sweep broke" in str(res.result)
    assert _sample("cohortlab_scheduler_failures_total", {"task": TASK}) == before + 1
    # a task that beat does not schedule is not a scheduler failure
    other = _sample("cohortlab_scheduler_failures_total", {"task": "cohortlab.run_cohort"})
    tasks.run_cohort_task.apply(args=["20260101T000000-deadbeef", {"bad": 1}], throw=False)
    assert _sample("cohortlab_scheduler_failures_total", {"task": "cohortlab.run_cohort"}) == other


@pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")
def test_real_worker_expires_and_counts(stored, env, procs, client):  # noqa: F811 - fixtures
    store_path = env["COHORTLAB_STORE"].removeprefix("sqlite:///")
    pid = _with_overdue_request(stored, store_path)
    procs.worker("expiry")
    out = send(client, TASK, []).get(timeout=60)
    assert out["expired"] == [pid]
    with open_store(env["COHORTLAB_STORE"]) as s:
        assert s.get_promotion(pid)["status"] == "expired"
    reg = CollectorRegistry()  # what the worker's /metrics serves: its pool processes' samples
    multiprocess.MultiProcessCollector(reg, path=env["PROMETHEUS_MULTIPROC_DIR"])
    assert _sample("cohortlab_promotions_total", {"status": "expired"}, reg) == 1
    assert _sample("cohortlab_tasks_total", {"task": TASK, "outcome": "success"}, reg) == 1
