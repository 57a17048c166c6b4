"""The kill switch (issue 12): audited on/off, no exposure while on for every cohort, policy
decisions of 0x and a resume at the base tier; `cohortlab run --policy` reads only decisions
known at its start (point in time)."""
from __future__ import annotations

import json

import pytest

from manager.store import open_store


@pytest.fixture(autouse=True)
def no_local_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./data: the built-in SYNTHETIC market


def _run(cli, store_url, out, *extra):
    res = cli("run", "--agents", 6, "--baselines", 0, "--no-progress", "--json", out, *extra, store_url=store_url)
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text()), res.output


def test_kill_switch_blocks_exposure_and_is_audited(tmp_path, cli, store_url):
    base, _ = _run(cli, store_url, tmp_path / "a.json")
    assert sum(a["trades"] for a in base["agents"]) > 0  # the same cohort trades when the switch is off

    res = cli("kill-switch", "on", "--reason", "exchange outage", store_url=store_url)
    assert res.exit_code == 0 and "kill switch ON" in res.output
    halted, text = _run(cli, store_url, tmp_path / "b.json")
    assert all(a["trades"] == 0 for a in halted["agents"])
    assert halted["parent"]["final_equity"] == pytest.approx(halted["bankroll"])
    assert halted["policy"]["kill_switch"] == {"on": True, "reason": "exchange outage",
                                               "at": halted["policy"]["kill_switch"]["at"]}
    assert all(a["tier"]["ceiling"] == 0.0 and a["tier"]["trigger"] == "kill_switch" for a in halted["agents"])
    assert "kill switch ON" in " ".join(text.split())

    assert cli("kill-switch", "off", "--reason", "venue back", store_url=store_url).exit_code == 0
    with open_store(store_url) as store:
        assert store.kill_switch()["on"] is False
        events = store.list_audit(10)
        run = store.get_run(halted["run_id"])
    kinds = [(e["kind"], e["details"]["reason"]) for e in events if e["kind"].startswith("kill_switch")]
    assert kinds == [("kill_switch.off", "venue back"), ("kill_switch.on", "exchange outage")]
    assert all(e["actor"].startswith("cli") for e in events if e["kind"].startswith("kill_switch"))
    assert run["config"]["ceilings"] == {"parent": 0.0, "agents": [0.0] * 6, "policy": False, "kill_switch": True}


def test_kill_switch_needs_a_reason_and_a_state(cli, store_url):
    assert cli("kill-switch", "maybe", "--reason", "x", store_url=store_url).exit_code == 2
    res = cli("kill-switch", "on", "--reason", "  ", store_url=store_url)
    assert res.exit_code == 2 and "reason" in res.output
    with open_store(store_url) as store:
        assert store.kill_switch()["on"] is False


def test_run_with_policy_decides_then_halts_then_resumes(tmp_path, cli, store_url):
    first, _ = _run(cli, store_url, tmp_path / "1.json", "--policy")
    pol = first["policy"]
    assert pol["on"] and pol["parent_subject"] == "parent:main" and pol["parent_ceiling"] == 2.0
    assert {d["subject"] for d in pol["decisions"]} >= {"parent:main"}
    assert all(d["previous_tier"] == 2.0 for d in pol["decisions"])  # everyone started at the base tier
    # the same day again: the decisions above ended after this run's start, so they are not read
    again, _ = _run(cli, store_url, tmp_path / "2.json", "--policy")
    assert again["policy"]["parent_ceiling"] == 2.0 and again["policy"]["parent_tier"]["trigger"] == "initial"
    with open_store(store_url) as store:  # and the day's decisions are idempotent: the first run's stay
        docs = store.list_policy_decisions(subject="parent:main", limit=10)
    assert len(docs) == 1 and docs[0]["source"] == first["run_id"]

    # a later day reads them; with the kill switch on it decides 0x, then resumes at the base tier
    cli("kill-switch", "on", "--reason", "drill", store_url=store_url)
    day2, _ = _run(cli, store_url, tmp_path / "3.json", "--policy", "--start", _next_day(first))
    assert all(d["tier"] == 0.0 and d["trigger"] == "kill_switch" for d in day2["policy"]["decisions"])
    cli("kill-switch", "off", "--reason", "drill over", store_url=store_url)
    day3, _ = _run(cli, store_url, tmp_path / "4.json", "--policy", "--start", _next_day(day2))
    # the 0x decided under the switch lasts only while it is on: day 3 trades at the base tier at once
    assert day3["policy"]["parent_ceiling"] == 2.0 and day3["policy"]["parent_tier"]["trigger"] == "resume"
    assert sum(a["trades"] for a in day3["agents"]) > 0
    par = next(d for d in day3["policy"]["decisions"] if d["subject"] == "parent:main")
    assert par["previous_tier"] == 2.0


def _next_day(report: dict) -> str:
    import pandas as pd

    return str((pd.Timestamp(report["window"]["start"]) + pd.Timedelta(days=1)).date())
