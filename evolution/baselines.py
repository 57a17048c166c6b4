"""The random-genome baseline: what cohorts of random genomes make on the same day.

``C`` random cohorts of ``n`` agents each (the cohort's size, bankroll, allocation,
reserve, costs, leverage ceiling and window) are drawn with
:func:`evolution.toolbox.random_genomes` in one call (``C x n`` genomes, families
round-robin, so every random cohort of 30 holds 5 genomes of each of the 6
families) and run in **one** vectorised engine call
(:func:`simulator.baselines.grouped_cohorts`, aggregate parent ceilings lifted:
see that module for what this leaves out). Same seed, same baselines.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evolution.toolbox import random_genomes
from simulator.baselines import GroupedCohorts, grouped_cohorts, gross_config
from simulator.engine import EngineConfig
from simulator.market import MarketData

__all__ = ["RandomCohorts", "baseline_seed", "random_cohort_genomes", "random_cohorts"]


def baseline_seed(seed: int) -> int:
    """The genome seed of the random baseline of a cohort run with ``seed``: distinct from
    ``seed`` itself (a ``random``-seeded cohort draws its own genomes with ``seed``, so the
    baseline must not contain the cohort), deterministic, in ``[0, 2**31)``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xBA5E11]).generate_state(1)[0] >> 1)


def random_cohort_genomes(market: MarketData, *, n_cohorts: int, cohort_size: int, seed: int,
                          max_leverage: float) -> list:
    """The ``n_cohorts x cohort_size`` random genomes of the baseline, cohort c being
    ``genomes[c x n : (c + 1) x n]`` (seeded with :func:`baseline_seed`)."""
    return random_genomes(n_cohorts * cohort_size, market.symbols, seed=baseline_seed(seed),
                          max_leverage=max_leverage)


@dataclass(frozen=True)
class RandomCohorts:
    """The random-cohort distribution of one day.

    Attributes:
        seed: the run seed the genomes were derived from (:func:`baseline_seed`).
        n_cohorts, cohort_size: C and n.
        net: per-cohort results with the cohort's costs.
        gross: the same genomes with zero fee and slippage (None when not asked).
    """

    seed: int
    n_cohorts: int
    cohort_size: int
    net: GroupedCohorts
    gross: GroupedCohorts | None


def random_cohorts(market: MarketData, *, n_cohorts: int, cohort_size: int, bankroll: float,
                   config: EngineConfig, seed: int, max_leverage: float, allocation: str = "equal",
                   reserve: float = 0.0, gross: bool = True) -> RandomCohorts:
    """Draw and run ``n_cohorts`` random cohorts of ``cohort_size`` agents.

    Args:
        market: the cohort's bars (same window and warm-up).
        n_cohorts: C (>= 1).
        cohort_size: n, the cohort's number of agents (>= 1).
        bankroll: the cohort's parent bankroll (quote currency).
        config: the cohort's costs and agent limits.
        seed: the cohort run's seed (the genomes use :func:`baseline_seed` of it).
        max_leverage: the cohort's leverage ceiling for genomes (multiple of agent equity).
        allocation, reserve: the cohort's allocation policy and reserve fraction.
        gross: also run the same genomes with zero costs (a second engine call).

    Returns:
        :class:`RandomCohorts`.

    Raises:
        ValueError: ``n_cohorts`` or ``cohort_size`` < 1.
        GenomeError, AllocationError, EngineError: invalid settings.
    """
    if n_cohorts < 1 or cohort_size < 1:
        raise ValueError(f"need >= 1 cohort of >= 1 agent, got {n_cohorts} x {cohort_size}")
    genomes = random_cohort_genomes(market, n_cohorts=n_cohorts, cohort_size=cohort_size, seed=seed,
                                    max_leverage=max_leverage)
    kw = dict(cohort_size=cohort_size, bankroll=bankroll, allocation=allocation, reserve=reserve)
    net = grouped_cohorts(market, genomes, config=config, **kw)
    gr = grouped_cohorts(market, genomes, config=gross_config(config), **kw) if gross else None
    return RandomCohorts(seed=int(seed), n_cohorts=n_cohorts, cohort_size=cohort_size, net=net, gross=gr)
