"""The JSON API over HTTP against a running server.

A real ``uvicorn api.app:app`` subprocess on a free local port serves a
temporary SQLite store that two small real cohorts on ``../shared/data/binance-5m``
(6 agents, different days, bankrolls and allocation policies) were written into,
with ``COHORTLAB_API_TOKEN`` set and no broker (cohorts launched through the API
run in the server's thread pool). httpx talks to it like any client would.

A second server has no token and an unreachable broker (401 telling to set the
token; ``/readyz`` 503). With the local Redis up, a third one sends cohorts to a
real Celery worker subprocess (its own Redis database and queue).
"""
from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from manager.runner import BarsRequest, CohortRequest, load_bars
from manager.launch import execute_cohort
from manager.store import SQLiteStore, open_store
from simulator.engine import EngineConfig

ROOT = Path(__file__).resolve().parents[1]
BINANCE = ROOT.parent / "shared" / "data" / "binance-5m"
TOKEN = "test-token-" + uuid.uuid4().hex
ROW_FIELDS = ["run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote", "agents",
              "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents"]
PROBLEM = "application/problem+json"

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

needs_listing = pytest.mark.skipif(not hasattr(SQLiteStore, "list_cohort_summaries"),
                                   reason="Store.list_cohort_summaries is not in the store adapters yet")


# ----------------------------------------------------------------- helpers (also used by test_api_schemathesis)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_store(folder: Path) -> tuple[str, list[dict]]:
    """An SQLite store in ``folder`` holding two completed 6-agent cohorts.

    Returns:
        ``(store url, [{"run_id", "day", "bankroll", "report"}, ...])``.
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
    """``uvicorn api.app:app`` in a subprocess (own process group) on a free port."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"uvicorn-{self.port}.log"
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("COHORTLAB_") and k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env = {**base_env, "PYTHONPATH": str(ROOT), "COHORTLAB_METRICS_PORT": "0", **env}
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "ApiServer":
        log = open(self.log_path, "w")
        # cwd: an empty folder, so the default data is SYNTHETIC and nothing is written into the repo
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
        return self.log_path.read_text()


def wait_for_job(client: httpx.Client, status_url: str, timeout: float = 90) -> tuple[dict, list[str]]:
    """Poll a job until it finished; returns the last answer and the stages seen."""
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
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail", "errors"}
    assert body["status"] == status and body["detail"] and body["title"]
    assert "Traceback" not in r.text
    return body


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    url, runs = seed_store(folder)
    return folder, url, runs


@pytest.fixture(scope="module")
def server(seeded):
    folder, url, _ = seeded
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN) as srv:
        yield srv


@pytest.fixture(scope="module")
def runs(seeded):
    return seeded[2]


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


# ----------------------------------------------------------------- list


@needs_listing
def test_list_pages_newest_first(client, runs):
    r = client.get("/api/experiments/cohorts")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {"items", "total", "page", "page_size", "pages", "next_page"} <= set(body)
    assert body["page"] == 1 and body["page_size"] == 20
    ids = [row["run_id"] for row in body["items"]]
    assert set(ids) >= {run["run_id"] for run in runs}
    assert ids == sorted(ids, key=lambda i: next(row["created_at"] for row in body["items"] if row["run_id"] == i),
                         reverse=True)
    total = body["total"]
    # one row per page: walking next_page visits every row once, in the same order
    seen, page = [], 1
    while page is not None:
        p = client.get("/api/experiments/cohorts", params={"page": page, "page_size": 1}).json()
        assert p["pages"] == total and p["total"] == total and len(p["items"]) == 1
        seen.append(p["items"][0]["run_id"])
        page = p["next_page"]
    assert seen == ids
    beyond = client.get("/api/experiments/cohorts", params={"page": total + 1, "page_size": 1}).json()
    assert beyond["items"] == [] and beyond["next_page"] is None


@needs_listing
def test_list_rows_carry_the_parent_figures_and_filter(client, runs):
    first, second = runs
    rows = {row["run_id"]: row for row in client.get("/api/experiments/cohorts").json()["items"]}
    row = rows[first["run_id"]]
    assert set(row) >= set(ROW_FIELDS)
    parent = first["report"]["parent"]
    assert row["status"] == "completed" and row["date"] == "2018-01-15" and row["quote"] == "BTC"
    assert row["bankroll"] == 1000.0 and row["agents"] == 6
    assert row["roi"] == pytest.approx(parent["roi"]) and row["final_equity"] == pytest.approx(parent["final_equity"])
    by_date = client.get("/api/experiments/cohorts", params={"date": "2018-01-16"}).json()
    assert [r["run_id"] for r in by_date["items"]] == [second["run_id"]] and by_date["total"] == 1
    by_bankroll = client.get("/api/experiments/cohorts", params={"bankroll": 1000}).json()
    assert first["run_id"] in [r["run_id"] for r in by_bankroll["items"]]
    assert all(r["bankroll"] == 1000.0 for r in by_bankroll["items"])
    none = client.get("/api/experiments/cohorts", params={"date": "2001-01-01"}).json()
    assert none == {"items": [], "total": 0, "page": 1, "page_size": 20, "pages": 0, "next_page": None}


@needs_listing
def test_list_as_csv_has_every_matching_row(client, runs):
    """CSV is every row the filters match, whatever `page` and `page_size` say (JSON pages them)."""
    as_json = client.get("/api/experiments/cohorts", params={"page_size": 200}).json()
    assert as_json["total"] > 1
    r = client.get("/api/experiments/cohorts", params={"page": 1, "page_size": 1, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;") and ".csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ROW_FIELDS
    assert int(r.headers["x-total-count"]) == len(rows) == as_json["total"]
    assert [row["run_id"] for row in rows] == [row["run_id"] for row in as_json["items"]]
    for got, want in zip(rows, as_json["items"]):
        assert got["status"] == want["status"]
        assert got["roi"] == "" if want["roi"] is None else float(got["roi"]) == pytest.approx(want["roi"])
    first = runs[0]
    r = client.get("/api/experiments/cohorts", params={"format": "csv", "date": first["day"], "page": 2})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert first["run_id"] in [row["run_id"] for row in rows] and all(row["date"] == first["day"] for row in rows)
    assert r.headers["content-disposition"] == f'attachment; filename="cohorts-date-{first["day"]}.csv"'


def test_list_rejects_bad_parameters_by_name(client):
    for params, field in (({"page": 0}, "page"), ({"page_size": 1000}, "page_size"),
                          ({"date": "2018-13-45"}, "date"), ({"bankroll": "lots"}, "bankroll"),
                          ({"format": "xml"}, "format")):
        body = assert_problem(client.get("/api/experiments/cohorts", params=params), 422)
        assert [e["field"] for e in body["errors"]] == [field], body


# ----------------------------------------------------------------- one cohort


def test_cohort_detail(client, runs):
    run = runs[1]
    r = client.get(f"/api/cohorts/{run['run_id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["run"]["run_id"] == run["run_id"] and body["run"]["status"] == "completed"
    assert body["run"]["data_label"] == str(BINANCE.resolve()) and body["run"]["finished_at"]
    summary = body["summary"]
    assert summary["parent"]["final_equity"] == pytest.approx(run["report"]["parent"]["final_equity"])
    assert [a["agent_id"] for a in summary["agents"]] == [a["agent_id"] for a in run["report"]["agents"]]
    assert "final_state" not in summary
    curves = body["curves"]
    bars = run["report"]["window"]["bars"]
    assert len(curves["timestamps"]) == len(curves["parent_equity"]) == bars == 288
    assert curves["timestamps"][0] == "2018-01-16T00:00:00Z" and curves["timestamps"][-1] == "2018-01-16T23:55:00Z"
    assert sorted(curves["agent_equity"]) == sorted(a["agent_id"] for a in summary["agents"])
    assert all(len(v) == bars for v in curves["agent_equity"].values())
    assert curves["parent_equity"][-1] == pytest.approx(summary["parent"]["final_equity"])
    assert len(curves["gross_exposure"]) == len(curves["utilisation"]) == bars
    assert max(curves["gross_exposure"]) == pytest.approx(summary["parent"]["peak_gross_exposure"])
    assert max(curves["utilisation"]) == pytest.approx(summary["parent"]["peak_utilisation"])
    assert body["limits"] == {"max_gross_leverage": 0.8, "max_symbol_exposure": 1.0}
    assert max(curves["gross_exposure"]) <= 0.8 + 1e-6


def test_agent_detail_has_trades_equity_and_prices(client, runs):
    run = next(r for r in runs if any(a["trades"] for a in r["report"]["agents"]))
    agent = next(a for a in run["report"]["agents"] if a["trades"])
    r = client.get(f"/api/cohorts/{run['run_id']}/agents/{agent['agent_id']}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agent"]["agent_id"] == agent["agent_id"] and body["agent"]["genome"]["family"] == agent["family"]
    trades = body["trades"]
    assert len(trades) == agent["trades"] and all(t["agent_id"] == agent["agent_id"] for t in trades)
    assert len(body["equity"]["timestamps"]) == len(body["equity"]["values"]) == 288
    assert body["equity"]["values"][-1] == pytest.approx(agent["final_equity"])
    traded = {t["symbol"] for t in trades}
    assert set(body["prices"]) == traded and body["prices_error"] is None
    for symbol, bars in body["prices"].items():
        n = len(bars["timestamps"])
        assert n == 288 and all(len(bars[k]) == n for k in ("open", "high", "low", "close"))
        assert bars["timestamps"] == body["equity"]["timestamps"]
        assert all(h >= lo for h, lo in zip(bars["high"], bars["low"]))
    t = trades[0]  # the fill happened at a bar's open (plus slippage): near that bar's open price
    bars = body["prices"][t["symbol"]]
    i = bars["timestamps"].index(t["entry_time"])
    assert t["entry_price"] == pytest.approx(bars["open"][i], rel=1e-3)


def test_ledger_pages_add_up_to_the_journal(client, runs):
    run = runs[0]
    first = client.get(f"/api/cohorts/{run['run_id']}/ledger", params={"page_size": 10}).json()
    total = run["report"]["ledger"]["transactions"]
    assert first["total"] == total and first["pages"] == -(-total // 10) and first["next_page"] == 2
    txns, page = [], 1
    while page is not None:
        p = client.get(f"/api/cohorts/{run['run_id']}/ledger", params={"page": page, "page_size": 10}).json()
        txns += p["items"]
        page = p["next_page"]
    assert [t["seq"] for t in txns] == list(range(total))
    for t in txns:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0
    assert txns[0]["kind"] == "deposit"


# ----------------------------------------------------------------- launching


def test_launch_a_cohort_and_poll_the_job(client, runs):
    body = {"bankroll": 250, "agents": 4, "allocation": "equal", "symbols": ["ETH_BTC", "LTC_BTC"],
            "start": "2018-01-17", "end": "2018-01-17T12:00", "seed": 3, "data": str(BINANCE)}
    r = client.post("/api/cohorts", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    accepted = r.json()
    run_id = accepted["run_id"]
    assert accepted == {"job_id": run_id, "run_id": run_id, "status_url": f"/api/jobs/{run_id}",
                        "cohort_url": f"/trading/cohorts/{run_id}"}
    assert r.headers["location"] == accepted["status_url"]
    job, stages = wait_for_job(client, accepted["status_url"])
    assert job["state"] == "completed", job
    assert job["error"] is None and job["run_id"] == run_id and job["elapsed_s"] > 0
    assert stages[-1] == "completed"
    order = ["queued", "loading", "seeding", "simulating", "storing", "completed"]
    assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)  # never backwards
    detail = client.get(f"/api/cohorts/{run_id}").json()
    assert detail["run"]["status"] == "completed"
    assert detail["summary"]["bankroll"] == 250 and len(detail["summary"]["agents"]) == 4
    assert detail["summary"]["window"]["symbols"] == ["ETH_BTC", "LTC_BTC"]
    assert len(detail["curves"]["timestamps"]) == 144  # 12 h of 5-minute bars
    assert detail["run"]["request"]["allocation"] == "equal"
    if hasattr(SQLiteStore, "list_cohort_summaries"):
        listed = client.get("/api/experiments/cohorts", params={"date": "2018-01-17"}).json()
        assert [row["run_id"] for row in listed["items"]] == [run_id]
        assert listed["items"][0]["bankroll"] == 250 and listed["items"][0]["status"] == "completed"
    status = client.get("/api/assistant/cohorts/status").json()
    assert status["items"][0]["run_id"] == run_id


def test_a_job_that_fails_reports_why(client):
    # a window with no bars in the data: accepted (the bars are loaded by the job), then failed
    r = client.post("/api/cohorts", json={"bankroll": 100, "agents": 2, "data": str(BINANCE),
                                          "start": "2030-01-01"}, headers=AUTH)
    assert r.status_code == 202, r.text
    job, _ = wait_for_job(client, r.json()["status_url"])
    assert job["state"] == "failed" and job["stage"] == "failed"
    assert "2030" in job["error"] or "window" in job["error"], job


def test_launch_needs_the_bearer_token(client):
    before = client.get("/api/assistant/cohorts/status", params={"limit": 100}).json()["items"]
    body = assert_problem(client.post("/api/cohorts", json={"bankroll": 100}), 401)
    assert "bearer" in body["detail"].lower()
    assert client.post("/api/cohorts", json={"bankroll": 100}).headers["www-authenticate"].startswith("Bearer")
    assert_problem(client.post("/api/cohorts", json={"bankroll": 100},
                               headers={"Authorization": "Bearer wrong"}), 401)
    assert_problem(client.post("/api/cohorts", json={"bankroll": 100},
                               headers={"Authorization": f"Basic {TOKEN}"}), 401)
    after = client.get("/api/assistant/cohorts/status", params={"limit": 100}).json()["items"]
    assert after == before  # nothing was launched


def test_validation_problems_name_the_field(client):
    body = assert_problem(client.post("/api/cohorts", json={"bankroll": 10}, headers=AUTH), 422)
    assert body["type"].endswith("validation-error")
    assert body["errors"] == [{"field": "bankroll", "message": "Input should be greater than or equal to 50"}]
    assert "bankroll" in body["detail"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 200000, "agents": 0, "allocation": "greedy", "start": "yesterday", "colour": "red"}), 422)
    assert sorted(e["field"] for e in body["errors"]) == ["agents", "allocation", "bankroll", "colour", "start"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 100, "start": "2018-01-16", "end": "2018-01-15"}), 422)
    assert [e["field"] for e in body["errors"]] == ["end"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={
        "bankroll": 100, "data": str(BINANCE), "symbols": ["ETH_BTC", "DOGE_BTC"]}), 422)
    assert [e["field"] for e in body["errors"]] == ["symbols"] and "DOGE_BTC" in body["detail"]
    body = assert_problem(client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100,
                                                                          "data": "/no/such/folder"}), 422)
    assert [e["field"] for e in body["errors"]] == ["data"]
    body = assert_problem(client.post("/api/cohorts", headers={**AUTH, "Content-Type": "application/json"},
                                      content=b"{not json"), 422)
    assert [e["field"] for e in body["errors"]] == ["body"]


def test_unknown_ids_are_404_problems(client, runs):
    run_id = runs[0]["run_id"]
    for path in ("/api/cohorts/20990101T000000-deadbeef", "/api/cohorts/20990101T000000-deadbeef/ledger",
                 "/api/cohorts/20990101T000000-deadbeef/agents/a00", f"/api/cohorts/{run_id}/agents/a99",
                 "/api/jobs/20990101T000000-deadbeef", "/api/no-such-route"):
        body = assert_problem(client.get(path), 404)
        assert body["type"].startswith("urn:cohortlab:problem:")
    assert "a99" in client.get(f"/api/cohorts/{run_id}/agents/a99").json()["detail"]
    # ids outside the store's id rules are refused by name, not looked up
    body = assert_problem(client.get("/api/cohorts/_bad%20id"), 422)
    assert [e["field"] for e in body["errors"]] == ["run_id"]


def test_method_not_allowed_is_a_problem(client):
    assert_problem(client.delete("/api/cohorts/20990101T000000-deadbeef"), 405)


# ----------------------------------------------------------------- assistant


def test_assistant_status_and_bankroll_summary(client, runs):
    status = client.get("/api/assistant/cohorts/status", params={"limit": 50}).json()
    by_id = {row["run_id"]: row for row in status["items"]}
    for run in runs:
        row = by_id[run["run_id"]]
        assert row["status"] == "completed" and row["date"] == run["day"] and row["bankroll"] == run["bankroll"]
        assert row["roi"] == pytest.approx(run["report"]["parent"]["roi"])
    assert status["counts"]["completed"] >= 2
    summary = client.get("/api/assistant/cohorts/bankroll-summary").json()
    assert summary["days"] == 7
    rows = {row["run_id"]: row for row in summary["cohorts"]}
    for run in runs:
        row, parent = rows[run["run_id"]], run["report"]["parent"]
        assert row["bankroll"] == run["bankroll"] and row["quote"] == "BTC"
        for key in ("peak_utilisation", "mean_gross_exposure", "unallocated_cash", "final_equity", "roi"):
            assert row[key] == pytest.approx(parent[key]), key
    btc = summary["by_quote"]["BTC"]
    assert btc["cohorts"] == len(summary["cohorts"])
    assert btc["bankroll"] == pytest.approx(sum(r["bankroll"] for r in summary["cohorts"]))
    assert assert_problem(client.get("/api/assistant/cohorts/bankroll-summary", params={"days": 0}), 422)


# ----------------------------------------------------------------- operations


def test_readyz_and_openapi(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"store": {"ok": True, "error": None}}}
    schema = client.get("/openapi.json").json()
    for path in ("/api/experiments/cohorts", "/api/cohorts", "/api/cohorts/{run_id}",
                 "/api/cohorts/{run_id}/agents/{agent_id}", "/api/cohorts/{run_id}/ledger", "/api/jobs/{job_id}",
                 "/api/assistant/cohorts/status", "/api/assistant/cohorts/bankroll-summary", "/readyz"):
        assert path in schema["paths"], path
    post = schema["paths"]["/api/cohorts"]["post"]
    assert post["security"] and "401" in post["responses"] and "422" in post["responses"]
    assert PROBLEM in post["responses"]["422"]["content"]


def test_metrics_has_request_latency_by_route_template(client, runs):
    client.get(f"/api/cohorts/{runs[0]['run_id']}")
    client.get("/api/cohorts/20990101T000000-deadbeef")
    text = client.get("/metrics").text
    assert "# TYPE cohortlab_request_latency_seconds histogram" in text
    assert 'cohortlab_request_latency_seconds_count{method="GET",route="/api/cohorts/{run_id}",status="200"}' in text
    assert 'route="/api/cohorts/{run_id}",status="404"' in text
    assert runs[0]["run_id"] not in text  # ids never become labels


# ----------------------------------------------------------------- no token, broker unreachable


@pytest.fixture(scope="module")
def bare_server(seeded):
    folder, url, _ = seeded
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_BROKER_URL="redis://127.0.0.1:1/0") as srv:
        yield srv


def test_without_a_configured_token_launching_is_refused(bare_server):
    r = httpx.post(bare_server.base + "/api/cohorts", json={"bankroll": 100},
                   headers={"Authorization": "Bearer anything"}, timeout=30)
    body = assert_problem(r, 401)
    assert "COHORTLAB_API_TOKEN" in body["detail"]


def test_readyz_503_when_the_broker_is_unreachable(bare_server):
    r = httpx.get(bare_server.base + "/readyz", timeout=30)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["store"]["ok"] is True and body["checks"]["broker"]["ok"] is False
    assert httpx.get(bare_server.base + "/healthz", timeout=30).status_code == 200  # alive, just not ready


# ----------------------------------------------------------------- Celery


REDIS = "redis://127.0.0.1:6379/13"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")
def test_launch_on_a_celery_worker(seeded, tmp_path):
    import redis

    _, url, _ = seeded
    queue = f"cohortlab-api-test-{uuid.uuid4().hex[:12]}"
    env = {"COHORTLAB_STORE": url, "COHORTLAB_API_TOKEN": TOKEN, "COHORTLAB_BROKER_URL": REDIS,
           "COHORTLAB_TASK_QUEUE": queue}
    with ApiServer(tmp_path, **env) as srv:
        worker_log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "manager.celery_app", "worker", "-n",
             f"{queue}@%h", "-c", "1", "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel=INFO"], env=srv.env, cwd=tmp_path, stdout=worker_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        run_id = None
        try:
            with httpx.Client(base_url=srv.base, timeout=30) as c:
                assert c.get("/readyz").json()["checks"]["broker"] == {"ok": True, "error": None}
                r = c.post("/api/cohorts", headers=AUTH, json={
                    "bankroll": 300, "agents": 3, "data": str(BINANCE), "symbols": ["ETH_BTC"],
                    "start": "2018-01-18", "end": "2018-01-18T06:00"})
                assert r.status_code == 202, r.text
                run_id = r.json()["run_id"]
                job, stages = wait_for_job(c, r.json()["status_url"], timeout=120)
                assert job["state"] == "completed", (job, (tmp_path / "worker.log").read_text()[-3000:])
                order = ["queued", "started", "loading", "seeding", "simulating", "storing", "completed"]
                assert stages[-1] == "completed" and set(stages) <= set(order), stages
                assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
                assert c.get(f"/api/cohorts/{run_id}").json()["run"]["status"] == "completed"
                with open_store(url) as store:
                    assert store.get_run(run_id)["config"]["task_id"] == run_id  # the job id is the task id
        finally:
            try:
                os.killpg(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            worker.wait(timeout=10)
            r = redis.Redis.from_url(REDIS)
            for key in r.scan_iter(f"*{queue}*"):
                r.delete(key)
            if run_id:
                r.delete(f"celery-task-meta-{run_id}")


# ----------------------------------------------------------------- in process: the 500 handler


def test_unexpected_errors_are_generic_500_problems(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api import queries
    from api.app import create_app

    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'x.db'}")

    def boom(*_, **__):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(queries, "status_recent", boom)
    client = TestClient(create_app(), raise_server_exceptions=False)
    r = client.get("/api/assistant/cohorts/status")
    body = assert_problem(r, 500)
    assert body["type"].endswith("internal-error")
    assert "secret" not in r.text and "RuntimeError" not in r.text


# ----------------------------------------------------------------- the query layer on a long SYNTHETIC run


def test_queries_downsample_long_runs_and_regenerate_synthetic_bars(tmp_path, monkeypatch):
    from api import queries

    monkeypatch.chdir(tmp_path)  # no ./data here: the SYNTHETIC market
    with open_store(f"sqlite:///{tmp_path / 'long.db'}") as store:
        req = CohortRequest(bars=BarsRequest(start="2024-03-01", end="2024-03-09", seed=5), bankroll=1000, agents=3,
                            seed=5)
        run_id, _, report = execute_cohort(req, store)
        assert report["data"] == "SYNTHETIC" and report["window"]["bars"] == 8 * 288  # 2,304 bars
        detail = queries.cohort_detail(store, run_id)
        curves = detail["curves"]
        n = len(curves["timestamps"])
        assert n == queries.MAX_POINTS
        assert all(len(curves[k]) == n for k in ("parent_equity", "gross_exposure", "utilisation"))
        assert all(len(v) == n for v in curves["agent_equity"].values())
        assert curves["timestamps"][0] == "2024-03-01T00:00:00Z" and curves["timestamps"][-1] == "2024-03-08T23:55:00Z"
        assert curves["parent_equity"][-1] == pytest.approx(report["parent"]["final_equity"])
        assert curves["timestamps"] == sorted(set(curves["timestamps"]))
        # an agent's bars are rebuilt from the stored request: the same SYNTHETIC prices
        agent = next((a for a in report["agents"] if a["trades"]), report["agents"][0])
        body = queries.agent_detail(store, run_id, agent["agent_id"])
        assert body["prices_error"] is None and body["prices"]
        assert len(body["equity"]["values"]) == queries.MAX_POINTS
        for symbol, bars in body["prices"].items():
            assert len(bars["timestamps"]) <= queries.MAX_POINTS
            assert all(h >= max(o, c) - 1e-12 and lo <= min(o, c) + 1e-12
                       for o, h, lo, c in zip(bars["open"], bars["high"], bars["low"], bars["close"]))
        market = load_bars(BarsRequest(**store.get_run(run_id)["config"]["request"]["bars"]))
        symbol = next(iter(body["prices"]))
        j = market.symbols.index(symbol)
        traded = market.high[market.warmup:, j]
        assert max(body["prices"][symbol]["high"]) == pytest.approx(traded.max())  # buckets keep the extremes
        assert body["prices"][symbol]["open"][0] == pytest.approx(market.open[market.warmup, j])
        assert body["prices"][symbol]["close"][-1] == pytest.approx(market.close[-1, j])
        with pytest.raises(queries.QueryError):
            queries.cohort_list(store, page=0)
        with pytest.raises(queries.QueryError):
            queries.cohort_detail(store, run_id, max_points=1)


def test_a_broker_that_refuses_the_job_is_a_503_problem(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api import jobs
    from api.app import create_app
    from manager.tasks import run_cohort_task

    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    monkeypatch.setattr(jobs, "celery_enabled", lambda: True)

    def refuse(*_, **__):
        raise ConnectionError("redis://:hunter2@broker:6379 refused")

    monkeypatch.setattr(run_cohort_task, "apply_async", refuse)
    client = TestClient(create_app(), raise_server_exceptions=False)
    r = client.post("/api/cohorts", json={"bankroll": 100, "agents": 2}, headers=AUTH)
    body = assert_problem(r, 503)
    assert "broker" in body["detail"] and "hunter2" not in r.text


def test_repeated_or_lax_query_values_are_refused(client):
    """A repeated query parameter is not silently reduced to its last value, and a
    date is a calendar day, not a number read as a Unix timestamp."""
    r = client.get("/api/experiments/cohorts", params=[("bankroll", "x"), ("bankroll", "309")])
    body = assert_problem(r, 422)
    assert [e["field"] for e in body["errors"]] == ["bankroll"]
    for bad in ("0.0", "0", "2018-02-30", "2018-1-5"):
        body = assert_problem(client.get("/api/experiments/cohorts", params={"date": bad}), 422)
        assert [e["field"] for e in body["errors"]] == ["date"], (bad, body)
    assert client.get("/api/experiments/cohorts", params={"date": "2018-01-15"}).status_code == 200
