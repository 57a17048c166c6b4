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
from manager.report import LEADERBOARD_COLUMNS, write_json, write_leaderboard_csv
from manager.runner import BarsRequest, CohortRequest, RunError, launch_intraday_cohort, run_backtest
from manager.store import Store, StoreError, open_store
from simulator.allocation import POLICIES, AllocationError
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

USER_ERRORS = (RunError, MarketDataError, GenomeError, StrategyError, AllocationError, EngineError,
               StoreError, FileNotFoundError)


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

    STAGES = ("load", "seed", "simulate", "store")

    def __init__(self, enabled: bool):
        self.progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn(),
                                 console=err, disable=not enabled, transient=False)
        self.task = None
        self.labels = {"load": "loading bars", "seed": "seeding agents",
                       "simulate": "simulating (JIT on first run)", "store": "storing run + ledger"}

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


def _leaderboard_table(agents: list[dict], quote: str, limit: int) -> Table:
    t = Table(title=f"Leaderboard (money in {quote})", show_lines=False)
    heads = ("rank", "agent", "family", "ROI %", "Sharpe", "max DD %", "trades", "util %", "breaches",
             "confidence")
    for h in heads:
        t.add_column(h, justify="left" if h in ("agent", "family") else "right", no_wrap=True)
    for a in agents[:limit]:
        t.add_row(str(a["rank"]), a["agent_id"], a["family"], f"{a['roi'] * 100:+.3f}",
                  f"{a['sharpe']:.2f}", f"{a['max_drawdown'] * 100:.2f}", str(a["trades"]),
                  f"{a['utilisation'] * 100:.1f}", str(a["breaches"]), f"{a['confidence']:.2f}")
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
        ("bankroll", f"{report['bankroll']:,.8g} {q}"),
        ("allocation", report["allocation"]),
        ("final equity", f"{p['final_equity']:,.8g} {q}"),
        ("ROI", f"{p['roi'] * 100:+.4f} %"),
        ("max drawdown", f"{p['max_drawdown'] * 100:.3f} %"),
        ("peak gross exposure", f"{p['peak_gross_exposure']:.3f} x parent equity"),
        ("peak utilisation", f"{p['peak_utilisation'] * 100:.1f} % of allocated"),
        ("unallocated cash", f"{p['unallocated_cash']:,.8g} {q}"),
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
                                           "(default: the store's latest hall of fame, else random)."),
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
            allocation=allocation, reserve=reserve, max_leverage=max_leverage,
            engine=EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps,
                                max_gross_leverage=max_gross_leverage,
                                max_symbol_exposure=max_symbol_exposure,
                                maintenance_margin=maintenance_margin, allow_short=allow_short,
                                settle=settle),
        )
        store = _store(store_url)
        with store, _Stages(progress) as stages:
            run_id, result, report = launch_intraday_cohort(req, store, stages)
    except USER_ERRORS as exc:
        _fail(exc)
    if report["data"] == "SYNTHETIC":
        console.print("[bold yellow]SYNTHETIC[/] bars (no --data and no ./data): built-in "
                      "regime-switching market, not real prices.")
    console.print(_leaderboard_table(report["agents"], report["quote"], top))
    console.print(_parent_table(report))
    console.print(f"run_id [bold]{run_id}[/] (agents seeded from {report['seeded_from']})")
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
    console.print(f"final equity {report['final_equity']:,.8g} {q}   total return "
                  f"{report['total_return'] * 100:+.3f} %   trades {len(report['trades'])}   "
                  f"Sharpe {report['metrics']['sharpe']:.2f}   max DD {report['metrics']['max_drawdown'] * 100:.2f} %")
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
    for col in ("run_id", "kind", "status", "created (UTC)", "data", "agents", "parent ROI %", "reason"):
        t.add_column(col)
    for r in rows:
        s = r.get("summary") or {}
        roi = s.get("parent", {}).get("roi") if "parent" in s else s.get("total_return")
        t.add_row(r["run_id"], r.get("kind", ""), r.get("status", ""), r.get("created_at", "")[:19],
                  str(r.get("data_label", "")), str(len(r.get("genomes", []))),
                  "" if roi is None else f"{roi * 100:+.3f}", escape(r.get("reason") or ""))
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
    console.print(_leaderboard_table(summary["agents"], summary.get("quote", ""), top))
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
    from simulator.download import download
    try:
        paths = download(exchange, _symbols(symbols) or [], timeframe, days, out, fmt=fmt,
                         progress=lambda msg: err.print(msg))
    except Exception as exc:  # network and exchange errors are user-facing here
        _fail(exc)
    for p in paths or []:
        console.print(f"wrote {p}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
