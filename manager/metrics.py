"""Prometheus metrics of the workers (prometheus-client).

Multiprocess-safe: when ``PROMETHEUS_MULTIPROC_DIR`` is set (as it must be for
Celery's prefork pool and for the API under several processes), every process
writes its samples to files there and :func:`registry` aggregates them with
``prometheus_client.multiprocess.MultiProcessCollector``. Without it, the
default in-process registry is used.

Metrics (all prefixed ``cohortlab_``):

=====================================  =========  =========================================
name                                   type       meaning
=====================================  =========  =========================================
``cohort_runtime_seconds``             histogram  wall time of one cohort run
``failed_agents_total``                counter    agents that errored and were sat out
``bankroll_utilisation_ratio``         gauge      peak capital in positions / allocated, last run
``learning_cycle_seconds{mode}``       histogram  wall time of a learning cycle
``task_latency_seconds{task,outcome}`` histogram  enqueue-to-finish time of a Celery task
``tasks_total{task,outcome}``          counter    finished tasks by outcome (success, retry, failure)
``request_latency_seconds``            histogram  HTTP API request latency, by method, route, status
``policy_tier_changes_total``          counter    policy decisions that changed a tier, by
                                                  ``direction`` (up, down) and ``trigger``
``policy_decisions_total{trigger}``    counter    policy decisions recorded, by trigger
``policy_parent_tier``                 gauge      the parent's tier after the last decision (x)
``hard_stops_total``                   counter    daily hard stops fired in cohorts
``kill_switch_on``                     gauge      1 while the kill switch is on
``promotions_total{status}``           counter    promotion-request transitions, by the new
                                                  status (proposed, ops_approved,
                                                  risk_approved, rejected, expired)
``scheduler_failures_total{task}``     counter    beat (periodic) task runs that failed
``deployments{status}``                gauge      deployments in the store by status (running,
                                                  paused, rolled_back), set by each deployment tick
``rollbacks_total{trigger}``           counter    deployment rollbacks, by trigger (kill_switch,
                                                  hard_stop, tier_zero, drawdown, variance, timer,
                                                  manual)
=====================================  =========  =========================================

``request_latency_seconds`` is labelled ``{method, route, status}``; ``route`` is the
route *template* (``/api/cohorts/{run_id}``), ``<unmatched>`` for paths no route
serves, so the label set stays small whatever clients request.
"""
from __future__ import annotations

import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess, start_http_server)

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

COHORT_RUNTIME = Histogram("cohortlab_cohort_runtime_seconds", "Wall time of one cohort run (s).",
                           buckets=_SECONDS)
FAILED_AGENTS = Counter("cohortlab_failed_agents_total", "Agents that errored and were sat out of their cohort.")
BANKROLL_UTILISATION = Gauge("cohortlab_bankroll_utilisation_ratio",
                             "Peak capital in positions / capital allocated of the last cohort run.",
                             multiprocess_mode="mostrecent")
LEARNING_CYCLE = Histogram("cohortlab_learning_cycle_seconds", "Wall time of a learning cycle (s).", ["mode"],
                           buckets=_SECONDS)
TASK_LATENCY = Histogram("cohortlab_task_latency_seconds", "Enqueue-to-finish time of a task (s).",
                         ["task", "outcome"], buckets=_SECONDS)
TASKS = Counter("cohortlab_tasks_total", "Finished tasks by outcome.", ["task", "outcome"])
REQUEST_LATENCY = Histogram("cohortlab_request_latency_seconds",
                            "HTTP API request latency (s) by method, route template and status code.",
                            ["method", "route", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
TIER_CHANGES = Counter("cohortlab_policy_tier_changes_total", "Policy decisions that changed a tier.",
                       ["direction", "trigger"])
POLICY_DECISIONS = Counter("cohortlab_policy_decisions_total", "Policy decisions recorded, by trigger.", ["trigger"])
PARENT_TIER = Gauge("cohortlab_policy_parent_tier", "The parent's tier after the last policy decision (x).",
                    multiprocess_mode="mostrecent")
HARD_STOPS = Counter("cohortlab_hard_stops_total", "Daily hard stops fired in cohorts.")
KILL_SWITCH = Gauge("cohortlab_kill_switch_on", "1 while the kill switch is on, else 0.",
                    multiprocess_mode="mostrecent")
PROMOTIONS = Counter("cohortlab_promotions_total", "Promotion-request transitions, by the new status.", ["status"])
SCHEDULER_FAILURES = Counter("cohortlab_scheduler_failures_total", "Periodic (beat) task runs that failed.",
                             ["task"])

DEPLOYMENTS = Gauge("cohortlab_deployments", "Deployments in the store by status, at the last deployment tick.",
                    ["status"], multiprocess_mode="mostrecent")
ROLLBACKS = Counter("cohortlab_rollbacks_total", "Deployment rollbacks, by trigger.", ["trigger"])

#: the statuses ``cohortlab_deployments`` always reports (0 when none)
DEPLOYMENT_STATUSES = ("running", "paused", "rolled_back")


def record_rollback(trigger: str) -> None:
    """Count one deployment rollback by ``trigger`` (``manual`` for a rollback by hand)."""
    ROLLBACKS.labels(trigger=str(trigger or "unknown")).inc()


def record_deployments(counts: dict) -> None:
    """Set ``cohortlab_deployments{status}`` from ``{status: n}`` (missing statuses = 0)."""
    for status in sorted({*DEPLOYMENT_STATUSES, *counts}):
        DEPLOYMENTS.labels(status=status).set(float(counts.get(status, 0)))


def record_promotion(status: str) -> None:
    """Count one promotion-request transition to ``status``."""
    PROMOTIONS.labels(status=status).inc()


def record_scheduler_failure(task: str) -> None:
    """Count one failed run of the periodic task ``task``."""
    SCHEDULER_FAILURES.labels(task=task).inc()


def record_policy_decisions(docs) -> None:
    """Count the decisions and tier changes of one policy day; set the parent tier gauge."""
    for d in docs:
        POLICY_DECISIONS.labels(d["trigger"]).inc()
        prev = d.get("previous_tier")
        if prev is not None and d["tier"] != prev:
            TIER_CHANGES.labels("up" if d["tier"] > prev else "down", d["trigger"]).inc()
        if d.get("subject_kind") == "parent":
            PARENT_TIER.set(float(d["tier"]))


def record_hard_stops(n: int) -> None:
    """Count ``n`` daily hard stops."""
    if n > 0:
        HARD_STOPS.inc(n)


def record_kill_switch(on: bool) -> None:
    """Set the kill-switch gauge."""
    KILL_SWITCH.set(1.0 if on else 0.0)


def registry() -> CollectorRegistry:
    """The registry to expose: aggregated over processes when
    ``PROMETHEUS_MULTIPROC_DIR`` is set, else the default one."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """``(body, content type)`` of the Prometheus text format."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` on ``port`` from this process (a worker's main process)."""
    start_http_server(port, addr=addr, registry=registry())


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one HTTP API request (``route`` is the route template, never the raw path)."""
    REQUEST_LATENCY.labels(method=method, route=route, status=str(status)).observe(seconds)


def record_cohort(seconds: float, failed_agents: int, peak_utilisation: float) -> None:
    """Record one finished cohort run."""
    COHORT_RUNTIME.observe(seconds)
    if failed_agents:
        FAILED_AGENTS.inc(failed_agents)
    BANKROLL_UTILISATION.set(peak_utilisation)
