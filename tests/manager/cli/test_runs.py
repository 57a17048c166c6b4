"""The run commands of `cohortlab` end to end on real bars (SQLite store in tmp_path):
run / backtest / runs / ledger verify / data download, the JSON reports, and bad input."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from evolution.genome import Genome, save_genomes
from manager.cli import app
from manager.cli import output as cli_output
from manager.store import open_store
from tests.helpers import BINANCE, COINBASE, EQUITIES


def test_run_on_binance_writes_report_and_stores_run(tmp_path, store_url, cli):
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
    assert res.output.count("PASS") == 5 and "verified" in res.output  # 4 reconciliation checks + the hash chain
    with open_store(store_url) as st:
        assert len(st.get_ledger(run_id)) == rep["ledger"]["transactions"]


def test_same_seed_same_report(tmp_path, store_url, cli):
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
def test_run_on_the_other_datasets(tmp_path, store_url, folder, extra, quote, timeframe, cli):
    out = tmp_path / "r.json"
    res = cli("run", "--data", folder, *extra, "--agents", 12, "--allocation", "risk_weighted",
              "--reserve", 0.1, "--allow-short", "--json", out, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["quote"] == quote and rep["window"]["timeframe"] == timeframe
    assert rep["ledger"]["balanced"]
    assert rep["parent"]["unallocated_cash"] >= 0.1 * 1000 - 1e-6
    assert len({a["allocated"] for a in rep["agents"]}) > 1  # risk weighting differs by agent


def test_backtest_json(tmp_path, store_url, cli):
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
def test_bad_input_exits_non_zero_naming_the_value(store_url, args, needle, cli):
    res = cli(*args, "--no-progress", store_url=store_url) if args[0] in ("run", "backtest") \
        else cli(*args, store_url=store_url)
    assert res.exit_code != 0
    assert needle in res.output
    with open_store(store_url) as st:  # invalid input stores nothing
        assert st.list_runs() == []


def test_bad_genomes_file(tmp_path, store_url, cli):
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps([{"family": "sma_cross", "params": {"fast": 10, "slow": 30},
                                "symbols": ["ETH_BTC"], "size": 3.0}]))
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--genomes", bad, "--no-progress",
              store_url=store_url)
    assert res.exit_code != 0 and "size" in res.output


def test_bad_store_url(cli):
    res = cli("runs", "list", store_url="postgres://x")
    assert res.exit_code != 0 and "postgres://x" in res.output


def test_failed_run_is_stored_as_failed_without_ledger(store_url, cli):
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
    res = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "400"})
    for unit in ("USD", "bps", "bars", "fraction", "multiple of parent equity"):
        assert unit in res.output


def test_agents_seeded_from_file_then_hall_of_fame(tmp_path, store_url, cli):
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
    # with no --genomes, the store's latest hall of fame bred on this market seeds the cohort,
    # topped up at random
    with open_store(store_url) as st:
        st.save_hall_of_fame([x.to_dict() for x in g], source="test", market="binance-5m|5m|BTC",
                             train_start="2018-01-12T00:00:00Z", train_end="2018-01-15T00:00:00Z")
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15", "--agents", 4, "--json", out,
              "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["seeded_from"] == "hall_of_fame+random"
    ids = {Genome.from_dict(a["genome"]).genome_id for a in rep["agents"]}
    assert {x.validated().genome_id for x in g} <= ids and len(rep["agents"]) == 4


# ----------------------------------------------------------------- displays that do not mislead


def _table_rows(output: str, cells: int) -> list[list[str]]:
    """Body rows of the printed tables with ``cells`` columns, one list of stripped cells per line."""
    rows = []
    for line in output.splitlines():
        if line.startswith("│"):
            parts = [c.strip() for c in line.split("│")[1:-1]]
            if len(parts) == cells:
                rows.append(parts)
    return rows


def _columns(output: str, cells: int) -> list[list[str]]:
    """The rows of a table whose cells may wrap over lines: each cell's fragments joined."""
    rows: list[list[list[str]]] = []
    for parts in _table_rows(output, cells):
        if parts[0] or not rows:
            rows.append([[] for _ in range(cells)])
        for i, part in enumerate(parts):
            if part:
                rows[-1][i].append(part)
    return [[" ".join(frags) for frags in row] for row in rows]


def test_run_shows_no_misleading_figures(tmp_path, store_url, cli):
    """Two hours of 30 agents: agents whose positions are all still open have no win rate ("—",
    JSON null, an empty CSV cell), not 0 %; the 1e-7 BTC left over by splitting 1,000 BTC 30
    ways reads as 0 at the bankroll's precision; Sharpe says it is annualised from 24 bars."""
    out, csv_out = tmp_path / "r.json", tmp_path / "r.csv"
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15T00:00", "--end", "2018-01-15T02:00",
              "--agents", 30, "--seed", 7, "--bankroll", 1000, "--top", 30, "--json", out, "--csv", csv_out,
              "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    rep = json.loads(text)
    open_only = {a["agent_id"] for a in rep["agents"] if a["trades"] > 0 and a["win_rate"] is None}
    assert open_only, "expected agents that traded but closed nothing in two hours"
    assert '"win_rate": null' in text
    assert all(a["win_rate"] is None or 0 <= a["win_rate"] <= 1 for a in rep["agents"])
    assert rep["parent"]["unallocated_cash"] == pytest.approx(1e-7)  # 1,000 BTC / 30 in 1e-8 units
    with csv_out.open() as fh:
        csv_rows = {r["agent_id"]: r for r in csv.DictReader(fh)}
    assert all(csv_rows[a]["win_rate"] == "" for a in open_only)

    for output in (res.output, cli("runs", "show", rep["run_id"], store_url=store_url).output):
        board = {r[1]: r for r in _table_rows(output, 11)}  # rank, agent, family, ROI, Sharpe, DD, trades, win %..
        assert set(board) == {a["agent_id"] for a in rep["agents"]}
        for a in rep["agents"]:
            want = "—" if a["win_rate"] is None else f"{a['win_rate'] * 100:.0f}"
            assert board[a["agent_id"]][7] == want, (a, board[a["agent_id"]])
        assert re.search(r"│ unallocated cash\s+│\s+0 BTC │", output), output
        assert "e-0" not in output
        assert "Sharpe annualised from 2 h, 24 bars of 5m: per-bar ratio × √105,120" in output
        assert not re.search(r"(?<![\d.])[-+]0\.0+(?![\d])", output)  # no "-0.000" nor "+0.000"


def test_runs_list_shows_the_traded_window_and_the_whole_data_label(tmp_path, store_url, monkeypatch, cli):
    res = cli("run", "--data", BINANCE, "--start", "2018-01-15T00:00", "--end", "2018-01-15T02:00",
              "--agents", 2, "--no-progress", store_url=store_url)
    assert res.exit_code == 0, res.output
    with open_store(store_url) as st:
        done = st.list_runs()[0]
        pending = st.create_run({"kind": "cohort", "genomes": [], "data_label": "SYNTHETIC", "config": {},
                                 "header": {"day": "2018-01-20", "window_start": "2018-01-20T06:00:00Z",
                                            "window_end": "2018-01-21T06:00:00Z", "bankroll": 100.0,
                                            "quote": "USD", "agents": 2, "data_label": "SYNTHETIC",
                                            "market": "SYNTHETIC|5m|USD", "seeded_from": "random"}})
    monkeypatch.setattr(cli_output, "console", Console(width=120))  # a terminal narrower than the table
    res = cli("runs", "list", store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    rows = {r[0]: r for r in _columns(res.output, 9)}
    assert set(rows) == {done["run_id"], pending}

    def squeezed(s: str) -> str:
        return s.replace(" ", "")

    # folded over lines, never cut: the fragments put together give the whole label back
    assert squeezed(rows[done["run_id"]][5]) == squeezed(done["data_label"])
    assert squeezed(rows[done["run_id"]][3]) == squeezed("2018-01-15 00:00 .. 2018-01-15 02:00")
    # a run still going shows the window its header records from creation
    assert squeezed(rows[pending][3]) == squeezed("2018-01-20 06:00 .. 2018-01-21 06:00")
    assert rows[done["run_id"]][4].startswith(done["created_at"][:10])  # the creation time is still there
