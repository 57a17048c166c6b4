"""Helpers of the API and browser tests (not fixtures): a real ``uvicorn api.app:app``
subprocess, a store seeded with two small real cohorts, job polling and problem
document checks. The fixtures built on them are in ``tests/api/conftest.py``."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest
from manager.store import open_store
from simulator.engine import EngineConfig
from tests.helpers import BINANCE, ROOT, SHARED_DATA

TOKEN = "test-token-" + uuid.uuid4().hex
"""The ``COHORTLAB_API_TOKEN`` of the test servers."""
AUTH = {"Authorization": f"Bearer {TOKEN}"}
"""Headers that authorise a state-changing request."""
PROBLEM = "application/problem+json"
ROW_FIELDS = ["run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote", "agents",
              "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents",
              "baseline_percentile"]
"""The columns of a cohort list row (and of the CSV export), in order."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_store(folder: Path) -> tuple[str, list[dict]]:
    """An SQLite store in ``folder`` holding two completed 6-agent cohorts on ``binance-5m``
    (2018-01-15: bankroll 1,000, equal, gross ceiling 1.0; 2018-01-16: 500, risk_weighted, 0.8).

    Returns:
        ``(store url, [{"run_id", "day", "bankroll", "report", "gross"}, ...])``.
    """
    url = f"sqlite:///{folder / 'api.db'}"
    runs = []
    with open_store(url) as store:
        for day, bankroll, allocation, seed, gross in (("2018-01-15", 1000.0, "equal", 7, 1.0),
                                                       ("2018-01-16", 500.0, "risk_weighted", 8, 0.8)):
            req = CohortRequest(bars=BarsRequest(data=str(BINANCE), start=day), bankroll=bankroll, agents=6,
                                seed=seed, allocation=allocation, engine=EngineConfig(max_gross_leverage=gross))
            run_id, _, report = execute_cohort(req, store)
            runs.append({"run_id": run_id, "day": day, "bankroll": bankroll, "report": report, "gross": gross})
    return url, runs


class ApiServer:
    """``uvicorn api.app:app`` in a subprocess (own process group) on a free port.

    Args:
        folder: the server's working folder (empty, so the default data is SYNTHETIC
            and nothing is written into the repository) and where its log goes.
        **env: ``COHORTLAB_*`` variables of the server (the test process's own are not passed on);
            ``COHORTLAB_DATA_ROOTS`` defaults to the shared data folder (``binance-5m``, ...).

    Use as a context manager: entering waits (up to 60 s) until ``/healthz`` answers
    200; leaving stops the process group.
    """

    def __init__(self, folder: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"uvicorn-{self.port}.log"
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("COHORTLAB_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env = {**base_env, "PYTHONPATH": str(ROOT), "COHORTLAB_METRICS_PORT": "0",
                    "COHORTLAB_DATA_ROOTS": str(SHARED_DATA), **env}
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ApiServer":
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning"], cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the API server did not start: {self.log_path.read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def log(self) -> str:
        """The server's output so far."""
        return self.log_path.read_text()


def wait_for_job(client: httpx.Client, status_url: str, timeout: float = 90) -> tuple[dict, list[str]]:
    """Poll a job until it finished; returns the last answer and the stages seen, in order."""
    stages: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = client.get(status_url)
        assert r.status_code == 200, r.text
        job = r.json()
        if not stages or stages[-1] != job["stage"]:
            stages.append(job["stage"])
        if job["state"] in ("completed", "failed"):
            return job, stages
        time.sleep(0.05)
    raise AssertionError(f"job {status_url} did not finish in {timeout} s; stages {stages}")


def assert_problem(r: httpx.Response, status: int) -> dict:
    """Check ``r`` is an RFC 9457 problem document with ``status`` (no traceback); returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status and body["detail"] and body["title"]
    assert "Traceback" not in r.text
    return body
