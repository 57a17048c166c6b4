"""Rollback triggers of a micro-live deployment: the pure check run on every bar.

A deployment trades an **allocation** (quote currency) carved from a parent
bankroll. After each processed bar the deployment loop builds a
:class:`DeploymentState` and calls :func:`evaluate`; a verdict with
``rollback=True`` means "flatten at the next bar and return the capital". This
module only decides; flattening, the ledger and alerts live in the manager.

Triggers, in the order they are checked (defaults from :class:`RollbackConfig`).
Every trigger that fires is reported as an :class:`Incident`; the first one in
this order is the verdict's ``trigger``:

1. ``kill_switch``: the persisted kill switch is on.
2. ``hard_stop``: a daily hard stop is active (the manager's daily loss stop).
3. ``policy_tier_zero``: the leverage policy (:mod:`risk.policy`) has stepped
   the lineage's tier to 0x (a halt).
4. ``drawdown``: the allocation's maximum drawdown since the start is over 5 %:
   the largest fall of the equity curve from its running peak, the peak
   including the allocation itself, as a fraction of that peak (Magdon-Ismail
   & Atiya 2004, via :func:`simulator.metrics.performance.drawdown_curve`;
   not annualised). The maximum, not the current drawdown, so a breach missed
   by a skipped evaluation (a restarted worker) still rolls back.
5. ``variance``: the realised variance (ddof 1) of the per-bar simple returns
   over the last 60 bars is over 3x the backtest's per-bar variance; not
   evaluated before 30 bars (a variance from fewer bars is too noisy: its
   relative standard error is about sqrt(2 / (n - 1)), 26 % at n = 30).
6. ``timer``: the rollback timer: ``now`` is at or after ``expires_at`` (the
   deployment ends after 3 days unless re-approved, which moves ``expires_at``).

Comparisons are strict as the spec reads ("over 5 %", "over 3x"), with a
tolerance of 1e-12 so that a fall of exactly 5 % in decimal figures
(100 -> 95) is not tipped over by float rounding. The timer fires *at* expiry.

:func:`evaluate` is a pure function: the same state, config and ``now`` give
the same verdict, and nothing outside the arguments (no clock) is read.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np

from simulator.metrics.performance import bar_returns, drawdown_curve

__all__ = ["RollbackError", "RollbackConfig", "DeploymentState", "Incident", "RollbackVerdict", "evaluate",
           "timer_expiry", "TRIGGERS", "ORDER"]

#: Every rollback trigger, in the order :func:`evaluate` checks them, with what it means.
TRIGGERS = {
    "kill_switch": "the kill switch is on",
    "hard_stop": "a daily hard stop is active",
    "policy_tier_zero": "the leverage policy stepped the lineage's tier to 0x",
    "drawdown": "the allocation's max drawdown is over the limit",
    "variance": "the realised per-bar variance over the window is over the ratio x the backtest's",
    "timer": "the rollback timer expired (not re-approved)",
}
#: The fixed check order (the first firing trigger names the verdict).
ORDER = tuple(TRIGGERS)

#: Slack on the strict comparisons, so exact decimal boundaries are not tipped by rounding.
_EPS = 1e-12
_DAY_NS = 86_400 * 10**9


class RollbackError(ValueError):
    """A rollback setting or deployment input out of range; the message names it and what is allowed."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RollbackConfig:
    """The rollback settings; every default follows the product spec.

    Attributes:
        max_drawdown: roll back when the allocation's max drawdown is strictly
            over this fraction of its peak equity (0.05 = 5 %, the policy's
            ``drawdown_reset``: a fall that resets a lineage's tier also ends
            its live trial).
        variance_window: bars of per-bar returns the realised variance is taken
            over (60: 5 hours of 5-minute bars, recent enough to catch a regime
            change within the day).
        variance_ratio: roll back when the realised variance is strictly over
            this multiple of the backtest's per-bar variance (3.0: a volatility
            sqrt(3) = 1.73x the backtest's, beyond what sampling noise of a
            30-60-bar variance explains, ~26 % relative error at 30 bars).
        min_bars_for_variance: fewest bars before the variance trigger is
            evaluated (30); must not exceed ``variance_window``.
        timer_days: the rollback timer, days (3.0, the Day-3 review cadence): a
            deployment started at ``t`` expires at ``t + timer_days`` unless
            re-approved (:func:`timer_expiry`); :func:`evaluate` reads the
            state's ``expires_at``, which re-approval moves.
        kill_switch_trigger, hard_stop_trigger, tier_zero_trigger: whether the
            kill switch, the daily hard stop and a 0x policy tier roll back
            (all on; switching one off is for tests and drills only).

    Raises:
        RollbackError: on construction, for a value out of range.
    """

    max_drawdown: float = 0.05
    variance_window: int = 60
    variance_ratio: float = 3.0
    min_bars_for_variance: int = 30
    timer_days: float = 3.0
    kill_switch_trigger: bool = True
    hard_stop_trigger: bool = True
    tier_zero_trigger: bool = True

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise RollbackError(f"rollback {name}={getattr(self, name)!r} is not allowed; allowed: {allowed}")

        for name in ("max_drawdown", "variance_ratio", "timer_days"):
            need(_is_number(getattr(self, name)), name, "a finite number")
        need(0 < self.max_drawdown < 1, "max_drawdown", "a fraction in (0, 1)")
        need(self.variance_ratio > 0, "variance_ratio", "a multiple > 0")
        need(self.timer_days > 0, "timer_days", "days > 0")
        for name in ("variance_window", "min_bars_for_variance"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 2, name, "an integer >= 2")
        need(self.min_bars_for_variance <= self.variance_window, "min_bars_for_variance",
             f"an integer in [2, variance_window={self.variance_window}]")
        for name in ("kill_switch_trigger", "hard_stop_trigger", "tier_zero_trigger"):
            need(isinstance(getattr(self, name), bool), name, "True or False")

    def to_dict(self) -> dict:
        """JSON-ready copy of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "RollbackConfig":
        """Settings from a mapping; unknown keys are an error naming them."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RollbackError(f"unknown rollback setting(s) {', '.join(unknown)}; "
                                f"allowed: {', '.join(sorted(names))}")
        return cls(**d)


# --------------------------------------------------------------------------- time helpers


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and math.isfinite(float(v))


def _instant(value: Any, name: str) -> np.datetime64:
    """An instant as ``datetime64[ns]`` UTC (naive datetimes and zone-less strings are UTC)."""
    try:
        if isinstance(value, np.datetime64):
            out = value.astype("datetime64[ns]")
        elif isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            out = np.datetime64(value, "ns")
        elif isinstance(value, str) and value:
            out = _instant(datetime.fromisoformat(value), name)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise RollbackError(f"{name}={value!r} is not an instant; allowed: a datetime, a datetime64 "
                            f"or an ISO 8601 string") from None
    if np.isnat(out):
        raise RollbackError(f"{name}={value!r} is not an instant (NaT)")
    return out


def _iso(t: np.datetime64) -> str:
    """ISO 8601 UTC text of an instant (seconds, or finer when the instant has a fraction)."""
    unit = "s" if int(t.astype("int64")) % 10**9 == 0 else "ns"
    return f"{np.datetime_as_string(t, unit=unit)}Z"


def _days(delta_ns: int) -> float:
    return delta_ns / _DAY_NS


def timer_expiry(started_at: Any, config: RollbackConfig | None = None) -> str:
    """When a deployment started (or re-approved) at ``started_at`` expires: ISO 8601 UTC.

    ``started_at + config.timer_days`` days; the value to put in
    :attr:`DeploymentState.expires_at`.

    Raises:
        RollbackError: ``started_at`` is not an instant.
    """
    cfg = config or RollbackConfig()
    start = _instant(started_at, "started_at")
    return _iso(start + np.timedelta64(round(cfg.timer_days * _DAY_NS), "ns"))


# --------------------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True, eq=False)
class DeploymentState:
    """What the deployment loop knows after its last processed bar.

    Normalised on construction: ``equity`` becomes a read-only ``(T,) float64``
    copy, ``timestamps`` a read-only ``(T,) datetime64[ns]`` (UTC), and the
    instants ``datetime64[ns]`` (UTC).

    Attributes:
        allocation: capital reserved for the deployment, quote currency (> 0);
            the equity before the first bar, so the drawdown peak includes it.
        equity: ``(T,)`` account value of the allocation at each processed
            bar's close, quote currency (>= 0); ``T`` may be 0 (no bar yet).
        timestamps: ``(T,)`` the bars' times, strictly increasing:
            ``datetime64`` or ISO 8601 strings (no zone = UTC).
        started_at: when the deployment started (instant).
        backtest_bar_variance: variance (ddof 1) of the agent's per-bar simple
            returns in the approving backtest, same bar length (> 0).
        expires_at: end of the rollback timer (instant, after ``started_at``);
            None = no timer.
        policy_tier: the lineage's current tier from :mod:`risk.policy`
            (multiple of equity, >= 0); None = no decision yet.
        kill_switch: the persisted kill switch is on.
        hard_stop_active: a daily hard stop is active now.

    Raises:
        RollbackError: a value out of range, named in the message.
    """

    allocation: float
    equity: Any
    timestamps: Any
    started_at: Any
    backtest_bar_variance: float
    expires_at: Any = None
    policy_tier: float | None = None
    kill_switch: bool = False
    hard_stop_active: bool = False

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if not (_is_number(self.allocation) and self.allocation > 0):
            raise RollbackError(f"allocation={self.allocation!r} is not allowed; allowed: a finite amount > 0")
        put("allocation", float(self.allocation))
        try:
            eq = np.array(self.equity, dtype=np.float64)
        except (TypeError, ValueError):
            raise RollbackError(f"equity={self.equity!r} is not a (T,) array of numbers") from None
        if eq.ndim != 1:
            raise RollbackError(f"equity has shape {eq.shape}; allowed: (T,)")
        bad = np.flatnonzero(~np.isfinite(eq) | (eq < 0))
        if bad.size:
            raise RollbackError(f"equity[{bad[0]}]={eq[bad[0]]!r} is not allowed; allowed: finite and >= 0")
        eq.setflags(write=False)
        put("equity", eq)

        raw = self.timestamps
        if isinstance(raw, np.ndarray) and np.issubdtype(raw.dtype, np.datetime64):
            ts = raw.astype("datetime64[ns]")
            nat = np.flatnonzero(np.isnat(ts))
            if nat.size:
                raise RollbackError(f"timestamps[{nat[0]}] is NaT; allowed: instants")
        else:
            if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__"):
                raise RollbackError(f"timestamps={raw!r} is not a (T,) sequence of instants")
            ts = np.array([_instant(v, f"timestamps[{i}]") for i, v in enumerate(raw)], dtype="datetime64[ns]")
        if ts.ndim != 1 or ts.shape != eq.shape:
            raise RollbackError(f"timestamps has shape {ts.shape}; allowed: the equity's shape {eq.shape}")
        back = np.flatnonzero(np.diff(ts) <= np.timedelta64(0, "ns"))
        if back.size:
            i = int(back[0]) + 1
            raise RollbackError(f"timestamps[{i}]={_iso(ts[i])} is not after timestamps[{i - 1}]="
                                f"{_iso(ts[i - 1])}; allowed: strictly increasing")
        ts = ts.copy()
        ts.setflags(write=False)
        put("timestamps", ts)

        start = _instant(self.started_at, "started_at")
        put("started_at", start)
        if self.expires_at is not None:
            end = _instant(self.expires_at, "expires_at")
            if end <= start:
                raise RollbackError(f"expires_at={_iso(end)} is not after started_at={_iso(start)}")
            put("expires_at", end)
        if not (_is_number(self.backtest_bar_variance) and self.backtest_bar_variance > 0):
            raise RollbackError(f"backtest_bar_variance={self.backtest_bar_variance!r} is not allowed; "
                                f"allowed: a finite variance > 0")
        put("backtest_bar_variance", float(self.backtest_bar_variance))
        if self.policy_tier is not None:
            if not (_is_number(self.policy_tier) and self.policy_tier >= 0):
                raise RollbackError(f"policy_tier={self.policy_tier!r} is not allowed; "
                                    f"allowed: None or a finite multiple >= 0")
            put("policy_tier", float(self.policy_tier))
        for name in ("kill_switch", "hard_stop_active"):
            v = getattr(self, name)
            if not isinstance(v, (bool, np.bool_)):
                raise RollbackError(f"{name}={v!r} is not allowed; allowed: True or False")
            put(name, bool(v))


@dataclass(frozen=True)
class Incident:
    """One trigger that fired, with its figures.

    Attributes:
        trigger: a key of :data:`TRIGGERS`.
        figure: the measured value (drawdown fraction, variance ratio, days
            elapsed, tier; 1.0 for a switch that is on).
        threshold: what it was compared with (same unit as ``figure``).
        unit: the unit of ``figure`` and ``threshold``.
        sample: what the figure was measured over.
        detail: the supporting figures (JSON-ready).
        at: ISO 8601 UTC instant of the breach: the first bar over the drawdown
            limit, the last bar of the variance window, the timer's expiry, or
            ``now`` for the switches and the tier.
    """

    trigger: str
    figure: float
    threshold: float
    unit: str
    sample: str
    detail: dict = field(default_factory=dict)
    at: str = ""

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)


@dataclass(frozen=True)
class RollbackVerdict:
    """What :func:`evaluate` returns.

    Attributes:
        rollback: whether any trigger fired.
        trigger: the first firing trigger in :data:`ORDER`, or None.
        incidents: every firing trigger, in :data:`ORDER`.
        checks: each trigger of :data:`ORDER` -> ``"fired"``, ``"clear"``,
            ``"off"`` (disabled, or no timer) or ``"not evaluated: <why>"``.
    """

    rollback: bool
    trigger: str | None
    incidents: list[Incident] = field(default_factory=list)
    checks: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)


# --------------------------------------------------------------------------- the checks


def _bars_sample(state: DeploymentState, lo: int, hi: int) -> str:
    n = hi - lo
    if n <= 0:
        return "no bars"
    return f"{n} bar(s) from {_iso(state.timestamps[lo])} to {_iso(state.timestamps[hi - 1])}"


def _drawdown(state: DeploymentState, cfg: RollbackConfig) -> tuple[str, Incident | None]:
    eq, t = state.equity, state.equity.shape[0]
    if t == 0:
        return "clear", None
    dd = drawdown_curve(eq, state.allocation)
    trough = int(np.argmax(dd))
    worst = float(dd[trough])
    if not worst > cfg.max_drawdown + _EPS:
        return "clear", None
    first = int(np.flatnonzero(dd > cfg.max_drawdown + _EPS)[0])
    head = eq[:trough + 1]
    top = int(np.argmax(head))
    from_allocation = state.allocation >= head[top]
    peak = state.allocation if from_allocation else float(head[top])
    detail = {
        "max_drawdown": worst, "current_drawdown": float(dd[-1]),
        "peak_equity": peak, "peak_at": "allocation (start)" if from_allocation else _iso(state.timestamps[top]),
        "trough_equity": float(eq[trough]), "trough_at": _iso(state.timestamps[trough]),
        "first_breach_at": _iso(state.timestamps[first]), "equity_now": float(eq[-1]),
        "allocation": state.allocation, "loss_from_peak_quote": peak - float(eq[trough]),
        "annualised": False, "method": "Magdon-Ismail & Atiya (2004); peak includes the allocation",
    }
    return "fired", Incident("drawdown", worst, cfg.max_drawdown, "fraction of peak equity",
                             f"equity at {_bars_sample(state, 0, t)}", detail, _iso(state.timestamps[first]))


def _variance(state: DeploymentState, cfg: RollbackConfig) -> tuple[str, Incident | None]:
    t = state.equity.shape[0]
    n = min(t, cfg.variance_window)
    if n < cfg.min_bars_for_variance:
        return f"not evaluated: {n} bar(s) < min_bars_for_variance={cfg.min_bars_for_variance}", None
    r = bar_returns(state.equity, state.allocation)[t - n:]
    realised = float(np.var(r, ddof=1))
    ratio = realised / state.backtest_bar_variance
    if not ratio > cfg.variance_ratio + _EPS:
        return "clear", None
    detail = {
        "realised_variance": realised, "backtest_variance": state.backtest_bar_variance, "ratio": ratio,
        "window_bars": n, "window_setting": cfg.variance_window, "mean_bar_return": float(np.mean(r)),
        "ddof": 1, "annualised": False, "returns": "simple per-bar returns, the first against the allocation",
    }
    return "fired", Incident("variance", ratio, cfg.variance_ratio, "ratio of per-bar variances (live / backtest)",
                             f"per-bar returns, {_bars_sample(state, t - n, t)}", detail,
                             _iso(state.timestamps[t - 1]))


def _timer(state: DeploymentState, now: np.datetime64) -> tuple[str, Incident | None]:
    if state.expires_at is None:
        return "off", None
    if now < state.expires_at:
        return "clear", None
    start, end = state.started_at, state.expires_at
    elapsed = _days(int((now - start).astype("int64")))
    length = _days(int((end - start).astype("int64")))
    detail = {"started_at": _iso(start), "expires_at": _iso(end), "now": _iso(now),
              "elapsed_days": elapsed, "timer_days": length,
              "overdue_days": _days(int((now - end).astype("int64")))}
    return "fired", Incident("timer", elapsed, length, "days since start",
                             f"from {_iso(start)} to {_iso(now)}", detail, _iso(end))


def evaluate(state: DeploymentState, config: RollbackConfig | None, now: Any) -> RollbackVerdict:
    """Check every rollback trigger on the deployment's state at ``now``.

    Args:
        state: the deployment after its last processed bar.
        config: the rollback settings (None = :class:`RollbackConfig` defaults).
        now: the evaluation instant (datetime, datetime64 or ISO 8601; no zone
            = UTC); not before ``started_at`` nor before the last bar.

    Returns:
        :class:`RollbackVerdict`: every firing trigger as an :class:`Incident`
        in :data:`ORDER`, the first one named as ``trigger``.

    Raises:
        RollbackError: a bad ``now`` or config.
    """
    cfg = config if config is not None else RollbackConfig()
    if not isinstance(cfg, RollbackConfig):
        raise RollbackError(f"config={config!r} is not a RollbackConfig")
    if not isinstance(state, DeploymentState):
        raise RollbackError(f"state={state!r} is not a DeploymentState")
    at = _instant(now, "now")
    if at < state.started_at:
        raise RollbackError(f"now={_iso(at)} is before started_at={_iso(state.started_at)}")
    if state.timestamps.shape[0] and at < state.timestamps[-1]:
        raise RollbackError(f"now={_iso(at)} is before the last bar at {_iso(state.timestamps[-1])}")
    now_iso = _iso(at)

    def switch(name: str, enabled: bool, on: bool, what: str) -> tuple[str, Incident | None]:
        if not enabled:
            return "off", None
        if not on:
            return "clear", None
        return "fired", Incident(name, 1.0, 1.0, "switch (1 = on)", f"{what} at {now_iso}",
                                 {"reason": TRIGGERS[name]}, now_iso)

    def tier_zero() -> tuple[str, Incident | None]:
        if not cfg.tier_zero_trigger:
            return "off", None
        if state.policy_tier is None:
            return "not evaluated: no policy decision yet", None
        if state.policy_tier > 0:
            return "clear", None
        return "fired", Incident("policy_tier_zero", state.policy_tier, 0.0, "multiple of equity (fires at 0)",
                                 f"the lineage's policy tier at {now_iso}",
                                 {"reason": TRIGGERS["policy_tier_zero"]}, now_iso)

    results = {
        "kill_switch": switch("kill_switch", cfg.kill_switch_trigger, state.kill_switch, "kill switch"),
        "hard_stop": switch("hard_stop", cfg.hard_stop_trigger, state.hard_stop_active, "daily hard stop"),
        "policy_tier_zero": tier_zero(),
        "drawdown": _drawdown(state, cfg),
        "variance": _variance(state, cfg),
        "timer": _timer(state, at),
    }
    incidents = [results[name][1] for name in ORDER if results[name][1] is not None]
    return RollbackVerdict(rollback=bool(incidents), trigger=incidents[0].trigger if incidents else None,
                           incidents=incidents, checks={name: results[name][0] for name in ORDER})
