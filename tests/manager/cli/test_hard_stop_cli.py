"""``--daily-hard-stop`` of `cohortlab run` / `backtest` / `campaign` (issue 12): the report's
event and the printed line when it fires, its place in the settings, the 5 % default and a
clear exit 2 for a fraction outside [0, 1)."""
from __future__ import annotations

import json

import pytest

from manager.cli import app  # noqa: F401 - the commands are registered on import


@pytest.fixture(autouse=True)
def no_local_data(tmp_path, monkeypatch):
    """Run from an empty folder: no ./data, so the built-in SYNTHETIC market."""
    monkeypatch.chdir(tmp_path)


def test_run_prints_and_reports_the_hard_stop_when_it_fires(tmp_path, store_url, cli):
    out = tmp_path / "r.json"
    res = cli("run", "--agents", 5, "--baselines", 0, "--daily-hard-stop", 0.001, "--no-progress",
              "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["data"] == "SYNTHETIC"
    assert rep["settings"]["daily_hard_stop"] == 0.001
    ev = rep["events"]
    assert ev and all(e["kind"] == "daily_hard_stop" for e in ev)
    assert rep["parent"]["hard_stops"] == len(ev)
    e = ev[0]
    assert e["threshold"] == 0.001 and e["drawdown"] >= 0.001
    assert e["parent_equity"] <= (1 - 0.001) * e["reference_equity"]
    assert e["reference_equity"] == rep["bankroll"]  # the first traded day starts from the bankroll
    text = " ".join(res.output.split())  # the console may wrap the line
    assert f"daily hard stop at {e['time']}" in text
    assert text.count("daily hard stop at") == len(ev)
    assert rep["ledger"]["balanced"] is True
    assert cli("ledger", "verify", rep["run_id"], store_url=store_url).exit_code == 0


def test_run_defaults_to_five_percent_and_zero_turns_it_off(tmp_path, store_url, cli):
    out = tmp_path / "r.json"
    res = cli("run", "--agents", 3, "--baselines", 0, "--no-progress", "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["settings"]["daily_hard_stop"] == 0.05
    res = cli("run", "--agents", 3, "--baselines", 0, "--daily-hard-stop", 0, "--no-progress", "--json", out,
              store_url=store_url)
    rep = json.loads(out.read_text())
    assert rep["settings"]["daily_hard_stop"] == 0.0 and rep["events"] == []
    assert "daily hard stop at" not in res.output


@pytest.mark.parametrize("command", ["run", "backtest", "campaign"])
@pytest.mark.parametrize("bad", ["1.5", "1"])
def test_fraction_outside_zero_one_exits_2_with_a_clear_message(store_url, cli, command, bad):
    args = {"run": ("run", "--agents", 2, "--baselines", 0),
            "backtest": ("backtest",),
            "campaign": ("campaign", "--start", "2024-01-03", "--days", 1, "--lookback", "1d",
                         "--baselines", 0)}[command]
    res = cli(*args, "--daily-hard-stop", bad, "--no-progress", store_url=store_url)
    assert res.exit_code == 2
    msg = " ".join(res.output.split())
    assert "daily_hard_stop" in msg and "outside [0, 1)" in msg


def test_negative_fraction_is_refused_by_the_option(store_url, cli):
    res = cli("run", "--daily-hard-stop", "-0.1", "--no-progress", store_url=store_url)
    assert res.exit_code == 2 and "--daily-hard-stop" in res.output


def test_backtest_reports_the_hard_stop(tmp_path, store_url, cli):
    out = tmp_path / "b.json"
    res = cli("backtest", "--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20",
              "--daily-hard-stop", 0.001, "--no-progress", "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["events"] and rep["events"][0]["kind"] == "daily_hard_stop"
    assert "daily hard stop at" in " ".join(res.output.split())


@pytest.mark.parametrize("command", ["run", "backtest", "campaign"])
def test_help_explains_the_unit(cli, command):
    res = cli(command, "--help")
    text = " ".join(res.output.replace("│", " ").split())
    assert "--daily-hard-stop" in text or "--daily-hard-st" in text
    assert "start of the UTC day" in text and "0 = off" in text
