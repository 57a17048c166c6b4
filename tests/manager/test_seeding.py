"""Seeding never crosses markets (--seed-from latest|random|RUN_ID|FILE), and the
hall of fame keeps family diversity and each parameter set once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evolution.evolve import GAConfig, evolve, select_hall_of_fame
from evolution.genome import Genome
from manager.cli import app
from manager.seeding import market_identity
from manager.store import open_store
from simulator.data import load_market

from tests.helpers import SHARED_DATA as SHARED  # noqa: E402
BINANCE = SHARED / "binance-5m"
COINBASE = SHARED / "coinbase-1m"
EQUITIES = SHARED / "us-equities-1m"

runner = CliRunner()


def cli(*args, store_url):
    return runner.invoke(app, [str(a) for a in args] + ["--store", store_url], catch_exceptions=False)


def flat(text: str) -> str:
    """CLI output without rich's line wrapping."""
    return " ".join(text.split())


def run_json(tmp_path, store_url, *args) -> dict:
    out = tmp_path / "r.json"
    res = cli("run", "--no-progress", "--json", out, *args, store_url=store_url)
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def bred_store(tmp_path_factory):
    """A store that holds a population and hall of fame bred on binance-5m."""
    path = tmp_path_factory.mktemp("bred") / "s.db"
    url = f"sqlite:///{path}"
    res = cli("evolve", "--data", BINANCE, "--train-start", "2018-01-13", "--train-end", "2018-01-14",
              "--population", 12, "--generations", 3, "--no-progress", store_url=url)
    assert res.exit_code == 0, res.output
    return path


@pytest.fixture
def store_url(bred_store, tmp_path):
    copy = tmp_path / "s.db"
    copy.write_bytes(bred_store.read_bytes())
    return f"sqlite:///{copy}"


def test_market_identity_is_folder_timeframe_quote():
    m = load_market(BINANCE, ["ETH_BTC"], "2018-01-15", "2018-01-16")
    ident = market_identity(m)
    assert (ident.data, ident.timeframe, ident.quote) == ("binance-5m", "5m", "BTC")
    assert ident.key == "binance-5m|5m|BTC"


@pytest.mark.parametrize("data, extra", [
    (None, []),  # the default SYNTHETIC run (README command 1)
    (COINBASE, []),
    (EQUITIES, ["--quote", "USD"]),
])
def test_runs_on_other_markets_after_evolve_use_random_genomes(tmp_path, store_url, data, extra):
    args = (["--data", data] if data else []) + extra
    rep = run_json(tmp_path, store_url, *args)
    assert rep["seeded_from"] == "random"
    assert "nothing stored was bred on" in rep["seeding_note"]
    with open_store(store_url) as st:
        assert st.get_run(rep["run_id"])["config"]["seeded_from"] == "random"


def test_run_on_the_bred_market_seeds_from_its_hall_of_fame(tmp_path, store_url):
    rep = run_json(tmp_path, store_url, "--data", BINANCE, "--start", "2018-01-15", "--agents", 6)
    assert rep["seeded_from"] == "hall_of_fame"
    with open_store(store_url) as st:
        hof = st.latest_hall_of_fame(market="binance-5m|5m|BTC")
    assert [a["genome"]["family"] for a in sorted(rep["agents"], key=lambda a: a["agent_id"])] \
        == [Genome.from_dict(d).family for d in hof[:6]]


def test_run_on_a_symbol_subset_uses_only_covered_genomes(tmp_path, store_url):
    rep = run_json(tmp_path, store_url, "--data", BINANCE, "--symbols", "ETH_BTC", "--start", "2018-01-15",
                   "--agents", 4)
    assert rep["seeded_from"] in ("random", "hall_of_fame", "hall_of_fame+random")
    assert all(a["genome"]["symbols"] == ["ETH_BTC"] for a in rep["agents"])


def test_seed_from_random_run_id_and_file(tmp_path, store_url):
    first = run_json(tmp_path, store_url, "--data", BINANCE, "--start", "2018-01-15", "--agents", 5,
                     "--seed-from", "random")
    assert first["seeded_from"] == "random"
    again = run_json(tmp_path, store_url, "--data", BINANCE, "--start", "2018-01-16", "--agents", 5,
                     "--seed-from", first["run_id"])
    assert again["seeded_from"] == f"run:{first['run_id']}"
    assert sorted(json.dumps(a["genome"], sort_keys=True) for a in again["agents"]) == \
        sorted(json.dumps(a["genome"], sort_keys=True) for a in first["agents"])
    # a run of another market is refused with both markets named
    res = cli("run", "--no-progress", "--data", COINBASE, "--seed-from", first["run_id"], store_url=store_url)
    assert res.exit_code == 2
    assert "binance-5m|5m|BTC" in flat(res.output) and "coinbase-1m|1m|USD" in flat(res.output)
    # neither a run nor a file
    res = cli("run", "--no-progress", "--seed-from", "no-such-thing", store_url=store_url)
    assert res.exit_code == 2 and "neither a stored run id nor a genomes file" in flat(res.output)
    # a file
    gfile = tmp_path / "g.json"
    gfile.write_text(json.dumps([a["genome"] for a in first["agents"][:2]]))
    rep = run_json(tmp_path, store_url, "--data", BINANCE, "--start", "2018-01-15", "--agents", 3,
                   "--seed-from", gfile)
    assert rep["seeded_from"] == "file+random"


def test_learn_and_campaign_on_another_market_after_evolve(tmp_path, store_url):
    out = tmp_path / "learn.json"
    res = cli("learn", "--data", COINBASE, "--lookback", "24h", "--generations", 1, "--population", 6,
              "--no-progress", "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["seeded_from"] == "random"
    camp = tmp_path / "camp.json"
    res = cli("campaign", "--start", "2024-01-05", "--days", 1, "--lookback", "1d", "--agents", 4,
              "--generations", 1, "--no-progress", "--json", camp, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert json.loads(camp.read_text())["seeded_from"] == "random"
    # learning on the bred market starts from its population
    res = cli("learn", "--data", BINANCE, "--end", "2018-01-16", "--lookback", "2d", "--generations", 1,
              "--population", 6, "--no-progress", "--json", out, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["seeded_from"].startswith("population:daily-")


# -- hall of fame ----------------------------------------------------------------


def _g(family, **params):
    return Genome.from_dict({"family": family, "params": params, "symbols": ["ETH_BTC"]})


def _st(sharpe, trades=5):
    return {"roi": sharpe / 100, "sharpe": sharpe, "max_drawdown": 0.01, "trades": trades}


def test_select_hall_of_fame_dedups_and_keeps_families():
    d1 = _g("donchian_breakout", entry=20, exit=10)
    ranked = [
        (d1, _st(30)),
        (Genome.from_dict({**{k: v for k, v in d1.to_dict().items() if k != "genome_id"}, "leverage": 1.5}),
         _st(29)),  # same parameter set, other risk gene
        (_g("donchian_breakout", entry=21, exit=10), _st(28)),
        (_g("donchian_breakout", entry=22, exit=10), _st(28)),  # identical stats: same behaviour
        (_g("donchian_breakout", entry=30, exit=12), _st(27)),
        (_g("sma_cross", fast=5, slow=20), _st(3)),
        (_g("sma_cross", fast=6, slow=20), _st(2)),
        (_g("sma_cross", fast=7, slow=20), _st(1)),
        (_g("rsi_reversion"), _st(-1)),
    ]
    hof = select_hall_of_fame(ranked, size=5, min_per_family=2)
    names = [(g.family, g.params.get("entry", g.params.get("fast"))) for g, _ in hof]
    assert names == [("donchian_breakout", 20), ("donchian_breakout", 21), ("sma_cross", 5), ("sma_cross", 6),
                     ("rsi_reversion", None)]
    keys = [json.dumps([g.family, g.params], sort_keys=True) for g, _ in hof]
    assert len(set(keys)) == len(keys)
    # without the diversity rule the best distinct ones win
    top = select_hall_of_fame(ranked, size=3, min_per_family=0)
    assert [g.params.get("entry") for g, _ in top] == [20, 21, 30]


def test_evolved_hall_of_fame_keeps_every_family_and_no_duplicate_parameter_sets():
    m = load_market(BINANCE, None, "2018-01-13", "2018-01-15", warmup_bars=200)
    res = evolve(m, [], config=GAConfig(generations=6, population=18, min_per_family=2, hof_size=20), seed=3)
    hof = res.hall_of_fame
    keys = [json.dumps([g.family, g.params], sort_keys=True) for g, _ in hof]
    assert len(set(keys)) == len(keys), "identical parameter sets in the hall of fame"
    behaviours = [(g.family, st["roi"], st["sharpe"], st["max_drawdown"], st["trades"]) for g, st in hof]
    assert len(set(behaviours)) == len(behaviours)
    fams = {}
    for g, _ in hof:
        fams[g.family] = fams.get(g.family, 0) + 1
    # every family of the final population is there, with two entries when it has two distinct genomes
    distinct: dict[str, set] = {}
    for g, st in zip(res.population, res.fitness):
        distinct.setdefault(g.family, set()).add((st["roi"], st["sharpe"], st["max_drawdown"], st["trades"]))
    assert set(distinct) <= set(fams)
    assert all(fams[f] >= min(2, len(v)) for f, v in distinct.items()), (fams, distinct)
    assert max(fams.values()) < len(hof)  # no single family fills it
