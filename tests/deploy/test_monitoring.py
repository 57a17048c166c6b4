"""Prometheus and Grafana provisioning checked statically against manager/metrics.py and the compose file."""
from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from prometheus_client.metrics import MetricWrapperBase
from starlette.routing import Match

import manager.metrics as metrics_module
from manager.settings import Settings
from tests.helpers import ROOT
from tests.deploy.deploy_files import (COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE, PROMETHEUS_FILE, GRAFANA, DASHBOARD_DIR, SERVICES, ONE_SHOT, APP_SERVICES, _command, _environment, _depends_on, _mounts, _healthcheck_text, _metric_specs, _series_names, _dashboards, _panels, _compose)


# ---------------------------------------------------------------- Prometheus


@pytest.fixture(scope="module")
def prometheus() -> dict:
    return yaml.safe_load(PROMETHEUS_FILE.read_text())


def _scrape_targets(job: dict) -> set[str]:
    targets = {t for static in job.get("static_configs", []) for t in static.get("targets", [])}
    for sd in job.get("dns_sd_configs", []):
        targets |= {f"{name}:{sd['port']}" for name in sd.get("names", [])}
    return targets


def test_prometheus_config_parses(prometheus):
    jobs = prometheus["scrape_configs"]
    names = [job["job_name"] for job in jobs]
    assert len(names) == len(set(names)), "duplicate job_name"
    for job in jobs:
        assert _scrape_targets(job), f"job {job['job_name']!r} scrapes nothing"
        assert job.get("metrics_path", "/metrics").startswith("/")


def test_prometheus_scrapes_the_worker_and_the_api(prometheus, services):
    scraped = {(target, job.get("metrics_path", "/metrics"))
               for job in prometheus["scrape_configs"] for target in _scrape_targets(job)}
    worker_port = _environment(services["worker"])["COHORTLAB_METRICS_PORT"]
    api_command = _command(services["api"])
    api_port = api_command[api_command.index("--port") + 1]
    assert (f"worker:{worker_port}", "/metrics") in scraped
    assert (f"api:{api_port}", "/metrics") in scraped
    for target, _ in scraped:
        host = target.rsplit(":", 1)[0]
        assert host in services or host == "localhost", f"scrape target {target!r} is no compose service"


def test_prometheus_service_mounts_this_config(services):
    mounts = {(source, target) for kind, source, target in _mounts(services["prometheus"]) if kind == "bind"}
    assert ("./deploy/prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in _command(services["prometheus"])


# ---------------------------------------------------------------- Grafana


def test_grafana_provisioning_parses_and_is_mounted(services):
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = [ds for ds in datasources["datasources"] if ds["type"] == "prometheus"]
    assert urlsplit(source["url"]).hostname == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "cohortlab.yml").read_text())
    dashboard_paths = {p["options"]["path"] for p in providers["providers"]}
    mounts = {target: source for kind, source, target in _mounts(services["grafana"]) if kind == "bind"}
    assert mounts.get("/etc/grafana/provisioning") == "./deploy/grafana/provisioning"
    for path in dashboard_paths:
        assert mounts.get(path) == "./deploy/grafana/dashboards", f"dashboards path {path} is not mounted"


def test_dashboards_are_valid_json_with_unique_panels():
    dashboards = _dashboards()
    assert dashboards, "no dashboard JSON under deploy/grafana/dashboards"
    uids = [d["uid"] for _, d in dashboards]
    assert len(uids) == len(set(uids))
    for path, dashboard in dashboards:
        panels = [p for p in _panels(dashboard) if p.get("type") != "row"]
        assert panels, f"{path.name} has no panels"
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in panels:
            assert panel.get("title"), f"{path.name}: panel {panel['id']} has no title"
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
            assert panel.get("targets"), f"{path.name}: panel {panel['title']!r} queries nothing"
            for target in panel["targets"]:
                assert target.get("expr"), f"{path.name}: panel {panel['title']!r} has an empty query"
                assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_dashboards_use_the_provisioned_datasource():
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {ds["uid"] for ds in datasources["datasources"]}
    for path, dashboard in _dashboards():
        for panel in _panels(dashboard):
            for holder in [panel] + panel.get("targets", []):
                ds = holder.get("datasource")
                if isinstance(ds, dict) and "uid" in ds:
                    assert ds["uid"] in uids, f"{path.name}: {panel['title']!r} uses datasource {ds['uid']!r}"


def test_every_dashboard_metric_exists_in_manager_metrics():
    specs = _metric_specs()
    series = _series_names(specs)
    for path, dashboard in _dashboards():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                names = set(re.findall(r"\bcohortlab_[a-z0-9_]+", expr))
                assert names, f"{path.name}: {panel['title']!r} queries no cohortlab metric: {expr}"
                for name in names:
                    assert name in series, (
                        f"{path.name}: {panel['title']!r} queries {name}, which manager/metrics.py "
                        f"does not define (series: {sorted(series)})")
                # Grouping labels exist on the metric (le on histograms).
                families = {series[n] for n in names}
                allowed = {"le", "instance", "job"} | set().union(*(specs[f]["labels"] for f in families))
                for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                    for label in filter(None, (part.strip() for part in group.split(","))):
                        assert label in allowed, f"{path.name}: {expr} groups by unknown label {label!r}"


def test_every_metric_in_manager_metrics_has_a_panel():
    specs = _metric_specs()
    series = _series_names(specs)
    shown = {series[name] for _, dashboard in _dashboards() for panel in _panels(dashboard)
             for target in panel.get("targets", [])
             for name in re.findall(r"\bcohortlab_[a-z0-9_]+", target["expr"]) if name in series}
    assert set(specs) <= shown, f"metrics without a panel: {sorted(set(specs) - shown)}"


def test_the_dashboard_shows_what_the_issue_asks():
    exprs = [t["expr"] for _, d in _dashboards() for p in _panels(d) for t in p.get("targets", [])]

    def some(pattern: str) -> bool:
        return any(re.search(pattern, e) for e in exprs)

    assert some(r"histogram_quantile\(.*cohortlab_cohort_runtime_seconds_bucket")
    assert some(r"rate\(cohortlab_failed_agents_total\[")
    assert some(r"cohortlab_bankroll_utilisation_ratio")
    assert some(r"histogram_quantile\(.*by \(le, mode\).*cohortlab_learning_cycle_seconds_bucket")
    assert some(r"histogram_quantile\(.*by \(le, task, outcome\).*cohortlab_task_latency_seconds_bucket")
    assert some(r"by \(outcome\).*cohortlab_tasks_total")


ALERTS_FILE = ROOT / "deploy" / "prometheus" / "alerts.yml"


def test_alert_rules_are_loaded_and_query_real_metrics_and_tasks(prometheus):
    from manager.tasks import app

    assert "/etc/prometheus/alerts.yml" in prometheus.get("rule_files", [])
    mounts = _mounts(_compose()["services"]["prometheus"])
    assert any(src.endswith("deploy/prometheus/alerts.yml") and dst == "/etc/prometheus/alerts.yml"
               for _, src, dst in mounts), mounts
    specs = _metric_specs()
    series = _series_names(specs)
    rules = [r for g in yaml.safe_load(ALERTS_FILE.read_text())["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    # what issue 14 asks: scheduler failures with alert thresholds; missed ticks; rollbacks; the kill switch
    assert {"CohortlabSchedulerFailures", "CohortlabDeploymentTickMissing", "CohortlabDay3ReviewMissed",
            "CohortlabRollback", "CohortlabKillSwitchOn"} <= names
    for rule in rules:
        expr = rule["expr"]
        used = set(re.findall(r"\bcohortlab_[a-z0-9_]+", expr))
        assert used and used <= set(series), f"{rule['alert']}: unknown metric in {expr}"
        families = {series[n] for n in used}
        labels = set().union(*(specs[f]["labels"] for f in families))
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            assert {p.strip() for p in group.split(",") if p.strip()} <= labels, expr
        for label, value in re.findall(r'(\w+)="([^"]*)"', expr):
            assert label in labels, f"{rule['alert']}: {expr} matches unknown label {label!r}"
            if label == "task":
                assert value in app.tasks, f"{rule['alert']}: no task {value!r}"
        assert re.search(r"(>|>=|==)\s*\d", expr), f"{rule['alert']}: no threshold in {expr}"
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["threshold"]
