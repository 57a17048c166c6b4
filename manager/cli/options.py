"""Options shared by the ``cohortlab`` commands, each defined once, and the builders
that turn their values into the application's request objects.

Typer idiom: every shared option is a module-level ``typer.Option(...)`` constant
(default, bounds and help text together) used as the parameter's default in each
command's signature, e.g. ``fee_bps: float = FEE``. An option only one command has,
or whose default or help differs between commands, stays in the command's module.

Bundles:

- data / bars: :data:`DATA`, :data:`SYMBOLS`, :data:`QUOTE`, :data:`WARMUP`; built with
  :func:`bars_request` or :func:`source` (each command has its own ``--start``/``--end``).
- GA (learning loop): :data:`POPULATION`, :data:`SELECTION`, :data:`CXPB`, :data:`MUTPB`,
  :data:`TOURNSIZE`, :data:`MIN_FAMILY`, :data:`MAX_LEV`, :data:`SEED`, :data:`GENOMES`,
  :data:`SEED_FROM`, and the overfitting guards :data:`FOLDS`, :data:`FOLD_AGGREGATE`,
  :data:`MIN_FOLD_TRADES`, :data:`TURNOVER_COST`, :data:`PATIENCE`, :data:`INNER_VALIDATION`,
  :data:`MAX_FAMILY_SHARE`; built with :func:`ga_config` (``--generations`` differs per command).
- engine / costs: :data:`BANKROLL`, :data:`FEE`, :data:`SLIP`, :data:`SHORT`, :data:`MAX_GROSS`,
  :data:`DAILY_STOP` (``--daily-hard-stop``); built with :func:`engine_config`.
- baselines: :data:`BASELINES` (``--baselines N``, random cohorts beside every cohort report).
- store / progress / output: :data:`STORE`, :data:`PROGRESS`, :data:`JSON`; the store is
  opened with :func:`open_store_or_exit`.

Money is in the quote currency of the bars, costs in basis points, limits as
multiples or fractions of equity, durations in bars of the data's timeframe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evolution.evolve import GAConfig
from manager.cli.output import fail
from manager.learning_jobs import Source
from manager.limits import BANKROLL_MAX, BANKROLL_MIN
from manager.policy import DEFAULT_DAILY_HARD_STOP
from manager.runner import BarsRequest
from manager.seeding import SEED_FROM_HELP
from manager.store import Store, StoreError, open_store
from simulator.engine import EngineConfig

# ------------------------------------------------------------------ data / bars
DATA = typer.Option(None, "--data", help="Folder of per-symbol bar files (parquet/csv/feather). "
                    "Default: ./data if it holds bars, else the built-in SYNTHETIC market.")
SYMBOLS = typer.Option(None, "--symbols", help="Comma-separated symbols, e.g. ETH_BTC,LTC_BTC (default: all).")
QUOTE = typer.Option(None, "--quote", help="Quote currency for files named by ticker only (SPY.csv -> USD).")
WARMUP = typer.Option(200, "--warmup-bars", min=0, help="History bars before --start fed to indicators "
                      "and risk-weighted allocation (bars; not traded).")

# ------------------------------------------------------------------ GA (learning loop)
POPULATION = typer.Option(30, "--population", min=2, help="Genomes per generation (mu = lambda).")
SELECTION = typer.Option("nsga2", "--selection", help="Survivor selection: nsga2 (ROI, Sharpe, max drawdown) "
                         "or tournament (Sharpe).")
CXPB = typer.Option(0.5, "--cxpb", min=0.0, max=1.0, help="Probability an offspring comes from crossover.")
MUTPB = typer.Option(0.4, "--mutpb", min=0.0, max=1.0, help="Probability an offspring comes from mutation "
                     "(the rest are mutated copies too).")
TOURNSIZE = typer.Option(3, "--tournsize", min=1, help="Tournament size for parent selection (genomes).")
MIN_FAMILY = typer.Option(2, "--min-per-family", min=0, help="Genomes of every strategy family always kept "
                          "(0 = a family may die out).")
FOLDS = typer.Option(3, "--folds", min=1, help="Contiguous folds of the training window's fit part each "
                     "genome is scored on (its fitness is the --fold-aggregate of their Sharpe ratios).")
FOLD_AGGREGATE = typer.Option("median", "--fold-aggregate", help="Robust aggregate of the per-fold Sharpe "
                              "ratios: median or min.")
MIN_FOLD_TRADES = typer.Option(1, "--min-fold-trades", min=0, help="Positions a genome must open in every "
                               "fold, else it gets the worst fitness (idleness is not rewarded).")
TURNOVER_COST = typer.Option(5.0, "--turnover-cost-bps", min=0.0, help="Stress cost on traded notional in "
                             "the fitness (bps, on top of --fee-bps and --slippage-bps): penalises churning.")
PATIENCE = typer.Option(5, "--patience", min=0, help="Stop after this many generations without a better "
                        "median Sharpe on the inner validation tail, keeping the best generation "
                        "(0 = no early stopping).")
INNER_VALIDATION = typer.Option(0.2, "--inner-validation", min=0.0, max=0.5, help="Fraction of the training "
                                "window held out at its end for early stopping (never used for ranking; "
                                "the cycle's out-of-sample window is untouched).")
MAX_FAMILY_SHARE = typer.Option(0.5, "--max-family-share", min=0.01, max=1.0, help="Most places one strategy "
                                "family may hold in the population and the hall of fame (fraction; 1 = no cap).")
MAX_LEV = typer.Option(2.0, "--max-leverage", min=1.0, max=20.0, help="Cohort ceiling of an agent's leverage "
                       "(multiple of agent equity).")
SEED = typer.Option(7, "--seed", help="Seed of every random choice.")
GENOMES = typer.Option(None, "--genomes", help="Start from these genomes (JSON file; "
                       "same as --seed-from FILE).")
SEED_FROM = typer.Option("latest", "--seed-from", metavar="latest|random|RUN_ID|FILE", help=SEED_FROM_HELP)

# ------------------------------------------------------------------ engine / costs
BANKROLL = typer.Option(1000.0, "--bankroll", min=BANKROLL_MIN, max=BANKROLL_MAX,
                        help="Parent bankroll in the quote currency (USD, or BTC for *_BTC pairs), "
                        "50 to 100,000 (the API's bounds).")
FEE = typer.Option(10.0, "--fee-bps", min=0.0, help="Fee per fill, bps of notional (10 = 0.10 %).")
SLIP = typer.Option(5.0, "--slippage-bps", min=0.0, help="Adverse slippage per fill, bps of price.")
SHORT = typer.Option(False, "--allow-short", help="Allow short positions (long-only by default).")
MAX_GROSS = typer.Option(1.0, "--max-gross-leverage", min=0.0, help="Parent gross-exposure "
                         "ceiling, multiple of parent equity.")
DAILY_STOP = typer.Option(DEFAULT_DAILY_HARD_STOP, "--daily-hard-stop", min=0.0, metavar="FRACTION", help="Daily hard stop: "
                          "when parent equity falls by this fraction of the parent equity at the start of "
                          "the UTC day (0.05 = 5 %; 0 = off; below 1), every agent is flattened at the next "
                          "open and takes no new exposure until the next UTC day.")

# ------------------------------------------------------------------ baselines
BASELINES = typer.Option(20, "--baselines", min=0, max=1000, help="Random-genome cohorts (same size, "
                         "bankroll, costs and window, run in one engine call) the cohort is reported "
                         "against, with its percentile among them; 0 = off (no baselines in the report).")

# ------------------------------------------------------------------ store / progress / output
STORE = typer.Option(None, "--store", help="Store URL (default $COHORTLAB_STORE or sqlite:///./cohortlab.db).")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr.")
JSON = typer.Option(None, "--json", help="Write the report as JSON to this path.")


DATA_OPTIONS = (DATA, SYMBOLS, QUOTE, WARMUP)
"""The data/bars bundle."""
GA_OPTIONS = (POPULATION, SELECTION, CXPB, MUTPB, TOURNSIZE, MIN_FAMILY, MAX_LEV, SEED, GENOMES,
              SEED_FROM, FOLDS, FOLD_AGGREGATE, MIN_FOLD_TRADES, TURNOVER_COST, PATIENCE, INNER_VALIDATION,
              MAX_FAMILY_SHARE)
"""The GA bundle of the learning-loop commands."""
ENGINE_OPTIONS = (BANKROLL, FEE, SLIP, SHORT, MAX_GROSS, DAILY_STOP)
"""The engine/cost bundle."""
OUTPUT_OPTIONS = (STORE, PROGRESS, JSON)
"""The store/progress/output bundle."""


# ------------------------------------------------------------------ builders
def symbol_list(value: Optional[str]) -> Optional[list[str]]:
    """``"ETH_BTC, LTC_BTC"`` -> ``["ETH_BTC", "LTC_BTC"]``; None or empty -> None (all symbols)."""
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


def path_text(path: Optional[Path]) -> Optional[str]:
    """A path option as the string the requests take (None when not given)."""
    return str(path) if path else None


def bars_request(data: Optional[Path], symbols: Optional[str], start: Optional[str], end: Optional[str],
                 warmup_bars: int, quote: Optional[str], **more) -> BarsRequest:
    """The data/bars options as a :class:`manager.runner.BarsRequest` (``more``: ``seed``, ``whole``)."""
    return BarsRequest(data=path_text(data), symbols=symbol_list(symbols), start=start, end=end,
                       warmup_bars=warmup_bars, quote=quote, **more)


def source(data: Optional[Path], symbols: Optional[str], quote: Optional[str], seed: int) -> Source:
    """The data options as the learning loop's :class:`manager.learning_jobs.Source`."""
    return Source(data=path_text(data), symbols=symbol_list(symbols), quote=quote, seed=seed)


def ga_config(generations: int, population: int, selection: str, cxpb: float, mutpb: float, tournsize: int,
              min_per_family: int, *, folds: int = 3, fold_aggregate: str = "median", min_fold_trades: int = 1,
              turnover_cost_bps: float = 5.0, patience: int = 5, inner_validation: float = 0.2,
              max_family_share: float = 0.5) -> GAConfig:
    """The GA options as a :class:`evolution.evolve.GAConfig` (``inner_validation`` is its
    ``validation_share``); bad values raise :class:`evolution.evolve.EvolutionError`."""
    return GAConfig(generations=generations, population=population, selection=selection, cxpb=cxpb,
                    mutpb=mutpb, tournsize=tournsize, min_per_family=min_per_family, folds=folds,
                    fold_aggregate=fold_aggregate, min_fold_trades=min_fold_trades,
                    turnover_cost_bps=turnover_cost_bps, patience=patience, validation_share=inner_validation,
                    max_family_share=max_family_share)


def engine_config(fee_bps: float, slippage_bps: float, allow_short: bool, **limits) -> EngineConfig:
    """The cost options (plus any exposure ``limits``, e.g. ``max_gross_leverage`` or
    ``daily_hard_stop``) as an :class:`simulator.engine.EngineConfig`; what is not given keeps
    the engine's default. An out-of-range value raises :class:`simulator.engine.EngineError`."""
    return EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, allow_short=allow_short, **limits)


def open_store_or_exit(url: Optional[str]) -> Store:
    """The store at ``url`` (None: ``$COHORTLAB_STORE`` or the embedded SQLite file); a bad URL
    exits with status 2 naming it."""
    try:
        return open_store(url)
    except StoreError as exc:
        fail(exc)
