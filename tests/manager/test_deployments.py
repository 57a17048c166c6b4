"""Micro-live deployment use cases (:mod:`manager.deployments`) on a real store and
real binance-5m bars: a day replayed to its end with the ledger balanced and the
equity equal to the engine's backtest; a planted drawdown (a shocked copy of the
bars) rolled back within one bar of the breach with the incident's figures; the
kill switch and the rollback timer; idempotent and restart-safe steps; manual
rollback, extend and pause audited.

The promotion is inserted ``risk_approved`` through the store (what
``manager.promotions.approve`` leaves; the campaign journey is slower and is
covered by ``tests/manager/test_promotions.py``)."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest

from evolution.genome import Genome
from evolution.promoter import allocation_for
from manager import deployments as dep
from manager.store import SQLiteStore
from risk.rollback import RollbackConfig
from simulator.cohort import simulate_cohort
from simulator.data import load_market
from simulator.engine import EngineConfig
from simulator.ledger_chain import verify_chain
from tests.helpers import BINANCE

OPS = SimpleNamespace(name="olga", role="ops")
RISK = SimpleNamespace(name="rick", role="risk")
VIEWER = SimpleNamespace(name="vic", role="viewer")
GENOME = Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC",), size=1.0, leverage=1.0)
ALLOCATION = 0.005  # BTC


@pytest.fixture(scope="module")
def market():
    # two days: the first is the approving backtest's history, the second is traded
    m = load_market(BINANCE, symbols=["ETH_BTC"], start="2018-01-14", end="2018-01-16", warmup_bars=100)
    assert m.n_trading_bars == 576
    return m


START = 100 + 288  # first traded row: 2018-01-15 00:00


@pytest.fixture
def store(tmp_path):
    dep.forget()
    with SQLiteStore(tmp_path / "s.db") as s:
        yield s
    dep.forget()


def approved(store, pid="promo-1", leverage_tier=2.0) -> str:
    alloc = allocation_for(0.1, GENOME.leverage, leverage_tier, None)
    alloc = {**alloc, "amount": ALLOCATION, "gross_exposure": ALLOCATION * alloc["leverage"]}
    store.create_promotion({"promotion_id": pid, "campaign_id": "camp-1", "day": 3, "run_id": "r3",
                            "agent_id": "a06", "status": "risk_approved", "genome": GENOME.to_dict(),
                            "allocation": alloc, "created_at": "2018-01-14T23:00:00Z"})
    return pid


def start(store, market, pid=None, **kw):
    pid = pid or approved(store)
    now = market.timestamps[START].astype("datetime64[us]").item().isoformat() + "+00:00"
    return dep.start_deployment(store, pid, market=market, now=now, start_bar=START, **kw)


def run(store, market, d, last):
    out = None
    for b in range(START, last + 1):
        out = dep.step(store, d["deployment_id"], b, market=market)
        if out["rolled_back"]:
            return out
    return out


def assert_balanced(doc):
    for t in doc["ledger"]:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0, t
    assert verify_chain(doc["ledger"], stored_head=doc["ledger_head"]).ok


def balances(doc):
    out: dict[str, Decimal] = {}
    for t in doc["ledger"]:
        for p in t["postings"]:
            out[p["account"]] = out.get(p["account"], Decimal(0)) + Decimal(p["amount"])
    return out


def test_start_reserves_the_allocation_once_and_marks_the_promotion_deployed(store, market):
    d = start(store, market)
    assert d["status"] == "running" and d["last_bar"] == -1 and d["start_bar"] == START
    assert d["expires_at"] == "2018-01-18T00:00:00Z"  # 3-day rollback timer
    assert d["genome"]["family"] == "sma_cross" and d["allocation"]["amount"] == ALLOCATION
    assert d["backtest_bar_variance"] > 0  # the agent alone on the day before
    assert_balanced(d)
    bal = balances(d)
    assert bal["parent:cash"] == Decimal("-0.005") and bal[f"deployment:{d['deployment_id']}:cash"] == Decimal("0.005")
    assert store.get_promotion("promo-1")["status"] == "deployed"
    again = dep.start_deployment(store, "promo-1", market=market, now="2018-01-15T00:00:00Z", start_bar=START)
    assert again["deployment_id"] == d["deployment_id"] and len(store.list_deployments()) == 1
    assert [e["kind"] for e in store.list_audit()].count("deployment.started") == 1


def test_zero_gross_exposure_and_wrong_status_are_refused(store, market):
    approved(store, "promo-z", leverage_tier=0.0)
    with pytest.raises(dep.DeploymentError, match="zero gross exposure"):
        start(store, market, "promo-z")
    store.create_promotion({"promotion_id": "promo-p", "campaign_id": "camp-1", "day": 3, "run_id": "r3",
                            "agent_id": "a06", "status": "proposed", "genome": GENOME.to_dict(),
                            "allocation": {"amount": 0.005, "leverage": 1.0, "gross_exposure": 0.005}})
    with pytest.raises(dep.DeploymentConflict, match="risk_approved"):
        start(store, market, "promo-p")
    assert store.list_deployments() == []


def test_a_day_replayed_to_the_end_matches_the_backtest_and_the_ledger_balances(store, market):
    # this agent's own fall on 2018-01-15 reaches 5.14 % at its last bars: a 10 % limit lets the day finish
    d = start(store, market, rollback_config=RollbackConfig(max_drawdown=0.10))
    end = market.n_bars - 1
    out = run(store, market, d, end)
    doc = out["deployment"]
    assert not out["rolled_back"] and doc["status"] == "running" and doc["last_bar"] == end
    assert len(doc["equity"]) == 288 and len(doc["fills"]) > 5
    # the engine's backtest of the agent alone on the same window, allocation = bankroll
    eng = simulate_cohort(replace(market, warmup=START), [GENOME], bankroll=ALLOCATION, config=EngineConfig(),
                          with_ledger=False).engine
    np.testing.assert_allclose(doc["equity"], eng.equity[0], rtol=1e-8)
    assert [f["bar"] for f in doc["fills"]] == list(eng.fills["bar"])
    assert_balanced(doc)
    # the end of the trial: capital back to the parent
    closed = dep.rollback(store, d["deployment_id"], "manual", market=market, actor=RISK, notes="end of trial",
                          now="2018-01-16T00:00:00Z")
    assert closed["status"] == "rolled_back" and not closed["broker"]["positions"]
    assert_balanced(closed)
    bal = balances(closed)
    final = Decimal(closed["broker"]["cash_units"]).scaleb(-8)
    assert bal[f"deployment:{d['deployment_id']}:cash"] == 0
    assert bal["parent:cash"] == final - Decimal("0.005")  # reserved, then the final equity returned
    assert closed["rollback"]["final_equity"] == pytest.approx(doc["equity"][-1], rel=2e-3)  # flatten costs only
    assert store.get_promotion("promo-1")["status"] == "rolled_back"


def test_planted_drawdown_rolls_back_within_one_bar_of_the_breach(store, market):
    # where the agent holds ETH: from the unshocked replay
    d0 = start(store, market, approved(store, "promo-0"))
    base = run(store, market, d0, START + 200)["deployment"]
    held = [f for f in base["fills"] if f["position"] > 0]
    assert held
    k = held[0]["bar"] + 2  # two bars into the first long position
    nxt = [f["bar"] for f in base["fills"] if f["bar"] > held[0]["bar"]]
    assert not nxt or nxt[0] > k
    shocked = replace(market, **{c: np.where(np.arange(market.n_bars)[:, None] >= k, getattr(market, c) * 0.9,
                                             getattr(market, c)) for c in ("open", "high", "low", "close")})
    d = start(store, shocked)
    out = run(store, shocked, d, market.n_bars - 1)
    doc = out["deployment"]
    assert out["rolled_back"] and doc["status"] == "rolled_back"
    assert doc["last_bar"] == k  # the breach bar itself: no bar traded after it
    [inc] = store.list_incidents(d["deployment_id"])
    assert inc["trigger"] == "drawdown" and inc["figure"] > 0.05 and inc["threshold"] == 0.05
    assert np.datetime64(inc["at"].rstrip("Z")) == shocked.timestamps[k]  # the first bar over the limit
    assert inc["detail"]["trough_equity"] < 0.95 * ALLOCATION and inc["unit"] == "fraction of peak equity"
    assert doc["rollback"]["reason"] == "drawdown" and doc["rollback"]["bar"] == k
    assert all(f["kind"] == "settle" for f in doc["rollback"]["flatten_fills"]) and doc["rollback"]["flatten_fills"]
    assert not doc["broker"]["positions"]
    assert_balanced(doc)
    assert balances(doc)["parent:cash"] == Decimal(doc["broker"]["cash_units"]).scaleb(-8) - Decimal("0.005")
    assert store.get_promotion(d["promotion_id"])["status"] == "rolled_back"
    kinds = [e["kind"] for e in store.list_audit(limit=200)]
    assert "deployment.rolled_back" in kinds and "promotion.rolled_back" in kinds
    # a rolled-back deployment does not step again
    assert dep.step(store, d["deployment_id"], k + 1, market=shocked)["processed"] == []


def test_kill_switch_rolls_back_at_the_next_step(store, market):
    d = start(store, market)
    run(store, market, d, START + 10)
    store.set_kill_switch(True, actor="rick", reason="exchange outage")
    out = dep.step(store, d["deployment_id"], START + 11, market=market)
    assert out["rolled_back"] and out["verdict"]["trigger"] == "kill_switch"
    assert out["deployment"]["last_bar"] == START + 11
    incs = store.list_incidents(d["deployment_id"])
    assert incs[0]["trigger"] == "kill_switch" and incs[0]["figure"] == 1.0
    # the policy tier is not read (no stored campaign), so only the switch fires
    assert [i["trigger"] for i in incs] == ["kill_switch"]


def test_rollback_timer(store, market):
    d = start(store, market, rollback_config=RollbackConfig(timer_days=1 / 24))  # one hour = 12 bars
    out = run(store, market, d, START + 50)
    assert out["rolled_back"] and out["verdict"]["trigger"] == "timer"
    assert out["deployment"]["last_bar"] == START + 11  # its close is 01:00, the expiry


def test_steps_are_idempotent_and_restart_safe(store, market):
    d = start(store, market)
    did = d["deployment_id"]
    first = run(store, market, d, START + 120)["deployment"]
    again = dep.step(store, did, START + 120, market=market)
    assert again["processed"] == [] and again["deployment"]["fills"] == first["fills"]
    dep.forget()  # a restarted worker: rebuilt by replaying from the start
    again = dep.step(store, did, START + 120, market=market)
    assert again["processed"] == [] and store.get_deployment(did)["fills"] == first["fills"]
    # a second deployment of another promotion stepped with a restart before every bar
    d2 = start(store, market, approved(store, "promo-2"))
    for b in range(START, START + 121):
        dep.forget()
        dep.step(store, d2["deployment_id"], b, market=market)
    second = store.get_deployment(d2["deployment_id"])
    strip = lambda fs: [{k: v for k, v in f.items() if k != "client_order_id"} for f in fs]  # noqa: E731
    assert strip(second["fills"]) == strip(first["fills"]) and second["equity"] == first["equity"]
    ids = [f["client_order_id"] for f in second["fills"]]
    assert len(ids) == len(set(ids))  # one fill per (deployment, bar, symbol)
    # a stale worker (its cache says bar START+50) cannot write over the newer state
    assert not store.update_deployment(did, START + 50, {"last_bar": START + 51})
    # catching up: one call processes every bar since last_bar
    out = dep.step(store, did, START + 130, market=market)
    assert out["processed"] == list(range(START + 121, START + 131))


def test_manual_controls_are_audited(store, market):
    d = start(store, market)
    did = d["deployment_id"]
    run(store, market, d, START + 5)
    with pytest.raises(dep.DeploymentError, match="notes are required"):
        dep.pause(store, did, actor=OPS, notes=" ")
    with pytest.raises(dep.DeploymentError, match="may not extend"):
        dep.extend(store, did, actor=OPS, notes="more time", days=1)
    with pytest.raises(dep.DeploymentError, match="may not pause"):
        dep.pause(store, did, actor=VIEWER, notes="x")
    paused = dep.pause(store, did, actor=OPS, notes="venue maintenance", now="2018-01-15T00:30:00Z")
    assert paused["status"] == "paused"
    assert dep.step(store, did, START + 6, market=market)["processed"] == []  # paused: not stepped
    with pytest.raises(dep.DeploymentConflict):
        dep.pause(store, did, actor=OPS, notes="again")
    ext = dep.extend(store, did, actor=RISK, notes="re-approved for a day", days=1, now="2018-01-15T00:31:00Z")
    assert ext["expires_at"] == "2018-01-19T00:00:00.000000Z"
    dep.resume(store, did, actor=OPS, notes="venue back", now="2018-01-15T00:40:00Z")
    assert dep.step(store, did, START + 6, market=market)["processed"] == [START + 6]
    done = dep.rollback(store, did, "manual", market=market, actor=RISK, notes="stop the trial",
                        now="2018-01-15T00:45:00Z")
    assert done["status"] == "rolled_back"
    assert [(c["action"], c["user"]) for c in done["controls"]] == [
        ("paused", "olga"), ("extended", "rick"), ("resumed", "olga"), ("rollback", "rick")]
    events = {e["kind"]: e for e in store.list_audit(limit=200)}
    assert events["deployment.paused"]["actor"] == "olga"
    assert events["deployment.paused"]["details"]["notes"] == "venue maintenance"
    assert events["deployment.extended"]["details"]["to"] == "2018-01-19T00:00:00.000000Z"
    assert events["deployment.rolled_back"]["details"]["notes"] == "stop the trial"
    [inc] = store.list_incidents(did)
    assert inc["trigger"] == "manual" and inc["detail"]["user"] == "rick"
    assert dep.rollback(store, did, "manual", market=market, actor=RISK, notes="twice")["status"] == "rolled_back"
    assert len(store.list_incidents(did)) == 1  # idempotent


def _shocked(store, market):
    """A copy of the bars 10 % lower from two bars into the agent's first long position
    (as in the planted-drawdown test) and that bar's row."""
    d0 = start(store, market, approved(store, "promo-0"))
    base = run(store, market, d0, START + 200)["deployment"]
    k = [f for f in base["fills"] if f["position"] > 0][0]["bar"] + 2
    return replace(market, **{c: np.where(np.arange(market.n_bars)[:, None] >= k, getattr(market, c) * 0.9,
                                          getattr(market, c)) for c in ("open", "high", "low", "close")}), k


class Died(BaseException):
    """The worker dies here (SIGKILL-like: nothing after it runs)."""


def _die_at_the_breach(store, market, monkeypatch, owner, name):
    """Trade the shocked bars up to the breach bar, the worker dying in ``owner.name``."""
    shocked, k = _shocked(store, market)
    d = start(store, shocked)
    run(store, shocked, d, k - 1)

    def die(*a, **kw):
        raise Died

    with monkeypatch.context() as m:
        m.setattr(owner, name, die)
        with pytest.raises(Died):
            dep.step(store, d["deployment_id"], k, market=shocked)
    return shocked, k, d


def test_a_worker_dying_between_the_breach_and_the_rollback_rolls_back_at_the_breach(store, market, monkeypatch):
    shocked, k, d = _die_at_the_breach(store, market, monkeypatch, dep, "rollback")
    saved = store.get_deployment(d["deployment_id"])
    assert saved["status"] == "running" and saved["last_bar"] == k and saved["pending_rollback"]["trigger"] == "drawdown"
    dep.forget()  # a new worker, ten bars later
    out = dep.step(store, d["deployment_id"], k + 10, market=shocked)
    doc = out["deployment"]
    assert out["rolled_back"] and out["processed"] == [] and doc["status"] == "rolled_back"
    assert doc["last_bar"] == k and doc["rollback"]["bar"] == k  # no bar traded past the breach
    assert [i["trigger"] for i in store.list_incidents(d["deployment_id"])] == ["drawdown"]
    assert_balanced(doc)


def test_a_rollback_interrupted_after_the_deployment_update_is_finished_once(store, market, monkeypatch):
    shocked, k, d = _die_at_the_breach(store, market, monkeypatch, store, "transition_promotion")
    half = store.get_deployment(d["deployment_id"])
    assert half["status"] == "rolled_back" and store.get_promotion(d["promotion_id"])["status"] == "deployed"
    assert store.list_incidents(d["deployment_id"]) == []
    for _ in range(2):  # the next call finishes it; a further call changes nothing
        dep.rollback(store, d["deployment_id"], "drawdown", market=shocked)
    assert store.get_promotion(d["promotion_id"])["status"] == "rolled_back"
    assert [i["trigger"] for i in store.list_incidents(d["deployment_id"])] == ["drawdown"]
    assert [e["kind"] for e in store.list_audit(limit=200)].count("deployment.rolled_back") == 1
    assert store.get_deployment(d["deployment_id"])["ledger"] == half["ledger"]  # no second return of capital


def test_every_fill_is_journalled_and_the_accounts_close_at_the_rollback(store, market):
    d = start(store, market, rollback_config=RollbackConfig(max_drawdown=0.10))
    doc = run(store, market, d, START + 150)["deployment"]
    did = d["deployment_id"]
    fills = [t for t in doc["ledger"] if t["kind"] not in ("allocation", "return_of_capital")]
    assert len(fills) == len(doc["fills"]) > 0
    assert [t["memo"].split("(")[1].rstrip(")") for t in fills] == [f["client_order_id"] for f in doc["fills"]]
    assert_balanced(doc)
    bal = balances(doc)
    # independently from the broker's state: cash and the positions' quantities
    assert bal[f"deployment:{did}:cash"] == Decimal(doc["broker"]["cash_units"]).scaleb(-8)
    qty = sum(p["qty"] for t in fills for p in t["postings"] if p["qty"] is not None)
    assert qty == pytest.approx(sum(p["qty"] if isinstance(p, dict) else p
                                    for p in doc["broker"]["positions"].values()), abs=1e-12)
    assert bal["fees"] == Decimal(doc["broker"]["fee_units"]).scaleb(-8)
    closed = dep.rollback(store, did, "manual", market=market, actor=RISK, notes="end of trial")
    assert_balanced(closed)
    bal = balances(closed)
    assert bal[f"deployment:{did}:cash"] == 0 and bal["fees"] == Decimal(closed["broker"]["fee_units"]).scaleb(-8)
    assert all(v == 0 for k, v in bal.items() if ":position:" in k)  # flat: every cost basis released
    # PnL identity: what the parent got back minus the allocation = realised PnL - fees
    pnl = bal["parent:cash"]
    assert pnl == -bal[f"deployment:{did}:realized_pnl"] - bal["fees"]
