"""Errors of the JSON API are RFC 9457 problem documents: unknown ids and routes (404),
a wrong method (405) and unexpected errors (a generic 500 that shows no internals)."""
from __future__ import annotations

import pytest

from tests.api.server import assert_problem
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


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


def test_unexpected_errors_are_generic_500_problems(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from manager import read_model

    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'x.db'}")

    def boom(*_, **__):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(read_model, "status_recent", boom)
    client = TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1")
    r = client.get("/api/assistant/cohorts/status")
    body = assert_problem(r, 500)
    assert body["type"].endswith("internal-error")
    assert "secret" not in r.text and "RuntimeError" not in r.text
