"""Variation operators (evolution.operators) and their toolbox registration."""
from __future__ import annotations

import contextlib
import itertools
import logging
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolution.genome import RISK_GENE_NAMES, Genome, GenomeError, risk_genes
from evolution.operators import crossover, mutate
from evolution.toolbox import make_toolbox
from simulator.strategies import registry
from simulator.strategies.base import Param, Strategy, StrategyError

REAL = registry.all_strategies()
POOL = ("ADA_USDT", "BTC_USDT", "DOGE_USDT", "ETH_USDT", "LTC_USDT", "SOL_USDT", "XRP_USDT", "DOT_USDT")
SYMBOLS = POOL[:4]


# -- test families: categorical parameters (the real ones have none) and a broken repair --------


class Mixed(Strategy):
    """Int, float and categorical parameters, no cross-parameter rule."""

    name = "t_mixed"
    params = (
        Param("lookback", "int", 20, 5, 400, help="bars"),
        Param("width", "float", 2.0, 0.5, 4.0, help="standard deviations"),
        Param("side", "categorical", "both", choices=("long", "short", "both")),
        Param("ma", "categorical", "sma", choices=("sma", "ema")),
    )

    def targets(self, market, param_sets):  # pragma: no cover - never simulated here
        return np.zeros((len(param_sets), market.n_bars, len(market.symbols)))


class Unrepairable(Mixed):
    """``check`` rejects every lookback but 20 and ``repair`` fixes nothing."""

    name = "t_unrepairable"

    def check(self, values):
        if values["lookback"] != 20:
            raise StrategyError(f"lookback={values['lookback']} must be 20")


TEST_FAMILIES = {"t_mixed": Mixed()}


# -- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def no_fallback():
    """Fail if an operator fell back to copying a parent (logged as a warning)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("evolution.operators")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]


@contextlib.contextmanager
def captured_warnings():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("evolution.operators")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def assert_value(p: Param, value):
    """Independent type and bound check (does not call Param.coerce)."""
    if p.kind == "categorical":
        assert value in p.choices, (p.name, value)
        return
    if p.kind == "int":
        assert isinstance(value, int) and not isinstance(value, bool), (p.name, value)
    else:
        assert type(value) is float, (p.name, value)
    assert p.low <= value <= p.high, (p.name, value, p.low, p.high)
    if getattr(p, "open_low", False):
        assert value > p.low, (p.name, value)


def assert_valid(child: Genome, families, market, ceiling, generation, parents):
    assert child.validated(families, symbols=market, max_leverage=ceiling) == child
    strategy = families[child.family]
    assert set(child.params) == {p.name for p in strategy.params}
    for p in strategy.params:
        assert_value(p, child.params[p.name])
    for gene in risk_genes(ceiling):
        assert_value(gene, getattr(child, gene.name))
    assert child.symbols and set(child.symbols) <= set(market)
    assert child.generation == generation
    assert child.parents == parents


def risk(g: Genome) -> tuple:
    return tuple(getattr(g, n) for n in RISK_GENE_NAMES)


def param_values(p: Param):
    if p.kind == "categorical":
        return st.sampled_from(p.choices)
    if p.kind == "int":
        return st.integers(int(p.low), int(p.high))
    return st.floats(p.low, p.high, allow_nan=False, allow_infinity=False)


@st.composite
def genomes(draw, families, market, ceiling, family=None):
    name = family or draw(st.sampled_from(sorted(families)))
    strategy = families[name]
    params = strategy.validate(strategy.repair({p.name: draw(param_values(p)) for p in strategy.params}))
    genes = {}
    for g in risk_genes(ceiling):
        value = draw(param_values(g))
        genes[g.name] = 1.0 if g.name == "size" and value == 0.0 else value
    symbols = draw(st.lists(st.sampled_from(market), min_size=1, unique=True))
    return Genome(name, params, symbols=symbols, generation=draw(st.integers(0, 50)), **genes)


@st.composite
def cohorts(draw, families=REAL):
    """(market symbols, leverage ceiling, parent a, parent b); same family half the time."""
    market = tuple(draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=len(POOL), unique=True)))
    ceiling = draw(st.one_of(st.sampled_from([1.0, 2.0, 5.0, 100.0]), st.floats(1.0, 100.0)))
    a = draw(genomes(families, market, ceiling))
    b = draw(genomes(families, market, ceiling, family=a.family if draw(st.booleans()) else None))
    return market, ceiling, a, b


rates = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))
seeds = st.integers(0, 2**32)


def repaired_pairs(strategy: Strategy, a: dict, b: dict) -> list[tuple[dict, dict]]:
    """Every (child 1, child 2) parameter pair uniform crossover can produce before
    repair (each parameter from a or b, the other child gets the other value), repaired."""
    names = [p.name for p in strategy.params]
    out = []
    for mask in itertools.product((False, True), repeat=len(names)):
        c1 = {n: (b if swap else a)[n] for n, swap in zip(names, mask)}
        c2 = {n: (a if swap else b)[n] for n, swap in zip(names, mask)}
        out.append(tuple(strategy.validate(strategy.repair(c)) for c in (c1, c2)))
    return out


# -- crossover ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cohorts(), seeds, rates, st.sampled_from([0.0, 0.0, 0.5]), st.integers(0, 1000))
def test_crossover_children_are_valid_and_inherit(cohort, seed, indpb, alpha, generation):
    market, ceiling, a, b = cohort
    with no_fallback():
        c1, c2 = crossover(a, b, random.Random(seed), families=REAL, symbols=market,
                           max_leverage=ceiling, generation=generation, indpb=indpb, alpha=alpha)
    parents = (a.genome_id, b.genome_id)
    for c in (c1, c2):
        assert_valid(c, REAL, market, ceiling, generation, parents)
        assert set(c.symbols) <= set(a.symbols) | set(b.symbols)
    # symbols both parents trade stay with both children
    assert set(a.symbols) & set(b.symbols) <= set(c1.symbols) & set(c2.symbols)
    assert (c1.family, c2.family) == (a.family, b.family)
    if a.family != b.family:
        assert (c1.params, c2.params) == (a.params, b.params)
    elif alpha == 0.0:
        assert (c1.params, c2.params) in repaired_pairs(REAL[a.family], a.params, b.params)
    if alpha == 0.0:  # uniform: each risk gene exchanged or not, never a new value
        for x, y, u, v in zip(risk(c1), risk(c2), risk(a), risk(b)):
            assert (x, y) in ((u, v), (v, u))
    else:
        for gene, x, y, u, v in zip(risk_genes(ceiling), risk(c1), risk(c2), risk(a), risk(b)):
            if gene.kind == "int":
                assert (x, y) in ((u, v), (v, u))
            else:
                d = alpha * abs(u - v)
                assert min(u, v) - d <= x <= max(u, v) + d and min(u, v) - d <= y <= max(u, v) + d


@settings(max_examples=200, deadline=None)
@given(st.data(), seeds, rates, st.sampled_from([0.0, 0.5]))
def test_same_family_crossover_mixes_parent_values(data, seed, indpb, alpha):
    """Ints and categoricals are one parent's value each (exchanged, never averaged);
    floats too unless blending. A rule-free family, so nothing is repaired."""
    a = data.draw(genomes(TEST_FAMILIES, SYMBOLS, 3.0))
    b = data.draw(genomes(TEST_FAMILIES, SYMBOLS, 3.0))
    with no_fallback():
        c1, c2 = crossover(a, b, random.Random(seed), families=TEST_FAMILIES, symbols=SYMBOLS,
                           max_leverage=3.0, generation=1, indpb=indpb, alpha=alpha)
    for p in Mixed.params:
        u, v = a.params[p.name], b.params[p.name]
        x, y = c1.params[p.name], c2.params[p.name]
        assert_value(p, x)
        assert_value(p, y)
        if p.kind != "float" or alpha == 0.0:
            assert (x, y) in ((u, v), (v, u)), p.name
        else:
            d = alpha * abs(u - v)
            assert min(u, v) - d <= x <= max(u, v) + d


def test_crossover_indpb_one_swaps_everything_and_zero_copies():
    tb = make_toolbox(SYMBOLS, families=TEST_FAMILIES, seed=3, max_leverage=4.0)
    a, b = tb.genome(), tb.genome()
    kw = dict(families=TEST_FAMILIES, symbols=SYMBOLS, max_leverage=4.0, generation=2)
    c1, c2 = crossover(a, b, random.Random(0), indpb=0.0, **kw)
    assert (c1.content(), c2.content()) == (a.content(), b.content())
    assert c1.parents == c2.parents == (a.genome_id, b.genome_id) and c1.generation == 2
    c1, c2 = crossover(a, b, random.Random(0), indpb=1.0, **kw)
    assert (c1.content(), c2.content()) == (b.content(), a.content())


def test_different_families_keep_family_and_params_and_cross_risk_genes():
    a = Genome("sma_cross", {"fast": 5, "slow": 50}, symbols=("BTC_USDT",), size=0.2, stop_loss=0.01,
               take_profit=0.1, max_hold_bars=10, leverage=1.5)
    b = Genome("rsi_reversion", {"period": 7}, symbols=("ETH_USDT",), size=0.9, stop_loss=0.1,
               take_profit=0.4, max_hold_bars=900, leverage=3.0)
    c1, c2 = crossover(a, b, random.Random(1), families=REAL, symbols=SYMBOLS, max_leverage=3.0,
                       generation=4, indpb=1.0)
    assert (c1.family, c1.params) == ("sma_cross", a.params)
    assert (c2.family, c2.params) == ("rsi_reversion", REAL["rsi_reversion"].validate({"period": 7}))
    assert risk(c1) == risk(b) and risk(c2) == risk(a)
    assert (c1.symbols, c2.symbols) == (("ETH_USDT",), ("BTC_USDT",))


def test_symbol_crossover_never_leaves_a_child_empty():
    a = Genome("sma_cross", {}, symbols=("BTC_USDT", "ETH_USDT"))
    b = Genome("sma_cross", {}, symbols=("SOL_USDT",))
    seen = set()
    for seed in range(200):
        c1, c2 = crossover(a, b, random.Random(seed), families=REAL, symbols=POOL, max_leverage=1.0,
                           generation=1)
        assert c1.symbols and c2.symbols
        seen.update({c1.symbols, c2.symbols})
    assert ("BTC_USDT", "SOL_USDT") in seen and ("ETH_USDT",) in seen


def test_children_are_brought_inside_the_cohort():
    """A parent above a lowered leverage ceiling, or trading symbols the market
    dropped, still has valid children."""
    a = Genome("sma_cross", {}, symbols=("BTC_USDT", "OLD_USDT"), leverage=8.0, size=0.5)
    b = Genome("sma_cross", {}, symbols=("OLD_USDT",), leverage=6.0, size=0.5)
    for seed in range(20):
        rng = random.Random(seed)
        kids = [*crossover(a, b, rng, families=REAL, symbols=SYMBOLS, max_leverage=2.0, generation=1),
                mutate(b, rng, families=REAL, symbols=SYMBOLS, max_leverage=2.0, generation=1),
                mutate(b, rng, families=REAL, symbols=SYMBOLS, max_leverage=2.0, generation=1,
                       params_only=True)]
        for c in kids:
            assert c.validated(REAL, symbols=SYMBOLS, max_leverage=2.0) == c
        assert [c.leverage for c in kids[:2] + kids[3:]] == [2.0, 2.0, 2.0]  # clipped, not mutated
        # OLD_USDT is dropped; BTC_USDT is the only market symbol of the union
        assert kids[0].symbols == kids[1].symbols == ("BTC_USDT",)
        assert len(kids[3].symbols) == 1  # b trades no market symbol: one is drawn


# -- mutation -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cohorts(), seeds, rates, st.sampled_from([0.0, 0.01, 0.15, 1.0, 5.0]), st.booleans(),
       st.integers(0, 1000))
def test_mutate_child_is_valid(cohort, seed, indpb, sigma, params_only, generation):
    market, ceiling, g, _ = cohort
    with no_fallback():
        child = mutate(g, random.Random(seed), families=REAL, symbols=market, max_leverage=ceiling,
                       generation=generation, indpb=indpb, sigma=sigma, params_only=params_only)
    assert_valid(child, REAL, market, ceiling, generation, (g.genome_id,))
    assert child.family == g.family
    if params_only:
        assert risk(child) == risk(g) and child.symbols == g.symbols
    if indpb == 0.0:
        assert child.content() == g.content()
    if indpb == 1.0 and not params_only:
        assert child.content() != g.content()  # max_hold_bars, an int, always moves
        assert child.max_hold_bars != g.max_hold_bars


@settings(max_examples=100, deadline=None)
@given(st.data(), seeds)
def test_mutate_with_indpb_one_changes_every_parameter_of_a_rule_free_family(data, seed):
    g = data.draw(genomes(TEST_FAMILIES, SYMBOLS, 2.0))
    child = mutate(g, random.Random(seed), families=TEST_FAMILIES, symbols=SYMBOLS, max_leverage=2.0,
                   generation=1, indpb=1.0, sigma=0.15, params_only=True)
    assert child.params["lookback"] != g.params["lookback"]
    assert child.params["side"] != g.params["side"]  # a *different* choice
    assert child.params["ma"] != g.params["ma"]
    assert risk(child) == risk(g) and child.symbols == g.symbols


def test_mutation_steps():
    """sigma=0: ints move by exactly 1 (never 0, the other way at a bound), floats stay."""
    kw = dict(families=TEST_FAMILIES, symbols=SYMBOLS, max_leverage=5.0, generation=1, indpb=1.0, sigma=0.0)
    for lookback, allowed in ((20, {19, 21}), (5, {6}), (400, {399})):
        g = Genome("t_mixed", {"lookback": lookback, "width": 1.0}, symbols=("BTC_USDT",), max_hold_bars=0,
                   stop_loss=0.05, leverage=2.0)
        for seed in range(10):
            c = mutate(g, random.Random(seed), **kw)
            assert c.params["lookback"] in allowed
            assert c.max_hold_bars == 1
            assert (c.params["width"], c.stop_loss, c.leverage) == (1.0, 0.05, 2.0)


def test_mutation_step_size_follows_sigma():
    g = Genome("t_mixed", {"lookback": 200, "width": 2.0}, symbols=("BTC_USDT",))
    rng = random.Random(5)
    kw = dict(families=TEST_FAMILIES, symbols=SYMBOLS, max_leverage=1.0, generation=1, indpb=1.0,
              params_only=True)
    for sigma in (0.02, 0.1):
        steps = [mutate(g, rng, sigma=sigma, **kw).params["width"] - 2.0 for _ in range(2000)]
        assert np.std(steps) == pytest.approx(sigma * 3.5, rel=0.1)


def test_clipping_makes_off_reachable_and_size_stays_positive():
    g = Genome("sma_cross", {}, symbols=("BTC_USDT",), stop_loss=0.01, size=1e-6)
    rng = random.Random(2)
    kids = [mutate(g, rng, families=REAL, symbols=SYMBOLS, max_leverage=1.0, generation=1, indpb=1.0,
                   sigma=0.5) for _ in range(300)]
    assert sum(k.stop_loss == 0.0 for k in kids) > 50  # clipped onto "off"
    assert all(0.0 < k.size <= 1.0 for k in kids)
    assert any(k.size < 1e-6 for k in kids)


def test_symbol_mutation_moves():
    kw = dict(families=REAL, max_leverage=1.0, generation=1, indpb=1.0, params_only=False)
    one = Genome("sma_cross", {}, symbols=("BTC_USDT",))
    assert mutate(one, random.Random(0), symbols=("BTC_USDT",), **kw).symbols == ("BTC_USDT",)
    full = Genome("sma_cross", {}, symbols=SYMBOLS)
    sizes = {len(mutate(full, random.Random(s), symbols=SYMBOLS, **kw).symbols) for s in range(30)}
    assert sizes == {3}  # all traded: only remove
    two = Genome("sma_cross", {}, symbols=("BTC_USDT", "ETH_USDT"))
    kids = [mutate(two, random.Random(s), symbols=SYMBOLS, **kw).symbols for s in range(200)]
    assert {len(k) for k in kids} == {1, 2, 3}  # remove, swap, add
    assert any(len(k) == 2 and k != two.symbols for k in kids)


# -- fallback, errors ---------------------------------------------------------------------------


def test_unrepairable_child_falls_back_to_a_parent_copy():
    fams = {"t_unrepairable": Unrepairable()}
    g = Genome("t_unrepairable", {"lookback": 20}, symbols=("BTC_USDT",))
    with captured_warnings() as records:
        child = mutate(g, random.Random(0), families=fams, symbols=SYMBOLS, max_leverage=1.0,
                       generation=7, indpb=1.0)
    assert child.content() == g.validated(fams).content()
    assert (child.generation, child.parents) == (7, (g.genome_id,))
    assert records and "copy of the parent" in records[0].getMessage()

    h = Genome("t_unrepairable", {"lookback": 20}, symbols=("ETH_USDT",))
    with captured_warnings():
        c1, c2 = crossover(g, h, random.Random(0), families=fams, symbols=SYMBOLS, max_leverage=1.0,
                           generation=7, indpb=1.0)
    assert all(c.validated(fams, symbols=SYMBOLS, max_leverage=1.0) == c for c in (c1, c2))

    bad = Genome("t_unrepairable", {"lookback": 20}, symbols=("BTC_USDT",), leverage=5.0)
    with captured_warnings(), pytest.raises(GenomeError, match=r"parent itself is invalid"):
        mutate(bad, random.Random(0), families=fams, symbols=SYMBOLS, max_leverage=1.0, generation=1,
               indpb=1.0, sigma=0.0)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"indpb": 1.5}, r"indpb=1.5 is out of bounds; allowed: a number in \[0, 1.0\]"),
        ({"indpb": True}, r"indpb=True is not a number"),
        ({"sigma": -0.1}, r"sigma=-0.1 is out of bounds"),
        ({"sigma": float("nan")}, r"sigma=nan is out of bounds"),
        ({"generation": -1}, r"generation=-1 is not allowed"),
        ({"max_leverage": 0.5}, r"max_leverage=0.5 is out of bounds"),
        ({"symbols": []}, r"market symbols=\[\] is empty"),
        ({"families": TEST_FAMILIES}, r"family 'sma_cross' is unknown; available: t_mixed"),
    ],
)
def test_bad_arguments_are_reported(kwargs, pattern):
    g = Genome("sma_cross", {}, symbols=("BTC_USDT",))
    args = {"families": REAL, "symbols": SYMBOLS, "max_leverage": 1.0, "generation": 1, **kwargs}
    with pytest.raises(GenomeError, match=pattern):
        mutate(g, random.Random(0), **args)
    if "sigma" not in kwargs:
        with pytest.raises(GenomeError, match=pattern):
            crossover(g, g, random.Random(0), **args)
    with pytest.raises(GenomeError, match=r"alpha=-1 is out of bounds"):
        crossover(g, g, random.Random(0), families=REAL, symbols=SYMBOLS, max_leverage=1.0, generation=1,
                  alpha=-1)


# -- reproducibility and the toolbox ------------------------------------------------------------


def _breed(tb, n=20):
    pop = tb.population(12)
    out = []
    for i in range(n):
        out.extend(tb.mate(pop[i % 12], pop[(5 * i + 1) % 12], generation=1))
        out.append(tb.mutate(pop[i % 12], generation=1))
        out.append(tb.mutate(pop[i % 12], generation=1, params_only=True))
    return [g.to_dict() for g in out]


@settings(max_examples=20, deadline=None)
@given(seeds)
def test_same_seed_same_children(seed):
    assert _breed(make_toolbox(SYMBOLS, seed=seed, max_leverage=3.0)) == _breed(
        make_toolbox(SYMBOLS, seed=seed, max_leverage=3.0))


def test_other_seed_other_children_and_global_random_untouched():
    state = random.getstate()
    assert _breed(make_toolbox(SYMBOLS, seed=1)) != _breed(make_toolbox(SYMBOLS, seed=2))
    assert random.getstate() == state


def test_toolbox_mate_and_mutate_read_their_rates():
    tb = make_toolbox(SYMBOLS, families=TEST_FAMILIES, seed=4, max_leverage=2.0, cx_indpb=0.0,
                      mut_indpb=0.0, mut_sigma=0.3)
    assert (tb.cx_indpb, tb.cx_alpha, tb.mut_indpb, tb.mut_sigma) == (0.0, 0.0, 0.0, 0.3)
    a, b = tb.genome(), tb.genome()
    c1, c2 = tb.mate(a, b, generation=3)
    assert (c1.content(), c2.content(), c1.generation) == (a.content(), b.content(), 3)
    m = tb.mutate(a, generation=3)
    assert m.content() == a.content() and m.parents == (a.genome_id,)
    assert tb.mutate(a, generation=3, indpb=1.0).content() != a.content()  # per-call override
    tb.mut_indpb = 1.0  # retuned between generations
    assert tb.mutate(a, generation=4).content() != a.content()
    tb.cx_indpb = 1.0
    c1, c2 = tb.mate(a, b, generation=4)
    assert (c1.content(), c2.content()) == (b.content(), a.content())
    tb.register("mutate", lambda g, generation: g)  # swappable like every operator
    assert tb.mutate(a, generation=5) is a


def test_default_toolbox_rates():
    tb = make_toolbox(SYMBOLS, seed=0)
    assert (tb.cx_indpb, tb.cx_alpha, tb.mut_indpb, tb.mut_sigma) == (0.5, 0.0, 0.2, 0.15)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"cx_indpb": -0.1}, r"cx_indpb=-0.1 is out of bounds"),
        ({"mut_indpb": 2}, r"mut_indpb=2 is out of bounds"),
        ({"mut_sigma": "x"}, r"mut_sigma='x' is not a number"),
        ({"cx_alpha": float("inf")}, r"cx_alpha=inf is out of bounds"),
    ],
)
def test_toolbox_rate_errors(kwargs, pattern):
    with pytest.raises(GenomeError, match=pattern):
        make_toolbox(SYMBOLS, seed=0, **kwargs)


def test_many_generations_of_real_genomes_stay_valid():
    """A small GA loop over the real registry: thousands of operator calls, no fallback."""
    tb = make_toolbox(POOL, seed=9, max_leverage=3.0, cx_alpha=0.3)
    pop = tb.population(30)
    with no_fallback():
        for gen in range(1, 21):
            nxt = []
            for i in range(0, 30, 2):
                c1, c2 = tb.mate(pop[i], pop[tb.rng.randrange(30)], generation=gen)
                nxt += [tb.mutate(c1, generation=gen), tb.mutate(c2, generation=gen, params_only=True)]
            pop = nxt
            for g in pop:
                assert g.validated(symbols=POOL, max_leverage=3.0) == g
    assert {g.generation for g in pop} == {20}
