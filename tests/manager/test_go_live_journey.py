"""The whole go-live journey of issue 14 on real bars, through the beat tasks (Celery's
tracer, ``Task.apply``) as beat would run them:

a 3-day campaign on a copy of binance-5m (ETH, LTC, XMR against BTC) -> the Day-3 go/no-go
review (``cohortlab.day3_review``) opens a request for the promoter's candidate -> ops, then
risk approve -> the deployment tick (``cohortlab.deployments_tick``, one bar per tick: a
replay feed at accelerated speed) starts the deployment on the first bar after the
campaign's evidence (2018-01-18 00:00) and trades it.

The planted drawdown: in the copy, from 2018-01-18 06:00 every symbol the agent trades
falls 2 % a bar for 40 bars (a falling knife, :func:`plant_crash`); the days the campaign
and its holdout used are untouched. The candidate (a VWAP-deviation reversion agent)
buys the stretched close, the fall goes on, and the tick that processes the first bar
over a rollback limit -- the 5 % drawdown, or the realised variance over 3x the
backtest's, whichever comes first; both are recomputed here from the stored equity --
rolls the deployment back on that bar.

At every tick the deployment's journal balances (every transaction sums to zero, the hash
chain verifies) and the parent identity holds: ``parent:cash`` is minus the allocation
while the deployment runs, and after the rollback it is the deployment's final equity
minus the allocation (the capital came back with its PnL). The figures are printed
(``-s``) for the closing note."""
from __future__ import annotations

import json
import shutil
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from manager import deployments as dep
from manager import promotions as P
from manager import tasks
from manager.store import SQLiteStore
from simulator.ledger_chain import verify_chain
from tests.helpers import BINANCE
from tests.promotion_campaign import BEST, RELAXED, SYMBOLS, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

REVIEW_AT = "2026-01-05T00:45:00+00:00"
FAR = "2030-01-01T00:00:00+00:00"  # every bar of the replay has closed: one bar per tick (max_bars=1)
FIRST_BAR = pd.Timestamp("2018-01-18T00:00:00Z")  # the day after the holdout day 2018-01-17
CRASH = pd.Timestamp("2018-01-18T06:00:00Z")
CRASH_BARS = 40


class User:
    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role


def balances(doc: dict) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for t in doc["ledger"]:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0, t  # balanced, transaction by transaction
        for p in t["postings"]:
            out[p["account"]] = out.get(p["account"], Decimal(0)) + Decimal(p["amount"])
    assert verify_chain(doc["ledger"], stored_head=doc["ledger_head"]).ok
    return out


def plant_crash(folder, symbols) -> None:
    """From :data:`CRASH` on, each bar of ``symbols`` 2 % below the one before, for
    :data:`CRASH_BARS` bars; flat (at the fallen level) after."""
    for sym in symbols:
        path = folder / f"{sym}.parquet"
        df = pd.read_parquet(path)
        k = np.clip(((df["timestamp"] - CRASH) // pd.Timedelta(minutes=5)).to_numpy() + 1, 0, CRASH_BARS)
        factor = np.where(df["timestamp"] >= CRASH, 0.98 ** k, 1.0)
        for col in ("open", "high", "low", "close"):
            df[col] = df[col] * factor
        df.to_parquet(path)


def tick() -> dict:
    return tasks.deployments_tick.apply(kwargs={"now": FAR, "max_bars": 1}).get()


def test_campaign_review_approvals_deployment_crash_rollback(tmp_path, monkeypatch):
    data = tmp_path / "binance-5m"
    data.mkdir()
    for sym in SYMBOLS:
        shutil.copy(BINANCE / f"{sym}.parquet", data / f"{sym}.parquet")
    plant_crash(data, SYMBOLS)
    db = tmp_path / "s.db"
    with SQLiteStore(db) as s:
        report = run(s, data=data)
    cid = report["campaign_id"]
    assert report["rule"]["ranked_on"] == "2018-01-16" and report["holdout"]["date"] == "2018-01-17"
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{db}")
    monkeypatch.setenv("COHORTLAB_PROMOTER", json.dumps(RELAXED.to_dict()))
    dep.forget()

    # the Day-3 go/no-go review opens the request
    review = tasks.day3_review.apply(kwargs={"now": REVIEW_AT}).get()
    pid = review["opened"][cid]
    with SQLiteStore(db) as s:
        promo = s.get_promotion(pid)
        assert promo["agent_id"] == BEST and promo["status"] == "proposed"
        P.approve(s, User("olga", "ops"), pid, "day 3 checked", promo["checklist_hash"], now=REVIEW_AT)
        P.approve(s, User("rick", "risk"), pid, "allocation within limits", promo["checklist_hash"],
                  now="2026-01-05T01:00:00+00:00")
        assert s.get_promotion(pid)["status"] == "risk_approved"

    # the first tick starts it without further action and trades its first bar
    first = tick()
    [did] = first["started"]
    with SQLiteStore(db) as s:
        doc = s.get_deployment(did)
        assert s.get_promotion(pid)["status"] == "deployed"
    alloc = Decimal(str(doc["allocation"]["amount"]))
    assert pd.Timestamp(doc["market"]["start_time"]) == FIRST_BAR and doc["last_bar"] == doc["start_bar"]

    # trade bar by bar until the rollback; the journal balances at every tick
    rolled = None
    for _ in range(288):
        with SQLiteStore(db) as s:
            doc = s.get_deployment(did)
        bal = balances(doc)
        if doc["status"] != "running":
            break
        assert bal["parent:cash"] == -alloc  # the parent identity while running
        rolled = tick()["rolled_back"]
    assert rolled and set(rolled) == {did}, f"no rollback on 2018-01-18 (last bar {doc['last_bar']})"
    with SQLiteStore(db) as s:
        doc = s.get_deployment(did)
        incidents = s.list_incidents(did)
        promo = s.get_promotion(pid)
        audit = [e["kind"] for e in s.list_audit(limit=200)]
    times = pd.to_datetime(doc["timestamps"], utc=True)
    eq = np.asarray(doc["equity"])
    # independently: the first bar where the drawdown (vs the peak, the allocation included) is
    # over 5 %, or the variance of the last 60 per-bar returns (>= 30 of them) over 3x the backtest's
    dd = 1 - eq / np.maximum.accumulate(np.maximum(eq, float(alloc)))
    r = np.diff(np.concatenate([[float(alloc)], eq])) / np.concatenate([[float(alloc)], eq[:-1]])
    ratio = np.array([np.var(r[max(0, t - 59): t + 1], ddof=1) / doc["backtest_bar_variance"] if t >= 29 else 0.0
                      for t in range(len(r))])
    breached = {"drawdown": dd > 0.05, "variance": ratio > 3.0}
    first = {k: int(np.argmax(v)) for k, v in breached.items() if v.any()}
    breach = min(first.values())
    assert breach == len(eq) - 1  # rolled back on the breach bar itself: no bar traded after it
    assert times[breach] > CRASH and doc["last_bar"] == doc["start_bar"] + breach
    assert {i["trigger"] for i in incidents} == {k for k, v in first.items() if v == breach}
    assert rolled[did] in {i["trigger"] for i in incidents}
    entries = [f for f in doc["fills"] if f["kind"] != "settle"]
    assert entries and all(pd.Timestamp(f["time"]) >= CRASH for f in entries)  # bought into the fall
    for inc in incidents:
        figure = dd[breach] if inc["trigger"] == "drawdown" else ratio[breach]
        assert inc["figure"] == pytest.approx(figure, rel=1e-9)
        assert pd.Timestamp(inc["at"]) == times[breach]  # stamped with the breach bar
    assert promo["status"] == "rolled_back" and "deployment.rolled_back" in audit
    assert not doc["broker"]["positions"] and all(f["kind"] == "settle" for f in doc["rollback"]["flatten_fills"])
    bal = balances(doc)
    final = Decimal(doc["broker"]["cash_units"]).scaleb(-8)
    assert bal[f"deployment:{did}:cash"] == 0
    assert bal["parent:cash"] == final - alloc  # the capital came back with its PnL
    # a later tick does not trade it again
    assert did not in tick()["advanced"]
    print(f"\njourney: campaign {cid}, review at {REVIEW_AT}: promotion {pid} of {BEST}; deployment {did}, "
          f"allocation {alloc} BTC x {doc['allocation']['leverage']:.3f} from {FIRST_BAR}; {len(entries)} fill(s) "
          f"from {entries[0]['time']}; breach at {times[breach]} (bar {breach + 1} of the deployment): "
          f"drawdown {dd[breach]:.2%} (limit 5 %), variance ratio {ratio[breach]:.2f} (limit 3), equity "
          f"{eq.max():.8f} -> {eq[-1]:.8f}; rolled back at that bar by {rolled[did]}; "
          f"final equity {final} BTC, PnL {final - alloc} BTC; incidents "
          f"{[(i['trigger'], round(i['figure'], 4) if i['figure'] is not None else None) for i in incidents]}")
