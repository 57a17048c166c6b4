"""Rollback triggers (risk.rollback): each trigger alone with hand-worked figures, several at
once in the fixed order, none, bad inputs, and Hypothesis properties."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.rollback import (ORDER, TRIGGERS, DeploymentState, RollbackConfig, RollbackError, RollbackVerdict,
                           evaluate, timer_expiry)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
START = "2024-01-01T00:00:00Z"
EXPIRES = "2024-01-04T00:00:00Z"  # the default 3-day timer


def stamps(n: int) -> list[str]:
    """``n`` 5-minute bar times from START, as ISO strings."""
    return [(T0 + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]


def state(equity=(100.0, 101.0), *, allocation=100.0, bt_var=1e-4, **kw) -> DeploymentState:
    kw.setdefault("started_at", START)
    kw.setdefault("expires_at", EXPIRES)
    kw.setdefault("policy_tier", 2.0)
    return DeploymentState(allocation=allocation, equity=list(equity), timestamps=stamps(len(equity)),
                           backtest_bar_variance=bt_var, **kw)


def after_last_bar(n: int) -> str:
    return (T0 + timedelta(minutes=5 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")


# 30 bars alternating +1 % / -1 %: returns +-0.01, mean 0, variance (ddof 1) = 30 * 1e-4 / 29.
ALT30 = list(100.0 * np.cumprod([1.01 if i % 2 == 0 else 0.99 for i in range(30)]))
ALT_VAR = 30 * 1e-4 / 29
# allocation 100, equity 102, 99.96, 101.9592: returns 0.02, -0.02, 0.02 (drawdown 2 %), mean 0.02/3,
# squared deviations (0.0016 + 0.0064 + 0.0016)/9 = 0.0096/9, variance (ddof 1) = 0.0048/9 = 1/1875.
HAND3 = [102.0, 99.96, 101.9592]
SMALL = RollbackConfig(variance_window=4, min_bars_for_variance=3)

# (name, state kwargs, config, now, expected trigger, expected figure, expected threshold)
SINGLE = [
    ("kill switch", {"kill_switch": True}, None, None, "kill_switch", 1.0, 1.0),
    ("daily hard stop", {"hard_stop_active": True}, None, None, "hard_stop", 1.0, 1.0),
    ("policy tier 0", {"policy_tier": 0.0}, None, None, "policy_tier_zero", 0.0, 0.0),
    ("drawdown 1 - 104.4/110 = 5.09 %", {"equity": [100.0, 110.0, 104.4]}, None, None, "drawdown",
     1 - 104.4 / 110, 0.05),
    ("drawdown from the allocation: 1 - 94.9/100 = 5.1 %", {"equity": [94.9]}, None, None, "drawdown",
     0.051, 0.05),
    ("drawdown peak then recovery still fires (max, not current)", {"equity": [100.0, 110.0, 104.0, 120.0]},
     None, None, "drawdown", 1 - 104 / 110, 0.05),
    ("variance 1/1875 over 1.6e-4 = 3.33x", {"equity": HAND3, "bt_var": 1.6e-4}, SMALL, None, "variance",
     10 / 3, 3.0),
    ("variance of 30 alternating bars over 3e-5", {"equity": ALT30, "bt_var": 3e-5}, None, None, "variance",
     ALT_VAR / 3e-5, 3.0),
    ("timer at expiry", {}, None, EXPIRES, "timer", 3.0, 3.0),
    ("timer after expiry", {}, None, "2024-01-04T12:00:00Z", "timer", 3.5, 3.0),
]


@pytest.mark.parametrize("name,kw,cfg,now,trigger,figure,threshold", SINGLE, ids=[s[0] for s in SINGLE])
def test_each_trigger_alone(name, kw, cfg, now, trigger, figure, threshold):
    kw = dict(kw)
    eq = kw.pop("equity", [100.0, 101.0])
    st_ = state(eq, **kw)
    v = evaluate(st_, cfg, now or after_last_bar(len(eq)))
    assert v.rollback and v.trigger == trigger
    assert [i.trigger for i in v.incidents] == [trigger]
    inc = v.incidents[0]
    assert inc.figure == pytest.approx(figure, rel=1e-12)
    assert inc.threshold == pytest.approx(threshold)
    assert inc.unit and inc.sample and inc.at
    assert v.checks[trigger] == "fired"
    assert list(v.checks) == list(ORDER)


# (name, state kwargs, config, now, check name, expected check status)
QUIET = [
    ("drawdown exactly 5 % from a peak: 110 -> 104.5", {"equity": [100.0, 110.0, 104.5]}, None, None,
     "drawdown", "clear"),
    ("drawdown exactly 5 % from the allocation: 100 -> 95", {"equity": [95.0]}, None, None, "drawdown", "clear"),
    ("drawdown just under 5 %", {"equity": [100.0, 110.0, 104.51]}, None, None, "drawdown", "clear"),
    ("variance ratio exactly 3: 1/1875 over 1/5625", {"equity": HAND3, "bt_var": 1 / 5625}, SMALL, None,
     "variance", "clear"),
    ("variance not before min bars (29 < 30)", {"equity": ALT30[:29], "bt_var": 1e-9}, None, None, "variance",
     "not evaluated: 29 bar(s) < min_bars_for_variance=30"),
    ("variance not before min bars (2 < 3)", {"equity": HAND3[:2], "bt_var": 1e-9}, SMALL, None, "variance",
     "not evaluated: 2 bar(s) < min_bars_for_variance=3"),
    ("timer a second before expiry", {}, None, "2024-01-03T23:59:59Z", "timer", "clear"),
    ("no timer", {"expires_at": None}, None, "2030-01-01T00:00:00Z", "timer", "off"),
    ("tier 1x is not a halt", {"policy_tier": 1.0}, None, None, "policy_tier_zero", "clear"),
    ("no policy decision yet", {"policy_tier": None}, None, None, "policy_tier_zero",
     "not evaluated: no policy decision yet"),
    ("kill switch trigger off", {"kill_switch": True}, RollbackConfig(kill_switch_trigger=False), None,
     "kill_switch", "off"),
    ("hard stop trigger off", {"hard_stop_active": True}, RollbackConfig(hard_stop_trigger=False), None,
     "hard_stop", "off"),
    ("tier-0 trigger off", {"policy_tier": 0.0}, RollbackConfig(tier_zero_trigger=False), None,
     "policy_tier_zero", "off"),
    ("no bar yet", {"equity": []}, None, None, "drawdown", "clear"),
]


@pytest.mark.parametrize("name,kw,cfg,now,check,status", QUIET, ids=[s[0] for s in QUIET])
def test_boundaries_and_switched_off_triggers_do_not_fire(name, kw, cfg, now, check, status):
    kw = dict(kw)
    eq = kw.pop("equity", [100.0, 101.0])
    v = evaluate(state(eq, **kw), cfg, now or after_last_bar(len(eq)))
    assert v == RollbackVerdict(False, None, [], v.checks)
    assert v.checks[check] == status


def test_nothing_fires_on_a_healthy_deployment():
    v = evaluate(state(ALT30, bt_var=1e-4), RollbackConfig(), after_last_bar(30))
    assert not v.rollback and v.trigger is None and v.incidents == []
    assert v.checks == {"kill_switch": "clear", "hard_stop": "clear", "policy_tier_zero": "clear",
                        "drawdown": "clear", "variance": "clear", "timer": "clear"}


def test_all_triggers_at_once_are_listed_in_the_fixed_order():
    # allocation 100, 30 bars: a 10 % loss on bar 0 then the alternating path -> drawdown and variance
    eq = [90.0] + [90.0 * x / 100 for x in ALT30[:29]]
    s = state(eq, bt_var=1e-6, kill_switch=True, hard_stop_active=True, policy_tier=0.0)
    v = evaluate(s, None, "2024-01-05T00:00:00Z")
    assert v.trigger == "kill_switch"
    assert [i.trigger for i in v.incidents] == list(ORDER) == list(TRIGGERS)
    assert all(c == "fired" for c in v.checks.values())


def test_order_picks_the_first_firing_trigger():
    s = state([100.0, 110.0, 104.4], policy_tier=0.0)
    v = evaluate(s, None, EXPIRES)
    assert v.trigger == "policy_tier_zero"
    assert [i.trigger for i in v.incidents] == ["policy_tier_zero", "drawdown", "timer"]


def test_drawdown_incident_figures():
    v = evaluate(state([100.0, 110.0, 104.4, 106.0]), None, after_last_bar(4))
    (inc,) = v.incidents
    d = inc.detail
    assert d["peak_equity"] == 110.0 and d["peak_at"] == "2024-01-01T00:05:00Z"
    assert d["trough_equity"] == 104.4 and d["trough_at"] == "2024-01-01T00:10:00Z"
    assert d["first_breach_at"] == inc.at == "2024-01-01T00:10:00Z"
    assert d["current_drawdown"] == pytest.approx(1 - 106 / 110)
    assert d["loss_from_peak_quote"] == pytest.approx(5.6)
    assert inc.unit == "fraction of peak equity" and d["annualised"] is False
    assert inc.sample == "equity at 4 bar(s) from 2024-01-01T00:00:00Z to 2024-01-01T00:15:00Z"


def test_drawdown_from_the_allocation_names_it_as_the_peak():
    (inc,) = evaluate(state([94.9]), None, after_last_bar(1)).incidents
    assert inc.detail["peak_equity"] == 100.0 and inc.detail["peak_at"] == "allocation (start)"


def test_variance_incident_figures_and_window():
    (inc,) = evaluate(state(HAND3, bt_var=1.6e-4), SMALL, after_last_bar(3)).incidents
    d = inc.detail
    assert d["realised_variance"] == pytest.approx(1 / 1875, rel=1e-12)
    assert d["backtest_variance"] == 1.6e-4 and d["window_bars"] == 3 and d["window_setting"] == 4
    assert d["mean_bar_return"] == pytest.approx(0.02 / 3)
    assert inc.at == "2024-01-01T00:10:00Z"


def test_variance_uses_only_the_last_window_of_bars():
    # a wild first 10 bars (+-20 %) then the calm alternating 30: a 30-bar window sees only the calm part
    wild = list(100.0 * np.cumprod([1.2 if i % 2 == 0 else 1 / 1.2 for i in range(10)]))
    eq = wild + [wild[-1] * x / 100 for x in ALT30]
    cfg = RollbackConfig(variance_window=30, min_bars_for_variance=30, max_drawdown=0.5)
    v = evaluate(state(eq, bt_var=ALT_VAR), cfg, after_last_bar(len(eq)))
    assert not v.rollback and v.checks["variance"] == "clear"
    v = evaluate(state(eq, bt_var=ALT_VAR), RollbackConfig(variance_window=40, max_drawdown=0.5),
                 after_last_bar(len(eq)))
    assert v.trigger == "variance" and v.incidents[0].detail["window_bars"] == 40


def test_timer_incident_figures():
    (inc,) = evaluate(state(), None, "2024-01-04T12:00:00Z").incidents
    assert inc.detail == {"started_at": START, "expires_at": EXPIRES, "now": "2024-01-04T12:00:00Z",
                          "elapsed_days": 3.5, "timer_days": 3.0, "overdue_days": 0.5}
    assert inc.at == EXPIRES and inc.unit == "days since start"


def test_timer_expiry_and_instant_forms():
    assert timer_expiry(START) == EXPIRES
    assert timer_expiry("2024-01-01T00:00:00", RollbackConfig(timer_days=0.5)) == "2024-01-01T12:00:00Z"
    # an aware datetime in another zone, a naive datetime (UTC) and datetime64 all mean the same instant
    cet = timezone(timedelta(hours=1))
    for now in (datetime(2024, 1, 4, 1, 0, tzinfo=cet), datetime(2024, 1, 4), np.datetime64("2024-01-04T00:00")):
        assert evaluate(state(), None, now).trigger == "timer"
    ts = np.array(["2024-01-01T00:00", "2024-01-01T00:05"], dtype="datetime64[ns]")
    s = DeploymentState(100.0, [100.0, 94.0], ts, START, 1e-4)
    assert s.timestamps.dtype == np.dtype("datetime64[ns]") and not s.equity.flags.writeable
    assert evaluate(s, None, "2024-01-01T00:10:00+00:00").trigger == "drawdown"


def test_verdict_is_json_ready():
    import json
    v = evaluate(state([100.0, 110.0, 104.4], kill_switch=True), None, EXPIRES)
    d = json.loads(json.dumps(v.to_dict()))
    assert d["trigger"] == "kill_switch" and len(d["incidents"]) == 3
    assert set(d["incidents"][0]) == {"trigger", "figure", "threshold", "unit", "sample", "detail", "at"}


# --------------------------------------------------------------------------- bad inputs

BAD_STATE = [
    ("allocation", {"allocation": 0.0}),
    ("allocation", {"allocation": float("nan")}),
    ("allocation", {"allocation": True}),
    ("equity[1]", {"equity": [100.0, -1.0]}),
    ("equity[0]", {"equity": [float("inf")]}),
    ("equity has shape", {"equity": [[100.0]], "timestamps": ["2024-01-01T00:00Z"]}),
    ("timestamps has shape", {"timestamps": ["2024-01-01T00:00Z"]}),
    ("timestamps[1]", {"timestamps": ["2024-01-01T00:05Z", "2024-01-01T00:00Z"]}),
    ("timestamps[1]", {"timestamps": ["2024-01-01T00:00Z", "2024-01-01T00:00Z"]}),
    ("timestamps[0]", {"timestamps": ["not a time", "2024-01-01T00:05Z"]}),
    ("started_at", {"started_at": 12345}),
    ("expires_at", {"expires_at": START}),
    ("backtest_bar_variance", {"bt_var": 0.0}),
    ("backtest_bar_variance", {"bt_var": -1e-4}),
    ("policy_tier", {"policy_tier": -1.0}),
    ("kill_switch", {"kill_switch": "yes"}),
    ("hard_stop_active", {"hard_stop_active": 1}),
]


@pytest.mark.parametrize("needle,kw", BAD_STATE, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_STATE)])
def test_bad_state_raises_a_value_error_naming_the_value(needle, kw):
    kw = dict(kw)
    eq = kw.pop("equity", [100.0, 101.0])
    ts = kw.pop("timestamps", None)
    with pytest.raises(RollbackError, match=needle.replace("[", r"\[").replace("]", r"\]")) as e:
        if ts is None:
            state(eq, **kw)
        else:
            kw2 = {"started_at": START, "policy_tier": 2.0, **kw}
            DeploymentState(100.0, eq, ts, backtest_bar_variance=kw2.pop("bt_var", 1e-4), **kw2)
    assert isinstance(e.value, ValueError)


BAD_CONFIG = [
    ("max_drawdown", {"max_drawdown": 0.0}),
    ("max_drawdown", {"max_drawdown": 1.0}),
    ("variance_ratio", {"variance_ratio": float("inf")}),
    ("variance_ratio", {"variance_ratio": -1.0}),
    ("variance_window", {"variance_window": 1}),
    ("min_bars_for_variance", {"min_bars_for_variance": 61}),
    ("timer_days", {"timer_days": 0}),
    ("kill_switch_trigger", {"kill_switch_trigger": 1}),
    ("unknown rollback setting", {"max_dd": 0.1}),
]


@pytest.mark.parametrize("needle,kw", BAD_CONFIG, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_CONFIG)])
def test_bad_config_raises_a_value_error_naming_the_value(needle, kw):
    with pytest.raises(ValueError, match=needle):
        RollbackConfig.from_dict(kw)


@pytest.mark.parametrize("needle,now", [("now", "yesterday"), ("before started_at", "2023-12-31T00:00:00Z"),
                                        ("before the last bar", "2024-01-01T00:01:00Z")])
def test_bad_now_raises(needle, now):
    with pytest.raises(RollbackError, match=needle):
        evaluate(state(), None, now)


def test_defaults_round_trip():
    cfg = RollbackConfig()
    assert (cfg.max_drawdown, cfg.variance_window, cfg.variance_ratio, cfg.min_bars_for_variance,
            cfg.timer_days) == (0.05, 60, 3.0, 30, 3.0)
    assert cfg.kill_switch_trigger and cfg.hard_stop_trigger and cfg.tier_zero_trigger
    assert RollbackConfig.from_dict(cfg.to_dict()) == cfg


# --------------------------------------------------------------------------- properties

equities = st.lists(st.floats(min_value=1.0, max_value=1e6, allow_nan=False), min_size=0, max_size=80)


@settings(max_examples=200, deadline=None)
@given(equities, st.floats(min_value=1.0, max_value=1e6), st.floats(min_value=0.0, max_value=0.5))
def test_a_new_equity_peak_never_triggers_drawdown(eq, allocation, up):
    cfg = RollbackConfig()
    before = evaluate(state(eq, allocation=allocation), cfg, after_last_bar(len(eq)))
    peak = max([allocation, *eq])
    grown = eq + [peak * (1 + up)]
    after = evaluate(state(grown, allocation=allocation), cfg, after_last_bar(len(grown)))
    # the new bar is never the breach: the drawdown verdict is unchanged, and clear stays clear
    assert after.checks["drawdown"] == before.checks["drawdown"]
    if before.checks["drawdown"] == "clear":
        assert "drawdown" not in [i.trigger for i in after.incidents]
    else:
        assert [i for i in after.incidents if i.trigger == "drawdown"][0].at == \
            [i for i in before.incidents if i.trigger == "drawdown"][0].at


@settings(max_examples=100, deadline=None)
@given(equities, st.floats(min_value=1e-8, max_value=1e-2), st.booleans(), st.booleans(),
       st.sampled_from([None, 0.0, 1.0, 3.0]), st.integers(min_value=0, max_value=5 * 86_400))
def test_replaying_the_same_state_gives_the_same_verdict(eq, bt_var, kill, stop, tier, secs):
    s = state(eq, bt_var=bt_var, kill_switch=kill, hard_stop_active=stop, policy_tier=tier)
    now = max(T0 + timedelta(seconds=secs), T0 + timedelta(minutes=5 * len(eq)))
    first = evaluate(s, None, now)
    assert evaluate(s, None, now) == first
    again = state(list(eq), bt_var=bt_var, kill_switch=kill, hard_stop_active=stop, policy_tier=tier)
    assert evaluate(again, RollbackConfig(), now).to_dict() == first.to_dict()
    assert first.rollback == bool(first.incidents)
    assert first.trigger == (first.incidents[0].trigger if first.incidents else None)
    assert [i.trigger for i in first.incidents] == [n for n in ORDER if first.checks[n] == "fired"]
