"""``seed_from`` on ``POST /api/cohorts`` against a real uvicorn server: seeding
never crosses markets, a run id seeds only its own market, and nothing but
``latest``, ``random`` or a stored run id is accepted (never a server file)."""
from __future__ import annotations

import httpx
import pytest

from manager.store import open_store
from tests.api.server import AUTH, TOKEN, ApiServer, assert_problem, wait_for_job
from tests.helpers import BINANCE, COINBASE

pytestmark = pytest.mark.skipif(not (BINANCE.is_dir() and COINBASE.is_dir()),
                                reason=f"bar data not found at {BINANCE} and {COINBASE}")


@pytest.fixture(scope="module")
def seed_client(tmp_path_factory):
    """A server of its own on a store whose hall of fame was bred on binance-5m."""
    folder = tmp_path_factory.mktemp("api-seed")
    url = f"sqlite:///{folder / 'store.db'}"
    with open_store(url) as st:  # a hall of fame bred on binance-5m
        st.save_hall_of_fame([{"family": "sma_cross", "params": {"fast": 5, "slow": 40}, "symbols": ["ETH_BTC"]}],
                             source="test", market="binance-5m|5m|BTC",  # trained before the runs below
                             train_start="2018-01-12T00:00:00Z", train_end="2018-01-15T00:00:00Z")
    with ApiServer(folder, COHORTLAB_STORE=url, COHORTLAB_API_TOKEN=TOKEN) as srv:
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            yield c


def launch(client, **body) -> dict:
    r = client.post("/api/cohorts", json={"bankroll": 100, "agents": 3, **body}, headers=AUTH)
    assert r.status_code == 202, r.text
    job, _ = wait_for_job(client, r.json()["status_url"])
    return job


def seeded_from(client, run_id) -> str:
    return client.get(f"/api/cohorts/{run_id}").json()["summary"]["seeded_from"]


def test_latest_seeds_only_from_the_same_market(seed_client):
    job = launch(seed_client, data=COINBASE.name, start="2018-04-05")
    assert job["state"] == "completed", job
    assert seeded_from(seed_client, job["run_id"]) == "random"
    job = launch(seed_client, data=BINANCE.name, start="2018-01-15", symbols=["ETH_BTC", "LTC_BTC"])
    assert job["state"] == "completed", job
    assert seeded_from(seed_client, job["run_id"]) == "hall_of_fame+random"


def test_seed_from_a_run_id_and_its_market(seed_client):
    first = launch(seed_client, data=BINANCE.name, start="2018-01-15", seed_from="random")
    assert first["state"] == "completed" and seeded_from(seed_client, first["run_id"]) == "random"
    again = launch(seed_client, data=BINANCE.name, start="2018-01-16", seed_from=first["run_id"])
    assert again["state"] == "completed", again
    assert seeded_from(seed_client, again["run_id"]) == f"run:{first['run_id']}"
    other = launch(seed_client, data=COINBASE.name, start="2018-04-05", seed_from=first["run_id"])
    assert other["state"] == "failed" and "coinbase-1m|1m|USD" in other["error"], other


def test_seed_from_accepts_no_file_and_no_unknown_run(seed_client):
    for bad in ("no-such-run", "store.db", "../../etc/passwd"):
        body = assert_problem(seed_client.post("/api/cohorts", json={"bankroll": 100, "seed_from": bad}, headers=AUTH),
                              422)
        assert [e["field"] for e in body["errors"]] == ["seed_from"], body
