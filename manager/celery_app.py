"""The Celery application: Redis broker and result backend, the beat schedule,
and the worker-side wiring of metrics.

Start a worker and beat (with ``COHORTLAB_BROKER_URL=redis://127.0.0.1:6379/0``)::

    PROMETHEUS_MULTIPROC_DIR=/tmp/cohortlab-metrics celery -A manager.celery_app worker --loglevel=INFO
    celery -A manager.celery_app beat --loglevel=INFO

Without ``COHORTLAB_BROKER_URL`` the app is *eager*: ``task.delay(...)`` runs the
same task function in the calling process, so the embedded defaults need no
server.

Delivery guarantees: ``acks_late`` + ``reject_on_worker_lost`` — a message is
acknowledged only after its task finished, so a worker killed mid-task leaves
the message to be redelivered to another worker once it is older than
``COHORTLAB_VISIBILITY_TIMEOUT_S`` (default 3600 s; set it above your longest
task) — workers sweep for such messages every ``COHORTLAB_RESTORE_SWEEP_S``
(default 60 s); the tasks are idempotent by run id (see :mod:`manager.tasks`),
so redelivery completes the run once and never books its ledger twice.
"""
from __future__ import annotations

import os
import time
from datetime import timedelta

from celery import Celery, signals
from celery.schedules import crontab

from manager.settings import Settings, get_settings

#: seconds to wait for a TCP connection to the broker / result backend (``COHORTLAB_CONNECT_TIMEOUT_S``)
CONNECT_TIMEOUT_S = float(os.environ.get("COHORTLAB_CONNECT_TIMEOUT_S", "1.0"))
#: how publishing a task and talking to the result backend retry a lost connection
#: (``COHORTLAB_CONNECT_RETRIES`` attempts, 0.2-0.5 s apart): a dead broker is an error in ~2 s
CONNECT_RETRY = {"max_retries": int(os.environ.get("COHORTLAB_CONNECT_RETRIES", "2")), "interval_start": 0,
                 "interval_step": 0.2, "interval_max": 0.5}

#: tasks that beat schedules, by schedule-entry name
INTRADAY_ENTRY = "intraday-learning-cycle"
DAILY_SCORING_ENTRY = "daily-scoring"
PROMOTION_EXPIRY_ENTRY = "expire-promotions"
DEPLOYMENT_TICK_ENTRY = "deployments-tick"
DAY3_REVIEW_ENTRY = "day3-review"
#: the Day-3 go/no-go review runs daily at 00:DAY3_REVIEW_MINUTE UTC, after the day's scoring
DAY3_REVIEW_MINUTE = 45
DAILY_REPORT_ENTRY = "daily-report"
#: the daily report of the UTC day that closed runs at DAILY_REPORT_HOUR:00 UTC, after scoring and the Day-3 review
DAILY_REPORT_HOUR = 1

#: default seconds between two sweeps of overdue promotion requests (``COHORTLAB_PROMOTION_EXPIRY_S``)
PROMOTION_EXPIRY_S = 300.0
#: default seconds between two deployment ticks (``COHORTLAB_DEPLOYMENT_TICK_S``)
DEPLOYMENT_TICK_S = 60.0


def _positive_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"{name}={raw!r} is not allowed; allowed: seconds > 0, e.g. {default:g}")
    return value


def deployment_tick_seconds() -> float:
    """The interval of the deployment tick (``cohortlab.deployments_tick``):
    ``COHORTLAB_DEPLOYMENT_TICK_S`` (seconds, > 0; default 60; empty = the default).

    Raises:
        ValueError: not a finite number > 0.
    """
    return _positive_seconds("COHORTLAB_DEPLOYMENT_TICK_S", DEPLOYMENT_TICK_S)


def promotion_expiry_seconds() -> float:
    """The interval of the promotion-expiry sweep: ``COHORTLAB_PROMOTION_EXPIRY_S``
    (seconds, > 0; default 300 = every 5 minutes; empty = the default).

    Raises:
        ValueError: not a finite number > 0.
    """
    return _positive_seconds("COHORTLAB_PROMOTION_EXPIRY_S", PROMOTION_EXPIRY_S)


def beat_schedule(settings: Settings, promotion_expiry_s: float | None = None,
                  deployment_tick_s: float | None = None) -> dict:
    """The production beat schedule.

    * the intraday learning cycle every ``intraday_every_hours`` (2-4 h) with
      lookback ``intraday_lookback``;
    * scoring of the UTC day that just closed, daily at 00:``daily_scoring_minute`` UTC;
    * the expiry of promotion requests past their approval window
      (``cohortlab.expire_promotions``) every ``promotion_expiry_s`` seconds (default
      :func:`promotion_expiry_seconds`: ``COHORTLAB_PROMOTION_EXPIRY_S``, 300);
    * the deployment tick (``cohortlab.deployments_tick``: start the ``risk_approved``
      promotions, advance the running deployments) every ``deployment_tick_s``
      seconds (default :func:`deployment_tick_seconds`: ``COHORTLAB_DEPLOYMENT_TICK_S``, 60);
    * the Day-3 go/no-go review (``cohortlab.day3_review``) daily at 00:45 UTC
      (:data:`DAY3_REVIEW_MINUTE`);
    * the daily report of yesterday (``cohortlab.daily_report``), written and delivered
      through the alert channels daily at 01:00 UTC (:data:`DAILY_REPORT_HOUR`).
    """
    expiry = promotion_expiry_seconds() if promotion_expiry_s is None else float(promotion_expiry_s)
    if not expiry > 0:
        raise ValueError(f"promotion_expiry_s={promotion_expiry_s!r} must be > 0 seconds")
    tick = deployment_tick_seconds() if deployment_tick_s is None else float(deployment_tick_s)
    if not (tick > 0 and tick != float("inf")):
        raise ValueError(f"deployment_tick_s={deployment_tick_s!r} must be > 0 seconds")
    return {
        INTRADAY_ENTRY: {
            "task": "cohortlab.run_learning_cycle",
            "schedule": timedelta(hours=settings.intraday_every_hours),
            "kwargs": {"mode": "intraday", "lookback": settings.intraday_lookback},
        },
        DAILY_SCORING_ENTRY: {
            "task": "cohortlab.score_day",
            "schedule": crontab(hour=0, minute=settings.daily_scoring_minute),
            "kwargs": {},
        },
        PROMOTION_EXPIRY_ENTRY: {
            "task": "cohortlab.expire_promotions",
            "schedule": timedelta(seconds=expiry),
            "kwargs": {},
        },
        DEPLOYMENT_TICK_ENTRY: {
            "task": "cohortlab.deployments_tick",
            "schedule": timedelta(seconds=tick),
            "kwargs": {},
            # a tick not started before the next one is due is dropped, not queued behind it
            "options": {"expires": tick},
        },
        DAY3_REVIEW_ENTRY: {
            "task": "cohortlab.day3_review",
            "schedule": crontab(hour=0, minute=DAY3_REVIEW_MINUTE),
            "kwargs": {},
        },
        DAILY_REPORT_ENTRY: {
            "task": "cohortlab.daily_report",
            "schedule": crontab(hour=DAILY_REPORT_HOUR, minute=0),
            "kwargs": {},
        },
    }


def make_app(settings: Settings | None = None) -> Celery:
    """Build the Celery app from the settings (eager when no broker is configured)."""
    s = settings or get_settings()
    broker = s.broker_url
    backend = s.result_backend or (broker if broker and broker.startswith("redis") else None)
    app = Celery("cohortlab", broker=broker or "memory://", backend=backend, include=["manager.tasks"])
    visibility = int(os.environ.get("COHORTLAB_VISIBILITY_TIMEOUT_S", "3600"))
    # how often a worker sweeps for unacknowledged messages past the visibility timeout
    sweep = int(os.environ.get("COHORTLAB_RESTORE_SWEEP_S", "60"))
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        timezone="UTC", enable_utc=True,
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_track_started=True, result_expires=7 * 86400,
        broker_transport_options={"visibility_timeout": visibility, "unacked_restore_interval": sweep,
                                  "unacked_restore_throttle": 1},
        # fail fast when Redis is down: an API publishing a task answers 503 within ~2 s
        # (the result backend's default policy retries 20 times, 1 s apart, before giving up)
        result_backend_transport_options={"visibility_timeout": visibility, "retry_policy": CONNECT_RETRY},
        redis_socket_connect_timeout=CONNECT_TIMEOUT_S, redis_socket_timeout=max(CONNECT_TIMEOUT_S, 30.0),
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        task_publish_retry_policy=CONNECT_RETRY,
        broker_connection_retry_on_startup=True,
        beat_schedule=beat_schedule(s),
        task_always_eager=broker is None,
        task_default_queue=os.environ.get("COHORTLAB_TASK_QUEUE", "celery"),
        task_eager_propagates=True,
    )
    return app


app = make_app()


@signals.before_task_publish.connect
def _stamp_enqueue_time(headers=None, **_):
    """Record when a task was sent, for the task-latency metric."""
    if headers is not None:
        headers.setdefault("enqueued_at", time.time())


@signals.worker_ready.connect
def _serve_metrics(**_):
    """Expose this worker's metrics (aggregated over its pool processes when
    ``PROMETHEUS_MULTIPROC_DIR`` is set) on ``COHORTLAB_METRICS_PORT``."""
    port = get_settings().metrics_port
    if port:
        from manager import metrics
        try:
            metrics.serve(port)
        except OSError:  # another worker on this host already serves the port
            pass


@signals.worker_process_shutdown.connect
def _mark_dead(pid=None, **_):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(pid or os.getpid())
