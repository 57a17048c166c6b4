"""The Day-3 promoter (:mod:`evolution.promoter`) on a real campaign
(:mod:`tests.promotion_campaign`): under ``RELAXED`` agent a06 passes every guard
rail; each scenario tightens exactly ONE rule (config or context) and the
checklist must say that rule failed, with the right figure, while every other
rule still passes."""
from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from evolution.fitness import evaluate
from evolution.genome import Genome
from evolution.promoter import (CHECKS, PromoterConfig, PromoterError, PromotionContext, allocation_for,
                                promote_intraday_candidate)
from simulator.engine import EngineConfig
from tests.helpers import BINANCE
from tests.promotion_campaign import BANKROLL, BEST, RELAXED, day_market, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


@pytest.fixture(scope="module")
def report() -> dict:
    return run(None)


@pytest.fixture(scope="module")
def market(report):
    return day_market(report)


def context(report, **kw) -> PromotionContext:
    agents = report["days"][2]["agents"]
    base = dict(bankroll=BANKROLL, tiers={a["agent_id"]: 2.0 for a in agents},
                lineages={a["agent_id"]: f"lineage:{a['genome']['genome_id']}" for a in agents})
    return PromotionContext(**{**base, **kw})


def review(report, market, config=RELAXED, ctx=None, day=3):
    return promote_intraday_candidate(report, day, market, config=config, context=ctx or context(report))


def best(rv, agent=BEST) -> dict:
    return next(c for c in rv.candidates if c["agent_id"] == agent)


def figure(rv, name, agent=BEST):
    return next(c for c in best(rv, agent)["checks"] if c["name"] == name)


@pytest.fixture(scope="module")
def baseline(report, market):
    rv = review(report, market)
    assert rv.proposal is not None and rv.proposal["agent_id"] == BEST
    assert best(rv)["passed"] and [c["name"] for c in best(rv)["checks"]] == list(CHECKS)
    return rv


def only_fails(rv, name: str) -> dict:
    cand = best(rv)
    assert cand["blocking"] == [name], cand["blocking"]
    return figure(rv, name)


def test_relaxed_passes_and_is_the_proposal(baseline, report) -> None:
    row = next(a for a in report["days"][2]["agents"] if a["agent_id"] == BEST)
    assert figure(baseline, "min_trades")["figure"] == row["trades"]
    assert figure(baseline, "deflated_sharpe")["figure"] == pytest.approx(row["deflated_sharpe"])
    assert figure(baseline, "max_drawdown")["figure"] == pytest.approx(row["max_drawdown"])
    assert figure(baseline, "pbo")["figure"] == pytest.approx(report["days"][2]["pbo"])
    assert "N = 8 agents" in figure(baseline, "deflated_sharpe")["detail"]
    assert baseline.blocking == [] and baseline.date == "2018-01-16"
    # passing candidates first
    flags = [c["passed"] for c in baseline.candidates]
    assert flags == sorted(flags, reverse=True)


def test_same_inputs_same_review(baseline, report, market) -> None:
    assert review(report, market).to_dict() == baseline.to_dict()


def test_min_trades(baseline, report, market) -> None:
    n = figure(baseline, "min_trades")["figure"]
    chk = only_fails(review(report, market, replace(RELAXED, min_trades=n + 1)), "min_trades")
    assert chk["figure"] == n and chk["threshold"] == f">= {n + 1}"


def test_holdout_not_confirmed(baseline, report, market) -> None:
    camp = copy.deepcopy(report)
    cand = next(c for c in camp["candidates"] if c["agent_id"] == BEST)
    cand["confirmed"] = False
    chk = only_fails(review(camp, market), "holdout")
    assert chk["figure"] == pytest.approx(cand["holdout"]["roi"])


def test_no_holdout_fails_with_that_reason(baseline, report, market) -> None:
    camp = copy.deepcopy(report)
    camp["candidates"] = [c for c in camp["candidates"] if c["agent_id"] != BEST]
    chk = only_fails(review(camp, market), "holdout")
    assert chk["figure"] is None and chk["detail"].startswith("no holdout")
    assert best(review(camp, market, replace(RELAXED, require_holdout=False)))["passed"]


def test_deflated_sharpe(baseline, report, market) -> None:
    dsr = figure(baseline, "deflated_sharpe")["figure"]
    chk = only_fails(review(report, market, replace(RELAXED, dsr_min=min(dsr + 0.01, 1.0))), "deflated_sharpe")
    assert chk["figure"] == pytest.approx(dsr)


def test_pbo(baseline, report, market) -> None:
    pbo = figure(baseline, "pbo")["figure"]
    chk = only_fails(review(report, market, replace(RELAXED, pbo_max=pbo - 0.01)), "pbo")
    assert chk["figure"] == pytest.approx(pbo)
    chk = only_fails(review(report, market, ctx=context(report, pbo=0.9)), "pbo")  # from the context
    assert chk["figure"] == pytest.approx(0.9)


def test_baseline_percentile(baseline, report, market) -> None:
    pct = figure(baseline, "baseline_percentile")["figure"]
    assert pct < 100
    chk = only_fails(review(report, market, replace(RELAXED, percentile_min=pct + 0.5)), "baseline_percentile")
    assert chk["figure"] == pytest.approx(pct)
    assert "50 random genomes" in chk["detail"]


def test_max_drawdown(baseline, report, market) -> None:
    mdd = figure(baseline, "max_drawdown")["figure"]
    chk = only_fails(review(report, market, replace(RELAXED, max_drawdown=mdd * 0.9)), "max_drawdown")
    assert chk["figure"] == pytest.approx(mdd)


def test_slippage_tolerance(baseline, report, market) -> None:
    rv = review(report, market, replace(RELAXED, slippage_factor=100.0))
    chk = only_fails(rv, "slippage_x2")
    genome = Genome.from_dict(best(rv)["genome"])
    expect = evaluate(market, [genome], replace(EngineConfig(), slippage_bps=500.0)).roi[0]
    assert chk["figure"] == pytest.approx(expect) and chk["figure"] <= 0


def test_liquidity_at_the_proposed_allocation(baseline, report, market) -> None:
    small = figure(baseline, "liquidity")["figure"]
    assert 0 < small <= RELAXED.max_volume_share
    rv = review(report, market, ctx=context(report, bankroll=1000.0))  # 50 BTC proposed
    chk = only_fails(rv, "liquidity")
    assert best(rv)["allocation"]["amount"] == 50.0
    assert chk["figure"] == pytest.approx(small * 500, rel=0.05)  # notional scales with the allocation
    chk = only_fails(review(report, market, replace(RELAXED, max_volume_share=small / 2)), "liquidity")


def test_policy_tier_and_kill_switch(baseline, report, market) -> None:
    tiers = {k: v for k, v in context(report).tiers.items() if k != BEST}
    chk = only_fails(review(report, market, ctx=context(report, tiers=tiers)), "policy")
    assert chk["figure"] is None and "no tier" in chk["detail"]
    chk = only_fails(review(report, market, ctx=context(report, kill_switch=True)), "policy")
    assert chk["detail"] == "kill switch on"


def test_no_passing_candidate_gives_blocking_items(report, market) -> None:
    rv = review(report, market, PromoterConfig())  # the defaults: PBO 0.65 > 0.5 blocks everyone
    assert rv.proposal is None
    assert "pbo" in [c["name"] for c in rv.blocking]
    assert all(not c["passed"] for c in rv.candidates)


def test_day_must_be_at_least_3(report, market) -> None:
    with pytest.raises(PromoterError, match="promotion opens after Day 3"):
        review(report, market, day=2)
    with pytest.raises(PromoterError, match="beyond"):
        review(report, market, day=4)


def test_allocation_rule() -> None:
    a = allocation_for(100.0, 3.0, 2.0, None)
    assert a["amount"] == 50.0 and a["leverage"] == 2.0 and a["gross_exposure"] == 100.0 and a["bound_by"] == "tier"
    a = allocation_for(10_000.0, 1.5, 4.0, 3.0)
    assert a["amount"] == 500.0 and a["gross_exposure"] == 750.0 and a["bound_by"] == "gene"
    a = allocation_for(30.0, 2.0, 2.0, 1.0)
    assert a["amount"] == 30.0 and a["gross_exposure"] == 30.0 and a["bound_by"] == "kelly_cap"
    assert np.isclose(allocation_for(1000.0, 2, None, None, PromoterConfig(allocation_share=0.1))["amount"], 100.0)
