"""The `cohortlab` command line end to end on real bars (SQLite store in tmp_path):
run / backtest / runs / ledger verify, the JSON reports, and bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manager.cli import app
from manager.store import open_store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE = SHARED / "binance-5m"
COINBASE = SHARED / "coinbase-1m"
EQUITIES = SHARED / "us-equities-1m"

runner = CliRunner()


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'runs.db'}"


def cli(*args, store_url=None):
    argv = [str(a) for a in args]
    if store_url:
        argv += ["--store", store_url]
    return runner.invoke(app, argv, catch_exceptions=False)


def test_run_on_binance_writes_report_and_stores_run(tmp_path, store_url):
    out = tmp_path / "report.json"
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--end", "2018-01-16", "--bankroll", 1000,
              "--agents", 30, "--seed", 7, "--json", out, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert set(rep) >= {"run_id", "seed", "bankroll", "allocation", "window", "parent", "agents",
                        "hourly", "ledger"}
    assert rep["window"]["bars"] == 288 and rep["window"]["timeframe"] == "5m"
    assert rep["window"]["start"] == "2018-01-15T00:00:00Z" and rep["window"]["end"] == "2018-01-16T00:00:00Z"
    assert len(rep["window"]["symbols"]) == 10 and rep["quote"] == "BTC"
    assert set(rep["parent"]) >= {"final_equity", "roi", "max_drawdown", "peak_gross_exposure",
                                  "peak_utilisation", "unallocated_cash", "breaches"}
    assert len(rep["agents"]) == 30
    keys = {"agent_id", "family", "genome", "allocated", "final_equity", "roi", "realized_pnl",
            "unrealized_pnl", "fees", "sharpe", "sortino", "max_drawdown", "trades", "win_rate",
            "utilisation", "breaches", "confidence"}
    assert all(keys <= set(a) for a in rep["agents"])
    assert len({a["family"] for a in rep["agents"]}) == 6  # families spread across agents
    assert rep["ledger"]["balanced"] is True and rep["ledger"]["transactions"] > 31
    assert len(rep["hourly"]) == 24
    # parent equity = unallocated cash + sum of agent equities (no capital returned here)
    total = rep["parent"]["unallocated_cash"] + sum(a["final_equity"] for a in rep["agents"])
    assert total == pytest.approx(rep["parent"]["final_equity"], rel=1e-12)
    # peak gross exposure respects the parent ceiling up to price drift within a bar
    assert rep["parent"]["peak_gross_exposure"] <= 1.0 * 1.05
    # ranked best first
    rois = [a["roi"] for a in rep["agents"]]
    assert rois == sorted(rois, reverse=True)

    run_id = rep["run_id"]
    res = cli("runs", "list", store_url=store_url)
    assert run_id in res.output and "completed" in res.output
    res = cli("runs", "show", run_id, store_url=store_url)
    assert res.exit_code == 0 and rep["agents"][0]["agent_id"] in res.output
    res = cli("ledger", "verify", run_id, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert res.output.count("PASS") == 4 and "verified" in res.output
    with open_store(store_url) as st:
        assert len(st.get_ledger(run_id)) == rep["ledger"]["transactions"]


def test_same_seed_same_report(tmp_path, store_url):
    reports = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        res = cli("run", "--data", BINANCE, "--start", "2018-01-20T00:00", "--end", "2018-01-20T12:00",
                  "--seed", 11, "--agents", 12, "--json", out, "--no-progress", store_url=store_url)
        assert res.exit_code == 0, res.output
        rep = json.loads(out.read_text())
        rep.pop("run_id")
        reports.append(rep)
    assert reports[0] == reports[1]
    out = tmp_path / "other.json"
    cli("run", "--data", BINANCE, "--start", "2018-01-20T00:00", "--end", "2018-01-20T12:00",
        "--seed", 12, "--agents", 12, "--json", out, "--no-progress", store_url=store_url)
    assert json.loads(out.read_text())["agents"] != reports[0]["agents"]


@pytest.mark.parametrize("folder,extra,quote,timeframe", [
    (COINBASE, ["--start", "2018-04-04T12:00", "--end", "2018-04-05T12:00"], "USD", "1m"),
    (EQUITIES, ["--start", "2013-10-07", "--end", "2013-10-08", "--quote", "USD"], "USD", "1m"),
])
def test_run_on_the_other_datasets(tmp_path, store_url, folder, extra, quote, timeframe):
    out = tmp_path / "r.json"
    res = cli("run", "--data", folder, *extra, "--agents", 12, "--allocation", "risk_weighted",
              "--reserve", 0.1, "--allow-short", "--json", out, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["quote"] == quote and rep["window"]["timeframe"] == timeframe
    assert rep["ledger"]["balanced"]
    assert rep["parent"]["unallocated_cash"] >= 0.1 * 1000 - 1e-6
    assert len({a["allocated"] for a in rep["agents"]}) > 1  # risk weighting differs by agent


def test_backtest_json(tmp_path, store_url):
    out = tmp_path / "bt.json"
    res = cli("backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--strategy", "sma_cross",
              "--param", "fast=10", "--param", "slow=30", "--size", 1.0, "--fee-bps", 10,
              "--slippage-bps", 0, "--bankroll", 1000, "--json", out, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    bt = json.loads(out.read_text())
    assert set(bt) >= {"final_equity", "total_return", "trades"}
    assert bt["trades"] and set(bt["trades"][0]) == {"symbol", "entry_time", "entry_price", "exit_time",
                                                     "exit_price", "qty", "fees", "pnl"}
    # the trades' PnL (after fees) adds up to the total PnL
    assert sum(t["pnl"] for t in bt["trades"]) == pytest.approx(bt["final_equity"] - 1000, abs=1e-6)
    assert bt["total_return"] == pytest.approx(bt["final_equity"] / 1000 - 1, rel=1e-12)


def test_main_job_on_synthetic_market_without_data(tmp_path):
    """The README's first command: no --data and no ./data -> SYNTHETIC bars,
    the embedded SQLite store; through the installed console script."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
    exe = Path(sys.executable).with_name("cohortlab")
    res = subprocess.run([str(exe), "run", "--no-progress", "--json", "r.json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "SYNTHETIC" in res.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["data"] == "SYNTHETIC" and rep["ledger"]["balanced"]
    assert (tmp_path / "cohortlab.db").exists()


@pytest.mark.parametrize("args,needle", [
    (["run", "--data", "/nonexistent/folder"], "/nonexistent/folder"),
    (["run", "--data", BINANCE, "--symbols", "DOGE_BTC"], "DOGE_BTC"),
    (["run", "--data", BINANCE, "--start", "2019-01-01"], "2019-01-01"),
    (["run", "--data", BINANCE, "--start", "yesterday-ish"], "yesterday-ish"),
    (["run", "--data", BINANCE, "--start", "2018-01-16", "--end", "2018-01-15"], "must be after"),
    (["run", "--data", BINANCE, "--start", "2018-01-15", "--allocation", "kelly"], "kelly"),
    (["run", "--data", EQUITIES, "--start", "2013-10-07"], "quote"),
    (["run", "--data", BINANCE, "--start", "2018-01-15", "--bankroll", "-5"], "bankroll"),
    (["backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--strategy", "nope"], "nope"),
    (["backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--param", "fast=50", "--param", "slow=20"], "fast"),
    (["backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--param", "fast"], "name=value"),
    (["backtest", "--data", BINANCE, "--symbols", "ETH_BTC", "--param", "speed=3"], "speed"),
    (["runs", "show", "no-such-run"], "no-such-run"),
    (["ledger", "verify", "no-such-run"], "no-such-run"),
])
def test_bad_input_exits_non_zero_naming_the_value(store_url, args, needle):
    res = cli(*args, "--no-progress", store_url=store_url) if args[0] in ("run", "backtest") \
        else cli(*args, store_url=store_url)
    assert res.exit_code != 0
    assert needle in res.output
    with open_store(store_url) as st:  # invalid input stores nothing
        assert st.list_runs() == []


def test_bad_genomes_file(tmp_path, store_url):
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps([{"family": "sma_cross", "params": {"fast": 10, "slow": 30},
                                "symbols": ["ETH_BTC"], "size": 3.0}]))
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--genomes", bad, "--no-progress",
              store_url=store_url)
    assert res.exit_code != 0 and "size" in res.output


def test_bad_store_url():
    res = cli("runs", "list", store_url="postgres://x")
    assert res.exit_code != 0 and "postgres://x" in res.output


def test_failed_run_is_stored_as_failed_without_ledger(store_url):
    # risk-weighted allocation needs warm-up history; with none the run fails inside
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--allocation", "risk_weighted",
              "--warmup-bars", 0, "--agents", 5, "--no-progress", store_url=store_url)
    assert res.exit_code != 0 and "warm-up" in res.output
    with open_store(store_url) as st:
        runs = st.list_runs()
        assert [r["status"] for r in runs] == ["failed"]
        assert "warm-up" in runs[0]["reason"]
        assert st.get_ledger(runs[0]["run_id"]) == []
    res = cli("ledger", "verify", runs[0]["run_id"], store_url=store_url)
    assert res.exit_code != 0


def test_help_states_units():
    res = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "400"})
    for unit in ("USD", "bps", "bars", "fraction", "multiple of parent equity"):
        assert unit in res.output


def test_agents_seeded_from_file_then_hall_of_fame(tmp_path, store_url):
    from evolution.genome import Genome, save_genomes
    g = [Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC", "LTC_BTC"), stop_loss=0.01),
         Genome("rsi_reversion", {}, symbols=("XMR_BTC",), leverage=1.5)]
    path = save_genomes(tmp_path / "g.json", g)
    out = tmp_path / "r.json"
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--agents", 2, "--genomes", path,
              "--json", out, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["seeded_from"] == "file"
    assert sorted(a["genome"]["family"] for a in rep["agents"]) == ["rsi_reversion", "sma_cross"]
    # with no --genomes, the store's latest hall of fame seeds the cohort, topped up at random
    with open_store(store_url) as st:
        st.save_hall_of_fame([x.to_dict() for x in g], source="test")
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--agents", 4, "--json", out,
              "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["seeded_from"] == "hall_of_fame+random"
    ids = {Genome.from_dict(a["genome"]).genome_id for a in rep["agents"]}
    assert {x.validated().genome_id for x in g} <= ids and len(rep["agents"]) == 4


def test_data_download_unknown_exchange_is_a_clear_error(tmp_path):
    res = cli("data", "download", "--exchange", "nope", "--symbols", "ETH/BTC", "--days", 1,
              "--out", tmp_path)
    assert res.exit_code != 0 and "nope" in res.output
