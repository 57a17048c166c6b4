"""Static validation of the deployment: docker-compose.yml, Dockerfile,
.dockerignore, deploy/prometheus and deploy/grafana.

No Docker engine runs where cohortlab is developed or tested, so nothing here
builds or starts a container. Instead the files are checked against what they
refer to: the compose-spec JSON schema (vendored in check-jsonschema), the
services, volumes and settings they name, the Python modules their commands
run, the metrics in manager/metrics.py, the API's routes.
``docker compose config`` runs too, but only where a compose plugin exists.
"""

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

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def compose() -> dict:
    return _compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


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


# ---------------------------------------------------------------- compose file


def test_compose_validates_against_the_compose_spec_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE_FILE)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_compose_file(tmp_path):
    # Guard against a validator that accepts anything.
    broken = _compose()
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "helthcheck" in result.stdout + result.stderr


def test_docker_compose_config_where_a_compose_plugin_exists():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI here; the compose file is validated by the schema tests")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("`docker compose` is not available here (no compose plugin); "
                    "the compose file is validated by the schema tests instead")
    result = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_the_expected_services_exist(services):
    assert SERVICES <= set(services), f"missing services: {sorted(SERVICES - set(services))}"


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck")
        assert check, f"service {name!r} has no healthcheck"
        assert not check.get("disable"), f"service {name!r} disables its healthcheck"
        test = check.get("test")
        assert test and test not in (["NONE"], "NONE"), f"service {name!r} has an empty healthcheck"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"service {name!r}: healthcheck test {test!r}"


def test_healthchecks_use_the_right_probe(services):
    assert "mongosh" in _healthcheck_text(services["mongo"])
    assert "ping" in _healthcheck_text(services["mongo"])
    assert _healthcheck_text(services["redis"]).split()[-2:] == ["redis-cli", "ping"]
    assert "/healthz" in _healthcheck_text(services["api"])
    worker = _healthcheck_text(services["worker"])
    assert "-A manager.celery_app inspect ping" in worker
    # $$ is compose's escape: the container's shell sees $HOSTNAME, the node name's host part.
    assert "celery@$$HOSTNAME" in worker


def test_migrate_is_a_one_shot_that_api_and_worker_wait_for(services):
    migrate = services["migrate"]
    assert _command(migrate) == ["cohortlab", "migrate"]
    assert str(migrate.get("restart", "no")) == "no"
    for name in ("api", "worker"):
        assert _depends_on(services[name]).get("migrate") == "service_completed_successfully", name


def test_every_depends_on_target_exists_and_can_satisfy_its_condition(services):
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            assert target in services, f"{name!r} depends on unknown service {target!r}"
            assert target != name, f"{name!r} depends on itself"
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), (
                    f"{name!r} waits for {target!r} to be healthy, but {target!r} has no healthcheck")
            if condition == "service_completed_successfully":
                assert target in ONE_SHOT, f"{name!r} waits for long-running {target!r} to exit"


def test_depends_on_has_no_cycle(services):
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", f"dependency cycle: {' -> '.join(path + [name])}"
        state[name] = "active"
        for target in _depends_on(services[name]):
            visit(target, path + [name])
        state[name] = "done"

    for name in services:
        visit(name, [])


def test_the_app_waits_for_healthy_store_and_broker(services):
    for name in ("api", "worker", "beat"):
        deps = _depends_on(services[name])
        assert deps.get("redis") == "service_healthy", name
    for name in ("api", "worker", "migrate"):
        assert _depends_on(services[name]).get("mongo") == "service_healthy", name


def test_every_named_volume_is_declared_and_used(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for kind, source, target in _mounts(service):
            assert target.startswith("/"), f"{name!r}: mount target {target!r} is not absolute"
            if kind == "volume" and source:
                assert source in declared, f"{name!r} uses volume {source!r}, not declared under volumes:"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"
    for name in ("mongo", "redis"):
        assert any(kind == "volume" for kind, _, _ in _mounts(services[name])), (
            f"{name!r} keeps its data outside a named volume")


def test_bind_mount_sources_exist_and_data_is_read_only(services):
    for name, service in services.items():
        for entry, (kind, source, target) in zip(service.get("volumes") or [], _mounts(service)):
            if kind != "bind":
                continue
            if source.startswith("${"):
                # Chosen by the operator (e.g. BARS_DIR); the default must be read-only bars.
                assert str(entry).endswith(":ro"), f"{name!r}: {entry!r} should be read-only"
                continue
            assert (ROOT / source).resolve().exists(), f"{name!r} mounts missing {source!r}"


def test_environment_names_are_real_settings(services, monkeypatch):
    fields = set(Settings.model_fields)
    for name, service in services.items():
        env = _environment(service)
        ours = {key: value for key, value in env.items() if key.upper().startswith("COHORTLAB_")}
        for key in ours:
            assert key == key.upper(), f"{name!r}: write {key!r} in capitals"
            field = key[len("COHORTLAB_"):].lower()
            assert field in fields, (
                f"{name!r} sets {key}, which is not a manager.settings.Settings field "
                f"(fields: {sorted(fields)})")
        # The values validate as settings too (types, ranges).
        for key in list(os.environ):
            if key.startswith("COHORTLAB_"):
                monkeypatch.delenv(key)
        for key, value in ours.items():
            monkeypatch.setenv(key, value)
        Settings()


def test_app_services_share_the_store_broker_and_metrics_settings(services):
    expected = {
        "COHORTLAB_STORE": "mongodb://mongo:27017/cohortlab",
        "COHORTLAB_BROKER_URL": "redis://redis:6379/0",
        "COHORTLAB_REDIS_URL": "redis://redis:6379/1",  # feature cache apart from the broker
        "COHORTLAB_METRICS_PORT": "9108",
    }
    for name in APP_SERVICES:
        env = _environment(services[name])
        for key, value in expected.items():
            assert env.get(key) == value, f"{name!r}: {key}={env.get(key)!r}, expected {value!r}"


def test_urls_in_the_environment_name_compose_services(services):
    for name, service in services.items():
        for key, value in _environment(service).items():
            parts = urlsplit(value)
            if parts.scheme in ("mongodb", "redis", "rediss", "http", "https") and parts.hostname:
                assert parts.hostname in services, (
                    f"{name!r}: {key}={value!r} names host {parts.hostname!r}, not a compose service")


def test_app_services_run_the_cohortlab_image(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1, f"app services run different images: {images}"
    for name in APP_SERVICES:
        build = services[name].get("build")
        context = build if isinstance(build, str) else (build or {}).get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else (build or {}).get("dockerfile", "Dockerfile")
        assert build, f"{name!r} does not build the cohortlab image"
        assert (ROOT / context / dockerfile).is_file()


def test_third_party_images_are_pinned(services):
    for name, service in services.items():
        if name in APP_SERVICES:
            continue
        image = service.get("image", "")
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, f"{name!r}: untagged image {image!r}"
        assert not image.endswith(":latest"), f"{name!r}: {image!r} floats"


# ---------------------------------------------------------------- commands


def _module_file(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"


def _asgi_routes_match(application, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in application.router.routes)


def test_the_api_command_serves_a_real_app_with_the_checked_routes(services):
    command = _command(services["api"])
    assert command[0] == "uvicorn"
    module, _, attribute = command[1].partition(":")
    assert _module_file(module).is_file(), f"{module} has no file"
    imported = __import__(module, fromlist=[attribute])
    application = getattr(imported, attribute)
    for path in ("/healthz", "/metrics"):
        assert _asgi_routes_match(application, path), f"{command[1]} does not serve {path}"
    port = command[command.index("--port") + 1]
    assert any(str(p).endswith(f":{port}") for p in services["api"].get("ports", []))
    assert f":{port}/healthz" in _healthcheck_text(services["api"])


def test_celery_commands_name_the_celery_app(services):
    for name in ("worker", "beat"):
        command = _command(services[name])
        assert command[:3] == ["celery", "-A", "manager.celery_app"], name
        assert command[3] == {"worker": "worker", "beat": "beat"}[name]
    path = ROOT / "manager" / "celery_app.py"
    if not path.is_file():
        pytest.skip("manager/celery_app.py does not exist yet (another issue adds it); "
                    "the worker/beat commands cannot be checked against it")
    tree = ast.parse(path.read_text())
    names = {target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(target, ast.Name)}
    assert names & {"app", "celery"}, "manager/celery_app.py defines neither `app` nor `celery`"


def test_migrate_command_is_a_cohortlab_cli_command(services):
    command = _command(services["migrate"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts, f"{command[0]!r} is not a console script of the package"
    import typer.main

    import manager.cli

    commands = typer.main.get_command(manager.cli.app).commands
    if command[1] not in commands:
        pytest.skip(f"`cohortlab {command[1]}` does not exist yet (the migrations issue adds it); "
                    f"commands now: {sorted(commands)}")


def test_the_worker_metrics_port_is_the_settings_port(services):
    worker = services["worker"]
    port = _environment(worker)["COHORTLAB_METRICS_PORT"]
    assert port in [str(p) for p in worker.get("expose", [])] + [
        str(p).rsplit(":", 1)[-1] for p in worker.get("ports", [])]


def test_multiprocess_metrics_dir_is_fresh_per_container(services):
    env = DockerfileParser(path=str(DOCKERFILE)).envs
    multiproc = env["PROMETHEUS_MULTIPROC_DIR"]
    for name in ("api", "worker"):
        tmpfs = services[name].get("tmpfs") or []
        tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
        assert any(t.split(":")[0] == multiproc for t in tmpfs), (
            f"{name!r}: mount a tmpfs at PROMETHEUS_MULTIPROC_DIR={multiproc} so stale files of "
            "earlier runs never count")


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


# ---------------------------------------------------------------- Dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def _final_stage(parser: DockerfileParser) -> list[dict]:
    structure = parser.structure
    starts = [i for i, ins in enumerate(structure) if ins["instruction"] == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return structure[starts[-1]:]


def test_dockerfile_base_images_are_pinned(dockerfile):
    stages = set()
    for ins in dockerfile.structure:
        if ins["instruction"] != "FROM":
            continue
        words = [w for w in ins["value"].split() if not w.startswith("--")]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2])
    images = [image for image in dockerfile.parent_images if image not in stages]
    assert images, "no external base image"
    for image in images:
        assert "$" not in image, f"unresolved build argument in base image {image!r}"
        name, _, tag = image.partition("@")[0].rpartition(":")
        digest = "@sha256:" in image
        assert digest or re.match(r"\d+\.\d+\.\d+", tag), (
            f"base image {image!r} is not pinned to a full version or digest")
    # the application stages run Python 3.11 slim; a pinned Node stage only fetches npm assets
    python_images = [image for image in images if not image.startswith("node:")]
    assert python_images and all(image.startswith("python:3.11") for image in python_images), images
    assert all("slim" in image for image in images), images


def test_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = [ins["value"].strip() for ins in _final_stage(dockerfile) if ins["instruction"] == "USER"]
    assert users, "the final stage has no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1]} is root"


def test_dockerfile_has_a_healthcheck_on_healthz(dockerfile):
    checks = [ins["value"] for ins in _final_stage(dockerfile) if ins["instruction"] == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK"
    assert not checks[-1].strip().upper().startswith("NONE")
    assert "/healthz" in checks[-1]


def test_dockerfile_default_command_is_the_api(dockerfile):
    cmd = json.loads(dockerfile.cmd) if dockerfile.cmd.startswith("[") else shlex.split(dockerfile.cmd)
    assert cmd[:2] == ["uvicorn", "api.app:app"]


def test_dockerfile_installs_the_service_extra_only(dockerfile):
    installs = [ins["value"] for ins in dockerfile.structure
                if ins["instruction"] == "RUN" and "pip install" in ins["value"]]
    assert any(".[service]" in cmd for cmd in installs), installs
    for cmd in installs:
        extras = re.findall(r"\.\[([^\]]*)\]", cmd)
        for group in extras:
            assert not {"test", "bench"} & {e.strip() for e in group.split(",")}, cmd
        assert " -e " not in f" {cmd} ", "editable install in an image"


def test_dockerfile_sets_a_writable_multiprocess_metrics_dir(dockerfile):
    env = dockerfile.envs  # the final stage's environment
    multiproc = env.get("PROMETHEUS_MULTIPROC_DIR")
    assert multiproc, "PROMETHEUS_MULTIPROC_DIR is not set"
    runs = " ".join(ins["value"] for ins in _final_stage(dockerfile) if ins["instruction"] == "RUN")
    assert multiproc in runs and "chown" in runs, f"{multiproc} is not created for the non-root user"


def _dockerignore_match(path: str, pattern: str) -> bool:
    """Docker's .dockerignore matching: Go ``filepath.Match`` per path segment
    (``*`` never crosses ``/``), ``**`` for any number of segments, and a pattern
    also excludes everything below a matched directory."""
    parts, pat = path.strip("/").split("/"), pattern.strip("/").split("/")

    def match(i: int, j: int) -> bool:
        if j == len(pat):
            return True  # matched a directory prefix (or the whole path)
        if pat[j] == "**":
            return any(match(k, j + 1) for k in range(i, len(parts) + 1))
        return i < len(parts) and fnmatch.fnmatchcase(parts[i], pat[j]) and match(i + 1, j + 1)

    return match(0, 0)


def test_dockerignore_matching_follows_docker():
    assert _dockerignore_match("settings.json", "*.json")
    assert not _dockerignore_match("web/package.json", "*.json")
    assert _dockerignore_match("tests/test_x.py", "tests")
    assert _dockerignore_match("a/b/__pycache__/x.pyc", "**/__pycache__")


def test_dockerfile_copies_only_existing_sources_not_ignored(dockerfile):
    ignored = [line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith(("#", "!"))]
    copied = []
    for ins in dockerfile.structure:
        if ins["instruction"] not in ("COPY", "ADD"):
            continue
        words = ins["value"].split()
        if any(w.startswith("--from") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        copied += [s.rstrip("/") for s in sources]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY source {source!r} does not exist"
        for pattern in ignored:
            assert not _dockerignore_match(source, pattern), f"COPY {source!r} is excluded by .dockerignore {pattern!r}"
    # Never shipped: tests, VCS, local virtualenvs and databases.
    for kept_out in ("tests", ".git", ".venv", "scripts"):
        assert kept_out not in copied
        assert kept_out in ignored, f".dockerignore should exclude {kept_out}"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for pattern in packages["include"]:
        package = pattern.rstrip("*")
        if (ROOT / package / "__init__.py").is_file():
            assert package in copied, f"package {package} is not copied into the image"


def test_pyproject_service_extra_covers_what_the_deployment_runs():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    service = {re.split(r"[\[<>=!~ ]", req, maxsplit=1)[0].lower() for req in extras["service"]}
    # uvicorn (api), celery + redis (worker, beat, beat's healthcheck), pymongo (store),
    # prometheus-client and fastapi (api, metrics).
    assert {"celery", "redis", "pymongo", "prometheus-client", "fastapi", "uvicorn"} <= service
    assert any(req.startswith("celery[redis]") for req in extras["service"])
