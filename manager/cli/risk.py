"""Commands of the risk policy: ``policy show|history|simulate``, ``risk report`` and
``kill-switch on|off``. Thin adapters over :mod:`manager.policy` and
:mod:`manager.risk_report`; tiers are multiples of equity (2 = 2x), drawdowns and
returns fractions, VaR/CVaR fractions of the bankroll and amounts in the quote currency.
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from manager import display
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, fail, say, say_json, wrote
from manager.policy import DECISION_CSV_FIELDS, current_tiers, set_kill_switch, simulate_campaign, tier_history
from manager.report import csv_chunks
from manager.risk_report import risk_report
from risk.policy import PolicyConfig, PolicyConfigError

MARKET = typer.Option(None, "--market", help="Only this market key, e.g. 'binance-5m|5m|BTC' (folder|timeframe|quote).")
AS_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
CSV_OUT = typer.Option(None, "--csv", help="Also write the rows as CSV to this path.")



def _x(v) -> str:
    return "-" if v is None else f"{v:g}x"


def policy_show(
    subject: Optional[str] = typer.Argument(None, help="One subject: 'lineage:<founder genome id>' or 'parent:<scope>'."),
    market: Optional[str] = MARKET,
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """The tier in force for each subject (the latest decision), the next planned tier and
    what would grant it, and what would step it down. Tiers are leverage ceilings,
    multiples of equity (an agent's for a lineage, the parent's gross exposure for a parent)."""
    with open_store_or_exit(store_url) as store:
        try:
            rows = current_tiers(store, market=market, subject=subject)
            ks = store.kill_switch()
        except USER_ERRORS as exc:
            fail(exc)
    if as_json:
        say_json({"kill_switch": ks, "tiers": rows})
        return
    if ks.get("on"):
        say(f"[bold red]kill switch ON[/] since {ks['at']} by {ks['actor']}: {ks['reason']} (every tier is 0x)")
    if not rows:
        say("no policy decisions yet: run `cohortlab campaign --policy ...` (or `cohortlab run --policy`)")
        return
    t = Table(title="leverage tiers in force")
    for h in ("subject", "market", "tier", "last trigger", "next tier", "next trigger", "step-down"):
        t.add_column(h)
    for r in rows:
        t.add_row(r["subject"], r["market"], _x(r["tier"]), r["trigger"], _x(r["next_tier"]), r["next_trigger"],
                  f"{_x(r['down_tier'])}: {r['down_trigger']}")
    say(t)


def policy_history(
    subject: Optional[str] = typer.Option(None, "--subject", help="Only this subject."),
    market: Optional[str] = MARKET,
    trigger: Optional[str] = typer.Option(None, "--trigger", help="Only this trigger (step_up, losing_period, ...)."),
    source: Optional[str] = typer.Option(None, "--source", help="Only decisions of this campaign id or run id."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Rows per page."),
    offset: int = typer.Option(0, "--offset", min=0, help="Rows to skip."),
    as_json: bool = AS_JSON,
    csv_path: Optional[Path] = CSV_OUT,
    store_url: Optional[str] = STORE,
) -> None:
    """Stored policy decisions, newest first, with the rule and figures that decided them."""
    with open_store_or_exit(store_url) as store:
        try:
            rows, total = tier_history(store, market=market, subject=subject, trigger=trigger, source=source,
                                       limit=limit, offset=offset)
        except USER_ERRORS as exc:
            fail(exc)
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            fh.writelines(csv_chunks(rows, DECISION_CSV_FIELDS))
        say(f"{len(rows)} decisions written to {csv_path} (this page; --limit/--offset page through the rest)")
    if as_json:
        say_json({"total": total, "limit": limit, "offset": offset, "items": rows})
        return
    t = Table(title=f"policy decisions {offset + 1}-{offset + len(rows)} of {total}")
    for h in ("period", "subject", "tier", "trigger", "rule"):
        t.add_column(h, overflow="fold")
    for r in rows:
        t.add_row(r["period"], r["subject"], f"{_x(r['previous_tier'])} -> {_x(r['tier'])}", r["trigger"], r["rule"])
    say(t)


def policy_simulate(
    campaign: str = typer.Option(..., "--campaign", help="The campaign id (printed by `cohortlab campaign --policy`)."),
    setting: list[str] = typer.Option([], "--set", help="Override a policy setting, e.g. --set sharpe_min=1.0 "
                                      "--set cap=5 (names: see README 'Risk policy')."),
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """Replay the policy over a stored campaign's track records and print each subject's
    tier path. With --set, the path the other settings would have taken on the same
    figures (a counterfactual in tiers only: the returns are not re-simulated)."""
    try:
        overrides = {}
        for s in setting:
            name, sep, value = s.partition("=")
            if not sep:
                raise PolicyConfigError(f"--set {s!r} is not NAME=VALUE")
            overrides[name.strip()] = int(value) if name.strip() in ("min_trades", "kelly_periods", "kelly_min_bars") \
                else (value if name.strip() == "period" else float(value))
        cfg = PolicyConfig.from_dict(overrides)
    except (PolicyConfigError, ValueError) as exc:
        fail(exc)
    with open_store_or_exit(store_url) as store:
        try:
            sim = simulate_campaign(store, campaign, cfg)
        except LookupError as exc:
            fail(exc)
    if as_json:
        say_json(sim)
        return
    for s in sim["subjects"]:
        t = Table(title=s["subject"])
        for h in ("period", "Sharpe (ann.)", "max DD", "return", "trades", "tier", "trigger", "stored"):
            t.add_column(h)
        for p in s["path"]:
            t.add_row(p["period"], display.num(p["sharpe"], 2), display.pct(p["max_drawdown"]), display.pct(p["ret"]),
                      str(p["trades"]), f"{_x(p['previous_tier'])} -> {_x(p['tier'])}", p["trigger"],
                      _x(p["stored_tier"]))
        say(t)


def risk_report_cmd(
    run_id: str = typer.Argument(..., help="A completed run id (see `cohortlab runs list`)."),
    window: Optional[int] = typer.Option(None, "--window", min=2, help="VaR over the last N bars of parent "
                                         "returns (default: the whole run)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON to this path."),
    store_url: Optional[str] = STORE,
) -> None:
    """Bankroll at risk of a run's parent: historical and Cornish-Fisher VaR/CVaR at 95 % and
    99 % over one bar (fraction of the bankroll and quote amount), stress scenarios on the
    end-of-run positions (all symbols -10 %, -30 %, the worst clock hour), and each agent's
    half-Kelly leverage."""
    with open_store_or_exit(store_url) as store:
        try:
            rep = risk_report(store, run_id, window=window)
        except USER_ERRORS as exc:
            fail(exc)
    v = rep["var"]
    quote = rep.get("quote") or ""
    say(f"run {run_id}: bankroll {display.num(rep['bankroll'], 2)} {quote}; VaR horizon {v['horizon']}, "
        f"sample {v['sample']['n_returns']} bar returns (not annualised)")
    if not v["estimable"]:
        say(f"VaR not estimable: {v['note']}")
    else:
        t = Table(title="bankroll at risk")
        for h in ("method", "level", "VaR", f"VaR {quote}", "CVaR", f"CVaR {quote}"):
            t.add_column(h)
        for e in v["estimates"]:
            t.add_row(e["method"], f"{e['level']:.0%}", display.pct(e["var_fraction"]),
                      display.num(e["var_quote"], 4), display.pct(e["cvar_fraction"]), display.num(e["cvar_quote"], 4))
        say(t)
    t = Table(title=f"stress scenarios ({rep['positions_at']})")
    for h in ("scenario", f"parent loss {quote}", "fraction of parent", "agents liquidated"):
        t.add_column(h)
    for s in rep["stress"]:
        p = s["parent"]
        t.add_row(s["name"], display.num(p["loss"], 4), display.pct(p["loss_fraction"]), str(p["n_liquidated"]))
    say(t)
    if rep.get("worst_hour_note"):
        say(rep["worst_hour_note"])
    est = [k for k in rep["kelly"] if k.get("fractional") is not None]
    if est:
        fr = sorted(k["fractional"] for k in est)
        say(f"half-Kelly leverage over {len(est)} agents: median {fr[len(fr) // 2]:.2f}x, "
            f"min {fr[0]:.2f}x, max {fr[-1]:.2f}x (per-bar moments of this run)")
    wrote(json_path, rep)


def kill_switch_cmd(
    state: str = typer.Argument(..., help="on or off."),
    reason: str = typer.Option(..., "--reason", help="Why (required; recorded in the audit log)."),
    store_url: Optional[str] = STORE,
) -> None:
    """Turn the kill switch on or off. While on, no cohort takes new exposure (every
    leverage ceiling is 0x) and every policy decision is 0x; turning it off lets each
    subject resume at the base tier. Who, when and why are audited."""
    if state not in ("on", "off"):
        fail(ValueError(f"state {state!r} is not allowed; allowed: on, off"))
    if not reason.strip():
        fail(ValueError("--reason must not be empty"))
    actor = f"cli:{getpass.getuser()}" if sys.stdin else "cli"
    with open_store_or_exit(store_url) as store:
        try:
            new = set_kill_switch(store, state == "on", actor=actor, reason=reason.strip())
        except USER_ERRORS as exc:
            fail(exc)
    say(f"kill switch {'ON' if new['on'] else 'off'} at {new['at']} by {new['actor']}: {new['reason']}")
