"""Experiment runner: load bars, seed agents, run a cohort or a backtest,
persist it, and return the report.

:func:`manager.launch.execute_cohort` is the one entry point the CLI, the
Celery task and the API's job executor call for a cohort day; it uses the
steps defined here. A run is stored as ``running``
before the simulation starts; it ends ``completed`` with everything written in
one transaction, or ``failed`` with its reason and no partial ledger.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from evolution.genome import Genome
from manager.baselines import DEFAULT_BASELINES, cohort_baselines
from manager.cache import cohort_feature_cache, invalidate_venue
from manager.leases import Heartbeat, lease_fields, lease_s, process_owner
from manager.limits import check_cohort_size
from manager.policy import Ceilings, agent_tiers, kill_ceilings
from manager.report import backtest_report, cohort_report
from manager.times import RunError, utc
from manager.seeding import STORED_KINDS, Seed, SeedError, market_identity, resolve_seed, traded_from
from manager.store import RunLeased, RunNotFound, RunStateError, Store, StoreError, StoreUnavailable
from simulator.allocation import check_allocation
from simulator.cohort import CohortResult, simulate_cohort
from simulator.data import data_dir_default, load_market
from simulator.engine import EngineConfig
from simulator.ledger import journal_dicts, ledger_chain
from simulator.market import MarketData, MarketDataError
from simulator.synthetic import synthetic_market

Progress = Callable[[str], None]

DEFAULT_WINDOW = pd.Timedelta(days=1)


@dataclass
class BarsRequest:
    """Which bars to load.

    Attributes:
        data: folder of per-symbol bar files; None = ``./data`` when it holds
            data, else the built-in SYNTHETIC market.
        symbols: symbols to use (None = all in the folder).
        start, end: traded window ``[start, end)`` (UTC; ISO dates/times). With
            neither, the last day of the data; with one, one day from/to it.
        warmup_bars: history bars before ``start`` for indicators and
            risk-weighted allocation (bars).
        quote: quote currency for files named by ticker only (``SPY.csv``).
        seed: seed of the synthetic market.
        whole: with neither ``start`` nor ``end``, use all the data instead of
            its last day (backtests).
    """

    data: str | None = None
    symbols: list[str] | None = None
    start: str | None = None
    end: str | None = None
    warmup_bars: int = 200
    quote: str | None = None
    seed: int = 0
    whole: bool = False


def _window(req: BarsRequest) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    start = utc(req.start, "start") if req.start else None
    end = utc(req.end, "end") if req.end else None
    if start is not None and end is None:
        end = start + DEFAULT_WINDOW
    if end is not None and start is None:
        start = end - DEFAULT_WINDOW
    if start is not None and end is not None and end <= start:
        raise RunError(f"--end {req.end} must be after --start {req.start}")
    return start, end


def load_bars(req: BarsRequest, *, agents: int = 1, baselines: int = 0) -> MarketData:
    """Bars for a run: real bars from a folder, or the SYNTHETIC market.

    Before anything is read, the run's size is estimated and checked against
    the limits (:func:`manager.limits.check_cohort_size`).

    Args:
        req: which bars.
        agents: agents the bars are for (1 for a backtest), for the size limits.
        baselines: random baseline cohorts run beside them, for the memory limit.

    Raises:
        RunError, MarketDataError: bad window (also outside pandas' timestamp
            range), folder, files or symbols (also unknown SYNTHETIC ones).
        LimitExceeded: the estimate is above a limit (a :class:`RunError`).
    """
    if req.warmup_bars < 0:
        raise RunError(f"--warmup-bars {req.warmup_bars} must be >= 0")
    start, end = _window(req)
    check_cohort_size(req, agents, baselines)
    folder = Path(req.data) if req.data else data_dir_default()
    if folder is None:
        start = start or pd.Timestamp("2024-01-01", tz="UTC")
        end = end or start + DEFAULT_WINDOW
        tf = 300
        bars = int((end - start).total_seconds() // tf)
        names = req.symbols or None
        kwargs = {"symbols": tuple(names)} if names else {}
        return synthetic_market(start=start, bars=max(bars, 1), timeframe_s=tf, seed=req.seed,
                                warmup_bars=req.warmup_bars, **kwargs)
    if start is None and req.whole:
        return load_market(folder, req.symbols, quote=req.quote)
    if start is None:
        full = load_market(folder, req.symbols, quote=req.quote)
        last = pd.Timestamp(full.timestamps[-1], tz="UTC") + pd.Timedelta(seconds=full.timeframe_s)
        start, end = last - DEFAULT_WINDOW, last
    return load_market(folder, req.symbols, start, end, warmup_bars=req.warmup_bars,
                       quote=req.quote)


def seed_genomes(market: MarketData, n: int, *, seed: int, max_leverage: float,
                 seed_from: str | None, store: Store | None, as_of: pd.Timestamp | None = None) -> Seed:
    """The cohort's ``n`` genomes per ``seed_from`` (see :func:`manager.seeding.resolve_seed`):
    ``latest`` = the newest hall of fame bred on this same market on data that
    ended by the run's start (the point-in-time rule), else random.

    Args:
        as_of: the run's point in time; None = the open of its first traded bar
            (:func:`manager.seeding.traded_from`), the rule for a cohort run.

    Raises:
        RunError: an unknown run id or a run of another market (``--seed-from``).
        GenomeError: a genomes file invalid for this market; the message names it.
    """
    try:
        return resolve_seed(seed_from, market, n, seed=seed, max_leverage=max_leverage, store=store,
                            as_of=traded_from(market) if as_of is None else as_of, kinds=STORED_KINDS["run"])
    except SeedError as exc:
        raise RunError(str(exc)) from None


@dataclass
class CohortRequest:
    """Everything ``cohortlab run`` needs (units as in ``cohortlab run --help``).

    ``seed_from`` is ``latest``, ``random``, a stored run id or a genomes file
    (:mod:`manager.seeding`); ``genomes_path``, when set, wins (``--genomes FILE``).
    """

    def seed_choice(self) -> str:
        """The effective ``--seed-from`` choice (``genomes_path`` when set)."""
        return self.genomes_path or self.seed_from


    bars: BarsRequest = field(default_factory=BarsRequest)
    bankroll: float = 1000.0
    agents: int = 30
    seed: int = 7
    genomes_path: str | None = None
    seed_from: str = "latest"
    allocation: str = "equal"
    reserve: float = 0.0
    max_leverage: float = 2.0
    engine: EngineConfig = field(default_factory=EngineConfig)
    #: trade under the leverage policy's tiers and record its decisions after the run
    #: (:mod:`manager.policy`); the kill switch applies either way
    policy: bool = False
    #: random cohorts in the report's ``baselines`` (:mod:`manager.baselines`); 0 = none
    baselines: int = DEFAULT_BASELINES


def _persist(store: Store, run_id: str, result: CohortResult, report: dict,
             timings: dict) -> None:
    eng = result.engine
    curves = {
        "timestamps": eng.timestamps.astype("datetime64[ns]").astype(np.int64),
        "equity": eng.equity, "position_value": eng.position_value,
        "parent_equity": eng.parent_equity,
    }
    summary = dict(report)
    summary["final_state"] = result.state
    summary["ledger_chain"] = ledger_chain(result.journal)  # the head hash (tamper evidence)
    store.complete_run(
        run_id, summary=summary, agents=result.leaderboard(), trades=result.trades,
        ledger=journal_dicts(result.journal), curves=curves, timings=timings,
    )


def _iso(ts: np.datetime64) -> str:
    return pd.Timestamp(ts, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def run_header(market: MarketData, *, bankroll: float, agents: int, seeded_from: str) -> dict:
    """The typed header of a run document: what listings, queries and pages read
    (never the request blob). Written when the run is created.

    Returns:
        ``{"day", "window_start", "window_end", "bankroll", "quote", "agents",
        "data_label", "market", "seeded_from"}``: ``day`` is the UTC date
        (``YYYY-MM-DD``) of the first traded bar; ``window_start`` /
        ``window_end`` the traded window ``[start, end)`` in ISO 8601 UTC
        (``...Z``; end = last traded bar's open + one bar); ``bankroll`` in the
        quote currency ``quote``; ``agents`` the cohort size; ``data_label``
        the data source (:meth:`~simulator.market.MarketData.label`);
        ``market`` the seeding market key (:mod:`manager.seeding`);
        ``seeded_from`` where the genomes came from.
    """
    traded = market.timestamps[market.warmup:]
    start = traded[0] if len(traded) else market.timestamps[0]
    end = (traded[-1] if len(traded) else market.timestamps[-1]) + np.timedelta64(int(market.timeframe_s), "s")
    return {"day": _iso(start)[:10], "window_start": _iso(start), "window_end": _iso(end),
            "bankroll": float(bankroll), "quote": market.quote, "agents": int(agents),
            "data_label": market.label(), "market": market_identity(market).key, "seeded_from": seeded_from}


class RunAlreadyFinished(RunError):
    """The run id is already completed or failed: nothing was run again.

    Attributes:
        run: the stored run document.
    """

    def __init__(self, run: dict):
        super().__init__(f"run {run['run_id']} is already {run['status']}")
        self.run = run


def _start(store: Store, doc: dict) -> str:
    """Create the run with this process's lease (:mod:`manager.leases`), or take
    over a run left ``running`` (same run id) once its lease expired -- its owner
    died -- or when this process already holds it; refuse a finished one
    (:class:`RunAlreadyFinished`).

    Raises:
        RunLeased: the run is ``running`` under another owner's live lease (a
            live worker executes it); transient, a later delivery retries.
    """
    owner, seconds = process_owner(), lease_s()
    run_id = doc.get("run_id")
    if run_id:
        try:
            existing = store.get_run(run_id)
        except RunNotFound:
            existing = None
        if existing is not None:
            if existing["status"] != "running":
                raise RunAlreadyFinished(existing)
            try:
                claimed = store.claim_run(run_id, owner, seconds)
            except StoreError as exc:
                if not isinstance(exc, StoreUnavailable):  # cannot write (read-only, disk full): fail it,
                    _fail(store, run_id, exc, 0.0)         # or note on exc that even that was impossible
                raise
            if not claimed:
                _raise_if_finished(store, run_id, None)
                raise RunLeased(f"run {run_id} is running under a live lease of {existing.get('owner')} "
                                f"(until {existing.get('lease_until')}); it is not taken over")
            if existing.get("queued_job"):  # recorded when its job was accepted: fill it in
                store.refresh_run(run_id, doc)
            return run_id
    return store.create_run({**doc, **lease_fields(owner, seconds)})


def _execute(store: Store | None, doc: dict, simulate: Callable[[], CohortResult],
             make_report: Callable[[str, CohortResult], dict], progress: Progress,
             is_final: Callable[[BaseException], bool] = lambda exc: True) -> tuple[str, CohortResult, dict]:
    run_id = _start(store, doc) if store is not None else doc.get("run_id", "unsaved")
    t0 = time.perf_counter()
    heartbeat = Heartbeat(store, run_id) if store is not None else contextlib.nullcontext()
    try:
        with heartbeat:  # renews the run's lease while it simulates and stores
            progress("simulate")
            # indicator arrays go through the feature cache; the venue's entries are
            # dropped when the simulation ends (doc["data_label"] = MarketData.source)
            with cohort_feature_cache(doc.get("data_label")):
                result = simulate()
            timings = {"simulate_s": time.perf_counter() - t0}
            report = make_report(run_id, result)
            if not result.ledger_ok:
                raise RunError("ledger reconciliation failed; see `cohortlab ledger verify`")
            if store is not None:
                progress("store")
                t1 = time.perf_counter()
                _persist(store, run_id, result, report, timings)
                timings["store_s"] = time.perf_counter() - t1
    except BaseException as exc:
        # a transient error leaves the run ``running`` for the retry to take over
        if store is not None and is_final(exc):
            _fail(store, run_id, exc, time.perf_counter() - t0)
        raise
    return run_id, result, report


def _fail(store: Store, run_id: str, exc: BaseException, elapsed_s: float) -> None:
    """Store run ``run_id`` as failed with ``exc`` as the reason.

    A duplicate delivery whose run another copy finished meanwhile raises
    :class:`RunAlreadyFinished` (the caller returns the stored result). When the
    store cannot write the failure (a read-only or full disk), ``exc`` -- the
    real cause -- propagates unchanged with a note (so the caller, the task's
    result or the job's error, still gets the reason); the run stays
    ``running`` in the store, which cannot be written.
    """
    if isinstance(exc, RunStateError):  # e.g. complete_run found the run finished by another copy
        _raise_if_finished(store, run_id, exc)
    try:
        store.fail_run(run_id, f"{type(exc).__name__}: {exc}", {"failed_after_s": elapsed_s})
    except RunStateError:
        _raise_if_finished(store, run_id, exc)
    except StoreError as store_exc:
        exc.add_note(f"the run could not be stored as failed: {store_exc}")


def _raise_if_finished(store: Store, run_id: str, exc: BaseException) -> None:
    try:
        run = store.get_run(run_id)
    except StoreError:
        return
    if run["status"] != "running":
        raise RunAlreadyFinished(run) from exc


def run_cohort(market: MarketData, genomes: Sequence[Genome], source: str, req: CohortRequest,
               store: Store | None, progress: Progress = lambda stage: None,
               extra: dict | None = None, run_id: str | None = None,
               is_final: Callable[[BaseException], bool] = lambda exc: True,
               ceilings: Ceilings | None = None) -> tuple[str, CohortResult, dict]:
    """Run and persist a cohort of ``genomes`` on ``market`` (already loaded and
    seeded; used by :func:`launch_intraday_cohort` and by campaigns).

    Args:
        market, genomes: bars and agents.
        source: where the genomes came from (``file``, ``hall_of_fame``,
            ``random``, ``cycle:<id>`` ...), recorded with the run.
        req: bankroll, allocation, costs and limits.
        store: where to persist (None = do not persist).
        progress: stage callback.
        extra: more fields for the run document's config (e.g. campaign day).
        run_id: the run's id (default: a new one). A run with this id left
            ``running`` by a dead worker is taken over; a completed or failed
            one raises :class:`RunAlreadyFinished` (idempotency of retried tasks).
        is_final: whether an error ends the run as ``failed`` (default: every
            error); return False for transient errors a retry will resolve.
        ceilings: the leverage policy's ceilings (:func:`manager.policy.policy_ceilings`):
            per-agent caps and the parent's gross ceiling, which replaces
            ``req.engine.max_gross_leverage``. Without them, the kill switch still
            applies: while it is on every ceiling is 0x.
    """
    if ceilings is None:
        ceilings = kill_ceilings(store, genomes)
    engine = req.engine if ceilings is None else replace(req.engine, max_gross_leverage=ceilings.parent_cap)
    caps = None if ceilings is None else ceilings.agent_caps
    notes = {"seeding_note": (extra or {}).get("seeding_note", source)}
    doc = {
        "kind": "cohort",
        "header": run_header(market, bankroll=req.bankroll, agents=len(genomes), seeded_from=source),
        "config": {"request": _jsonable(asdict(req)), "seeded_from": source,
                   "market": market_identity(market).key, **notes, **(extra or {})},
        "genomes": [g.to_dict() for g in genomes],
        "data_label": market.label(),
    }
    if ceilings is not None:
        doc["config"]["ceilings"] = {"parent": ceilings.parent_cap, "agents": [float(x) for x in ceilings.agent_caps],
                                     "policy": ceilings.policy, "kill_switch": bool(ceilings.kill_switch.get("on"))}
    if run_id:
        doc["run_id"] = run_id
    return _execute(
        store, doc,
        lambda: simulate_cohort(market, list(genomes), bankroll=req.bankroll, config=engine,
                                allocation=req.allocation, reserve=req.reserve, leverage_caps=caps),
        lambda rid, res: _with_policy({**cohort_report(rid, req.seed, res), "seeded_from": source, **notes,
                                       **_baselines(req, res)}, ceilings, res),
        progress, is_final,
    )


def _with_policy(report: dict, ceilings: Ceilings | None, result: CohortResult) -> dict:
    """Each agent row's ``tier`` (lineage, tier, ceiling, trigger, rule) and the
    report's ``policy`` block, when the cohort traded under ceilings."""
    if ceilings is None:
        return report
    tiers = agent_tiers(ceilings, result.agent_ids)
    for row in report["agents"]:
        row["tier"] = tiers.get(row["agent_id"])
    ks = ceilings.kill_switch or {}
    report["policy"] = {
        "on": ceilings.policy, "parent_subject": ceilings.parent_subject, "parent_ceiling": ceilings.parent_cap,
        "parent_tier": ceilings.tiers.get(ceilings.parent_subject) if ceilings.parent_subject else None,
        "kill_switch": {"on": bool(ks.get("on")), "reason": ks.get("reason"), "at": ks.get("at")},
        "lineages": len(set(ceilings.subjects)),
    }
    return report


def _baselines(req: CohortRequest, result: CohortResult) -> dict:
    """``{"baselines": {...}}`` of the report (:func:`manager.baselines.cohort_baselines`),
    or ``{}`` when ``req.baselines`` is 0."""
    if not req.baselines or req.baselines < 1:
        return {}
    return {"baselines": cohort_baselines(result, n_cohorts=int(req.baselines), seed=req.seed,
                                          max_leverage=req.max_leverage)}


def run_backtest(bars: BarsRequest, family: str, params: dict, *, symbols: Sequence[str] | None,
                 bankroll: float, engine: EngineConfig, store: Store | None,
                 progress: Progress = lambda stage: None, **risk_genes) -> tuple[str, CohortResult, dict]:
    """Backtest one strategy (a cohort of one agent holding the whole bankroll) and
    persist it as a ``backtest`` run.

    Args:
        bars: which bars (``whole=True`` for all of them by default).
        family, params: strategy family and its parameters.
        symbols: symbols the agent trades (None = every symbol loaded).
        bankroll: quote currency.
        engine: costs and limits.
        store: where to persist (None = do not persist).
        progress: stage callback.
        **risk_genes: ``size``, ``stop_loss``, ``take_profit``, ``max_hold_bars``,
            ``leverage`` (see :class:`evolution.genome.Genome`).

    Raises:
        Like :func:`manager.launch.execute_cohort`.
    """
    check_allocation("equal", reserve=0.0, bankroll=bankroll)
    progress("load")
    market = load_bars(bars)
    genome = Genome.from_dict({"family": family, "params": params,
                               "symbols": list(symbols or market.symbols), **risk_genes},
                              symbols=market.symbols)
    doc = {"kind": "backtest",
           "header": run_header(market, bankroll=bankroll, agents=1, seeded_from="backtest"),
           "config": {"bars": _jsonable(asdict(bars)), "bankroll": bankroll,
                      "engine": _jsonable(asdict(engine))},
           "genomes": [genome.to_dict()], "data_label": market.label()}
    return _execute(
        store, doc,
        lambda: simulate_cohort(market, [genome], bankroll=bankroll, config=engine),
        lambda run_id, res: {"run_id": run_id, **backtest_report(res)},
        progress,
    )


def download_bars(exchange: str, symbols: Sequence[str], timeframe: str, days: float,
                  out: str | Path, **kwargs) -> list[Path]:
    """``cohortlab data download``: fetch bars with ccxt into ``out``
    (:func:`simulator.download.download`, same arguments), then drop the
    feature-cache entries of that folder -- its bars were refreshed.

    Returns:
        The written paths.

    Raises:
        Like :func:`simulator.download.download`. The folder's entries are
        dropped even then (some files may have been written).
    """
    from simulator.download import download  # ccxt is optional

    try:
        return download(exchange, symbols, timeframe, days, out, **kwargs)
    finally:
        if Path(out).is_dir():
            invalidate_venue(out)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


__all__: Sequence[str] = (
    "BarsRequest", "CohortRequest", "RunError", "RunAlreadyFinished", "MarketDataError", "run_cohort",
    "run_backtest", "load_bars", "seed_genomes",
)
