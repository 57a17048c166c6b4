"""The leverage ramp (risk.policy): table-driven scenarios on the spec's boundaries,
the same scenarios on bankrolls of 50 and 100,000, and Hypothesis properties."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.policy import (TRIGGERS, PeriodRecord, PolicyConfig, PolicyConfigError, decide, decision_id,
                         replay)

CFG = PolicyConfig()


def period(day: int = 1, *, tier: float = 2.0, sharpe: float = 2.0, dd: float = 0.01, trades: int = 5,
           ret: float = 0.01, bankroll: float = 1000.0, hard_stop: bool = False, n_bars: int = 288,
           bar_mean: float = 1e-4, bar_var: float = 1e-6, exposure: float = 1.0) -> PeriodRecord:
    """One UTC day's record; pnl follows from the return and the bankroll."""
    return PeriodRecord(period=f"2018-01-{day:02d}", end=f"2018-01-{day + 1:02d}T00:00:00Z", tier=tier,
                        ret=ret, pnl=ret * bankroll, sharpe=sharpe, max_drawdown=dd, trades=trades,
                        n_bars=n_bars, bar_mean=bar_mean, bar_var=bar_var, exposure=exposure,
                        timeframe="5m", hard_stop=hard_stop)


# (name, record kwargs, decide kwargs, expected tier, expected trigger)
# Kelly with the defaults: 0.5 x exposure 1 x 1e-4 / 1e-6 = 50x, far above the cap (never binds here).
SCENARIOS = [
    ("new subject starts at the base tier", None, {}, 2.0, "initial"),
    ("good day steps up", {}, {}, 3.0, "step_up"),
    ("Sharpe exactly 1.5 does not step up", {"sharpe": 1.5}, {}, 2.0, "hold"),
    ("Sharpe just above 1.5 steps up", {"sharpe": 1.5000001}, {}, 3.0, "step_up"),
    ("drawdown exactly 3 % does not step up", {"dd": 0.03}, {}, 2.0, "hold"),
    ("drawdown just under 3 % steps up", {"dd": 0.0299999}, {}, 3.0, "step_up"),
    ("drawdown exactly 5 % is not a reset", {"dd": 0.05, "tier": 6.0}, {}, 6.0, "hold"),
    ("drawdown over 5 % resets to the base", {"dd": 0.0500001, "tier": 6.0}, {}, 2.0, "drawdown_reset"),
    ("a reset never raises a tier below the base", {"dd": 0.2, "tier": 1.0, "ret": -0.1}, {}, 1.0,
     "drawdown_reset"),
    ("the cap holds at 10x", {"tier": 10.0}, {}, 10.0, "at_cap"),
    ("9x steps up to the cap", {"tier": 9.0}, {}, 10.0, "step_up"),
    ("a losing day at the cap steps down", {"tier": 10.0, "ret": -0.001, "sharpe": -1.0}, {}, 9.0,
     "losing_period"),
    ("a losing day with a great Sharpe still steps down", {"tier": 4.0, "ret": -1e-9}, {}, 3.0, "losing_period"),
    ("losses stop at the floor", {"tier": 1.0, "ret": -0.01}, {}, 1.0, "losing_period"),
    ("too few trades never step up", {"trades": 2}, {}, 2.0, "too_few_trades"),
    ("exactly the minimum of trades steps up", {"trades": 3}, {}, 3.0, "step_up"),
    ("kill switch mid-ramp is 0x", {"tier": 5.0}, {"kill_switch": True}, 0.0, "kill_switch"),
    ("kill switch wins over a good day at the cap", {"tier": 10.0}, {"kill_switch": True}, 0.0, "kill_switch"),
    ("active hard stop is 0x", {"tier": 5.0}, {"hard_stop_active": True}, 0.0, "hard_stop_active"),
    ("back from a halt: the base tier", {"tier": 0.0, "trades": 0, "ret": 0.0, "sharpe": 0.0}, {}, 2.0, "resume"),
    ("a hard stop in the period resets to the base", {"tier": 7.0, "hard_stop": True}, {}, 2.0, "hard_stop"),
    ("flat, profitable but noisy day holds", {"sharpe": 0.4}, {}, 2.0, "hold"),
]


@pytest.mark.parametrize("bankroll", [50.0, 100_000.0])
@pytest.mark.parametrize("name,rec,kw,tier,trigger", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenarios(name, rec, kw, tier, trigger, bankroll):
    record = [] if rec is None else [period(bankroll=bankroll, **rec)]
    d = decide("lineage:abc", record, CFG, **kw)
    assert (d.tier, d.trigger) == (tier, trigger), d.rule
    assert d.trigger in TRIGGERS and 0.0 <= d.tier <= CFG.cap
    if rec is not None:
        assert d.previous_tier == rec.get("tier", 2.0)
        assert d.rationale["period"]["pnl"] == pytest.approx(rec.get("ret", 0.01) * bankroll)


def test_rationale_quotes_every_figure_with_unit_annualisation_and_sample():
    d = decide("lineage:abc", [period(sharpe=2.5, dd=0.012, trades=7, ret=0.004)], CFG)
    figs = {f["name"]: f for f in d.rationale["figures"]}
    assert figs["sharpe"]["value"] == 2.5 and figs["sharpe"]["annualised"] is True
    assert "288 5m bars of 2018-01-01" in figs["sharpe"]["sample"]
    assert figs["max_drawdown"]["annualised"] is False and figs["max_drawdown"]["passed"] is True
    assert figs["trades"]["value"] == 7 and figs["trades"]["threshold"] == ">= 3"
    assert "Sharpe 2.50" in d.rule and "1.20 %" in d.rule and "7 trades" in d.rule
    assert d.next_tier == 4.0 and "Sharpe > 1.5" in d.next_trigger
    assert d.down_tier == 2.0 and "losing" in d.down_trigger


def test_kelly_caps_a_step_up_and_is_shown():
    # per-bar mean 1e-4, variance 4e-5, exposure 2x: full Kelly 2 x 1e-4 / 4e-5 = 5x; half Kelly 2.5x
    # -> rounded down to the 1x ladder: 2x. A step from 2x to 3x is refused; Kelly never lowers a tier.
    rec = [period(bar_mean=1e-4, bar_var=4e-5, exposure=2.0)]
    d = decide("lineage:abc", rec, CFG)
    assert (d.tier, d.trigger) == (2.0, "kelly_cap")
    assert d.rationale["kelly"]["leverage"] == pytest.approx(2.5)
    assert d.rationale["kelly"]["cap"] == 2.0 and "caps step ups at 2x" in d.rule
    high = decide("lineage:abc", [period(tier=6.0, bar_mean=1e-4, bar_var=4e-5, exposure=2.0)], CFG)
    assert (high.tier, high.trigger) == (6.0, "kelly_cap")
    # quarter Kelly of 1.25x -> no grant above 1x at all; still no cut
    cfg = PolicyConfig(kelly_fraction=0.25)
    assert decide("lineage:abc", rec, cfg).tier == 2.0


def test_kelly_needs_enough_bars():
    d = decide("lineage:abc", [period(n_bars=10, bar_var=1.0)], CFG)
    assert d.trigger == "step_up" and d.rationale["kelly"]["cap"] is None
    assert "10 bars < 30" in d.rationale["kelly"]["note"]


def test_replay_ramps_and_steps_down_day_by_day():
    days = [period(1), period(2), period(3, ret=-0.01, sharpe=-2), period(4, dd=0.08, ret=-0.02),
            period(5), period(6, trades=0, ret=0.0, sharpe=0.0)]
    path = [d.tier for d in replay("parent:c1", days, CFG)]
    assert path == [3.0, 4.0, 3.0, 2.0, 3.0, 3.0]
    assert [d.previous_tier for d in replay("parent:c1", days, CFG)] == [2.0, 3.0, 4.0, 3.0, 2.0, 3.0]
    ks = replay("parent:c1", days, CFG, kill_switch_periods={"2018-01-02"})
    assert [d.tier for d in ks] == [3.0, 0.0, 2.0, 2.0, 3.0, 3.0]


def test_bad_subject_and_config_are_clear_errors():
    with pytest.raises(PolicyConfigError, match="subject='agent:1'"):
        decide("agent:1", [], CFG)
    with pytest.raises(PolicyConfigError, match="base_tier=12"):
        PolicyConfig(base_tier=12)
    with pytest.raises(PolicyConfigError, match="unknown policy setting"):
        PolicyConfig.from_dict({"sharpe": 1})
    with pytest.raises(PolicyConfigError, match="outside"):
        decide("lineage:x", [period(tier=11.0)], CFG)


def test_decision_id_is_deterministic_per_market_subject_period():
    a = decision_id("binance-5m|5m|BTC", "lineage:abc", "2018-01-15")
    assert a == decision_id("binance-5m|5m|BTC", "lineage:abc", "2018-01-15")
    assert a != decision_id("binance-5m|5m|BTC", "lineage:abc", "2018-01-16")
    assert a != decision_id("coinbase-1m|1m|USD", "lineage:abc", "2018-01-15")


# ------------------------------------------------------------------ Hypothesis
periods = st.builds(
    lambda sharpe, dd, trades, ret, hs, mean, var: dict(sharpe=sharpe, dd=dd, trades=trades, ret=ret,
                                                        hard_stop=hs, bar_mean=mean, bar_var=var),
    st.floats(-10, 10), st.floats(0, 0.5), st.integers(0, 20), st.floats(-0.2, 0.2), st.booleans(),
    st.floats(-1e-3, 1e-3), st.floats(1e-8, 1e-3))
configs = st.builds(lambda base, cap, frac: PolicyConfig(base_tier=min(base, cap), cap=cap, kelly_fraction=frac),
                    st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([3.0, 5.0, 10.0]),
                    st.sampled_from([0.25, 0.5, 1.0]))


def _record(items):
    return [period(i + 1, **kw) for i, kw in enumerate(items)]


@settings(max_examples=200, deadline=None)
@given(st.lists(periods, min_size=1, max_size=12), configs, st.sets(st.integers(1, 12), max_size=3))
def test_tier_stays_in_range_and_never_rises_on_a_loss_or_thin_evidence(items, cfg, ks_days):
    record = _record(items)
    kill = {f"2018-01-{d:02d}" for d in ks_days}
    for r, d in zip(record, replay("lineage:h", record, cfg, kill_switch_periods=kill)):
        assert 0.0 <= d.tier <= cfg.cap
        if d.trigger == "resume":  # back from a halt to the base tier, whatever the flat period showed
            assert d.previous_tier == 0.0 and d.tier == cfg.base_tier
            continue
        if r.ret < 0 or r.trades < cfg.min_trades:
            assert d.tier <= d.previous_tier


@settings(max_examples=100, deadline=None)
@given(st.lists(periods, min_size=1, max_size=10), configs)
def test_replaying_the_same_track_record_gives_the_same_decisions(items, cfg):
    record = _record(items)
    assert replay("parent:p", record, cfg) == replay("parent:p", list(record), cfg)
