"""The genetic algorithm: DEAP selection over genomes, fitness from the engine.

One generation (a (mu + lambda) scheme, Eiben & Smith, *Introduction to
Evolutionary Computing*, ch. 5):

1. parents are drawn by tournament (``tournsize``) on Pareto rank then crowding
   distance (``selection="nsga2"``) or on the scalar score (``"tournament"``);
2. offspring come from ``toolbox.mate`` with probability ``cxpb`` and
   ``toolbox.mutate`` with probability ``mutpb`` (operators registered by name in
   :func:`evolution.toolbox.make_toolbox`, swappable by configuration);
3. only new genomes are evaluated — the whole batch in one engine run
   (:func:`evolution.fitness.evaluate`);
4. survivors: NSGA-II (Deb et al. 2002, via ``deap.tools.selNSGA2``) on
   (ROI, Sharpe, max drawdown), or the best ``mu`` by score; then at least
   ``min_per_family`` genomes of every family present are kept, so one lucky
   window cannot wipe out a strategy family;
5. the hall of fame keeps the best genomes ever seen (elitism across cycles),
   with the same family diversity as the population (``min_per_family``) and
   each parameter set once (:func:`select_hall_of_fame`).

The scalar *score* used by tournaments and the hall of fame is the annualised
Sharpe ratio.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from deap import base, tools

from evolution.fitness import WEIGHTS, Evaluation, evaluate
from evolution.genome import Genome
from evolution.toolbox import make_toolbox
from simulator.engine import EngineConfig
from simulator.market import MarketData

SELECTIONS = ("nsga2", "tournament")


class EvolutionError(ValueError):
    """Bad GA settings; the message names the value and what is allowed."""


class Fitness(base.Fitness):
    """DEAP fitness over (ROI, Sharpe, max drawdown): maximise, maximise, minimise."""

    weights = WEIGHTS


class Individual:
    """A genome with a DEAP fitness (what DEAP's selection operators handle)."""

    __slots__ = ("genome", "fitness", "stats")

    def __init__(self, genome: Genome, values: tuple[float, float, float], stats: dict):
        self.genome = genome
        self.fitness = Fitness(values)
        self.stats = stats

    @property
    def score(self) -> float:
        """Annualised Sharpe (penalised like the fitness when it traded too little)."""
        return self.fitness.values[1]


@dataclass(frozen=True)
class GAConfig:
    """Settings of one evolution run.

    Attributes:
        generations: number of generations.
        population: mu, genomes kept per generation.
        offspring: lambda, genomes bred per generation (default = population).
        cxpb, mutpb: probability that an offspring comes from crossover /
            mutation (the rest are mutated copies).
        tournsize: tournament size for parent selection.
        selection: ``nsga2`` or ``tournament``.
        min_per_family: genomes of each present family always kept (0 = off).
        min_trades: genomes with fewer trades get the worst fitness.
        hof_size: hall-of-fame size.
        params_only: mutation changes family parameters only (intraday mode).
    """

    generations: int = 40
    population: int = 30
    offspring: int | None = None
    cxpb: float = 0.5
    mutpb: float = 0.4
    tournsize: int = 3
    selection: str = "nsga2"
    min_per_family: int = 2
    min_trades: int = 2
    hof_size: int = 30
    params_only: bool = False

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise EvolutionError(f"selection {self.selection!r} unknown; allowed: {', '.join(SELECTIONS)}")
        for name, lo in (("generations", 0), ("population", 2), ("tournsize", 1), ("hof_size", 1),
                         ("min_per_family", 0), ("min_trades", 0)):
            if int(getattr(self, name)) < lo:
                raise EvolutionError(f"{name}={getattr(self, name)} must be >= {lo}")
        if not (0.0 <= self.cxpb <= 1.0 and 0.0 <= self.mutpb <= 1.0 and self.cxpb + self.mutpb <= 1.0 + 1e-12):
            raise EvolutionError(f"cxpb={self.cxpb} and mutpb={self.mutpb} must be in [0, 1] with sum <= 1")


@dataclass
class EvolutionResult:
    """Outcome of :func:`evolve`.

    Attributes:
        population: final genomes, best first.
        fitness: their stats (roi, sharpe, max_drawdown, trades), same order.
        hall_of_fame: best genomes ever seen with their stats, best first.
        history: one dict per generation (best/mean/median Sharpe, family counts).
        trials: number of distinct genomes evaluated (the N of the Deflated Sharpe).
        trial_sharpes: per-bar Sharpe of every distinct genome evaluated (its
            variance is the V[SR_n] of the Deflated Sharpe).
    """

    population: list[Genome]
    fitness: list[dict]
    hall_of_fame: list[tuple[Genome, dict]]
    history: list[dict] = field(default_factory=list)
    trials: int = 0
    trial_sharpes: list[float] = field(default_factory=list)


def _ranks(inds: list[Individual]) -> dict[int, int]:
    fronts = tools.sortNondominated(inds, len(inds))
    return {id(ind): r for r, front in enumerate(fronts) for ind in front}


def _tournament(inds: list[Individual], k: int, tournsize: int, rng: random.Random, key) -> list[Individual]:
    out = []
    for _ in range(k):
        aspirants = [inds[rng.randrange(len(inds))] for _ in range(tournsize)]
        out.append(max(aspirants, key=key))
    return out


def _param_key(genome: Genome) -> str:
    return json.dumps([genome.family, genome.params], sort_keys=True, default=str)


def select_hall_of_fame(ranked: Sequence[tuple[Genome, dict]], size: int,
                        min_per_family: int) -> list[tuple[Genome, dict]]:
    """The hall of fame from every genome seen, ranked best first.

    Rules, in order:

    1. one entry per parameter set: genomes of the same family with identical
       strategy parameters (they differ only in risk genes, symbols or
       genealogy) are kept once, the best ranked;
    2. one entry per behaviour: genomes of the same family whose stats (ROI,
       Sharpe, max drawdown, trades) are identical traded identically, so only
       the best ranked is kept;
    3. every family seen keeps its best ``min(min_per_family, its distinct
       genomes)`` entries (the population's diversity rule);
    4. the remaining places go to the best of the rest, up to ``size``.

    Args:
        ranked: ``(genome, stats)`` pairs, best first; stats hold ``roi``,
            ``sharpe``, ``max_drawdown``, ``trades``.
        size: places in the hall of fame (>= 1).
        min_per_family: entries kept per family (0 = no diversity rule). When
            families x ``min_per_family`` exceed ``size``, the best-ranked
            families' reserved entries come first.

    Returns:
        The chosen ``(genome, stats)`` pairs, best first (``ranked`` order).
    """
    seen_params: set[str] = set()
    seen_stats: set[tuple] = set()
    distinct: list[tuple[Genome, dict]] = []
    for g, st in ranked:
        behaviour = (g.family, *(round(float(st.get(k, 0.0)), 12) for k in ("roi", "sharpe", "max_drawdown",
                                                                             "trades")))
        pk = _param_key(g)
        if pk in seen_params or behaviour in seen_stats:
            continue
        seen_params.add(pk)
        seen_stats.add(behaviour)
        distinct.append((g, st))
    chosen: set[int] = set()
    per_family: dict[str, int] = {}
    for i, (g, _) in enumerate(distinct):
        if per_family.get(g.family, 0) < min_per_family and len(chosen) < size:
            per_family[g.family] = per_family.get(g.family, 0) + 1
            chosen.add(i)
    for i in range(len(distinct)):
        if len(chosen) >= size:
            break
        chosen.add(i)
    return [distinct[i] for i in sorted(chosen)]


def _keep_families(chosen: list[Individual], pool: list[Individual], minimum: int,
                   rank_key) -> list[Individual]:
    """Make sure every family present in ``pool`` has >= ``minimum`` genomes in
    ``chosen`` (replacing the weakest of the most common families)."""
    if minimum <= 0:
        return chosen
    chosen = list(chosen)
    families = sorted({i.genome.family for i in pool})
    for fam in families:
        have = [i for i in chosen if i.genome.family == fam]
        need = min(minimum, sum(1 for i in pool if i.genome.family == fam)) - len(have)
        if need <= 0:
            continue
        ids = {id(i) for i in chosen}
        extra = sorted((i for i in pool if i.genome.family == fam and id(i) not in ids), key=rank_key,
                       reverse=True)[:need]
        for ind in extra:
            counts: dict[str, int] = {}
            for i in chosen:
                counts[i.genome.family] = counts.get(i.genome.family, 0) + 1
            donors = [i for i in chosen if counts[i.genome.family] > minimum]
            if not donors:
                break
            weakest = min(donors, key=rank_key)
            chosen[chosen.index(weakest)] = ind
    return chosen


def evolve(
    market: MarketData,
    initial: Sequence[Genome],
    *,
    config: GAConfig = GAConfig(),
    engine: EngineConfig = EngineConfig(),
    seed: int = 0,
    max_leverage: float = 2.0,
    frozen: Sequence[Genome] = (),
    progress: Callable[[int, dict], None] | None = None,
) -> EvolutionResult:
    """Evolve a population on the traded bars of ``market`` (the training window).

    Args:
        market: training bars.
        initial: starting genomes (topped up with random ones, or cut, to
            ``config.population``).
        config: GA settings.
        engine: costs used by the fitness evaluation.
        seed: seed of every random choice (same seed, same result).
        max_leverage: cohort leverage ceiling for random and bred genomes.
        frozen: genomes evaluated and ranked but never bred nor dropped
            (intraday mode keeps long-horizon genomes this way).
        progress: called after each generation with (generation, stats).

    Raises:
        EvolutionError: bad settings; StrategyError/GenomeError: bad genomes.
    """
    rng = random.Random(seed)
    symbols = tuple(market.symbols)
    toolbox = make_toolbox(symbols, max_leverage=max_leverage, seed=rng.randrange(2**32))
    mu = config.population
    lam = config.offspring or mu
    pop_genomes = list(initial)[:mu]
    if len(pop_genomes) < mu:
        pop_genomes += toolbox.population(mu - len(pop_genomes))

    cache: dict[str, tuple[tuple, dict, float]] = {}
    trial_sharpes: list[float] = []

    def evaluate_new(genomes: list[Genome]) -> list[Individual]:
        todo = []
        for g in genomes:
            if g.genome_id not in cache and g.genome_id not in {t.genome_id for t in todo}:
                todo.append(g)
        if todo:
            ev: Evaluation = evaluate(market, todo, engine)
            for i, g in enumerate(todo):
                cache[g.genome_id] = (ev.objectives(i, config.min_trades), ev.row(i), float(ev.sharpe_bar[i]))
                trial_sharpes.append(float(ev.sharpe_bar[i]))
        return [Individual(g, cache[g.genome_id][0], cache[g.genome_id][1]) for g in genomes]

    pop = evaluate_new(pop_genomes)
    frozen_inds = evaluate_new(list(frozen)) if frozen else []
    hof: dict[str, Individual] = {}  # every genome seen; the hall of fame is chosen from it at the end

    def update_hof(inds: list[Individual]) -> None:
        for ind in inds:
            hof.setdefault(ind.genome.genome_id, ind)

    update_hof(pop + frozen_inds)
    history = [_stats(0, pop)]
    if progress:
        progress(0, history[-1])
    for gen in range(1, config.generations + 1):
        if config.selection == "nsga2":
            ranks = _ranks(pop)
            tools.selNSGA2(pop, len(pop))  # assigns crowding distances
            key = lambda i: (-ranks[id(i)], getattr(i.fitness, "crowding_dist", 0.0))  # noqa: E731
        else:
            key = lambda i: i.score  # noqa: E731
        children: list[Genome] = []
        while len(children) < lam:
            r = rng.random()
            if r < config.cxpb:
                a, b = _tournament(pop, 2, config.tournsize, rng, key)
                c1, c2 = toolbox.mate(a.genome, b.genome, generation=gen)
                children += [c1, c2]
            else:
                (a,) = _tournament(pop, 1, config.tournsize, rng, key)
                children.append(toolbox.mutate(a.genome, generation=gen, params_only=config.params_only))
        offspring = evaluate_new(children[:lam])
        pool = pop + offspring
        unique: dict[str, Individual] = {}
        for ind in pool:
            unique.setdefault(ind.genome.genome_id, ind)
        pool = list(unique.values())
        if config.selection == "nsga2":
            chosen = tools.selNSGA2(pool, min(mu, len(pool)))
            ranks = _ranks(pool)
            rank_key = lambda i: (-ranks[id(i)], getattr(i.fitness, "crowding_dist", 0.0))  # noqa: E731
        else:
            chosen = sorted(pool, key=lambda i: i.score, reverse=True)[:mu]
            rank_key = lambda i: i.score  # noqa: E731
        pop = _keep_families(chosen, pool, config.min_per_family, rank_key)
        update_hof(offspring)
        history.append(_stats(gen, pop))
        if progress:
            progress(gen, history[-1])

    final = sorted(pop + frozen_inds, key=lambda i: (i.score, i.fitness.values[0]), reverse=True)
    best_hof = sorted(hof.values(), key=lambda i: (i.score, i.fitness.values[0]), reverse=True)
    return EvolutionResult(
        population=[i.genome for i in final],
        fitness=[dict(i.stats) for i in final],
        hall_of_fame=select_hall_of_fame([(i.genome, dict(i.stats)) for i in best_hof], config.hof_size,
                                         config.min_per_family),
        history=history,
        trials=len(cache),
        trial_sharpes=trial_sharpes,
    )


def _stats(gen: int, pop: list[Individual]) -> dict:
    sharpes = np.array([i.stats["sharpe"] for i in pop])
    rois = np.array([i.stats["roi"] for i in pop])
    fams: dict[str, int] = {}
    for i in pop:
        fams[i.genome.family] = fams.get(i.genome.family, 0) + 1
    return {"generation": gen, "best_sharpe": float(sharpes.max()), "median_sharpe": float(np.median(sharpes)),
            "mean_roi": float(rois.mean()), "best_roi": float(rois.max()), "families": fams}
