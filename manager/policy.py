"""Use cases of the leverage policy (:mod:`risk.policy`): the ceilings a cohort
trades under, the decisions recorded after it, and the read side (current tiers,
history, replay of a campaign, the kill switch).

A cohort with the policy on trades under:

* per agent: ``min(genome leverage gene, tier of the agent's lineage)``; a
  lineage without a decision yet trades at the base tier;
* the parent: its gross-exposure ceiling is the tier of ``parent:<scope>``
  (``scope`` = the campaign id, or ``main`` for single runs), replacing
  ``--max-gross-leverage``;
* the kill switch (:func:`kill_switch`), whether or not the policy is on: while
  it is on every ceiling is 0x, so no agent takes exposure.

Point in time: the tiers and lineages a cohort of day *d* uses are the stored
decisions whose period ended at or before the start of *d*, on the same market
(:meth:`~manager.store.ports.policy.PolicyStore.policy_tiers`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from manager.alerts import notify_kill_switch
from manager.store import Store
from risk.lineage import DEFAULT_TOLERANCE, Lineage, assign_lineages
from risk.policy import PeriodRecord, PolicyConfig, decide, decision_id, replay
from simulator import metrics
from simulator.kernel import UNITS

__all__ = ["DECISION_CSV_FIELDS", "all_decisions", "DEFAULT_SCOPE", "DEFAULT_DAILY_HARD_STOP", "Ceilings", "policy_ceilings", "kill_ceilings", "period_records",
           "record_policy_day", "current_tiers", "tier_history", "simulate_campaign", "agent_tiers",
           "set_kill_switch", "leverage_panel", "record_decision_metrics", "run_period", "decision_summaries"]

#: The columns of a policy-decision CSV export (API ``format=csv``, ``policy history --csv``), in order.
DECISION_CSV_FIELDS = ("period", "period_end", "market", "subject", "subject_kind", "previous_tier", "tier",
                       "trigger", "next_tier", "next_trigger", "rule", "source", "decided_at")

#: The parent subject's scope for cohorts outside a campaign.
DEFAULT_SCOPE = "main"

#: The product's default daily hard stop (fraction of the parent equity at the start of the
#: UTC day) for the CLI and the API; the pure engine's own default is 0 (off).
DEFAULT_DAILY_HARD_STOP = 0.05


@dataclass
class Ceilings:
    """The leverage ceilings one cohort trades under, and why.

    Attributes:
        agent_caps: ``(N,) float64`` per-agent gross-exposure ceiling, multiple of agent equity.
        parent_cap: the parent's gross-exposure ceiling, multiple of parent equity.
        subjects: ``(N,)`` the lineage subject of each agent (empty without the policy).
        lineages: ``{subject: Lineage}`` of the cohort's agents.
        tiers: ``{subject: {"tier", "trigger", "rule", "period", "decision_id"}}``
            the tier in force for each subject and the decision that set it
            (trigger ``initial`` for a subject without one).
        parent_subject: ``parent:<scope>`` (None without the policy).
        kill_switch: the switch's state when the ceilings were taken.
        policy: whether the policy set the ceilings (False: only the kill switch applies).
    """

    agent_caps: np.ndarray
    parent_cap: float
    subjects: list[str] = field(default_factory=list)
    lineages: dict[str, Lineage] = field(default_factory=dict)
    tiers: dict[str, dict] = field(default_factory=dict)
    parent_subject: str | None = None
    kill_switch: dict = field(default_factory=dict)
    policy: bool = False


def _iso(ts: Any) -> str:
    t = pd.Timestamp(ts)
    t = t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_force(doc: dict | None, cfg: PolicyConfig, kill_on: bool = False) -> dict:
    """The tier in force from the latest decision; a 0x decided while the kill switch was
    on lasts only while it stays on (off again: the base tier at once, trigger ``resume``)."""
    if doc is None:
        return {"tier": cfg.base_tier, "trigger": "initial", "rule": "new subject: the base tier "
                f"({cfg.base_tier:g}x)", "period": None, "decision_id": None}
    if doc["trigger"] == "kill_switch" and not kill_on:
        return {"tier": cfg.base_tier, "trigger": "resume", "rule": f"kill switch off again: the base tier "
                f"({cfg.base_tier:g}x) instead of the 0x decided after {doc['period']}",
                "period": doc["period"], "decision_id": doc.get("decision_id")}
    return {"tier": float(doc["tier"]), "trigger": doc["trigger"], "rule": doc["rule"],
            "period": doc["period"], "decision_id": doc.get("decision_id")}


def kill_ceilings(store: Store | None, genomes: Sequence[Any]) -> Ceilings | None:
    """Zero ceilings when the kill switch is on (None when it is off or there is no store)."""
    if store is None:
        return None
    ks = store.kill_switch()
    if not ks.get("on"):
        return None
    return Ceilings(agent_caps=np.zeros(len(genomes)), parent_cap=0.0, kill_switch=ks)


def policy_ceilings(store: Store, market_key: str, scope: str, genomes: Sequence[Any], as_of: Any,
                    config: PolicyConfig | None = None, tol: float = DEFAULT_TOLERANCE) -> Ceilings:
    """The ceilings of a cohort of ``genomes`` starting at ``as_of`` on ``market_key``.

    Args:
        store: where decisions and the kill switch live.
        market_key: the market (``binance-5m|5m|BTC``); decisions of other markets are never read.
        scope: the parent's scope (campaign id or :data:`DEFAULT_SCOPE`).
        genomes: ``(N,)`` the agents (``genome_id``, ``family``, ``params``, ``leverage``), best first.
        as_of: the cohort's start (point in time; decisions after it are not read).
        config: policy settings.
        tol: lineage tolerance (:mod:`risk.lineage`).

    Returns:
        :class:`Ceilings`.
    """
    cfg = config or PolicyConfig()
    docs = store.policy_tiers(market_key, _iso(as_of))
    known = [Lineage.from_dict(d["rationale"]["lineage"]) for d in sorted(docs.values(), key=lambda d: d["period_end"])
             if d.get("subject_kind") == "lineage" and (d.get("rationale") or {}).get("lineage")]
    by_gid, _ = assign_lineages([(g.genome_id, g.family, g.params) for g in genomes], known, tol)
    subjects = [by_gid[g.genome_id].subject for g in genomes]
    parent = f"parent:{scope}"
    ks = store.kill_switch()
    tiers = {s: _in_force(docs.get(s), cfg, bool(ks.get("on"))) for s in dict.fromkeys([*subjects, parent])}
    if ks.get("on"):
        caps, parent_cap = np.zeros(len(genomes)), 0.0
    else:
        caps = np.array([min(float(g.leverage), tiers[s]["tier"]) for g, s in zip(genomes, subjects)])
        parent_cap = tiers[parent]["tier"]
    return Ceilings(agent_caps=caps, parent_cap=float(parent_cap), subjects=subjects,
                    lineages={by_gid[g.genome_id].subject: by_gid[g.genome_id] for g in genomes},
                    tiers=tiers, parent_subject=parent, kill_switch=ks, policy=True)


def _record(equity: np.ndarray, posval: np.ndarray, initial: float, trades: int, *, tier: float,
            period: str, end: str, ppy: float, timeframe: str, hard_stop: bool) -> PeriodRecord:
    rets = metrics.bar_returns(equity, initial)
    n = int(rets.shape[0])
    sharpe = float(metrics.sharpe_ratio(rets, ppy)) if n > 1 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        expo = np.where(equity > 0, posval / np.where(equity > 0, equity, 1.0), 0.0)
    return PeriodRecord(
        period=period, end=end, tier=float(tier),
        ret=float(equity[-1] / initial - 1.0) if initial > 0 else 0.0, pnl=float(equity[-1] - initial),
        sharpe=sharpe if np.isfinite(sharpe) else 0.0,
        max_drawdown=float(metrics.max_drawdown(equity, initial)), trades=int(trades), n_bars=n,
        bar_mean=float(rets.mean()) if n else 0.0, bar_var=float(rets.var(ddof=1)) if n > 1 else 0.0,
        exposure=float(expo.mean()) if n else 0.0, timeframe=timeframe, hard_stop=bool(hard_stop))


def period_records(result: Any, ceilings: Ceilings, period: str, end: str) -> dict[str, PeriodRecord]:
    """The day's :class:`PeriodRecord` of every subject of a finished cohort.

    A lineage's record is of the summed equity and exposure of its agents (its
    allocation is the sum of theirs); the parent's is of the parent equity curve.
    Sharpe is annualised from the market's timeframe
    (:func:`simulator.metrics.annualisation_periods`).

    Args:
        result: :class:`simulator.cohort.CohortResult`.
        ceilings: the ceilings the cohort traded under (tiers in force).
        period: ``YYYY-MM-DD``; end: ISO 8601 UTC end of the period.
    """
    eng = result.engine
    market = result.market
    ppy = metrics.annualisation_periods(market.timeframe_s)
    alloc = eng.allocation_units / UNITS
    trades = {r["agent_id"]: int(r.get("trades", 0)) for r in result.scores}
    stopped = len(getattr(eng, "hard_stop_bars", ())) > 0
    out: dict[str, PeriodRecord] = {}
    members: dict[str, list[int]] = {}
    for i, s in enumerate(ceilings.subjects):
        members.setdefault(s, []).append(i)
    for s, idx in members.items():
        out[s] = _record(eng.equity[idx].sum(axis=0), eng.position_value[idx].sum(axis=0), float(alloc[idx].sum()),
                         sum(trades.get(result.agent_ids[i], 0) for i in idx), tier=ceilings.tiers[s]["tier"],
                         period=period, end=end, ppy=ppy, timeframe=market.timeframe, hard_stop=stopped)
    if ceilings.parent_subject:
        out[ceilings.parent_subject] = _record(
            eng.parent_equity, eng.position_value.sum(axis=0), eng.bankroll_units / UNITS, sum(trades.values()),
            tier=ceilings.tiers[ceilings.parent_subject]["tier"], period=period, end=end, ppy=ppy,
            timeframe=market.timeframe, hard_stop=stopped)
    return out


def _track_record(store: Store, market_key: str, subject: str, until: str, limit: int) -> list[PeriodRecord]:
    docs = store.list_policy_decisions(market=market_key, subject=subject, until=until, limit=limit)
    return [PeriodRecord.from_dict(d["rationale"]["period"]) for d in reversed(docs)
            if (d.get("rationale") or {}).get("period")]


def record_policy_day(store: Store, market_key: str, result: Any, ceilings: Ceilings, *, period: str, end: str,
                      source: str | None, config: PolicyConfig | None = None) -> list[dict]:
    """Decide and store each subject's tier for the period after ``period``.

    The track record of each subject is its stored periods before this one plus
    this one; decisions are append-only and idempotent per (market, subject,
    period): a decision already stored for the period is kept as it is.

    Returns:
        The stored decision documents (existing ones as stored), subjects in order.
    """
    cfg = config or PolicyConfig()
    ks = bool(store.kill_switch().get("on"))
    out = []
    now = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    for subject, rec in period_records(result, ceilings, period, end).items():
        history = _track_record(store, market_key, subject, rec.end, cfg.kelly_periods)
        history = [r for r in history if r.period != period] + [rec]
        d = decide(subject, history, cfg, kill_switch=ks)
        doc = {**d.to_dict(), "decision_id": decision_id(market_key, subject, period), "market": market_key,
               "source": source, "decided_at": now}
        lin = ceilings.lineages.get(subject)
        if lin is not None:
            doc["rationale"] = {**doc["rationale"], "lineage": lin.to_dict()}
        stored, _ = store.record_policy_decision(doc)
        out.append(stored)
    return out


def agent_tiers(ceilings: Ceilings | None, agent_ids: Sequence[str]) -> dict[str, dict]:
    """``{agent_id: {"lineage", "tier", "ceiling", "trigger", "rule"}}`` for the report."""
    if ceilings is None:
        return {}
    out = {}
    for i, aid in enumerate(agent_ids):
        s = ceilings.subjects[i] if i < len(ceilings.subjects) else None
        t = ceilings.tiers.get(s, {}) if s else {}
        if ceilings.kill_switch.get("on"):
            t = {"tier": 0.0, "trigger": "kill_switch", "rule": f"kill switch on: {ceilings.kill_switch.get('reason')}"}
        out[aid] = {"lineage": s, "tier": t.get("tier"), "ceiling": float(ceilings.agent_caps[i]),
                    "trigger": t.get("trigger"), "rule": t.get("rule")}
    return out


def current_tiers(store: Store, market: str | None = None, as_of: Any = None, subject: str | None = None,
                  config: PolicyConfig | None = None) -> list[dict]:
    """The tier in force per subject (latest decision at or before ``as_of``,
    default now), with the next planned tier and its trigger.

    Args:
        market: one market key, or None for every market with decisions.
        subject: one subject, or None for all.

    Returns:
        Rows ``{"market", "subject", "subject_kind", "tier", "next_tier", "next_trigger",
        "down_tier", "down_trigger", "trigger", "rule", "period", "decided_at"}``,
        parents first, then by tier (highest first) and subject.
    """
    cfg = config or PolicyConfig()
    when = _iso(as_of if as_of is not None else pd.Timestamp.now(tz="UTC"))
    markets = [market] if market else sorted({d["market"] for d in store.list_policy_decisions(limit=500)})
    ks = store.kill_switch()
    rows = []
    for m in markets:
        for s, d in store.policy_tiers(m, when).items():
            if subject and s != subject:
                continue
            row = {k: d.get(k) for k in ("market", "subject", "subject_kind", "tier", "next_tier", "next_trigger",
                                         "down_tier", "down_trigger", "trigger", "rule", "period", "decided_at")}
            if ks.get("on"):
                row.update(tier=0.0, next_tier=cfg.base_tier, next_trigger="the kill switch turned off",
                           trigger="kill_switch", rule=f"kill switch on since {ks.get('at')} by {ks.get('actor')}: "
                           f"{ks.get('reason')} (0x; the stored tier {d['tier']:g}x returns when it is off)")
            elif d["trigger"] == "kill_switch":
                row.update(_in_force(d, cfg), next_tier=min(cfg.base_tier + cfg.step, cfg.cap))
            rows.append(row)
    rows.sort(key=lambda r: (r["subject_kind"] != "parent", -(r["tier"] or 0), r["subject"]))
    return rows


def tier_history(store: Store, **filters: Any) -> tuple[list[dict], int]:
    """A page of stored decisions (newest first) and the count of all matching;
    ``filters`` as :meth:`~manager.store.ports.policy.PolicyStore.list_policy_decisions`."""
    count = {k: v for k, v in filters.items() if k not in ("limit", "offset")}
    return store.list_policy_decisions(**filters), store.count_policy_decisions(**count)


def all_decisions(store: Store, page: int = 500, **filters: Any):
    """Every decision matching ``filters`` (as :func:`tier_history`), newest first, read a
    page of ``page`` at a time (for CSV exports)."""
    offset = 0
    while True:
        rows = store.list_policy_decisions(**filters, limit=page, offset=offset)
        yield from rows
        if len(rows) < page:
            return
        offset += page


def simulate_campaign(store: Store, campaign_id: str, config: PolicyConfig | None = None) -> dict:
    """Replay the policy over a stored campaign's track records (:func:`risk.policy.replay`).

    The figures are the stored periods of every subject the campaign decided on;
    the tiers are recomputed with ``config`` from the base tier, so another
    config shows the path it would have taken on the same evidence (the figures
    themselves are not re-simulated at the new tiers: a counterfactual in tiers,
    not in returns).

    Returns:
        ``{"campaign_id", "config", "subjects": [{"subject", "path": [{"period",
        "tier", "previous_tier", "trigger", "stored_tier"}]}]}``.

    Raises:
        LookupError: no decision recorded for the campaign.
    """
    cfg = config or PolicyConfig()
    docs = store.list_policy_decisions(source=campaign_id, limit=1000)
    if not docs:
        raise LookupError(f"no policy decisions recorded for campaign {campaign_id!r}; "
                          "run `cohortlab campaign --policy` first (see `cohortlab policy history`)")
    by_subject: dict[str, list[dict]] = {}
    for d in sorted(docs, key=lambda d: d["period_end"]):
        by_subject.setdefault(d["subject"], []).append(d)
    subjects = []
    for s, ds in sorted(by_subject.items(), key=lambda kv: (not kv[0].startswith("parent:"), kv[0])):
        recs = [PeriodRecord.from_dict(d["rationale"]["period"]) for d in ds]
        path = replay(s, recs, cfg, start_tier=recs[0].tier)
        subjects.append({"subject": s, "path": [
            {"period": r.period, "previous_tier": p.previous_tier, "tier": p.tier, "trigger": p.trigger,
             "stored_tier": d["tier"], "sharpe": r.sharpe, "max_drawdown": r.max_drawdown, "ret": r.ret,
             "trades": r.trades} for r, p, d in zip(recs, path, ds)]})
    return {"campaign_id": campaign_id, "config": cfg.to_dict(), "subjects": subjects}


def _metrics():
    try:
        from manager import metrics
    except ImportError:  # the base install has no prometheus-client: nothing to export to
        return None
    return metrics


def record_decision_metrics(docs: Sequence[dict]) -> None:
    """Count tier changes (``cohortlab_policy_tier_changes_total{direction, trigger}``)
    and set the tier gauges (``cohortlab_policy_tier{subject_kind}`` holds the
    parent's tier; lineages are summarised by their count per tier)."""
    m = _metrics()
    if m is not None:
        m.record_policy_decisions(docs)


def set_kill_switch(store: Store, on: bool, *, actor: str, reason: str) -> dict:
    """Turn the kill switch on or off (audited: who, when, why).

    While on, every cohort trades under 0x ceilings (no new exposure) and the
    policy decides 0x for every subject; turning it off lets the next decision
    of each subject resume at the base tier.

    Args:
        on: the new state.
        actor: who (a user name, ``cli:<login>``, ``api:<token holder>``).
        reason: why (required, non-empty).

    Returns:
        The new state ``{"on", "actor", "reason", "at"}``.

    Raises:
        InvalidDocument: an empty reason or actor.
    """
    state = store.set_kill_switch(bool(on), actor=actor, reason=reason)
    notify_kill_switch(store, state)  # an alert on the channels; never raises
    m = _metrics()
    if m is not None:
        m.record_kill_switch(bool(state.get("on")))
    return state


def leverage_panel(store: Store, *, market: str | None = None, history: int = 200) -> dict:
    """Everything the ``/risk/leverage`` page and ``GET /api/risk/leverage`` show.

    Returns:
        ``{"tiers": current_tiers rows, "kill_switch": state, "kill_switch_history": [...],
        "risk": risk report of the latest completed cohort (None without one),
        "hard_stops": that run's hard-stop events, "tier_paths": {subject: [{"period",
        "period_end", "tier"}]} oldest first (for the chart; the latest ``history``
        decisions)}``.
    """
    from manager.risk_report import risk_report  # the risk report reloads bars; only the panel needs it

    tiers = current_tiers(store, market=market)
    docs = store.list_policy_decisions(market=market, limit=history)
    paths: dict[str, list[dict]] = {}
    for d in sorted(docs, key=lambda d: (d["period_end"], d["subject"])):
        paths.setdefault(d["subject"], []).append({"period": d["period"], "period_end": d["period_end"],
                                                   "tier": d["tier"], "trigger": d["trigger"]})
    latest = store.list_runs(limit=1, status="completed", kind="cohort")
    risk, events = None, []
    if latest:
        rid = latest[0]["run_id"]
        try:
            risk = risk_report(store, rid)
        except Exception as exc:  # a run whose figures cannot be measured must not take the page down
            risk = {"run_id": rid, "error": f"the risk report failed ({type(exc).__name__}); run `cohortlab risk report {rid}`"}
        events = (store.get_run(rid).get("summary") or {}).get("events") or []
    return {"tiers": tiers, "kill_switch": store.kill_switch(),
            "kill_switch_history": store.kill_switch_history(20), "risk": risk, "hard_stops": events,
            "tier_paths": paths}


def run_period(market: Any) -> tuple[str, str, str]:
    """``(period, start, end)`` of a cohort's traded bars: the UTC date of the first
    traded bar, its open and the close of the last bar (ISO 8601 UTC). ``start``
    is the point in time of the tiers the cohort trades under; ``end`` is when
    its decisions become known."""
    ts = market.timestamps
    start = pd.Timestamp(ts[market.warmup], tz="UTC")
    end = pd.Timestamp(ts[-1], tz="UTC") + pd.Timedelta(seconds=market.timeframe_s)
    return str(start.date()), _iso(start), _iso(end)


def decision_summaries(docs: Sequence[dict]) -> list[dict]:
    """The short form of stored decisions for reports: ``{"subject", "period",
    "previous_tier", "tier", "next_tier", "trigger", "rule"}``."""
    return [{k: d.get(k) for k in ("subject", "period", "previous_tier", "tier", "next_tier", "trigger", "rule")}
            for d in docs]
