"""Strategy families (simulator/strategies/families.py), their fill kernels
(simulator/strategies/kernels.py) and the plugin registry
(simulator/strategies/registry.py)."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simulator import indicators as ind
from simulator.market import MarketData
from simulator.strategies import registry
from simulator.strategies.base import Strategy, StrategyError
from simulator.strategies.families import TIE_RTOL
from simulator.strategies.kernels import band_fill, cross_fill, sign_fill, vwap_fill
from simulator.strategies.registry import StrategyPluginWarning

FAMILIES = (
    "sma_cross",
    "ema_macd",
    "rsi_reversion",
    "bollinger_reversion",
    "donchian_breakout",
    "vwap_deviation",
)


def make_market(close, high=None, low=None, volume=None) -> MarketData:
    """A MarketData of T bars x S symbols from (T,) or (T, S) arrays."""
    c = np.asarray(close, dtype=float)
    if c.ndim == 1:
        c = c[:, None]
    h = c if high is None else np.asarray(high, dtype=float).reshape(c.shape)
    lo = c if low is None else np.asarray(low, dtype=float).reshape(c.shape)
    v = np.ones_like(c) if volume is None else np.asarray(volume, dtype=float).reshape(c.shape)
    t = len(c)
    return MarketData(
        timestamps=np.datetime64("2024-01-01T00:00", "ns") + np.arange(t) * np.timedelta64(300, "s"),
        symbols=tuple(f"S{i}_USD" for i in range(c.shape[1])),
        open=c.copy(),
        high=h.copy(),
        low=lo.copy(),
        close=c.copy(),
        volume=v.copy(),
        tradable=np.ones(c.shape, dtype=bool),
        timeframe_s=300,
        quote="USD",
        source="test",
    )


def random_sets(strategy: Strategy, n: int, seed: int, max_window: int = 120) -> list[dict]:
    """n valid parameter sets drawn from the space (windows capped for speed)."""
    rng = np.random.default_rng(seed)
    sets = []
    for _ in range(n):
        raw = {}
        for p in strategy.params:
            if p.kind == "int":
                raw[p.name] = int(rng.integers(p.low, min(p.high, max_window) + 1))
            elif p.kind == "float":
                raw[p.name] = float(rng.uniform(p.low, p.high))
            else:
                raw[p.name] = p.choices[rng.integers(len(p.choices))]
        sets.append(strategy.validate(strategy.repair(raw)))
    return sets


def targets_of(name: str, market: MarketData, **params) -> np.ndarray:
    """Targets of one parameter set on a one-symbol market, as a (T,) array."""
    s = registry.get_strategy(name)
    return s.targets(market, [s.validate(params)])[0, :, 0]


# --------------------------------------------------------------------------
# hand-worked examples of each signal rule
# --------------------------------------------------------------------------


def test_sma_cross_hand_example():
    # SMA2: -, 1.5, 2.5, 2.5, 1.5, 1, 2 ; SMA3: -, -, 2, 2.33, 2, 1.33, 1.67
    # above at bars 2-3 is no cross (flat); crosses down at bar 4, up at bar 6
    got = targets_of("sma_cross", make_market([1, 2, 3, 2, 1, 1, 3]), fast=2, slow=3)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, -1, -1, 1])


def test_sma_cross_tie_holds_previous_target():
    # SMA2: -, 1.5, 2.5, 2.5, 1.5, 1, 1, 1 ; SMA3: -, -, 2, 2.33, 2, 1.33, 1, 1
    # -> cross down at bar 4, equal from bar 6: the tie holds the short
    got = targets_of("sma_cross", make_market([1, 2, 3, 2, 1, 1, 1, 1]), fast=2, slow=3)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, -1, -1, -1, -1])


def test_sma_cross_fires_on_the_cross_not_on_warmup():
    # SMA2: -, 1.5, 2.5, 3.5, 4.5, 4.5, 3.5, 2.5, 2.5, 3.5, 4.5
    # SMA3: -, -,   2,   3,   4,   4.33, 4, 3,   2.67, 3,   4
    # fast > slow from the first defined bar (2) to bar 5: no cross, flat;
    # cross down at bar 6, cross up at bar 9 (the old rule went long at bar 2)
    got = targets_of("sma_cross", make_market([1, 2, 3, 4, 5, 4, 3, 2, 3, 4, 5]), fast=2, slow=3)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 0, 0, -1, -1, -1, 1, 1])
    # a trend that never crosses never trades, on either side
    up = targets_of("sma_cross", make_market(np.arange(1.0, 60.0)), fast=5, slow=20)
    down = targets_of("sma_cross", make_market(np.arange(60.0, 1.0, -1.0)), fast=5, slow=20)
    assert (up == 0).all() and (down == 0).all()


@pytest.mark.parametrize("kernel", ["cross", "sign"])
def test_cross_kernels_wait_for_a_cross_after_warmup_and_after_nan(kernel):
    """The cross state machines on a hand-made difference d = a - b (close 1,
    so the tie tolerance is TIE_RTOL): NaN = undefined, |d| <= 1e-12 = tie."""
    nan = np.nan
    d = np.array([nan, 1, -5e-13, 1, -1, 5e-13, 0, 1, 1, nan, -1, -1, 1])
    want = [0, 0, 0, 0, -1, -1, -1, 1, 1, 0, 0, 0, 1]
    # bar 1: above on the first defined bar -> no cross ; bar 2: a tie of the
    # other sign is no cross (an exact comparison would call it one) ; bar 3:
    # back above: touched and returned ; bar 4: cross down ; bars 5-6: ties
    # hold ; bar 7: cross up (through the ties) ; bar 9: NaN resets ; bars
    # 10-11: below, no cross yet ; bar 12: cross up
    out = np.zeros((1, len(d), 1))
    close = np.ones((len(d), 1))
    if kernel == "cross":
        b = np.full((1, len(d), 1), 3.0)
        cross_fill(b + d[None, :, None], np.array([0]), b, np.array([0]), close, TIE_RTOL, out)
    else:
        sign_fill(d[None, :, None].copy(), np.array([0]), close, TIE_RTOL, out)
    np.testing.assert_array_equal(out[0, :, 0], want)


def test_ema_macd_hand_example():
    # fast 2 / slow 3 / signal 2 (TA-Lib seeding, see test_indicators): the
    # histogram is undefined until bar 3, then 1/4, 23/54, -605/648: positive
    # from the first defined bar is no cross (flat), the cross down at bar 5 is
    got = targets_of("ema_macd", make_market([1, 2, 4, 8, 16, 0]), fast=2, slow=3, signal=2)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 0, -1])


def test_rsi_reversion_hand_example():
    # moves -1 -1 +1 +1 +1 +1 -1 -1 ; RSI(2) from bar 2:
    # 0, 50, 75, 87.5, 93.75, 46.875, 23.4375
    got = targets_of(
        "rsi_reversion",
        make_market([10, 9, 8, 9, 10, 11, 12, 11, 10]),
        period=2,
        oversold=30,
        overbought=70,
        exit_level=50,
    )
    # long at RSI 0, exit at 50 (>= exit), short at 75, hold, exit at 46.875, long at 23.4
    np.testing.assert_array_equal(got, [0, 0, 1, 0, -1, -1, -1, 0, 1])


def test_bollinger_rule_hand_example_window_3():
    # The family's window starts at 5, so this 3-bar example drives the same
    # state machine the family uses directly. Window 3, k = 1 (population std):
    # bar 4: window 1,1,.25 -> mid .75, std .354, lower .396 > .25  -> long
    # bar 5: close .5 < mid .583                                  -> hold long
    # bar 6: close 1 >= mid .583 -> exit; upper .895 < 1           -> short (same bar)
    # bar 7: window .5,1,1 -> mid .833 < close 1                   -> hold short
    # bar 8: close .6 <= mid .867 -> exit; lower .678 > .6          -> long (same bar)

    c = np.array([1, 1, 1, 1, 0.25, 0.5, 1.0, 1.0, 0.6])[:, None]
    out = np.zeros((1, len(c), 1))
    band_fill(c, ind.sma_many(c, [3]), ind.rolling_std_many(c, [3]), np.array([0]), np.array([1.0]), TIE_RTOL, out)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 0, 0, 1, 1, -1, -1, 1])


def test_bollinger_reversion_hand_example():
    # window 5, k = 1: flat at 1 (std 0: touching the band is no entry), then
    # bar 5: window 1,1,1,1,.2 -> mid .84, std .32, lower .52 > .2 -> long
    # bar 6: close .5 < mid .74                                     -> hold long
    # bar 7: close 1 >= mid .74 -> exit; upper 1.07 > 1              -> flat
    got = targets_of("bollinger_reversion", make_market([1, 1, 1, 1, 1, 0.2, 0.5, 1.0]), window=5, k=1.0)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 0, 1, 1, 0])


def test_donchian_breakout_hand_example():
    close = np.array([5, 5, 5, 7, 8, 6, 4, 3, 2, 5], dtype=float)
    m = make_market(close, high=close + 0.5, low=close - 0.5)
    # entry 3 / exit 2, channels over the previous bars:
    # bar 3: 7 > max(h[0:3]) = 5.5 -> long ; bar 5: 6 < min(l[3:5]) = 6.5 -> exit
    # bar 6: 4 < min(l[3:6]) = 5.5 -> short ; bar 9: 5 > max(h[7:9]) = 3.5 -> exit,
    # and 5 > max(h[6:9]) = 4.5 -> long on the same bar
    got = targets_of("donchian_breakout", m, entry=3, exit=2)
    np.testing.assert_array_equal(got, [0, 0, 0, 1, 1, 0, -1, -1, -1, 1])


def test_vwap_rule_hand_example_window_2():
    # window 2 (below the family's minimum of 5, so the family's state machine
    # is driven directly); typical price = close (h = l = c), unit volume:
    # VWAP = mean of 2 closes, threshold 100 bps.
    # bar 2: vwap 98.5, 97 is 1.5% below -> long ; bar 3: 98 >= 97.5 -> exit
    # bar 4: vwap 99.5, 101 is 1.5% above -> short ; bar 5: 103 > 102 -> hold
    # bar 6: 101 <= 102 -> exit ; bar 7: 100 vs 100.5: only 0.5% -> flat

    c = np.array([100, 100, 97, 98, 101, 103, 101, 100], dtype=float)[:, None]
    vw = ind.vwap_many(c, c, c, np.ones_like(c), [2])
    out = np.zeros((1, len(c), 1))
    vwap_fill(c, vw, np.array([0]), np.array([100.0]), TIE_RTOL, out)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 0, -1, -1, 0, 0])


def test_vwap_deviation_hand_example_and_no_volume_is_flat():
    # window 5, 50 bps, h = l = c so the typical price is the close
    close = [100, 100, 100, 100, 100, 98, 98, 101, 101, 101, 101, 101, 90, 90, 90, 90, 90]
    vol = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    # bar 5: vwap 99.6, 98 is 1.6% below -> long ; bar 6: vwap 99.2 -> hold
    # bar 7: close 101 >= vwap 99.4 -> exit, and 1.6% above -> short (same bar)
    # bars 8-10: only traded bars count: vwap 99.25, 99, 99.5 < 101 -> hold short
    # bar 11: only bar 7 traded in the window -> vwap 101 -> exit
    # bars 12-16: no volume in the window -> VWAP undefined -> flat, although
    #             the close (90) is far below every earlier VWAP
    got = targets_of("vwap_deviation", make_market(close, volume=vol), window=5, threshold_bps=50)
    np.testing.assert_array_equal(got, [0, 0, 0, 0, 0, 1, 1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0])


def test_rounding_noise_on_a_flat_market_does_not_trade():
    """After a volatile stretch the price freezes; SMAs of the frozen stretch
    then differ from the price by an ulp. The tie tolerance keeps that noise
    from opening positions (with tolerance 0 the same kernels would trade)."""
    rng = np.random.default_rng(0)
    x = np.r_[rng.uniform(0.04, 0.05, 200), np.full(200, 0.04664597)]
    m = make_market(x)
    cross = targets_of("sma_cross", m, fast=7, slow=40)
    assert np.unique(cross[240:]).size == 1  # both windows frozen: no flips
    bands = targets_of("bollinger_reversion", m, window=20, k=2.0)
    assert (bands[225:] == 0).all()
    # the noise is real: without the tolerance the band rule buys the flat market
    c = x[:, None]
    out = np.zeros((1, len(x), 1))
    band_fill(c, ind.sma_many(c, [20]), ind.rolling_std_many(c, [20]), np.array([0]), np.array([2.0]), 0.0, out)
    assert (out[0, 225:, 0] != 0).any()
    ma = ind.sma_many(c, [7, 40])
    cross_fill(ma, np.array([0]), ma, np.array([1]), c, 0.0, out)
    assert np.unique(out[0, 240:, 0]).size == 1  # ties hold, so the cross rule is safe either way


# --------------------------------------------------------------------------
# properties on real bars
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_shape_range_and_warmup_on_real_bars(binance_market, name):
    s = registry.get_strategy(name)
    sets = random_sets(s, 6, seed=1)
    out = s.targets(binance_market, sets)
    assert out.shape == (6, binance_market.n_bars, len(binance_market.symbols)) and out.dtype == np.float64
    assert set(np.unique(out)) <= {-1.0, 0.0, 1.0}
    assert (out == 1).any() and (out == -1).any()  # the rule does trade both sides
    assert (out[:, 0] == 0).all()  # nothing is defined on the first bar
    default = s.targets(binance_market, [s.defaults()])
    warm = {
        "sma_cross": 30 - 1,
        "ema_macd": 26 + 9 - 2,
        "rsi_reversion": 14,
        "bollinger_reversion": 20 - 1,
        "donchian_breakout": 20,
        "vwap_deviation": 48 - 1,
    }[name]
    assert (default[0, :warm] == 0).all()  # zero while indicators are undefined


@pytest.mark.parametrize("name", FAMILIES)
def test_truncating_future_bars_never_changes_earlier_targets(binance_market, name):
    s = registry.get_strategy(name)
    sets = random_sets(s, 5, seed=2)
    short = binance_market.head(2500)
    full = s.targets(short, sets)
    for k in (1, 40, 333, 1999):
        np.testing.assert_array_equal(s.targets(short.head(k), sets), full[:, :k])
    # a shock after bar 1999 cannot reach back either
    shocked = MarketData(
        **{
            **{f: getattr(short, f) for f in ("timestamps", "symbols", "tradable", "timeframe_s", "quote", "source")},
            **{f: np.where(np.arange(2500)[:, None] >= 2000, getattr(short, f) * 3.0, getattr(short, f))
               for f in ("open", "high", "low", "close", "volume")},
        }
    )
    np.testing.assert_array_equal(s.targets(shocked, sets)[:, :2000], full[:, :2000])


@pytest.mark.parametrize("name", FAMILIES)
def test_batch_equals_each_parameter_set_alone(binance_market, name):
    s = registry.get_strategy(name)
    short = binance_market.head(3000)
    sets = random_sets(s, 7, seed=3)
    sets += [dict(sets[0]), s.defaults()]  # duplicates share indicator configurations
    batch = s.targets(short, sets)
    for i, p in enumerate(sets):
        np.testing.assert_array_equal(batch[i], s.targets(short, [p])[0])
    # symbols are independent too
    one = short.select([short.symbols[4]])
    np.testing.assert_array_equal(s.targets(one, sets)[:, :, 0], batch[:, :, 4])


@pytest.mark.parametrize("name", FAMILIES)
def test_empty_batch_and_partial_sets(binance_market, name):
    s = registry.get_strategy(name)
    short = binance_market.head(200)
    assert s.targets(short, []).shape == (0, 200, len(short.symbols))
    np.testing.assert_array_equal(s.targets(short, [{}]), s.targets(short, [s.defaults()]))


def test_sma_cross_follows_the_sign_of_the_sma_difference(binance_market):
    s = registry.get_strategy("sma_cross")
    short = binance_market.head(3000)
    out = s.targets(short, [{"fast": 7, "slow": 40}])[0]
    d = ind.sma(short.close, 7) - ind.sma(short.close, 40)
    clear = np.abs(d) > 1e-9 * np.abs(short.close)
    # flat until the first change of sign (per symbol), then the sign of d
    crossed = np.zeros_like(clear)
    for k in range(d.shape[1]):
        bars = np.flatnonzero(clear[:, k])
        sides = np.sign(d[bars, k])
        cross = bars[np.flatnonzero(sides[1:] != sides[:-1])[0] + 1]
        assert (out[:cross, k] == 0).all()
        crossed[cross:, k] = True
    np.testing.assert_array_equal(out[clear & crossed], np.sign(d[clear & crossed]))


# --------------------------------------------------------------------------
# parameter validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,values,needles",
    [
        ("sma_cross", {"fast": 50, "slow": 20}, ["fast=50", "slow=20"]),
        ("sma_cross", {"fast": 20, "slow": 20}, ["fast=20", "slow=20"]),
        ("ema_macd", {"fast": 30, "slow": 26}, ["fast=30", "slow=26"]),
        ("rsi_reversion", {"oversold": 55, "overbought": 45, "exit_level": 50}, ["oversold=55", "overbought=45"]),
        ("rsi_reversion", {"exit_level": 80}, ["exit_level=80"]),
        ("sma_cross", {"fast": 1}, ["fast=1", "[2, 100]"]),
        ("sma_cross", {"fast": 2.5}, ["fast=2.5", "integer"]),
        ("bollinger_reversion", {"k": "wide"}, ["k='wide'"]),
        ("bollinger_reversion", {"k": 9.0}, ["k=9.0"]),
        ("vwap_deviation", {"threshold_bps": float("nan")}, ["threshold_bps=nan"]),
        ("donchian_breakout", {"entry": 20, "lookback": 5}, ["lookback", "entry, exit"]),
    ],
)
def test_bad_parameters_are_rejected_naming_the_value(name, values, needles):
    s = registry.get_strategy(name)
    with pytest.raises(StrategyError) as err:
        s.validate(values)
    for needle in needles:
        assert needle in str(err.value)
    with pytest.raises(StrategyError):
        s.targets(make_market(np.ones(10)), [values])


def test_validate_coerces_cli_strings_and_fills_defaults():
    s = registry.get_strategy("rsi_reversion")
    assert s.validate({"period": "7", "oversold": "25"}) == {
        "period": 7,
        "oversold": 25.0,
        "overbought": 70.0,
        "exit_level": 50.0,
    }


@pytest.mark.parametrize("name", FAMILIES)
def test_every_param_is_typed_with_bounds_default_and_help(name):
    s = registry.get_strategy(name)
    assert s.params and s.description
    for p in s.params:
        assert p.help and "(" in p.help  # the unit is given in parentheses
        assert s.validate({p.name: p.default})[p.name] == p.default
    s.check(s.defaults())


@pytest.mark.parametrize(
    "name,broken",
    [
        ("sma_cross", {"fast": 50, "slow": 20}),
        ("sma_cross", {"fast": 100, "slow": 100}),
        ("sma_cross", {"fast": 500, "slow": -3}),
        ("ema_macd", {"fast": 40, "slow": 40, "signal": 9}),
        ("rsi_reversion", {"oversold": 55, "overbought": 45, "exit_level": 90}),
        ("rsi_reversion", {"oversold": 50, "overbought": 50}),
        ("bollinger_reversion", {"window": 3.7, "k": 99}),
        ("donchian_breakout", {"entry": 20, "bogus": 1}),
    ],
)
def test_repair_returns_a_valid_set_changing_little(name, broken):
    s = registry.get_strategy(name)
    fixed = s.repair(broken)
    assert s.validate(fixed) == fixed
    if name == "sma_cross" and broken == {"fast": 50, "slow": 20}:
        assert fixed == {"fast": 20, "slow": 50}  # swapped, nothing else
    if name == "rsi_reversion" and broken["oversold"] == 55:
        assert (fixed["oversold"], fixed["overbought"], fixed["exit_level"]) == (45, 55, 55)


# --------------------------------------------------------------------------
# registry and plugins
# --------------------------------------------------------------------------


def test_registry_finds_the_six_families():
    names = registry.available()
    assert set(FAMILIES) <= set(names) and names == sorted(names)
    strategies = registry.all_strategies()
    for name in FAMILIES:
        assert isinstance(strategies[name], Strategy) and strategies[name].name == name
        assert registry.get_strategy(name) is strategies[name]
        assert registry.origin(name).startswith("simulator.strategies.")


def test_unknown_family_lists_the_available_ones():
    with pytest.raises(StrategyError) as err:
        registry.get_strategy("moon_phase")
    assert "moon_phase" in str(err.value)
    for name in FAMILIES:
        assert name in str(err.value)


PLUGIN_MODULE = '''
import numpy as np
from simulator.strategies.base import Param, Strategy


class AlwaysLong(Strategy):
    name = "always_long_{tag}"
    description = "test plugin: always fully long"
    params = (Param("size", "float", 1.0, 0.0, 1.0, help="exposure (fraction)"),)

    def targets(self, market, param_sets):
        out = np.zeros((len(param_sets), market.n_bars, len(market.symbols)))
        for i, p in enumerate(param_sets):
            out[i] = self.validate(p)["size"]
        return out


class Impostor(Strategy):
    name = "sma_cross"

    def targets(self, market, param_sets):
        raise AssertionError("never called")


INSTANCE = AlwaysLong()
INSTANCE_NAME = INSTANCE.name
'''


def _install_fake_distribution(tmp_path: Path, monkeypatch, tag: str, entry_points: str) -> None:
    """A real (unzipped) distribution on sys.path: module + *.dist-info with
    METADATA and entry_points.txt, as pip would lay it out."""
    root = tmp_path / f"site_{tag}"
    root.mkdir()
    (root / f"fake_plugin_{tag}.py").write_text(PLUGIN_MODULE.replace("{tag}", tag))
    info = root / f"fake_plugin_{tag}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-plugin-{tag}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).replace("{tag}", tag))
    monkeypatch.syspath_prepend(str(root))


@pytest.fixture
def fresh_registry(monkeypatch):
    registry.refresh()
    yield
    monkeypatch.undo()  # drop the fake distributions from sys.path first
    for mod in [m for m in sys.modules if m.startswith("fake_plugin_")]:
        del sys.modules[mod]
    registry.refresh()


def test_entry_point_plugins_are_discovered_and_broken_ones_warn(tmp_path, monkeypatch, fresh_registry):
    _install_fake_distribution(
        tmp_path,
        monkeypatch,
        "a1",
        """
        [cohortlab.strategies]
        always_long = fake_plugin_{tag}:AlwaysLong
        missing = fake_plugin_missing_module:Nothing
        not_a_strategy = fake_plugin_{tag}:INSTANCE_NAME
        """,
    )
    with pytest.warns(StrategyPluginWarning) as caught:
        names = registry.available()
    messages = " | ".join(str(w.message) for w in caught)
    assert "'missing'" in messages and "fake_plugin_missing_module" in messages
    assert "'not_a_strategy'" in messages
    assert "always_long_a1" in names and set(FAMILIES) <= set(names)
    plugin = registry.get_strategy("always_long_a1")
    assert "fake-plugin-a1" in registry.origin("always_long_a1")
    out = plugin.targets(make_market(np.ones((4, 2))), [{"size": 0.5}])
    assert out.shape == (1, 4, 2) and (out == 0.5).all()


def test_entry_point_may_load_an_instance(tmp_path, monkeypatch, fresh_registry):
    _install_fake_distribution(
        tmp_path, monkeypatch, "b2", "[cohortlab.strategies]\nlong_instance = fake_plugin_{tag}:INSTANCE\n"
    )
    assert type(registry.get_strategy("always_long_b2")).__name__ == "AlwaysLong"


def test_duplicate_family_name_is_an_error_naming_both_origins(tmp_path, monkeypatch, fresh_registry):
    _install_fake_distribution(
        tmp_path, monkeypatch, "c3", "[cohortlab.strategies]\nimpostor = fake_plugin_{tag}:Impostor\n"
    )
    with pytest.raises(StrategyError) as err:
        registry.available()
    msg = str(err.value)
    assert "'sma_cross'" in msg and "simulator.strategies.families.SmaCross" in msg
    assert "fake_plugin_c3:Impostor" in msg
