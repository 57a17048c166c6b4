"""The read model shared by the API and the dashboard (:mod:`manager.read_model`), called
directly: the run header,
downsampled curves and regenerated SYNTHETIC bars of a long run, and the CSV export
read page by page."""
from __future__ import annotations

import pytest

from manager import read_model
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest, load_bars
from manager.store import open_store

HEADER = {"day": "2018-01-15", "window_start": "2018-01-15T00:00:00Z", "window_end": "2018-01-16T00:00:00Z",
          "bankroll": 1000.0, "quote": "BTC", "agents": 3, "data_label": "/data/binance-5m",
          "market": "binance-5m|5m|BTC", "seeded_from": "random"}
SUMMARY = {"bankroll": 250.0, "quote": "USD", "data": "SYNTHETIC", "seeded_from": "hall_of_fame",
           "window": {"start": "2024-03-01T06:00:00Z", "end": "2024-03-01T18:00:00Z"}, "agents": [{}, {}]}


def test_run_header_is_the_stored_header():
    run = {"run_id": "r", "header": dict(HEADER), "summary": SUMMARY, "data_label": "other",
           "config": {"request": {"bankroll": 5.0, "bars": {"start": "1999-01-01"}}}}
    assert read_model.run_header(run) == HEADER  # neither the report nor the request blob is read
    assert tuple(read_model.run_header(run)) == read_model.HEADER_FIELDS


def test_a_run_without_a_header_is_not_guessed_from_its_request_or_report():
    """Stores backfill headers (migration 0005); what a document lacks stays unknown."""
    run = {"run_id": "r", "summary": SUMMARY, "data_label": "SYNTHETIC",
           "config": {"request": {"bankroll": 5.0, "bars": {"start": "1999-01-01"}}}}
    assert read_model.run_header(run) == dict.fromkeys(read_model.HEADER_FIELDS)
    partial = {"run_id": "r", "header": {**dict.fromkeys(read_model.HEADER_FIELDS), "bankroll": 99.0},
               "summary": SUMMARY}
    assert read_model.run_header(partial) == {**dict.fromkeys(read_model.HEADER_FIELDS), "bankroll": 99.0}


def test_status_rows_read_the_header(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'status.db'}") as store:
        run_id = store.create_run({"kind": "cohort", "header": dict(HEADER), "genomes": [],
                                   "data_label": HEADER["data_label"],
                                   "config": {"request": {"bankroll": 5.0, "bars": {"start": "1999-01-01"}}}})
        row = read_model.status_recent(store)["items"][0]
    assert row["run_id"] == run_id and row["status"] == "running"
    assert (row["date"], row["bankroll"], row["quote"], row["agents"]) == ("2018-01-15", 1000.0, "BTC", 3)


def test_read_model_downsamples_long_runs_and_regenerates_synthetic_bars(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data here: the SYNTHETIC market
    with open_store(f"sqlite:///{tmp_path / 'long.db'}") as store:
        req = CohortRequest(bars=BarsRequest(start="2024-03-01", end="2024-03-09", seed=5), bankroll=1000, agents=3,
                            seed=5)
        run_id, _, report = execute_cohort(req, store)
        assert report["data"] == "SYNTHETIC" and report["window"]["bars"] == 8 * 288  # 2,304 bars
        detail = read_model.cohort_detail(store, run_id)
        curves = detail["curves"]
        n = len(curves["timestamps"])
        assert n == read_model.MAX_POINTS
        assert all(len(curves[k]) == n for k in ("parent_equity", "gross_exposure", "utilisation"))
        assert all(len(v) == n for v in curves["agent_equity"].values())
        assert curves["timestamps"][0] == "2024-03-01T00:00:00Z" and curves["timestamps"][-1] == "2024-03-08T23:55:00Z"
        assert curves["parent_equity"][-1] == pytest.approx(report["parent"]["final_equity"])
        assert curves["timestamps"] == sorted(set(curves["timestamps"]))
        # an agent's bars are rebuilt from the stored request: the same SYNTHETIC prices
        agent = next((a for a in report["agents"] if a["trades"]), report["agents"][0])
        body = read_model.agent_detail(store, run_id, agent["agent_id"])
        assert body["prices_error"] is None and body["prices"]
        assert len(body["equity"]["values"]) == read_model.MAX_POINTS
        for symbol, bars in body["prices"].items():
            assert len(bars["timestamps"]) <= read_model.MAX_POINTS
            assert all(h >= max(o, c) - 1e-12 and lo <= min(o, c) + 1e-12
                       for o, h, lo, c in zip(bars["open"], bars["high"], bars["low"], bars["close"]))
        market = load_bars(BarsRequest(**store.get_run(run_id)["config"]["request"]["bars"]))
        symbol = next(iter(body["prices"]))
        j = market.symbols.index(symbol)
        traded = market.high[market.warmup:, j]
        assert max(body["prices"][symbol]["high"]) == pytest.approx(traded.max())  # buckets keep the extremes
        assert body["prices"][symbol]["open"][0] == pytest.approx(market.open[market.warmup, j])
        assert body["prices"][symbol]["close"][-1] == pytest.approx(market.close[-1, j])
        with pytest.raises(read_model.QueryError):
            read_model.cohort_list(store, page=0)
        with pytest.raises(read_model.QueryError):
            read_model.cohort_detail(store, run_id, max_points=1)


def test_cohort_export_reads_page_by_page_and_yields_each_cohort_once(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/export.db") as store:
        ids = [store.create_run({"kind": "cohort", "genomes": [], "data_label": "x", "config": {}})
               for _ in range(25)]
        calls = []
        lister = store.list_cohort_summaries

        def counted(**kwargs):
            calls.append(kwargs)
            return lister(**kwargs)

        store.list_cohort_summaries = counted  # type: ignore[method-assign]
        total, rows = read_model.cohort_export(store, batch=10)
        assert total == 25 and len(calls) == 1  # the first page is read at once, the rest lazily
        first = [next(rows)["run_id"] for _ in range(12)]
        for _ in range(3):  # cohorts created while the export is read push the rest down
            store.create_run({"kind": "cohort", "genomes": [], "data_label": "x", "config": {}})
        rest = [r["run_id"] for r in rows]
        assert first + rest == ids[::-1]  # every cohort once, newest first, none repeated
        # 28 cohorts by the third page: it comes back short (8 rows, 3 already seen) and ends the export
        assert [c["offset"] for c in calls] == [0, 10, 20] and all(c["limit"] == 10 for c in calls)
        with pytest.raises(read_model.QueryError):
            read_model.cohort_export(store, batch=0)
