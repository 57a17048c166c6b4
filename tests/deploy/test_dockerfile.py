"""Dockerfile and .dockerignore checked statically (dockerfile-parse), and the extras the image installs."""
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
