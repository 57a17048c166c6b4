"""Use case: the baselines beside a cohort's result (the report's ``baselines`` object).

Called from :func:`manager.runner.run_cohort` (the one launch path:
``execute_cohort`` -> ``run_cohort``), so ``cohortlab run``, the Celery task, the
API's job executor and campaign days all report them. Pure computation lives in
:mod:`simulator.baselines` and :mod:`evolution.baselines`.
"""
from __future__ import annotations

import numpy as np

from evolution.baselines import random_cohorts
from simulator.baselines import buy_and_hold, gross_config, mid_percentile
from simulator.cohort import CohortResult, simulate_cohort

__all__ = ["DEFAULT_BASELINES", "cohort_baselines", "baseline_percentile"]

#: random cohorts per report unless ``--baselines N`` says otherwise (0 = off)
DEFAULT_BASELINES = 20


def _dist(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "p5": float(np.percentile(v, 5)),
            "p95": float(np.percentile(v, 95)), "mean": float(v.mean()),
            "min": float(v.min()), "max": float(v.max())}


def cohort_baselines(result: CohortResult, *, n_cohorts: int, seed: int, max_leverage: float) -> dict:
    """The ``baselines`` object of a cohort report.

    Args:
        result: the finished cohort (its market, agents, costs, allocation, reserve
            and bankroll define the baselines' window, size and costs).
        n_cohorts: random cohorts to run (>= 1; the caller skips baselines at 0).
        seed: the run's seed (random genomes use
            :func:`evolution.baselines.baseline_seed` of it: same seed, same baselines).
        max_leverage: the cohort's genome leverage ceiling (multiple of agent equity).

    Returns:
        A JSON-ready dict, every ROI a fraction of the bankroll (0.01 = 1 %) over the
        traded window (not annualised)::

            {"cohort": {"roi", "gross_roi", "cost_drag", "fees"},
             "random": {"cohorts", "agents", "seed", "ceilings": "lifted",
                        "roi": [C floats], "median", "p5", "p95", "mean", "min", "max",
                        "percentile", "gross_roi": [C floats], "gross_median",
                        "gross_percentile"},
             "cash": {"roi": 0.0},
             "buy_and_hold": {"roi", "gross_roi", "symbols": [...]},
             "best_agent": {"roi", "median_agent_roi", "percentile_vs_random_best",
                            "random_best_median"}}

        ``percentile`` is the cohort's net parent ROI among the random cohorts' net
        ROIs (:func:`simulator.baselines.mid_percentile`, 0..100);
        ``gross_percentile`` the same gross of costs. ``gross_roi`` of the cohort
        re-simulates the same genomes with zero fee and slippage (same allocation,
        ceilings and window); ``cost_drag = gross_roi - roi``. ``best_agent``: the
        cohort's best agent ROI, the population median beside it, and its percentile
        among the best agent of each random cohort (a max of n draws against maxima
        of n draws).
    """
    m = result.market
    cfg = result.config
    n = len(result.agents)
    bankroll = result.parent["bankroll"]
    gross_run = simulate_cohort(m, result.agents, bankroll=bankroll, config=gross_config(cfg),
                                allocation=result.allocation_policy, reserve=result.reserve,
                                with_ledger=False)
    roi = float(result.parent["roi"])
    gross_roi = float(gross_run.parent["roi"])
    rc = random_cohorts(m, n_cohorts=n_cohorts, cohort_size=n, bankroll=bankroll, config=cfg, seed=seed,
                        max_leverage=max_leverage, allocation=result.allocation_policy,
                        reserve=result.reserve)
    bh = buy_and_hold(m, cfg, reserve=result.reserve)
    agent_rois = np.array([r["roi"] for r in result.scores], dtype=np.float64)
    random_best = rc.net.agent_roi.max(axis=1)
    best = float(agent_rois.max())
    return {
        "cohort": {"roi": roi, "gross_roi": gross_roi, "cost_drag": gross_roi - roi,
                   "fees": float(result.parent["fees"])},
        "random": {"cohorts": n_cohorts, "agents": n, "seed": rc.seed, "ceilings": "lifted",
                   "roi": [float(x) for x in rc.net.roi], **_dist(rc.net.roi),
                   "percentile": mid_percentile(roi, rc.net.roi),
                   "gross_roi": [float(x) for x in rc.gross.roi],
                   "gross_median": float(np.median(rc.gross.roi)),
                   "gross_percentile": mid_percentile(gross_roi, rc.gross.roi)},
        "cash": {"roi": 0.0},
        "buy_and_hold": {"roi": bh["roi"], "gross_roi": bh["gross_roi"], "symbols": list(m.symbols)},
        "best_agent": {"roi": best, "median_agent_roi": float(np.median(agent_rois)),
                       "percentile_vs_random_best": mid_percentile(best, random_best),
                       "random_best_median": float(np.median(random_best))},
    }


def baseline_percentile(summary: dict | None) -> float | None:
    """The cohort's random-baseline percentile (0..100) from a stored summary / report,
    None when it was run without baselines (``--baselines 0``) or before they existed."""
    b = (summary or {}).get("baselines") or {}
    p = (b.get("random") or {}).get("percentile")
    return float(p) if p is not None else None
