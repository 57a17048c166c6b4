"""The deployments API (issue 14) on a fresh store holding real deployments
(:mod:`tests.api.deployment_store`): the listing (paging, status filter), one deployment
with its incidents and no server path, the manual controls (rollback, extend, pause) with
who and why recorded, and every refusal as a problem document (404 unknown, 409 not in a
state that allows it, 403 role, 422 notes / days). The route x role matrix is in
``test_users_auth.py``."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import deployments as dep  # noqa: E402
from manager import services, users  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.deployment_store import ALLOCATION, START, deploy  # noqa: E402
from tests.api.server import TOKEN, assert_problem  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """``(store url, {name: token}, [deployment ids, oldest first])``: three deployments, the
    first stepped 60 bars."""
    dep.forget()
    url = f"sqlite:///{tmp_path / 'dep.db'}"
    tokens = {}
    with open_store(url) as store:
        for name, role in (("otto", "ops"), ("rita", "risk"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
        ids = [deploy(store, steps=60)["deployment_id"], deploy(store)["deployment_id"],
               deploy(store)["deployment_id"]]
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    yield url, tokens, ids
    dep.forget()


@pytest.fixture()
def client(env):
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c
    services.close_shared_store()


def _as(tokens, name):
    return {"Authorization": f"Bearer {tokens[name]}"}


def test_list_pages_and_filters(client, env):
    _, _, ids = env
    body = client.get("/api/deployments").json()
    assert body["limit"] == 50 and body["offset"] == 0
    assert {d["deployment_id"] for d in body["items"]} == set(ids)
    assert all(d["status"] == "running" and d["allocation"]["amount"] == ALLOCATION for d in body["items"])
    for d in body["items"]:  # briefs: the growing parts are read with the deployment
        full = client.get(f"/api/deployments/{d['deployment_id']}").json()
        assert not {"ledger", "fills", "equity", "timestamps"} & set(d)
        assert d["fills_count"] == len(full["fills"]) and d["ledger_transactions"] == len(full["ledger"])
        assert d["broker"] == full["broker"] and d["expires_at"] == full["expires_at"]
    pages = [client.get("/api/deployments", params={"limit": 2, "offset": o}).json()["items"] for o in (0, 2)]
    assert [len(p) for p in pages] == [2, 1]
    assert {d["deployment_id"] for p in pages for d in p} == set(ids)
    assert client.get("/api/deployments", params={"status": "paused"}).json()["items"] == []
    assert_problem(client.get("/api/deployments", params={"limit": 0}), 422)
    assert_problem(client.get("/api/deployments", params={"status": "Not A Status"}), 422)


def test_show_has_the_state_and_no_server_path(client, env):
    _, _, ids = env
    r = client.get(f"/api/deployments/{ids[0]}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["deployment_id"] == ids[0] and d["status"] == "running" and d["incidents"] == []
    assert d["last_bar"] == START + 59 and len(d["equity"]) == 60 and d["start_bar"] == START
    assert d["expires_at"] and "equity" in d["broker"] and "positions" in d["broker"]
    assert str(BINANCE) not in r.text and str(BINANCE.parent) not in r.text
    assert "binance-5m" in d["market"]["source"]
    assert_problem(client.get("/api/deployments/dep-000000000000"), 404)
    assert_problem(client.get("/api/deployments/bad id!"), 422)


def test_manual_rollback_returns_the_capital_and_records_who_and_why(client, env):
    url, tokens, ids = env
    r = client.post(f"/api/deployments/{ids[0]}/rollback", json={"notes": "venue maintenance"},
                    headers=_as(tokens, "otto"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["status"] == "rolled_back" and d["broker"]["positions"] == {}
    assert d["rollback"]["by"] == "otto" and d["rollback"]["notes"] == "venue maintenance"
    assert [i["trigger"] for i in d["incidents"]] == ["manual"]
    assert d["incidents"][0]["detail"] == {"user": "otto", "role": "ops", "notes": "venue maintenance"}
    for t in d["ledger"]:
        assert sum(Decimal(p["amount"]) for p in t["postings"]) == 0
    assert d["ledger"][-1]["kind"] == "return_of_capital"
    with open_store(url) as store:
        assert store.get_promotion(d["promotion_id"])["status"] == "rolled_back"
        audit = [e for e in store.list_audit(100) if e["kind"] == "deployment.rolled_back"]
        assert audit and audit[0]["actor"] == "otto" and audit[0]["details"]["notes"] == "venue maintenance"
    # rolled back: pause and extend are conflicts; a second rollback answers it as it is
    assert_problem(client.post(f"/api/deployments/{ids[0]}/pause", json={"notes": "x"},
                               headers=_as(tokens, "otto")), 409)
    assert_problem(client.post(f"/api/deployments/{ids[0]}/extend", json={"notes": "x", "days": 1},
                               headers=_as(tokens, "rita")), 409)
    again = client.post(f"/api/deployments/{ids[0]}/rollback", json={"notes": "again"}, headers=_as(tokens, "rita"))
    assert again.status_code == 200 and len(again.json()["incidents"]) == 1
    assert client.get("/api/deployments", params={"status": "rolled_back"}).json()["items"][0]["deployment_id"] == ids[0]


def test_extend_and_pause(client, env):
    _, tokens, ids = env
    before = client.get(f"/api/deployments/{ids[1]}").json()["expires_at"]
    r = client.post(f"/api/deployments/{ids[1]}/extend", json={"notes": "re-approved", "days": 2},
                    headers=_as(tokens, "rita"))
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["expires_at"] > before and d["controls"][-1]["action"] == "extended"
    assert d["controls"][-1]["user"] == "rita" and d["controls"][-1]["days"] == 2.0
    r = client.post(f"/api/deployments/{ids[1]}/pause", json={"notes": "watch it"}, headers=_as(tokens, "otto"))
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert_problem(client.post(f"/api/deployments/{ids[1]}/pause", json={"notes": "again"},
                               headers=_as(tokens, "otto")), 409)  # not running
    # a paused deployment can still be rolled back (no positions: nothing to flatten)
    r = client.post(f"/api/deployments/{ids[1]}/rollback", json={"notes": "stop"}, headers=_as(tokens, "rita"))
    assert r.status_code == 200 and r.json()["status"] == "rolled_back"


@pytest.mark.parametrize("path, body, who, status", [
    ("rollback", {"notes": "x"}, "vera", 403),
    ("extend", {"notes": "x", "days": 1}, "otto", 403),
    ("pause", {"notes": "x"}, "vera", 403),
    ("rollback", {"notes": "   "}, "otto", 422),
    ("rollback", {}, "otto", 422),
    ("extend", {"notes": "x"}, "rita", 422),
    ("extend", {"notes": "x", "days": 31}, "rita", 422),
    ("extend", {"notes": "x", "days": 0}, "rita", 422),
    ("pause", {"notes": "x", "extra": 1}, "otto", 422),
])
def test_refusals_are_problems_and_change_nothing(client, env, path, body, who, status):
    url, tokens, ids = env
    with open_store(url) as store:
        before = store.get_deployment(ids[2])
    problem = assert_problem(client.post(f"/api/deployments/{ids[2]}/{path}", json=body,
                                         headers=_as(tokens, who)), status)
    if status == 403:
        assert problem["type"].endswith("forbidden") and f"'{who}'" in problem["detail"]
    if status == 422:
        assert problem["errors"]
    with open_store(url) as store:
        assert store.get_deployment(ids[2]) == before


def test_unknown_deployment_and_no_token(client, env):
    _, tokens, _ = env
    for path, body in (("rollback", {"notes": "x"}), ("pause", {"notes": "x"}), ("extend", {"notes": "x", "days": 1})):
        p = assert_problem(client.post(f"/api/deployments/dep-000000000000/{path}", json=body,
                                       headers=_as(tokens, "rita")), 404)
        assert p["type"].endswith("not-found")
        assert_problem(client.post(f"/api/deployments/dep-000000000000/{path}", json=body), 401)


def test_openapi_documents_the_routes(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/deployments"]) == {"get"}
    for action in ("rollback", "extend", "pause"):
        assert "post" in paths[f"/api/deployments/{{deployment_id}}/{action}"]
    assert json.dumps(spec).count("DeploymentDetail") > 0
