"""The genetic algorithm: DEAP selection over genomes, fitness from the engine.

One generation (a (mu + lambda) scheme, Eiben & Smith, *Introduction to
Evolutionary Computing*, ch. 5):

1. parents are drawn by tournament (``tournsize``) on Pareto rank then crowding
   distance (``selection="nsga2"``) or on the scalar score (``"tournament"``);
2. offspring come from ``toolbox.mate`` with probability ``cxpb`` and
   ``toolbox.mutate`` with probability ``mutpb`` (operators registered by name in
   :func:`evolution.toolbox.make_toolbox`, swappable by configuration);
3. only new genomes are evaluated — the whole batch in one engine run over the
   training window (:func:`evolution.fitness.evaluate`), scored on ``folds``
   contiguous folds of its fit part with a robust aggregate, a turnover cost
   and a minimum of trades per fold (:func:`evolution.fitness.score`);
4. survivors: each parameter set (family + strategy parameters) once, then
   NSGA-II (Deb et al. 2002, via ``deap.tools.selNSGA2``) on (ROI, robust
   Sharpe, max drawdown), or the best ``mu`` by score; then at least
   ``min_per_family`` genomes of every family present are kept, so one lucky
   window cannot wipe out a strategy family, and no family holds more than
   ``max_family_share`` of the places (:func:`family_cap`);
5. **early stopping**: the median Sharpe of the population's non-idle genomes
   on the inner validation tail of the training window (never used for
   ranking) is tracked per generation; after ``patience`` generations without
   a new best the GA stops and returns the population of the best generation
   (``patience=0``: off, and no tail is held out);
6. the hall of fame keeps the best genomes ever seen (elitism across cycles),
   with the same family diversity as the population (``min_per_family``,
   ``max_family_share``) and each parameter set once (:func:`select_hall_of_fame`).

The scalar *score* used by tournaments and the hall of fame is the robust
(fold-aggregated, turnover-penalised) annualised Sharpe ratio.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from deap import base, tools

from evolution.fitness import WEIGHTS, Evaluation, Scoring, ScoringError, evaluate, score
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
        """Robust annualised Sharpe: the fold aggregate net of the turnover cost
        (-100 when the genome was idle in a fold or traded too little)."""
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
        min_trades: genomes with fewer trades over the fit part of the
            training window get the worst fitness.
        hof_size: hall-of-fame size.
        params_only: mutation changes family parameters only (intraday mode).
        folds: contiguous folds of the fit part each genome is scored on.
        fold_aggregate: ``median`` or ``min`` of the per-fold Sharpe ratios.
        min_fold_trades: positions a genome must open in every fold, else it
            gets the worst fitness (idleness is not rewarded).
        turnover_cost_bps: stress cost on traded notional (bps), on top of the
            engine's fees and slippage, charged in the fitness returns.
        validation_share: fraction of the training window's bars held out at
            its end as the inner validation tail for early stopping.
        patience: generations without a better validation median Sharpe before
            the GA stops (0 = no early stopping and no tail held out).
        max_family_share: most places one family may hold in the population
            and the hall of fame, fraction in (0, 1] (1 = no cap); never below
            ``min_per_family`` places.
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
    folds: int = 3
    fold_aggregate: str = "median"
    min_fold_trades: int = 1
    turnover_cost_bps: float = 5.0
    validation_share: float = 0.2
    patience: int = 5
    max_family_share: float = 0.5

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise EvolutionError(f"selection {self.selection!r} unknown; allowed: {', '.join(SELECTIONS)}")
        for name, lo in (("generations", 0), ("population", 2), ("tournsize", 1), ("hof_size", 1),
                         ("min_per_family", 0), ("min_trades", 0), ("patience", 0)):
            if int(getattr(self, name)) < lo:
                raise EvolutionError(f"{name}={getattr(self, name)} must be >= {lo}")
        if not (0.0 <= self.cxpb <= 1.0 and 0.0 <= self.mutpb <= 1.0 and self.cxpb + self.mutpb <= 1.0 + 1e-12):
            raise EvolutionError(f"cxpb={self.cxpb} and mutpb={self.mutpb} must be in [0, 1] with sum <= 1")
        if not (0.0 < float(self.max_family_share) <= 1.0):
            raise EvolutionError(f"max_family_share={self.max_family_share} must be in (0, 1]")
        try:
            self.scoring()
        except ScoringError as exc:
            raise EvolutionError(str(exc)) from None

    def scoring(self) -> Scoring:
        """The fold-scoring settings (:class:`evolution.fitness.Scoring`)."""
        return Scoring(folds=self.folds, aggregate=self.fold_aggregate, min_fold_trades=self.min_fold_trades,
                       min_trades=self.min_trades, turnover_cost_bps=self.turnover_cost_bps,
                       validation_share=self.validation_share)

    def family_cap(self, places: int) -> int:
        """Most places of ``places`` one family may hold: ``max(min_per_family,
        floor(max_family_share * places))``, at least 1."""
        return max(1, int(self.min_per_family), int(np.floor(self.max_family_share * places + 1e-9)))


@dataclass
class EvolutionResult:
    """Outcome of :func:`evolve`.

    Attributes:
        population: final genomes, best first.
        fitness: their stats (roi, sharpe, max_drawdown, trades), same order.
        hall_of_fame: best genomes ever seen with their stats, best first.
        history: one dict per generation actually run (best/mean/median Sharpe
            on the whole training window, ``fitness_sharpe`` (median robust
            Sharpe), ``validation_sharpe`` (median on the inner validation tail,
            None without one), family counts).
        trials: number of distinct genomes evaluated (the N of the Deflated Sharpe).
        trial_sharpes: per-bar Sharpe of every distinct genome evaluated (its
            variance is the V[SR_n] of the Deflated Sharpe).
        trial_returns: ``(trials, T) float64`` per-bar returns (fractions) of
            every distinct genome evaluated, in evaluation order (rows match
            ``trial_sharpes``), on the training window: the matrix of the PBO
            (CSCV) and of the effective number of trials. T = the traded bars
            of the whole training window (fit part + inner validation tail),
            returns net of the engine's fees and slippage (no turnover stress
            cost); the same series the fold fitness is computed from.
        trial_ids: genome ids of the rows of ``trial_returns`` / ``trial_sharpes``.
        stopped_at: last generation run (``config.generations`` unless early
            stopping stopped sooner).
        best_generation: generation whose population was returned (the best
            validation median Sharpe; the last one without early stopping).
        early_stopped: True when ``patience`` ended the run before
            ``config.generations``.
        folds, validation_bars: the ``[start, stop)`` fold bar ranges of the fit
            part and the inner validation tail length (bars).
    """

    population: list[Genome]
    fitness: list[dict]
    hall_of_fame: list[tuple[Genome, dict]]
    history: list[dict] = field(default_factory=list)
    trials: int = 0
    trial_sharpes: list[float] = field(default_factory=list)
    trial_returns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    trial_ids: list[str] = field(default_factory=list)
    stopped_at: int = 0
    best_generation: int = 0
    early_stopped: bool = False
    folds: tuple = ()
    validation_bars: int = 0

    def family_shares(self) -> dict:
        """Share of each family in the returned population and in the hall of
        fame: ``{"population": {family: fraction}, "hall_of_fame": {...}}``."""
        return {"population": shares(g.family for g in self.population),
                "hall_of_fame": shares(g.family for g, _ in self.hall_of_fame)}


def shares(families) -> dict[str, float]:
    """``{family: fraction of the items}``, sorted by family name (empty -> {})."""
    counts: dict[str, int] = {}
    for f in families:
        counts[f] = counts.get(f, 0) + 1
    total = sum(counts.values())
    return {f: counts[f] / total for f in sorted(counts)} if total else {}


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
                        min_per_family: int, max_family_share: float = 1.0) -> list[tuple[Genome, dict]]:
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
    4. the remaining places go to the best of the rest, up to ``size``, but no
       family gets more than ``max(min_per_family, floor(max_family_share *
       size))`` places (the hall of fame stays shorter than ``size`` rather than
       break the cap).

    Args:
        ranked: ``(genome, stats)`` pairs, best first; stats hold ``roi``,
            ``sharpe``, ``max_drawdown``, ``trades``.
        size: places in the hall of fame (>= 1).
        min_per_family: entries kept per family (0 = no diversity rule). When
            families x ``min_per_family`` exceed ``size``, the best-ranked
            families' reserved entries come first.
        max_family_share: most of the ``size`` places one family may take,
            fraction in (0, 1] (1 = no cap).

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
    cap = max(1, int(min_per_family), int(np.floor(max_family_share * size + 1e-9)))
    for i, (g, _) in enumerate(distinct):
        if len(chosen) >= size:
            break
        if i in chosen or per_family.get(g.family, 0) >= cap:
            continue
        per_family[g.family] = per_family.get(g.family, 0) + 1
        chosen.add(i)
    return [distinct[i] for i in sorted(chosen)]


def _cap_families(chosen: list[Individual], pool: list[Individual], cap: int, rank_key) -> list[Individual]:
    """At most ``cap`` genomes of one family in ``chosen``: the weakest of an
    over-represented family (by ``rank_key``) gives its place to the best-ranked
    genome of ``pool`` from a family below the cap that is not idle (an idle
    genome never takes a scoring genome's place). Best effort: a family stays
    above the cap when ``pool`` holds no such genome to take the place (e.g. an
    intraday cycle whose short-horizon genomes are all one family)."""
    chosen = list(chosen)
    while True:
        counts: dict[str, int] = {}
        for i in chosen:
            counts[i.genome.family] = counts.get(i.genome.family, 0) + 1
        over = [f for f, c in counts.items() if c > cap]
        if not over:
            return chosen
        ids = {id(i) for i in chosen}
        weakest = min((i for i in chosen if i.genome.family in over), key=rank_key)
        spare = sorted((i for i in pool if id(i) not in ids and counts.get(i.genome.family, 0) < cap
                        and (weakest.stats.get("idle", False) or not i.stats.get("idle", False))),
                       key=rank_key, reverse=True)
        if not spare:
            return chosen
        chosen[chosen.index(weakest)] = spare[0]


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
    cap = config.family_cap(mu)
    if not config.params_only:
        pop_genomes = _cap_initial(pop_genomes, cap, toolbox)
    scoring = config.scoring()
    holdout = config.patience > 0

    cache: dict[str, tuple[tuple, dict, float]] = {}
    trial_sharpes: list[float] = []
    trial_returns: list[np.ndarray] = []
    trial_ids: list[str] = []
    layout: dict = {}

    def evaluate_new(genomes: list[Genome]) -> list[Individual]:
        todo, seen = [], set()
        for g in genomes:
            gid = g.genome_id
            if gid not in cache and gid not in seen:
                seen.add(gid)
                todo.append(g)
        if todo:
            ev: Evaluation = evaluate(market, todo, engine)
            sc = score(ev, scoring, holdout=holdout)
            layout.update(folds=sc.folds, validation_bars=sc.validation_bars)
            for i, g in enumerate(todo):
                values = tuple(float(x) for x in sc.fitness[i])
                cache[g.genome_id] = (values, {**ev.row(i), **sc.stats(i)}, float(ev.sharpe_bar[i]))
                trial_sharpes.append(float(ev.sharpe_bar[i]))
                trial_returns.append(ev.returns[i])
                trial_ids.append(g.genome_id)
        return [Individual(g, cache[g.genome_id][0], cache[g.genome_id][1]) for g in genomes]

    pop = evaluate_new(pop_genomes)
    frozen_inds = evaluate_new(list(frozen)) if frozen else []
    hof: dict[str, Individual] = {}  # every genome seen; the hall of fame is chosen from it at the end

    def update_hof(inds: list[Individual]) -> None:
        for ind in inds:
            hof.setdefault(ind.genome.genome_id, ind)

    update_hof(pop + frozen_inds)
    history = [_stats(0, pop, holdout)]
    best_val, best_gen, best_pop, stale = history[0]["validation_sharpe"], 0, pop, 0
    if progress:
        progress(0, history[-1])
    gen = 0
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
        pop = _survivors(pop + offspring, mu, config, cap)
        update_hof(offspring)
        history.append(_stats(gen, pop, holdout))
        if progress:
            progress(gen, history[-1])
        if holdout:
            val = history[-1]["validation_sharpe"]
            if val > best_val + 1e-12:
                best_val, best_gen, best_pop, stale = val, gen, pop, 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
        else:
            best_gen, best_pop = gen, pop

    final = sorted(best_pop + frozen_inds, key=lambda i: (i.score, i.fitness.values[0]), reverse=True)
    best_hof = sorted(hof.values(), key=lambda i: (i.score, i.fitness.values[0]), reverse=True)
    return EvolutionResult(
        population=[i.genome for i in final],
        fitness=[dict(i.stats) for i in final],
        hall_of_fame=select_hall_of_fame([(i.genome, dict(i.stats)) for i in best_hof], config.hof_size,
                                         config.min_per_family, config.max_family_share),
        history=history,
        trials=len(cache),
        trial_sharpes=trial_sharpes,
        trial_returns=np.vstack(trial_returns) if trial_returns else np.zeros((0, 0)),
        trial_ids=trial_ids,
        stopped_at=gen,
        best_generation=best_gen,
        early_stopped=gen < config.generations,
        folds=tuple(layout.get("folds", ())),
        validation_bars=int(layout.get("validation_bars", 0)),
    )


def _cap_initial(genomes: list[Genome], cap: int, toolbox) -> list[Genome]:
    """The starting population with at most ``cap`` genomes per family: the
    excess genomes (the last ones of an over-represented family) are replaced by
    random genomes of the least represented families (``toolbox.genome_for_family``)."""
    counts: dict[str, int] = {f: 0 for f in toolbox.family_names}
    for g in genomes:
        counts[g.family] = counts.get(g.family, 0) + 1
    if max(counts.values(), default=0) <= cap:
        return genomes
    out, kept = [], {f: 0 for f in counts}
    for g in genomes:
        if kept[g.family] < cap:
            kept[g.family] += 1
            out.append(g)
            continue
        counts[g.family] -= 1
        under = [f for f in toolbox.family_names if counts[f] < cap]
        if not under:  # every family full: nothing better to put here
            out.append(g)
            continue
        fam = min(under, key=lambda f: (counts[f], f))
        counts[fam] += 1
        out.append(toolbox.genome_for_family(fam))
    return out


def _survivors(pool: list[Individual], mu: int, config: GAConfig, cap: int) -> list[Individual]:
    """The next population from parents + offspring.

    1. each genome once (by id), then each parameter set (family + strategy
       parameters) once, the one with the best score (then ROI) kept;
    2. NSGA-II (or the best by score) picks ``mu``;
    3. ``min_per_family`` of every present family kept (:func:`_keep_families`);
    4. no family above ``cap`` places (:func:`_cap_families`);
    5. when fewer than ``mu`` distinct parameter sets exist, the best remaining
       duplicates fill the places (families below the cap first).
    """
    unique: dict[str, Individual] = {}
    for ind in pool:
        unique.setdefault(ind.genome.genome_id, ind)
    pool = list(unique.values())
    order = sorted(pool, key=lambda i: (i.score, i.fitness.values[0]), reverse=True)
    by_params: dict[str, Individual] = {}
    for ind in order:
        by_params.setdefault(_param_key(ind.genome), ind)
    distinct = [i for i in pool if by_params[_param_key(i.genome)] is i]
    if config.selection == "nsga2":
        chosen = tools.selNSGA2(distinct, min(mu, len(distinct)))
        ranks = _ranks(distinct)
        rank_key = lambda i: (-ranks[id(i)], getattr(i.fitness, "crowding_dist", 0.0))  # noqa: E731
    else:
        chosen = sorted(distinct, key=lambda i: i.score, reverse=True)[:mu]
        rank_key = lambda i: i.score  # noqa: E731
    chosen = _keep_families(chosen, distinct, config.min_per_family, rank_key)
    chosen = _cap_families(chosen, distinct, cap, rank_key)
    if len(chosen) < mu:
        ids = {id(i) for i in chosen}
        counts: dict[str, int] = {}
        for i in chosen:
            counts[i.genome.family] = counts.get(i.genome.family, 0) + 1
        rest = [i for i in order if id(i) not in ids]
        rest.sort(key=lambda i: counts.get(i.genome.family, 0) >= cap)  # stable: under-cap families first
        chosen += rest[: mu - len(chosen)]
    return chosen


def _stats(gen: int, pop: list[Individual], holdout: bool = False) -> dict:
    """One generation's history entry: whole-window Sharpe/ROI of the population,
    the median robust (fold) Sharpe it was selected on, the median Sharpe on the
    inner validation tail of its non-idle genomes (all of them when every one is
    idle; None without a tail) — the early-stopping score: idle genomes, whose
    tail Sharpe is 0, would otherwise make an untrained population look safe —
    and the family counts."""
    sharpes = np.array([i.stats["sharpe"] for i in pop])
    rois = np.array([i.stats["roi"] for i in pop])
    fams: dict[str, int] = {}
    for i in pop:
        fams[i.genome.family] = fams.get(i.genome.family, 0) + 1
    active = [i for i in pop if not i.stats.get("idle", False)] or pop
    val = float(np.median([i.stats.get("validation_sharpe", 0.0) for i in active])) if holdout else None
    return {"generation": gen, "best_sharpe": float(sharpes.max()), "median_sharpe": float(np.median(sharpes)),
            "mean_roi": float(rois.mean()), "best_roi": float(rois.max()),
            "fitness_sharpe": float(np.median([i.score for i in pop])), "validation_sharpe": val,
            "families": fams}
