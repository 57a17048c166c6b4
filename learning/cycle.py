"""One learning cycle: evolve on a training window, score out of sample on the
window after it, report in-sample vs out-of-sample with the Deflated Sharpe.

Modes:

``daily``
    full GA (crossover + mutation) over the whole population on a lookback of
    days.
``intraday``
    short lookback (6/12/24 h): only *short-horizon* genomes — whose longest
    indicator window fits in a quarter of the training bars — are mutated, and
    only in their family parameters; the others are carried over unchanged.

Pure computation on a :class:`~simulator.market.MarketData` that covers the
cycle's windows; :mod:`manager.learning_jobs` loads bars and persists results.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from evolution.evolve import EvolutionResult, GAConfig, evolve
from evolution.fitness import evaluate
from evolution.genome import Genome
from evolution.toolbox import random_genomes
from learning.walkforward import Split
from simulator import metrics
from simulator.engine import EngineConfig
from simulator.market import MarketData

MODES = ("daily", "intraday")


class CycleError(ValueError):
    """Bad cycle settings (mode, windows); the message says what to change."""


def horizon_bars(genome: Genome) -> int:
    """The genome's longest integer parameter (its indicator windows, in bars)."""
    ints = [v for v in genome.params.values() if isinstance(v, int) and not isinstance(v, bool)]
    return max(ints, default=0)


def short_horizon(genomes: Sequence[Genome], train_bars: int) -> list[bool]:
    """Which genomes are short-horizon for a window of ``train_bars`` bars: their
    longest indicator window is at most a quarter of it."""
    return [horizon_bars(g) <= max(train_bars // 4, 1) for g in genomes]


def _summary(rows: list[dict]) -> dict:
    sh = np.array([r["sharpe"] for r in rows]) if rows else np.zeros(1)
    roi = np.array([r["roi"] for r in rows]) if rows else np.zeros(1)
    return {"genomes": len(rows), "best_sharpe": float(sh.max()), "median_sharpe": float(np.median(sh)),
            "mean_roi": float(roi.mean()), "best_roi": float(roi.max())}


@dataclass
class CycleResult:
    """What a cycle tried, what won, and how it held up out of sample.

    Attributes:
        cycle_id: deterministic id (mode, windows, seed, starting population).
        mode: ``daily`` or ``intraday``.
        split: the training and validation windows (never overlapping).
        population: the evolved genomes, ranked by in-sample Deflated Sharpe,
            then Sharpe.
        table: one row per genome of ``population``: ``genome_id, family,
            in_sample {roi, sharpe, max_drawdown, trades}, out_of_sample {...},
            deflated_sharpe`` (in-sample DSR given all trials of the cycle).
        in_sample, out_of_sample: population summaries (best/median Sharpe,
            mean/best ROI) side by side.
        evolution: the GA's result (history, hall of fame, trials).
        var_trial_sharpe: V[SR_n] of the per-bar Sharpe over all trials.
        seeded_from, seeding_note: where the starting genomes came from, and
            why (set by the caller; see :mod:`manager.seeding`).
        note: why nothing was evolved, when nothing was (an intraday cycle
            without a short-horizon genome); None otherwise.
        n_trials: the N of the Deflated Sharpe and where it comes from:
            ``{"cycle": distinct genomes evaluated by this cycle, "prior": trials
            of the lineage and optimize studies that could have been selected
            before it (``prior_trials``), "total": their sum (the N used),
            "effective": clusters of this cycle's trial returns}`` (see
            :mod:`simulator.metrics.overfitting` for the sources).
        pbo: Probability of Backtest Overfitting by CSCV over every trial's
            per-bar returns on the training window
            (:func:`simulator.metrics.probability_of_backtest_overfitting`, S =
            :data:`~simulator.metrics.PBO_BLOCKS`), or None with fewer than 2
            trials or 2·S training bars.
        rank_correlation: Spearman's ρ between the in-sample and out-of-sample
            Sharpe of the population's genomes (None when undefined).
    """

    cycle_id: str
    mode: str
    split: Split
    population: list[Genome]
    table: list[dict]
    in_sample: dict
    out_of_sample: dict
    evolution: EvolutionResult
    var_trial_sharpe: float
    settings: dict = field(default_factory=dict)
    seeded_from: str = "random"
    seeding_note: str = ""
    note: str | None = None
    n_trials: dict = field(default_factory=dict)
    pbo: dict | None = None
    rank_correlation: float | None = None

    def knowledge(self) -> dict:
        """The knowledge-base record: what was tried, what won, IS vs OOS.

        ``tried`` also says where the GA stopped (``stopped_at``,
        ``best_generation`` — the generation returned —, ``early_stopped``)
        and how it scored (``folds``: ``[start, stop)`` bar ranges of the fit
        part; ``validation_bars``: the inner validation tail); ``family_shares``
        is ``{"population": {family: fraction}, "hall_of_fame": {...}}``.
        """
        winner = self.table[0] if self.table else {}
        return {
            "cycle_id": self.cycle_id, "mode": self.mode,
            "train": {"start": str(self.split.train.start), "end": str(self.split.train.end)},
            "validation": {"start": str(self.split.validation.start), "end": str(self.split.validation.end)},
            "settings": self.settings,
            "seeded_from": self.seeded_from, "seeding_note": self.seeding_note,
            "tried": {"trials": self.evolution.trials,
                      "generations": len(self.evolution.history) - 1,
                      "var_trial_sharpe": self.var_trial_sharpe,
                      "n_trials": self.n_trials,
                      "stopped_at": self.evolution.stopped_at,
                      "best_generation": self.evolution.best_generation,
                      "early_stopped": self.evolution.early_stopped,
                      "folds": [list(f) for f in self.evolution.folds],
                      "validation_bars": self.evolution.validation_bars},
            "family_shares": self.evolution.family_shares(),
            "winner": winner,
            "pbo": self.pbo, "rank_correlation": self.rank_correlation,
            "genomes": [{"genome_id": r["genome_id"], "family": r["family"], "in_sample": r["in_sample"],
                         "out_of_sample": r["out_of_sample"], "deflated_sharpe": r["deflated_sharpe"]}
                        for r in self.table],
            "in_sample": self.in_sample, "out_of_sample": self.out_of_sample,
            "history": self.evolution.history,
            "note": self.note,
        }


def _overfitting(evo: EvolutionResult, table: list[dict]) -> dict:
    """PBO (CSCV, S = :data:`simulator.metrics.PBO_BLOCKS`) and effective N over the
    ``(trials, T)`` trial returns of the training window, and the Spearman ρ of
    the table's in- vs out-of-sample Sharpes (sources: :mod:`simulator.metrics.overfitting`)."""
    rets = np.asarray(getattr(evo, "trial_returns", np.zeros((0, 0))), dtype=np.float64)
    s = metrics.PBO_BLOCKS
    ok = rets.ndim == 2 and rets.shape[0] >= 2 and rets.shape[1] >= 2 * s
    pbo = metrics.probability_of_backtest_overfitting(rets, s) if ok else None
    eff = metrics.effective_trials(rets) if rets.ndim == 2 and rets.size else None
    rho = metrics.rank_correlation([r["in_sample"]["sharpe"] for r in table],
                                   [r["out_of_sample"]["sharpe"] for r in table]) if table else None
    return {"pbo": pbo, "effective": eff, "rank_correlation": rho}


def cycle_id_for(mode: str, split: Split, seed: int, genomes: Sequence[Genome], ga: GAConfig) -> str:
    """A stable id: same inputs, same id (so a repeated cycle is recognisable)."""
    blob = json.dumps({"mode": mode, "train": str(split.train), "val": str(split.validation), "seed": seed,
                       "start": [g.genome_id for g in genomes], "ga": asdict(ga)}, sort_keys=True)
    day = split.validation.start.strftime("%Y%m%dT%H%M")
    return f"{mode}-{day}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def run_cycle(
    market: MarketData,
    split: Split,
    *,
    mode: str = "daily",
    start: Sequence[Genome] = (),
    ga: GAConfig = GAConfig(),
    engine: EngineConfig = EngineConfig(),
    seed: int = 0,
    max_leverage: float = 2.0,
    warmup_bars: int = 200,
    progress: Callable[[int, dict], None] | None = None,
    prior_trials: int = 0,
) -> CycleResult:
    """Evolve on ``split.train`` and score the result on ``split.validation``.

    Args:
        market: bars covering both windows (plus warm-up history before them).
        split: training and validation windows.
        mode: ``daily`` or ``intraday`` (see the module docstring).
        start: the current population (random genomes fill it up to
            ``ga.population``).
        ga: GA settings (intraday mode forces mutation of parameters only).
        engine: costs for fitness evaluation.
        seed: seed of every random choice.
        max_leverage: cohort leverage ceiling.
        warmup_bars: indicator history before each window (bars).
        progress: per-generation callback.
        prior_trials: trials made before this cycle that could have been
            selected into it (its lineage's cycles and optimize studies on the
            same market; :func:`manager.learning_jobs.prior_trials`); added to
            the cycle's own trials for the N of the Deflated Sharpe. V[SR]
            still comes from this cycle's trials only (same sample length).

    Raises:
        CycleError: unknown mode or overlapping windows; MarketDataError: a
            window without bars.
    """
    if mode not in MODES:
        raise CycleError(f"mode {mode!r} unknown; allowed: {', '.join(MODES)}")
    if split.train.overlaps(split.validation):
        raise CycleError(f"training {split.train} and validation {split.validation} overlap")
    train = market.between(split.train.start, split.train.end, warmup_bars)
    valid = market.between(split.validation.start, split.validation.end, warmup_bars)
    start = list(start)
    frozen: list[Genome] = []
    note = None
    if mode == "intraday":
        if not start:  # nothing stored yet: the current cohort is a random one
            start = random_genomes(ga.population, train.symbols, seed=seed, max_leverage=max_leverage)
        flags = short_horizon(start, train.n_trading_bars)
        frozen = [g for g, f in zip(start, flags) if not f]
        start = [g for g, f in zip(start, flags) if f]
        if start:
            ga = replace(ga, cxpb=0.0, mutpb=1.0, params_only=True, population=max(len(start), 2))
        else:  # nothing short-horizon to mutate: the cycle only re-scores the population
            start, frozen = frozen, []
            ga = replace(ga, generations=0, population=max(len(start), 2))
            bars = train.n_trading_bars
            note = (f"no short-horizon genome: the longest indicator window of every genome (the shortest "
                    f"of them {min(horizon_bars(g) for g in start)} bars) exceeds a quarter of the {bars} "
                    f"training bars ({max(bars // 4, 1)}); {len(start)} genomes carried over unchanged and "
                    f"re-scored, 0 generations evolved")
    cid = cycle_id_for(mode, split, seed, list(start) + frozen, ga)
    evo = evolve(train, start, config=ga, engine=engine, seed=seed, max_leverage=max_leverage,
                 frozen=frozen, progress=progress)
    pop = evo.population
    is_ev = evaluate(train, pop, engine)
    oos_ev = evaluate(valid, pop, engine)
    var_sr = float(np.var(evo.trial_sharpes, ddof=1)) if len(evo.trial_sharpes) > 1 else 0.0
    n_total = max(evo.trials + max(int(prior_trials), 0), 1)
    dsr = np.atleast_1d(metrics.deflated_sharpe_ratio(is_ev.returns, n_total, var_sr))
    table = []
    for i, g in enumerate(pop):
        table.append({"genome_id": g.genome_id, "family": g.family, "genome": g.to_dict(),
                      "in_sample": is_ev.row(i), "out_of_sample": oos_ev.row(i),
                      "deflated_sharpe": float(dsr[i])})
    # ranked by the Deflated Sharpe (selection luck removed), then the plain Sharpe
    order = sorted(range(len(pop)), key=lambda i: (-table[i]["deflated_sharpe"], -table[i]["in_sample"]["sharpe"]))
    pop, table = [pop[i] for i in order], [table[i] for i in order]
    overfit = _overfitting(evo, table)
    return CycleResult(
        n_trials={"cycle": evo.trials, "prior": max(int(prior_trials), 0), "total": n_total,
                  "effective": overfit["effective"]},
        pbo=overfit["pbo"], rank_correlation=overfit["rank_correlation"],
        cycle_id=cid, mode=mode, split=split, population=pop, table=table,
        in_sample=_summary([r["in_sample"] for r in table]),
        out_of_sample=_summary([r["out_of_sample"] for r in table]),
        evolution=evo, var_trial_sharpe=var_sr,
        settings={"ga": asdict(ga), "seed": seed, "max_leverage": max_leverage, "warmup_bars": warmup_bars},
        note=note,
    )
