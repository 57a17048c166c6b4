"""The beat task ``cohortlab.deployments_tick`` (issue 14, Day-3 pipeline: "on
risk_approved, the deployment starts without further action"): its schedule entry
and setting; the task run in process (``Task.apply``: Celery's tracer and signals)
on a store holding a ``risk_approved`` promotion of a campaign on binance-5m; the
first tick starts the deployment and advances it, a repeated tick processes no bar
twice, the kill switch rolls it back at the next tick and counts
``cohortlab_rollbacks_total{trigger="kill_switch"}``; a failing tick counts in
``cohortlab_scheduler_failures_total``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from manager import deployments as dep
from manager import metrics, tasks
from manager.celery_app import DEPLOYMENT_TICK_ENTRY, beat_schedule, deployment_tick_seconds
from manager.settings import Settings
from manager.store import SQLiteStore, open_store
from tests.helpers import BINANCE
from tests.manager.test_deployments import approved

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

TASK = "cohortlab.deployments_tick"
FIRST = "2018-01-15T00:00:00.000000Z"  # the day after the campaign's evidence (its day 2018-01-14)


def _sample(name: str, labels: dict) -> float:
    return metrics.registry().get_sample_value(name, labels) or 0.0


@pytest.fixture
def store_url(tmp_path, monkeypatch):
    dep.forget()
    path = tmp_path / "s.db"
    with SQLiteStore(path) as s:
        s.save_campaign({"campaign_id": "camp-1", "market": "binance-5m:ETH_BTC",
                         "report": {"days": [{"date": "2018-01-14"}], "holdout": {"date": None}},
                         "source": {"data": str(BINANCE), "symbols": ["ETH_BTC"], "quote": None},
                         "warmup_bars": 100})
        approved(s)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    yield url
    dep.forget()


def test_schedule_entry_and_setting(monkeypatch):
    monkeypatch.delenv("COHORTLAB_DEPLOYMENT_TICK_S", raising=False)
    entry = beat_schedule(Settings())[DEPLOYMENT_TICK_ENTRY]
    assert entry["task"] == TASK and entry["schedule"].total_seconds() == 60
    assert tasks.app.conf.beat_schedule[DEPLOYMENT_TICK_ENTRY]["task"] == TASK
    monkeypatch.setenv("COHORTLAB_DEPLOYMENT_TICK_S", "5")
    assert deployment_tick_seconds() == 5
    assert beat_schedule(Settings())[DEPLOYMENT_TICK_ENTRY]["schedule"].total_seconds() == 5
    assert beat_schedule(Settings(), deployment_tick_s=2)[DEPLOYMENT_TICK_ENTRY]["schedule"].total_seconds() == 2
    for bad in ("0", "-1", "often", "inf", "nan"):
        monkeypatch.setenv("COHORTLAB_DEPLOYMENT_TICK_S", bad)
        with pytest.raises(ValueError, match="COHORTLAB_DEPLOYMENT_TICK_S"):
            beat_schedule(Settings())


def test_tick_starts_advances_is_idempotent_and_rolls_back_on_the_kill_switch(store_url):
    # first tick (wall-clock now: the 2018 data is all in the past, so it is replayed)
    out = tasks.deployments_tick.apply(kwargs={"max_bars": 12}).get()
    assert len(out["started"]) == 1 and not out["errors"]
    did = out["started"][0]
    with open_store() as s:
        d = s.get_deployment(did)
        assert s.get_promotion("promo-1")["status"] == "deployed"
    assert d["market"]["start_time"] == FIRST and d["status"] == "running"
    assert out["advanced"][did]["from"] == -1 and out["advanced"][did]["bars"] == 12
    first_to = out["advanced"][did]["to"]
    assert d["last_bar"] == first_to == d["start_bar"] + 11 and len(d["equity"]) == 12
    assert _sample("cohortlab_deployments", {"status": "running"}) == 1

    # a tick at the close of the last processed bar: nothing new, nothing started, nothing stepped
    close = datetime.fromisoformat(d["timestamps"][-1].replace("Z", "+00:00")) + timedelta(minutes=5)
    again = tasks.deployments_tick.apply(kwargs={"now": close.isoformat(), "max_bars": 12}).get()
    assert again["started"] == [] and again["advanced"] == {} and not again["errors"]
    with open_store() as s:
        assert s.get_deployment(did)["last_bar"] == first_to
        assert len(s.list_deployments()) == 1

    # the next tick continues after the last processed bar: no bar (and no fill) twice
    nxt = tasks.deployments_tick.apply(kwargs={"max_bars": 12}).get()
    assert nxt["started"] == [] and nxt["advanced"][did]["from"] == first_to
    with open_store() as s:
        d2 = s.get_deployment(did)
    assert d2["last_bar"] == first_to + 12 and d2["equity"][:12] == d["equity"]
    assert len({f["client_order_id"] for f in d2["fills"]}) == len(d2["fills"])

    # the same bars stepped directly on the market the deployment started on give the same equity
    with SQLiteStore(store_url.removeprefix("sqlite:///")) as s:
        market = dep.deployment_market(d2, end="2018-01-16")
    from tests.manager.test_deployments import approved as approve_again
    with SQLiteStore(store_url.removeprefix("sqlite:///").replace("s.db", "ref.db")) as ref:
        pid = approve_again(ref, "promo-ref")
        r = dep.start_deployment(ref, pid, market=market, now="2018-01-15T00:00:00Z", start_bar=d2["start_bar"],
                                 backtest_bar_variance=d2["backtest_bar_variance"])
        for b in range(d2["start_bar"], d2["last_bar"] + 1):
            dep.step(ref, r["deployment_id"], b, market=market)
        assert ref.get_deployment(r["deployment_id"])["equity"] == pytest.approx(d2["equity"], rel=1e-12)

    # kill switch: the next tick rolls back and counts the trigger
    before = _sample("cohortlab_rollbacks_total", {"trigger": "kill_switch"})
    with open_store() as s:
        s.set_kill_switch(True, actor="rick", reason="test")
    killed = tasks.deployments_tick.apply(kwargs={"max_bars": 12}).get()
    assert killed["rolled_back"] == {did: "kill_switch"}
    with open_store() as s:
        d3 = s.get_deployment(did)
        assert s.get_promotion("promo-1")["status"] == "rolled_back"
        assert [i["trigger"] for i in s.list_incidents(did)] == ["kill_switch"]
    assert d3["status"] == "rolled_back" and not d3["broker"]["positions"]
    assert _sample("cohortlab_rollbacks_total", {"trigger": "kill_switch"}) == before + 1
    assert _sample("cohortlab_deployments", {"status": "rolled_back"}) == 1
    assert _sample("cohortlab_deployments", {"status": "running"}) == 0
    # rolled back is final: later ticks neither step nor restart it nor count again
    later = tasks.deployments_tick.apply(kwargs={"max_bars": 12}).get()
    assert later["started"] == [] and later["advanced"] == {} and later["rolled_back"] == {}
    assert _sample("cohortlab_rollbacks_total", {"trigger": "kill_switch"}) == before + 1


def test_a_promotion_that_cannot_start_fails_the_tick_and_is_counted(tmp_path, monkeypatch):
    dep.forget()
    with SQLiteStore(tmp_path / "s.db") as s:
        approved(s, "promo-orphan")  # its campaign camp-1 is not stored: no market to deploy on
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 's.db'}")
    before = _sample("cohortlab_scheduler_failures_total", {"task": TASK})
    res = tasks.deployments_tick.apply(throw=False)
    assert res.failed() and "promo-orphan" in str(res.result) and "no stored campaign" in str(res.result)
    assert _sample("cohortlab_scheduler_failures_total", {"task": TASK}) == before + 1
    with open_store() as s:
        assert s.get_promotion("promo-orphan")["status"] == "risk_approved" and s.list_deployments() == []
