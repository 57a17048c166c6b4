"""Fitness that resists overfitting (issue 10 part 3): fold scoring checked against
an independent numpy computation, idleness and churning penalties, early stopping,
the family cap in the population and the hall of fame, family shares in the
knowledge record."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import evolution.evolve as evolve_mod
from evolution.evolve import EvolutionError, GAConfig, evolve, select_hall_of_fame
from evolution.fitness import (EVAL_CAPITAL, WORST, Evaluation, Scoring, evaluate, isolated_config,
                               score)
from evolution.genome import Genome
from evolution.toolbox import random_genomes
from learning.cycle import run_cycle
from learning.walkforward import split_lookback
from simulator.allocation import allocate
from simulator.cohort import agent_arrays, build_signals
from simulator.data import load_market
from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from tests.helpers import BINANCE, market_from_prices

UTC = "UTC"
PPY = 365 * 24 * 12  # 5-minute bars per year


def _walk(t: int = 360, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, (t, 2)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    return market_from_prices(open_, close=close, symbols=["A_USD", "B_USD"])


@pytest.fixture(scope="module")
def binance():
    return load_market(BINANCE, None, "2018-01-13", "2018-01-15", warmup_bars=200)


def test_fold_sharpe_matches_a_hand_computation_from_the_engine_bar_returns():
    m = _walk()
    genomes = [Genome("sma_cross", {"fast": 2, "slow": 5}, symbols=("A_USD", "B_USD")).validated(),
               Genome("sma_cross", {"fast": 3, "slow": 12}, symbols=("A_USD",)).validated()]
    genomes += random_genomes(6, m.symbols, seed=3, max_leverage=2.0)
    n, cost_bps = len(genomes), 20.0
    # the engine run, set up exactly as evaluate() does; everything after it by hand
    sig, w = build_signals(m, genomes)
    alloc, bank = allocate(EVAL_CAPITAL * n, "equal", n_agents=n)
    res = run_engine(m, sig, agent_arrays(genomes, w, alloc), bankroll_units=bank,
                     config=isolated_config(EngineConfig()))
    init = alloc / UNITS
    eq = res.equity
    prev = np.concatenate([init[:, None], eq[:, :-1]], axis=1)
    r = eq / prev - 1.0
    t = r.shape[1]
    notional = np.zeros((n, t))
    opened = np.zeros((n, t), dtype=int)
    f = res.fills
    for b, a, s, nu, pos, q in zip(f["bar"], f["agent"], f["symbol"], f["notional_units"], f["position"], f["qty"]):
        if s >= 0:
            notional[a, b - m.warmup] += abs(nu) / UNITS
            opened[a, b - m.warmup] += int(pos != 0 and pos == q)
    rp = r - cost_bps / 1e4 * notional / prev
    val = int(0.2 * t)
    fit = t - val
    q, rem = divmod(fit, 3)
    sizes = [q + (k < rem) for k in range(3)]
    bounds = np.cumsum([0] + sizes)
    hand = np.zeros((n, 3))
    for k in range(3):
        x = rp[:, bounds[k]:bounds[k + 1]]
        sd = x.std(axis=1, ddof=1)
        hand[:, k] = np.where(sd > 0, x.mean(axis=1) / np.where(sd > 0, sd, 1) * np.sqrt(PPY), 0.0)
    vx = r[:, fit:]
    vsd = vx.std(axis=1, ddof=1)
    hand_val = np.where(vsd > 0, vx.mean(axis=1) / np.where(vsd > 0, vsd, 1) * np.sqrt(PPY), 0.0)

    sc = score(evaluate(m, genomes), Scoring(folds=3, turnover_cost_bps=cost_bps, validation_share=0.2))
    assert sc.validation_bars == val and [b - a for a, b in sc.folds] == sizes
    np.testing.assert_allclose(sc.fold_sharpe, hand, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sc.validation_sharpe, hand_val, rtol=1e-9, atol=1e-9)
    fold_trades = np.stack([opened[:, bounds[k]:bounds[k + 1]].sum(axis=1) for k in range(3)], axis=1)
    np.testing.assert_array_equal(sc.fold_trades, fold_trades)
    active = (fold_trades >= 1).all(axis=1) & (fold_trades.sum(axis=1) >= 2)
    assert active.any()
    np.testing.assert_allclose(sc.fitness[active, 1], np.median(hand[active], axis=1), rtol=1e-9)
    growth = np.cumprod(1 + rp[:, :fit], axis=1)
    np.testing.assert_allclose(sc.fitness[active, 0], growth[active, -1] - 1, rtol=1e-9, atol=1e-12)
    # the min aggregate is the worst fold
    low = score(evaluate(m, genomes), Scoring(aggregate="min", turnover_cost_bps=cost_bps))
    np.testing.assert_allclose(low.fitness[active, 1], hand[active].min(axis=1), rtol=1e-9)


def _idle_after_first_third():
    """Prices swing for the first 120 bars, then stay flat: a moving-average
    cross trades in the first fold only."""
    swing = 100 + 3 * np.sin(np.arange(120) / 4.0)
    close = np.concatenate([swing, np.full(240, swing[-1])])
    open_ = np.concatenate([close[:1], close[:-1]])
    return market_from_prices(open_, close=close, symbols=["A_USD"])


def test_a_genome_idle_in_a_fold_gets_no_fitness_reward():
    m = _idle_after_first_third()
    g = Genome("sma_cross", {"fast": 2, "slow": 5}, symbols=("A_USD",)).validated()
    ev = evaluate(m, [g])
    assert ev.trades[0] >= 2 and ev.sharpe[0] != 0.0
    assert ev.objectives(0, 2) != WORST  # the old single-window rule rewarded it
    sc = score(ev, Scoring(validation_share=0.0))
    assert sc.fold_trades[0, 0] >= 2 and (sc.fold_trades[0, 1:] == 0).all()
    assert sc.idle[0] and tuple(sc.fitness[0]) == WORST
    # a genome that never trades is idle too, even though its Sharpe of 0 beats losers
    never = Evaluation(roi=np.zeros(1), sharpe=np.zeros(1), sharpe_bar=np.zeros(1), max_drawdown=np.zeros(1),
                       trades=np.zeros(1, int), returns=np.zeros((1, 90)), notional=np.zeros((1, 90)),
                       opened=np.zeros((1, 90), int), initial=np.ones(1), periods_per_year=PPY)
    assert tuple(score(never).fitness[0]) == WORST


def test_churning_is_penalised():
    rng = np.random.default_rng(4)
    t = 300
    r = rng.normal(2e-4, 1e-3, t)
    opened = np.zeros((2, t), int)
    opened[:, ::20] = 1  # both trade in every fold
    notional = np.zeros((2, t))
    notional[0, ::20] = 1.0  # the calm one trades its allocation 15 times
    notional[1, :] = 1.0  # the churner trades its allocation every bar
    ev = Evaluation(roi=np.zeros(2), sharpe=np.zeros(2), sharpe_bar=np.zeros(2), max_drawdown=np.zeros(2),
                    trades=opened.sum(axis=1), returns=np.vstack([r, r]), notional=notional, opened=opened,
                    initial=np.ones(2), periods_per_year=PPY)
    free = score(ev, Scoring(turnover_cost_bps=0.0, validation_share=0.0))
    assert free.fitness[0, 1] == pytest.approx(free.fitness[1, 1])  # same returns, same score without the cost
    paid = score(ev, Scoring(turnover_cost_bps=5.0, validation_share=0.0))
    assert paid.fitness[1, 1] < paid.fitness[0, 1] < free.fitness[0, 1]
    assert paid.fitness[1, 0] < paid.fitness[0, 0]  # ROI too
    assert paid.turnover[1] > 10 * paid.turnover[0]
    # on the engine: the stress cost takes more from a fast cross than from a slow one
    m = _walk(seed=2)
    fast = Genome("sma_cross", {"fast": 2, "slow": 3}, symbols=("A_USD", "B_USD")).validated()
    slow = Genome("sma_cross", {"fast": 10, "slow": 40}, symbols=("A_USD", "B_USD")).validated()
    e = evaluate(m, [fast, slow])
    a = score(e, Scoring(turnover_cost_bps=0.0, min_fold_trades=0, min_trades=0))
    b = score(e, Scoring(turnover_cost_bps=25.0, min_fold_trades=0, min_trades=0))
    drop = a.fitness[:, 0] - b.fitness[:, 0]
    assert a.turnover[0] > a.turnover[1] and drop[0] > drop[1] > 0


def test_early_stopping_stops_when_validation_degrades(binance, monkeypatch):
    """Synthetic: every bred genome does worse on the inner validation tail than
    its generation-0 ancestors (the tail returns are replaced by noise whose mean
    falls with the genome's generation), so validation never improves after
    generation 0 and the GA stops after ``patience`` generations, returning the
    generation-0 population."""
    real = evolve_mod.evaluate

    def degrading(market, genomes, config=EngineConfig()):
        ev = real(market, genomes, config)
        rets = ev.returns.copy()
        tail = int(0.2 * rets.shape[1])
        noise = np.random.default_rng(0).normal(0, 1e-3, tail)
        noise -= noise.mean()
        for i, g in enumerate(genomes):
            rets[i, -tail:] = noise + 1e-4 * (3 - g.generation)
        return Evaluation(**{**ev.__dict__, "returns": rets})

    monkeypatch.setattr(evolve_mod, "evaluate", degrading)
    start = random_genomes(12, binance.symbols, seed=1, max_leverage=2.0)
    res = evolve(binance, start, config=GAConfig(generations=15, population=12, patience=2), seed=5)
    assert res.early_stopped and res.stopped_at == 2 and res.best_generation == 0
    assert len(res.history) == 3 and res.validation_bars > 0
    assert all(g.generation == 0 for g in res.population)
    assert res.history[0]["validation_sharpe"] > res.history[2]["validation_sharpe"]
    off = evolve(binance, start, config=GAConfig(generations=4, population=12, patience=0), seed=5)
    assert not off.early_stopped and off.stopped_at == 4 and off.validation_bars == 0
    assert off.history[-1]["validation_sharpe"] is None


def test_inner_validation_tail_stays_inside_the_training_window(binance):
    res = evolve(binance, [], config=GAConfig(generations=2, population=8), seed=2)
    assert res.folds[-1][1] + res.validation_bars == binance.n_trading_bars
    assert len(res.folds) == 3 and res.folds[0][0] == 0
    assert res.trial_returns.shape == (res.trials, binance.n_trading_bars)
    assert len(res.trial_ids) == res.trials == len(set(res.trial_ids))


def test_family_cap_holds_in_population_and_hall_of_fame(binance):
    sma = [Genome("sma_cross", {"fast": f, "slow": 40}, symbols=("ETH_BTC",)).validated() for f in range(3, 13)]
    start = sma + random_genomes(2, binance.symbols, seed=8, max_leverage=2.0)
    cfg = GAConfig(generations=4, population=12, min_per_family=1, max_family_share=0.34, hof_size=12, patience=0)
    cap = cfg.family_cap(12)
    assert cap == 4
    res = evolve(binance, start, config=cfg, seed=6)
    for h in res.history:
        assert max(h["families"].values()) <= cap, h
    assert max(sum(g.family == f for g in res.population) for f in {g.family for g in res.population}) <= cap
    hof_counts: dict[str, int] = {}
    for g, _ in res.hall_of_fame:
        hof_counts[g.family] = hof_counts.get(g.family, 0) + 1
    assert max(hof_counts.values()) <= cfg.family_cap(cfg.hof_size), hof_counts
    # identical parameter sets only once in the population
    keys = [json.dumps([g.family, g.params], sort_keys=True) for g in res.population]
    assert len(set(keys)) == len(keys)
    with pytest.raises(EvolutionError, match="max_family_share"):
        GAConfig(max_family_share=0.0)
    with pytest.raises(EvolutionError, match="aggregate"):
        GAConfig(fold_aggregate="mean")


def test_hall_of_fame_family_cap_unit():
    ranked = [(Genome("sma_cross", {"fast": f, "slow": 50}, symbols=("A_USD",)).validated(),
               {"roi": 0.1 - f / 1000, "sharpe": 5.0 - f / 10, "max_drawdown": 0.01, "trades": 5}) for f in range(2, 12)]
    ranked += [(Genome("rsi_reversion", {"period": p}, symbols=("A_USD",)).validated(),
                {"roi": 0.0, "sharpe": -float(p), "max_drawdown": 0.02, "trades": 4}) for p in range(5, 8)]
    hof = select_hall_of_fame(ranked, size=6, min_per_family=1, max_family_share=0.5)
    fams = [g.family for g, _ in hof]
    assert fams.count("sma_cross") == 3 and fams.count("rsi_reversion") == 3
    assert [g.family for g, _ in select_hall_of_fame(ranked, size=6, min_per_family=1)].count("sma_cross") == 5


def test_family_shares_in_the_knowledge_record():
    from manager.cli.output import fitness_line

    market = load_market(BINANCE, None, "2018-01-12", "2018-01-16", warmup_bars=200)
    split = split_lookback(pd.Timestamp("2018-01-16", tz=UTC), pd.Timedelta(days=2), pd.Timedelta(hours=12))
    res = run_cycle(market, split, ga=GAConfig(generations=2, population=8), seed=3)
    rec = res.knowledge()
    shares = rec["family_shares"]
    for part, genomes in (("population", res.population), ("hall_of_fame", [g for g, _ in res.evolution.hall_of_fame])):
        assert sum(shares[part].values()) == pytest.approx(1.0)
        for fam, share in shares[part].items():
            assert share == pytest.approx(sum(g.family == fam for g in genomes) / len(genomes))
    assert rec["tried"]["stopped_at"] == len(res.evolution.history) - 1
    assert rec["tried"]["best_generation"] <= rec["tried"]["stopped_at"]
    assert len(rec["tried"]["folds"]) == 3 and rec["tried"]["validation_bars"] > 0
    assert rec["settings"]["ga"]["max_family_share"] == 0.5
    json.dumps(rec)  # the record is stored and written as JSON
    line = fitness_line(res)
    assert "family shares" in line and "median Sharpe over 3 folds" in line
