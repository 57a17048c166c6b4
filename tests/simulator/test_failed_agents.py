"""An agent whose strategy errors is a failed agent; its cohort still completes.
The erroring strategy is a real plugin installed through the entry-point group."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from evolution.genome import Genome
from manager import metrics
from simulator.cohort import simulate_cohort
from simulator.data import load_market
from simulator.ledger import verify_journal
from simulator.strategies import registry
from tests.helpers import BINANCE

PLUGIN = '''
import numpy as np
from simulator.strategies.base import Param, Strategy


class Fragile(Strategy):
    name = "fragile_test"
    description = "long always; raises for mood=broken"
    params = (Param("mood", "categorical", "fine", choices=("fine", "broken")),)

    def targets(self, market, param_sets):
        if any(p["mood"] == "broken" for p in param_sets):
            raise RuntimeError("fragile strategy broke")
        return np.ones((len(param_sets),) + market.close.shape)
'''


@pytest.fixture
def fragile(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    (root / "fragile_plugin.py").write_text(PLUGIN)
    info = root / "fragile_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fragile-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [cohortlab.strategies]
        fragile_test = fragile_plugin:Fragile
    """))
    monkeypatch.syspath_prepend(str(root))
    registry.refresh()
    yield
    monkeypatch.undo()
    sys.modules.pop("fragile_plugin", None)
    registry.refresh()


def test_an_erroring_agent_is_sat_out_and_the_cohort_completes(fragile):
    market = load_market(BINANCE, start="2018-01-15", end="2018-01-16", warmup_bars=50)
    agents = [Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC",)),
              Genome("fragile_test", {"mood": "broken"}, symbols=("ETH_BTC",)),
              Genome("fragile_test", {"mood": "fine"}, symbols=("LTC_BTC",))]
    before = metrics.FAILED_AGENTS._value.get()
    res = simulate_cohort(market, agents, bankroll=300.0)
    assert [f["agent_id"] for f in res.failed_agents] == ["a01"]
    assert "fragile strategy broke" in res.failed_agents[0]["error"]
    rows = {r["agent_id"]: r for r in res.scores}
    assert rows["a01"]["failed"] and rows["a01"]["trades"] == 0
    assert rows["a01"]["final_equity"] == pytest.approx(rows["a01"]["allocated"])
    # the healthy agents of the same family and of another family still traded
    assert rows["a02"]["trades"] >= 1 and not rows["a02"]["failed"]
    assert rows["a00"]["trades"] >= 1
    assert res.parent["failed_agents"] == 1 and res.ledger_ok
    assert verify_journal(res.journal, res.state).ok
    metrics.record_cohort(1.0, len(res.failed_agents), res.parent["peak_utilisation"])
    assert metrics.FAILED_AGENTS._value.get() == before + 1
    body, _ = metrics.exposition()
    assert b"cohortlab_failed_agents_total" in body and b"cohortlab_bankroll_utilisation_ratio" in body
    assert np.isfinite(res.parent["final_equity"])
