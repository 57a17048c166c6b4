"""Issue 10 parts 4-6 through the learning loop: PBO, per-genome IS/OOS and the
IS->OOS rank correlation in the knowledge record; the Deflated Sharpe's N from the
lineage and optimize trials on the same market, N = agents for the daily candidate
step; candidates confirmed on a holdout day; an optimize objective that does not
reward idleness, reported on a final holdout. Tiny GA settings to stay fast."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from evolution.evolve import GAConfig
from learning.cycle import run_cycle
from learning.walkforward import Split, Window
from manager import campaigns, search_jobs
from manager import learning_jobs as lj
from simulator.engine import EngineConfig
from manager.runner import CohortRequest
from manager.seeding import market_identity
from manager.store import open_store
from simulator import metrics
from simulator.data import load_market

from tests.helpers import BINANCE

UTC = "UTC"
D = pd.Timedelta(days=1)
TINY = GAConfig(generations=2, population=6, hof_size=6)


@pytest.fixture(scope="module")
def market():
    return load_market(BINANCE, None, pd.Timestamp("2018-01-12", tz=UTC), pd.Timestamp("2018-01-15", tz=UTC),
                       warmup_bars=200)


def _split():
    t = pd.Timestamp("2018-01-14", tz=UTC)
    return Split(Window(t - D, t), Window(t, t + D))


def test_cycle_knowledge_has_pbo_rank_correlation_and_every_genome(market):
    cyc = run_cycle(market, _split(), ga=TINY, seed=3)
    k = cyc.knowledge()
    assert 0.0 <= k["pbo"]["pbo"] <= 1.0 and k["pbo"]["blocks"] == 16 and k["pbo"]["combinations"] == 12870
    assert k["pbo"]["trials"] == cyc.evolution.trials
    assert cyc.evolution.trial_returns.shape[0] == cyc.evolution.trials
    assert len(k["genomes"]) == len(cyc.population)
    assert all({"in_sample", "out_of_sample"} <= set(g) for g in k["genomes"])
    rho = metrics.rank_correlation([g["in_sample"]["sharpe"] for g in k["genomes"]],
                                   [g["out_of_sample"]["sharpe"] for g in k["genomes"]])
    assert k["rank_correlation"] == rho
    n = k["tried"]["n_trials"]
    assert n["cycle"] == cyc.evolution.trials and n["total"] == n["cycle"]
    assert 1 <= n["effective"] <= n["cycle"]


def test_prior_trials_raise_n_and_lower_the_deflated_sharpe(market):
    a = run_cycle(market, _split(), ga=TINY, seed=3)
    b = run_cycle(market, _split(), ga=TINY, seed=3, prior_trials=10_000)
    assert b.n_trials["total"] == a.evolution.trials + 10_000
    da = np.array([r["deflated_sharpe"] for r in sorted(a.table, key=lambda r: r["genome_id"])])
    db = np.array([r["deflated_sharpe"] for r in sorted(b.table, key=lambda r: r["genome_id"])])
    assert (db <= da + 1e-12).all() and (db < da).any()


def test_lineage_and_optimize_trials_count_on_the_same_market_only_before_the_cycle(market, tmp_path):
    key = market_identity(market).key
    with open_store(f"sqlite:///{tmp_path}/s.db") as st:
        base = {"mode": "daily", "market": key, "in_sample": {}, "out_of_sample": {}}
        st.save_knowledge({**base, "cycle_id": "c1", "tried": {"trials": 40}, "started_from": "random",
                           "train": {"start": "2018-01-10 00:00:00+00:00", "end": "2018-01-12 00:00:00+00:00"},
                           "validation": {"start": "2018-01-12 00:00:00+00:00", "end": "2018-01-13 00:00:00+00:00"}})
        st.save_knowledge({**base, "cycle_id": "c2", "tried": {"trials": 25}, "started_from": "cycle:c1+random",
                           "train": {"start": "2018-01-11 00:00:00+00:00", "end": "2018-01-13 00:00:00+00:00"},
                           "validation": {"start": "2018-01-13 00:00:00+00:00", "end": "2018-01-14 00:00:00+00:00"}})
        # later than the cycle (look-ahead) and another market: never counted
        st.save_knowledge({**base, "cycle_id": "c3", "tried": {"trials": 999}, "started_from": "cycle:c2",
                           "train": {"start": "2018-01-13 00:00:00+00:00", "end": "2018-01-15 00:00:00+00:00"},
                           "validation": {"start": "2018-01-15 00:00:00+00:00", "end": "2018-01-16 00:00:00+00:00"}})
        st.save_knowledge({**base, "cycle_id": "x1", "market": "other|5m|USD", "tried": {"trials": 777},
                           "started_from": "random",
                           "train": {"start": "2018-01-10 00:00:00+00:00", "end": "2018-01-12 00:00:00+00:00"},
                           "validation": {"start": "2018-01-12 00:00:00+00:00", "end": "2018-01-13 00:00:00+00:00"}})
        st.save_study_meta("ga-study", {"space": [], "market": key, "train_end": "2018-01-13T00:00:00+00:00"})
        for _ in range(3):
            st.save_trial("ga-study", {"params": {"x": 1}, "value": 0.0, "genomes_tried": 7})
        t = pd.Timestamp("2018-01-14", tz=UTC)
        got = lj.prior_trials(st, market, t, "population:c2")
        assert got["cycles"] == ["c2", "c1"] and got["studies"] == ["ga-study"]
        assert got["trials"] == 25 + 40 + 3 * 7
        assert lj.prior_trials(st, market, t, "random")["trials"] == 21  # optimize trials still count
        assert lj.prior_trials(st, market, t, "hall_of_fame")["cycles"] == ["c2", "c1"]


def test_daily_candidate_dsr_uses_n_agents_and_the_days_sharpe_variance():
    rng = np.random.default_rng(0)
    rets = rng.normal(0.0002, 0.01, size=(5, 288))
    equity = 100.0 * np.cumprod(1 + rets, axis=1)
    eng = SimpleNamespace(equity=np.hstack([np.full((5, 1), 100.0), equity]), allocation_units=np.full(5, 100e8))
    dsr, info = campaigns._deflated(SimpleNamespace(engine=eng), None)
    r = metrics.bar_returns(eng.equity, eng.allocation_units / 1e8)
    var = float(np.var(metrics.sharpe_ratio(r, 1.0), ddof=1))
    assert info == {"n_trials": 5, "var_sr": pytest.approx(var)}
    assert np.allclose(dsr, metrics.deflated_sharpe_ratio(r, 5, var))


def _campaign(start, days, store):
    req = campaigns.CampaignRequest(source=lj.Source(data=str(BINANCE)), start=start, days=days, lookback="1d",
                             cohort=CohortRequest(agents=6, baselines=0), ga=GAConfig(generations=1),
                             min_trades=0, dsr_threshold=0.0)
    return campaigns.run_campaign(req, store)


def test_campaign_days_report_pbo_and_lineage_n_and_candidates_are_confirmed_next_day(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/c.db") as st:
        rep = _campaign("2018-01-14", 2, st)
    d1, d2 = rep["days"]
    for d in (d1, d2):
        assert d["pbo"] is None or 0.0 <= d["pbo"] <= 1.0
        assert "rank_correlation" in d and d["deflation"]["n_trials"] == 6
    assert d1["pbo"] is not None
    assert d2["n_trials"]["lineage_cycles"] == [d1["cycle_id"]]
    assert d2["n_trials"]["prior"] == d1["n_trials"]["cycle"]
    assert rep["holdout"]["date"] == "2018-01-16" and rep["rule"]["ranked_on"] == "2018-01-15"
    assert rep["candidates"], "min_trades 0 and DSR >= 0 admit every agent"
    for x in rep["candidates"]:
        assert set(x["holdout"]) >= {"roi", "sharpe", "trades"} and isinstance(x["confirmed"], bool)


def test_campaign_at_the_end_of_the_data_ranks_on_day_n_minus_1_and_confirms_on_day_n():
    rep = _campaign("2018-01-29", 2, None)  # the data ends on 2018-01-30 04:50: no bar on 2018-01-31
    assert rep["rule"]["ranked_on"] == "2018-01-29" and rep["holdout"]["date"] == "2018-01-30"
    assert all(x["holdout"] is not None for x in rep["candidates"])


def test_optimize_objective_does_not_reward_idleness():
    idle = {"roi": 0.0, "sharpe": 0.0, "max_drawdown": 0.0, "trades": 0}
    busy = {"roi": 0.01, "sharpe": 1.0, "max_drawdown": 0.01, "trades": 4}
    all_idle = SimpleNamespace(table=[{"out_of_sample": idle}] * 10)
    some = SimpleNamespace(table=[{"out_of_sample": busy}] * 5 + [{"out_of_sample": idle}] * 5)
    assert search_jobs.selection_objective(all_idle) == -search_jobs.IDLE_PENALTY_SHARPE < 0
    assert search_jobs.selection_objective(some) == 1.0


def test_optimize_reports_a_final_holdout_after_the_tuning_window(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/o.db") as st:
        res = search_jobs.optimize_ga(lj.Source(data=str(BINANCE)), end="2018-01-16", validation="12h", study=None,
                             trials=2, generations=1, population=4, seed=1, engine=EngineConfig(), store=st,
                             max_lookback_hours=12)
        h = res.best["holdout"]
        assert h["window"] == {"start": "2018-01-15 12:00:00+00:00", "end": "2018-01-16 00:00:00+00:00"}
        assert all(t.get("genomes_tried", 0) >= 4 for t in st.list_trials(res.study))


def test_cohort_page_of_a_campaign_day_shows_its_cycles_pbo(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from api.app import create_app
    from manager import services

    url = f"sqlite:///{tmp_path}/w.db"
    with open_store(url) as st:
        rep = _campaign("2018-01-14", 1, st)
    day = rep["days"][0]
    monkeypatch.setenv("COHORTLAB_STORE", url)
    services.close_shared_store()
    try:
        with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
            html = c.get(f"/trading/cohorts/{day['run_id']}").text
    finally:
        services.close_shared_store()
    assert day["cycle_id"] in html and "PBO" in html and "IS→OOS ρ" in html
