"""Bayesian searches over the learning loop's settings (``cohortlab optimize``): the GA's
hyper-parameters against an objective that does not reward idleness, with a final holdout,
or one strategy family's parameters; trials persist in the store.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import field, replace
from typing import Callable

import numpy as np
import pandas as pd

from evolution.evolve import GAConfig
from evolution.fitness import evaluate
from evolution.genome import Genome
from learning.cycle import CycleResult, run_cycle
from learning.search import SearchResult, family_space, ga_space, run_search
from learning.walkforward import Split, Window
from manager.times import RunError, duration, utc
from manager.seeding import market_identity
from manager.store import Store, StudyMismatch
from simulator.engine import EngineConfig
from simulator.market import MarketData
from simulator.strategies.registry import get_strategy

from manager.learning_jobs import Source

def _study_name(kind: str, label: str, t0: pd.Timestamp, t1: pd.Timestamp, *more: str) -> str:
    """Default study name: kind, window, and a short hash of the data source and
    the rest (``family:rsi_reversion:20180112T0000-20180115T0000:3f2a9c1b``)."""
    digest = hashlib.sha1("|".join((label, *more)).encode()).hexdigest()[:8]
    return f"{kind}:{t0:%Y%m%dT%H%M}-{t1:%Y%m%dT%H%M}:{digest}"


#: genomes of a cycle's ranking whose out-of-sample Sharpe the GA tuning objective averages
OPTIMIZE_TOP_K = 5
#: annualised Sharpe counted for a top-k genome that made no out-of-sample trade
IDLE_PENALTY_SHARPE = 10.0


def selection_objective(cyc: CycleResult, k: int = OPTIMIZE_TOP_K) -> float:
    """The GA tuning objective (maximised): the mean out-of-sample annualised
    Sharpe of the first ``k`` genomes of the cycle's ranking (in-sample Deflated
    Sharpe: the genomes the loop would field or promote), a genome without an
    out-of-sample trade counting ``-IDLE_PENALTY_SHARPE``. The population median
    it replaces is 0 whenever most genomes sit idle, which rewards idleness;
    scoring what selection picks, out of sample, is the CSCV view of Bailey et
    al. (2015)."""
    rows = [r["out_of_sample"] for r in cyc.table[:max(int(k), 1)]]
    if not rows:
        return -IDLE_PENALTY_SHARPE
    return float(np.mean([r["sharpe"] if r["trades"] >= 1 else -IDLE_PENALTY_SHARPE for r in rows]))


def study_window(store: Store, name: str, market: MarketData, train_start: pd.Timestamp,
                 train_end: pd.Timestamp, *, default: str) -> None:
    """Record (or check) the market and training window of search study ``name``
    before its trials are reused (the point-in-time rule, :mod:`manager.seeding`).

    The study meta keeps ``market`` (the market key), ``train_start`` and
    ``train_end`` (ISO 8601 UTC: the first and the end of all data its trials'
    objective used). A default study name encodes its window and data already
    (:func:`_study_name`); a ``--study`` name does not, so a study's stored trials
    are only replayed when its recorded window and market equal this search's.

    Args:
        store: where the study lives.
        name: the study name.
        market: the bars searched (its market key is recorded).
        train_start: first moment of the data the trials use (UTC).
        train_end: end of the data the trials' objective uses (UTC).
        default: the default study name of this search (its window encoded in it).

    Raises:
        RunError: the study was recorded with another window or market, or it
            holds trials of an unrecorded window under a name that is not this
            search's default; nothing is changed.
    """
    meta = {"market": market_identity(market).key, "train_start": train_start.isoformat(),
            "train_end": train_end.isoformat()}
    stored = store.get_study_meta(name)
    if stored is None and name != default and store.list_trials(name):
        raise RunError(f"study {name!r} holds trials whose training window was never recorded; its trials are "
                       f"not reused for a search on {meta['market']} [{train_start}, {train_end}): "
                       "use another --study name")
    try:
        store.save_study_meta(name, meta)
    except StudyMismatch as exc:
        raise RunError(f"study {name!r} was searched on another market or training window, so its trials "
                       f"are not reused ({exc}); use another --study name") from None


def optimize_ga(source: Source, *, end: str | None, validation: str, study: str | None, trials: int,
                generations: int, population: int, seed: int, engine: EngineConfig, store: Store,
                max_lookback_hours: int = 72, warmup_bars: int = 200, holdout: str | None = None,
                progress: Callable[[dict], None] | None = None) -> SearchResult:
    """Tune the GA's hyper-parameters (cxpb, mutpb, tournament size, lookback)
    against :func:`selection_objective` on a tuning window, then report the best
    set on a final **holdout** window no trial saw.

    Windows (``holdout`` defaults to the ``validation`` length)::

        ... training (lookback) | tuning validation | holdout | end

    Every trial trains on the lookback before the tuning validation window and
    is scored on it; the best set is re-run once trained on the lookback
    before the holdout and scored on the holdout. The holdout figures are in
    ``result.best["holdout"]`` (``{"window", "objective", "in_sample",
    "out_of_sample"}``); each trial records ``genomes_tried`` (the distinct
    genomes its cycle evaluated: the trial count that the Deflated Sharpe of
    later cycles on this market adds; :func:`prior_trials`).
    """
    val = duration(validation, "validation")
    hold = duration(holdout, "holdout") if holdout else val
    end_ts = utc(end, "end") if end else source.last_bar_end()
    h_start = end_ts - hold
    v_start = h_start - val
    market = source.load(v_start - pd.Timedelta(hours=max_lookback_hours), end_ts, warmup_bars)
    name = study or _study_name("ga", market.label(), v_start, h_start, "top-k")
    study_window(store, name, market, v_start - pd.Timedelta(hours=max_lookback_hours), h_start,
                 default=_study_name("ga", market.label(), v_start, h_start, "top-k"))

    def ga_of(p: dict) -> GAConfig:
        cx, mu = p["cxpb"], p["mutpb"]
        if cx + mu > 1.0:
            cx, mu = cx / (cx + mu), mu / (cx + mu)
        return GAConfig(generations=generations, population=population, cxpb=cx, mutpb=mu,
                        tournsize=int(p["tournsize"]))

    def objective(p: dict) -> tuple[float, dict]:
        split = Split(Window(v_start - pd.Timedelta(hours=p["lookback_hours"]), v_start), Window(v_start, h_start))
        cyc = run_cycle(market, split, start=[], ga=ga_of(p), engine=engine, seed=seed, warmup_bars=warmup_bars)
        return -selection_objective(cyc), {"in_sample": cyc.in_sample, "out_of_sample": cyc.out_of_sample,
                                           "genomes_tried": cyc.evolution.trials}

    res = run_search(name, ga_space(max_lookback_hours), objective, log=store, n_trials=trials, seed=seed,
                     progress=progress)
    p = res.best["params"]
    split = Split(Window(h_start - pd.Timedelta(hours=p["lookback_hours"]), h_start), Window(h_start, end_ts))
    cyc = run_cycle(market, split, start=[], ga=ga_of(p), engine=engine, seed=seed, warmup_bars=warmup_bars)
    res.best = {**res.best, "holdout": {"window": {"start": str(h_start), "end": str(end_ts)},
                                        "objective": selection_objective(cyc), "in_sample": cyc.in_sample,
                                        "out_of_sample": cyc.out_of_sample}}
    return res


def optimize_family(source: Source, family: str, *, start: str, end: str, validation: str,
                    study: str | None, trials: int, seed: int, engine: EngineConfig, store: Store,
                    symbols: list[str] | None = None, warmup_bars: int = 200, min_trades: int = 2,
                    progress: Callable[[dict], None] | None = None) -> tuple[SearchResult, dict]:
    """Tune one family's parameters: minimise −Sharpe on ``[start, end)`` (sets
    with fewer than ``min_trades`` trades score −100); the best parameters are then
    scored out of sample on the ``validation`` window after ``end``. Returns the
    search and the best set's in- and out-of-sample rows."""
    strat = get_strategy(family)
    t0, t1 = utc(start, "train-start"), utc(end, "train-end")
    val = duration(validation, "validation")
    market = source.load(t0, t1 + val, warmup_bars)
    train = market.between(t0, t1, warmup_bars)
    valid = market.between(t1, t1 + val, warmup_bars)
    syms = tuple(symbols or market.symbols)
    name = study or _study_name(f"family:{family}", market.label(), t0, t1, ",".join(syms))
    study_window(store, name, market, t0, t1,
                 default=_study_name(f"family:{family}", market.label(), t0, t1, ",".join(syms)))

    def genome(p: dict) -> Genome:
        return Genome(family, strat.repair(dict(p)), symbols=syms).validated(symbols=market.symbols)

    def objective(p: dict) -> tuple[float, dict]:
        ev = evaluate(train, [genome(p)], engine)
        # a parameter set that hardly trades gets the GA's worst Sharpe (-100)
        return -ev.objectives(0, min_trades)[1], {"in_sample": ev.row(0)}

    res = run_search(name, family_space(strat), objective, log=store, n_trials=trials, seed=seed,
                     progress=progress)
    best = genome(res.best["params"])
    oos = evaluate(valid, [best], engine).row(0)
    return res, {"genome": best.to_dict(), "in_sample": res.best["in_sample"], "out_of_sample": oos}
