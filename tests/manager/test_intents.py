"""The assistant's intents end to end on real bars (binance-5m, 3 symbols, 6 agents, 1 GA
generation): evidence from a stored 3-day campaign, a grow draft with its prerequisites and
feasibility, confirmation (compare-and-set, token), the Celery task ``cohortlab.intent_day``
run eagerly day by day with its actual-against-plan reports, refusals, and fund-tomorrow
logged to the knowledge base."""
from __future__ import annotations

import pytest

from evolution.evolve import GAConfig
from manager import intents, knowledge
from manager.campaigns import CampaignRequest, run_campaign
from manager.learning_jobs import Source
from manager.runner import CohortRequest
from manager.store import open_store
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

SYMBOLS = ["ETH_BTC", "LTC_BTC", "XMR_BTC"]


def grow(**kw) -> intents.GrowInput:
    base = dict(bankroll=1000.0, days=2, target_return=0.001, data=str(BINANCE), symbols=SYMBOLS, agents=6,
                generations=1, baselines=0, n_paths=4000)
    return intents.GrowInput(**{**base, **kw})


@pytest.fixture(scope="module")
def evidence_db(tmp_path_factory):
    """A store holding a 3-day campaign (2018-01-12..14): three one-day cohort runs of evidence."""
    path = tmp_path_factory.mktemp("intents") / "evidence.db"
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        report = run_campaign(CampaignRequest(
            source=Source(data=str(BINANCE), symbols=SYMBOLS), start="2018-01-12", days=3, lookback="1d",
            cohort=CohortRequest(agents=6, bankroll=1000, seed=3, baselines=0),
            ga=GAConfig(generations=1, population=6), min_trades=0, dsr_threshold=-10.0), store)
    return path, report


@pytest.fixture()
def store_url(evidence_db, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "store.db"
    shutil.copy(evidence_db[0], copy)
    url = f"sqlite:///{copy}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    return url


def test_draft_has_prerequisites_feasibility_plan_and_a_confirm_step(store_url, evidence_db):
    with open_store(store_url) as store:
        doc = intents.draft_grow(store, grow(), actor="user:otto")
        rois = [d["parent"]["roi"] for d in evidence_db[1]["days"]]
        assert doc["status"] == "draft" and doc["start"] == "2018-01-15" and doc["dates"] == ["2018-01-15", "2018-01-16"]
        assert [c["name"] for c in doc["prerequisites"]] == ["data", "store", "broker", "kill_switch"]
        assert all(c["status"] == "pass" for c in doc["prerequisites"])
        feas = doc["feasibility"]
        assert feas["evidence"]["n_days"] == 3 and feas["evidence"]["mean"] == pytest.approx(sum(rois) / 3)
        assert feas["required_daily_return"] == pytest.approx(1.001 ** 0.5 - 1)
        assert [p["day"] for p in doc["plan"]] == [1, 2] and doc["plan"][0]["tier"] == 2.0
        assert doc["confirm"]["body"]["confirm_token"] == doc["confirm_token"]
        assert "data_path" not in doc and doc["inputs"]["data"] == "binance-5m"
        entries = knowledge.list_entries(store, link=f"intent:{doc['intent_id']}")
        assert [e["kind"] for e in entries] == ["assistant.grow"] and entries[0]["narrative"] == doc["narrative"]


def test_implausible_target_is_refused_with_its_figures(store_url):
    with open_store(store_url) as store:
        doc = intents.draft_grow(store, grow(target_return=0.10, days=3))
        assert doc["status"] == "refused" and "confirm" not in doc
        assert doc["narrative"].startswith("Refused: needs 3.23 %/day (10.00 % over 3 day(s)); 3 cohort days on ")
        assert "bootstrap probability" in doc["narrative"]
        with pytest.raises(intents.IntentConflict, match="refused"):
            intents.confirm_grow(store, doc["intent_id"], "x")


def test_no_evidence_is_refused_not_invented(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'empty.db'}") as store:
        doc = intents.draft_grow(store, grow(start="2018-01-15"))
        assert doc["status"] == "refused" and doc["feasibility"]["probability"] is None
        assert "no evidence" in doc["narrative"] and doc["feasibility"]["path"] == []


def test_point_in_time_evidence_ends_before_the_start(store_url):
    with open_store(store_url) as store:
        doc = intents.draft_grow(store, grow(start="2018-01-14"))  # only 01-12 and 01-13 ended by then
        assert doc["feasibility"]["evidence"]["n_days"] == 2 and doc["status"] == "refused"


def test_blocked_by_the_kill_switch_and_uncovered_data(store_url):
    from manager.policy import set_kill_switch

    with open_store(store_url) as store:
        doc = intents.draft_grow(store, grow(start="2018-01-29", days=5))
        assert doc["status"] == "blocked" and not doc["prerequisites"][0]["ok"]
        set_kill_switch(store, True, actor="user:rita", reason="drill")
        doc = intents.draft_grow(store, grow())
        assert doc["status"] == "blocked" and doc["prerequisites"][3]["status"] == "fail"
        assert "drill" in doc["narrative"]


@pytest.mark.parametrize("bad, field", [({"bankroll": 49.0}, "bankroll"), ({"bankroll": 100_001.0}, "bankroll"),
                                        ({"days": 0}, "days"), ({"days": 91}, "days"),
                                        ({"target_amount": 900.0, "target_return": None}, "target_amount"),
                                        ({"target_amount": 1100.0}, "target"), ({"risk_appetite": "yolo"}, "risk_appetite")])
def test_bounds(tmp_path, bad, field):
    with open_store(f"sqlite:///{tmp_path / 'b.db'}") as store:
        with pytest.raises(intents.IntentInvalid) as info:
            intents.draft_grow(store, grow(**bad))
        assert info.value.field == field and "allowed" in str(info.value) or "not both" in str(info.value)


def test_confirm_then_the_celery_chain_runs_each_day_and_reports_against_plan(store_url):
    from manager.tasks import intent_day

    started = []
    with open_store(store_url) as store:
        doc = intents.draft_grow(store, grow(), actor="user:otto")
        with pytest.raises(intents.IntentConflict, match="confirm token"):
            intents.confirm_grow(store, doc["intent_id"], "stale", actor="user:otto")
        running = intents.confirm_grow(store, doc["intent_id"], doc["confirm_token"], actor="user:otto",
                                       dispatch=lambda d: started.append(d["intent_id"]) or {"mode": "test"})
        assert running["status"] == "running" and started == [doc["intent_id"]]
        assert all(p["run_id"] for p in running["plan"])
        with pytest.raises(intents.IntentConflict, match="running"):
            intents.confirm_grow(store, doc["intent_id"], doc["confirm_token"])
    # the chain's tasks, eagerly, in order (what start_plan chains with a broker)
    first = intent_day.apply(args=[doc["intent_id"], 1]).get()
    second = intent_day.apply(args=[doc["intent_id"], 2]).get()
    again = intent_day.apply(args=[doc["intent_id"], 2]).get()  # a redelivery: the same report
    assert second == again and first["day"] == 1 and second["day"] == 2
    with open_store(store_url) as store:
        view = intents.get_intent(store, doc["intent_id"])
        assert view["status"] == "completed" and view["progress"]["days_done"] == 2
        r1, r2 = view["reports"]
        assert r1["run_id"] == running["plan"][0]["run_id"]
        run = store.get_run(r1["run_id"])
        assert run["header"]["day"] == "2018-01-15" and run["summary"]["parent"]["roi"] == pytest.approx(r1["actual"]["roi"])
        assert r2["actual"]["start_equity"] == pytest.approx(r1["actual"]["end_equity"])
        assert r2["actual"]["end_equity"] == pytest.approx(1000 * (1 + r1["actual"]["roi"]) * (1 + r2["actual"]["roi"]))
        assert view["outcome"]["end_equity"] == pytest.approx(r2["actual"]["end_equity"])
        for r in (r1, r2):
            tier = store.get_run(r["run_id"])["summary"]["policy"]["parent_tier"]["tier"]
            assert r["actual"]["tier"] == tier and "{" not in r["narrative"]  # the tier's figure, not its record
            assert f"returned {r['actual']['roi'] * 100:.2f} %" in r["narrative"]
            assert "no edge can be claimed" in r["narrative"]  # baselines=0: no random cohorts, no claim
        days = {i["title"]: i["date"] for i in knowledge.history(store, kinds=["assistant"])["items"]
                if i["status"] == "assistant.grow_day"}  # each day's entry is dated by the day it reports
        assert sorted(days.values()) == [r1["date"], r2["date"]]
        kinds = [e["kind"] for e in knowledge.list_entries(store, link=f"intent:{doc['intent_id']}")]
        assert kinds.count("assistant.grow_day") == 2 and "assistant.grow_confirmed" in kinds


def test_fund_tomorrow_ranks_and_logs(store_url, evidence_db):
    with open_store(store_url) as store:
        out = intents.fund_tomorrow(store, now="2018-02-01T00:00:00Z", actor="user:vera")
        cands = evidence_db[1]["candidates"]
        assert len(out["ranked"]) == len(cands) > 0
        assert all(not r["fundable"] and "no random baseline" in r["blocking"] for r in out["ranked"])
        assert "None passes the promoter's thresholds" in out["narrative"]
        assert out["blockers"] == [] and out["pending_approvals"] == []
        assert {r["action"] for r in out["recommendations"]} == {"hold"}
        entry = store.get_knowledge_entry(out["knowledge_entry_id"])
        assert entry["narrative"] == out["narrative"] and entry["links"] == [f"campaign:{evidence_db[1]['campaign_id']}"]
        # point in time: before the ranking day closed there is nothing to rank
        assert intents.fund_tomorrow(store, now="2018-01-14T12:00:00Z")["ranked"] == []
