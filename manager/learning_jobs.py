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
from manager.store import Store, StudyMismatch
from simulator import metrics
from simulator.data import data_dir_default, load_market
from simulator.engine import EngineConfig
from simulator.market import MarketData, MarketDataError
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
                     max_leverage: float, *, seed: int = 0, as_of: pd.Timestamp) -> Seed:
    """The population a cycle starts from, by ``seed_from`` (:func:`manager.seeding.resolve_seed`).
    ``latest`` looks only at what was bred on this same market on data that
    ended by ``as_of`` (the point-in-time rule): in intraday mode first the
    genomes of its latest completed cohort run (the current cohort), then its
    latest population of this mode, of any mode, then its hall of fame; else no
    genomes (the cycle starts from random ones).

    Args:
        as_of: the cycle's point in time: the end of its training window (the
            start of its out-of-sample window); see :mod:`manager.seeding`.

    Raises:
        RunError: an unknown run id or a run of another market.
        GenomeError: a genomes file invalid for this market.
    """
    try:
        return resolve_seed(seed_from, market, None, seed=seed, max_leverage=max_leverage, store=store,
                            as_of=as_of, kinds=STORED_KINDS.get(mode, STORED_KINDS["daily"]))
    except SeedError as exc:
        raise RunError(str(exc)) from None


def persist_cycle(store: Store, result: CycleResult, source: str, market: MarketData) -> str:
    """Store the cycle's population, hall of fame and knowledge record, each
    tagged with the market key of ``market`` (the bars it was bred on) and the
    cycle's training window ``train_start`` / ``train_end`` (ISO 8601 UTC; the
    knowledge record also ``data_end``, its out-of-sample window's end), which
    the point-in-time rule of :mod:`manager.seeding` filters on; returns the
    stored cycle id (suffixed when the same cycle was stored before)."""
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
    window = {"train_start": result.split.train.start.isoformat(), "train_end": result.split.train.end.isoformat()}
    store.save_population(cid, [g.to_dict() for g in result.population],
                          {"mode": result.mode, "market": key, "train": str(result.split.train),
                           "validation": str(result.split.validation), "start": source, **window})
    store.save_hall_of_fame([g.to_dict() for g, _ in result.evolution.hall_of_fame], source=cid, market=key,
                            **window)
    store.save_knowledge({"market": key, **result.knowledge(), "started_from": source, **window,
                          "data_end": result.split.validation.end.isoformat()})
    return cid


def _ts(value) -> pd.Timestamp | None:
    try:
        return utc(str(value), "time") if value else None
    except Exception:  # an unparseable stored time: treated as unknown
        return None


def prior_trials(store: Store | None, market: MarketData, trained_by: pd.Timestamp, seeded_from: str) -> dict:
    """Trials made before a cycle that could have been selected into it: the N
    the cycle's Deflated Sharpe adds to its own trials (Bailey & López de Prado
    2014; the rule is documented in :mod:`simulator.metrics.overfitting`).

    Counted, on the **same market** (:func:`manager.seeding.market_identity`
    key) and only from artefacts whose data ended at or before ``trained_by``
    (a knowledge record's ``data_end``, else its validation end, else its
    training end; a study's meta ``train_end``):

    * the **lineage**: the cycle named by ``seeded_from``
      (``population:<cycle_id>`` or ``cycle:<cycle_id>``, ``+random`` ignored),
      its own ``tried.trials`` (distinct genomes), then the cycle that seeded
      it, and so on (each counted once); ``hall_of_fame`` seeds count every
      eligible cycle on the market (the hall of fame keeps the best of all of
      them); ``random``, ``file``, ``run:``/``cohort:`` seeds end the walk;
    * every **optimize** study on the market: the distinct genomes its trials
      evaluated (a trial's ``genomes_tried``, else 1 per trial).

    Records without a market or a window (stored before they were recorded)
    are never counted: their market and time cannot be checked.

    Returns:
        ``{"trials": int, "cycles": [cycle ids], "studies": [study names]}``.
    """
    out: dict = {"trials": 0, "cycles": [], "studies": []}
    if store is None:
        return out
    key = market_identity(market).key
    eligible: dict[str, dict] = {}
    before = None
    while True:
        try:
            page = store.list_knowledge(limit=200, before=before)
        except Exception:  # a store without knowledge support: nothing counted
            break
        for rec in page:
            v = rec.get("validation") or {}
            end = _ts(rec.get("data_end") or v.get("end") or rec.get("train_end") or (rec.get("train") or {}).get("end"))
            if rec.get("market") == key and end is not None and end <= trained_by:
                eligible[rec["cycle_id"]] = rec
        if len(page) < 200:
            break
        before = page[-1]["cycle_id"]
    seed = (seeded_from or "").split("+")[0]
    chain: list[str] = []
    if seed.startswith("hall_of_fame"):
        chain = list(eligible)
    else:
        seen: set[str] = set()
        while seed.split(":")[0] in ("population", "cycle"):
            cid = seed.split(":", 1)[1]
            if cid in seen or cid not in eligible:
                break
            seen.add(cid)
            chain.append(cid)
            seed = str(eligible[cid].get("started_from") or "").split("+")[0]
            if seed.startswith("hall_of_fame"):
                chain += [c for c in eligible if c not in seen]
                break
    for cid in dict.fromkeys(chain):
        out["trials"] += int((eligible[cid].get("tried") or {}).get("trials") or 0)
        out["cycles"].append(cid)
    try:
        studies = store.list_studies()
    except Exception:
        studies = []
    for st in studies:
        meta = st.get("meta") or {}
        end = _ts(meta.get("train_end"))
        if meta.get("market") != key or end is None or end > trained_by:
            continue
        out["trials"] += sum(int(t.get("genomes_tried") or 1) for t in store.list_trials(st["study"]))
        out["studies"].append(st["study"])
    return out


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
                              seed=req.seed, as_of=split.train.end)
    prior = prior_trials(store, market, split.train.end, seeded.seeded_from)
    result = run_cycle(market, split, mode=req.mode, start=seeded.genomes, ga=req.ga, engine=req.engine,
                       seed=req.seed, max_leverage=req.max_leverage, warmup_bars=req.warmup_bars, progress=progress,
                       prior_trials=prior["trials"])
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
    rid, result, report = run_cohort(day_market, evolved, f"cycle:{cyc.cycle_id}", c, store,
                                     extra={"campaign_day": day_number, "cycle_id": cyc.cycle_id},
                                     run_id=run_id, is_final=is_final)
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
    return {
        "days": days,
        "candidates": candidates,
        "holdout": holdout,
        "rule": {"min_trades": req.min_trades, "deflated_sharpe_min": req.dsr_threshold,
                 "rank_by": ["roi_24h", "sharpe_24h"], "ranked_on": ranked_on,
                 "confirmed_on": holdout["date"], "confirmed_if": "holdout ROI > 0 with >= 1 trade"},
        "data": market.label(), "quote": market.quote, "seed": c.seed, "lookback": req.lookback,
        "seeded_from": seeded.seeded_from, "seeding_note": seeded.note,
    }


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


# --------------------------------------------------------------------------- searches


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
