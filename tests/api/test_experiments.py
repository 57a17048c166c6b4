"""``GET /api/experiments/cohorts`` over HTTP: pages newest first, filters, the CSV
export of every matching row, and refused parameters (see ``conftest.py`` for the server)."""
from __future__ import annotations

import csv
import io

import pytest

from manager.store import SQLiteStore
from tests.api.server import ROW_FIELDS, assert_problem
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

needs_listing = pytest.mark.skipif(not hasattr(SQLiteStore, "list_cohort_summaries"),
                                   reason="Store.list_cohort_summaries is not in the store adapters yet")


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
