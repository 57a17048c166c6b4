"""``cohortlab deployments list|show|rollback`` (issue 14) on a store holding real
deployments (:mod:`tests.api.deployment_store`): the table and JSON listing with the
status filter, one deployment (status, allocation, equity, timer, positions, incidents), a
manual rollback by a personal token with ``--as`` (who and why recorded), and the refusals
(unknown id, wrong role, blank notes, no or bad token, ``--as`` mismatch) exit 2."""
from __future__ import annotations

import json

import pytest

from manager import deployments as dep
from manager import users
from manager.store import open_store
from tests.api.deployment_store import ALLOCATION, START, deploy
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


@pytest.fixture
def env(store_url, monkeypatch):
    """``(store url, {name: token}, [deployment ids])``: the first deployment stepped 60 bars."""
    for name in ("COHORTLAB_TOKEN", "COHORTLAB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    dep.forget()
    tokens = {}
    with open_store(store_url) as store:
        for name, role in (("otto", "ops"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
        _, tokens["rex"] = users.add_user(store, "rex", "ops", actor="test")
        users.revoke_user(store, "rex", actor="test")
        ids = [deploy(store, steps=60)["deployment_id"], deploy(store)["deployment_id"]]
    yield store_url, tokens, ids
    dep.forget()


def test_list_table_json_and_filter(cli, env):
    url, _, ids = env
    r = cli("deployments", "list", store_url=url)
    assert r.exit_code == 0, r.output
    assert all(i in r.output for i in ids) and "running" in r.output
    r = cli("deployments", "list", "--json", store_url=url)
    body = json.loads(r.output)
    assert {d["deployment_id"] for d in body["items"]} == set(ids) and body["limit"] == 50
    r = cli("deployments", "list", "--status", "rolled_back", store_url=url)
    assert r.exit_code == 0 and "no deployments matching the filter" in r.output
    r = cli("deployments", "list", "--status", "Bad Status", store_url=url)
    assert r.exit_code == 2 and "error" in r.output


def test_show(cli, env):
    url, _, ids = env
    r = cli("deployments", "show", ids[0], store_url=url)
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"deployment {ids[0]}: running" in out and f"allocation {ALLOCATION:g} BTC" in out
    assert "equity " in out and f"last bar {START + 59}" in out
    assert "rollback timer: 2018-01-18T00:00:00Z (expired)" in out  # the timer ran out long ago (wall clock)
    assert "positions:" in out and "incidents: none" in out
    doc = json.loads(cli("deployments", "show", ids[0], "--json", store_url=url).output)
    assert doc["deployment_id"] == ids[0] and doc["incidents"] == [] and len(doc["equity"]) == 60
    r = cli("deployments", "show", "dep-000000000000", store_url=url)
    assert r.exit_code == 2 and "no deployment" in r.output


def test_rollback_with_a_personal_token(cli, env, monkeypatch):
    url, tokens, ids = env
    monkeypatch.setenv("COHORTLAB_TOKEN", tokens["otto"])
    r = cli("deployments", "rollback", ids[0], "--notes", "venue maintenance", "--as", "otto", store_url=url)
    assert r.exit_code == 0, r.output
    assert f"deployment {ids[0]}: rolled_back (manual) by otto (ops)" in r.output and "final equity" in r.output
    assert tokens["otto"] not in r.output
    out = cli("deployments", "show", ids[0], store_url=url).output
    assert "rolled back (manual)" in out and "manual" in out and "venue maintenance" in out
    with open_store(url) as store:
        doc = store.get_deployment(ids[0])
        assert doc["status"] == "rolled_back" and doc["broker"]["positions"] == {}
        assert [i["trigger"] for i in store.list_incidents(ids[0])] == ["manual"]
        assert store.get_promotion(doc["promotion_id"])["status"] == "rolled_back"
    assert "rolled_back" in cli("deployments", "list", "--status", "rolled_back", store_url=url).output


@pytest.mark.parametrize("token, as_name, notes, message", [
    ("vera", "vera", "x", "may not rollback"),
    ("otto", "otto", "   ", "notes are required"),
    (None, "otto", "x", "no token"),
    ("rex", "rex", "x", "not valid"),
    ("otto", "vera", "x", "does not match"),
])
def test_rollback_refusals_exit_2_and_change_nothing(cli, env, monkeypatch, token, as_name, notes, message):
    url, tokens, ids = env
    if token:
        monkeypatch.setenv("COHORTLAB_TOKEN", tokens[token])
    r = cli("deployments", "rollback", ids[1], "--notes", notes, "--as", as_name, store_url=url)
    assert r.exit_code == 2 and message in r.output, r.output
    with open_store(url) as store:
        assert store.get_deployment(ids[1])["status"] == "running"


def test_rollback_of_an_unknown_deployment(cli, env):
    url, tokens, _ = env
    r = cli("deployments", "rollback", "dep-000000000000", "--notes", "x", "--as", "otto",
            "--token", tokens["otto"], store_url=url)
    assert r.exit_code == 2 and "no deployment" in r.output
