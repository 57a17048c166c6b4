"""Orchestration of the learning loop: load bars, run learning cycles,
Bayesian searches and multi-day campaigns, and persist what they produce
(population, hall of fame, knowledge record, search trials, cohort runs).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from evolution.evolve import GAConfig
from evolution.fitness import evaluate
from evolution.genome import Genome
from learning.cycle import CycleResult, run_cycle
from learning.search import SearchResult, family_space, ga_space, run_search
from learning.walkforward import Split, Window, split_lookback
from manager.launch import finished_run, record_cohort_metrics
from manager.runner import CohortRequest, RunAlreadyFinished, run_cohort
from manager.times import RunError, duration, utc
from manager.seeding import STORED_KINDS, Seed, SeedError, market_identity, resolve_seed
from manager.store import Store
from simulator import metrics
from simulator.data import data_dir_default, load_market
from simulator.engine import EngineConfig
from simulator.market import MarketData
from simulator.strategies.registry import get_strategy
from simulator.synthetic import synthetic_market

DAY = pd.Timedelta(days=1)


@dataclass
class Source:
    """Where bars come from: a folder (None = ``./data`` if populated, else the
    SYNTHETIC market seeded with ``seed``), symbols, quote currency."""

    data: str | None = None
    symbols: list[str] | None = None
    quote: str | None = None
    seed: int = 0

    def load(self, start: pd.Timestamp, end: pd.Timestamp, warmup_bars: int) -> MarketData:
        """Bars in ``[start, end)`` plus ``warmup_bars`` of history.

        Raises:
            MarketDataError: bad folder/files or no bars in the span.
        """
        folder = Path(self.data) if self.data else data_dir_default()
        if folder is None:
            bars = int((end - start).total_seconds() // 300)
            kwargs = {"symbols": tuple(self.symbols)} if self.symbols else {}
            return synthetic_market(start=start, bars=max(bars, 1), seed=self.seed, warmup_bars=warmup_bars,
                                    **kwargs)
        return load_market(folder, self.symbols, start, end, warmup_bars=warmup_bars, quote=self.quote)

    def last_bar_end(self) -> pd.Timestamp:
        """End of the data (open of the last bar + one bar); for SYNTHETIC a fixed day."""
        folder = Path(self.data) if self.data else data_dir_default()
        if folder is None:
            return pd.Timestamp("2024-01-08", tz="UTC")
        m = load_market(folder, self.symbols, quote=self.quote)
        return pd.Timestamp(m.timestamps[-1], tz="UTC") + pd.Timedelta(seconds=m.timeframe_s)


def start_population(store: Store | None, mode: str, seed_from: str | None, market: MarketData,
                     max_leverage: float, *, seed: int = 0) -> Seed:
    """The population a cycle starts from, by ``seed_from`` (:func:`manager.seeding.resolve_seed`).
    ``latest`` looks only at what was bred on this same market: in intraday mode
    first the genomes of its latest completed cohort run (the current cohort),
    then its latest population of this mode, of any mode, then its hall of fame;
    else no genomes (the cycle starts from random ones).

    Raises:
        RunError: an unknown run id or a run of another market.
        GenomeError: a genomes file invalid for this market.
    """
    try:
        return resolve_seed(seed_from, market, None, seed=seed, max_leverage=max_leverage, store=store,
                            kinds=STORED_KINDS.get(mode, STORED_KINDS["daily"]))
    except SeedError as exc:
        raise RunError(str(exc)) from None


def persist_cycle(store: Store, result: CycleResult, source: str, market: MarketData) -> str:
    """Store the cycle's population, hall of fame and knowledge record, each
    tagged with the market key of ``market`` (the bars it was bred on; see
    :mod:`manager.seeding`); returns the stored cycle id (suffixed when the same
    cycle was stored before)."""
    cid = result.cycle_id
    n = 1
    while True:
        try:
            store.get_population(cid)
        except Exception:  # not found -> free
            break
        n += 1
        cid = f"{result.cycle_id}-{n}"
    result.cycle_id = cid
    key = market_identity(market).key
    store.save_population(cid, [g.to_dict() for g in result.population],
                          {"mode": result.mode, "market": key, "train": str(result.split.train),
                           "validation": str(result.split.validation), "start": source})
    store.save_hall_of_fame([g.to_dict() for g, _ in result.evolution.hall_of_fame], source=cid, market=key)
    store.save_knowledge({**result.knowledge(), "started_from": source})
    return cid


@dataclass
class CycleRequest:
    """One learning cycle (``cohortlab learn`` / ``cohortlab evolve``)."""

    source: Source = field(default_factory=Source)
    mode: str = "daily"
    split: Split | None = None
    end: str | None = None
    lookback: str = "3d"
    validation: str | None = None
    ga: GAConfig = field(default_factory=GAConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    seed: int = 7
    max_leverage: float = 2.0
    warmup_bars: int = 200
    genomes_path: str | None = None
    seed_from: str = "latest"


def resolve_split(req: CycleRequest) -> Split:
    """The cycle's windows: ``req.split`` if given, else the lookback ending at
    ``--end`` (default: end of the data) with a validation tail (default: 1 day
    for daily, a quarter of the lookback for intraday).

    Raises:
        RunError: bad durations or windows.
    """
    if req.split is not None:
        return req.split
    end = utc(req.end, "end") if req.end else req.source.last_bar_end()
    lookback = duration(req.lookback, "lookback")
    if req.validation:
        val = duration(req.validation, "validation")
    else:
        val = DAY if req.mode == "daily" and lookback > DAY else lookback / 4
    try:
        return split_lookback(end, lookback, val)
    except ValueError as exc:
        raise RunError(str(exc)) from None


def learning_cycle(req: CycleRequest, store: Store | None,
                   progress: Callable[[int, dict], None] | None = None) -> CycleResult:
    """Run one learning cycle and persist it (population, hall of fame, knowledge).

    Raises:
        RunError, MarketDataError, CycleError, EvolutionError: bad input.
    """
    t0 = time.perf_counter()
    split = resolve_split(req)
    market = req.source.load(split.train.start, split.validation.end, req.warmup_bars)
    seeded = start_population(store, req.mode, req.genomes_path or req.seed_from, market, req.max_leverage,
                              seed=req.seed)
    result = run_cycle(market, split, mode=req.mode, start=seeded.genomes, ga=req.ga, engine=req.engine,
                       seed=req.seed, max_leverage=req.max_leverage, warmup_bars=req.warmup_bars, progress=progress)
    result.seeded_from, result.seeding_note = seeded.seeded_from, seeded.note
    if store is not None:
        persist_cycle(store, result, seeded.seeded_from, market)
    record_cycle_metrics(req.mode, time.perf_counter() - t0)
    return result


def record_cycle_metrics(mode: str, seconds: float) -> None:
    """Record a learning cycle's wall time in the Prometheus metrics (no-op without prometheus-client)."""
    try:
        from manager import metrics
    except ImportError:  # the base install has no prometheus-client: nothing to export to
        return
    metrics.LEARNING_CYCLE.labels(mode=mode).observe(seconds)


# --------------------------------------------------------------------------- campaigns


@dataclass
class CampaignRequest:
    """``cohortlab campaign``: Day 1..N, each a learning cycle then a cohort."""

    source: Source = field(default_factory=Source)
    start: str = "2018-01-15"
    days: int = 3
    lookback: str = "3d"
    cohort: CohortRequest = field(default_factory=CohortRequest)
    ga: GAConfig = field(default_factory=lambda: GAConfig(generations=20))
    warmup_bars: int = 200
    min_trades: int = 3
    dsr_threshold: float = 0.5


def _deflated(result, cyc: CycleResult) -> np.ndarray:
    eng = result.engine
    rets = metrics.bar_returns(eng.equity, eng.allocation_units / 1e8)
    return np.atleast_1d(metrics.deflated_sharpe_ratio(rets, max(cyc.evolution.trials, 1), cyc.var_trial_sharpe))


def campaign_day(req: CampaignRequest, market: MarketData, day: pd.Timestamp, genomes: list[Genome],
                 source: str, store: Store | None, *, seed: int, day_number: int = 1, run_id: str | None = None,
                 is_final: Callable[[BaseException], bool] = lambda exc: True) -> tuple[dict, CycleResult]:
    """One campaign day: a daily learning cycle trained on ``[day - lookback, day)``
    and scored out of sample on the day, then the cohort trades the day with the
    evolved agents (run id ``run_id`` if given; see :func:`manager.runner.run_cohort`).

    Returns:
        ``(day report, cycle result)``.
    """
    c = req.cohort
    lookback = duration(req.lookback, "lookback")
    split = Split(Window(day - lookback, day), Window(day, day + DAY))
    cyc = run_cycle(market, split, mode="daily", start=genomes, ga=replace(req.ga, population=c.agents),
                    engine=c.engine, seed=seed, max_leverage=c.max_leverage, warmup_bars=req.warmup_bars)
    if store is not None:
        persist_cycle(store, cyc, source, market)
    evolved = cyc.population[: c.agents]
    day_market = market.between(day, day + DAY, req.warmup_bars)
    rid, result, report = run_cohort(day_market, evolved, f"cycle:{cyc.cycle_id}", c, store,
                                     extra={"campaign_day": day_number, "cycle_id": cyc.cycle_id},
                                     run_id=run_id, is_final=is_final)
    by_id = dict(zip(result.agent_ids, _deflated(result, cyc)))
    agents = [{**a, "deflated_sharpe": float(by_id[a["agent_id"]])} for a in report["agents"]]
    return {
        "date": str(day.date()), "run_id": rid, "cycle_id": cyc.cycle_id,
        "train": {"start": str(split.train.start), "end": str(split.train.end)},
        "parent": report["parent"], "agents": agents,
        "in_sample": cyc.in_sample, "out_of_sample": cyc.out_of_sample,
        "generations": cyc.evolution.history[-1]["generation"], "trials": cyc.evolution.trials,
    }, cyc


def execute_campaign_day(req: CampaignRequest, store: Store, *, run_id: str, day_number: int = 1,
                         genomes: list[dict] | None = None,
                         is_final: Callable[[BaseException], bool] = lambda exc: True) -> dict:
    """Execute one campaign day under ``run_id`` (what the Celery task wraps):
    the finished-run guard, the bars of the lookback and the day, the starting
    population (``genomes`` dicts, else per ``req.cohort``'s ``--seed-from``),
    :func:`campaign_day`, and the cohort's metrics.

    Args:
        req: the campaign; ``req.start`` is the day traded.
        store: where the cycle and the day's run are stored.
        run_id: the day's cohort run id (idempotency key).
        day_number: 1-based day of the campaign.
        genomes: the population to start from (None = seeded from the store).
        is_final: see :func:`manager.runner.run_cohort`.

    Returns:
        The day report of :func:`campaign_day`.

    Raises:
        RunAlreadyFinished: ``run_id`` is already completed or failed.
        RunError, MarketDataError: bad input (nothing stored).
    """
    done = finished_run(store, run_id)
    if done is not None:
        raise RunAlreadyFinished(done)
    c = req.cohort
    day = utc(req.start, "start").normalize()
    market = req.source.load(day - duration(req.lookback, "lookback"), day + DAY, req.warmup_bars)
    if genomes:
        start, source = [Genome.from_dict(g) for g in genomes], "task"
    else:
        seeded = start_population(store, "daily", c.seed_choice(), market, c.max_leverage, seed=c.seed)
        start, source = seeded.genomes, seeded.seeded_from
    t0 = time.perf_counter()
    report, _ = campaign_day(req, market, day, start, source, store, seed=c.seed * 1000 + day_number,
                             day_number=day_number, run_id=run_id, is_final=is_final)
    record_cohort_metrics(time.perf_counter() - t0, report["parent"])
    return report


def run_campaign(req: CampaignRequest, store: Store | None,
                 progress: Callable[[str], None] = lambda msg: None) -> dict:
    """Run a campaign and return its report (the ``--json`` document).

    For each day d: a daily learning cycle trained on ``[d - lookback, d)``, its
    population scored out of sample on day d, then the cohort trades day d with
    the evolved agents. At the end, promotion candidates from the last day:
    agents with at least ``min_trades`` trades and a Deflated Sharpe (given all
    trials of the last cycle) of at least ``dsr_threshold``, ranked by 24-hour
    ROI, then Sharpe.

    Raises:
        RunError, MarketDataError: bad input (nothing stored).
    """
    if req.days < 1:
        raise RunError(f"--days {req.days} must be >= 1")
    first = utc(req.start, "start").normalize()
    lookback = duration(req.lookback, "lookback")
    market = req.source.load(first - lookback, first + req.days * DAY, req.warmup_bars)
    c = req.cohort
    try:
        seeded = resolve_seed(c.seed_choice(), market, c.agents, seed=c.seed, max_leverage=c.max_leverage,
                              store=store, kinds=STORED_KINDS["daily"])
    except SeedError as exc:
        raise RunError(str(exc)) from None
    genomes, source = seeded.genomes, seeded.seeded_from
    progress(f"day 1 starts from {seeded.note}")
    days, last = [], []
    for d in range(req.days):
        day = first + d * DAY
        progress(f"day {d + 1}/{req.days} {day.date()}: learning cycle, then the cohort")
        report, cyc = campaign_day(req, market, day, genomes, source, store, seed=c.seed * 1000 + d,
                                   day_number=d + 1)
        days.append(report)
        genomes, source, last = cyc.population[: c.agents], f"cycle:{cyc.cycle_id}", report["agents"]
    candidates = [
        {"agent_id": a["agent_id"], "genome": a["genome"], "roi_24h": a["roi"], "sharpe_24h": a["sharpe"],
         "trades": a["trades"], "deflated_sharpe": a["deflated_sharpe"]}
        for a in last
        if a["trades"] >= req.min_trades and a["deflated_sharpe"] >= req.dsr_threshold
    ]
    candidates.sort(key=lambda x: (-x["roi_24h"], -x["sharpe_24h"], x["agent_id"]))
    return {
        "days": days,
        "candidates": candidates,
        "rule": {"min_trades": req.min_trades, "deflated_sharpe_min": req.dsr_threshold,
                 "rank_by": ["roi_24h", "sharpe_24h"]},
        "data": market.label(), "quote": market.quote, "seed": c.seed, "lookback": req.lookback,
        "seeded_from": seeded.seeded_from, "seeding_note": seeded.note,
    }


# --------------------------------------------------------------------------- searches


def _study_name(kind: str, label: str, t0: pd.Timestamp, t1: pd.Timestamp, *more: str) -> str:
    """Default study name: kind, window, and a short hash of the data source and
    the rest (``family:rsi_reversion:20180112T0000-20180115T0000:3f2a9c1b``)."""
    digest = hashlib.sha1("|".join((label, *more)).encode()).hexdigest()[:8]
    return f"{kind}:{t0:%Y%m%dT%H%M}-{t1:%Y%m%dT%H%M}:{digest}"


def optimize_ga(source: Source, *, end: str | None, validation: str, study: str | None, trials: int,
                generations: int, population: int, seed: int, engine: EngineConfig, store: Store,
                max_lookback_hours: int = 72, warmup_bars: int = 200,
                progress: Callable[[dict], None] | None = None) -> SearchResult:
    """Tune the GA's hyper-parameters (cxpb, mutpb, tournament size, lookback)
    against the out-of-sample median Sharpe of the evolved population on the
    validation window ending at ``end``; trials persist in the store."""
    val = duration(validation, "validation")
    end_ts = utc(end, "end") if end else source.last_bar_end()
    v_start = end_ts - val
    market = source.load(v_start - pd.Timedelta(hours=max_lookback_hours), end_ts, warmup_bars)
    name = study or _study_name("ga", market.label(), v_start, end_ts)

    def objective(p: dict) -> tuple[float, dict]:
        cx, mu = p["cxpb"], p["mutpb"]
        if cx + mu > 1.0:
            cx, mu = cx / (cx + mu), mu / (cx + mu)
        split = Split(Window(v_start - pd.Timedelta(hours=p["lookback_hours"]), v_start), Window(v_start, end_ts))
        ga = GAConfig(generations=generations, population=population, cxpb=cx, mutpb=mu,
                      tournsize=int(p["tournsize"]))
        cyc = run_cycle(market, split, start=[], ga=ga, engine=engine, seed=seed, warmup_bars=warmup_bars)
        return -cyc.out_of_sample["median_sharpe"], {"in_sample": cyc.in_sample,
                                                      "out_of_sample": cyc.out_of_sample}

    return run_search(name, ga_space(max_lookback_hours), objective, log=store, n_trials=trials, seed=seed,
                      progress=progress)


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
