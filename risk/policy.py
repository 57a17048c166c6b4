"""The leverage policy: tiers that ramp on a track record and step down on losses.

A **subject** is a lineage (``lineage:<founder>``, :mod:`risk.lineage`) or a
parent bankroll (``parent:<scope>``). Each subject has a **tier**: a leverage
ceiling, as a multiple of equity (the agent's gross-exposure ceiling for a
lineage; the parent's gross-exposure ceiling for a parent). After every
evaluation period (default one UTC trading day) :func:`decide` looks at the
period just ended and sets the tier for the next one.

Rules, in the order they are checked (defaults from :class:`PolicyConfig`; the
first that applies decides):

1. ``kill_switch``: the kill switch is on -> 0x (flat, no new exposure).
2. ``hard_stop_active``: a daily hard stop is active right now -> 0x.
3. ``initial``: no evaluation period yet -> the base tier (2x).
4. ``resume``: the tier in force was 0x (a halt) -> back to the base tier.
5. ``hard_stop``: the daily hard stop fired during the period -> the base tier
   (never a rise: ``min(tier, base)``).
6. ``drawdown_reset``: the period's max drawdown is over 5 % -> ``min(tier, base)``.
7. ``losing_period``: the period lost money (net return < 0) -> ``tier - 1x``,
   not below the floor (1x; 0x is kept for halts).
8. ``too_few_trades``: fewer than 3 trades -> hold (no step up on thin evidence).
9. ``step_up``: Sharpe > 1.5 *and* max drawdown < 3 % -> ``tier + 1x``, capped
   at 10x (``at_cap``) and by the **Kelly cap** (``kelly_cap``): the step may
   not take the tier above the fractional (half) Kelly leverage of the
   lineage's recent bars, rounded down to the step; Kelly never lowers a tier.
10. ``hold``: otherwise the tier stays.

Boundaries are strict as the spec reads: a Sharpe of exactly 1.5 or a drawdown
of exactly 3 % does not step up; a drawdown of exactly 5 % does not reset.

Figures come from the track record (:class:`PeriodRecord`) and are quoted in
the decision's rationale with their unit, whether they are annualised and over
which sample. The Sharpe is the period's per-bar Sharpe annualised by
``sqrt(bars per year)`` (Sharpe 1994; Lo 2002 for the sqrt-of-time scaling);
the drawdown is the largest peak-to-trough fall of the period's equity curve
(fraction of the peak, not annualised); the Kelly leverage is from
:mod:`risk.kelly`.

:func:`decide` is a pure function: the same subject, track record, config and
switches give the same decision, and nothing outside the arguments is read.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping, Sequence

from risk.kelly import kelly_leverage, pooled_moments

__all__ = ["PolicyConfig", "PolicyConfigError", "PeriodRecord", "PolicyDecision", "decide", "replay",
           "TRIGGERS", "decision_id"]

#: Every trigger :func:`decide` can fire, with the rule it names.
TRIGGERS = {
    "kill_switch": "kill switch on: 0x, no new exposure",
    "hard_stop_active": "daily hard stop active: 0x for the rest of the day",
    "initial": "new subject: the base tier",
    "resume": "back from a halt (0x): the base tier",
    "hard_stop": "the daily hard stop fired in the period: back to the base tier",
    "drawdown_reset": "max drawdown over the reset threshold: back to the base tier",
    "losing_period": "losing period: one step down (not below the floor)",
    "too_few_trades": "too few trades to step up: hold",
    "step_up": "Sharpe and drawdown within the ramp rule: one step up",
    "kelly_cap": "the ramp rule passed but the fractional Kelly leverage caps the tier: hold",
    "at_cap": "the ramp rule passed at the cap: hold",
    "hold": "ramp rule not met: hold",
}


class PolicyConfigError(ValueError):
    """A policy setting out of range; the message names it and what is allowed."""


@dataclass(frozen=True)
class PolicyConfig:
    """The ramp's settings; every default follows the product spec.

    Attributes:
        base_tier: starting tier, multiple of equity (2x).
        step: size of one step up or down (1x).
        cap: the highest tier (10x).
        floor: the lowest tier losses can step down to (1x); 0x is only for halts.
        sharpe_min: step up only on an annualised period Sharpe strictly above this (1.5).
        drawdown_max: step up only on a period max drawdown strictly below this (0.03 = 3 %).
        drawdown_reset: a period max drawdown strictly above this returns the
            tier to the base (0.05 = 5 %).
        min_trades: no step up on fewer trades in the period (3).
        kelly_fraction: fraction of the Kelly leverage that caps a step up (0.5 = half Kelly).
        kelly_periods: how many recent periods (this one included) the Kelly
            estimate pools (5).
        kelly_min_bars: fewest bars for a Kelly estimate; below it the Kelly cap
            is not applied and the rationale says so (30).
        period: the evaluation period, as text (``1d`` = one UTC day).

    Raises:
        PolicyConfigError: on construction, for a value out of range.
    """

    base_tier: float = 2.0
    step: float = 1.0
    cap: float = 10.0
    floor: float = 1.0
    sharpe_min: float = 1.5
    drawdown_max: float = 0.03
    drawdown_reset: float = 0.05
    min_trades: int = 3
    kelly_fraction: float = 0.5
    kelly_periods: int = 5
    kelly_min_bars: int = 30
    period: str = "1d"

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise PolicyConfigError(f"policy {name}={getattr(self, name)!r} is not allowed; allowed: {allowed}")

        for name in ("base_tier", "step", "cap", "floor", "sharpe_min", "drawdown_max", "drawdown_reset",
                     "kelly_fraction"):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), name,
                 "a finite number")
        need(0 < self.cap <= 100, "cap", "a multiple in (0, 100]")
        need(0 < self.step <= self.cap, "step", f"a multiple in (0, cap={self.cap}]")
        need(0 < self.base_tier <= self.cap, "base_tier", f"a multiple in (0, cap={self.cap}]")
        need(0 < self.floor <= self.base_tier, "floor", f"a multiple in (0, base_tier={self.base_tier}]")
        need(0 < self.drawdown_max <= 1, "drawdown_max", "a fraction in (0, 1]")
        need(0 < self.drawdown_reset <= 1, "drawdown_reset", "a fraction in (0, 1]")
        need(0 < self.kelly_fraction <= 1, "kelly_fraction", "a fraction in (0, 1]")
        for name in ("min_trades", "kelly_periods", "kelly_min_bars"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= (1 if name == "kelly_periods" else 0),
                 name, "an integer >= 1" if name == "kelly_periods" else "an integer >= 0")
        need(isinstance(self.period, str) and bool(self.period), "period", "a duration such as 1d")

    def to_dict(self) -> dict:
        """JSON-ready copy of the settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "PolicyConfig":
        """Settings from a mapping; unknown keys are an error naming them."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise PolicyConfigError(f"unknown policy setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**d)


@dataclass(frozen=True)
class PeriodRecord:
    """One evaluation period of a subject's track record.

    Attributes:
        period: the period's label, ``YYYY-MM-DD`` (UTC day).
        end: ISO 8601 UTC end of the period (the decision is known from then on).
        tier: the tier in force during the period (multiple of equity).
        ret: net return over the period, fraction of the starting equity (not annualised).
        pnl: net profit over the period, quote currency.
        sharpe: annualised Sharpe of the period's per-bar returns.
        max_drawdown: largest peak-to-trough fall in the period, fraction of the peak (>= 0).
        trades: round trips closed or opened in the period.
        n_bars: bars in the period.
        bar_mean, bar_var: mean and variance (ddof 1) of the per-bar returns.
        exposure: mean gross exposure over the period, multiple of equity.
        timeframe: bar length label (``5m``).
        hard_stop: whether the daily hard stop fired in the period.
    """

    period: str
    end: str
    tier: float
    ret: float
    pnl: float
    sharpe: float
    max_drawdown: float
    trades: int
    n_bars: int
    bar_mean: float = 0.0
    bar_var: float = 0.0
    exposure: float = 0.0
    timeframe: str = ""
    hard_stop: bool = False

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PeriodRecord":
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class PolicyDecision:
    """What :func:`decide` returns.

    Attributes:
        subject: ``lineage:<founder>`` or ``parent:<scope>``.
        subject_kind: ``lineage`` or ``parent``.
        period: the evaluation period decided on (None for ``initial``).
        period_end: ISO 8601 UTC end of that period (None for ``initial``).
        previous_tier: the tier in force during the period (None for a new subject).
        tier: the tier for the next period (multiple of equity).
        trigger: the rule that fired (a key of :data:`TRIGGERS`).
        rule: the rule's text with the figures filled in.
        next_tier, next_trigger: the next planned tier up and what would grant it.
        down_tier, down_trigger: where a bad period would take the tier, and what that is.
        rationale: ``{"figures": [...], "kelly": {...}, "switches": {...}}``;
            each figure is ``{"name", "value", "unit", "annualised", "sample",
            "threshold", "passed"}``.
        config: the settings used (:meth:`PolicyConfig.to_dict`).
    """

    subject: str
    subject_kind: str
    period: str | None
    period_end: str | None
    previous_tier: float | None
    tier: float
    trigger: str
    rule: str
    next_tier: float
    next_trigger: str
    down_tier: float
    down_trigger: str
    rationale: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready copy."""
        return asdict(self)


def decision_id(market: str, subject: str, period: str) -> str:
    """Deterministic id of the decision on ``(market, subject, period)``: 16 hex
    digits of its SHA-256 (the store's idempotency key)."""
    return hashlib.sha256(json.dumps([market, subject, period]).encode()).hexdigest()[:16]


def _subject_kind(subject: str) -> str:
    kind = subject.split(":", 1)[0] if isinstance(subject, str) else ""
    if kind not in ("lineage", "parent") or ":" not in subject or not subject.split(":", 1)[1]:
        raise PolicyConfigError(f"subject={subject!r} is not allowed; allowed: 'lineage:<founder>' or 'parent:<scope>'")
    return kind


def _fmt(x: float) -> str:
    return f"{x:g}x"


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _kelly(records: Sequence[PeriodRecord], cfg: PolicyConfig) -> dict:
    recent = list(records[-cfg.kelly_periods:])
    n = sum(r.n_bars for r in recent)
    sample = (f"{n} bars over the last {len(recent)} period(s) "
              f"({recent[0].period} to {recent[-1].period})") if recent else "no bars"
    out = {"fraction": cfg.kelly_fraction, "sample": sample, "n_bars": n, "annualised": False,
           "unit": "multiple of equity", "leverage": None, "cap": None, "note": ""}
    if n < max(cfg.kelly_min_bars, 2):
        out["note"] = f"not applied: {n} bars < {max(cfg.kelly_min_bars, 2)}"
        return out
    mean, var, _ = pooled_moments([r.bar_mean for r in recent], [r.bar_var for r in recent],
                               [r.n_bars for r in recent])
    exposure = sum(r.exposure * r.n_bars for r in recent) / n
    est = kelly_leverage(mean, var, exposure, fraction=cfg.kelly_fraction, n_bars=n)
    out["leverage"] = est.fractional
    out["full"] = est.full
    out["mean_bar_return"], out["var_bar_return"], out["exposure"] = mean, var, exposure
    if est.fractional is None:
        out["note"] = f"not applied: {est.note}"
        return out
    # the highest tier on the ladder the fractional Kelly leverage allows
    out["cap"] = math.floor(est.fractional / cfg.step + 1e-9) * cfg.step
    out["note"] = est.note or "applied to step ups only"
    return out


def _figures(r: PeriodRecord, cfg: PolicyConfig) -> list[dict]:
    tf = f" {r.timeframe}" if r.timeframe else ""
    sample = f"{r.n_bars}{tf} bars of {r.period}"
    return [
        {"name": "sharpe", "value": r.sharpe, "unit": "ratio", "annualised": True,
         "sample": f"per-bar returns, {sample}, scaled by sqrt(bars per year)",
         "threshold": f"> {cfg.sharpe_min:g}", "passed": bool(r.sharpe > cfg.sharpe_min)},
        {"name": "max_drawdown", "value": r.max_drawdown, "unit": "fraction of peak equity", "annualised": False,
         "sample": sample, "threshold": f"< {cfg.drawdown_max:g} (reset above {cfg.drawdown_reset:g})",
         "passed": bool(r.max_drawdown < cfg.drawdown_max)},
        {"name": "trades", "value": r.trades, "unit": "trades", "annualised": False, "sample": sample,
         "threshold": f">= {cfg.min_trades}", "passed": bool(r.trades >= cfg.min_trades)},
        {"name": "return", "value": r.ret, "unit": "fraction of starting equity", "annualised": False,
         "sample": sample, "threshold": ">= 0 (else one step down)", "passed": bool(r.ret >= 0)},
        {"name": "pnl", "value": r.pnl, "unit": "quote currency", "annualised": False, "sample": sample,
         "threshold": None, "passed": None},
    ]


def decide(subject: str, record: Sequence[PeriodRecord], config: PolicyConfig | None = None, *,
           kill_switch: bool = False, hard_stop_active: bool = False) -> PolicyDecision:
    """The tier of ``subject`` for the next period, from its track record.

    Args:
        subject: ``lineage:<founder>`` or ``parent:<scope>``.
        record: the subject's evaluation periods, oldest first; the last is the
            period just ended, and its ``tier`` is the tier that was in force.
        config: the policy settings (default :class:`PolicyConfig`).
        kill_switch: the persisted kill switch is on.
        hard_stop_active: a daily hard stop is active at decision time.

    Returns:
        :class:`PolicyDecision` (see the module docstring for the rules).

    Raises:
        PolicyConfigError: a bad subject id or a record tier outside [0, cap].
    """
    cfg = config or PolicyConfig()
    kind = _subject_kind(subject)
    last = record[-1] if record else None
    prev = None if last is None else float(last.tier)
    if prev is not None and not (math.isfinite(prev) and 0 <= prev <= cfg.cap):
        raise PolicyConfigError(f"record tier={prev!r} of {subject} is outside [0, cap={cfg.cap:g}]")
    figures = _figures(last, cfg) if last else []
    kelly = _kelly(record, cfg) if last else {"note": "no track record", "cap": None, "leverage": None}
    base = cfg.base_tier
    if kill_switch:
        trigger, tier = "kill_switch", 0.0
    elif hard_stop_active:
        trigger, tier = "hard_stop_active", 0.0
    elif last is None:
        trigger, tier = "initial", base
    elif prev == 0.0:
        trigger, tier = "resume", base
    elif last.hard_stop:
        trigger, tier = "hard_stop", min(prev, base)
    elif last.max_drawdown > cfg.drawdown_reset:
        trigger, tier = "drawdown_reset", min(prev, base)
    elif last.ret < 0:
        trigger, tier = "losing_period", max(prev - cfg.step, cfg.floor) if prev >= cfg.floor else prev
    elif last.trades < cfg.min_trades:
        trigger, tier = "too_few_trades", prev
    elif last.sharpe > cfg.sharpe_min and last.max_drawdown < cfg.drawdown_max:
        up = min(prev + cfg.step, cfg.cap)
        if up <= prev:
            trigger, tier = "at_cap", prev
        elif kelly.get("cap") is not None and kelly["cap"] < up:
            tier = max(prev, kelly["cap"])
            trigger = "kelly_cap" if tier == prev else "step_up"
        else:
            trigger, tier = "step_up", up
    else:
        trigger, tier = "hold", prev
    tier = float(tier)

    rule = _rule_text(trigger, prev, tier, last, cfg, kelly)
    halted = trigger in ("kill_switch", "hard_stop_active")
    if halted:
        next_tier = base
        next_trigger = ("the kill switch turned off" if kill_switch else
                        "the next UTC day (the hard stop lasts the rest of the day)")
        down_tier, down_trigger = 0.0, "stays 0x while halted"
    else:
        next_tier = min(tier + cfg.step, cfg.cap)
        if next_tier <= tier:
            next_trigger = f"at the cap {_fmt(cfg.cap)}: holds while periods pass the ramp rule"
        else:
            next_trigger = (f"a {cfg.period} period with Sharpe > {cfg.sharpe_min:g} (annualised), max drawdown "
                            f"< {_pct(cfg.drawdown_max)} and >= {cfg.min_trades} trades, and a fractional "
                            f"({cfg.kelly_fraction:g}) Kelly leverage >= {_fmt(next_tier)}")
        down_tier = max(tier - cfg.step, cfg.floor) if tier >= cfg.floor else tier
        down_trigger = (f"a losing {cfg.period} period steps down to {_fmt(down_tier)}; a max drawdown over "
                        f"{_pct(cfg.drawdown_reset)} or a daily hard stop resets to {_fmt(min(tier, base))}")
    return PolicyDecision(
        subject=subject, subject_kind=kind,
        period=last.period if last else None, period_end=last.end if last else None,
        previous_tier=prev, tier=tier, trigger=trigger, rule=rule,
        next_tier=float(next_tier), next_trigger=next_trigger,
        down_tier=float(down_tier), down_trigger=down_trigger,
        rationale={"figures": figures, "kelly": kelly,
                   "switches": {"kill_switch": bool(kill_switch), "hard_stop_active": bool(hard_stop_active)},
                   "period": last.to_dict() if last else None},
        config=cfg.to_dict(),
    )


def _rule_text(trigger: str, prev: float | None, tier: float, r: PeriodRecord | None, cfg: PolicyConfig,
               kelly: dict) -> str:
    head = TRIGGERS[trigger]
    move = f"{_fmt(prev)} -> {_fmt(tier)}" if prev is not None else f"start at {_fmt(tier)}"
    if r is None or trigger in ("kill_switch", "hard_stop_active", "resume"):
        return f"{head} ({move})"
    facts = (f"Sharpe {r.sharpe:.2f} (annualised, {r.n_bars} bars of {r.period}) vs > {cfg.sharpe_min:g}; "
             f"max drawdown {_pct(r.max_drawdown)} vs < {_pct(cfg.drawdown_max)} (reset > {_pct(cfg.drawdown_reset)}); "
             f"{r.trades} trades vs >= {cfg.min_trades}; return {_pct(r.ret)}")
    k = kelly.get("leverage")
    kelly_text = (f"; {cfg.kelly_fraction:g}-Kelly leverage {k:.2f}x caps step ups at {_fmt(kelly['cap'])}"
                  if k is not None and kelly.get("cap") is not None else f"; Kelly cap {kelly.get('note', 'n/a')}")
    return f"{head} ({move}): {facts}{kelly_text}"


def replay(subject: str, record: Sequence[PeriodRecord], config: PolicyConfig | None = None, *,
           kill_switch_periods: frozenset[str] | set[str] = frozenset(),
           start_tier: float | None = None) -> list[PolicyDecision]:
    """Replay the policy over a track record, period by period: each period's
    ``tier`` is replaced by the tier the previous decision set (the first by
    ``start_tier``, default the base tier), so the path is the policy's own.

    Args:
        subject: the subject id.
        record: periods oldest first (their ``tier`` fields are ignored).
        config: settings.
        kill_switch_periods: labels of periods after which the kill switch was on.
        start_tier: the tier in force during the first period.

    Returns:
        One :class:`PolicyDecision` per period, in order.
    """
    cfg = config or PolicyConfig()
    tier = cfg.base_tier if start_tier is None else float(start_tier)
    out: list[PolicyDecision] = []
    seen: list[PeriodRecord] = []
    for r in record:
        seen.append(PeriodRecord(**{**r.to_dict(), "tier": tier}))
        d = decide(subject, seen, cfg, kill_switch=r.period in kill_switch_periods)
        out.append(d)
        tier = d.tier
    return out
