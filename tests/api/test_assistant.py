"""The assistant's read-only views over HTTP: recent cohort status and bankroll use."""
from __future__ import annotations

import pytest

from tests.api.server import assert_problem
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")


def test_assistant_status_and_bankroll_summary(client, runs):
    status = client.get("/api/assistant/cohorts/status", params={"limit": 50}).json()
    by_id = {row["run_id"]: row for row in status["items"]}
    for run in runs:
        row = by_id[run["run_id"]]
        assert row["status"] == "completed" and row["date"] == run["day"] and row["bankroll"] == run["bankroll"]
        assert row["roi"] == pytest.approx(run["report"]["parent"]["roi"])
    assert status["counts"]["completed"] >= 2
    summary = client.get("/api/assistant/cohorts/bankroll-summary").json()
    assert summary["days"] == 7
    rows = {row["run_id"]: row for row in summary["cohorts"]}
    for run in runs:
        row, parent = rows[run["run_id"]], run["report"]["parent"]
        assert row["bankroll"] == run["bankroll"] and row["quote"] == "BTC"
        for key in ("peak_utilisation", "mean_gross_exposure", "unallocated_cash", "final_equity", "roi"):
            assert row[key] == pytest.approx(parent[key]), key
    btc = summary["by_quote"]["BTC"]
    assert btc["cohorts"] == len(summary["cohorts"])
    assert btc["bankroll"] == pytest.approx(sum(r["bankroll"] for r in summary["cohorts"]))
    assert assert_problem(client.get("/api/assistant/cohorts/bankroll-summary", params={"days": 0}), 422)
