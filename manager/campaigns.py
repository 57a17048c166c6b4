"""Multi-day campaigns: for each day a learning cycle on the lookback before it, then the
cohort trading the day with the evolved agents; candidates ranked on one day and confirmed
on a later holdout day. ``cohortlab campaign`` and the ``cohortlab.run_campaign_day`` task
call these use cases.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from evolution.evolve import GAConfig
from evolution.fitness import evaluate
from evolution.genome import Genome
from learning.cycle import CycleResult, run_cycle
from learning.walkforward import Split, Window
from manager.launch import finished_run, record_cohort_metrics
from manager.runner import CohortRequest, RunAlreadyFinished, run_cohort
from manager.times import RunError, duration, utc
from manager.policy import (DEFAULT_SCOPE, decision_summaries, policy_ceilings, record_decision_metrics,
                            record_policy_day)
from manager.seeding import STORED_KINDS, Seed, SeedError, market_identity, resolve_seed
from risk.policy import PolicyConfig
from manager.store import Store
from simulator import metrics
from simulator.engine import EngineConfig
from simulator.market import MarketData, MarketDataError

from manager.learning_jobs import DAY, Source, persist_cycle, prior_trials, start_population

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
    #: trade each day under the leverage policy's tiers and record its decisions (:mod:`manager.policy`)
    policy: bool = True
    policy_config: PolicyConfig = field(default_factory=PolicyConfig)
    #: the campaign's id (the parent subject is ``parent:<campaign_id>``); None = a new one
    campaign_id: str | None = None


def _deflated(result, cyc: CycleResult | None = None) -> tuple[np.ndarray, dict]:
    """Deflated Sharpe of each agent over the day it traded: the daily candidate
    step picks one of the day's agents, so N = the number of agents it was picked
    from, and V[SR] is the variance (ddof 1) of those agents' per-bar Sharpes on
    the same day (same sample length as the Sharpe deflated); Bailey & López de
    Prado (2014), see :mod:`simulator.metrics.overfitting`. ``cyc`` is unused (kept
    for callers). Returns the ``(agents,)`` DSRs and ``{"n_trials", "var_sr"}``."""
    eng = result.engine
    rets = np.atleast_2d(metrics.bar_returns(eng.equity, eng.allocation_units / 1e8))
    sr = np.atleast_1d(metrics.sharpe_ratio(rets, 1.0))
    n = max(rets.shape[0], 1)
    var = float(np.var(sr, ddof=1)) if n > 1 else 0.0
    return np.atleast_1d(metrics.deflated_sharpe_ratio(rets, n, var)), {"n_trials": n, "var_sr": var}


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
    prior = prior_trials(store, market, split.train.end, source)
    cyc = run_cycle(market, split, mode="daily", start=genomes, ga=replace(req.ga, population=c.agents),
                    engine=c.engine, seed=seed, max_leverage=c.max_leverage, warmup_bars=req.warmup_bars,
                    prior_trials=prior["trials"])
    if store is not None:
        persist_cycle(store, cyc, source, market)
    evolved = cyc.population[: c.agents]
    day_market = market.between(day, day + DAY, req.warmup_bars)
    key = market_identity(market).key
    ceilings = None
    if req.policy and store is not None:  # the tiers known at the day's open, on this market
        ceilings = policy_ceilings(store, key, req.campaign_id or DEFAULT_SCOPE, evolved, as_of=day,
                                   config=req.policy_config)
    rid, result, report = run_cohort(day_market, evolved, f"cycle:{cyc.cycle_id}", c, store,
                                     extra={"campaign_day": day_number, "cycle_id": cyc.cycle_id,
                                            "campaign_id": req.campaign_id},
                                     run_id=run_id, is_final=is_final, ceilings=ceilings)
    policy = None
    if ceilings is not None:
        decisions = record_policy_day(store, key, result, ceilings, period=str(day.date()),
                                      end=(day + DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      source=req.campaign_id or rid, config=req.policy_config)
        record_decision_metrics(decisions)
        parent_doc = next((d for d in decisions if d["subject_kind"] == "parent"), None)
        policy = {**report["policy"], "decisions": decision_summaries(decisions),
                  "parent_next_tier": parent_doc["tier"] if parent_doc else None,
                  "tier_changes": sum(1 for d in decisions if d["previous_tier"] != d["tier"])}
    dsr, deflation = _deflated(result, cyc)
    by_id = dict(zip(result.agent_ids, dsr))
    agents = [{**a, "deflated_sharpe": float(by_id[a["agent_id"]])} for a in report["agents"]]
    return {
        "date": str(day.date()), "run_id": rid, "cycle_id": cyc.cycle_id,
        "train": {"start": str(split.train.start), "end": str(split.train.end)},
        "parent": report["parent"], "agents": agents,
        # the day against chance (manager.baselines.cohort_baselines); None with --baselines 0
        "baselines": report.get("baselines"),
        "in_sample": cyc.in_sample, "out_of_sample": cyc.out_of_sample,
        "generations": cyc.evolution.history[-1]["generation"], "trials": cyc.evolution.trials,
        # issue 10 part 3: where the GA stopped (early stopping) and the family shares of the day's cycle
        "early_stopped": cyc.evolution.early_stopped, "best_generation": cyc.evolution.best_generation,
        "family_shares": cyc.evolution.family_shares(),
        # overfitting of the day's cycle (simulator.metrics.overfitting): PBO by CSCV over its trials,
        # Spearman rho of in- vs out-of-sample Sharpe, N (cycle + lineage + optimize) and effective N;
        # "deflation": the N and V[SR] of the agents' deflated_sharpe (N = agents of the day)
        "pbo": (cyc.pbo or {}).get("pbo"), "rank_correlation": cyc.rank_correlation,
        "n_trials": {**cyc.n_trials, "lineage_cycles": prior["cycles"], "studies": prior["studies"]},
        "deflation": deflation,
        # the leverage policy (None when off): the ceilings the day traded under and the decisions for the next day
        "policy": policy, "hard_stops": report.get("events", []),
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
        seeded = start_population(store, "daily", c.seed_choice(), market, c.max_leverage, seed=c.seed,
                                  as_of=day)  # the day traded: point in time of its cycle and cohort
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
    the evolved agents. At the end, promotion candidates: agents of the
    *ranking day* with at least ``min_trades`` trades and a Deflated Sharpe (N =
    the day's agents) of at least ``dsr_threshold``, ranked by 24-hour ROI, then
    Sharpe; each is then **confirmed on a holdout day** that played no part in
    ranking (:func:`confirm_candidates`): the ranking day is the last day and
    the holdout the day after it when the data has it, else the ranking day is
    day N-1 and the holdout day N (a 1-day campaign without a next day has no
    holdout and says so).

    Raises:
        RunError, MarketDataError: bad input (nothing stored).
    """
    if req.days < 1:
        raise RunError(f"--days {req.days} must be >= 1")
    first = utc(req.start, "start").normalize()
    lookback = duration(req.lookback, "lookback")
    market = req.source.load(first - lookback, first + req.days * DAY, req.warmup_bars)
    c = req.cohort
    if req.campaign_id is None:
        req = replace(req, campaign_id=f"camp-{uuid.uuid4().hex[:12]}")
    if req.policy:
        progress(f"campaign {req.campaign_id}: leverage policy on (parent subject parent:{req.campaign_id})")
    try:
        seeded = resolve_seed(c.seed_choice(), market, c.agents, seed=c.seed, max_leverage=c.max_leverage,
                              store=store, as_of=first, kinds=STORED_KINDS["daily"])  # Day 1's point in time
    except SeedError as exc:
        raise RunError(str(exc)) from None
    genomes, source = seeded.genomes, seeded.seeded_from
    progress(f"day 1 starts from {seeded.note}")
    days, last, evolved_by_day = [], [], []
    for d in range(req.days):
        day = first + d * DAY
        progress(f"day {d + 1}/{req.days} {day.date()}: learning cycle, then the cohort")
        report, cyc = campaign_day(req, market, day, genomes, source, store, seed=c.seed * 1000 + d,
                                   day_number=d + 1)
        days.append(report)
        genomes, source, last = cyc.population[: c.agents], f"cycle:{cyc.cycle_id}", report["agents"]
        evolved_by_day.append(report["agents"])
    hold_day = first + req.days * DAY
    try:  # the day after the campaign, never seen by any cycle nor by the ranking
        hold_market = req.source.load(hold_day, hold_day + DAY, req.warmup_bars).between(
            hold_day, hold_day + DAY, req.warmup_bars)
        ranked_on = days[-1]["date"]
    except MarketDataError:
        hold_market = None
        if req.days >= 2:  # rank on day N-1, confirm on day N
            hold_day, last = first + (req.days - 1) * DAY, evolved_by_day[-2]
            hold_market = market.between(hold_day, hold_day + DAY, req.warmup_bars)
            ranked_on = days[-2]["date"]
        else:
            ranked_on = days[-1]["date"]
    candidates = [
        {"agent_id": a["agent_id"], "genome": a["genome"], "roi_24h": a["roi"], "sharpe_24h": a["sharpe"],
         "trades": a["trades"], "deflated_sharpe": a["deflated_sharpe"]}
        for a in last
        if a["trades"] >= req.min_trades and a["deflated_sharpe"] >= req.dsr_threshold
    ]
    candidates.sort(key=lambda x: (-x["roi_24h"], -x["sharpe_24h"], x["agent_id"]))
    holdout = confirm_candidates(candidates, hold_market, c.engine, ranked_on=ranked_on,
                                 holdout_date=str(hold_day.date()) if hold_market is not None else None)
    report = {
        "days": days,
        "candidates": candidates,
        "holdout": holdout,
        "rule": {"min_trades": req.min_trades, "deflated_sharpe_min": req.dsr_threshold,
                 "rank_by": ["roi_24h", "sharpe_24h"], "ranked_on": ranked_on,
                 "confirmed_on": holdout["date"], "confirmed_if": "holdout ROI > 0 with >= 1 trade"},
        "campaign_id": req.campaign_id, "policy": req.policy_config.to_dict() if req.policy else None,
        "data": market.label(), "quote": market.quote, "seed": c.seed, "lookback": req.lookback,
        "seeded_from": seeded.seeded_from, "seeding_note": seeded.note,
    }
    if store is not None:  # the campaign itself (manager.promotions reviews it from the store)
        store.save_campaign({
            "campaign_id": req.campaign_id, "market": market_identity(market).key, "report": report,
            "run_ids": [d["run_id"] for d in days],
            "source": {"data": req.source.data, "symbols": req.source.symbols, "quote": req.source.quote,
                       "seed": req.source.seed},
            "warmup_bars": req.warmup_bars, "bankroll": c.bankroll,
        })
    return report


def confirm_candidates(candidates: list[dict], hold: MarketData | None, engine: EngineConfig, *,
                       ranked_on: str, holdout_date: str | None) -> dict:
    """Re-simulate each candidate **alone** (its own allocation, the parent's
    aggregate ceilings lifted: :func:`evolution.fitness.evaluate`) on the holdout
    day ``hold`` and add its figures to the candidate in place:
    ``holdout {"roi", "sharpe", "max_drawdown", "trades"}`` (fractions; Sharpe
    annualised) and ``confirmed`` (holdout ROI > 0 with at least one trade).
    Ranking on one window and confirming on a later one that played no part in
    the ranking is the hold-out discipline of Bailey et al. (2015, section 1)
    and López de Prado (2018, AFML ch. 11-12).

    Returns:
        ``{"date": holdout day or None, "ranked_on": ranking day, "confirmed": n,
        "note": str}``; with no holdout bars every candidate gets
        ``holdout: None, confirmed: None``.
    """
    if hold is None or not candidates:
        for x in candidates:
            x["holdout"], x["confirmed"] = None, None
        note = ("no holdout day: the data ends with the campaign's only day" if hold is None
                else "no candidate to confirm")
        return {"date": holdout_date, "ranked_on": ranked_on, "confirmed": 0, "note": note}
    ev = evaluate(hold, [Genome.from_dict(x["genome"]) for x in candidates], engine)
    for i, x in enumerate(candidates):
        x["holdout"] = ev.row(i)
        x["confirmed"] = bool(ev.roi[i] > 0 and ev.trades[i] >= 1)
    n = sum(1 for x in candidates if x["confirmed"])
    return {"date": holdout_date, "ranked_on": ranked_on, "confirmed": n,
            "note": f"ranked on {ranked_on}, re-simulated alone on {holdout_date} (not used for ranking)"}
