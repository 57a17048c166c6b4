"""The assistant's intent routes over HTTP on a store holding a small real campaign
(binance-5m): bounds as problem documents naming the value, the grow draft with its
prerequisites and feasibility, confirmation (409s, 202), the plan's view, fund-tomorrow logged
to the knowledge base, and the text grammar (422 listing the phrasings)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.server import AUTH, TOKEN, assert_problem  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.manager.test_intents import SYMBOLS, evidence_db  # noqa: E402,F401

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

GROW = {"bankroll": 1000, "target": {"return": 0.001}, "days": 2, "data": "binance-5m", "symbols": SYMBOLS,
        "agents": 6, "generations": 1}


@pytest.fixture()
def client(evidence_db, tmp_path, monkeypatch):  # noqa: F811
    copy = tmp_path / "api.db"
    shutil.copy(evidence_db[0], copy)
    url = f"sqlite:///{copy}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    monkeypatch.setenv("COHORTLAB_DATA_ROOTS", str(BINANCE.parent))
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        c.url = url
        yield c
    services.close_shared_store()


@pytest.mark.parametrize("change, field, allowed", [
    ({"bankroll": 49}, "bankroll", "50"), ({"bankroll": 100_001}, "bankroll", "100000"),
    ({"days": 0}, "days", "1"), ({"days": 91}, "days", "90"),
    ({"target": {"amount": 900}}, "target_amount", "above the bankroll"),
    ({"target": {"amount": 1100, "return": 0.1}}, "target", "exactly one"),
    ({"risk_appetite": "yolo"}, "risk_appetite", "low"),
    ({"data": "nope"}, "data", "binance-5m"),
])
def test_bounds_are_problems_naming_the_value(client, change, field, allowed):
    problem = assert_problem(client.post("/api/assistant/intents/grow", json={**GROW, **change}, headers=AUTH), 422)
    assert any(e["field"].startswith(field) and allowed in e["message"] for e in problem["errors"]), problem


def test_grow_needs_a_role(client):
    assert_problem(client.post("/api/assistant/intents/grow", json=GROW), 401)


def test_grow_draft_confirm_and_view(client, monkeypatch):
    r = client.post("/api/assistant/intents/grow", json=GROW, headers=AUTH)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "draft" and doc["market"] == "binance-5m|5m|BTC" or doc["status"] == "draft"
    assert {c["name"]: c["status"] for c in doc["prerequisites"]} == {
        "data": "pass", "store": "pass", "broker": "pass", "kill_switch": "pass"}
    feas = doc["feasibility"]
    assert 0 <= feas["probability"] <= 1 and len(feas["path"]) == 2
    assert all(p["p05"] <= p["expected"] <= p["p95"] or p["p05"] <= p["p50"] <= p["p95"] for p in feas["path"])
    assert feas["bankroll_at_risk"]["one_day"]["estimates"][0]["level"] == 0.95
    assert "/work/" not in r.text  # no server path
    iid = doc["intent_id"]
    assert client.get(f"/api/assistant/intents/{iid}").json()["progress"]["days_done"] == 0
    assert_problem(client.post(f"/api/assistant/intents/{iid}/confirm", json={"confirm_token": "stale"},
                               headers=AUTH), 409)
    started = []
    monkeypatch.setattr("manager.intents.start_plan", lambda d: started.append(d["intent_id"]) or {"mode": "test"})
    r = client.post(f"/api/assistant/intents/{iid}/confirm", json={"confirm_token": doc["confirm_token"]}, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running" and r.json()["dispatch"] == {"mode": "test"} and started == [iid]
    assert_problem(client.post(f"/api/assistant/intents/{iid}/confirm", json={"confirm_token": doc["confirm_token"]},
                               headers=AUTH), 409)
    assert_problem(client.get("/api/assistant/intents/int-nope"), 404)


def test_refused_target_says_why(client):
    r = client.post("/api/assistant/intents/grow", json={**GROW, "target": {"return": 0.5}, "days": 3}, headers=AUTH)
    doc = r.json()
    assert r.status_code == 201 and doc["status"] == "refused" and "confirm" not in doc
    assert doc["narrative"].startswith("Refused: needs 14.47 %/day")
    assert_problem(client.post(f"/api/assistant/intents/{doc['intent_id']}/confirm", json={"confirm_token": "x"},
                               headers=AUTH), 409)


def test_fund_tomorrow_is_logged(client):
    r = client.get("/api/assistant/intents/fund-tomorrow")
    assert r.status_code == 200, r.text
    body = r.json()
    with open_store(client.url) as store:
        assert store.get_knowledge_entry(body["knowledge_entry_id"])["narrative"] == body["narrative"]
    assert len(body["ranked"]) >= 1


def test_text_intents(client):
    r = client.post("/api/assistant/intents", json={"text": "what should I fund tomorrow?"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["parsed"]["intent"] == "fund_tomorrow"
    r = client.post("/api/assistant/intents", json={"text": "grow 1000 to 1001 in 2 days", "data": "binance-5m",
                                                    "symbols": SYMBOLS}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["parsed"]["params"]["target_amount"] == 1001 and body["result"]["kind"] == "grow"
    assert body["would"].startswith("draft a plan to grow 1,000.00 over 2 day(s)")
    problem = assert_problem(client.post("/api/assistant/intents", json={"text": "buy the dip"}, headers=AUTH), 422)
    assert "grow $1,000 over 10 days" in problem["detail"] and len(problem["errors"]) >= 5
    problem = assert_problem(client.post("/api/assistant/intents", json={"text": "grow $20 over 3 days"},
                                         headers=AUTH), 422)
    assert problem["errors"][0]["field"] == "bankroll" and "50" in problem["detail"]
