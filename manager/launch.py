"""The one path that executes a cohort: every entry point is a thin wrapper of it.

``cohortlab run`` (the CLI), the Celery task ``cohortlab.run_cohort`` and the
API's in-process job executor all call :func:`execute_cohort`, which does, in
order:

1. the **finished-run guard**: a ``run_id`` whose run is already completed or
   failed raises :class:`~manager.runner.RunAlreadyFinished` (nothing runs
   again); one left ``running`` by a dead worker is taken over;
2. ``loading`` -- the bars (:func:`manager.runner.load_bars`);
3. ``seeding`` -- the agents (:mod:`manager.seeding`, or the genome dicts given);
4. ``simulating`` and ``storing`` -- :func:`manager.runner.run_cohort`;
5. the cohort's metrics (runtime, failed agents, peak utilisation) when the
   ``service`` extra (prometheus-client) is installed.

``on_stage`` is called with each stage name of :data:`STAGES` as it starts.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

from evolution.genome import Genome
from manager.alerts import notify_run
from manager.limits import check_bankroll, check_money_range
from manager.policy import (DEFAULT_SCOPE, decision_summaries, policy_ceilings, record_decision_metrics,
                            record_policy_day, run_period)
from manager.runner import CohortRequest, RunAlreadyFinished, load_bars, run_cohort, seed_genomes
from manager.seeding import market_identity
from manager.store import RunNotFound, Store
from simulator.allocation import check_allocation
from simulator.cohort import CohortResult

__all__ = ["STAGES", "CohortOutcome", "execute_cohort", "finished_run", "record_cohort_metrics"]

STAGES = ("loading", "seeding", "simulating", "storing")
"""Stages of a cohort run, in order (what ``on_stage`` receives)."""

_RUNNER_STAGES = {"simulate": "simulating", "store": "storing"}


class CohortOutcome(NamedTuple):
    """A finished cohort: its run id, the engine's result and the report (the ``--json`` document)."""

    run_id: str
    result: CohortResult
    report: dict


def finished_run(store: Store | None, run_id: str | None) -> dict | None:
    """The stored run ``run_id`` when it is already completed or failed, else None
    (no store, no id, no such run, or a run left ``running``)."""
    if store is None or not run_id:
        return None
    try:
        run = store.get_run(run_id)
    except RunNotFound:
        return None
    return run if run["status"] != "running" else None


def record_cohort_metrics(seconds: float, parent: dict) -> None:
    """Record a finished cohort in the Prometheus metrics (no-op without prometheus-client).

    Args:
        seconds: wall time of the cohort (s).
        parent: the report's ``parent`` figures (``failed_agents``, ``peak_utilisation``).
    """
    try:
        from manager import metrics
    except ImportError:  # the base install has no prometheus-client: nothing to export to
        return
    metrics.record_cohort(seconds, int(parent.get("failed_agents") or 0), parent["peak_utilisation"])
    metrics.record_hard_stops(int(parent.get("hard_stops") or 0))


def execute_cohort(req: CohortRequest, store: Store | None, *, run_id: str | None = None,
                   on_stage: Callable[[str], None] = lambda stage: None, genomes: list[dict] | None = None,
                   extra: dict | None = None,
                   is_final: Callable[[BaseException], bool] = lambda exc: True) -> CohortOutcome:
    """Execute one cohort: guard, load, seed, simulate, store, metrics.

    Args:
        req: the request (bars, bankroll, agents, seeding, costs and limits).
        store: where the run is persisted (None = not persisted; the CLI's ``--store`` always gives one).
        run_id: the run's id (idempotency key of tasks and jobs); None = a new id.
        on_stage: called with ``loading``, ``seeding``, ``simulating``, ``storing``.
        genomes: the agents as genome dicts (a Celery caller may send them);
            None = seeded per ``req.seed_from`` / ``req.genomes_path``.
        extra: more fields for the run document's config (``task_id``, ``job_id``, ...).
        is_final: whether an error ends the run as ``failed`` (False for
            transient errors a retry will resolve; the run stays ``running``).

    Returns:
        The :class:`CohortOutcome`.

    Raises:
        RunAlreadyFinished: ``run_id`` is already completed or failed.
        RunError, MarketDataError, GenomeError, AllocationError, EngineError:
            invalid input (nothing stored): also a bankroll outside 50 to 100,000
            and a cohort above the size limits (:mod:`manager.limits`); an error during the run itself is
            stored as a failed run (when ``is_final``) and re-raised.
    """
    done = finished_run(store, run_id)
    if done is not None:
        raise RunAlreadyFinished(done)
    check_bankroll(req.bankroll)
    check_allocation(req.allocation, reserve=req.reserve, bankroll=req.bankroll)
    t0 = time.perf_counter()
    on_stage("loading")
    market = load_bars(req.bars, agents=req.agents, baselines=req.baselines)
    check_money_range(market, req.bankroll, req.max_leverage)
    on_stage("seeding")
    if genomes:
        agents = [Genome.from_dict(g, symbols=market.symbols, max_leverage=req.max_leverage) for g in genomes]
        source, note = "task", "genomes sent with the request"
    else:
        seeded = seed_genomes(market, req.agents, seed=req.seed, max_leverage=req.max_leverage,
                              seed_from=req.seed_choice(), store=store)
        agents, source, note = seeded.genomes, seeded.seeded_from, seeded.note
    ceilings = None
    if req.policy and store is not None:
        ceilings = policy_ceilings(store, market_identity(market).key, DEFAULT_SCOPE, agents,
                                   as_of=run_period(market)[1])
    rid, result, report = run_cohort(market, agents, source, req, store,
                                     lambda stage: on_stage(_RUNNER_STAGES.get(stage, stage)),
                                     extra={**(extra or {}), "seeding_note": note}, run_id=run_id,
                                     is_final=is_final, ceilings=ceilings)
    if ceilings is not None:
        period, _, end = run_period(market)
        decisions = record_policy_day(store, market_identity(market).key, result, ceilings, period=period, end=end,
                                      source=rid)
        record_decision_metrics(decisions)
        report["policy"]["decisions"] = decision_summaries(decisions)
    record_cohort_metrics(time.perf_counter() - t0, report["parent"])
    if store is not None:
        notify_run(store, report)  # parent drawdown, leverage breaches, utilisation, hard stops; never raises
    return CohortOutcome(rid, result, report)
