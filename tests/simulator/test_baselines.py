"""Issue 10, part 2: the baselines beside every cohort result (pure computation).

Buy-and-hold against a hand-checkable formula, the percentile rule, and the random
cohorts of one vectorised engine call against an independent computation: each cohort
run on its own through ``simulate_cohort`` with the aggregate ceilings lifted."""
from __future__ import annotations

import numpy as np
import pytest

from evolution.baselines import baseline_seed, random_cohort_genomes, random_cohorts
from simulator.baselines import buy_and_hold, grouped_cohorts, gross_config, lifted_config, mid_percentile
from simulator.cohort import simulate_cohort
from simulator.engine import EngineConfig
from simulator.synthetic import synthetic_market

CFG = EngineConfig(fee_bps=10.0, slippage_bps=5.0)


@pytest.fixture(scope="module")
def market():
    return synthetic_market(bars=288, warmup_bars=120, seed=3)


def test_buy_and_hold_of_one_symbol_is_the_hand_formula(market):
    one = market.select([market.symbols[0]])
    w = one.warmup
    o, c = float(one.open[w, 0]), float(one.close[-1, 0])
    fee, slip = 0.001, 0.0005
    # independent: buy q with 1000 incl. fee at open x (1 + slip); sell q at close x (1 - slip), pay fee
    q = 1000.0 / (o * (1 + slip) * (1 + fee))
    proceeds = q * c * (1 - slip) * (1 - fee)
    bh = buy_and_hold(one, CFG)
    assert bh["roi"] == pytest.approx(proceeds / 1000.0 - 1.0, rel=1e-12, abs=1e-15)
    assert bh["gross_roi"] == pytest.approx(c / o - 1.0, rel=1e-12)
    assert bh["roi"] < bh["gross_roi"]  # costs on entry and exit


def test_buy_and_hold_is_the_equal_weight_mean_and_keeps_the_reserve_in_cash(market):
    per = [buy_and_hold(market.select([s]), CFG)["roi"] for s in market.symbols]
    bh = buy_and_hold(market, CFG, reserve=0.25)
    assert bh["roi"] == pytest.approx(0.75 * np.mean(per), rel=1e-12)
    assert list(bh["per_symbol"]) == list(market.symbols)


def test_mid_percentile_counts_ties_half():
    sample = [0.01, -0.02, 0.03, 0.0]
    assert mid_percentile(0.03, sample) == 100.0 * (3 + 0.5) / 4  # equal to the best: 87.5
    assert mid_percentile(-0.02, sample) == 12.5
    assert mid_percentile(1.0, sample) == 100.0 and mid_percentile(-1.0, sample) == 0.0
    with pytest.raises(ValueError):
        mid_percentile(0.0, [])


@pytest.mark.parametrize("allocation, reserve", [("equal", 0.0), ("risk_weighted", 0.2)])
def test_one_engine_call_reproduces_each_cohort_run_alone(market, allocation, reserve):
    n, C = 6, 20
    genomes = random_cohort_genomes(market, n_cohorts=C, cohort_size=n, seed=5, max_leverage=2.0)
    assert len(genomes) == n * C
    together = grouped_cohorts(market, genomes, cohort_size=n, bankroll=750.0, config=CFG,
                               allocation=allocation, reserve=reserve)
    assert together.roi.shape == (C,) and together.agent_roi.shape == (C, n)
    for c in range(C):
        alone = simulate_cohort(market, genomes[c * n:(c + 1) * n], bankroll=750.0, config=lifted_config(CFG),
                                allocation=allocation, reserve=reserve, with_ledger=False)
        assert together.roi[c] == pytest.approx(alone.parent["roi"], rel=1e-9, abs=1e-12)
        assert together.agent_roi[c] == pytest.approx([r["roi"] for r in alone.scores], rel=1e-9, abs=1e-12)
        assert together.fees[c] == pytest.approx(alone.parent["fees"], rel=1e-9, abs=1e-9)


def test_random_cohorts_are_seeded_and_gross_has_no_costs(market):
    kw = dict(n_cohorts=20, cohort_size=5, bankroll=1000.0, config=CFG, max_leverage=2.0)
    a, b = random_cohorts(market, seed=7, **kw), random_cohorts(market, seed=7, **kw)
    assert np.array_equal(a.net.roi, b.net.roi) and np.array_equal(a.gross.roi, b.gross.roi)
    assert not np.array_equal(a.net.roi, random_cohorts(market, seed=8, **kw).net.roi)
    assert baseline_seed(7) != 7  # a random-seeded cohort is never its own baseline
    assert np.all(a.gross.fees == 0.0) and np.all(a.net.fees > 0.0)
    genomes = random_cohort_genomes(market, n_cohorts=20, cohort_size=5, seed=7, max_leverage=2.0)
    gross = grouped_cohorts(market, genomes, cohort_size=5, bankroll=1000.0, config=gross_config(CFG))
    assert np.array_equal(gross.roi, a.gross.roi)


def test_a_cohort_equal_to_a_random_one_sits_at_its_rank(market):
    rc = random_cohorts(market, n_cohorts=20, cohort_size=4, bankroll=1000.0, config=CFG, seed=9, max_leverage=2.0)
    genomes = random_cohort_genomes(market, n_cohorts=20, cohort_size=4, seed=9, max_leverage=2.0)
    # a cohort whose ROI no other random cohort shares (idle cohorts all make exactly 0)
    k = next(i for i in range(20) if np.count_nonzero(rc.net.roi == rc.net.roi[i]) == 1)
    same = simulate_cohort(market, genomes[k * 4:(k + 1) * 4], bankroll=1000.0, config=lifted_config(CFG),
                           with_ledger=False).parent["roi"]
    rank = int(np.sum(rc.net.roi < rc.net.roi[k]))  # random cohorts strictly below cohort k
    assert mid_percentile(same, rc.net.roi) == pytest.approx(100.0 * (rank + 0.5) / 20)


def test_idle_cohorts_tie_with_each_other_and_with_cash():
    # two random cohorts that never traded (ROI exactly 0) and a cohort that made 0 too
    assert mid_percentile(0.0, [-0.01, 0.0, 0.0, 0.02]) == 100.0 * (1 + 0.5 * 2) / 4
