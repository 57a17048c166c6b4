"""Paths and parsers shared by the deployment tests (not a test module)."""
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

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"

SERVICES = {"mongo", "redis", "api", "worker", "beat", "migrate", "prometheus", "grafana"}
ONE_SHOT = {"migrate"}
APP_SERVICES = {"api", "worker", "beat", "migrate"}  # run the cohortlab image


# ---------------------------------------------------------------- helpers


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _command(service: dict) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _depends_on(service: dict) -> dict[str, str]:
    """{target: condition} (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _mounts(service: dict) -> list[tuple[str, str, str]]:
    """[(type, source, target)] of a service's volumes (short and long syntax)."""
    out = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            out.append((entry.get("type", "volume"), str(entry.get("source", "")), str(entry["target"])))
            continue
        parts = entry.split(":")
        if entry.startswith("${"):  # "${VAR:-default}:/target:ro": the source holds a colon
            close = entry.index("}")
            parts = [entry[: close + 1]] + entry[close + 2:].split(":")
        if len(parts) == 1:
            out.append(("volume", "", parts[0]))  # anonymous volume
            continue
        source, target = parts[0], parts[1]
        kind = "bind" if source.startswith((".", "/", "~", "${")) else "volume"
        out.append((kind, source, target))
    return out


def _healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def _metric_specs() -> dict[str, dict]:
    """Metrics defined in manager/metrics.py: {family name: {type, labels}}."""
    specs = {}
    for value in vars(metrics_module).values():
        if isinstance(value, MetricWrapperBase):
            family = value.describe()[0]
            specs[family.name] = {"type": family.type, "labels": set(value._labelnames)}
    return specs


def _series_names(specs: dict[str, dict]) -> dict[str, str]:
    """{series name as Prometheus stores it: family name}."""
    suffixes = {"counter": ["_total", "_created"], "gauge": [""],
                "histogram": ["_bucket", "_count", "_sum", "_created"],
                "summary": ["", "_count", "_sum", "_created"]}
    return {name + suffix: name for name, spec in specs.items() for suffix in suffixes[spec["type"]]}


def _dashboards() -> list[tuple[Path, dict]]:
    return [(path, json.loads(path.read_text())) for path in sorted(DASHBOARD_DIR.glob("*.json"))]


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows hold their panels
    return out
