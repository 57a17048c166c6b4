"""Celery tasks: cohorts, learning cycles, campaign days, daily scoring, the
expiry of promotion requests and the deployment tick.

Every task takes JSON-able arguments and opens the store named by the settings.

Idempotency: a cohort task carries its ``run_id`` (the caller makes one with
:func:`manager.store.new_run_id`). A redelivered or retried task with the same
run id takes over the run a dead worker left ``running``, returns the stored
result of a run that already completed, and never creates a second run; the
ledger is written in one transaction with the completion, so it is booked once
or not at all.

Retries: transient infrastructure errors (database locked/unreachable, broker
or Redis connection errors) retry with exponential backoff (``retry_backoff``,
up to ``max_retries``); input errors and permanent store errors (disk full,
read-only file: see :class:`manager.store.StoreUnavailable`) fail at once and,
for a cohort, store the run as ``failed`` with the reason. When the retries run
out, :class:`RunTask` stores the run as ``failed`` (``retries exhausted: ...``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import numpy as np
from celery import Task, signals

from evolution.evolve import GAConfig
from manager import metrics
from manager.baselines import baseline_percentile
from manager.celery_app import app
from manager.dead_letter import dead_letter
from manager.deployments import MAX_BARS_PER_TICK, advance_all, start_approved
from manager.go_no_go import review_campaigns
from manager.alerts import notify
from manager.campaigns import CampaignRequest, execute_campaign_day
from manager.learning_jobs import CycleRequest, Source, learning_cycle
from manager.launch import execute_cohort
from manager.leases import lease_s
from manager.promotions import expire_due
from manager.runner import BarsRequest, CohortRequest, RunAlreadyFinished
from manager.settings import get_settings
from manager.store import RunLeased, StoreUnavailable, offset_pages, open_store
from simulator.engine import EngineConfig


def _transient_types() -> tuple[type[BaseException], ...]:
    # StoreUnavailable: a busy/locked database or an unreachable server. Every other
    # StoreError -- disk full (SQLITE_FULL), read-only or moved file, I/O error -- is
    # permanent: retrying cannot fix it, so the run fails at once with the cause.
    # RunLeased: a live owner executes the run (a duplicate delivery); retry until it
    # finished (the stored result is returned) or its lease expired (taken over).
    types: list[type[BaseException]] = [StoreUnavailable, RunLeased, ConnectionError, TimeoutError]
    try:
        from pymongo.errors import AutoReconnect, ConnectionFailure
        types += [AutoReconnect, ConnectionFailure]
    except ImportError:  # pragma: no cover - pymongo is a service dependency
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        types.append(RedisConnectionError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


TRANSIENT = _transient_types()
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 5, "acks_late": True, "reject_on_worker_lost": True}


#: How many times a delivery that finds its run under a live lease waits one more lease
#: (:func:`_wait_for_lease`) before giving up: a live owner renews its lease while it runs.
LEASE_WAITS = 200


def _wait_for_lease(task: Task, exc: RunLeased):
    """Retry ``task`` once the run's lease could have expired (one lease + 0.5 s), not on
    the exponential backoff of transient errors: a duplicate delivery then returns the
    stored result once the owner finishes, or takes the run over once its owner died,
    and never exhausts the ordinary retries while it waits."""
    return task.retry(exc=exc, countdown=lease_s() + 0.5, max_retries=LEASE_WAITS)


def is_final(exc: BaseException) -> bool:
    """An error that ends a run as failed (not one a retry can fix)."""
    return not isinstance(exc, TRANSIENT)


log = logging.getLogger("cohortlab.tasks")


def fail_unfinished_run(run_id: str | None, exc: BaseException) -> bool:
    """Store run ``run_id`` as ``failed`` with ``exc`` as its reason if it is still
    ``running`` (the last delivery of a task gave up: retries exhausted, or an
    error the run's own handler could not store). Never raises.

    Returns:
        True when the run was marked failed.
    """
    if not run_id or isinstance(exc, RunLeased):  # a live owner executes it: never fail its run
        return False
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TRANSIENT):
        reason = f"retries exhausted: {reason}"
    try:
        with open_store() as store:
            if store.get_run(run_id)["status"] != "running":
                return False
            store.fail_run(run_id, reason)
            return True
    except Exception:  # noqa: BLE001 - the store itself is failing: the task's result still has the reason
        log.warning("could not store run %s as failed (%s)", run_id, reason, exc_info=True)
        return False


class RunTask(Task):
    """Base of the tasks that write one run (``run_id`` is their first argument):
    when the task finally fails -- Celery's retries are exhausted, or an error
    escaped -- the run is stored as ``failed`` with the reason instead of staying
    ``running`` (:func:`fail_unfinished_run`)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):  # noqa: D401 - Celery hook
        run_id = kwargs.get("run_id") if kwargs else None
        if run_id is None and args:
            run_id = args[0]
        fail_unfinished_run(run_id, exc)
        super().on_failure(exc, task_id, args, kwargs, einfo)


# ----------------------------------------------------------------- (de)serialising requests


def cohort_request_to_dict(req: CohortRequest) -> dict:
    """JSON form of a :class:`manager.runner.CohortRequest` (for task arguments)."""
    return asdict(req)


def cohort_request_from_dict(d: dict) -> CohortRequest:
    """Inverse of :func:`cohort_request_to_dict`; unknown keys are an error."""
    d = dict(d)
    bars = BarsRequest(**d.pop("bars", {}))
    engine = EngineConfig(**d.pop("engine", {}))
    return CohortRequest(bars=bars, engine=engine, **d)


def _brief(run: dict) -> dict:
    s = run.get("summary") or {}
    return {"run_id": run["run_id"], "status": run["status"], "reason": run.get("reason"),
            "parent": s.get("parent"), "failed_agents": len(s.get("failed_agents") or [])}


# ----------------------------------------------------------------- tasks


@app.task(bind=True, base=RunTask, name="cohortlab.run_cohort", **RETRY)
@dead_letter  # a delivery that keeps killing its worker fails the run after COHORTLAB_MAX_DELIVERIES
def run_cohort_task(self, run_id: str, request: dict, genomes: list[dict] | None = None) -> dict:
    """Run one cohort into the store under ``run_id``.

    Args:
        run_id: the run's id (idempotency key).
        request: :func:`cohort_request_to_dict` of the request.
        genomes: the agents' genome dicts (default: seeded like ``cohortlab run``).

    Returns:
        ``{"run_id", "status", "reason", "parent", "failed_agents"}``.

    Progress: on a worker (not eager) the task reports its stage as the custom
    state ``PROGRESS`` with ``meta={"stage": "loading" | "seeding" | "simulating" |
    "storing", "run_id"}`` (read by ``GET /api/jobs/{id}`` via ``AsyncResult``).
    """
    req = cohort_request_from_dict(request)

    def stage(name: str) -> None:  # best effort: a result backend hiccup never fails the run
        if not self.request.is_eager and self.request.id:
            try:
                self.update_state(state="PROGRESS", meta={"stage": name, "run_id": run_id})
            except Exception:  # noqa: BLE001
                pass

    with open_store() as store:
        try:
            execute_cohort(req, store, run_id=run_id, on_stage=stage, genomes=genomes,
                           extra={"task_id": self.request.id}, is_final=is_final)
        except RunAlreadyFinished as done:  # a redelivery of a finished run, or a duplicate that finished first
            return _brief(done.run)
        except RunLeased as exc:
            raise _wait_for_lease(self, exc) from None
        return _brief(store.get_run(run_id))


@app.task(bind=True, name="cohortlab.run_learning_cycle", **RETRY)
def run_learning_cycle(self, mode: str = "intraday", lookback: str = "12h", end: str | None = None,
                       validation: str | None = None, data: str | None = None, symbols: list[str] | None = None,
                       seed: int = 7, generations: int | None = None, population: int = 30) -> dict:
    """One learning cycle (the beat schedule runs the intraday one every few hours).

    Returns:
        The cycle's knowledge record summary: ``cycle_id``, ``mode``, windows,
        in- and out-of-sample figures.
    """
    s = get_settings()
    gens = generations if generations is not None else (40 if mode == "daily" else 10)
    req = CycleRequest(source=Source(data=data or s.data_dir, symbols=symbols, seed=seed), mode=mode, end=end,
                       lookback=lookback, validation=validation, ga=GAConfig(generations=gens, population=population),
                       seed=seed)
    with open_store() as store:
        result = learning_cycle(req, store)
    k = result.knowledge()
    return {key: k[key] for key in ("cycle_id", "mode", "train", "validation", "in_sample", "out_of_sample")}


@app.task(bind=True, base=RunTask, name="cohortlab.run_campaign_day", **RETRY)
@dead_letter
def run_campaign_day(self, run_id: str, request: dict, day: str, day_number: int = 1,
                     genomes: list[dict] | None = None) -> dict:
    """One campaign day — a learning cycle on the lookback before ``day``, then
    the cohort for ``day`` stored under ``run_id`` (idempotent like
    :func:`run_cohort_task`).

    Args:
        run_id: the day's cohort run id.
        request: ``{"cohort": cohort request dict, "lookback", "generations",
            "warmup_bars", "data", "symbols", "quote"}``.
        day: the UTC date traded.
        day_number: 1-based day of the campaign.
        genomes: the population to start from (default: the store's latest).
    """
    cohort = cohort_request_from_dict(request["cohort"])
    creq = CampaignRequest(source=Source(data=request.get("data"), symbols=request.get("symbols"),
                                         quote=request.get("quote"), seed=cohort.seed),
                           start=day, days=1, lookback=request.get("lookback", "3d"), cohort=cohort,
                           ga=GAConfig(generations=int(request.get("generations", 20))),
                           warmup_bars=int(request.get("warmup_bars", 200)))
    with open_store() as store:
        try:
            report = execute_campaign_day(creq, store, run_id=run_id, day_number=day_number, genomes=genomes,
                                          is_final=is_final)
        except RunAlreadyFinished as done:
            return _brief(done.run)
        except RunLeased as exc:
            raise _wait_for_lease(self, exc) from None
        return {**_brief(store.get_run(run_id)), "date": report["date"], "cycle_id": report["cycle_id"]}


@app.task(bind=True, name="cohortlab.score_day", **RETRY)
def score_day(self, date: str | None = None, scan: int = 500) -> dict:
    """Score a closed UTC day (default: yesterday): the completed cohort runs
    whose window started that day, their parent ROI and the best agents; the
    score is recorded as an audit event ``day_scored`` (beat runs this daily).

    Args:
        date: ``YYYY-MM-DD`` (UTC); None = the day before now.
        scan: how many recent completed cohort runs to look through.
    """
    day = date or (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%d")
    runs, best = [], []
    with open_store() as store:
        before = None
        seen = 0
        while seen < scan:
            page = store.list_runs(limit=min(100, scan - seen), before=before, status="completed", kind="cohort")
            if not page:
                break
            for r in page:
                s = r.get("summary") or store.get_run(r["run_id"]).get("summary") or {}
                if str(s.get("window", {}).get("start", "")).startswith(day):
                    # a best agent is the max of the cohort's draws: the population median and the
                    # cohort's random-baseline percentile (None without baselines) travel with it
                    rois = sorted(a["roi"] for a in s.get("agents", []))
                    median = float(np.median(rois)) if rois else None
                    runs.append({"run_id": r["run_id"], "roi": s["parent"]["roi"],
                                 "max_drawdown": s["parent"]["max_drawdown"],
                                 "baseline_percentile": baseline_percentile(s), "median_agent_roi": median})
                    for a in s.get("agents", [])[:3]:
                        best.append({"run_id": r["run_id"], "agent_id": a["agent_id"], "family": a["family"],
                                     "roi": a["roi"], "sharpe": a["sharpe"], "trades": a["trades"],
                                     "median_agent_roi": median})
            seen += len(page)
            before = page[-1]["run_id"]
        best.sort(key=lambda a: (-a["roi"], -a["sharpe"]))
        score = {"date": day, "runs": len(runs),
                 "mean_parent_roi": sum(r["roi"] for r in runs) / len(runs) if runs else 0.0,
                 "best_agents": best[:5], "run_ids": [r["run_id"] for r in runs]}
        store.record_audit({"kind": "day_scored", "actor": "beat",
                            "at": datetime.now(timezone.utc).isoformat(), "details": score})
    return score


@app.task(bind=True, name="cohortlab.expire_promotions", **RETRY)
def expire_promotions(self, now: str | None = None) -> dict:
    """Expire every promotion request whose approval window has ended
    (:func:`manager.promotions.expire_due`); beat runs it every
    ``COHORTLAB_PROMOTION_EXPIRY_S`` seconds (default 300). Each expiry counts in
    ``cohortlab_promotions_total{status="expired"}``; a run that fails for good counts in
    ``cohortlab_scheduler_failures_total{task="cohortlab.expire_promotions"}``.

    Args:
        now: the moment to expire at (ISO; default now). Idempotent: a request is
            expired once, by a conditional update; a second sweep finds nothing.

    Returns:
        ``{"expired": [promotion ids expired by this run], "count", "at"}``.
    """
    at = now or datetime.now(timezone.utc).isoformat()
    with open_store() as store:
        done = expire_due(store, at)
    if done:
        log.info("expired %d promotion request(s): %s", len(done), ", ".join(done))
    return {"expired": done, "count": len(done), "at": at}


class Day3ReviewError(RuntimeError):
    """Some campaign could not be reviewed (the others were); the next pass retries it."""


@app.task(bind=True, name="cohortlab.day3_review", **RETRY)
def day3_review(self, now: str | None = None) -> dict:
    """The daily Day-3 go/no-go review (beat: daily at 00:45 UTC,
    :data:`manager.celery_app.DAY3_REVIEW_ENTRY`): expire overdue requests, review
    every stored campaign that reached Day 3 with the promoter (guard rails from
    ``COHORTLAB_PROMOTER``), open a request for each passing candidate, log each
    decision (:func:`manager.go_no_go.review_campaigns`).

    Returns:
        the pass's summary (``opened``, ``no_go``, ``manual``, ``waiting``,
        ``expired``, ``errors``). Fails with :class:`Day3ReviewError` when a campaign
        could not be reviewed (counted in
        ``cohortlab_scheduler_failures_total{task="cohortlab.day3_review"}``).
    """
    from manager.campaign_views import promoter_config

    with open_store() as store:
        out = review_campaigns(store, now, config=promoter_config())
    if out["errors"]:
        raise Day3ReviewError("; ".join(f"{k}: {v}" for k, v in sorted(out["errors"].items())))
    return out


class DeploymentTickError(RuntimeError):
    """A deployment tick could not start or advance some deployment (the others were processed)."""


def _deployment_counts(store) -> dict:
    return {status: sum(1 for _ in offset_pages(store.list_deployments, status=status))
            for status in metrics.DEPLOYMENT_STATUSES}


@app.task(bind=True, name="cohortlab.deployments_tick", **RETRY)
def deployments_tick(self, now: str | None = None, max_bars: int = MAX_BARS_PER_TICK) -> dict:
    """One deployment tick (beat runs it every ``COHORTLAB_DEPLOYMENT_TICK_S`` seconds,
    default 60): start a deployment for every ``risk_approved`` promotion
    (:func:`manager.deployments.start_approved`), then step every running deployment to
    the last bar its data holds before ``now``, at most ``max_bars`` bars each
    (:func:`manager.deployments.advance_all`; the rollback triggers fire inside).

    Idempotent and restart-safe: one deployment per promotion, and a step saves with a
    conditional update on the last processed bar, so a redelivered, retried or
    concurrent tick never reserves twice nor processes a bar twice. Sets
    ``cohortlab_deployments{status}``; each rollback counts in
    ``cohortlab_rollbacks_total{trigger}``. When some promotion or deployment could not
    be processed the others still are, and the task then fails with
    :class:`DeploymentTickError` listing them (counted in
    ``cohortlab_scheduler_failures_total{task="cohortlab.deployments_tick"}``).

    Returns:
        ``{"at", "started": [ids], "advanced": {id: {"from", "to", "bars", "fills",
        "data_end"}}, "rolled_back": {id: trigger}, "conflicts": [ids], "errors": {}}``.
    """
    at = now or datetime.now(timezone.utc).isoformat()
    with open_store() as store:
        started = start_approved(store, at, data_dir=get_settings().data_dir)
        advanced = advance_all(store, at, max_bars=int(max_bars))
        metrics.record_deployments(_deployment_counts(store))
    errors = {**started["errors"], **advanced["errors"]}
    out = {"at": at, "started": started["started"], "advanced": advanced["advanced"],
           "rolled_back": advanced["rolled_back"], "conflicts": advanced["conflicts"], "errors": errors}
    if started["started"] or advanced["rolled_back"]:
        log.info("deployment tick at %s: started %s, rolled back %s", at, started["started"], advanced["rolled_back"])
    if errors:
        raise DeploymentTickError("; ".join(f"{k}: {v}" for k, v in sorted(errors.items())))
    return out


# ----------------------------------------------------------------- task metrics


def _beat_tasks() -> set[str]:
    return {entry["task"] for entry in (app.conf.beat_schedule or {}).values()}


@signals.task_failure.connect
def _beat_task_failed(sender=None, **kw):
    """A periodic (beat-scheduled) task failed for good (after its retries): count it in
    ``cohortlab_scheduler_failures_total{task}`` and raise a ``task_failed`` alert
    (:func:`manager.alerts.notify`, deduplicated per task)."""
    name = getattr(sender, "name", None)
    if name and name in _beat_tasks():
        metrics.record_scheduler_failure(name)
        try:
            with open_store() as store:
                notify(store, "task_failed", name, f"Scheduled task {name} failed",
                       f"The beat task {name} failed for good (after its retries): {kw.get('exception')!r}",
                       severity="critical")
        except Exception:  # noqa: BLE001 - no store: the metric and the log still tell
            log.exception("could not raise the task_failed alert for %s", name)



@signals.task_postrun.connect
def _task_finished(task=None, state=None, **_):
    if task is None or not task.name.startswith("cohortlab."):
        return
    outcome = {"SUCCESS": "success", "RETRY": "retry"}.get(state or "", "failure")
    metrics.TASKS.labels(task=task.name, outcome=outcome).inc()
    sent = getattr(task.request, "enqueued_at", None) or (task.request.get("enqueued_at")
                                                          if hasattr(task.request, "get") else None)
    if sent:
        metrics.TASK_LATENCY.labels(task=task.name, outcome=outcome).observe(max(time.time() - float(sent), 0.0))


# ----------------------------------------------------------------- alerts (issue 15)


@app.task(bind=True, name="cohortlab.deliver_alert", acks_late=True, reject_on_worker_lost=True)
def deliver_alert(self, alert_id: str, channels: list[str] | None = None) -> dict:
    """Deliver one stored alert through apprise to the configured channels
    (``COHORTLAB_ALERT_URLS``, or only the named ``channels``) and record the attempt
    (:func:`manager.alerts.deliver`). Enqueued by :func:`manager.alerts.raise_alert`.

    A failed attempt retries after :func:`manager.alerts.backoff_s` (``COHORTLAB_ALERT_BACKOFF_S``
    doubled per retry, at most 300 s) until ``COHORTLAB_ALERT_MAX_ATTEMPTS`` attempts; the
    last failure is recorded ``failed`` and returned (the task itself succeeds). Run eagerly
    (``.apply()``, an eager app) the retries happen in the task, sleeping the same backoff
    (Celery's eager retries would ignore the countdown). Idempotent:
    a redelivered task of an alert already sent or failed sends nothing.

    Returns:
        ``{"alert_id", "status" ("sent" | "failed"), "attempts", "last_error"}``.
    """
    from manager.alerts import DeliveryFailed, alert_urls, backoff_s, deliver, deliver_with_retries

    settings = get_settings()
    max_attempts = int(settings.alert_max_attempts)
    final = self.request.retries >= max_attempts - 1
    with open_store() as store:
        try:
            urls = alert_urls(settings, channels)
            if self.request.is_eager:  # in process (``.apply()``, no broker): retry here, sleeping the backoff
                doc = deliver_with_retries(store, alert_id, urls, max_attempts=max_attempts,
                                           backoff=settings.alert_backoff_s)
            else:
                doc = deliver(store, alert_id, urls, final=final)
        except DeliveryFailed as exc:
            raise self.retry(exc=exc, countdown=backoff_s(self.request.retries, settings.alert_backoff_s),
                             max_retries=max_attempts - 1)
    return {"alert_id": alert_id, "status": doc["status"], "attempts": doc["attempts"],
            "last_error": doc.get("last_error")}


# ----------------------------------------------------------------- reports (issue 15)


@app.task(bind=True, name="cohortlab.daily_report", **RETRY)
def daily_report(self, date: str | None = None, format: str = "pdf", out_dir: str | None = None) -> dict:
    """The daily report (beat: daily at 01:00 UTC, :data:`manager.celery_app.DAILY_REPORT_ENTRY`):
    the report of the UTC day ``date`` (default: yesterday, UTC) written to
    ``COHORTLAB_REPORT_DIR`` (or ``out_dir``) and sent as an attachment through the alert
    channels (``COHORTLAB_ALERT_URLS``; none configured: written only)
    (:func:`manager.reports.deliver_daily_report`).

    Returns:
        ``{"date", "format", "file", "bytes", "runs", "delivered", "error"}``.
    """
    from manager.reports import deliver_daily_report

    day = date or (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    with open_store() as store:
        return deliver_daily_report(store, day, fmt=format, out_dir=out_dir)


# ----------------------------------------------------------------- assistant intents (issue 15)


@app.task(bind=True, name="cohortlab.intent_day", **RETRY)
def intent_day(self, intent_id: str, day: int) -> dict:
    """One day of a confirmed "grow $X over N days" plan: the campaign day, then its
    actual-against-plan report appended to the intent (:func:`manager.intents.run_intent_day`).
    :func:`manager.intents.start_plan` chains one of these per day, so day d+1 starts only
    after day d succeeded. Idempotent: the day's cohort run id was fixed at confirmation and a
    day already reported returns its report.

    Returns:
        ``{"intent_id", "day", "run_id", "roi", "end_equity", "within_band"}``.
    """
    from manager.intents import run_intent_day

    with open_store() as store:
        try:
            report = run_intent_day(store, intent_id, int(day))
        except RunLeased as exc:
            raise _wait_for_lease(self, exc) from None
    actual = report["actual"]
    return {"intent_id": intent_id, "day": report["day"], "run_id": report["run_id"], "roi": actual["roi"],
            "end_equity": actual["end_equity"], "within_band": actual["within_band"]}
