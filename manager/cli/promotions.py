"""``cohortlab promotions list|show|readiness|propose|approve|reject|expire``: Day-3
promotion requests and their approval chain.

Thin adapters over :mod:`manager.promotions`. Reading (``list``, ``show``, ``readiness``)
needs no sign-in, like the dashboard. The acting commands (``propose``, ``approve``,
``reject``) authenticate the user by a **personal token** (``cohortlab users add``) read
from ``$COHORTLAB_TOKEN`` or ``--token`` (prefer the environment: an option is visible in
the process list); ``manager.users.authenticate`` checks it, the bootstrap token
``COHORTLAB_API_TOKEN`` counting as the admin ``admin:bootstrap``. The token is never
printed. ``--as NAME`` must name the token's user: it makes the signer explicit in the
command (and in shell history) and refuses a token of someone else. ``expire`` is the
beat task's sweep run now; it acts as ``system`` and needs no token.

Errors -- a refused transition (:class:`manager.promotions.PromotionError`: wrong role,
separation of duties, stale checklist, state conflict, bad input), a bad token or
``--as`` mismatch (:class:`manager.users.UserError`), a store error -- print one line
and exit 2.

Guard rails: ``readiness`` and ``propose`` use the promoter's defaults
(:class:`evolution.promoter.PromoterConfig`, README "Day-3 promotion"); ``--set
NAME=VALUE`` overrides one (the values are stored with the request, so its approvals
re-check the same rules).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from evolution.promoter import PromoterError
from manager import promotions as P
from manager import users
from manager.campaign_views import PROMOTION_CSV_FIELDS, promoter_config, promotion_row
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, fail, say, say_json
from manager.report import csv_chunks
from manager.settings import get_settings

__all__ = ["promotions_approve", "promotions_expire", "promotions_list", "promotions_propose",
           "promotions_readiness", "promotions_reject", "promotions_show"]

_ERRORS = (P.PromotionError, users.UserError, PromoterError, *USER_ERRORS)

AS_JSON = typer.Option(False, "--json", help="Print JSON instead of tables.")
TOKEN = typer.Option(None, "--token", envvar="COHORTLAB_TOKEN", show_default=False, show_envvar=True,
                     help="Your personal API token (from 'cohortlab users add'); default $COHORTLAB_TOKEN, "
                          "which is preferred (an option shows in the process list). Never printed.")
AS = typer.Option(..., "--as", help="Your user name: must be the token's user (the bootstrap token is "
                                     f"{users.BOOTSTRAP_NAME!r}).")
NOTES = typer.Option(..., "--notes", help="Why (required, non-empty; stored with your signature).")
SETTINGS = typer.Option([], "--set", help="Override a guard rail of the promoter, e.g. --set min_trades=2 "
                        "--set pbo_max=0.7 (names: PromoterConfig, README 'Day-3 promotion').")

def authenticate(store, token: Optional[str], as_name: str) -> users.Principal:
    """The principal of ``token`` (a personal token, or ``COHORTLAB_API_TOKEN`` as the
    bootstrap admin), which must be ``as_name``.

    Raises:
        UserError: no token, a token that stands for nobody (unknown, revoked, rotated), or
            ``as_name`` is not the token's user. The token never appears in the message.
    """
    if not token:
        raise users.UserError("no token: set COHORTLAB_TOKEN (or pass --token) to your personal token "
                              "from 'cohortlab users add'")
    principal = users.authenticate(store, token, get_settings().api_token)
    if principal is None:
        raise users.UserError("the token is not valid: unknown, revoked or rotated "
                              "(ask an admin for 'cohortlab users rotate NAME')")
    if principal.name != as_name:
        raise users.UserError(f"--as {as_name!r} does not match the token's user {principal.name!r}")
    return principal


def fmt_cell(v: Any) -> str:
    """A table cell: ``-`` for None, floats to 6 significant digits, else ``str``."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _signatures(doc: dict) -> list[dict]:
    """The proposal and every signed step, oldest first."""
    prop = doc.get("proposed_by") or {}
    out = [{"kind": "propose", "step": P.PROPOSED, **prop}] if prop else []
    for s in doc.get("steps", []):
        out.append({"kind": s.get("kind"), "step": s.get("step") or s.get("kind"), **s})
    return out


def checklist_table(checks: list[dict], title: str) -> Table:
    """The guard rails: name, figure, threshold, pass/fail, detail."""
    t = Table(title=title)
    for h in ("guard rail", "figure", "threshold", "result", "detail"):
        t.add_column(h, overflow="fold", justify="right" if h == "figure" else "left")
    for c in checks:
        t.add_row(c["name"], fmt_cell(c.get("figure")), escape(str(c.get("threshold"))),
                  "[green]pass[/]" if c.get("passed") else "[bold red]FAIL[/]", escape(str(c.get("detail") or "")))
    return t


def _next(step: dict) -> str:
    roles = step.get("role")
    who = f" ({', '.join(roles)})" if roles else ""
    return f"next step: {step['action']}{who}: {step['detail']}"


def _say_request(doc: dict, quiet: bool = False) -> None:
    say(f"promotion {doc['promotion_id']}: {doc['status']} (campaign {doc['campaign_id']} day {doc['day']}, "
        f"agent {doc['agent_id']}, expires {doc.get('expires_at')})")
    if not quiet:
        say(f"checklist hash {doc['checklist_hash']}")


# -- reading ----------------------------------------------------------------------------------


def promotions_list(
    status: Optional[str] = typer.Option(None, "--status", help="Only this status (proposed, ops_approved, "
                                         "risk_approved, rejected, expired)."),
    campaign: Optional[str] = typer.Option(None, "--campaign", help="Only requests of this campaign id."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Rows per page."),
    offset: int = typer.Option(0, "--offset", min=0, help="Rows to skip."),
    as_json: bool = AS_JSON,
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Also write the rows as CSV to this path."),
    store_url: Optional[str] = STORE,
) -> None:
    """Promotion requests, newest first."""
    with open_store_or_exit(store_url) as store:
        try:
            page = P.list_promotions(store, status=status, campaign_id=campaign, limit=limit, offset=offset)
        except _ERRORS as exc:
            fail(exc)
    rows = [promotion_row(d) for d in page["items"]]
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            fh.writelines(csv_chunks(rows, PROMOTION_CSV_FIELDS))
        say(f"{len(rows)} promotion requests written to {csv_path} (this page; --limit/--offset page through "
            "the rest)")
    if as_json:
        say_json(page)
        return
    if not rows:
        say("no promotion requests" + (" matching the filters" if status or campaign else
                                       "; see 'cohortlab promotions readiness RUN_ID'"))
        return
    t = Table(title=f"promotion requests {offset + 1}-{offset + len(rows)} of {page['total']}")
    for h in ("promotion_id", "campaign", "day", "agent", "status", "proposed by", "signed by", "created_at",
              "expires_at"):
        t.add_column(h, overflow="fold")
    for r, doc in zip(rows, page["items"]):
        signers = " ".join(s["user"] for s in doc.get("steps", []) if s.get("kind") == "approve")
        t.add_row(r["promotion_id"], r["campaign_id"], str(r["day"]), r["agent_id"], r["status"],
                  r["proposed_by"] or "-", signers or "-", r["created_at"] or "-", r["expires_at"] or "-")
    say(t)


def promotions_show(
    promotion_id: str = typer.Argument(..., help="The request's id (see 'cohortlab promotions list')."),
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """One request: its checklist with figures, the signatures (user, role, time, notes,
    checklist hash), the transition log and the next step."""
    with open_store_or_exit(store_url) as store:
        try:
            doc = P.get_promotion(store, promotion_id)
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json(doc)
        return
    _say_request(doc)
    alloc = doc.get("allocation") or {}
    if alloc:
        say(f"allocation {fmt_cell(alloc.get('amount'))} of bankroll {fmt_cell(alloc.get('bankroll'))}, "
            f"leverage {fmt_cell(alloc.get('leverage'))}x (bound by {alloc.get('bound_by', '-')})")
    say(checklist_table((doc.get("checklist") or {}).get("checks", []),
                        f"checklist of agent {doc['agent_id']} on {doc.get('date')}"))
    sig = Table(title="signatures")
    for h in ("step", "user", "role", "at", "notes", "checklist hash"):
        sig.add_column(h, overflow="fold")
    for s in _signatures(doc):
        sig.add_row(str(s.get("step")), s.get("user", "-"), s.get("role", "-"), s.get("at", "-"),
                    escape(str(s.get("notes") or s.get("reason") or "-")), s.get("checklist_hash") or "-")
    say(sig)
    log = Table(title="log")
    for h in ("seq", "at", "from", "to", "actor"):
        log.add_column(h, overflow="fold")
    for i, row in enumerate(doc.get("log", []), 1):
        log.add_row(str(row.get("seq", i)), row.get("created_at", "-"), row.get("from_status") or "-",
                    row.get("status", "-"), row.get("actor", "-"))
    say(log)
    say(_next(doc["next_step"]))


def promotions_readiness(
    run_id: str = typer.Argument(..., help="A cohort run of day >= 3 of a stored campaign."),
    setting: list[str] = SETTINGS,
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """The promotion-readiness of a campaign day: the checklist of its best candidate, the
    blocking items, the checklist hash an approver signs, and the next step."""
    with open_store_or_exit(store_url) as store:
        try:
            r = P.readiness(store, run_id, config=promoter_config(setting))
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json(r)
        return
    verdict = (f"[green]ready[/]: agent {r['candidate']}" if r["ready"] else
               f"[bold red]not ready[/]: best agent {r['best_agent']} is blocked")
    say(f"campaign {r['campaign_id']} day {r['day']} ({r['date']}), run {r['run_id']}: {verdict}")
    say(checklist_table(r["checklist"], f"checklist of agent {r['best_agent']}"))
    if r["blocking"]:
        say("blocking: " + "; ".join(f"{c['name']} = {fmt_cell(c.get('figure'))} (needs {c['threshold']})"
                                     for c in r["blocking"]))
    alloc = r.get("allocation") or {}
    if alloc:
        say(f"allocation {fmt_cell(alloc.get('amount'))} of bankroll {fmt_cell(alloc.get('bankroll'))}")
    say(f"checklist hash {r['checklist_hash']}")
    if r["open_promotion"]:
        say(f"open request: {r['open_promotion']}")
    say(_next(r["next_step"]))


# -- acting -----------------------------------------------------------------------------------


def promotions_propose(
    campaign: str = typer.Option(..., "--campaign", help="The campaign id (printed by 'cohortlab campaign')."),
    day: int = typer.Option(..., "--day", min=1, help="The campaign day to review (>= 3)."),
    agent: Optional[str] = typer.Option(None, "--agent", help="The agent to propose (default: the promoter's "
                                        "proposal, the best one passing every guard rail)."),
    notes: str = NOTES,
    as_name: str = AS,
    token: Optional[str] = TOKEN,
    setting: list[str] = SETTINGS,
    store_url: Optional[str] = STORE,
) -> None:
    """Propose the promotion of a campaign day's agent (ops or admin; notes required)."""
    with open_store_or_exit(store_url) as store:
        try:
            cfg = promoter_config(setting)
            principal = authenticate(store, token, as_name)
            doc = P.propose(store, principal, campaign, day, agent, notes, config=cfg)
            doc = P.get_promotion(store, doc["promotion_id"])
        except _ERRORS as exc:
            fail(exc)
    say(f"proposed by {principal.name} ({principal.role})")
    _say_request(doc)
    say(_next(doc["next_step"]))


def promotions_approve(
    promotion_id: str = typer.Argument(..., help="The request's id."),
    notes: str = NOTES,
    checklist_hash: str = typer.Option(..., "--checklist-hash", help="The hash of the checklist you reviewed "
                                       "('promotions show ID' or 'promotions readiness RUN_ID')."),
    as_name: str = AS,
    token: Optional[str] = TOKEN,
    store_url: Optional[str] = STORE,
) -> None:
    """Sign the next approval step (the step's role; never two steps of one request)."""
    with open_store_or_exit(store_url) as store:
        try:
            principal = authenticate(store, token, as_name)
            P.approve(store, principal, promotion_id, notes, checklist_hash)
            doc = P.get_promotion(store, promotion_id)
        except _ERRORS as exc:
            fail(exc)
    say(f"signed by {principal.name} ({principal.role})")
    _say_request(doc, quiet=True)
    say(_next(doc["next_step"]))


def promotions_reject(
    promotion_id: str = typer.Argument(..., help="The request's id."),
    notes: str = NOTES,
    as_name: str = AS,
    token: Optional[str] = TOKEN,
    store_url: Optional[str] = STORE,
) -> None:
    """Reject an open request (ops, risk or admin; notes required)."""
    with open_store_or_exit(store_url) as store:
        try:
            principal = authenticate(store, token, as_name)
            P.reject(store, principal, promotion_id, notes)
            doc = P.get_promotion(store, promotion_id)
        except _ERRORS as exc:
            fail(exc)
    say(f"rejected by {principal.name} ({principal.role})")
    _say_request(doc, quiet=True)


def promotions_expire(
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """Expire now every request past its approval window (what the beat task
    'cohortlab.expire_promotions' does every COHORTLAB_PROMOTION_EXPIRY_S seconds)."""
    with open_store_or_exit(store_url) as store:
        try:
            done = P.expire_due(store)
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json({"expired": done, "count": len(done)})
        return
    say(f"expired {len(done)} promotion request(s)" + (": " + ", ".join(done) if done else ""))
