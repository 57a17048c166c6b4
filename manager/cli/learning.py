"""Commands of the learning loop: ``evolve``, ``learn``, ``campaign`` and ``optimize``.

They share the data, GA, engine and store bundles of :mod:`manager.cli.options`; each
parses its options, calls one use case of :mod:`manager.learning_jobs` and prints
the result through :mod:`manager.cli.output`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from learning.search import SearchError
from learning.walkforward import Split, Window
from manager.cli.options import (FOLD_AGGREGATE, FOLDS, INNER_VALIDATION, MAX_FAMILY_SHARE, MIN_FOLD_TRADES,
                                 PATIENCE, TURNOVER_COST)
from manager.cli.options import (BANKROLL, BASELINES, CXPB, DAILY_STOP, DATA, FEE, GENOMES, JSON, MAX_GROSS, MAX_LEV, MIN_FAMILY,
                                 MUTPB, POPULATION, PROGRESS, QUOTE, SEED, SEED_FROM, SELECTION, SHORT, SLIP,
                                 STORE, SYMBOLS, TOURNSIZE, WARMUP, engine_config, ga_config,
                                 open_store_or_exit, path_text, source, symbol_list)
from manager.cli.output import (USER_ERRORS, GenerationProgress, fail, print_campaign, print_cycle,
                                print_search, progress_messages, trial_messages, wrote)
from manager.campaigns import CampaignRequest, run_campaign
from manager.learning_jobs import CycleRequest, learning_cycle
from manager.search_jobs import optimize_family, optimize_ga
from manager.runner import CohortRequest
from manager.times import RunError, duration, utc
from simulator.allocation import POLICIES, check_allocation

TOP_GENOMES = typer.Option(10, "--top", min=1, help="Rows of the population table to print.")


def _guards(folds: int, fold_aggregate: str, min_fold_trades: int, turnover_cost_bps: float, patience: int,
            inner_validation: float, max_family_share: float) -> dict:
    """The overfitting-guard options as keywords of :func:`manager.cli.options.ga_config`."""
    return dict(folds=folds, fold_aggregate=fold_aggregate, min_fold_trades=min_fold_trades,
                turnover_cost_bps=turnover_cost_bps, patience=patience, inner_validation=inner_validation,
                max_family_share=max_family_share)


def _cycle(req: CycleRequest, store_url: Optional[str], progress: bool, label: str, json_path: Optional[Path],
           top: int) -> None:
    """Run a learning cycle with a progress bar, print it, store it, write JSON."""
    try:
        store = open_store_or_exit(store_url)
        with store, GenerationProgress(progress, req.ga.generations, label) as bar:
            result = learning_cycle(req, store, bar)
    except USER_ERRORS as exc:
        fail(exc)
    print_cycle(result, top)
    wrote(json_path, {**result.knowledge(), "population": result.table})


def evolve(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    train_start: str = typer.Option(..., "--train-start", help="Start of the training window, UTC."),
    train_end: str = typer.Option(..., "--train-end", help="End of the training window, UTC, exclusive."),
    validation: str = typer.Option("1d", "--validation", help="Out-of-sample window after --train-end "
                                   "(e.g. 1d, 12h)."),
    population: int = POPULATION,
    generations: int = typer.Option(40, "--generations", min=0, help="GA generations."),
    selection: str = SELECTION,
    cxpb: float = CXPB,
    mutpb: float = MUTPB,
    tournsize: int = TOURNSIZE,
    min_per_family: int = MIN_FAMILY,
    folds: int = FOLDS,
    fold_aggregate: str = FOLD_AGGREGATE,
    min_fold_trades: int = MIN_FOLD_TRADES,
    turnover_cost_bps: float = TURNOVER_COST,
    patience: int = PATIENCE,
    inner_validation: float = INNER_VALIDATION,
    max_family_share: float = MAX_FAMILY_SHARE,
    max_leverage: float = MAX_LEV,
    seed: int = SEED,
    genomes: Optional[Path] = GENOMES,
    seed_from: str = SEED_FROM,
    warmup_bars: int = WARMUP,
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    json_path: Optional[Path] = JSON,
    top: int = TOP_GENOMES,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Evolve a population on a training window and score it out of sample.

    The population, hall of fame and a knowledge record are stored; `run` then seeds
    its agents from the hall of fame."""
    guards = _guards(folds, fold_aggregate, min_fold_trades, turnover_cost_bps, patience, inner_validation,
                     max_family_share)
    try:
        t0, t1 = utc(train_start, "train-start"), utc(train_end, "train-end")
        if t1 <= t0:
            raise RunError(f"--train-end {train_end} must be after --train-start {train_start}")
        split = Split(Window(t0, t1), Window(t1, t1 + duration(validation, "validation")))
        req = CycleRequest(source=source(data, symbols, quote, seed), mode="daily", split=split,
                           ga=ga_config(generations, population, selection, cxpb, mutpb, tournsize, min_per_family,
                                         **guards),
                           engine=engine_config(fee_bps, slippage_bps, allow_short),
                           seed=seed, max_leverage=max_leverage, warmup_bars=warmup_bars,
                           genomes_path=path_text(genomes), seed_from=seed_from)
    except USER_ERRORS as exc:
        fail(exc)
    _cycle(req, store_url, progress, "evolving", json_path, top)


def learn(
    mode: str = typer.Option("daily", "--mode", help="daily (lookback in days, full GA) or intraday (lookback "
                             "6/12/24h, mutates only short-horizon genomes' parameters)."),
    lookback: str = typer.Option("3d", "--lookback", help="Data the cycle learns from, ending at --end "
                                 "(e.g. 3d, 12h); its last part is the out-of-sample window."),
    validation: Optional[str] = typer.Option(None, "--validation", help="Out-of-sample tail of the lookback "
                                             "(default 1d for daily, a quarter of the lookback for intraday)."),
    end: Optional[str] = typer.Option(None, "--end", help="End of the lookback, UTC (default: end of the data)."),
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    population: int = POPULATION,
    generations: Optional[int] = typer.Option(None, "--generations", min=0, help="GA generations (default 40 "
                                              "daily, 10 intraday)."),
    selection: str = SELECTION,
    cxpb: float = CXPB,
    mutpb: float = MUTPB,
    tournsize: int = TOURNSIZE,
    min_per_family: int = MIN_FAMILY,
    folds: int = FOLDS,
    fold_aggregate: str = FOLD_AGGREGATE,
    min_fold_trades: int = MIN_FOLD_TRADES,
    turnover_cost_bps: float = TURNOVER_COST,
    patience: int = PATIENCE,
    inner_validation: float = INNER_VALIDATION,
    max_family_share: float = MAX_FAMILY_SHARE,
    max_leverage: float = MAX_LEV,
    seed: int = SEED,
    genomes: Optional[Path] = GENOMES,
    seed_from: str = SEED_FROM,
    warmup_bars: int = WARMUP,
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    json_path: Optional[Path] = JSON,
    top: int = TOP_GENOMES,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run one learning cycle (daily or intraday) from the store's latest population.

    Evolve, score walk-forward, and store the new population, hall of fame and
    knowledge record."""
    gens = generations if generations is not None else (40 if mode == "daily" else 10)
    guards = _guards(folds, fold_aggregate, min_fold_trades, turnover_cost_bps, patience, inner_validation,
                     max_family_share)
    try:
        if mode not in ("daily", "intraday"):
            raise RunError(f"--mode {mode!r} unknown; allowed: daily, intraday")
        req = CycleRequest(source=source(data, symbols, quote, seed), mode=mode, end=end, lookback=lookback,
                           validation=validation,
                           ga=ga_config(gens, population, selection, cxpb, mutpb, tournsize, min_per_family, **guards),
                           engine=engine_config(fee_bps, slippage_bps, allow_short),
                           seed=seed, max_leverage=max_leverage, warmup_bars=warmup_bars,
                           genomes_path=path_text(genomes), seed_from=seed_from)
    except USER_ERRORS as exc:
        fail(exc)
    _cycle(req, store_url, progress, f"{mode} cycle", json_path, top)


def campaign(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    start: str = typer.Option(..., "--start", help="Day 1 (UTC date)."),
    days: int = typer.Option(3, "--days", min=1, max=60, help="Consecutive days to run."),
    lookback: str = typer.Option("3d", "--lookback", help="Training data before each day (e.g. 3d, 36h)."),
    bankroll: float = BANKROLL,
    agents: int = typer.Option(30, "--agents", min=2, max=1000, help="Agents per cohort (= GA population)."),
    seed: int = SEED,
    generations: int = typer.Option(20, "--generations", min=0, help="GA generations per day."),
    selection: str = SELECTION,
    cxpb: float = CXPB,
    mutpb: float = MUTPB,
    tournsize: int = TOURNSIZE,
    min_per_family: int = MIN_FAMILY,
    folds: int = FOLDS,
    fold_aggregate: str = FOLD_AGGREGATE,
    min_fold_trades: int = MIN_FOLD_TRADES,
    turnover_cost_bps: float = TURNOVER_COST,
    patience: int = PATIENCE,
    inner_validation: float = INNER_VALIDATION,
    max_family_share: float = MAX_FAMILY_SHARE,
    genomes: Optional[Path] = typer.Option(None, "--genomes", help="Day-1 starting genomes (JSON file; "
                                           "same as --seed-from FILE)."),
    seed_from: str = SEED_FROM,
    allocation: str = typer.Option("equal", "--allocation", help=f"Allocation policy: {', '.join(POLICIES)}."),
    reserve: float = typer.Option(0.0, "--reserve", min=0.0, max=0.99, help="Fraction of the bankroll kept unallocated."),
    max_leverage: float = MAX_LEV,
    max_gross_leverage: float = MAX_GROSS,
    daily_hard_stop: float = DAILY_STOP,
    max_symbol_exposure: float = typer.Option(1.0, "--max-symbol-exposure", min=0.0, help="Per-symbol cap, "
                                              "fraction of parent equity."),
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    warmup_bars: int = WARMUP,
    min_trades: int = typer.Option(3, "--min-trades", min=0, help="Promotion rule: minimum trades in the last 24 h."),
    dsr_threshold: float = typer.Option(0.5, "--dsr-threshold", min=0.0, max=1.0, help="Promotion rule: minimum "
                                        "Deflated Sharpe Ratio (probability, 0..1)."),
    baselines: int = BASELINES,
    policy: bool = typer.Option(True, "--policy/--no-policy", help="Trade each day under the leverage policy's "
                                "tiers (agent ceiling = min(leverage gene, lineage tier); parent gross ceiling = "
                                "the campaign parent's tier, replacing --max-gross-leverage) and record its "
                                "decisions; see `cohortlab policy show`."),
    json_path: Optional[Path] = JSON,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run a multi-day campaign: learn, trade, score, day after day.

    Before each day a learning cycle on the preceding lookback, then the cohort with
    the evolved agents; at the end, promotion candidates ranked by the promotion rule."""
    guards = _guards(folds, fold_aggregate, min_fold_trades, turnover_cost_bps, patience, inner_validation,
                     max_family_share)
    try:
        check_allocation(allocation, reserve=reserve, bankroll=bankroll)
        engine_cfg = engine_config(fee_bps, slippage_bps, allow_short, max_gross_leverage=max_gross_leverage,
                                   max_symbol_exposure=max_symbol_exposure, daily_hard_stop=daily_hard_stop)
        req = CampaignRequest(
            source=source(data, symbols, quote, seed), start=start, days=days, lookback=lookback,
            cohort=CohortRequest(bankroll=bankroll, agents=agents, seed=seed, genomes_path=path_text(genomes),
                                 seed_from=seed_from, allocation=allocation,
                                 reserve=reserve, max_leverage=max_leverage, engine=engine_cfg,
                                 baselines=baselines),
            ga=ga_config(generations, agents, selection, cxpb, mutpb, tournsize, min_per_family, **guards),
            warmup_bars=warmup_bars, min_trades=min_trades, dsr_threshold=dsr_threshold, policy=policy)
        store = open_store_or_exit(store_url)
        with store:
            report = run_campaign(req, store, progress_messages(progress))
    except USER_ERRORS as exc:
        fail(exc)
    print_campaign(report, min_trades, dsr_threshold)
    wrote(json_path, report)


def optimize(
    strategy: Optional[str] = typer.Option(None, "--strategy", help="Tune this family's parameters "
                                           "(default: tune the GA's own hyper-parameters)."),
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    train_start: Optional[str] = typer.Option(None, "--train-start", help="Family search: start of the training "
                                              "window, UTC."),
    train_end: Optional[str] = typer.Option(None, "--train-end", help="Family search: end of the training "
                                            "window (exclusive); GA search: end of the validation window."),
    validation: str = typer.Option("1d", "--validation", help="Out-of-sample window (after --train-end for a "
                                   "family; the last part before --train-end for the GA)."),
    trials: int = typer.Option(20, "--trials", min=1, help="Total trials wanted in the study (resumes a stored study)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default derived from the search)."),
    generations: int = typer.Option(10, "--generations", min=0, help="GA search: generations per trial."),
    population: int = typer.Option(20, "--population", min=2, help="GA search: population per trial."),
    max_lookback_hours: int = typer.Option(72, "--max-lookback-hours", min=7, help="GA search: upper bound of "
                                           "the lookback dimension (hours)."),
    seed: int = typer.Option(7, "--seed", help="Seed of the optimizer and the GA."),
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    warmup_bars: int = WARMUP,
    json_path: Optional[Path] = JSON,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Bayesian search over a family's parameters or the GA's hyper-parameters.

    scikit-optimize ask/tell; every trial is stored, so re-running continues the study."""
    engine_cfg = engine_config(fee_bps, slippage_bps, allow_short)
    src = source(data, symbols, quote, seed)
    show = trial_messages(progress)
    try:
        store = open_store_or_exit(store_url)
        with store:
            if strategy:
                if not (train_start and train_end):
                    raise RunError("--strategy needs --train-start and --train-end")
                res, best = optimize_family(src, strategy, start=train_start, end=train_end, validation=validation,
                                            study=study, trials=trials, seed=seed, engine=engine_cfg, store=store,
                                            symbols=symbol_list(symbols), warmup_bars=warmup_bars, progress=show)
            else:
                res = optimize_ga(src, end=train_end, validation=validation, study=study, trials=trials,
                                  generations=generations, population=population, seed=seed, engine=engine_cfg,
                                  store=store, max_lookback_hours=max_lookback_hours, warmup_bars=warmup_bars,
                                  progress=show)
                best = {"params": res.best["params"], "out_of_sample": res.best.get("out_of_sample"),
                        "holdout": res.best.get("holdout")}
    except USER_ERRORS + (SearchError,) as exc:
        fail(exc)
    print_search(res, best)
    wrote(json_path, {"study": res.study, "trials": res.trials, "best": res.best, "result": best})
