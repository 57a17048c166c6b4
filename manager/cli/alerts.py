"""``cohortlab alerts test|list``: the alert channels and the delivery record (issue 15).

Thin adapters over :mod:`manager.alerts`. Channels are apprise URLs named in
``COHORTLAB_ALERT_URLS`` (``name=url`` pairs, comma separated).

- ``alerts test CHANNEL`` sends a test message to one channel now (synchronously, from
  this process) and records it (rule ``test``): exit 0 when the channel accepted it;
  exit 1 when the delivery failed (the error is printed); exit 2 for an unknown channel
  (the message names the configured ones) or a store error.
- ``alerts list`` shows the recorded alerts, newest first: rule, subject, severity,
  status (pending / sent / failed), attempts, suppressed duplicates, the last error.
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from manager import alerts as A
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, err, fail, say, say_json

__all__ = ["alerts_list", "alerts_test"]

_ERRORS = (A.AlertError, *USER_ERRORS)


def alerts_test(
    channel: str = typer.Argument(..., help="A channel name of COHORTLAB_ALERT_URLS (name=apprise-url,...)."),
    store_url: Optional[str] = STORE,
) -> None:
    """Send a test message to one alert channel now and record it."""
    with open_store_or_exit(store_url) as store:
        try:
            doc = A.send_test(store, channel)
        except _ERRORS as exc:
            fail(exc)
    if doc["status"] != "sent":
        err.print(f"[bold red]error:[/] test message to {escape(channel)} failed: {escape(str(doc.get('last_error')))}")
        raise typer.Exit(code=1)
    say(f"test message sent to {channel} (alert {doc['alert_id']})")


def alerts_list(
    rule: Optional[str] = typer.Option(None, "--rule", help="Only this rule (e.g. parent_drawdown, kill_switch)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only this status (pending, sent, failed)."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Rows per page."),
    offset: int = typer.Option(0, "--offset", min=0, help="Rows to skip."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store_url: Optional[str] = STORE,
) -> None:
    """Recorded alerts, newest first: rule, subject, status, attempts, last error."""
    with open_store_or_exit(store_url) as store:
        try:
            items = store.list_alerts(rule=rule, status=status, limit=limit, offset=offset)
        except _ERRORS as exc:
            fail(exc)
    if as_json:
        say_json({"items": items, "limit": limit, "offset": offset})
        return
    if not items:
        say("no alerts" + (" matching the filter" if rule or status else ""))
        return
    t = Table(title=f"alerts {offset + 1}-{offset + len(items)}")
    for h in ("created_at", "rule", "subject", "severity", "status", "attempts", "suppressed", "title", "last error"):
        t.add_column(h, overflow="fold")
    for a in items:
        t.add_row(a["created_at"][:19], a["rule"], escape(a["subject"]), a["severity"], a["status"],
                  str(a["attempts"]), str(a.get("suppressed", 0)), escape(a["title"]),
                  escape(str(a.get("last_error") or "-")))
    say(t)
