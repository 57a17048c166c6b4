"""What the ``cohortlab`` commands print: the consoles, the error exit, progress bars
and the rich tables of runs, cohorts, learning cycles and campaigns.

Numbers are formatted by :mod:`manager.display` (the rules the dashboard shares);
this module only lays them out. Results go to stdout (:data:`console`), progress
and errors to stderr (:data:`err`).
"""
from __future__ import annotations

from typing import Callable, NoReturn, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evolution.evolve import EvolutionError
from evolution.genome import GenomeError
from learning.cycle import CycleError
from manager import display
from manager.launch import STAGES as LAUNCH_STAGES
from manager.read_model import run_header
from manager.report import write_json, write_leaderboard_csv
from manager.times import RunError
from manager.store import StoreError
from simulator.allocation import AllocationError
from simulator.engine import EngineError
from simulator.market import MarketDataError
from simulator.strategies.base import StrategyError
from simulator.strategies.registry import all_strategies

console = Console()
"""Standard output: leaderboards, tables, reports."""
if not console.is_terminal:  # piped or captured: do not squeeze the leaderboard into 80 columns
    console = Console(width=140)
err = Console(stderr=True)
"""Standard error: progress bars, progress messages and errors."""

USER_ERRORS = (RunError, MarketDataError, GenomeError, StrategyError, AllocationError, EngineError,
               StoreError, FileNotFoundError, EvolutionError, CycleError)
"""Errors caused by the command's input: printed as one line, exit status 2, no traceback."""


def fail(exc: Exception) -> NoReturn:
    """Print ``error: <exc>`` on stderr and exit with status 2."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=2)


def say(*objects, **kwargs) -> None:
    """Print on standard output (:data:`console`; ``kwargs`` as for :meth:`rich.console.Console.print`)."""
    console.print(*objects, **kwargs)


def note(*objects, **kwargs) -> None:
    """Print on standard error (:data:`err`; ``kwargs`` as for :meth:`rich.console.Console.print`)."""
    err.print(*objects, **kwargs)


def say_json(data) -> None:
    """Pretty-print ``data`` as JSON on standard output."""
    console.print_json(data=data)


def wrote(json_path, report: dict) -> None:
    """Write ``report`` as JSON to ``json_path`` (if given) and say so."""
    if json_path:
        write_json(json_path, report)
        console.print(f"report written to {json_path}")


def wrote_leaderboard(csv_path, agents: list[dict]) -> None:
    """Write a leaderboard as CSV to ``csv_path`` (if given) and say so."""
    if csv_path:
        write_leaderboard_csv(csv_path, agents)
        console.print(f"leaderboard written to {csv_path}")


def roi(value) -> str:
    """A fraction as a signed percentage with 3 decimals, no unit (``+1.234``; 0 as ``0.000``)."""
    return display.pct(value, 3, signed=True, suffix="")


def progress_messages(enabled: bool) -> Callable[[str], None]:
    """A progress callback printing each message on stderr (a no-op when not ``enabled``)."""
    return (lambda m: err.print(escape(m))) if enabled else (lambda m: None)


def trial_messages(enabled: bool) -> Optional[Callable[[dict], None]]:
    """A search-progress callback printing each finished trial on stderr (None when not ``enabled``)."""
    show = (lambda t: err.print(escape(f"trial {t['index']}: {t['params']} -> {t['value']:.4f}")))
    return show if enabled else None


# ------------------------------------------------------------------ progress bars
class StageProgress:
    """A progress bar over the stages of a run (:data:`manager.launch.STAGES`), on stderr.

    Use it as a context manager; the object itself is the ``on_stage`` callback."""

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


class GenerationProgress:
    """A progress bar over GA generations, on stderr; the object is the per-generation callback."""

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


# ------------------------------------------------------------------ runs and cohorts
def annualised_caption(window: Optional[dict]) -> Optional[str]:
    """``Sharpe annualised from 1 day, 288 bars of 5m: ...`` for a report's window (None: unknown)."""
    ann = display.annualisation(window)
    return f"Sharpe {ann['long']}" if ann else None


def leaderboard_table(agents: list[dict], quote: str, limit: int, window: Optional[dict] = None) -> Table:
    """The cohort's leaderboard: the first ``limit`` agents of a report, best first."""
    ann = display.annualisation(window)
    t = Table(title=f"Leaderboard (money in {quote})", show_lines=False, caption=annualised_caption(window))
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


def parent_table(report: dict) -> Table:
    """The parent bankroll's figures of a cohort report (window, equity, exposure, ledger)."""
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


def baselines_table(report: dict) -> Optional[Table]:
    """The "against chance" table of a cohort report's ``baselines`` object
    (:func:`manager.baselines.cohort_baselines`); None when the run had none (``--baselines 0``).

    Rows: the cohort (net and gross of costs), the random cohorts' median, 5th and 95th
    percentiles with the cohort's percentile among them, cash, equal-weight buy-and-hold,
    and the best agent with the population median beside it. ROI of the bankroll over the
    traded window, in percent (not annualised)."""
    b = report.get("baselines")
    if not b:
        return None
    r, c, bh, best = b["random"], b["cohort"], b["buy_and_hold"], b["best_agent"]
    t = Table(title=f"Against chance: {r['cohorts']} random cohorts of {r['agents']} agents, same bankroll, "
                    "costs and window", caption="ROI of the bankroll over the window (not annualised); "
              "random cohorts run with the parent's aggregate ceilings lifted")
    for h in ("", "net ROI %", "gross ROI %", "cohort percentile"):
        t.add_column(h, justify="left" if not h else "right", no_wrap=True)
    pctl = lambda v: display.num(v, 0)  # noqa: E731 - a percentile 0..100
    t.add_row("cohort", roi(c["roi"]), roi(c["gross_roi"]), "")
    t.add_row("random median", roi(r["median"]), roi(r["gross_median"]), "")
    t.add_row("random 5th / 95th pct", f"{roi(r['p5'])} / {roi(r['p95'])}", "", "")
    t.add_row("cohort among random", "", "", f"{pctl(r['percentile'])} net / {pctl(r['gross_percentile'])} gross")
    t.add_row("cash", roi(b["cash"]["roi"]), roi(b["cash"]["roi"]), "")
    t.add_row("buy-and-hold (equal weight)", roi(bh["roi"]), roi(bh["gross_roi"]), "")
    t.add_row("best agent (max of {})".format(r["agents"]), roi(best["roi"]), "",
              f"{pctl(best['percentile_vs_random_best'])} vs random best")
    t.add_row("median agent", roi(best["median_agent_roi"]), "", "")
    return t


def event_lines(report: dict, quote: str = "") -> list[str]:
    """One line per event of a run report (the daily hard stops of ``report["events"]``)."""
    q = f" {quote}" if quote else ""
    lines = []
    for ev in report.get("events") or []:
        if ev.get("kind") == "daily_hard_stop":
            lines.append(f"daily hard stop at {ev['time']}: parent equity {display.money(ev['parent_equity'])}{q} "
                         f"is {display.pct(ev['drawdown'], 2)} below the day's reference "
                         f"{display.money(ev['reference_equity'])}{q} (threshold {display.pct(ev['threshold'], 2)}); "
                         "all agents flattened at the next open, no new exposure until the next UTC day")
        else:
            lines.append(f"{ev.get('kind')} at {ev.get('time')}")
    return lines


def print_events(report: dict) -> None:
    """Print :func:`event_lines` of ``report`` (nothing when there are none)."""
    for line in event_lines(report, report.get("quote", "")):
        console.print(escape(line), style="bold red")


def print_cohort_policy(report: dict, top: int) -> None:
    """The ceilings a cohort traded under: the kill switch, the parent's tier, and each
    agent's lineage tier and why (the ``top`` best agents); then the decisions for the
    next period. Nothing when the cohort traded under its static flags."""
    pol = report.get("policy")
    if not pol:
        return
    ks = pol.get("kill_switch") or {}
    if ks.get("on"):
        console.print(escape(f"kill switch ON since {ks.get('at')}: {ks.get('reason')}; every ceiling was 0x"),
                      style="bold red")
    if not pol.get("on"):
        return
    par = pol.get("parent_tier") or {}
    console.print(escape(f"leverage policy: parent {pol['parent_subject']} ceiling {pol['parent_ceiling']:g}x "
                         f"({par.get('trigger')}: {par.get('rule')}); {pol['lineages']} lineage(s)"))
    t = Table(title="Agent ceilings from the policy (tier = multiple of agent equity; ceiling = min(gene, tier))")
    for h in ("agent", "lineage", "tier", "ceiling", "why"):
        t.add_column(h, overflow="fold")
    for row in report["agents"][:top]:
        tier = row.get("tier") or {}
        t.add_row(row["agent_id"], str(tier.get("lineage")), f"{tier.get('tier', 0):g}x", f"{tier.get('ceiling', 0):g}x",
                  escape(f"{tier.get('trigger')}: {tier.get('rule')}"))
    console.print(t)
    for d in pol.get("decisions") or []:
        if d["subject"].startswith("parent:") or d["previous_tier"] != d["tier"]:
            console.print(escape(f"next period: {d['subject']} {d['previous_tier']:g}x -> {d['tier']:g}x ({d['trigger']})"))


def print_cohort(run_id: str, report: dict, top: int) -> None:
    """A finished cohort: SYNTHETIC warning, leaderboard, parent table and where its agents came from."""
    if report["data"] == "SYNTHETIC":
        console.print("[bold yellow]SYNTHETIC[/] bars (no --data and no ./data): built-in "
                      "regime-switching market, not real prices.")
    console.print(leaderboard_table(report["agents"], report["quote"], top, report.get("window")))
    console.print(parent_table(report))
    against = baselines_table(report)
    if against is not None:
        console.print(against)
    print_events(report)
    print_cohort_policy(report, top)
    console.print(f"run_id [bold]{run_id}[/] (agents seeded from {report['seeded_from']}: "
                  f"{escape(report['seeding_note'])})")


def print_backtest(run_id: str, strategy: str, params: dict, report: dict) -> None:
    """A finished backtest: what ran on which bars, then its headline figures."""
    q = report["quote"]
    console.print(escape(f"{strategy} {params} on {', '.join(report['window']['symbols'])} "
                         f"({report['window']['bars']} bars, {report['data']})"))
    mx = report["metrics"]
    ann = display.annualisation(report.get("window"))
    console.print(f"final equity {display.money(report['final_equity'])} {q}   total return "
                  f"{display.pct(report['total_return'], 3, signed=True)}   trades {len(report['trades'])}   "
                  f"win rate {display.pct(mx.get('win_rate'), 0)}   Sharpe {display.num(mx['sharpe'])}"
                  f"{' (' + ann['short'] + ')' if ann else ''}   max DD {display.pct(mx['max_drawdown'], 2)}")
    print_events(report)
    console.print(f"run_id [bold]{run_id}[/]")


def strategies_table() -> Table:
    """The strategy families with their parameters (default, allowed values, help)."""
    t = Table(title="Strategy families")
    for col in ("family", "parameters (default, allowed)", "description"):
        t.add_column(col)
    for name, s in sorted(all_strategies().items()):
        ps = "\n".join(f"{p.name}={p.default} ({p.describe()}) {p.help}" for p in s.params)
        t.add_row(name, ps, s.description)
    return t


def traded_window(run: dict) -> str:
    """``start .. end`` (UTC) of the bars a run trades, from its typed header
    (:func:`manager.read_model.run_header`); ``—`` when unknown."""
    header = run_header(run)
    start, end = header["window_start"], header["window_end"]
    return display.window_text(start, end) if start or end else display.DASH


def runs_table(rows: list[dict]) -> Table:
    """A page of stored runs, newest first."""
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
        value = s.get("parent", {}).get("roi") if "parent" in s else s.get("total_return")
        t.add_row(r["run_id"], r.get("kind", ""), r.get("status", ""), traded_window(r),
                  r.get("created_at", "")[:19].replace("T", " "), escape(str(r.get("data_label", ""))),
                  str(len(r.get("genomes", []))),
                  "" if value is None else display.pct(value, 3, signed=True, suffix=""),
                  escape(r.get("reason") or ""))
    return t


def print_ledger_checks(rep) -> None:
    """One PASS/FAIL line per check of a :func:`simulator.ledger.verify_journal` report, then the verdict."""
    for name, ok, detail in rep.checks:
        mark = "[green]PASS[/]" if ok else "[red]FAIL[/]"
        console.print(f"{mark} {escape(name)}: {escape(detail)}")
    console.print(f"{rep.transactions} transactions; ledger {'verified' if rep.ok else 'FAILED'}")


# ------------------------------------------------------------------ learning loop
def _window_length(window) -> str:
    return display.duration_text((window.end - window.start).total_seconds())


def cycle_table(result, top: int) -> Table:
    """The first ``top`` genomes of a learning cycle, in and out of sample."""
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
                  roi(a["roi"]), display.num(a["sharpe"]), str(a["trades"]), roi(b["roi"]),
                  display.num(b["sharpe"]), str(b["trades"]), display.num(r["deflated_sharpe"]))
    return t


def fitness_line(result) -> str:
    """How a cycle's GA scored and stopped, and its family shares, in one paragraph:
    folds and aggregate, where early stopping stopped, and the share of each family in the
    population and the hall of fame (from :meth:`learning.cycle.CycleResult.knowledge`)."""
    k = result.knowledge()
    tried, ga = k["tried"], (k.get("settings") or {}).get("ga") or {}
    shares = k.get("family_shares") or {}
    fmt = lambda d: ", ".join(f"{f} {v * 100:.0f}%" for f, v in sorted(d.items(), key=lambda x: -x[1])) or "—"  # noqa: E731
    stop = (f"stopped early at generation {tried.get('stopped_at')} (patience {ga.get('patience')}); kept generation "
            f"{tried.get('best_generation')}, the best median Sharpe on the inner validation tail "
            f"({tried.get('validation_bars')} bars)" if tried.get("early_stopped") else
            f"ran {tried.get('stopped_at')} generations; kept generation {tried.get('best_generation')}")
    return (f"fitness: {ga.get('fold_aggregate', 'median')} Sharpe over {len(tried.get('folds') or [])} folds, "
            f">= {ga.get('min_fold_trades')} trade(s) per fold, turnover cost {ga.get('turnover_cost_bps')} bps; "
            f"{stop}\nfamily shares (cap {ga.get('max_family_share')}): population {fmt(shares.get('population', {}))}; "
            f"hall of fame {fmt(shares.get('hall_of_fame', {}))}")


def print_cycle(result, top: int) -> None:
    """A finished learning cycle: the genome table, population in vs out of sample, trial count,
    where it started from and where it was stored."""
    if getattr(result, "note", None):  # nothing was evolved: say why before the tables of zeros
        console.print(f"[bold yellow]nothing evolved:[/] {escape(result.note)}")
    console.print(cycle_table(result, top))
    a, b = result.in_sample, result.out_of_sample
    t = Table(title="Population: in sample vs out of sample (Sharpe annualised as above)", show_header=True)
    for h in ("", "best Sharpe", "median Sharpe", "mean ROI %", "best ROI %"):
        t.add_column(h, justify="right")
    for name, x in (("in sample", a), ("out of sample", b)):
        t.add_row(name, display.num(x["best_sharpe"]), display.num(x["median_sharpe"]), roi(x["mean_roi"]),
                  roi(x["best_roi"]))
    console.print(t)
    console.print(fitness_line(result))
    n = getattr(result, "n_trials", None) or {}
    pbo = (getattr(result, "pbo", None) or {}).get("pbo")
    rho = getattr(result, "rank_correlation", None)
    console.print(f"overfitting: PBO (CSCV, 16 blocks) = {'—' if pbo is None else f'{pbo:.2f}'}; IS→OOS rank "
                  f"correlation (Spearman) = {'—' if rho is None else f'{rho:.2f}'}; N = {n.get('total', '—')} "
                  f"({n.get('cycle', '—')} this cycle + {n.get('prior', 0)} from its lineage and optimize studies), "
                  f"effective N = {n.get('effective', '—')}")
    console.print(f"{result.evolution.trials} genomes tried; deflated Sharpe uses N = {n.get('total', result.evolution.trials)} "
                  f"trials and V[SR] = {result.var_trial_sharpe:.3g} (per bar)")
    console.print(f"started from {escape(result.seeded_from)}: {escape(result.seeding_note)}")
    console.print(f"stored population, hall of fame and knowledge record as [bold]{result.cycle_id}[/]")


def campaign_baselines_table(report: dict) -> Table:
    """Each campaign day against chance (:func:`manager.baselines.cohort_baselines`): the cohort's
    ROI net and gross of costs, its percentile among the random cohorts (net / gross), their
    median, cash, equal-weight buy-and-hold, and the best agent beside the population median.
    ROI of the bankroll over the day, percent; blank cells for a day run with ``--baselines 0``."""
    t = Table(title="Against chance, per day (ROI % of the bankroll over the day; random cohorts of the same "
                    "size, bankroll and costs)")
    for h in ("day", "ROI %", "gross ROI %", "pctl net/gross", "random med. %", "cash %", "B&H %",
              "best ROI %", "median agent ROI %"):
        t.add_column(h, no_wrap=True, justify="left" if h == "day" else "right")
    for d in report["days"]:
        b = d.get("baselines") or {}
        rnd, coh, bh, ba = (b.get(k) or {} for k in ("random", "cohort", "buy_and_hold", "best_agent"))
        rois = sorted(a["roi"] for a in d["agents"])
        median = ba.get("median_agent_roi", float(np.median(rois)) if rois else None)
        t.add_row(d["date"], roi(d["parent"]["roi"]), roi(coh["gross_roi"]) if coh else "",
                  f"{display.num(rnd['percentile'], 0)} / {display.num(rnd['gross_percentile'], 0)}" if rnd else "",
                  roi(rnd["median"]) if rnd else "", roi(0.0), roi(bh["roi"]) if bh else "",
                  roi(d["agents"][0]["roi"]) if d["agents"] else "", roi(median))
    return t


def print_campaign(report: dict, min_trades: int, dsr_threshold: float) -> None:
    """A finished campaign: where day 1 started, one row per day, then the promotion candidates."""
    console.print(f"day 1 started from {escape(report['seeded_from'])}: {escape(report['seeding_note'])}")
    t = Table(title=f"Campaign ({report['data']}, money in {report['quote']}; ROI and max DD of the parent; "
                    "IS/OOS = the evolved population in / out of sample)",
              caption=f"Sharpe annualised (per-bar Sharpe × √bars a year) from short samples: in sample the "
                      f"{report.get('lookback')} lookback before each day, out of sample and 24 h the day itself")
    for h in ("day", "run_id", "ROI %", "pctl", "max DD %",
              "IS med. Sharpe", "OOS med. Sharpe", "best agent", "best ROI %", "trials",
              "PBO", "IS→OOS ρ"):
        t.add_column(h, no_wrap=h in ("day", "run_id"), justify="left" if h in ("day", "run_id", "best agent")
                     else "right")
    for d in report["days"]:
        best = d["agents"][0]
        # pctl: the cohort's ROI percentile among random cohorts (manager.baselines); — with --baselines 0
        rnd = (d.get("baselines") or {}).get("random") or {}
        t.add_row(d["date"], d["run_id"], roi(d["parent"]["roi"]),
                  display.num(rnd["percentile"], 0) if rnd else "—",
                  display.pct(d["parent"]["max_drawdown"], 2, suffix=""),
                  display.num(d["in_sample"]["median_sharpe"]), display.num(d["out_of_sample"]["median_sharpe"]),
                  f"{best['agent_id']} {best['family']}", roi(best["roi"]), str(d["trials"]),
                  display.num(d.get("pbo"), 2) if d.get("pbo") is not None else "—",
                  display.num(d.get("rank_correlation"), 2) if d.get("rank_correlation") is not None else "—")
    console.print(t)
    for d in report["days"]:
        n_stops = (d.get("parent") or {}).get("hard_stops") or 0
        if n_stops:
            console.print(escape(f"day {d['date']}: daily hard stop fired {n_stops} time(s); "
                                 f"see `cohortlab runs show {d['run_id']}`"), style="bold red")
    print_campaign_policy(report)
    console.print(campaign_baselines_table(report))
    c = Table(title=f"Promotion candidates (>= {min_trades} trades, deflated Sharpe >= {dsr_threshold}; "
                    "ranked by 24 h ROI, then Sharpe)")
    for h in ("#", "agent", "family", "ROI 24h %", "Sharpe 24h", "trades", "deflated Sharpe",
              "holdout ROI %", "holdout Sharpe", "confirmed"):
        c.add_column(h, no_wrap=True)
    for i, x in enumerate(report["candidates"]):
        c.add_row(str(i + 1), x["agent_id"], x["genome"]["family"], roi(x["roi_24h"]),
                  display.num(x["sharpe_24h"]), str(x["trades"]), display.num(x["deflated_sharpe"]),
                  roi(x["holdout"]["roi"]) if x.get("holdout") else "—",
                  display.num(x["holdout"]["sharpe"]) if x.get("holdout") else "—",
                  {True: "yes", False: "no"}.get(x.get("confirmed"), "—"))
    hold = report.get("holdout") or {}
    if hold:
        console.print(f"holdout: {escape(hold.get('note', ''))}")
    console.print(c if report["candidates"] else "no agent meets the promotion rule")


def print_campaign_policy(report: dict) -> None:
    """The leverage policy day by day: the parent's ceiling each day traded under, the tier
    decided for the next day, and how many subjects changed tier (nothing when the policy is off)."""
    if not report.get("policy"):
        return
    t = Table(title=f"Leverage policy of campaign {report.get('campaign_id')} (tiers = multiples of equity; "
                    "`cohortlab policy simulate --campaign ID` replays it)")
    for h in ("day", "parent ceiling", "parent next", "parent trigger", "lineages", "tier changes", "kill switch"):
        t.add_column(h)
    for d in report["days"]:
        p = d.get("policy") or {}
        par = next((x for x in p.get("decisions") or [] if x["subject"].startswith("parent:")), {})
        t.add_row(d["date"], f"{p.get('parent_ceiling', 0):g}x", f"{par.get('tier', 0):g}x" if par else "—",
                  par.get("trigger", "—"), str(p.get("lineages", "—")), str(p.get("tier_changes", "—")),
                  "ON" if (p.get("kill_switch") or {}).get("on") else "off")
    console.print(t)


def print_search(res, best: dict) -> None:
    """A finished Bayesian search: the study, its trial counts and its best trial."""
    console.print(f"study [bold]{escape(res.study)}[/]: {len(res.trials)} trials "
                  f"({res.resumed} resumed from the store, {res.ran} run now)")
    console.print(escape(f"best (value {res.best['value']:.4f}): {res.best['params']}"))
    say_json(best)
