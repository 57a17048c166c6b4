"""Alerts: the rules that raise them, and their delivery through apprise.

Three steps, so that a request never sends anything itself:

1. **Rules** decide what to say. :func:`evaluate_run` is pure: from a cohort run's
   report (the stored run's ``summary``, :func:`manager.report.cohort_report`) it
   returns an :class:`Alert` for each threshold crossed -- parent drawdown, agent
   leverage breaches, parent utilisation, daily hard stops. Events (kill switch,
   rollback, promotion pending / approved / rejected, failed or missed scheduled
   tasks) call :func:`notify` with their own figures.
2. **Raise** (:func:`raise_alert`): the alert is stored ``pending`` unless an alert
   of the same ``(rule, subject)`` was raised within the rule's quiet window
   (dedup and rate limit, one atomic store step: :meth:`~manager.store.ports.alerts.
   AlertStore.create_alert`), then its delivery is *enqueued*: the Celery task
   ``cohortlab.deliver_alert`` on a worker when a broker is configured, else the
   same task in a background thread of this process (never inline).
3. **Deliver** (:func:`deliver`, run by the task): the message goes to every
   configured channel through apprise (Slack, Telegram, email, webhooks, ... --
   any apprise URL in ``COHORTLAB_ALERT_URLS``), and the attempt is recorded
   (``sent`` / still ``pending`` / ``failed``, attempts, the error). A failed
   attempt raises :class:`DeliveryFailed` and the task retries with exponential
   backoff (``COHORTLAB_ALERT_BACKOFF_S`` doubled each time, at most 300 s) until
   ``COHORTLAB_ALERT_MAX_ATTEMPTS``; the last failure is recorded ``failed``.

Delivery is at least once per channel: when one of several channels fails, the
retry sends to all of them again.

Figures in messages carry their units: fractions are shown as percentages, money
in the run's quote currency.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from manager.settings import Settings, get_settings
from manager.store import Store

__all__ = ["RULES", "SEVERITIES", "Alert", "AlertError", "DeliveryFailed", "Thresholds", "alert_urls", "backoff_s",
           "deliver", "deliver_with_retries", "enqueue_delivery", "evaluate_run", "message_of", "notify", "notify_kill_switch",
           "notify_rollback", "notify_run", "raise_alert", "send",
           "send_test", "window_s"]

log = logging.getLogger("cohortlab.alerts")

RULES: dict[str, str] = {
    "parent_drawdown": "a run's parent max drawdown above COHORTLAB_ALERT_DRAWDOWN",
    "leverage_breach": "agents whose orders the parent gate clipped or rejected (leverage / exposure ceilings)",
    "utilisation": "a run's parent peak utilisation above COHORTLAB_ALERT_UTILISATION",
    "hard_stop": "the daily hard stop fired in a run",
    "kill_switch": "the kill switch was turned on or off",
    "rollback": "a micro-live deployment was rolled back",
    "promotion_pending": "a promotion request waits for approval",
    "promotion_approved": "a promotion request was approved",
    "promotion_rejected": "a promotion request was rejected",
    "task_failed": "a scheduled task failed",
    "task_missed": "a scheduled task did not run on time",
    "day3_review": "the Day-3 go/no-go review found no candidate for a campaign day (no-go)",
    "test": "a test message (cohortlab alerts test CHANNEL)",
}
"""The alert rules and what raises them (a rule is also any other lower-case name a caller uses)."""

SEVERITIES = ("info", "warning", "critical")
"""How bad an alert is (apprise's notification type: info, warning, failure)."""

MAX_BACKOFF_S = 300.0
"""The longest wait between two delivery attempts, seconds."""


class AlertError(ValueError):
    """A bad alert request: an unknown channel, an unknown severity, a bad threshold."""


class DeliveryFailed(RuntimeError):
    """A delivery attempt failed (the attempt is recorded; the task retries it)."""


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of :func:`evaluate_run`.

    Attributes:
        parent_drawdown: alert when the parent's max drawdown is above it, a
            fraction (0.05 = 5 %).
        utilisation: alert when the parent's peak utilisation (capital in positions /
            capital allocated to agents) is above it, a fraction (0.9 = 90 %).
        leverage_breaches: alert for the agents with at least this many orders
            clipped or rejected by the parent gate (>= 1).
    """

    parent_drawdown: float = 0.05
    utilisation: float = 0.90
    leverage_breaches: int = 1

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Thresholds":
        """The thresholds of ``COHORTLAB_ALERT_DRAWDOWN`` / ``_UTILISATION`` / ``_LEVERAGE_BREACHES``."""
        s = settings or get_settings()
        return cls(parent_drawdown=s.alert_drawdown, utilisation=s.alert_utilisation,
                   leverage_breaches=s.alert_leverage_breaches)


@dataclass(frozen=True)
class Alert:
    """One alert before it is stored.

    Attributes:
        rule: the rule that raised it (a key of :data:`RULES`, or another lower-case name).
        subject: what it is about (a run id, a deployment id, ``kill_switch``, a task name);
            the dedup / rate-limit key is ``(rule, subject)``.
        severity: ``info``, ``warning`` or ``critical``.
        title: one line.
        body: the message, with its figures and their units.
        figures: the figures as numbers (stored with the alert, e.g. ``{"max_drawdown": 0.075}``).
    """

    rule: str
    subject: str
    severity: str
    title: str
    body: str
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise AlertError(f"severity={self.severity!r}; allowed: {', '.join(SEVERITIES)}")


# ------------------------------------------------------------------ rules
def _pct(x: float) -> str:
    return f"{100.0 * float(x):.2f} %"


def evaluate_run(report: Mapping[str, Any], thresholds: Thresholds | None = None) -> list[Alert]:
    """The alerts of one cohort run (pure: no store, no clock).

    Args:
        report: the run's report (:func:`manager.report.cohort_report`, also the
            stored run's ``summary``): reads ``run_id``, ``quote``, ``bankroll``,
            ``parent.max_drawdown`` / ``peak_utilisation`` / ``final_equity`` (fractions
            and quote currency), ``agents[*].breaches``, ``events`` (daily hard stops)
            and ``settings``. Missing parts raise nothing: their rules are skipped.
        thresholds: default :class:`Thresholds` ().

    Returns:
        In this order, those that fire: ``parent_drawdown`` (critical),
        ``leverage_breach`` (warning: the agents at or above the breach count, most
        first), ``utilisation`` (warning), ``hard_stop`` (critical: each stop's time,
        drawdown against the threshold, parent equity). Subject: the run id.

    Raises:
        AlertError: a threshold out of range (drawdown / utilisation <= 0, breaches < 1).
    """
    th = thresholds or Thresholds()
    if not (th.parent_drawdown > 0 and th.utilisation > 0 and th.leverage_breaches >= 1):
        raise AlertError(f"bad thresholds {th}: drawdown and utilisation must be > 0, leverage_breaches >= 1")
    run_id = str(report.get("run_id") or "unknown-run")
    quote = str(report.get("quote") or "")
    parent = report.get("parent") or {}
    settings = report.get("settings") or {}
    data = report.get("data")
    where = f"run {run_id}" + (f" ({data})" if data else "")
    out: list[Alert] = []

    dd = parent.get("max_drawdown")
    if dd is not None and float(dd) > th.parent_drawdown:
        bankroll, final = report.get("bankroll"), parent.get("final_equity")
        lines = [f"Parent max drawdown {_pct(dd)} (threshold {_pct(th.parent_drawdown)}) in {where}."]
        if bankroll is not None and final is not None:
            lines.append(f"Bankroll {float(bankroll):,.2f} {quote}, final parent equity {float(final):,.2f} {quote}, "
                         f"ROI {_pct(parent.get('roi', 0.0))}.")
        out.append(Alert("parent_drawdown", run_id, "critical",
                         f"Parent drawdown {_pct(dd)} > {_pct(th.parent_drawdown)} ({run_id})", "\n".join(lines),
                         {"max_drawdown": float(dd), "threshold": th.parent_drawdown, "bankroll": bankroll,
                          "final_equity": final, "quote": quote}))

    agents = [a for a in report.get("agents") or [] if int(a.get("breaches") or 0) >= th.leverage_breaches]
    if agents:
        agents.sort(key=lambda a: (-int(a["breaches"]), str(a.get("agent_id"))))
        total = sum(int(a["breaches"]) for a in agents)
        ceiling = settings.get("max_gross_leverage")
        lines = [f"{len(agents)} agent(s) had orders clipped or rejected by the parent gate in {where} "
                 f"({total} breaches; threshold {th.leverage_breaches} per agent"
                 + (f"; gross leverage ceiling {float(ceiling):g}x" if ceiling is not None else "") + ")."]
        lines += [f"- {a.get('agent_id')}: {int(a['breaches'])} breaches" for a in agents[:10]]
        if len(agents) > 10:
            lines.append(f"- ... and {len(agents) - 10} more")
        out.append(Alert("leverage_breach", run_id, "warning",
                         f"Leverage breaches: {len(agents)} agent(s), {total} orders clipped ({run_id})",
                         "\n".join(lines),
                         {"agents": {str(a.get("agent_id")): int(a["breaches"]) for a in agents}, "total": total,
                          "threshold": th.leverage_breaches, "max_gross_leverage": ceiling}))

    util = parent.get("peak_utilisation")
    if util is not None and float(util) > th.utilisation:
        out.append(Alert("utilisation", run_id, "warning",
                         f"Bankroll utilisation {_pct(util)} > {_pct(th.utilisation)} ({run_id})",
                         f"Parent peak utilisation (capital in positions / capital allocated) {_pct(util)} "
                         f"(threshold {_pct(th.utilisation)}) in {where}.",
                         {"peak_utilisation": float(util), "threshold": th.utilisation}))

    stops = [e for e in report.get("events") or [] if e.get("kind") == "daily_hard_stop"]
    if stops:
        lines = [f"The daily hard stop fired {len(stops)} time(s) in {where}:"]
        lines += [f"- {e.get('time')}: drawdown {_pct(e.get('drawdown', 0.0))} of the day's reference "
                  f"(threshold {_pct(e.get('threshold', 0.0))}), parent equity "
                  f"{float(e.get('parent_equity', 0.0)):,.2f} {quote}" for e in stops]
        out.append(Alert("hard_stop", run_id, "critical", f"Daily hard stop fired {len(stops)}x ({run_id})",
                         "\n".join(lines),
                         {"stops": [{k: e.get(k) for k in ("time", "drawdown", "threshold", "parent_equity")}
                                    for e in stops], "quote": quote}))
    return out


# ------------------------------------------------------------------ raising
def window_s(rule: str, settings: Settings | None = None) -> float:
    """The quiet window of ``rule``, seconds: ``COHORTLAB_ALERT_WINDOWS[rule]``, else
    ``COHORTLAB_ALERT_WINDOW_S`` (default 900)."""
    s = settings or get_settings()
    return float(s.alert_windows.get(rule, s.alert_window_s))


def _moment(now: Any) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if isinstance(now, str):
        now = datetime.fromisoformat(now.replace("Z", "+00:00"))
    if now.tzinfo is None:
        raise AlertError(f"now={now!r} has no time zone; allowed: an aware datetime or ISO 8601 with an offset")
    return now.astimezone(timezone.utc)


def enqueue_delivery(alert_id: str) -> None:
    """Deliver ``alert_id`` off the caller's path: the Celery task
    ``cohortlab.deliver_alert`` on a worker when a broker is configured (and the Celery
    app is not eager), else that task run in a daemon thread of this process."""
    from manager.tasks import deliver_alert  # the tasks import the use cases; not the other way round

    broker = get_settings().broker_url
    if broker:
        from manager.celery_app import app

        if not app.conf.task_always_eager:
            deliver_alert.apply_async(args=[alert_id])
            return
    threading.Thread(target=_deliver_in_process, args=(alert_id,), name=f"alert-{alert_id}", daemon=True).start()


def _deliver_in_process(alert_id: str) -> None:
    """The no-broker worker: :func:`deliver_with_retries` on the settings' store, with the
    settings' channels, attempts and backoff (sleeping between attempts)."""
    from manager.store import open_store

    try:
        settings = get_settings()
        with open_store() as store:
            deliver_with_retries(store, alert_id, alert_urls(settings), max_attempts=settings.alert_max_attempts,
                                 backoff=settings.alert_backoff_s)
    except Exception:  # noqa: BLE001 - a background thread: log, never raise
        log.exception("could not deliver alert %s", alert_id)


def raise_alert(store: Store, alert: Alert, now: Any = None, *, window: float | None = None,
                enqueue: Callable[[str], None] | None = None) -> dict | None:
    """Store ``alert`` and enqueue its delivery, unless its ``(rule, subject)`` is quiet.

    Args:
        now: when it is raised (aware datetime or ISO 8601; default now, UTC).
        window: the quiet window, seconds (default :func:`window_s` of the rule); an
            alert of the same rule and subject raised within it -- strictly after
            ``now - window`` -- suppresses this one. 0 = never suppressed.
        enqueue: called with the new alert's id to deliver it (default
            :func:`enqueue_delivery`; tests pass a recorder or a direct call).

    Returns:
        The stored alert (``pending``), or None when suppressed (the earlier alert's
        ``suppressed`` count went up). With the default ``enqueue`` and no channel
        configured (``COHORTLAB_ALERT_URLS`` empty) nothing is enqueued: the alert is
        recorded ``failed`` at once ("no alert channel configured").

    Raises:
        AlertError: a naive ``now`` or a negative window.
        StoreError: the store failed (nothing was enqueued).
    """
    at = _moment(now)
    quiet = window_s(alert.rule) if window is None else float(window)
    if quiet < 0:
        raise AlertError(f"window={quiet} s; allowed: >= 0 seconds")
    doc = {"alert_id": f"al-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", "rule": alert.rule,
           "subject": alert.subject, "severity": alert.severity, "title": alert.title, "body": alert.body,
           "figures": alert.figures, "created_at": at.isoformat()}
    since = (at - timedelta(seconds=quiet)).isoformat() if quiet > 0 else None
    stored, created = store.create_alert(doc, quiet_since=since)
    if not created:
        log.info("alert %s/%s suppressed: %s raised within %g s", alert.rule, alert.subject, stored["alert_id"], quiet)
        return None
    if enqueue is None and not get_settings().alert_urls:  # nowhere to send: recorded failed, no worker needed
        return store.record_alert_attempt(stored["alert_id"], ok=False, final=True, at=at.isoformat(),
                                          error="no alert channel configured (set COHORTLAB_ALERT_URLS)")
    (enqueue or enqueue_delivery)(stored["alert_id"])
    return stored


def notify(store: Store, rule: str, subject: str, title: str, body: str, *, severity: str = "warning",
           figures: Mapping[str, Any] | None = None, now: Any = None,
           enqueue: Callable[[str], None] | None = None) -> dict | None:
    """The one hook for events (kill switch, rollback, promotions, the scheduler):
    raise an alert and never fail the caller.

    Args:
        rule: a key of :data:`RULES` (e.g. ``"rollback"``) or another lower-case name.
        subject: what it is about (deployment id, promotion id, task name, ...).
        title, body: the message; say the figures with their units.
        severity: ``info`` / ``warning`` / ``critical``.
        figures: the figures as numbers (stored with the alert).
        now, enqueue: as for :func:`raise_alert`.

    Returns:
        The stored alert, or None when it was suppressed *or could not be raised*
        (any error is logged, never raised: alerting must not break a use case).
    """
    try:
        return raise_alert(store, Alert(rule, subject, severity, title, body, dict(figures or {})), now,
                           enqueue=enqueue)
    except Exception:  # noqa: BLE001 - an alert must never fail the use case that raised it
        log.exception("could not raise the %s alert on %s", rule, subject)
        return None


def notify_run(store: Store, report: Mapping[str, Any], thresholds: Thresholds | None = None, *, now: Any = None,
               enqueue: Callable[[str], None] | None = None) -> list[dict]:
    """Raise the alerts of a completed run (:func:`evaluate_run` with the thresholds
    of the settings by default); never raises.

    Returns:
        The alerts stored (suppressed ones left out).
    """
    try:
        alerts = evaluate_run(report, thresholds or Thresholds.from_settings())
    except Exception:  # noqa: BLE001
        log.exception("could not evaluate the alert rules of run %s", report.get("run_id"))
        return []
    out = []
    for a in alerts:
        got = notify(store, a.rule, a.subject, a.title, a.body, severity=a.severity, figures=a.figures, now=now,
                     enqueue=enqueue)
        if got is not None:
            out.append(got)
    return out


def notify_kill_switch(store: Store, state: Mapping[str, Any], *, enqueue: Callable[[str], None] | None = None) -> dict | None:
    """Alert that the kill switch changed (rule ``kill_switch``, subject ``kill_switch``;
    critical when turned on). ``state``: :meth:`Store.set_kill_switch`'s ``{"on", "actor",
    "reason", "at"}``. Never raises (see :func:`notify`)."""
    try:
        on = bool(state.get("on"))
        what = ("on: every cohort trades under 0x ceilings (no new exposure)" if on
                else "off: the next policy decisions resume at the base tier")
        return notify(store, "kill_switch", "kill_switch", f"Kill switch turned {'ON' if on else 'off'} by "
                      f"{state.get('actor')}", f"The kill switch was turned {what}.\nBy {state.get('actor')} at "
                      f"{state.get('at')}; reason: {state.get('reason')}", severity="critical" if on else "info",
                      figures={"on": on, "actor": state.get("actor"), "at": state.get("at")}, enqueue=enqueue)
    except Exception:  # noqa: BLE001
        log.exception("could not raise the kill switch alert")
        return None


def notify_rollback(store: Store, deployment: Mapping[str, Any], summary: Mapping[str, Any], *,
                    enqueue: Callable[[str], None] | None = None) -> dict | None:
    """Alert that a deployment was rolled back (rule ``rollback``, subject the
    deployment id, critical). ``summary``: the deployment's ``rollback`` record
    (``reason``, ``at``, ``by``, ``role``, ``notes``, ``bar``, ``allocation``,
    ``final_equity``, ``pnl``, ``fees`` in the quote currency). Never raises."""
    try:
        did = str(deployment["deployment_id"])
        quote = (deployment.get("market") or {}).get("quote", "")
        reason = summary.get("reason")
        money = {k: summary.get(k) for k in ("allocation", "final_equity", "pnl", "fees")}
        body = (f"Deployment {did} (promotion {deployment.get('promotion_id')}) rolled back on {reason} at bar "
                f"{summary.get('bar')}, by {summary.get('by')} ({summary.get('role')}).\n"
                + ", ".join(f"{k.replace('_', ' ')} {float(v):.8g} {quote}".rstrip() for k, v in money.items()
                            if v is not None) + "."
                + (f"\nNotes: {summary.get('notes')}" if summary.get("notes") else ""))
        return notify(store, "rollback", did, f"Deployment {did} rolled back ({reason})", body, severity="critical",
                      figures={**money, "reason": reason, "bar": summary.get("bar"), "quote": quote},
                      now=summary.get("at"), enqueue=enqueue)
    except Exception:  # noqa: BLE001
        log.exception("could not raise the rollback alert")
        return None


def notify_promotion(store: Store, doc: Mapping[str, Any], *, enqueue: Callable[[str], None] | None = None) -> dict | None:
    """Alert on a promotion request's new status (subject the promotion id):
    ``promotion_pending`` while it waits for a signature (proposed, or a step signed
    and another to come: the body names the role), ``promotion_approved`` when fully
    approved (queued for deployment), ``promotion_rejected``. Other statuses raise
    nothing. Never raises."""
    try:
        status, pid = doc.get("status"), str(doc["promotion_id"])
        chain = doc.get("chain") or {}
        steps = chain.get("steps") or []
        signed = sum(1 for s in doc.get("steps") or [] if s.get("kind") == "approve")
        alloc = doc.get("allocation") or {}
        what = (f"agent {doc.get('agent_id')} of campaign {doc.get('campaign_id')} day {doc.get('day')} "
                f"({doc.get('date')}); allocation {float(alloc.get('amount') or 0):.8g} at "
                f"{float(alloc.get('leverage') or 0):.4g}x")
        if status == "rejected":
            rule, sev, title = "promotion_rejected", "info", f"Promotion {pid} rejected"
        elif steps and status == steps[-1]["status"]:
            rule, sev, title = "promotion_approved", "info", f"Promotion {pid} approved: queued for deployment"
        elif signed < len(steps):
            nxt = steps[signed]
            rule, sev = "promotion_pending", "warning"
            title = f"Promotion {pid} awaits {nxt['role']} approval by {doc.get('expires_at')}"
        else:
            return None
        last = (doc.get("steps") or [doc.get("proposed_by") or {}])[-1]
        body = f"{title}.\n{what}.\nLast action by {last.get('user')} ({last.get('role')}): {last.get('notes') or last.get('reason') or ''}"
        return notify(store, rule, f"{pid}:{status}", title, body, severity=sev,
                      figures={"status": status, "allocation": alloc.get("amount"), "leverage": alloc.get("leverage")},
                      enqueue=enqueue)
    except Exception:  # noqa: BLE001
        log.exception("could not raise the promotion alert")
        return None


# ------------------------------------------------------------------ delivery
def alert_urls(settings: Settings | None = None, channels: Iterable[str] | None = None) -> dict[str, str]:
    """The configured channels (``COHORTLAB_ALERT_URLS``), ``{name: apprise URL}``,
    or only those named in ``channels``.

    Raises:
        AlertError: a name in ``channels`` is not configured (the message lists the configured ones).
    """
    configured = dict((settings or get_settings()).alert_urls)
    if channels is None:
        return configured
    missing = [c for c in channels if c not in configured]
    if missing:
        have = ", ".join(sorted(configured)) or "none (set COHORTLAB_ALERT_URLS, e.g. ops=slack://T/B/X)"
        raise AlertError(f"unknown alert channel {', '.join(missing)}; configured channels: {have}")
    return {c: configured[c] for c in channels}


_NOTIFY_TYPES = {"info": "info", "warning": "warning", "critical": "failure"}


def message_of(doc: Mapping[str, Any]) -> tuple[str, str]:
    """The ``(title, body)`` sent for a stored alert: ``[cohortlab] SEVERITY: title`` and
    the body followed by a line naming the rule, the subject and the alert id."""
    title = f"[cohortlab] {str(doc.get('severity', 'info')).upper()}: {doc['title']}"
    body = f"{doc['body']}\n\nrule: {doc['rule']} | subject: {doc['subject']} | alert: {doc['alert_id']}"
    return title, body


def send(urls: Mapping[str, str] | Iterable[str], title: str, body: str, severity: str = "info") -> tuple[bool, str | None]:
    """Send one message to every URL through apprise (synchronously; one HTTP / SMTP
    exchange per channel, apprise's own timeouts).

    Returns:
        ``(True, None)`` when every channel accepted it, else ``(False, error)``: the
        channels that failed and apprise's warnings/errors (e.g. ``HTTP 500``).
    """
    import apprise  # a service dependency: only the worker and the CLI's ``alerts test`` need it

    named = dict(urls) if isinstance(urls, Mapping) else {u: u for u in urls}
    if not named:
        return False, "no alert channel configured (set COHORTLAB_ALERT_URLS)"
    failed: list[str] = []
    notes: list[str] = []
    for name, url in named.items():
        ap = apprise.Apprise()
        if not ap.add(url):
            failed.append(name)
            notes.append(f"{name}: not a valid apprise URL")
            continue
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = ap.notify(title=title, body=body, notify_type=_NOTIFY_TYPES.get(severity, "info"))
        if not ok:
            failed.append(name)
            text = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())
            notes.append(f"{name}: {text or 'not delivered'}")
    if failed:
        return False, "; ".join(notes)[:2000]
    return True, None


def backoff_s(retries: int, base: float | None = None) -> float:
    """Seconds to wait before retry number ``retries + 1``: ``base * 2**retries``, at
    most :data:`MAX_BACKOFF_S` (``base`` default ``COHORTLAB_ALERT_BACKOFF_S``)."""
    b = get_settings().alert_backoff_s if base is None else float(base)
    return float(min(MAX_BACKOFF_S, b * (2 ** max(0, int(retries)))))


def deliver(store: Store, alert_id: str, urls: Mapping[str, str] | Iterable[str], *, final: bool = True,
            now: Any = None) -> dict:
    """Send a stored alert to ``urls`` and record the attempt (the Celery task's body).

    Idempotent: an alert already ``sent`` or ``failed`` is returned as it is (a
    redelivered task sends nothing).

    Args:
        urls: ``{channel: apprise URL}`` (or a list of URLs).
        final: this is the last attempt: a failure is recorded ``failed`` (and
            returned). Otherwise a failure is recorded (still ``pending``) and raised.
        now: the attempt's time (default now).

    Returns:
        The alert as stored afterwards (``sent``, or ``failed`` on a final failure).

    Raises:
        DeliveryFailed: a failed attempt that is not final (the caller retries).
        NotFound: no alert with that id.
    """
    doc = store.get_alert(alert_id)
    if doc["status"] in ("sent", "failed"):
        return doc
    title, body = message_of(doc)
    ok, error = send(urls, title, body, doc.get("severity", "info"))
    at = _moment(now).isoformat()
    doc = store.record_alert_attempt(alert_id, ok=ok, error=error, final=final, at=at)
    if ok:
        log.info("alert %s (%s/%s) sent after %d attempt(s)", alert_id, doc["rule"], doc["subject"], doc["attempts"])
    elif final:
        log.warning("alert %s (%s/%s) failed after %d attempt(s): %s", alert_id, doc["rule"], doc["subject"],
                    doc["attempts"], error)
    else:
        raise DeliveryFailed(f"alert {alert_id}, attempt {doc['attempts']}: {error}")
    return doc


def deliver_with_retries(store: Store, alert_id: str, urls: Mapping[str, str] | Iterable[str], *,
                         max_attempts: int = 5, backoff: float | None = None,
                         sleep: Callable[[float], None] = time.sleep) -> dict:
    """:func:`deliver` with up to ``max_attempts`` attempts, sleeping :func:`backoff_s`
    (``backoff`` doubled per retry, at most 300 s) between them -- the in-process
    worker's loop (the Celery task retries through Celery instead).

    Returns:
        The alert as stored afterwards (``sent`` or ``failed``).

    Raises:
        AlertError: ``max_attempts`` < 1.
        NotFound: no alert with that id.
    """
    if int(max_attempts) < 1:
        raise AlertError(f"max_attempts={max_attempts}; allowed: >= 1")
    for n in range(int(max_attempts)):
        try:
            return deliver(store, alert_id, urls, final=n == int(max_attempts) - 1)
        except DeliveryFailed:
            sleep(backoff_s(n, backoff))
    raise AssertionError("unreachable: the last attempt is final")  # pragma: no cover


def send_test(store: Store, channel: str, settings: Settings | None = None, now: Any = None) -> dict:
    """Send a test message to one configured channel now, and record it (rule ``test``,
    subject the channel, no quiet window).

    Returns:
        The recorded alert (``sent`` or ``failed``, with the error).

    Raises:
        AlertError: ``channel`` is not configured (the message lists the configured ones).
    """
    urls = alert_urls(settings, [channel])
    at = _moment(now)
    stored = raise_alert(store, Alert("test", channel, "info", f"Test message to channel {channel}",
                                      f"This is a test of the cohortlab alert channel {channel!r}, sent at "
                                      f"{at:%Y-%m-%d %H:%M:%S} UTC."), at, window=0, enqueue=lambda _id: None)
    assert stored is not None  # window 0: never suppressed
    return deliver(store, stored["alert_id"], urls, final=True, now=at)
