"""``/api/risk/*``: the leverage panel, the policy decisions (JSON pages, filters, CSV) and
the kill switch (auth, validation, audit), on a store of its own (decisions made by
:func:`risk.policy.decide`, one real completed cohort), through the whole application."""
from __future__ import annotations

import csv
import io

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.routers.risk import DECISION_CSV_FIELDS  # noqa: E402
from manager import services  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.server import AUTH, TOKEN, assert_problem  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.web.test_risk_page import MARKET, OTHER_MARKET, TRACKS, latest_by_subject, run_cohort, seed_policy  # noqa: E402

CSV_COLUMNS = ["period", "period_end", "market", "subject", "subject_kind", "previous_tier", "tier", "trigger",
               "next_tier", "next_trigger", "rule", "source", "decided_at"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """``(url, docs on MARKET, docs on OTHER_MARKET, run_id)``."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    folder = tmp_path_factory.mktemp("risk-api")
    url = f"sqlite:///{folder}/risk.db"
    with open_store(url) as store:
        docs = seed_policy(store)
        other = seed_policy(store, market=OTHER_MARKET, source="camp2")
        run_id = run_cohort(store)
    return url, docs, other, run_id


def _client(url, monkeypatch, token: str | None = TOKEN):
    monkeypatch.setenv("COHORTLAB_STORE", url)
    if token:
        monkeypatch.setenv("COHORTLAB_API_TOKEN", token)
    else:
        monkeypatch.delenv("COHORTLAB_API_TOKEN", raising=False)
    services.close_shared_store()
    return TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1")


@pytest.fixture()
def client(seeded, monkeypatch):
    with _client(seeded[0], monkeypatch) as c:
        yield c
    services.close_shared_store()


@pytest.fixture()
def fresh(tmp_path, monkeypatch):
    """A client of an empty store of its own (the kill switch tests change state)."""
    with _client(f"sqlite:///{tmp_path}/ks.db", monkeypatch) as c:
        yield c
    services.close_shared_store()


def _key(d):
    return d["decision_id"]


def _newest_first(docs):
    return sorted(sorted(docs, key=lambda d: d["subject"]), key=lambda d: d["period_end"], reverse=True)


# -- GET /api/risk/leverage ----------------------------------------------------------------------


def test_leverage_panel_shape_and_values(client, seeded):
    _, docs, _, run_id = seeded
    r = client.get("/api/risk/leverage", params={"market": MARKET})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"tiers", "kill_switch", "kill_switch_history", "risk", "hard_stops", "tier_paths"}
    latest = latest_by_subject(docs)
    assert [t["subject"] for t in body["tiers"]][0] == "parent:camp1"
    for row in body["tiers"]:
        d = latest[row["subject"]]
        for k in ("tier", "next_tier", "next_trigger", "down_tier", "down_trigger", "trigger", "rule", "period"):
            assert row[k] == d[k], k
        assert row["market"] == MARKET
    assert body["kill_switch"] == {"on": False, "actor": None, "reason": None, "at": None}
    assert body["risk"]["run_id"] == run_id and "error" not in body["risk"]
    assert {e["method"] for e in body["risk"]["var"]["estimates"]} == {"historical", "cornish_fisher"}
    assert body["risk"]["var"]["horizon"] == "one bar"
    assert [p["tier"] for p in body["tier_paths"]["lineage:g001"]] == \
        [d["tier"] for d in docs if d["subject"] == "lineage:g001"]
    assert "/tmp" not in r.text and str(BINANCE) not in r.text  # no host path


def test_leverage_panel_all_markets(client):
    body = client.get("/api/risk/leverage").json()
    assert {t["market"] for t in body["tiers"]} == {MARKET, OTHER_MARKET}
    assert len(body["tiers"]) == 2 * len(TRACKS)


def test_leverage_rejects_an_empty_market(client):
    assert_problem(client.get("/api/risk/leverage?market="), 422)


# -- GET /api/risk/decisions ---------------------------------------------------------------------


def test_decisions_page_and_paging(client, seeded):
    _, docs, _, _ = seeded
    expected = _newest_first(docs)
    r = client.get("/api/risk/decisions", params={"market": MARKET, "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["limit"], body["offset"]) == (12, 5, 0)
    assert [_key(d) for d in body["items"]] == [_key(d) for d in expected[:5]]
    assert body["items"][0]["rationale"]["figures"] == expected[0]["rationale"]["figures"]
    page3 = client.get("/api/risk/decisions", params={"market": MARKET, "limit": 5, "offset": 10}).json()
    assert [_key(d) for d in page3["items"]] == [_key(d) for d in expected[10:]]


@pytest.mark.parametrize("params, pick", [
    ({"subject": "lineage:g002"}, lambda d: d["subject"] == "lineage:g002"),
    ({"subject_kind": "parent"}, lambda d: d["subject_kind"] == "parent"),
    ({"trigger": "step_up"}, lambda d: d["trigger"] == "step_up"),
    ({"since": "2018-01-17T00:00:00Z"}, lambda d: d["period_end"] >= "2018-01-17"),
    ({"until": "2018-01-17T00:00:00Z"}, lambda d: d["period_end"] < "2018-01-17"),
])
def test_decisions_filters(client, seeded, params, pick):
    _, docs, _, _ = seeded
    expected = [_key(d) for d in _newest_first(docs) if pick(d)]
    assert expected
    body = client.get("/api/risk/decisions", params={"market": MARKET, "limit": 500, **params}).json()
    assert [_key(d) for d in body["items"]] == expected and body["total"] == len(expected)


def test_decisions_filter_by_source(client, seeded):
    _, _, other, _ = seeded
    body = client.get("/api/risk/decisions", params={"source": "camp2", "limit": 500}).json()
    assert sorted(_key(d) for d in body["items"]) == sorted(_key(d) for d in other)


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=501", "limit"), ("offset=-1", "offset"),
                                          ("subject_kind=agent", "subject_kind"), ("since=yesterday", "since"),
                                          ("until=2018-01-17", "until"), ("format=xml", "format")])
def test_decisions_bad_filters_are_422(client, query, field):
    body = assert_problem(client.get(f"/api/risk/decisions?{query}"), 422)
    assert [e["field"] for e in body["errors"]] == [field]


def test_decisions_csv_matches_the_store(client, seeded):
    _, docs, _, _ = seeded
    assert list(DECISION_CSV_FIELDS) == CSV_COLUMNS
    r = client.get("/api/risk/decisions", params={"market": MARKET, "format": "csv", "limit": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and r.headers["x-total-count"] == "12"
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == CSV_COLUMNS
    expected = _newest_first(docs)
    assert len(rows) == 1 + len(expected)  # every matching decision, not a page
    for row, d in zip(rows[1:], expected):
        for col, value in zip(CSV_COLUMNS, row):
            want = d[col]
            assert value == ("" if want is None else str(want)), (col, value, want)


def test_decisions_csv_with_a_filter(client, seeded):
    _, docs, _, _ = seeded
    r = client.get("/api/risk/decisions", params={"market": MARKET, "trigger": "losing_period", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["subject"], x["period"]) for x in rows] == \
        [(d["subject"], d["period"]) for d in _newest_first(docs) if d["trigger"] == "losing_period"]
    assert rows and all(x["trigger"] == "losing_period" for x in rows)


# -- POST /api/risk/kill-switch ------------------------------------------------------------------


def test_kill_switch_needs_the_token(fresh):
    body = {"on": True, "reason": "drill"}
    r = fresh.post("/api/risk/kill-switch", json=body)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(fresh.post("/api/risk/kill-switch", json=body, headers={"Authorization": "Bearer nope"}), 401)
    assert fresh.get("/api/risk/leverage").json()["kill_switch"]["on"] is False  # nothing changed


def test_kill_switch_refused_without_a_configured_token(tmp_path, monkeypatch):
    with _client(f"sqlite:///{tmp_path}/nt.db", monkeypatch, token=None) as c:
        body = assert_problem(c.post("/api/risk/kill-switch", json={"on": True, "reason": "x"}, headers=AUTH), 401)
    services.close_shared_store()
    assert "COHORTLAB_API_TOKEN" in body["detail"]


@pytest.mark.parametrize("payload", [{"on": True}, {"on": True, "reason": ""}, {"on": True, "reason": "   "},
                                     {"on": True, "reason": "x" * 501}, {"reason": "why"},
                                     {"on": "maybe", "reason": "why"}])
def test_kill_switch_validation(fresh, payload):
    body = assert_problem(fresh.post("/api/risk/kill-switch", json=payload, headers=AUTH), 422)
    assert body["errors"]
    assert fresh.get("/api/risk/leverage").json()["kill_switch"]["on"] is False


def test_kill_switch_round_trip_is_audited(fresh):
    r = fresh.post("/api/risk/kill-switch", json={"on": True, "reason": " exchange outage "}, headers=AUTH)
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["on"] is True and state["actor"] == "admin:bootstrap" and state["reason"] == "exchange outage"
    panel = fresh.get("/api/risk/leverage").json()
    assert panel["kill_switch"] == state
    event = panel["kill_switch_history"][0]
    assert event["kind"] == "kill_switch.on" and event["actor"] == "admin:bootstrap"
    assert event["details"]["reason"] == "exchange outage"

    off = fresh.post("/api/risk/kill-switch", json={"on": False, "reason": "resolved"}, headers=AUTH).json()
    assert off["on"] is False and off["reason"] == "resolved"
    history = fresh.get("/api/risk/leverage").json()["kill_switch_history"]
    assert [(e["kind"], e["details"]["reason"]) for e in history] == [("kill_switch.off", "resolved"),
                                                                      ("kill_switch.on", "exchange outage")]


def test_kill_switch_on_zeroes_the_tiers(client, seeded, monkeypatch, tmp_path):
    with open_store(f"sqlite:///{tmp_path}/k.db") as store:
        seed_policy(store)
    with _client(f"sqlite:///{tmp_path}/k.db", monkeypatch) as c:
        assert c.post("/api/risk/kill-switch", json={"on": True, "reason": "halt"}, headers=AUTH).status_code == 200
        tiers = c.get("/api/risk/leverage").json()["tiers"]
    services.close_shared_store()
    assert tiers and all(t["tier"] == 0.0 and t["trigger"] == "kill_switch" for t in tiers)


def test_openapi_documents_the_routes(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/api/risk/leverage", "/api/risk/decisions", "/api/risk/kill-switch"} <= set(paths)
    post = paths["/api/risk/kill-switch"]["post"]
    assert {"401", "403", "422"} <= set(post["responses"])
    assert post.get("security") or any("HTTPBearer" in str(p) for p in [post])
    schema = spec["components"]["schemas"]["KillSwitchChange"]
    assert schema["examples"] and schema["properties"]["reason"]["maxLength"] == 500
    assert "text/csv" in paths["/api/risk/decisions"]["get"]["responses"]["200"]["content"]
