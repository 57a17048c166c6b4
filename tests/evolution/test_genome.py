"""Genomes (evolution.genome) and the DEAP toolbox that samples them (evolution.toolbox)."""
from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import random
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolution.genome import (
    LEVERAGE_LIMIT,
    RISK_GENE_NAMES,
    RISK_GENES,
    Genome,
    GenomeError,
    load_genomes,
    risk_genes,
    save_genomes,
)
from evolution.toolbox import make_toolbox, random_genomes, sample_param
from simulator.strategies.base import Param, Strategy, StrategyError

SYMBOLS = ("BTC_USDT", "ETH_USDT", "SOL_USDT", "XRP_USDT")


# -- test families ---------------------------------------------------------------


class Cross(Strategy):
    """Two lookbacks with a cross-parameter rule (fast < slow) and a repair."""

    name = "t_cross"
    params = (
        Param("fast", "int", 5, 2, 60, help="bars"),
        Param("slow", "int", 20, 3, 60, help="bars"),
        Param("ma", "categorical", "sma", choices=("sma", "ema", "wma")),
    )

    def check(self, values):
        if values["fast"] >= values["slow"]:
            raise StrategyError(f"fast={values['fast']} must be < slow={values['slow']}")

    def repair(self, values):
        v = dict(values)
        if v["fast"] >= v["slow"]:
            v["fast"], v["slow"] = v["slow"], v["fast"]
        if v["fast"] == v["slow"]:
            if v["slow"] < 60:
                v["slow"] += 1
            else:
                v["fast"] -= 1
        return v

    def targets(self, market, param_sets):
        return np.zeros((len(param_sets), len(market.timestamps), len(market.symbols)))


class Band(Strategy):
    """Float and categorical parameters, no cross rule."""

    name = "t_band"
    params = (
        Param("lookback", "int", 20, 5, 400, help="bars"),
        Param("width", "float", 2.0, 0.5, 4.0, help="standard deviations"),
        Param("side", "categorical", "both", choices=("long", "short", "both")),
    )

    def targets(self, market, param_sets):
        return np.zeros((len(param_sets), len(market.timestamps), len(market.symbols)))


class Bare(Strategy):
    """A family with no parameters at all."""

    name = "t_bare"
    params = ()

    def targets(self, market, param_sets):
        return np.zeros((len(param_sets), len(market.timestamps), len(market.symbols)))


class BrokenRepair(Cross):
    """repair() that does not fix anything: sampling must report it, not hide it."""

    name = "t_broken"

    def repair(self, values):
        return dict(values, fast=60, slow=3)


FAMILIES = {"t_cross": Cross(), "t_band": Band(), "t_bare": Bare()}


def six_families():
    """Six distinct families, like the real registry has."""
    out = {}
    for i in range(6):
        base_cls = (Cross, Band, Bare)[i % 3]
        cls = type(f"Fam{i}", (base_cls,), {"name": f"fam{i}"})
        out[f"fam{i}"] = cls()
    return out


def risk_param(name):
    return RISK_GENES[RISK_GENE_NAMES.index(name)]


def assert_within(gene: Param, value):
    """Independent bound check (does not call Param.coerce)."""
    if gene.kind == "int":
        assert isinstance(value, int) and not isinstance(value, bool), (gene.name, value)
    else:
        assert isinstance(value, float), (gene.name, value)
    assert gene.low <= value <= gene.high, (gene.name, value, gene.low, gene.high)


# -- hypothesis strategies -------------------------------------------------------


def param_values(p: Param):
    if p.kind == "categorical":
        return st.sampled_from(p.choices)
    if p.kind == "int":
        return st.integers(int(p.low), int(p.high))
    return st.floats(p.low, p.high, allow_nan=False, allow_infinity=False)


@st.composite
def genomes(draw, families=FAMILIES, max_leverage=LEVERAGE_LIMIT):
    name = draw(st.sampled_from(sorted(families)))
    strategy = families[name]
    params = strategy.validate(strategy.repair({p.name: draw(param_values(p)) for p in strategy.params}))
    genes = {}
    for g in risk_genes(max_leverage):
        value = draw(param_values(g))
        if g.name == "size" and value == 0.0:
            value = 1.0
        genes[g.name] = value
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, unique=True))
    generation = draw(st.integers(0, 10_000))
    parents = tuple(draw(st.lists(st.text("0123456789abcdef", min_size=10, max_size=10), max_size=2)))
    return Genome(name, params, symbols=symbols, generation=generation, parents=parents, **genes)


# -- round trip --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(genomes())
def test_dict_and_json_round_trip(genome):
    d = genome.to_dict()
    assert json.loads(json.dumps(d)) == d  # JSON-ready
    back = Genome.from_dict(d, families=FAMILIES, symbols=SYMBOLS)
    assert back == genome
    assert back.genome_id == genome.genome_id == d["genome_id"]
    assert (back.generation, back.parents) == (genome.generation, genome.parents)
    again = Genome.from_json(genome.to_json(), families=FAMILIES, symbols=SYMBOLS)
    assert again == genome and again.to_json() == genome.to_json()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(genomes(), max_size=8), st.booleans())
def test_file_round_trip(tmp_path, items, wrapped):
    path = tmp_path / "genomes.json"
    save_genomes(path, items)
    assert load_genomes(path, families=FAMILIES, symbols=SYMBOLS) == items
    # the bare-list form is accepted too
    bare = tmp_path / "bare.json"
    payload = [g.to_dict() for g in items]
    bare.write_text(json.dumps({"genomes": payload, "note": "x"} if wrapped else payload))
    assert load_genomes(bare, families=FAMILIES) == items


def test_sampled_population_round_trips_through_a_file(tmp_path):
    pop = random_genomes(30, SYMBOLS, seed=3, max_leverage=4.0, families=six_families())
    path = save_genomes(tmp_path / "pop.json", pop)
    assert json.loads(path.read_text())["genomes"][0]["family"] == "fam0"
    assert load_genomes(path, families=six_families(), symbols=SYMBOLS, max_leverage=4.0) == pop
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_from_dict_fills_defaults_and_normalises():
    g = Genome.from_dict(
        {"family": "t_cross", "params": {"fast": "7"}, "symbols": ["SOL_USDT", "BTC_USDT"],
         "stop_loss": 0, "max_hold_bars": 30.0, "leverage": 2},
        families=FAMILIES,
    )
    assert g.params == {"fast": 7, "slow": 20, "ma": "sma"}
    assert g.symbols == ("BTC_USDT", "SOL_USDT")
    assert g.size == 1.0 and g.take_profit == 0.0
    assert isinstance(g.stop_loss, float) and isinstance(g.leverage, float) and g.leverage == 2.0
    assert isinstance(g.max_hold_bars, int) and g.max_hold_bars == 30
    # the omitted-defaults form has the same id as the explicit one
    explicit = Genome("t_cross", {"fast": 7, "slow": 20, "ma": "sma"}, symbols=("BTC_USDT", "SOL_USDT"),
                      max_hold_bars=30, leverage=2.0)
    assert explicit.genome_id == g.genome_id


# -- genome_id ------------------------------------------------------------------------


def test_genome_id_is_sha1_of_canonical_content_without_genealogy():
    g = Genome("t_band", {"lookback": 20, "width": 2.0, "side": "both"}, symbols=("ETH_USDT", "BTC_USDT"),
               size=0.5, stop_loss=0.01, take_profit=0.02, max_hold_bars=10, leverage=1.5)
    content = {"family": "t_band", "params": {"lookback": 20, "side": "both", "width": 2.0},
               "symbols": ["BTC_USDT", "ETH_USDT"], "size": 0.5, "stop_loss": 0.01,
               "take_profit": 0.02, "max_hold_bars": 10, "leverage": 1.5}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert g.genome_id == hashlib.sha1(canonical.encode()).hexdigest()[:10]
    child = Genome(**{**g.__dict__, "generation": 4, "parents": ("a" * 10, "b" * 10)})
    assert child.genome_id == g.genome_id
    assert hash(child) == hash(g)
    # symbol order is irrelevant
    assert Genome(**{**g.__dict__, "symbols": ("BTC_USDT", "ETH_USDT")}).genome_id == g.genome_id


@pytest.mark.parametrize(
    "change",
    [{"family": "t_cross", "params": {}}, {"params": {"lookback": 21, "width": 2.0, "side": "both"}},
     {"size": 0.6}, {"stop_loss": 0.0}, {"take_profit": 0.0}, {"max_hold_bars": 11},
     {"leverage": 1.0}, {"symbols": ("BTC_USDT",)}],
)
def test_genome_id_changes_with_every_heritable_field(change):
    g = Genome("t_band", {"lookback": 20, "width": 2.0, "side": "both"}, symbols=("ETH_USDT", "BTC_USDT"),
               size=0.5, stop_loss=0.01, take_profit=0.02, max_hold_bars=10, leverage=1.5)
    assert Genome(**{**g.__dict__, **change}).genome_id != g.genome_id


def test_stale_genome_id_in_a_dict_is_rejected():
    d = Genome("t_bare", {}, symbols=("BTC_USDT",)).to_dict()
    d["size"] = 0.25
    with pytest.raises(GenomeError, match=rf"genome_id='{d['genome_id']}' does not match"):
        Genome.from_dict(d, families=FAMILIES)
    del d["genome_id"]
    assert Genome.from_dict(d, families=FAMILIES).size == 0.25


def test_genome_survives_pickle_and_deepcopy():
    import copy
    import pickle

    g = random_genomes(1, SYMBOLS, seed=0, families=FAMILIES)[0]
    for other in (pickle.loads(pickle.dumps(g)), copy.deepcopy(g)):
        assert other == g and other.genome_id == g.genome_id and other.params is not g.params


def test_genome_is_frozen():
    g = Genome("t_bare", {}, symbols=("BTC_USDT",))
    with pytest.raises(AttributeError):
        g.size = 0.5  # type: ignore[misc]


# -- sampling: bounds ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(-(2**63), 2**63),
    max_leverage=st.sampled_from([1.0, 1.5, 3, 10.0]),
    min_symbols=st.integers(1, 4),
    extra=st.integers(0, 3),
)
def test_every_sampled_genome_is_within_bounds(seed, max_leverage, min_symbols, extra):
    max_symbols = min(len(SYMBOLS), min_symbols + extra)
    families = {**FAMILIES, "t_cross": Cross()}
    tb = make_toolbox(SYMBOLS, max_leverage=max_leverage, families=families, seed=seed,
                      min_symbols=min_symbols, max_symbols=max_symbols)
    pop = tb.population(12) + [tb.genome() for _ in range(6)]
    for g in pop:
        strategy = families[g.family]
        for p in strategy.params:
            if p.kind == "categorical":
                assert g.params[p.name] in p.choices
            else:
                assert_within(p, g.params[p.name])
        assert set(g.params) == {p.name for p in strategy.params}
        if g.family == "t_cross":
            assert g.params["fast"] < g.params["slow"]  # repaired
        for gene in RISK_GENES:
            assert_within(gene, getattr(g, gene.name))
        assert g.size > 0.0
        assert 1.0 <= g.leverage <= max_leverage
        assert min_symbols <= len(g.symbols) <= max_symbols
        assert set(g.symbols) <= set(SYMBOLS) and list(g.symbols) == sorted(g.symbols)
        assert (g.generation, g.parents) == (0, ())
        # the sampled genome passes full validation unchanged
        assert g.validated(families, SYMBOLS, max_leverage) == g


def test_sampling_covers_each_space():
    """Uniform draws reach both ends of int ranges, every choice, and spread floats."""
    rng = random.Random(1)
    ints = collections.Counter(sample_param(Param("k", "int", 2, 0, 3), rng) for _ in range(400))
    assert set(ints) == {0, 1, 2, 3} and min(ints.values()) > 60
    cats = collections.Counter(sample_param(Param("c", "categorical", "a", choices=("a", "b", "c")), rng)
                               for _ in range(300))
    assert set(cats) == {"a", "b", "c"} and min(cats.values()) > 60
    floats = [sample_param(risk_param("stop_loss"), rng) for _ in range(2000)]
    assert 0.0 <= min(floats) < 0.01 and 0.19 < max(floats) <= 0.2
    assert abs(np.mean(floats) - 0.1) < 0.01
    sizes = [sample_param(risk_param("size"), rng) for _ in range(2000)]
    assert min(sizes) > 0.0 and max(sizes) <= 1.0


def test_leverage_ceiling_of_one_pins_leverage():
    pop = random_genomes(20, SYMBOLS, seed=9, families=FAMILIES)
    assert {g.leverage for g in pop} == {1.0}
    wide = random_genomes(20, SYMBOLS, seed=9, max_leverage=5.0, families=FAMILIES)
    assert max(g.leverage for g in wide) > 1.5


def test_symbol_count_limits():
    tb = make_toolbox(SYMBOLS, families=FAMILIES, seed=2, min_symbols=2, max_symbols=2)
    assert {len(g.symbols) for g in tb.population(30)} == {2}
    tb = make_toolbox(SYMBOLS, families=FAMILIES, seed=2)
    assert {len(g.symbols) for g in tb.population(60)} == {1, 2, 3, 4}


def test_family_whose_repair_fails_is_reported():
    tb = make_toolbox(SYMBOLS, families={"t_broken": BrokenRepair()}, seed=0)
    with pytest.raises(GenomeError, match=r"t_broken: repair\(\) returned an invalid parameter set.*fast=60"):
        tb.genome()


# -- sampling: reproducibility and spread ----------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_same_seed_same_population_other_seed_different(seed):
    kw = dict(max_leverage=3.0, families=six_families())
    a = random_genomes(30, SYMBOLS, seed=seed, **kw)
    b = random_genomes(30, SYMBOLS, seed=seed, **kw)
    c = random_genomes(30, SYMBOLS, seed=seed + 1, **kw)
    assert [g.to_dict() for g in a] == [g.to_dict() for g in b]
    assert [g.genome_id for g in a] != [g.genome_id for g in c]
    assert len({g.genome_id for g in a}) == 30  # no accidental clones


def test_sampling_does_not_touch_global_random_state():
    random.seed(123)
    np.random.seed(123)
    state, np_state = random.getstate(), np.random.get_state()
    random_genomes(30, SYMBOLS, seed=5, families=FAMILIES)
    assert random.getstate() == state
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    # and global state does not influence sampling
    random.seed(999)
    x = random_genomes(5, SYMBOLS, seed=5, families=FAMILIES)
    random.seed(1)
    assert random_genomes(5, SYMBOLS, seed=5, families=FAMILIES) == x


def test_family_and_symbol_order_do_not_matter():
    fams = six_families()
    reordered = dict(reversed(list(fams.items())))
    a = random_genomes(12, SYMBOLS, seed=4, families=fams)
    b = random_genomes(12, tuple(reversed(SYMBOLS)), seed=4, families=reordered)
    assert a == b


def test_population_spreads_families_round_robin():
    pop = random_genomes(30, SYMBOLS, seed=0, families=six_families())
    assert collections.Counter(g.family for g in pop) == {f"fam{i}": 5 for i in range(6)}
    assert [g.family for g in pop[:7]] == [f"fam{i}" for i in range(6)] + ["fam0"]
    uneven = make_toolbox(SYMBOLS, families=FAMILIES, seed=0).population(7)
    assert [g.family for g in uneven] == ["t_band", "t_bare", "t_cross"] * 2 + ["t_band"]
    assert make_toolbox(SYMBOLS, families=FAMILIES, seed=0).population(0) == []


def test_random_genome_family_is_uniform():
    tb = make_toolbox(SYMBOLS, families=six_families(), seed=8)
    counts = collections.Counter(tb.genome().family for _ in range(600))
    assert set(counts) == set(six_families()) and min(counts.values()) > 60


# -- toolbox idiom ----------------------------------------------------------------------------


def test_operators_are_registered_by_name_and_swappable():
    tb = make_toolbox(SYMBOLS, families=FAMILIES, seed=0)
    for name in ("param_value", "params_for_family", "risk_genes", "symbols_subset",
                 "genome_for_family", "genome", "population"):
        assert callable(getattr(tb, name)), name
    g = tb.genome_for_family("t_band")
    assert g.family == "t_band" and g.validated(FAMILIES) == g

    # swap a low-level operator: population is built through it
    tb.register("risk_genes", lambda: {"size": 0.5, "leverage": 1.0})
    tb.register("symbols_subset", lambda: ("ETH_USDT",))
    pop = tb.population(6)
    assert {(g.size, g.symbols) for g in pop} == {(0.5, ("ETH_USDT",))}

    # unregister + register a whole genome operator
    tb.unregister("genome_for_family")
    tb.register("genome_for_family", lambda name: Genome(name, {}, symbols=("BTC_USDT",)))
    assert {g.params.get("fast") for g in tb.population(3)} == {None}


def test_make_toolbox_twice_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_toolbox(SYMBOLS, families=FAMILIES, seed=1)
        make_toolbox(SYMBOLS, families=FAMILIES, seed=1)


# -- validation errors ------------------------------------------------------------------------


def valid(**over):
    d = {"family": "t_cross", "params": {"fast": 5, "slow": 20}, "symbols": ["BTC_USDT"],
         "size": 0.5, "stop_loss": 0.05, "take_profit": 0.1, "max_hold_bars": 100, "leverage": 2.0}
    d.update(over)
    return d


@pytest.mark.parametrize(
    "over, pattern",
    [
        ({"family": "nope"}, r"family 'nope' is unknown; available: t_band, t_bare, t_cross"),
        ({"params": {"fast": 1}}, r"t_cross.*fast=1 is out of bounds; allowed: int in \[2, 60\]"),
        ({"params": {"fast": 30, "slow": 10}}, r"fast=30 must be < slow=10"),
        ({"params": {"fats": 5}}, r"no parameter 'fats'"),
        ({"params": {"ma": "hull"}}, r"ma='hull' is not allowed; allowed: one of sma, ema, wma"),
        ({"params": [5, 20]}, r"params=\[5, 20\] is not a mapping"),
        ({"size": 0}, r"size=0 is out of bounds; allowed: float in \(0.0, 1.0\]"),
        ({"size": 1.5}, r"size=1.5 is out of bounds; allowed: float in \(0.0, 1.0\]"),
        ({"size": True}, r"size=True is not a number"),
        ({"stop_loss": 0.25}, r"stop_loss=0.25 is out of bounds; allowed: float in \[0.0, 0.2\]"),
        ({"stop_loss": -0.01}, r"stop_loss=-0.01 is out of bounds"),
        ({"take_profit": 0.51}, r"take_profit=0.51 is out of bounds; allowed: float in \[0.0, 0.5\]"),
        ({"take_profit": float("nan")}, r"take_profit=nan is not finite"),
        ({"max_hold_bars": 2001}, r"max_hold_bars=2001 is out of bounds; allowed: int in \[0, 2000\]"),
        ({"max_hold_bars": 2.5}, r"max_hold_bars=2.5 is not an integer"),
        ({"leverage": 0.5}, r"leverage=0.5 is out of bounds; allowed: float in \[1.0, 100.0\]"),
        ({"leverage": "high"}, r"leverage='high' is not a number"),
        ({"symbols": []}, r"symbols=\[\] is empty; allowed: at least one symbol"),
        ({"symbols": "BTC_USDT"}, r"symbols='BTC_USDT' is not a list"),
        ({"symbols": ["BTC_USDT", "BTC_USDT"]}, r"lists \['BTC_USDT'\] more than once"),
        ({"symbols": ["BTC_USDT", ""]}, r"symbols contains '', which is not a non-empty string"),
        ({"symbols": ["BTC_USDT", "DOGE_USDT"]}, r"symbols \['DOGE_USDT'\] are not market symbols; available: BTC_USDT"),
        ({"leverage": 3.5}, r"leverage=3.5 exceeds the cohort ceiling max_leverage=3.0; allowed: float in \[1.0, 3.0\]"),
        ({"generation": -1}, r"generation=-1 is not allowed; allowed: an integer >= 0"),
        ({"parents": "abc"}, r"parents='abc' is not a list of genome ids"),
        ({"stoploss": 0.1}, r"unknown key\(s\) \['stoploss'\]; allowed: family, params, symbols, size"),
    ],
)
def test_validation_errors_name_the_value(over, pattern):
    with pytest.raises(GenomeError, match=pattern):
        Genome.from_dict(valid(**over), families=FAMILIES, symbols=SYMBOLS, max_leverage=3.0)


@pytest.mark.parametrize("missing", ["family", "symbols"])
def test_missing_required_key(missing):
    d = valid()
    del d[missing]
    with pytest.raises(GenomeError, match=rf"missing required key '{missing}'"):
        Genome.from_dict(d, families=FAMILIES)


def test_leverage_above_ceiling_is_fine_without_a_ceiling():
    assert Genome.from_dict(valid(leverage=3.5), families=FAMILIES).leverage == 3.5


def test_from_json_rejects_bad_json_and_non_objects():
    with pytest.raises(GenomeError, match=r"genome JSON is invalid: .*line 1 column"):
        Genome.from_json("{family:", families=FAMILIES)
    with pytest.raises(GenomeError, match=r"genome \[1, 2\] is not a JSON object"):
        Genome.from_json("[1, 2]", families=FAMILIES)


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("[{]", r"invalid JSON: .*line 1 column 3"),
        ('"genomes"', r"top level is str; allowed: a list of genomes"),
        ('{"population": []}', r"object has no 'genomes' key \(keys: \['population'\]\)"),
        ('{"genomes": {"a": 1}}', r"top level is dict"),
        (json.dumps([valid(), valid(), valid(size=2)]), r"genome at index 2: .*size=2 is out of bounds"),
        (json.dumps({"genomes": [valid(), 7]}), r"genome at index 1: genome 7 is not a JSON object"),
        (json.dumps([valid(family="sma_crossx")]), r"genome at index 0: .*'sma_crossx' is unknown"),
    ],
)
def test_malformed_file_names_file_and_index(tmp_path, content, pattern):
    path = tmp_path / "bad_genomes.json"
    path.write_text(content)
    with pytest.raises(GenomeError, match=pattern) as info:
        load_genomes(path, families=FAMILIES, symbols=SYMBOLS)
    assert str(path) in str(info.value)


def test_missing_file_and_bad_save_items(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(GenomeError, match=r"absent.json: cannot read"):
        load_genomes(path, families=FAMILIES)
    with pytest.raises(GenomeError, match=r"item at index 1 is \{'family': 'x'\}, not a Genome"):
        save_genomes(tmp_path / "x.json", [Genome("t_bare", {}, symbols=("A",)), {"family": "x"}])
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"symbols": []}, r"symbols=\[\] is empty"),
        ({"max_leverage": 0.5}, r"max_leverage=0.5 is out of bounds; allowed: a number in \[1.0, 100.0\]"),
        ({"max_leverage": 101}, r"max_leverage=101 is out of bounds"),
        ({"max_leverage": "2"}, r"max_leverage='2' is not a number"),
        ({"seed": 1.5}, r"seed=1.5 is not an integer"),
        ({"min_symbols": 0}, r"min_symbols=0 is out of bounds; allowed: an integer in \[1, 4\]"),
        ({"min_symbols": 5}, r"min_symbols=5 is out of bounds; allowed: an integer in \[1, 4\]"),
        ({"min_symbols": 3, "max_symbols": 2}, r"max_symbols=2 is out of bounds; allowed: an integer in \[3, 4\]"),
        ({"families": {}}, r"families is empty"),
        ({"families": {"x": Band}}, r"family 'x' maps to .*not a Strategy instance"),
    ],
)
def test_toolbox_configuration_errors(kwargs, pattern):
    args = {"symbols": SYMBOLS, "families": FAMILIES, **kwargs}
    with pytest.raises(GenomeError, match=pattern):
        make_toolbox(args.pop("symbols"), **args)


def test_toolbox_rejects_unknown_family_and_bad_population_size():
    tb = make_toolbox(SYMBOLS, families=FAMILIES, seed=0)
    with pytest.raises(GenomeError, match=r"family 'sma_cross' is unknown; available: t_band, t_bare, t_cross"):
        tb.genome_for_family("sma_cross")
    with pytest.raises(GenomeError, match=r"population size n=-1 is out of bounds"):
        tb.population(-1)
    with pytest.raises(GenomeError, match=r"population size n=2.0 is not an integer"):
        tb.population(2.0)


# -- the real registry --------------------------------------------------------------------------

REAL_FAMILIES = ["bollinger_reversion", "donchian_breakout", "ema_macd", "rsi_reversion", "sma_cross",
                 "vwap_deviation"]
registry_present = importlib.util.find_spec("simulator.strategies.registry") is not None


@pytest.mark.skipif(not registry_present, reason="simulator.strategies.registry not written yet")
def test_real_registry_population_round_trip(tmp_path):
    from simulator.strategies import registry

    assert sorted(registry.available()) == REAL_FAMILIES
    pop = random_genomes(30, SYMBOLS, seed=11, max_leverage=2.0)  # families=None -> registry
    assert collections.Counter(g.family for g in pop) == {f: 5 for f in REAL_FAMILIES}
    for g in pop:
        strategy = registry.get_strategy(g.family)
        assert strategy.validate(g.params) == g.params
        assert 1.0 <= g.leverage <= 2.0
    path = save_genomes(tmp_path / "pop.json", pop)
    assert load_genomes(path, symbols=SYMBOLS, max_leverage=2.0) == pop
    with pytest.raises(GenomeError, match=r"available: " + ", ".join(REAL_FAMILIES)):
        Genome.from_dict({"family": "nope", "symbols": ["BTC_USDT"]})


@pytest.mark.skipif(not registry_present, reason="simulator.strategies.registry not written yet")
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_real_registry_samples_are_valid_for_any_seed(seed):
    from simulator.strategies import registry

    for g in random_genomes(30, SYMBOLS, seed=seed, max_leverage=3.0):
        strategy = registry.get_strategy(g.family)
        assert strategy.validate(g.params) == g.params  # repair made every draw valid
        for p in strategy.params:
            if p.kind == "categorical":
                assert g.params[p.name] in p.choices
            else:
                assert_within(p, g.params[p.name])
        assert g.validated(symbols=SYMBOLS, max_leverage=3.0) == g
