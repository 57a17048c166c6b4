"""Learning cycles as use cases: where bars come from (:class:`Source`), the population a
cycle starts from, the trials that came before it, and persisting what a cycle produces
(population, hall of fame, knowledge record). Campaigns are in :mod:`manager.campaigns`,
Bayesian searches in :mod:`manager.search_jobs`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from evolution.evolve import GAConfig
from evolution.fitness import evaluate
from evolution.genome import Genome
from learning.cycle import CycleResult, run_cycle
from learning.walkforward import Split, split_lookback
from manager.times import RunError, duration, utc
from manager.seeding import STORED_KINDS, Seed, SeedError, market_identity, resolve_seed
from manager.store import Store
from simulator import metrics
from simulator.data import data_dir_default, load_market
from simulator.engine import EngineConfig
from simulator.market import MarketData, MarketDataError
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
