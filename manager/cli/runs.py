"""Commands about runs: ``run`` (a cohort), ``backtest``, ``strategies``, ``runs list``,
``runs show``, ``runs recover``, ``ledger verify`` and ``ledger export``.

Each parses its options, calls one use case of :mod:`manager` and prints the result
through :mod:`manager.cli.output`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from manager.cli.options import (BANKROLL, BASELINES, DAILY_STOP, DATA, FEE, JSON, MAX_GROSS, PROGRESS, QUOTE, SEED_FROM, SHORT, SLIP,
                                 STORE, SYMBOLS, WARMUP, bars_request, engine_config, open_store_or_exit,
                                 path_text, symbol_list)
from manager.cli.output import (USER_ERRORS, StageProgress, baselines_table, fail, leaderboard_table, parent_table,
                                print_backtest, print_cohort, print_ledger_checks, runs_table, say, say_json,
                                strategies_table, wrote, wrote_leaderboard)
from manager.launch import execute_cohort
from manager.ledger_audit import export_run_ledger, verify_run_ledger
from manager.runner import CohortRequest, run_backtest
from manager.store import StoreError
from manager.times import RunError
from simulator.allocation import POLICIES

from simulator.strategies.registry import get_strategy

START = typer.Option(None, "--start", help="First traded bar, UTC (2018-01-15 or 2018-01-15T06:00). "
                     "Default: one day before --end, or the last day of the data.")
END = typer.Option(None, "--end", help="End of the traded window, UTC, exclusive. Default: --start + 1 day.")
CSV = typer.Option(None, "--csv", help="Write the leaderboard as CSV to this path.")
TOP = typer.Option(30, "--top", min=1, help="Leaderboard rows to print.")
RUN_ID = typer.Argument(..., help="Run id from `cohortlab runs list`.")


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
    max_gross_leverage: float = MAX_GROSS,
    daily_hard_stop: float = DAILY_STOP,
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
    baselines: int = BASELINES,
    policy: bool = typer.Option(False, "--policy", help="Trade under the leverage policy's tiers (agent ceiling = "
                                "min(leverage gene, lineage tier); parent gross ceiling = the tier of parent:main, "
                                "replacing --max-gross-leverage) and record its decisions for the next day."),
    json_path: Optional[Path] = JSON,
    csv_path: Optional[Path] = CSV,
    top: int = TOP,
    store_url: Optional[str] = STORE,
    progress: bool = PROGRESS,
) -> None:
    """Run an intraday cohort of agents on one shared parent bankroll and print the leaderboard."""
    try:
        req = CohortRequest(
            bars=bars_request(data, symbols, start, end, warmup_bars, quote, seed=seed),
            bankroll=bankroll, agents=agents, seed=seed, genomes_path=path_text(genomes),
            seed_from=seed_from, allocation=allocation, reserve=reserve, max_leverage=max_leverage,
            engine=engine_config(fee_bps, slippage_bps, allow_short, max_gross_leverage=max_gross_leverage,
                                 max_symbol_exposure=max_symbol_exposure,
                                 maintenance_margin=maintenance_margin, settle=settle,
                                 daily_hard_stop=daily_hard_stop),
            baselines=baselines, policy=policy,
        )
        store = open_store_or_exit(store_url)
        with store, StageProgress(progress) as stages:
            run_id, result, report = execute_cohort(req, store, on_stage=stages)
    except USER_ERRORS as exc:
        fail(exc)
    print_cohort(run_id, report, top)
    wrote(json_path, report)
    wrote_leaderboard(csv_path, report["agents"])


def parse_params(items: list[str]) -> dict:
    """``["fast=10", "slow=30"]`` -> ``{"fast": "10", "slow": "30"}`` (values still text)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise RunError(f"--param {item!r} must look like name=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


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
    daily_hard_stop: float = DAILY_STOP,
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
        params = get_strategy(strategy).validate(parse_params(param))
        bars = bars_request(data, symbols, start, end, warmup_bars, quote, whole=True)
        cfg = engine_config(fee_bps, slippage_bps, allow_short, max_gross_leverage=max(leverage, 1.0),
                            max_symbol_exposure=max(leverage, 1.0), daily_hard_stop=daily_hard_stop)
        store = open_store_or_exit(store_url)
        with store, StageProgress(progress) as stages:
            run_id, result, report = run_backtest(
                bars, strategy, params, symbols=symbol_list(symbols), bankroll=bankroll, engine=cfg,
                store=store, progress=stages, size=size, stop_loss=stop_loss, take_profit=take_profit,
                max_hold_bars=max_hold_bars, leverage=leverage)
    except USER_ERRORS as exc:
        fail(exc)
    print_backtest(run_id, strategy, params, report)
    wrote(json_path, report)


def strategies() -> None:
    """List the strategy families and their parameters (with bounds and defaults)."""
    say(strategies_table())


def runs_list(
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="Runs per page."),
    before: Optional[str] = typer.Option(None, "--before", help="Show runs older than this run_id (next page)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status: running, completed, failed."),
    store_url: Optional[str] = STORE,
) -> None:
    """Stored runs, newest first."""
    with open_store_or_exit(store_url) as store:
        try:
            rows = store.list_runs(limit=limit, before=before, status=status)
        except StoreError as exc:
            fail(exc)
    say(runs_table(rows))
    if len(rows) == limit:
        say(f"next page: cohortlab runs list --before {rows[-1]['run_id']}")


def runs_recover(
    requeue: bool = typer.Option(False, "--requeue", help="Run them again here, under their run ids, "
                                 "instead of failing them."),
    store_url: Optional[str] = STORE,
) -> None:
    """Fail (reason `interrupted`) or re-run the in-process API jobs whose process died:
    runs still `running`, launched by the API without a broker, whose lease expired.
    Runs with a live lease are left alone. Prints what it did."""
    from manager.recovery import recover_runs

    outcomes: dict[str, str] = {}

    def run_here(run_id: str, req: CohortRequest) -> None:
        try:
            execute_cohort(req, store, run_id=run_id, extra={"job_id": run_id, "launched_by": "api",
                                                              "recovered": True})
            outcomes[run_id] = "completed"
        except (*USER_ERRORS, StoreError) as exc:
            outcomes[run_id] = f"failed: {exc}"

    with open_store_or_exit(store_url) as store:
        try:
            done = recover_runs(store, requeue=requeue, submit=run_here)
        except StoreError as exc:
            fail(exc)
    for item in done:
        what = outcomes.get(item.run_id, item.detail) if item.action == "requeued" else item.detail
        say(escape(f"{item.run_id}: {item.action}" + (f" ({what})" if what else "")))
    say(f"{len(done)} run(s) recovered")


def runs_show(
    run_id: str = RUN_ID,
    top: int = TOP,
    csv_path: Optional[Path] = CSV,
    store_url: Optional[str] = STORE,
) -> None:
    """Leaderboard and parent summary of a stored run."""
    with open_store_or_exit(store_url) as store:
        try:
            run = store.get_run(run_id)
        except StoreError as exc:
            fail(exc)
    say(escape(f"run {run_id}: {run.get('kind')} [{run.get('status')}] created {run.get('created_at')}"))
    if run.get("status") != "completed":
        say(escape(f"reason: {run.get('reason') or '-'}"))
        raise typer.Exit(code=0 if run.get("status") == "running" else 1)
    summary = run["summary"]
    if run.get("kind") == "backtest":
        say_json({k: v for k, v in summary.items() if k not in ("trades", "final_state")})
        return
    say(leaderboard_table(summary["agents"], summary.get("quote", ""), top, summary.get("window")))
    say(parent_table(summary))
    against = baselines_table(summary)
    if against is not None:
        say(against)
    wrote_leaderboard(csv_path, summary["agents"])


def ledger_verify(
    run_id: str = RUN_ID,
    head: Optional[str] = typer.Option(None, "--head", help="Head hash kept outside the database "
                                       "(from `cohortlab ledger export`); the journal's chain must end at it."),
    store_url: Optional[str] = STORE,
) -> None:
    """Prove the run's journal balances, reconciles with the engine's final state and
    that its hash chain is intact (naming the first broken link) up to the stored head
    and to --head when given.

    Exit status 0 when every check passes, 1 otherwise."""
    with open_store_or_exit(store_url) as store:
        try:
            rep = verify_run_ledger(store, run_id, head=head)
        except StoreError as exc:
            fail(exc)
    print_ledger_checks(rep)
    if not rep.ok:
        raise typer.Exit(code=1)


def ledger_export(
    run_id: str = RUN_ID,
    out: Optional[Path] = typer.Option(None, "--out", help="Write the export to this file (default: stdout)."),
    store_url: Optional[str] = STORE,
) -> None:
    """Write the run's journal as JSON with its hash chain's head, so the head can be kept
    outside the database (check it later with `cohortlab ledger verify RUN_ID --head HASH`).

    Exit status 1 (after writing) when the stored chain is broken or does not end at the
    run's stored head."""
    with open_store_or_exit(store_url) as store:
        try:
            doc, chain = export_run_ledger(store, run_id)
        except StoreError as exc:
            fail(exc)
    text = json.dumps(doc, indent=None, separators=(",", ":"))
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        say(f"wrote {escape(str(out))}: {doc['chain']['transactions']} transactions, head {doc['chain']['head']}")
    if not chain.ok:
        typer.echo(f"warning: the exported chain does not verify: {chain.describe()}", err=True)
        raise typer.Exit(code=1)
