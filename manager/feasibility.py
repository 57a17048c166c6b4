"""Feasibility of "grow $X over N days" from evidence, not promises.

The evidence is the stored record of past cohorts on the same market: each completed cohort
run whose traded window is one UTC day contributes its parent ROI (a fraction of its bankroll)
as one **cohort daily return** (:func:`cohort_daily_returns`; point in time: only runs whose
window ended by the plan's first day). With fewer than :data:`MIN_EVIDENCE_DAYS` such days
there is **no evidence** and the intent is refused -- nothing is invented (no baseline, no
prior, no assumed drift).

The figures (:func:`assess`):

- the **required daily return** ``r* = (1 + target_return) ** (1 / days) - 1`` (a fraction per
  day, compounded);
- a **bootstrap** (Efron & Tibshirani 1993, ch. 6; i.i.d. resampling of days with
  replacement, ``numpy.random.default_rng(seed)``): ``n_paths`` paths of ``days`` daily returns
  drawn from the evidence, each scaled by the plan's leverage scale (below), compounded;
  the **probability of reaching the target** is the fraction of paths whose final equity is at
  least ``bankroll * (1 + target_return)``; the **expected path** is the mean equity per day
  with its 5 % / 50 % / 95 % quantiles (numpy's linear interpolation);
- the **bankroll at risk**: historical VaR / CVaR (:mod:`risk.var`) at 95 % and 99 % of one
  day's return (the bootstrap's one-day draws, i.e. the scaled evidence) and of the whole
  plan's return (the bootstrap's final returns), as fractions and in the quote currency.

**Leverage.** The evidence days traded under the tiers the policy gave them; a plan cannot
presume a step up (the policy grants one only on new evidence), so the plan trades at the
policy's base tier (``PolicyConfig.base_tier``, 2x) -- scale 1 -- with ``risk_appetite``
``"medium"`` or ``"high"``, and at the 1x floor -- scale ``floor / base_tier`` = 0.5 -- with
``"low"``. The kill switch makes every tier 0x (a failed prerequisite, not a feasibility
figure).

**Refusal.** The target is refused when the bootstrap probability is below
:data:`REFUSE_BELOW` (5 %) for ``risk_appetite`` ``"low"`` / ``"medium"`` and below 1 % for
``"high"`` (a high appetite accepts long odds, never invisible ones), or when there is no
evidence. The narrative says why with the figures, e.g. "needs 3.50 %/day; 12 cohort days on
binance-5m/5m/BTC returned -0.10 % +/- 0.20 %/day; probability < 1 %".
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

import numpy as np

from risk.policy import PolicyConfig
from risk.var import historical_cvar, historical_var

__all__ = ["APPETITES", "DEFAULT_PATHS", "MIN_EVIDENCE_DAYS", "REFUSE_BELOW", "Evidence", "assess",
           "bootstrap", "cohort_daily_returns", "leverage_scale", "pct", "required_daily_return"]

#: fewer cohort days than this on the market = no evidence (refused)
MIN_EVIDENCE_DAYS = 3
#: bootstrap paths (the probability's standard error is at most 0.5 / sqrt(n) = 0.005)
DEFAULT_PATHS = 10_000
#: refusal threshold on the probability of reaching the target, per risk appetite
REFUSE_BELOW = {"low": 0.05, "medium": 0.05, "high": 0.01}
APPETITES = tuple(REFUSE_BELOW)
_DAY_S = 86_400
_LEVELS = (0.95, 0.99)


def pct(x: float | None, digits: int = 2) -> str:
    """A fraction as a percentage string (``0.0351 -> "3.51 %"``); ``"n/a"`` for None."""
    return "n/a" if x is None else f"{x * 100:.{digits}f} %"


def required_daily_return(target_return: float, days: int) -> float:
    """The compounded daily return that turns 1 into ``1 + target_return`` in ``days`` days.

    Args:
        target_return: the whole plan's return, a fraction (0.10 = +10 %), > -1.
        days: the plan's length in days, >= 1.

    Returns:
        ``(1 + target_return) ** (1 / days) - 1``, a fraction per day.
    """
    if days < 1:
        raise ValueError(f"days={days} must be >= 1")
    if not target_return > -1:
        raise ValueError(f"target_return={target_return} must be > -1")
    return float((1.0 + target_return) ** (1.0 / days) - 1.0)


@dataclass(frozen=True)
class Evidence:
    """Cohort daily returns of one market.

    Attributes:
        market: the market key (data folder / timeframe / quote).
        returns: ``(n,)`` parent ROI of each cohort day, fractions, oldest first.
        days: ``[{"run_id", "day", "roi"}]`` the runs they come from, oldest first.
    """

    market: str
    returns: np.ndarray
    days: list[dict]

    def summary(self) -> dict[str, Any]:
        """``{"market", "n_days", "mean", "sd", "min", "max", "first_day", "last_day", "run_ids"}``
        (fractions per day; sd with ddof 1, None below 2 days; at most 50 run ids)."""
        r = self.returns
        n = int(r.size)
        return {"market": self.market, "n_days": n,
                "mean": float(r.mean()) if n else None, "sd": float(r.std(ddof=1)) if n > 1 else None,
                "min": float(r.min()) if n else None, "max": float(r.max()) if n else None,
                "first_day": self.days[0]["day"] if n else None, "last_day": self.days[-1]["day"] if n else None,
                "run_ids": [d["run_id"] for d in self.days[-50:]]}


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def cohort_daily_returns(store: Any, market: str, *, before: Any = None, scan: int = 5000) -> Evidence:
    """The evidence: parent ROI of every completed one-day cohort run on ``market``.

    A run counts when its header's ``market`` is ``market``, its traded window
    ``[window_start, window_end)`` lasts between 20 and 28 hours (one UTC day of bars, give or
    take missing bars) and, point in time, ``window_end <= before``. Each such run is one
    sample (two cohorts of the same day are two samples of what a cohort earns that day).

    Args:
        store: the store (:class:`manager.store.Store`).
        market: market key (:func:`manager.seeding.market_identity`), e.g. ``"binance-5m/5m/BTC"``.
        before: ISO 8601 or aware datetime; None = no limit.
        scan: at most this many of the newest runs are looked at.

    Returns:
        The :class:`Evidence`, oldest day first.
    """
    limit_at = _moment(before.isoformat() if isinstance(before, datetime) else before)
    rows: list[dict] = []
    cursor, seen = None, 0
    while seen < scan:
        page = store.list_runs(limit=200, before=cursor, status="completed", kind="cohort")
        if not page:
            break
        seen += len(page)
        cursor = page[-1]["run_id"]
        for run in page:
            header = run.get("header") or {}
            if header.get("market") != market:
                continue
            start, end = _moment(header.get("window_start")), _moment(header.get("window_end"))
            if start is None or end is None or not 20 * 3600 <= (end - start).total_seconds() <= 28 * 3600:
                continue
            if limit_at is not None and end > limit_at:
                continue
            summary = run.get("summary")
            if summary is None:
                summary = store.get_run(run["run_id"]).get("summary") or {}
            roi = (summary.get("parent") or {}).get("roi")
            if roi is None or not np.isfinite(roi):
                continue
            rows.append({"run_id": run["run_id"], "day": header.get("day"), "roi": float(roi),
                         "window_start": header.get("window_start")})
        if len(page) < 200:
            break
    rows.sort(key=lambda d: (d["window_start"] or "", d["run_id"]))
    return Evidence(market, np.array([d["roi"] for d in rows], dtype=float),
                    [{k: d[k] for k in ("run_id", "day", "roi")} for d in rows])


def leverage_scale(risk_appetite: str, config: PolicyConfig | None = None) -> dict[str, Any]:
    """The plan's tier and the scale applied to the evidence's daily returns (module docstring).

    Returns:
        ``{"tier": multiple of parent equity, "scale": factor, "basis": str}``.
    """
    cfg = config or PolicyConfig()
    if risk_appetite not in APPETITES:
        raise ValueError(f"risk_appetite={risk_appetite!r}; allowed: {', '.join(APPETITES)}")
    if risk_appetite == "low":
        tier = cfg.floor
        basis = (f"risk appetite low: the policy's floor {cfg.floor:g}x instead of its base tier "
                 f"{cfg.base_tier:g}x, evidence returns scaled by {cfg.floor / cfg.base_tier:g}")
    else:
        tier = cfg.base_tier
        basis = (f"the policy's base tier {cfg.base_tier:g}x every day (a step up needs new evidence, "
                 f"so the plan does not presume one); evidence returns unscaled")
    return {"tier": float(tier), "scale": float(tier / cfg.base_tier), "basis": basis}


def bootstrap(returns: Sequence[float], days: int, *, n_paths: int = DEFAULT_PATHS, seed: int = 0,
              scale: float = 1.0) -> np.ndarray:
    """Resampled daily returns: ``(n_paths, days)`` draws with replacement from ``returns``,
    times ``scale`` (fractions per day). Seeded: the same arguments give the same draws.

    Raises:
        ValueError: empty ``returns``, ``days`` < 1, ``n_paths`` < 1.
    """
    r = np.asarray(returns, dtype=float)
    if r.size == 0:
        raise ValueError("no returns to resample")
    if days < 1 or n_paths < 1:
        raise ValueError(f"days={days} and n_paths={n_paths} must be >= 1")
    idx = np.random.default_rng(seed).integers(0, r.size, size=(n_paths, days))
    return r[idx] * scale


def _risk(draws: np.ndarray, bankroll: float, horizon: str) -> dict[str, Any]:
    out = {"horizon": horizon, "sign": "positive = loss", "estimates": []}
    for level in _LEVELS:
        var, cvar = historical_var(draws, level), historical_cvar(draws, level)
        out["estimates"].append({"method": "historical", "level": level, "var_fraction": var, "cvar_fraction": cvar,
                                 "var_quote": var * bankroll, "cvar_quote": cvar * bankroll})
    return out


def assess(evidence: Evidence, *, bankroll: float, target_return: float, days: int,
           risk_appetite: str = "medium", n_paths: int = DEFAULT_PATHS, seed: int = 0,
           config: PolicyConfig | None = None, quote: str = "") -> dict[str, Any]:
    """The feasibility of growing ``bankroll`` by ``target_return`` in ``days`` days.

    Args:
        evidence: the market's cohort daily returns (:func:`cohort_daily_returns`).
        bankroll: starting parent bankroll, quote currency, > 0.
        target_return: the plan's return, a fraction > 0 (0.10 = +10 %).
        days: plan length, days (1..90).
        risk_appetite: ``"low"``, ``"medium"`` (default) or ``"high"`` (tier and threshold:
            module docstring).
        n_paths, seed: the bootstrap's size and seed.
        quote: the quote currency (for the narrative).

    Returns:
        A JSON-able dict: ``verdict`` (``"feasible"`` | ``"refused"``), ``reasons``,
        ``narrative``, ``required_daily_return``, ``target_return``, ``target_amount``,
        ``evidence`` (:meth:`Evidence.summary`), ``leverage``, ``probability`` (None without
        evidence), ``threshold``, ``bootstrap`` (``n_paths``, ``seed``, ``method``), ``path``
        (per day: ``day``, ``expected``, ``p05``, ``p50``, ``p95`` equity in the quote currency and
        ``expected_return`` the day's mean return), ``bankroll_at_risk`` (``one_day`` and
        ``plan``: :mod:`risk.var` historical VaR/CVaR at 95 and 99 %), ``final`` (mean and
        quantiles of the final equity).
    """
    need = required_daily_return(target_return, days)
    lev = leverage_scale(risk_appetite, config)
    threshold = REFUSE_BELOW[risk_appetite]
    ev = evidence.summary()
    unit = f" {quote}" if quote else ""
    out: dict[str, Any] = {
        "required_daily_return": need, "target_return": float(target_return),
        "target_amount": float(bankroll * (1 + target_return)), "bankroll": float(bankroll), "days": int(days),
        "risk_appetite": risk_appetite, "evidence": ev, "leverage": lev, "threshold": threshold,
        "probability": None, "path": [], "bankroll_at_risk": None, "final": None,
        "bootstrap": {"n_paths": int(n_paths), "seed": int(seed),
                      "method": "i.i.d. resampling of cohort days with replacement (numpy default_rng)"},
    }
    if ev["n_days"] < MIN_EVIDENCE_DAYS:
        out["verdict"] = "refused"
        out["reasons"] = [f"no evidence: {ev['n_days']} completed one-day cohort run(s) on {evidence.market} "
                          f"before the plan's first day; at least {MIN_EVIDENCE_DAYS} are needed"]
        out["narrative"] = (f"Refused: needs {pct(need)}/day ({pct(target_return)} over {days} day(s)), and there "
                            f"is no evidence to judge it: {ev['n_days']} cohort day(s) stored on {evidence.market} "
                            f"(at least {MIN_EVIDENCE_DAYS} needed). Run cohorts or a campaign on this market first; "
                            f"no figure is invented.")
        return out
    draws = bootstrap(evidence.returns, days, n_paths=n_paths, seed=seed, scale=lev["scale"])
    growth = np.cumprod(1.0 + draws, axis=1)
    equity = bankroll * growth
    final = growth[:, -1] - 1.0
    prob = float(np.mean(final >= target_return - 1e-12))
    starts = np.concatenate([np.full((n_paths, 1), float(bankroll)), equity[:, :-1]], axis=1)
    for d in range(days):
        q05, q50, q95 = np.quantile(equity[:, d], [0.05, 0.5, 0.95])
        day_var = historical_var(draws[:, d], 0.95)
        out["path"].append({"day": d + 1, "expected": float(equity[:, d].mean()), "p05": float(q05),
                            "p50": float(q50), "p95": float(q95),
                            "expected_return": float(draws[:, d].mean()),
                            "var95_fraction": day_var, "var95_quote": day_var * float(starts[:, d].mean())})
    out["probability"] = prob
    out["bankroll_at_risk"] = {"one_day": _risk(draws[:, 0], bankroll, "one day"),
                               "plan": _risk(final, bankroll, f"{days} day(s)")}
    fq = np.quantile(bankroll * (1 + final), [0.05, 0.5, 0.95])
    out["final"] = {"expected": float(bankroll * (1 + final).mean()), "p05": float(fq[0]), "p50": float(fq[1]),
                    "p95": float(fq[2])}
    sd = ev["sd"] if ev["sd"] is not None else 0.0
    scaled = f" (x{lev['scale']:g} for the plan's tier)" if lev["scale"] != 1 else ""
    figures = (f"needs {pct(need)}/day ({pct(target_return)} over {days} day(s)); {ev['n_days']} cohort days on "
               f"{evidence.market} returned {pct(ev['mean'])} +/- {pct(sd)}/day (mean +/- sd){scaled}; "
               f"bootstrap probability of reaching {out['target_amount']:,.2f}{unit}: "
               f"{'< 0.01 %' if prob < 1e-4 else pct(prob)}")
    var95 = out["bankroll_at_risk"]["one_day"]["estimates"][0]
    risk_text = (f"one-day 95 % VaR {pct(var95['var_fraction'])} ({var95['var_quote']:,.2f}{unit}), "
                 f"CVaR {pct(var95['cvar_fraction'])}")
    thin = (f" The evidence is thin ({ev['n_days']} days): treat the probability as rough."
            if ev["n_days"] < 20 else "")
    if prob < threshold:
        out["verdict"] = "refused"
        out["reasons"] = [f"probability {pct(prob)} < {pct(threshold, 0)} (the threshold for risk appetite "
                          f"{risk_appetite})"]
        out["narrative"] = f"Refused: {figures} < {pct(threshold, 0)}. {risk_text}.{thin}"
    else:
        out["verdict"] = "feasible"
        out["reasons"] = []
        out["narrative"] = (f"Feasible on past evidence, not promised: {figures} (threshold {pct(threshold, 0)}). "
                            f"Expected final equity {out['final']['expected']:,.2f}{unit}, 5-95 % "
                            f"{out['final']['p05']:,.2f}-{out['final']['p95']:,.2f}{unit}; {risk_text}.{thin}")
    return out
