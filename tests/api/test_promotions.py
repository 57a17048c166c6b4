"""The Day-3 promotion API (issue 13) on a copy of the shared campaign's store
(:mod:`tests.api.campaign_store`), reviewed under ``RELAXED`` (``COHORTLAB_PROMOTER``):
readiness, the request listing (paging, filters, CSV against the stored requests), one
request, the chain ops -> risk over HTTP, and every refusal as a problem document with the
use case's status. The route x role matrix is in ``test_users_auth.py``."""
from __future__ import annotations

import csv
import io

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import campaign_views, services, users  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.campaign_store import BEST, PROMOTER_ENV, copy_to  # noqa: E402
from tests.api.server import TOKEN, assert_problem  # noqa: E402


@pytest.fixture()
def env(tmp_path, monkeypatch, campaign):
    url = copy_to(campaign, tmp_path / "promo.db")
    tokens = {}
    with open_store(url) as store:
        for name, role in (("otto", "ops"), ("olga", "ops"), ("rita", "risk"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    for k, v in PROMOTER_ENV.items():
        monkeypatch.setenv(k, v)
    return url, tokens


@pytest.fixture()
def client(env):
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c
    services.close_shared_store()


def _as(tokens, name):
    return {"Authorization": f"Bearer {tokens[name]}"}


def _propose(client, tokens, campaign, who="otto", **extra):
    body = {"campaign_id": campaign.campaign_id, "day": 3, "notes": "a06 passes every guard rail", **extra}
    return client.post("/api/promotions", json=body, headers=_as(tokens, who))


def test_readiness(client, campaign):
    r = client.get(f"/api/assistant/cohorts/{campaign.day3}/promotion-readiness")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] and body["candidate"] == BEST and body["campaign_id"] == campaign.campaign_id
    assert body["day"] == 3 and body["blocking"] == [] and len(body["checklist_hash"]) == 64
    assert [c["name"] for c in body["checklist"]] == ["min_trades", "holdout", "deflated_sharpe", "pbo",
                                                      "baseline_percentile", "max_drawdown", "slippage_x2",
                                                      "liquidity", "policy"]
    assert all(set(c) >= {"figure", "threshold", "passed"} for c in body["checklist"])
    assert body["next_step"] == {"action": "propose", "role": ["ops", "admin"],
                                 "detail": f"propose agent {BEST} (notes required)"}


def test_readiness_blocked_under_the_defaults(client, campaign, monkeypatch):
    monkeypatch.delenv("COHORTLAB_PROMOTER")
    body = client.get(f"/api/assistant/cohorts/{campaign.day3}/promotion-readiness").json()
    assert not body["ready"] and body["next_step"]["action"] == "blocked"
    assert {c["name"] for c in body["blocking"]} >= {"pbo"} and body["candidate"] is None


@pytest.mark.parametrize("which, status", [("unknown", 404), ("day1", 422)])
def test_readiness_refusals(client, campaign, which, status):
    run_id = {"unknown": "nope-123", "day1": campaign.run_ids[0]}[which]
    body = assert_problem(client.get(f"/api/assistant/cohorts/{run_id}/promotion-readiness"), status)
    assert "/work" not in body["detail"] and "/tmp" not in body["detail"]


def test_bad_promoter_setting_is_503_without_details_of_the_host(client, campaign, monkeypatch):
    monkeypatch.setenv("COHORTLAB_PROMOTER", '{"min_trades": -1}')
    assert_problem(client.get(f"/api/assistant/cohorts/{campaign.day3}/promotion-readiness"), 503)


def test_chain_over_http(client, env, campaign):
    url, tokens = env
    r = _propose(client, tokens, campaign)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["status"] == "proposed" and doc["agent_id"] == BEST and doc["proposed_by"]["user"] == "otto"
    pid, digest = doc["promotion_id"], doc["checklist_hash"]
    # readiness now names the open request and the ops step
    ready = client.get(f"/api/assistant/cohorts/{campaign.day3}/promotion-readiness").json()
    assert ready["open_promotion"] == pid
    assert ready["next_step"]["action"] == "approve" and ready["next_step"]["role"] == ["ops"]
    # a second proposal of the same day: 409
    assert_problem(_propose(client, tokens, campaign, who="olga"), 409)
    # risk cannot sign the ops step (403 naming the role), the viewer neither
    body = assert_problem(client.post(f"/api/promotions/{pid}/approve", json={"notes": "x", "checklist_hash": digest},
                                      headers=_as(tokens, "rita")), 403)
    assert "(role risk)" in body["detail"] and "needs role ops" in body["detail"]
    assert_problem(client.post(f"/api/promotions/{pid}/approve", json={"notes": "x", "checklist_hash": digest},
                               headers=_as(tokens, "vera")), 403)
    # a hash the signer did not see: 409 re-approval needed
    body = assert_problem(client.post(f"/api/promotions/{pid}/approve",
                                      json={"notes": "x", "checklist_hash": "0" * 64}, headers=_as(tokens, "otto")),
                          409)
    assert "re-approval needed" in body["detail"]
    # ops (the proposer) signs the first step; another ops user coming for it later: 409 (already signed)
    r = client.post(f"/api/promotions/{pid}/approve", json={"notes": "checked", "checklist_hash": digest},
                    headers=_as(tokens, "otto"))
    assert r.status_code == 200 and r.json()["status"] == "ops_approved", r.text
    body = assert_problem(client.post(f"/api/promotions/{pid}/approve", json={"notes": "x", "checklist_hash": digest},
                                      headers=_as(tokens, "olga")), 409)
    assert "already signed by otto" in body["detail"]
    r = client.post(f"/api/promotions/{pid}/approve", json={"notes": "risk ok", "checklist_hash": digest},
                    headers=_as(tokens, "rita"))
    assert r.status_code == 200 and r.json()["status"] == "risk_approved"
    detail = client.get(f"/api/promotions/{pid}").json()
    assert [(s["user"], s["role"], s["kind"]) for s in detail["steps"]] == [("otto", "ops", "approve"),
                                                                             ("rita", "risk", "approve")]
    assert detail["next_step"]["action"] == "deploy" and len(detail["log"]) >= 3
    # nothing left to approve or reject: 409
    assert_problem(client.post(f"/api/promotions/{pid}/reject", json={"notes": "late"}, headers=_as(tokens, "rita")),
                   409)


def test_reject_and_notes_required(client, env, campaign):
    _, tokens = env
    assert_problem(_propose(client, tokens, campaign, notes="   "), 422)
    body = assert_problem(_propose(client, tokens, campaign, agent_id="zz9"), 422)
    assert "did not trade" in body["detail"]
    pid = _propose(client, tokens, campaign).json()["promotion_id"]
    body = assert_problem(client.post(f"/api/promotions/{pid}/reject", json={"notes": ""}, headers=_as(tokens, "rita")),
                          422)
    assert body["errors"][0]["field"] == "notes"
    assert_problem(client.post(f"/api/promotions/{pid}/reject", json={"notes": "no"}, headers=_as(tokens, "vera")), 403)
    r = client.post(f"/api/promotions/{pid}/reject", json={"notes": "not this week"}, headers=_as(tokens, "rita"))
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert _propose(client, tokens, campaign, who="olga").status_code == 201  # a new proposal after a rejection


@pytest.mark.parametrize("method, path", [("GET", "/api/promotions/promo-000000000000"),
                                          ("POST", "/api/promotions/promo-000000000000/reject")])
def test_unknown_request_is_404(client, env, method, path):
    _, tokens = env
    r = client.request(method, path, json={"notes": "x"}, headers=_as(tokens, "rita"))
    assert_problem(r, 404)


def test_unknown_campaign_is_404_and_day_below_3_is_422(client, env):
    _, tokens = env
    assert_problem(client.post("/api/promotions", json={"campaign_id": "camp-none", "day": 3, "notes": "x"},
                               headers=_as(tokens, "otto")), 404)
    assert_problem(client.post("/api/promotions", json={"campaign_id": "camp-none", "day": 2, "notes": "x"},
                               headers=_as(tokens, "otto")), 422)


def test_listing_paging_filters_and_csv(client, env, campaign):
    url, tokens = env
    ids = []
    for who in ("otto", "olga", "otto"):
        pid = _propose(client, tokens, campaign, who=who).json()["promotion_id"]
        ids.append(pid)
        if len(ids) < 3:
            assert client.post(f"/api/promotions/{pid}/reject", json={"notes": "again"},
                               headers=_as(tokens, "rita")).status_code == 200
    page = client.get("/api/promotions", params={"limit": 2}).json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert [d["promotion_id"] for d in page["items"]] == ids[::-1][:2]  # newest first
    rest = client.get("/api/promotions", params={"limit": 2, "offset": 2}).json()
    assert [d["promotion_id"] for d in rest["items"]] == [ids[0]]
    rejected = client.get("/api/promotions", params={"status": "rejected"}).json()
    assert rejected["total"] == 2 and {d["status"] for d in rejected["items"]} == {"rejected"}
    assert client.get("/api/promotions", params={"campaign_id": "camp-other"}).json()["total"] == 0
    assert_problem(client.get("/api/promotions", params={"limit": 0}), 422)
    assert_problem(client.get("/api/promotions", params={"status": "Bad Status"}), 422)
    r = client.get("/api/promotions", params={"format": "csv", "status": "rejected"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-total-count"] == "2" and "promotions.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert tuple(rows[0]) == campaign_views.PROMOTION_CSV_FIELDS
    with open_store(url) as store:
        stored = store.list_promotions(status="rejected", limit=10)
    assert [row["promotion_id"] for row in rows] == [d["promotion_id"] for d in stored]
    for row, doc in zip(rows, stored):
        assert row["agent_id"] == doc["agent_id"] and row["status"] == "rejected"
        assert row["checklist_hash"] == doc["checklist_hash"] and row["proposed_by"] == doc["proposed_by"]["user"]
        assert float(row["allocation"]) == doc["allocation"]["amount"] and row["rejected_by"].startswith("rita (risk)")
