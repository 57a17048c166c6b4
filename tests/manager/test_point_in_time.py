"""No look-ahead through the store (issue 10, part 1): a campaign day, a learning
cycle or a run for time t starts only from what was trained on data that ended
by t, so it gives bit-identical results whether or not the store already holds
artefacts bred on LATER days of the same market (the point-in-time rule,
:mod:`manager.seeding`)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from evolution.evolve import GAConfig
from manager.campaigns import CampaignRequest, run_campaign
from manager.learning_jobs import CycleRequest, Source, learning_cycle
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest
from manager.store import SQLiteStore
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

SYMBOLS = ["ETH_BTC", "LTC_BTC"]
_QUICK = {"baselines": 0} if "baselines" in {f.name for f in dataclasses.fields(CohortRequest)} else {}


def _cohort(**kw) -> CohortRequest:
    return CohortRequest(agents=4, bankroll=1000.0, seed=3, **_QUICK, **kw)


def _campaign(store, start: str, days: int) -> dict:
    req = CampaignRequest(source=Source(data=str(BINANCE), symbols=SYMBOLS), start=start, days=days,
                          lookback="1d", cohort=_cohort(), ga=GAConfig(generations=2, population=4))
    return run_campaign(req, store)


def _day(report: dict, store) -> dict:
    """What must not depend on the store's later content: the day's figures, the
    agents (genomes, figures), parent figures, in/out of sample, the stored genomes."""
    (day,) = report["days"]
    run = store.get_run(day["run_id"])
    text = json.dumps({
        "report": {k: v for k, v in day.items() if k not in ("run_id",)},
        "seeded_from": report["seeded_from"],
        "stored_genomes": run["genomes"],
    }, sort_keys=True, default=str)
    return json.loads(text.replace(report["campaign_id"], "CAMPAIGN"))  # each campaign has its own id


@pytest.fixture(scope="module")
def later_store(tmp_path_factory):
    """A store holding a campaign over 2018-01-17 and 2018-01-18 on binance-5m."""
    path = tmp_path_factory.mktemp("later") / "s.db"
    with SQLiteStore(path) as st:
        _campaign(st, "2018-01-17", 2)
    return path


def _copy(later_store, tmp_path):
    copy = tmp_path / "s.db"
    copy.write_bytes(later_store.read_bytes())
    return SQLiteStore(copy)


def test_campaign_day_is_bit_identical_in_a_store_holding_later_days(later_store, tmp_path):
    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        alone = _day(_campaign(fresh, "2018-01-16", 1), fresh)
    with _copy(later_store, tmp_path) as st:
        again = _day(_campaign(st, "2018-01-16", 1), st)
    assert alone["seeded_from"] == again["seeded_from"] == "random"
    assert again == alone


def test_learning_cycle_ignores_populations_trained_later(later_store, tmp_path):
    def cycle(store):
        req = CycleRequest(source=Source(data=str(BINANCE), symbols=SYMBOLS), end="2018-01-17", lookback="2d",
                           ga=GAConfig(generations=1, population=4))
        res = learning_cycle(req, store)
        return res.seeded_from, [g.to_dict() for g in res.population], res.in_sample, res.out_of_sample

    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        alone = cycle(fresh)
    with _copy(later_store, tmp_path) as st:
        again = cycle(st)
    assert alone[0] == "random" and again == alone


def test_run_before_a_later_campaign_seeds_random_and_after_it_from_its_hall_of_fame(later_store, tmp_path):
    def run(store, start):
        req = _cohort(bars=BarsRequest(data=str(BINANCE), symbols=SYMBOLS, start=start))
        out = execute_cohort(req, store)
        return out.report["seeded_from"], [a["genome"] for a in out.report["agents"]], out.report["parent"]

    with SQLiteStore(tmp_path / "fresh.db") as fresh:
        alone = run(fresh, "2018-01-15")
    with _copy(later_store, tmp_path) as st:
        before = run(st, "2018-01-15")  # the campaign's genomes were bred on 01-16..18: not yet known
        after = run(st, "2018-01-19")  # trained on data up to 01-18: usable on the 19th
        note = st.get_run(st.list_runs(limit=1)[0]["run_id"])["config"]["seeding_note"]
    assert before[0] == "random" and before == alone
    assert after[0].startswith("hall_of_fame")
    assert "on data up to 2018-01-19 00:00 UTC" in note
