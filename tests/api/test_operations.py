"""Operations routes of the API server: ``/readyz``, ``/openapi.json`` and request
latency in ``/metrics``; a second server with no token and an unreachable broker
(401 saying to set the token; ``/readyz`` 503 while ``/healthz`` stays 200)."""
from __future__ import annotations

import httpx
import pytest

from tests.api.server import PROBLEM, ApiServer, assert_problem
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


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
