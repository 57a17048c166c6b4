"""The ``cohortlab`` command line.

Money is in the quote currency of the bars (USD for ``*_USD`` and equities,
BTC for ``*_BTC``); costs in basis points (1 bps = 0.01 %); limits as
multiples or fractions of equity; time in bars of the data's timeframe.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evolution.genome import GenomeError
from manager import display
from manager.report import LEADERBOARD_COLUMNS, write_json, write_leaderboard_csv
from manager.launch import STAGES as LAUNCH_STAGES
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest, RunError, run_backtest
from manager.seeding import SEED_FROM_HELP
from manager.store import Store, StoreError, open_store
from simulator.allocation import POLICIES, AllocationError, check_allocation
from simulator.engine import EngineConfig, EngineError
from simulator.ledger import verify_journal
from simulator.market import MarketDataError
from simulator.strategies.base import StrategyError
from simulator.strategies.registry import all_strategies, get_strategy

app = typer.Typer(
    help="cohortlab: intraday cohorts of evolved trading agents on one shared parent bankroll.\n\n"
         "Money is in the bars' quote currency (USD, or BTC for *_BTC pairs); costs in bps "
         "(1 bps = 0.01 %); exposure limits as multiples/fractions of equity; durations in bars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Stored runs.", no_args_is_help=True)
ledger_app = typer.Typer(help="The bankroll ledger of a stored run.", no_args_is_help=True)
data_app = typer.Typer(help="Market data.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(ledger_app, name="ledger")
app.add_typer(data_app, name="data")

console = Console()
if not console.is_terminal:  # piped or captured: do not squeeze the leaderboard into 80 columns
    console = Console(width=140)
err = Console(stderr=True)

from evolution.evolve import EvolutionError  # noqa: E402
from learning.cycle import CycleError  # noqa: E402

USER_ERRORS = (RunError, MarketDataError, GenomeError, StrategyError, AllocationError, EngineError,
               StoreError, FileNotFoundError, EvolutionError, CycleError)


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=2)


def _store(url: Optional[str]) -> Store:
    try:
        return open_store(url)
    except StoreError as exc:
        _fail(exc)


def _symbols(value: Optional[str]) -> Optional[list[str]]:
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


class _Stages:
    """A progress bar over the stages of a run."""

    STAGES = LAUNCH_STAGES

    def __init__(self, enabled: bool):
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(),
                                 console=err, disable=not enabled, transient=False)
        self.task = None
        self.labels = {"loading": "loading bars", "seeding": "seeding agents",
                       "simulating": "simulating (JIT on first run)", "storing": "storing run + ledger"}

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("starting", total=len(self.STAGES))
        return self

    def __call__(self, stage: str) -> None:
        done = self.STAGES.index(stage) if stage in self.STAGES else 0
        self.progress.update(self.task, completed=done, description=self.labels.get(stage, stage))

    def __exit__(self, *exc):
        if not any(exc):
            self.progress.update(self.task, completed=len(self.STAGES), description="done")
        self.progress.__exit__(*exc)


# shared options --------------------------------------------------------------
DATA = typer.Option(None, "--data", help="Folder of per-symbol bar files (parquet/csv/feather). "
                    "Default: ./data if it holds bars, else the built-in SYNTHETIC market.")
SYMBOLS = typer.Option(None, "--symbols", help="Comma-separated symbols, e.g. ETH_BTC,LTC_BTC (default: all).")
START = typer.Option(None, "--start", help="First traded bar, UTC (2018-01-15 or 2018-01-15T06:00). "
                     "Default: one day before --end, or the last day of the data.")
END = typer.Option(None, "--end", help="End of the traded window, UTC, exclusive. Default: --start + 1 day.")
WARMUP = typer.Option(200, "--warmup-bars", min=0, help="History bars before --start fed to indicators "
                      "and risk-weighted allocation (bars; not traded).")
QUOTE = typer.Option(None, "--quote", help="Quote currency for files named by ticker only (SPY.csv -> USD).")
BANKROLL = typer.Option(1000.0, "--bankroll", help="Parent bankroll in the quote currency (USD, or BTC "
                        "for *_BTC pairs).")
FEE = typer.Option(10.0, "--fee-bps", min=0.0, help="Fee per fill, bps of notional (10 = 0.10 %).")
SLIP = typer.Option(5.0, "--slippage-bps", min=0.0, help="Adverse slippage per fill, bps of price.")
SHORT = typer.Option(False, "--allow-short", help="Allow short positions (long-only by default).")
JSON = typer.Option(None, "--json", help="Write the report as JSON to this path.")
STORE = typer.Option(None, "--store", help="Store URL (default $COHORTLAB_STORE or sqlite:///./cohortlab.db).")
PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr.")
SEED_FROM = typer.Option("latest", "--seed-from", metavar="latest|random|RUN_ID|FILE", help=SEED_FROM_HELP)


def _annualised_caption(window: Optional[dict]) -> Optional[str]:
    """``Sharpe annualised from 1 day, 288 bars of 5m: ...`` for a report's window (None: unknown)."""
    ann = display.annualisation(window)
    return f"Sharpe {ann['long']}" if ann else None


def _leaderboard_table(agents: list[dict], quote: str, limit: int, window: Optional[dict] = None) -> Table:
    ann = display.annualisation(window)
    t = Table(title=f"Leaderboard (money in {quote})", show_lines=False, caption=_annualised_caption(window))
    heads = ("rank", "agent", "family", "ROI %", "Sharpe (ann.)" if ann else "Sharpe", "max DD %", "trades",
             "win %", "util %", "breaches", "confidence")
    for h in heads:
        t.add_column(h, justify="left" if h in ("agent", "family") else "right", no_wrap=True)
    for a in agents[:limit]:
        # win % is "—" while an agent has not closed a trade (win_rate None), not 0
        t.add_row(str(a["rank"]), a["agent_id"], a["family"], display.pct(a["roi"], 3, signed=True, suffix=""),
                  display.num(a["sharpe"]), display.pct(a["max_drawdown"], 2, suffix=""), str(a["trades"]),
                  display.pct(a.get("win_rate"), 0, suffix=""), display.pct(a["utilisation"], 1, suffix=""),
                  str(a["breaches"]), display.num(a["confidence"]))
    return t


def _parent_table(report: dict) -> Table:
    p = report["parent"]
    q = report.get("quote", "")
    t = Table(title="Parent bankroll", show_header=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    w = report["window"]
    rows = [
        ("data", f"{report.get('data', '')}"),
        ("window", f"{w['start']} .. {w['end']} ({w['bars']} x {w['timeframe']} bars, {len(w['symbols'])} symbols)"),
        ("bankroll", f"{display.money(report['bankroll'])} {q}"),
        ("allocation", report["allocation"]),
        ("final equity", f"{display.money(p['final_equity'])} {q}"),
        ("ROI", display.pct(p["roi"], 4, signed=True)),
        ("max drawdown", display.pct(p["max_drawdown"], 3)),
        ("peak gross exposure", f"{display.num(p['peak_gross_exposure'], 3)} x parent equity"),
        ("peak utilisation", f"{display.pct(p['peak_utilisation'], 1)} of allocated"),
        # shown at the bankroll's precision: the few 1e-8 left over by an uneven split read as 0
        ("unallocated cash", f"{display.money(p['unallocated_cash'], report['bankroll'])} {q}"),
        ("breaches (clipped orders)", str(p["breaches"])),
        ("ledger", f"{report['ledger']['transactions']} transactions, "
                   f"{'balanced' if report['ledger']['balanced'] else 'NOT BALANCED'}"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    return t


@app.command()
def run(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    start: Optional[str] = START,
    end: Optional[str] = END,
    warmup_bars: int = WARMUP,
    quote: Optional[str] = QUOTE,
    bankroll: float = BANKROLL,
    agents: int = typer.Option(30, "--agents", min=1, max=1000, help="Number of agents in the cohort."),
    seed: int = typer.Option(7, "--seed", help="Seed of random genomes and of the synthetic market."),
    genomes: Optional[Path] = typer.Option(None, "--genomes", help="JSON file of genomes to seed agents "
                                           "(same as --seed-from FILE)."),
    seed_from: str = SEED_FROM,
    allocation: str = typer.Option("equal", "--allocation", help=f"Allocation policy: {', '.join(POLICIES)} "
                                   "(risk_weighted = inverse volatility over the warm-up bars)."),
    reserve: float = typer.Option(0.0, "--reserve", min=0.0, max=0.99, help="Fraction of the bankroll kept "
                                  "unallocated (0.1 = 10 %)."),
    max_leverage: float = typer.Option(2.0, "--max-leverage", min=1.0, max=20.0, help="Cohort ceiling of an "
                                       "agent's leverage (multiple of agent equity) for random genomes and "
                                       "the check of seeded ones."),
    max_gross_leverage: float = typer.Option(1.0, "--max-gross-leverage", min=0.0, help="Parent gross-exposure "
                                             "ceiling, multiple of parent equity."),
    max_symbol_exposure: float = typer.Option(1.0, "--max-symbol-exposure", min=0.0, help="Per-symbol cap on "
                                              "all agents' gross exposure, fraction of parent equity."),
    maintenance_margin: float = typer.Option(0.05, "--maintenance-margin", min=0.0, max=1.0,
                                             help="Liquidate an agent when equity <= this fraction of its "
                                             "gross position value."),
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    settle: bool = typer.Option(False, "--settle", help="Close all positions at the last close and return "
                                "capital to the parent."),
    json_path: Optional[Path] = JSON,
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the leaderboard as CSV to this path."),
    top: int = typer.Option(30, "--top", min=1, help="Leaderboard rows to print."),
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run an intraday cohort of agents on one shared parent bankroll and print the leaderboard."""
    try:
        req = CohortRequest(
            bars=BarsRequest(data=str(data) if data else None, symbols=_symbols(symbols), start=start,
                             end=end, warmup_bars=warmup_bars, quote=quote, seed=seed),
            bankroll=bankroll, agents=agents, seed=seed, genomes_path=str(genomes) if genomes else None,
            seed_from=seed_from, allocation=allocation, reserve=reserve, max_leverage=max_leverage,
            engine=EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps,
                                max_gross_leverage=max_gross_leverage,
                                max_symbol_exposure=max_symbol_exposure,
                                maintenance_margin=maintenance_margin, allow_short=allow_short,
                                settle=settle),
        )
        store = _store(store_url)
        with store, _Stages(progress) as stages:
            run_id, result, report = execute_cohort(req, store, on_stage=stages)
    except USER_ERRORS as exc:
        _fail(exc)
    if report["data"] == "SYNTHETIC":
        console.print("[bold yellow]SYNTHETIC[/] bars (no --data and no ./data): built-in "
                      "regime-switching market, not real prices.")
    console.print(_leaderboard_table(report["agents"], report["quote"], top, report.get("window")))
    console.print(_parent_table(report))
    console.print(f"run_id [bold]{run_id}[/] (agents seeded from {report['seeded_from']}: "
                  f"{escape(report['seeding_note'])})")
    if json_path:
        write_json(json_path, report)
        console.print(f"report written to {json_path}")
    if csv_path:
        write_leaderboard_csv(csv_path, report["agents"])
        console.print(f"leaderboard written to {csv_path}")


def _parse_params(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise RunError(f"--param {item!r} must look like name=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@app.command()
def backtest(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    start: Optional[str] = typer.Option(None, "--start", help="First traded bar, UTC (default: first bar of the data)."),
    end: Optional[str] = typer.Option(None, "--end", help="End of the window, UTC, exclusive (default: after the last bar)."),
    warmup_bars: int = typer.Option(0, "--warmup-bars", min=0, help="History bars before --start for indicators (bars)."),
    quote: Optional[str] = QUOTE,
    strategy: str = typer.Option("sma_cross", "--strategy", help="Strategy family (see `cohortlab strategies`)."),
    param: List[str] = typer.Option([], "--param", help="Family parameter name=value (repeatable), e.g. fast=10."),
    size: float = typer.Option(1.0, "--size", help="Position size, fraction of equity (1.0 = all equity "
                               "including fees)."),
    stop_loss: float = typer.Option(0.0, "--stop-loss", help="Stop-loss distance, fraction of entry price (0 = off)."),
    take_profit: float = typer.Option(0.0, "--take-profit", help="Take-profit distance, fraction of entry price (0 = off)."),
    max_hold_bars: int = typer.Option(0, "--max-hold-bars", help="Exit after this many bars (0 = off)."),
    leverage: float = typer.Option(1.0, "--leverage", help="Leverage, multiple of equity."),
    bankroll: float = BANKROLL,
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    json_path: Optional[Path] = JSON,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Backtest one strategy on one or more symbols (one agent holding the whole bankroll)."""
    try:
        params = get_strategy(strategy).validate(_parse_params(param))
        bars = BarsRequest(data=str(data) if data else None, symbols=_symbols(symbols), start=start,
                           end=end, warmup_bars=warmup_bars, quote=quote, whole=True)
        cfg = EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, max_gross_leverage=max(leverage, 1.0),
                           max_symbol_exposure=max(leverage, 1.0), allow_short=allow_short)
        store = _store(store_url)
        with store, _Stages(progress) as stages:
            run_id, result, report = run_backtest(
                bars, strategy, params, symbols=_symbols(symbols), bankroll=bankroll, engine=cfg,
                store=store, progress=stages, size=size, stop_loss=stop_loss, take_profit=take_profit,
                max_hold_bars=max_hold_bars, leverage=leverage)
    except USER_ERRORS as exc:
        _fail(exc)
    q = report["quote"]
    console.print(escape(f"{strategy} {params} on {', '.join(report['window']['symbols'])} "
                         f"({report['window']['bars']} bars, {report['data']})"))
    mx = report["metrics"]
    ann = display.annualisation(report.get("window"))
    console.print(f"final equity {display.money(report['final_equity'])} {q}   total return "
                  f"{display.pct(report['total_return'], 3, signed=True)}   trades {len(report['trades'])}   "
                  f"win rate {display.pct(mx.get('win_rate'), 0)}   Sharpe {display.num(mx['sharpe'])}"
                  f"{' (' + ann['short'] + ')' if ann else ''}   max DD {display.pct(mx['max_drawdown'], 2)}")
    console.print(f"run_id [bold]{run_id}[/]")
    if json_path:
        write_json(json_path, report)
        console.print(f"report written to {json_path}")


@app.command()
def strategies() -> None:
    """List the strategy families and their parameters (with bounds and defaults)."""
    t = Table(title="Strategy families")
    for col in ("family", "parameters (default, allowed)", "description"):
        t.add_column(col)
    for name, s in sorted(all_strategies().items()):
        ps = "\n".join(f"{p.name}={p.default} ({p.describe()}) {p.help}" for p in s.params)
        t.add_row(name, ps, s.description)
    console.print(t)


def _traded_window(run: dict) -> str:
    """``start .. end`` (UTC) of the bars a run traded: its report's window once completed,
    else the window it asked for, marked ``(requested)``."""
    w = (run.get("summary") or {}).get("window") or {}
    if w.get("start") or w.get("end"):
        return display.window_text(w.get("start"), w.get("end"))
    cfg = run.get("config") or {}
    bars = (cfg.get("request") or {}).get("bars") or cfg.get("bars") or {}
    start, end = bars.get("start") or run.get("window_start"), bars.get("end")
    return f"{display.window_text(start, end)} (requested)" if start or end else display.DASH


@runs_app.command("list")
def runs_list(
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="Runs per page."),
    before: Optional[str] = typer.Option(None, "--before", help="Show runs older than this run_id (next page)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status: running, completed, failed."),
    store_url: Optional[str] = STORE,
) -> None:
    """Stored runs, newest first."""
    with _store(store_url) as store:
        try:
            rows = store.list_runs(limit=limit, before=before, status=status)
        except StoreError as exc:
            _fail(exc)
    t = Table(title="Runs (newest first)")
    for col in ("run_id", "kind", "status", "traded window (UTC)", "created (UTC)", "data", "agents",
                "ROI %", "reason"):
        # run ids are kept whole (they are what other commands take); the traded window and the
        # data label are folded over lines when the terminal is narrow, never cut with "…"
        if col == "run_id":
            t.add_column(col, no_wrap=True, min_width=max((len(r["run_id"]) for r in rows), default=6))
        elif col in ("kind", "status", "agents", "ROI %"):  # short values: never squeezed into "…"
            t.add_column(col, no_wrap=True, min_width={"kind": 8, "status": 9, "agents": 6}.get(col, 7),
                         justify="right" if col in ("agents", "ROI %") else "left")
        else:
            t.add_column(col, overflow="fold" if col in ("traded window (UTC)", "data") else "ellipsis")
    for r in rows:
        s = r.get("summary") or {}
        roi = s.get("parent", {}).get("roi") if "parent" in s else s.get("total_return")
        t.add_row(r["run_id"], r.get("kind", ""), r.get("status", ""), _traded_window(r),
                  r.get("created_at", "")[:19].replace("T", " "), escape(str(r.get("data_label", ""))),
                  str(len(r.get("genomes", []))), "" if roi is None else display.pct(roi, 3, signed=True, suffix=""),
                  escape(r.get("reason") or ""))
    console.print(t)
    if len(rows) == limit:
        console.print(f"next page: cohortlab runs list --before {rows[-1]['run_id']}")


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="Run id from `cohortlab runs list`."),
    top: int = typer.Option(30, "--top", min=1, help="Leaderboard rows to print."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write the leaderboard as CSV to this path."),
    store_url: Optional[str] = STORE,
) -> None:
    """Leaderboard and parent summary of a stored run."""
    with _store(store_url) as store:
        try:
            run = store.get_run(run_id)
        except StoreError as exc:
            _fail(exc)
    console.print(escape(f"run {run_id}: {run.get('kind')} [{run.get('status')}] created {run.get('created_at')}"))
    if run.get("status") != "completed":
        console.print(escape(f"reason: {run.get('reason') or '-'}"))
        raise typer.Exit(code=0 if run.get("status") == "running" else 1)
    summary = run["summary"]
    if run.get("kind") == "backtest":
        console.print_json(data={k: v for k, v in summary.items() if k not in ("trades", "final_state")})
        return
    console.print(_leaderboard_table(summary["agents"], summary.get("quote", ""), top, summary.get("window")))
    console.print(_parent_table(summary))
    if csv_path:
        write_leaderboard_csv(csv_path, summary["agents"])
        console.print(f"leaderboard written to {csv_path}")


@ledger_app.command("verify")
def ledger_verify(
    run_id: str = typer.Argument(..., help="Run id from `cohortlab runs list`."),
    store_url: Optional[str] = STORE,
) -> None:
    """Prove the run's journal balances and reconciles with the engine's final state.

    Exit status 0 when every check passes, 1 otherwise."""
    with _store(store_url) as store:
        try:
            run = store.get_run(run_id)
            if run.get("status") != "completed":
                raise StoreError(f"run {run_id} is {run.get('status')}: it has no ledger to verify")
            journal = store.get_ledger(run_id)
        except StoreError as exc:
            _fail(exc)
    rep = verify_journal(journal, run["summary"]["final_state"])
    for name, ok, detail in rep.checks:
        mark = "[green]PASS[/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {escape(name)}: {escape(detail)}")
    console.print(f"{rep.transactions} transactions; ledger {'verified' if rep.ok else 'FAILED'}")
    if not rep.ok:
        raise typer.Exit(code=1)


# ------------------------------------------------------------------ learning loop
GENERATIONS = typer.Option(40, "--generations", min=0, help="GA generations.")
POPULATION = typer.Option(30, "--population", min=2, help="Genomes per generation (mu = lambda).")
SELECTION = typer.Option("nsga2", "--selection", help="Survivor selection: nsga2 (ROI, Sharpe, max drawdown) "
                         "or tournament (Sharpe).")
CXPB = typer.Option(0.5, "--cxpb", min=0.0, max=1.0, help="Probability an offspring comes from crossover.")
MUTPB = typer.Option(0.4, "--mutpb", min=0.0, max=1.0, help="Probability an offspring comes from mutation "
                     "(the rest are mutated copies too).")
TOURNSIZE = typer.Option(3, "--tournsize", min=1, help="Tournament size for parent selection (genomes).")
MIN_FAMILY = typer.Option(2, "--min-per-family", min=0, help="Genomes of every strategy family always kept "
                          "(0 = a family may die out).")
MAX_LEV = typer.Option(2.0, "--max-leverage", min=1.0, max=20.0, help="Cohort ceiling of an agent's leverage "
                       "(multiple of agent equity).")


def _ga(generations, population, selection, cxpb, mutpb, tournsize, min_per_family) -> "GAConfig":
    from evolution.evolve import GAConfig
    return GAConfig(generations=generations, population=population, selection=selection, cxpb=cxpb,
                    mutpb=mutpb, tournsize=tournsize, min_per_family=min_per_family)


class _Generations:
    """A progress bar over GA generations."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.progress = Progress(TextColumn("{task.description:<34}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), console=err, disable=not enabled)
        self.total, self.label = total, label

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task(self.label, total=self.total)
        return self

    def __call__(self, gen: int, stats: dict) -> None:
        self.progress.update(self.task, completed=gen,
                             description=f"{self.label} best Sharpe {stats['best_sharpe']:.2f}")

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)


def _roi(value) -> str:
    """A fraction as a signed percentage with 3 decimals, no unit (``+1.234``; 0 as ``0.000``)."""
    return display.pct(value, 3, signed=True, suffix="")


def _window_length(window) -> str:
    return display.duration_text((window.end - window.start).total_seconds())


def _cycle_table(result, top: int) -> Table:
    sp = result.split
    t = Table(title=f"{result.mode} cycle {result.cycle_id}: train {sp.train} | out of sample {sp.validation}",
              caption=f"Sharpe annualised (per-bar Sharpe × √bars a year) from short samples: in sample "
                      f"{_window_length(sp.train)}, out of sample {_window_length(sp.validation)}")
    for h in ("#", "genome", "family", "gen", "IS ROI %", "IS Sharpe", "IS trades", "OOS ROI %", "OOS Sharpe",
              "OOS trades", "deflated Sharpe"):
        t.add_column(h, justify="left" if h in ("genome", "family") else "right", no_wrap=True)
    for i, r in enumerate(result.table[:top]):
        a, b = r["in_sample"], r["out_of_sample"]
        t.add_row(str(i + 1), r["genome_id"], r["family"], str(r["genome"]["generation"]),
                  _roi(a["roi"]), display.num(a["sharpe"]), str(a["trades"]), _roi(b["roi"]),
                  display.num(b["sharpe"]), str(b["trades"]), display.num(r["deflated_sharpe"]))
    return t


def _print_cycle(result, top: int) -> None:
    if getattr(result, "note", None):  # nothing was evolved: say why before the tables of zeros
        console.print(f"[bold yellow]nothing evolved:[/] {escape(result.note)}")
    console.print(_cycle_table(result, top))
    a, b = result.in_sample, result.out_of_sample
    t = Table(title="Population: in sample vs out of sample (Sharpe annualised as above)", show_header=True)
    for h in ("", "best Sharpe", "median Sharpe", "mean ROI %", "best ROI %"):
        t.add_column(h, justify="right")
    for name, x in (("in sample", a), ("out of sample", b)):
        t.add_row(name, display.num(x["best_sharpe"]), display.num(x["median_sharpe"]), _roi(x["mean_roi"]),
                  _roi(x["best_roi"]))
    console.print(t)
    console.print(f"{result.evolution.trials} genomes tried; deflated Sharpe uses N = {result.evolution.trials} "
                  f"trials and V[SR] = {result.var_trial_sharpe:.3g} (per bar)")


def _cycle_json(result) -> dict:
    return {**result.knowledge(), "population": result.table}


def _cycle_command(req, store_url, progress: bool, label: str, json_path, top: int) -> None:
    """Run a learning cycle with a progress bar, print it, store it, write JSON."""
    from manager.learning_jobs import learning_cycle
    try:
        store = _store(store_url)
        with store, _Generations(progress, req.ga.generations, label) as bar:
            result = learning_cycle(req, store, bar)
    except USER_ERRORS as exc:
        _fail(exc)
    _print_cycle(result, top)
    console.print(f"started from {escape(result.seeded_from)}: {escape(result.seeding_note)}")
    console.print(f"stored population, hall of fame and knowledge record as [bold]{result.cycle_id}[/]")
    if json_path:
        write_json(json_path, _cycle_json(result))
        console.print(f"report written to {json_path}")


def _source(data, symbols, quote, seed):
    from manager.learning_jobs import Source
    return Source(data=str(data) if data else None, symbols=_symbols(symbols), quote=quote, seed=seed)


@app.command()
def evolve(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    train_start: str = typer.Option(..., "--train-start", help="Start of the training window, UTC."),
    train_end: str = typer.Option(..., "--train-end", help="End of the training window, UTC, exclusive."),
    validation: str = typer.Option("1d", "--validation", help="Out-of-sample window after --train-end "
                                   "(e.g. 1d, 12h)."),
    population: int = POPULATION,
    generations: int = GENERATIONS,
    selection: str = SELECTION,
    cxpb: float = CXPB,
    mutpb: float = MUTPB,
    tournsize: int = TOURNSIZE,
    min_per_family: int = MIN_FAMILY,
    max_leverage: float = MAX_LEV,
    seed: int = typer.Option(7, "--seed", help="Seed of every random choice."),
    genomes: Optional[Path] = typer.Option(None, "--genomes", help="Start from these genomes (JSON file; "
                                           "same as --seed-from FILE)."),
    seed_from: str = SEED_FROM,
    warmup_bars: int = WARMUP,
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    json_path: Optional[Path] = JSON,
    top: int = typer.Option(10, "--top", min=1, help="Rows of the population table to print."),
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Evolve a population on a training window and score it out of sample.

    The population, hall of fame and a knowledge record are stored; `run` then seeds
    its agents from the hall of fame."""
    from learning.walkforward import Split, Window
    from manager.learning_jobs import CycleRequest, duration, utc
    try:
        t0, t1 = utc(train_start, "train-start"), utc(train_end, "train-end")
        if t1 <= t0:
            raise RunError(f"--train-end {train_end} must be after --train-start {train_start}")
        split = Split(Window(t0, t1), Window(t1, t1 + duration(validation, "validation")))
        req = CycleRequest(source=_source(data, symbols, quote, seed), mode="daily", split=split,
                           ga=_ga(generations, population, selection, cxpb, mutpb, tournsize, min_per_family),
                           engine=EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, allow_short=allow_short),
                           seed=seed, max_leverage=max_leverage, warmup_bars=warmup_bars,
                           genomes_path=str(genomes) if genomes else None, seed_from=seed_from)
    except USER_ERRORS as exc:
        _fail(exc)
    _cycle_command(req, store_url, progress, "evolving", json_path, top)


@app.command()
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
    max_leverage: float = MAX_LEV,
    seed: int = typer.Option(7, "--seed", help="Seed of every random choice."),
    genomes: Optional[Path] = typer.Option(None, "--genomes", help="Start from these genomes (JSON file; "
                                           "same as --seed-from FILE)."),
    seed_from: str = SEED_FROM,
    warmup_bars: int = WARMUP,
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    json_path: Optional[Path] = JSON,
    top: int = typer.Option(10, "--top", min=1, help="Rows of the population table to print."),
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run one learning cycle (daily or intraday) from the store's latest population.

    Evolve, score walk-forward, and store the new population, hall of fame and
    knowledge record."""
    from manager.learning_jobs import CycleRequest
    gens = generations if generations is not None else (40 if mode == "daily" else 10)
    try:
        if mode not in ("daily", "intraday"):
            raise RunError(f"--mode {mode!r} unknown; allowed: daily, intraday")
        req = CycleRequest(source=_source(data, symbols, quote, seed), mode=mode, end=end, lookback=lookback,
                           validation=validation,
                           ga=_ga(gens, population, selection, cxpb, mutpb, tournsize, min_per_family),
                           engine=EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, allow_short=allow_short),
                           seed=seed, max_leverage=max_leverage, warmup_bars=warmup_bars,
                           genomes_path=str(genomes) if genomes else None, seed_from=seed_from)
    except USER_ERRORS as exc:
        _fail(exc)
    _cycle_command(req, store_url, progress, f"{mode} cycle", json_path, top)


@app.command()
def campaign(
    data: Optional[Path] = DATA,
    symbols: Optional[str] = SYMBOLS,
    quote: Optional[str] = QUOTE,
    start: str = typer.Option(..., "--start", help="Day 1 (UTC date)."),
    days: int = typer.Option(3, "--days", min=1, max=60, help="Consecutive days to run."),
    lookback: str = typer.Option("3d", "--lookback", help="Training data before each day (e.g. 3d, 36h)."),
    bankroll: float = BANKROLL,
    agents: int = typer.Option(30, "--agents", min=2, max=1000, help="Agents per cohort (= GA population)."),
    seed: int = typer.Option(7, "--seed", help="Seed of every random choice."),
    generations: int = typer.Option(20, "--generations", min=0, help="GA generations per day."),
    selection: str = SELECTION,
    cxpb: float = CXPB,
    mutpb: float = MUTPB,
    tournsize: int = TOURNSIZE,
    min_per_family: int = MIN_FAMILY,
    genomes: Optional[Path] = typer.Option(None, "--genomes", help="Day-1 starting genomes (JSON file; "
                                           "same as --seed-from FILE)."),
    seed_from: str = SEED_FROM,
    allocation: str = typer.Option("equal", "--allocation", help=f"Allocation policy: {', '.join(POLICIES)}."),
    reserve: float = typer.Option(0.0, "--reserve", min=0.0, max=0.99, help="Fraction of the bankroll kept unallocated."),
    max_leverage: float = MAX_LEV,
    max_gross_leverage: float = typer.Option(1.0, "--max-gross-leverage", min=0.0, help="Parent gross-exposure "
                                             "ceiling, multiple of parent equity."),
    max_symbol_exposure: float = typer.Option(1.0, "--max-symbol-exposure", min=0.0, help="Per-symbol cap, "
                                              "fraction of parent equity."),
    fee_bps: float = FEE,
    slippage_bps: float = SLIP,
    allow_short: bool = SHORT,
    warmup_bars: int = WARMUP,
    min_trades: int = typer.Option(3, "--min-trades", min=0, help="Promotion rule: minimum trades in the last 24 h."),
    dsr_threshold: float = typer.Option(0.5, "--dsr-threshold", min=0.0, max=1.0, help="Promotion rule: minimum "
                                        "Deflated Sharpe Ratio (probability, 0..1)."),
    json_path: Optional[Path] = JSON,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run a multi-day campaign: learn, trade, score, day after day.

    Before each day a learning cycle on the preceding lookback, then the cohort with
    the evolved agents; at the end, promotion candidates ranked by the promotion rule."""
    from manager.learning_jobs import CampaignRequest, run_campaign
    try:
        check_allocation(allocation, reserve=reserve, bankroll=bankroll)
        engine_cfg = EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, max_gross_leverage=max_gross_leverage,
                                  max_symbol_exposure=max_symbol_exposure, allow_short=allow_short)
        req = CampaignRequest(
            source=_source(data, symbols, quote, seed), start=start, days=days, lookback=lookback,
            cohort=CohortRequest(bankroll=bankroll, agents=agents, seed=seed,
                                 genomes_path=str(genomes) if genomes else None, seed_from=seed_from,
                                 allocation=allocation,
                                 reserve=reserve, max_leverage=max_leverage, engine=engine_cfg),
            ga=_ga(generations, agents, selection, cxpb, mutpb, tournsize, min_per_family),
            warmup_bars=warmup_bars, min_trades=min_trades, dsr_threshold=dsr_threshold)
        store = _store(store_url)
        with store:
            report = run_campaign(req, store, (lambda m: err.print(escape(m))) if progress else (lambda m: None))
    except USER_ERRORS as exc:
        _fail(exc)
    console.print(f"day 1 started from {escape(report['seeded_from'])}: {escape(report['seeding_note'])}")
    t = Table(title=f"Campaign ({report['data']}, money in {report['quote']}; ROI and max DD of the parent; "
                    "IS/OOS = the evolved population in / out of sample)",
              caption=f"Sharpe annualised (per-bar Sharpe × √bars a year) from short samples: in sample the "
                      f"{report.get('lookback')} lookback before each day, out of sample and 24 h the day itself")
    for h in ("day", "run_id", "ROI %", "max DD %", "IS med. Sharpe", "OOS med. Sharpe", "best agent",
              "best ROI %", "trials"):
        t.add_column(h, no_wrap=h in ("day", "run_id"), justify="left" if h in ("day", "run_id", "best agent")
                     else "right")
    for d in report["days"]:
        best = d["agents"][0]
        t.add_row(d["date"], d["run_id"], _roi(d["parent"]["roi"]), display.pct(d["parent"]["max_drawdown"], 2, suffix=""),
                  display.num(d["in_sample"]["median_sharpe"]), display.num(d["out_of_sample"]["median_sharpe"]),
                  f"{best['agent_id']} {best['family']}", _roi(best["roi"]), str(d["trials"]))
    console.print(t)
    c = Table(title=f"Promotion candidates (>= {min_trades} trades, deflated Sharpe >= {dsr_threshold}; "
                    "ranked by 24 h ROI, then Sharpe)")
    for h in ("#", "agent", "family", "ROI 24h %", "Sharpe 24h", "trades", "deflated Sharpe"):
        c.add_column(h, no_wrap=True)
    for i, x in enumerate(report["candidates"]):
        c.add_row(str(i + 1), x["agent_id"], x["genome"]["family"], _roi(x["roi_24h"]),
                  display.num(x["sharpe_24h"]), str(x["trades"]), display.num(x["deflated_sharpe"]))
    console.print(c if report["candidates"] else "no agent meets the promotion rule")
    if json_path:
        write_json(json_path, report)
        console.print(f"report written to {json_path}")


@app.command()
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
    from learning.search import SearchError
    from manager.learning_jobs import optimize_family, optimize_ga
    engine_cfg = EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, allow_short=allow_short)
    src = _source(data, symbols, quote, seed)
    show = (lambda t: err.print(escape(f"trial {t['index']}: {t['params']} -> {t['value']:.4f}")))
    try:
        store = _store(store_url)
        with store:
            if strategy:
                if not (train_start and train_end):
                    raise RunError("--strategy needs --train-start and --train-end")
                res, best = optimize_family(src, strategy, start=train_start, end=train_end, validation=validation,
                                            study=study, trials=trials, seed=seed, engine=engine_cfg, store=store,
                                            symbols=_symbols(symbols), warmup_bars=warmup_bars,
                                            progress=show if progress else None)
            else:
                res = optimize_ga(src, end=train_end, validation=validation, study=study, trials=trials,
                                  generations=generations, population=population, seed=seed, engine=engine_cfg,
                                  store=store, max_lookback_hours=max_lookback_hours, warmup_bars=warmup_bars,
                                  progress=show if progress else None)
                best = {"params": res.best["params"], "out_of_sample": res.best.get("out_of_sample")}
    except USER_ERRORS + (SearchError,) as exc:
        _fail(exc)
    console.print(f"study [bold]{escape(res.study)}[/]: {len(res.trials)} trials "
                  f"({res.resumed} resumed from the store, {res.ran} run now)")
    console.print(escape(f"best (value {res.best['value']:.4f}): {res.best['params']}"))
    console.print_json(data=best)
    if json_path:
        write_json(json_path, {"study": res.study, "trials": res.trials, "best": res.best, "result": best})
        console.print(f"report written to {json_path}")



@app.command()
def migrate(
    store_url: Optional[str] = STORE,
    status: bool = typer.Option(False, "--status", help="Only show which migrations are applied; change nothing."),
) -> None:
    """Apply the store's pending schema migrations (indexes, collections/tables); idempotent."""
    from migrations import format_status, migrate_url
    try:
        applied, rows = migrate_url(store_url, status_only=status)
    except StoreError as exc:
        _fail(exc)
    for line in format_status(rows):
        console.print(escape(line), highlight=False)
    if not status:
        console.print(f"applied: {', '.join(applied)}" if applied else "nothing to apply; the store is up to date")


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Address to bind (default $COHORTLAB_API_HOST or "
                                       "127.0.0.1: this machine only; 0.0.0.0 for every interface)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Port (default $COHORTLAB_API_PORT or 8000)."),
    workers: int = typer.Option(1, "--workers", min=1, help="uvicorn worker processes (set "
                                "PROMETHEUS_MULTIPROC_DIR with more than one; without a broker each runs its own "
                                "cohort jobs)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: debug, info, warning, error."),
) -> None:
    """Serve the HTTP API and dashboard with uvicorn (OpenAPI docs at /docs).

    POST /api/cohorts needs COHORTLAB_API_TOKEN; without COHORTLAB_BROKER_URL cohorts run in a thread pool
    inside this process."""
    try:
        import uvicorn
        from manager.settings import get_settings
        settings = get_settings()
    except ImportError as exc:
        _fail(RuntimeError(f"{exc.name} is not installed; install the service extra: pip install -e '.[service]'"))
    except Exception as exc:  # pydantic ValidationError of a bad COHORTLAB_* variable
        _fail(exc)
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    err.print(f"cohortlab API on http://{bind_host}:{bind_port} (docs /docs); "
              f"jobs {'on Celery' if settings.broker_url else 'in process'}; "
              f"POST routes {'need the bearer token' if settings.api_token else 'disabled (set COHORTLAB_API_TOKEN)'}",
              highlight=False, markup=False)
    uvicorn.run("api.app:app", host=bind_host, port=bind_port, workers=workers, log_level=log_level)


@data_app.command("download")
def data_download(
    exchange: str = typer.Option(..., "--exchange", help="ccxt exchange id, e.g. binance."),
    symbols: str = typer.Option(..., "--symbols", help="Comma-separated exchange symbols, e.g. ETH/BTC,LTC/BTC."),
    timeframe: str = typer.Option("5m", "--timeframe", help="Bar size in exchange notation: 1m, 5m, 1h, 1d."),
    days: float = typer.Option(3.0, "--days", min=0.01, help="How many days back from now to fetch."),
    out: Path = typer.Option(Path("data"), "--out", help="Output folder (one file per symbol)."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
) -> None:
    """Download OHLCV bars with ccxt into the layout `--data` reads (needs network)."""
    from manager.runner import download_bars
    try:
        paths = download_bars(exchange, _symbols(symbols) or [], timeframe, days, out, fmt=fmt,
                              progress=lambda sym, n: err.print(f"{sym}: {n} bars"))
    except Exception as exc:  # network and exchange errors are user-facing here
        _fail(exc)
    for p in paths or []:
        console.print(f"wrote {p}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
