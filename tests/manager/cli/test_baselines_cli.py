"""Issue 10, part 2: the baselines in every cohort report -- the ``--json`` ``baselines``
object, the CLI's "against chance" table, ``--baselines 0``, the listing's percentile and
the campaign day's JSON and table, end to end on real bars."""
from __future__ import annotations

import json

import numpy as np
import pytest

from evolution.baselines import random_cohort_genomes
from manager.store import open_store
from simulator.baselines import buy_and_hold, lifted_config, mid_percentile
from simulator.cohort import simulate_cohort
from simulator.data import load_market
from simulator.engine import EngineConfig
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

RUN = ("run", "--data", BINANCE, "--start", "2018-01-16", "--agents", 6, "--seed", 3, "--no-progress")


def test_run_json_has_the_baselines_object_and_the_cli_prints_the_table(tmp_path, store_url, cli):
    out = tmp_path / "r.json"
    res = cli(*RUN, "--baselines", 20, "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "Against chance: 20 random cohorts of 6 agents" in res.output
    for label in ("random median", "random 5th / 95th pct", "cohort among random", "cash",
                  "buy-and-hold (equal weight)", "best agent (max of 6)", "median agent"):
        assert label in res.output
    rep = json.loads(out.read_text())
    b = rep["baselines"]
    assert set(b) == {"cohort", "random", "cash", "buy_and_hold", "best_agent"}
    assert b["cash"] == {"roi": 0.0}
    assert b["cohort"]["roi"] == rep["parent"]["roi"]
    assert b["cohort"]["cost_drag"] == pytest.approx(b["cohort"]["gross_roi"] - b["cohort"]["roi"])
    r = b["random"]
    assert r["cohorts"] == 20 and r["agents"] == 6 and len(r["roi"]) == 20 and len(r["gross_roi"]) == 20
    assert r["percentile"] == mid_percentile(rep["parent"]["roi"], r["roi"])
    assert r["median"] == pytest.approx(float(np.median(r["roi"])))
    assert r["p5"] <= r["median"] <= r["p95"]
    # independent: the day's bars, the random genomes run one cohort at a time, lifted ceilings
    day = load_market(BINANCE, None, "2018-01-16", "2018-01-17", warmup_bars=200)
    cfg = EngineConfig(fee_bps=10.0, slippage_bps=5.0)
    genomes = random_cohort_genomes(day, n_cohorts=20, cohort_size=6, seed=3, max_leverage=2.0)
    for c in (0, 7, 19):
        alone = simulate_cohort(day, genomes[c * 6:(c + 1) * 6], bankroll=1000.0, config=lifted_config(cfg),
                                with_ledger=False)
        assert r["roi"][c] == pytest.approx(alone.parent["roi"], rel=1e-9, abs=1e-12)
    assert b["buy_and_hold"]["roi"] == pytest.approx(buy_and_hold(day, cfg)["roi"])
    assert b["best_agent"]["roi"] == max(a["roi"] for a in rep["agents"])
    assert b["best_agent"]["median_agent_roi"] == pytest.approx(float(np.median([a["roi"] for a in rep["agents"]])))
    # the store's listing carries the percentile (migration 0007)
    with open_store(store_url) as st:
        row = st.list_cohort_summaries()["items"][0]
    assert row["run_id"] == rep["run_id"] and row["baseline_percentile"] == r["percentile"]
    # same seed, same baselines
    again = tmp_path / "again.json"
    assert cli(*RUN, "--json", again, store_url=store_url).exit_code == 0
    assert json.loads(again.read_text())["baselines"] == b


def test_baselines_zero_turns_them_off(tmp_path, store_url, cli):
    out = tmp_path / "r.json"
    res = cli(*RUN, "--baselines", 0, "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "Against chance" not in res.output and "baselines" not in json.loads(out.read_text())
    with open_store(store_url) as st:
        assert st.list_cohort_summaries()["items"][0]["baseline_percentile"] is None


def test_help_states_the_baselines_option(cli):
    for command in ("run", "campaign"):
        res = cli(command, "--help")
        text = " ".join(res.output.split())
        assert "--baselines" in text and "0 = off" in text


def test_campaign_day_json_and_table_carry_the_baselines(tmp_path, store_url, cli):
    out = tmp_path / "c.json"
    res = cli("campaign", "--data", BINANCE, "--start", "2018-01-15", "--days", 1, "--lookback", "1d",
              "--agents", 4, "--generations", 1, "--baselines", 20, "--json", out, "--no-progress",
              store_url=store_url)
    assert res.exit_code == 0, res.output
    day = json.loads(out.read_text())["days"][0]
    b = day["baselines"]
    assert b["random"]["cohorts"] == 20 and b["random"]["agents"] == 4
    assert b["cohort"]["roi"] == day["parent"]["roi"] and b["cash"]["roi"] == 0.0
    assert "pctl" in res.output and "Against chance, per day" in res.output and "median agent ROI %" in res.output
