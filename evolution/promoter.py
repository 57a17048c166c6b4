"""The Day-3 promoter: which agent of a campaign, if any, may be proposed for a
small live allocation, with every guard rail's figure, threshold and verdict.

Pure computation: it receives the stored campaign report, the ranking day's
bars and the figures from outside evolution (policy tiers, Kelly caps, kill
switch) in a :class:`PromotionContext`; :mod:`manager.promotions` loads them
from the store. Same inputs, same review (the random baseline is seeded).

Guard rails (:class:`PromoterConfig`, defaults and why):

``min_trades`` (3)
    Trades (positions opened) of the agent on the ranking day. Fewer trades say
    nothing about skill; the campaign's own candidate rule uses the same floor.
``holdout``
    The campaign confirmed the agent on a holdout day not used for ranking
    (:func:`manager.campaigns.confirm_candidates`; Bailey et al. 2015, section 1;
    López de Prado 2018, *AFML* ch. 11-12). An agent the campaign did not
    re-simulate has no holdout and fails with that reason.
``deflated_sharpe`` (>= 0.5)
    The Deflated Sharpe Ratio of the agent on the ranking day, with N = the
    day's agents and V[SR] their Sharpes' variance (the report's ``deflation``;
    Bailey & López de Prado 2014, "The Deflated Sharpe Ratio", J. Portfolio
    Management 40(5)). 0.5 = more likely than not a real edge after selecting
    the best of N.
``pbo`` (<= 0.5)
    Probability of Backtest Overfitting of the day's learning cycle by CSCV
    (Bailey, Borwein, López de Prado & Zhu 2017, "The Probability of Backtest
    Overfitting", J. Computational Finance 20(4)). Above 0.5 the in-sample best
    is more often than not below the out-of-sample median.
``baseline_percentile`` (>= 60)
    The agent's ROI re-simulated alone on the ranking day, as a percentile
    (:func:`simulator.baselines.mid_percentile`) among ``n_random`` (50) random
    genomes simulated alone on the same bars with the same costs: better than
    chance by a margin, not only better than its cohort.
``max_drawdown`` (<= 5 %)
    Of the agent on the ranking day (its cohort row): the same level at which
    the leverage policy resets a tier (:class:`risk.policy.PolicyConfig`).
``slippage_x2``
    Re-simulated alone with ``slippage_factor`` (2) times the day's slippage,
    its ROI is still > 0: an edge that a doubling of execution costs erases
    is not one to fund.
``liquidity`` (<= 1 %)
    Re-simulated alone at the *proposed* allocation and the leverage ceiling the
    engine enforces (min(gene, tier)),
    every fill's notional is at most ``max_volume_share`` of that bar's quote
    volume (volume x close), a participation limit in the spirit of
    backtesting market-impact rules (e.g. Zipline's ``VolumeShareSlippage``
    default of 2.5 % of bar volume): small enough that the fill would not move
    the price.
``policy``
    The agent's lineage has a leverage tier in force (the policy engine has
    seen it; :mod:`risk.policy`) and the kill switch is off.

Allocation: ``max(allocation_share x bankroll, min_allocation)`` but never above
the bankroll; gross exposure = allocation x min(gene leverage, tier, Kelly cap).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from evolution.fitness import evaluate, isolated_config
from evolution.genome import Genome
from evolution.toolbox import random_genomes
from simulator.baselines import mid_percentile
from simulator.cohort import agent_arrays, build_signals
from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from simulator.market import MarketData

__all__ = ["CHECKS", "PromoterConfig", "PromoterError", "PromotionContext", "PromotionReview",
           "allocation_for", "promote_intraday_candidate"]

#: the guard rails, in checklist order
CHECKS = ("min_trades", "holdout", "deflated_sharpe", "pbo", "baseline_percentile", "max_drawdown",
          "slippage_x2", "liquidity", "policy")

#: the first campaign day that can be reviewed
FIRST_DAY = 3


class PromoterError(ValueError):
    """Bad promoter input; the message says what to fix."""


@dataclass(frozen=True)
class PromoterConfig:
    """Guard rails and allocation of the promoter (module docstring: why each default).

    Attributes:
        min_trades: fewest trades on the ranking day (3).
        require_holdout: the campaign's holdout confirmation is required (True).
        dsr_min: lowest Deflated Sharpe (0.5, a probability).
        pbo_max: highest PBO of the day's learning cycle (0.5).
        n_random: random genomes of the baseline (50).
        percentile_min: lowest baseline percentile, 0..100 (60).
        max_drawdown: highest ranking-day max drawdown, fraction (0.05).
        slippage_factor: slippage multiplier of the tolerance check (2.0).
        max_volume_share: highest fill notional / bar quote volume (0.01).
        allocation_share: share of the parent bankroll allocated (0.05).
        min_allocation: smallest allocation, quote currency (50).
        seed: seed of the random baseline genomes (0).
    """

    min_trades: int = 3
    require_holdout: bool = True
    dsr_min: float = 0.5
    pbo_max: float = 0.5
    n_random: int = 50
    percentile_min: float = 60.0
    max_drawdown: float = 0.05
    slippage_factor: float = 2.0
    max_volume_share: float = 0.01
    allocation_share: float = 0.05
    min_allocation: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise PromoterError(f"promoter {name}={getattr(self, name)!r} is not allowed; allowed: {allowed}")

        need(isinstance(self.min_trades, int) and self.min_trades >= 0, "min_trades", "an int >= 0")
        need(isinstance(self.n_random, int) and self.n_random >= 1, "n_random", "an int >= 1")
        for name, lo, hi in (("dsr_min", 0, 1), ("pbo_max", 0, 1), ("percentile_min", 0, 100),
                             ("max_drawdown", 0, 1), ("max_volume_share", 0, 1), ("allocation_share", 0, 1)):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi, name, f"a number in [{lo}, {hi}]")
        need(isinstance(self.slippage_factor, (int, float)) and self.slippage_factor >= 1, "slippage_factor",
             "a number >= 1")
        need(isinstance(self.min_allocation, (int, float)) and self.min_allocation >= 0, "min_allocation",
             "a number >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "PromoterConfig":
        d = dict(d or {})
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise PromoterError(f"unknown promoter setting(s) {', '.join(unknown)}; allowed: "
                                f"{', '.join(sorted(cls.__dataclass_fields__))}")
        return cls(**d)


@dataclass(frozen=True)
class PromotionContext:
    """Figures from outside evolution (the caller loads them).

    Attributes:
        bankroll: the parent bankroll, quote currency.
        engine: the ranking day's costs (fee, slippage, shorts, margin).
        tiers: ``{agent_id: tier}`` leverage tier in force for the agent's
            lineage after the ranking day (None / absent = no tier).
        kelly_caps: ``{agent_id: cap}`` the fractional-Kelly cap of the lineage
            (None / absent = not estimable, not applied).
        lineages: ``{agent_id: lineage subject}`` (reported).
        kill_switch: the kill switch is on.
        pbo: PBO of the ranking day's cycle; None = the report's ``pbo``.
    """

    bankroll: float
    engine: EngineConfig = field(default_factory=EngineConfig)
    tiers: Mapping[str, float | None] = field(default_factory=dict)
    kelly_caps: Mapping[str, float | None] = field(default_factory=dict)
    lineages: Mapping[str, str | None] = field(default_factory=dict)
    kill_switch: bool = False
    pbo: float | None = None


@dataclass(frozen=True)
class PromotionReview:
    """The promoter's answer.

    Attributes:
        campaign_id, day, date: what was reviewed (``date`` = the ranking day).
        run_id: the ranking day's cohort run.
        candidates: every agent of the day, ranked (best passing first): ``{"agent_id",
            "genome", "roi", "sharpe", "passed", "checks": [{"name", "figure",
            "threshold", "passed", "detail"}], "blocking": [names], "allocation"}``.
        proposal: the best passing candidate, or None.
        blocking: why there is no proposal (the best candidate's failed checks); [] with one.
        config: the :class:`PromoterConfig` used (dict).
    """

    campaign_id: str | None
    day: int
    date: str
    run_id: str | None
    candidates: list[dict]
    proposal: dict | None
    blocking: list[dict]
    config: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _check(name: str, figure: Any, threshold: str, passed: bool, detail: str) -> dict:
    if isinstance(figure, (float, np.floating)):
        figure = float(figure) if math.isfinite(figure) else None
    return {"name": name, "figure": figure, "threshold": threshold, "passed": bool(passed), "detail": detail}


def allocation_for(bankroll: float, gene_leverage: float, tier: float | None, kelly_cap: float | None,
                   config: PromoterConfig = PromoterConfig()) -> dict:
    """The proposed allocation and its gross exposure.

    ``amount = min(max(allocation_share x bankroll, min_allocation), bankroll)``;
    ``leverage = min(gene leverage, tier, Kelly cap)`` (a missing tier or cap is
    not applied); ``gross_exposure = amount x leverage``; quote currency.
    """
    amount = min(max(config.allocation_share * bankroll, config.min_allocation), bankroll)
    caps = {"gene": float(gene_leverage)}
    if tier is not None:
        caps["tier"] = float(tier)
    if kelly_cap is not None:
        caps["kelly_cap"] = float(kelly_cap)
    lev = min(caps.values())
    return {"amount": float(amount), "share_of_bankroll": float(amount / bankroll) if bankroll > 0 else None,
            "bankroll": float(bankroll), "leverage": float(lev), "leverage_caps": caps,
            "bound_by": min(caps, key=caps.get), "gross_exposure": float(amount * lev)}


def _liquidity(market: MarketData, genomes: Sequence[Genome], allocations: Sequence[float],
               caps: Sequence[float], engine: EngineConfig) -> tuple[np.ndarray, np.ndarray]:
    """Max fill notional / bar quote volume of each genome simulated alone at its
    allocation and leverage ceiling, and the number of its fills."""
    n = len(genomes)
    sig, weight = build_signals(market, genomes)
    alloc = np.array([int(math.floor(a * UNITS)) for a in allocations], dtype=np.int64)
    bank = int(alloc.sum())
    res = run_engine(market, sig, agent_arrays(genomes, weight, alloc, leverage_caps=np.asarray(caps)),
                     bankroll_units=bank, config=isolated_config(engine))
    f = res.fills
    traded = f["symbol"] >= 0
    bars, syms, agents = f["bar"][traded], f["symbol"][traded], f["agent"][traded]
    notional = np.abs(f["notional_units"][traded]) / UNITS
    quote_vol = market.volume[bars, syms] * market.close[bars, syms]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(quote_vol > 0, notional / np.where(quote_vol > 0, quote_vol, 1.0), np.inf)
    worst = np.zeros(n)
    count = np.bincount(agents, minlength=n)
    np.maximum.at(worst, agents, share)
    return worst, count


def promote_intraday_candidate(campaign: Mapping[str, Any], day: int, market: MarketData, *,
                               config: PromoterConfig = PromoterConfig(),
                               context: PromotionContext) -> PromotionReview:
    """Review the agents of campaign day ``day`` against every guard rail.

    Args:
        campaign: the stored campaign report (as :func:`manager.campaigns.run_campaign`
            returns it: ``days``, ``candidates`` with ``holdout`` / ``confirmed``,
            ``rule.ranked_on``, ``campaign_id``).
        day: the campaign day reviewed, 1-based, >= 3 (its agents are ranked on it).
        market: that day's bars (traded bars = the day; warm-up as the campaign's).
        config: guard rails and allocation (:class:`PromoterConfig`).
        context: the figures from outside evolution (:class:`PromotionContext`).

    Returns:
        :class:`PromotionReview`.

    Raises:
        PromoterError: ``day`` < 3 ("promotion opens after Day 3"), beyond the
            campaign, a day without agents, or a market of another day.
    """
    days = list(campaign.get("days") or [])
    if not isinstance(day, int) or isinstance(day, bool) or day < FIRST_DAY:
        raise PromoterError(f"day={day!r}: promotion opens after Day {FIRST_DAY} (review day {FIRST_DAY} "
                            f"or later of a campaign of at least {FIRST_DAY} days)")
    if day > len(days):
        raise PromoterError(f"day={day} is beyond the campaign's {len(days)} day(s); allowed: "
                            f"{FIRST_DAY} to {len(days)}")
    rep = days[day - 1]
    agents = list(rep.get("agents") or [])
    if not agents:
        raise PromoterError(f"day {day} ({rep.get('date')}) has no agents to review")
    first = str(np.datetime_as_string(market.timestamps[market.warmup], unit="D"))
    if first != rep["date"]:
        raise PromoterError(f"the market's first traded bar is on {first}, not on day {day} ({rep['date']}): "
                            "load the ranking day's bars")
    rule = campaign.get("rule") or {}
    ranked_here = rule.get("ranked_on") == rep["date"]
    by_candidate = {c["agent_id"]: c for c in campaign.get("candidates") or []} if ranked_here else {}
    pbo = context.pbo if context.pbo is not None else rep.get("pbo")
    deflation = rep.get("deflation") or {}
    genomes = [Genome.from_dict(a["genome"]) for a in agents]
    n = len(genomes)
    eng = context.engine

    # the agents alone, the random baseline alone, the slippage stress (one engine call each)
    rnd = random_genomes(config.n_random, market.symbols, seed=config.seed,
                         max_leverage=max(max(g.leverage for g in genomes), 1.0))
    alone = evaluate(market, [*genomes, *rnd], eng)
    roi_alone, rnd_roi = alone.roi[:n], alone.roi[n:]
    stress_cfg = replace(eng, slippage_bps=min(eng.slippage_bps * config.slippage_factor, 1000.0))
    stressed = evaluate(market, genomes, stress_cfg)
    allocs = [allocation_for(context.bankroll, g.leverage, context.tiers.get(a["agent_id"]),
                             context.kelly_caps.get(a["agent_id"]), config) for g, a in zip(genomes, agents)]
    # the engine's ceiling is min(gene, tier) (the Kelly cap bounds the policy's step-ups and the reported
    # exposure, not the engine): the screen trades at that ceiling, the conservative case
    ceilings = [min([g.leverage] + ([x["leverage_caps"]["tier"]] if "tier" in x["leverage_caps"] else []))
                for g, x in zip(genomes, allocs)]
    liq, nfills = _liquidity(market, genomes, [x["amount"] for x in allocs], ceilings, eng)

    out = []
    for i, a in enumerate(agents):
        aid = a["agent_id"]
        cand = by_candidate.get(aid)
        checks = [
            _check("min_trades", int(a["trades"]), f">= {config.min_trades}", a["trades"] >= config.min_trades,
                   f"{a['trades']} trade(s) on {rep['date']}"),
        ]
        hold = (cand or {}).get("holdout")
        if hold is None:
            why = ("no holdout: the campaign ranked on another day" if not ranked_here else
                   "no holdout: not a campaign candidate (below its trades/DSR floor) or no holdout day")
            checks.append(_check("holdout", None, "confirmed on the holdout day" if config.require_holdout
                                 else "not required", not config.require_holdout, why))
        else:
            ok = bool(cand.get("confirmed"))
            checks.append(_check("holdout", hold.get("roi"), "holdout ROI > 0 with >= 1 trade",
                                 ok or not config.require_holdout,
                                 f"re-simulated alone on {rule.get('confirmed_on')}: ROI {hold.get('roi'):.4%}, "
                                 f"{hold.get('trades')} trade(s)"))
        dsr = a.get("deflated_sharpe")
        checks.append(_check("deflated_sharpe", dsr, f">= {config.dsr_min:g}",
                             dsr is not None and dsr >= config.dsr_min,
                             f"N = {deflation.get('n_trials')} agents of the day, V[SR] = {deflation.get('var_sr')}"))
        checks.append(_check("pbo", pbo, f"<= {config.pbo_max:g}", pbo is not None and pbo <= config.pbo_max,
                             "PBO by CSCV of the day's learning cycle" if pbo is not None
                             else "PBO not computed for the day's cycle"))
        pct = mid_percentile(float(roi_alone[i]), rnd_roi)
        checks.append(_check("baseline_percentile", pct, f">= {config.percentile_min:g}", pct >= config.percentile_min,
                             f"ROI alone {roi_alone[i]:.4%} among {config.n_random} random genomes alone "
                             f"(median {float(np.median(rnd_roi)):.4%}), seed {config.seed}"))
        mdd = float(a["max_drawdown"])
        checks.append(_check("max_drawdown", mdd, f"<= {config.max_drawdown:g}", mdd <= config.max_drawdown,
                             f"max drawdown on {rep['date']} (fraction of peak)"))
        sroi = float(stressed.roi[i])
        checks.append(_check("slippage_x2", sroi, "ROI > 0", sroi > 0,
                             f"re-simulated alone with slippage {stress_cfg.slippage_bps:g} bps "
                             f"(x{config.slippage_factor:g} of {eng.slippage_bps:g})"))
        share = float(liq[i])
        checks.append(_check("liquidity", share, f"<= {config.max_volume_share:g}",
                             share <= config.max_volume_share,
                             f"largest fill notional / bar quote volume at {allocs[i]['amount']:g} "
                             f"{market.quote}, ceiling {ceilings[i]:g}x ({int(nfills[i])} fill(s))"))
        tier = context.tiers.get(aid)
        exposure = allocs[i]["gross_exposure"] > 0
        ok = tier is not None and not context.kill_switch and exposure
        checks.append(_check("policy", tier, "a tier in force, a gross exposure > 0 and the kill switch off", ok,
                             "kill switch on" if context.kill_switch else
                             f"lineage {context.lineages.get(aid)}: " + ("no tier" if tier is None else f"tier {tier:g}x")
                             + ("" if exposure or tier is None else
                                f"; allocation leverage {allocs[i]['leverage']:g}x (bound by "
                                f"{allocs[i]['bound_by']}): no exposure to deploy")))
        blocking = [c["name"] for c in checks if not c["passed"]]
        out.append({"agent_id": aid, "genome": a["genome"], "roi": float(a["roi"]), "sharpe": float(a["sharpe"]),
                    "roi_alone": float(roi_alone[i]), "lineage": context.lineages.get(aid),
                    "tier": tier, "kelly_cap": context.kelly_caps.get(aid),
                    "passed": not blocking, "checks": checks, "blocking": blocking, "allocation": allocs[i]})
    out.sort(key=lambda c: (not c["passed"], len(c["blocking"]), -c["roi"], -c["sharpe"], c["agent_id"]))
    proposal = out[0] if out[0]["passed"] else None
    blocking = [] if proposal else [c for c in out[0]["checks"] if not c["passed"]]
    return PromotionReview(campaign_id=campaign.get("campaign_id"), day=day, date=rep["date"],
                           run_id=rep.get("run_id"), candidates=out, proposal=proposal, blocking=blocking,
                           config=config.to_dict())
