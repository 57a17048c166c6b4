"""``cohortlab deployments list|show|rollback``: micro-live deployments (issue 14).

Thin adapters over :mod:`manager.deployments`. Reading (``list``, ``show``) needs no
sign-in. ``rollback`` authenticates the user like ``cohortlab promotions approve``: a
personal token from ``$COHORTLAB_TOKEN`` or ``--token`` (never printed) whose user must be
``--as NAME``; the role must be allowed the action ``rollback`` of
:data:`manager.users.PERMISSIONS` (ops, risk, admin). The rollback flattens at the last
processed close on the deployment's own bars (:func:`manager.deployments.deployment_market`).

Errors -- an unknown deployment, a refused role, missing notes, bars that cannot be
reloaded (:class:`manager.deployments.DeploymentError`), a bad token or ``--as`` mismatch
(:class:`manager.users.UserError`), a store error -- print one line and exit 2.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from manager import deployments as D
from manager import users
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, fail, say, say_json
from manager.cli.promotions import AS, AS_JSON, NOTES, TOKEN, authenticate, fmt_cell

__all__ = ["deployments_list", "deployments_rollback", "deployments_show"]

_ERRORS = (D.DeploymentError, users.UserError, *USER_ERRORS)


def _equity(doc: dict) -> Any:
    return (doc.get("broker") or {}).get("equity")


def _timer(doc: dict) -> str:
    """``expires_at`` and the time left on the rollback timer (now, UTC)."""
    expires = doc.get("expires_at")
    if not expires or doc.get("status") == D.ROLLED_BACK:
        return fmt_cell(expires)
    left = datetime.fromisoformat(expires.replace("Z", "+00:00")) - datetime.now(timezone.utc)
    secs = int(left.total_seconds())
    if secs <= 0:
        return f"{expires} (expired)"
    return f"{expires} ({secs // 86400}d {secs % 86400 // 3600}h {secs % 3600 // 60}m left)"


def deployments_list(
    status: Optional[str] = typer.Option(None, "--status", help="Only this status (running, paused, rolled_back)."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Rows per page."),
    offset: int = typer.Option(0, "--offset", min=0, help="Rows to skip."),
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """Deployments, newest first: status, allocation, equity, last bar, rollback timer."""
    with open_store_or_exit(store_url) as store:
        try:
            items = D.list_deployments(store, status=status, limit=limit, offset=offset)
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json({"items": items, "limit": limit, "offset": offset})
        return
    if not items:
        say("no deployments" + (" matching the filter" if status else ""))
        return
    t = Table(title=f"deployments {offset + 1}-{offset + len(items)}")
    for h in ("deployment_id", "promotion", "agent", "status", "allocation", "equity", "last bar", "expires_at"):
        t.add_column(h, overflow="fold")
    for d in items:
        t.add_row(d["deployment_id"], d["promotion_id"], d["agent_id"], d["status"],
                  f"{fmt_cell(d['allocation'].get('amount'))} {d['market'].get('quote', '')}", fmt_cell(_equity(d)),
                  str(d["last_bar"]), fmt_cell(d.get("expires_at")))
    say(t)


def deployments_show(
    deployment_id: str = typer.Argument(..., help="The deployment's id (see 'cohortlab deployments list')."),
    as_json: bool = AS_JSON,
    store_url: Optional[str] = STORE,
) -> None:
    """One deployment: status, allocation, equity, rollback timer, positions, manual
    controls and rollback incidents (their figures)."""
    with open_store_or_exit(store_url) as store:
        try:
            doc = D.get_deployment(store, deployment_id)
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json(doc)
        return
    alloc, quote = doc.get("allocation") or {}, doc["market"].get("quote", "")
    say(f"deployment {doc['deployment_id']}: {doc['status']} (promotion {doc['promotion_id']}, campaign "
        f"{doc['campaign_id']}, agent {doc['agent_id']})")
    say(f"allocation {fmt_cell(alloc.get('amount'))} {quote}, leverage {fmt_cell(alloc.get('leverage'))}x, "
        f"gross exposure {fmt_cell(alloc.get('gross_exposure'))} {quote}")
    say(f"equity {fmt_cell(_equity(doc))} {quote}; last bar {doc['last_bar']} (first traded {doc['start_bar']}, "
        f"{doc['market'].get('start_time')})")
    say(f"rollback timer: {_timer(doc)}")
    positions = (doc.get("broker") or {}).get("positions") or {}
    say("positions: " + (", ".join(f"{s} {fmt_cell(q)}" for s, q in positions.items()) if positions else "none"))
    if doc.get("rollback"):
        r = doc["rollback"]
        say(f"rolled back ({r.get('reason')}) at {r.get('at')} by {r.get('by')} ({r.get('role')}): final equity "
            f"{fmt_cell(r.get('final_equity'))}, pnl {fmt_cell(r.get('pnl'))}, fees {fmt_cell(r.get('fees'))}")
    if doc.get("controls"):
        t = Table(title="controls")
        for h in ("action", "user", "role", "at", "notes"):
            t.add_column(h, overflow="fold")
        for c in doc["controls"]:
            t.add_row(str(c.get("action")), str(c.get("user")), str(c.get("role")), str(c.get("at")),
                      escape(str(c.get("notes") or "-")))
        say(t)
    if doc["incidents"]:
        t = Table(title="incidents")
        for h in ("seq", "trigger", "figure", "threshold", "final equity", "bar", "at"):
            t.add_column(h, overflow="fold")
        for i in doc["incidents"]:
            t.add_row(str(i.get("seq")), str(i.get("trigger")), fmt_cell(i.get("figure")), fmt_cell(i.get("threshold")),
                      fmt_cell(i.get("final_equity")), fmt_cell(i.get("bar")), fmt_cell(i.get("at")))
        say(t)
    else:
        say("incidents: none")


def deployments_rollback(
    deployment_id: str = typer.Argument(..., help="The deployment's id."),
    notes: str = NOTES,
    as_name: str = AS,
    token: Optional[str] = TOKEN,
    store_url: Optional[str] = STORE,
) -> None:
    """Roll a deployment back now (ops, risk or admin; notes required): flatten at the last
    processed close, return the capital to the parent, record a manual incident."""
    with open_store_or_exit(store_url) as store:
        try:
            principal = authenticate(store, token, as_name)
            users.require(principal, "rollback")
            market = D.deployment_market(D.get_deployment(store, deployment_id))
            D.rollback(store, deployment_id, "manual", market=market, actor=principal, notes=notes)
            doc = D.get_deployment(store, deployment_id)
        except _ERRORS as exc:
            fail(exc)
    r = doc.get("rollback") or {}
    say(f"deployment {doc['deployment_id']}: {doc['status']} ({r.get('reason')}) by {r.get('by')} ({r.get('role')})")
    say(f"final equity {fmt_cell(r.get('final_equity'))} of allocation {fmt_cell(r.get('allocation'))}, "
        f"pnl {fmt_cell(r.get('pnl'))}, fees {fmt_cell(r.get('fees'))}")
