"""Read-side views of campaigns and Day-3 promotions for the dashboard and the API
(issue 13). Nothing here changes the store: the state changes are
:mod:`manager.promotions`' use cases.

* :func:`promoter_config` -- the :class:`~evolution.promoter.PromoterConfig` the API and
  the dashboard review with (``COHORTLAB_PROMOTER``, a JSON object of its fields; unset =
  the defaults). It belongs in :class:`manager.settings.Settings`; it lives here until it
  moves there.
* :data:`PROMOTION_CSV_FIELDS`, :func:`promotion_rows` -- ``GET /api/promotions?format=csv``.
* :func:`campaign_list`, :func:`campaign_view` -- the campaign pages' view models.
* :func:`campaign_of_run` -- the campaign day a cohort run is (for its page's review button).
* :func:`promotion_review` -- the Day-3 review modal: readiness, the candidate's allocation
  and its VaR/CVaR, tier and Kelly cap, the checklist, the equity curve against its
  baselines, the signatures so far, and which button the signed-in user may press (or why
  not).

Every document leaves through :func:`manager.data_roots.public_view`: no server path.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from evolution.promoter import FIRST_DAY, PromoterConfig, PromoterError
from manager import promotions, read_model
from manager.data_roots import public_view
from manager.store import NotFound, Store
from risk.var import value_at_risk
from simulator.metrics.performance import bar_returns

__all__ = ["PROMOTER_ENV", "PROMOTION_CSV_FIELDS", "campaign_list", "campaign_of_run", "campaign_view",
           "allocation_risk", "promoter_config", "promotion_review", "promotion_row", "promotion_rows"]

PROMOTER_ENV = "COHORTLAB_PROMOTER"
"""Environment variable: a JSON object of :class:`PromoterConfig` fields (``{"min_trades": 2}``)."""

PROMOTION_CSV_FIELDS: tuple[str, ...] = (
    "promotion_id", "campaign_id", "day", "date", "run_id", "agent_id", "status", "created_at", "expires_at",
    "proposed_by", "proposed_at", "ops_signed_by", "risk_signed_by", "rejected_by", "allocation", "bankroll",
    "gross_exposure", "checklist_hash")
"""The columns of ``GET /api/promotions?format=csv``, in order (signers as ``user (role) at time``)."""


def promoter_config(overrides: Sequence[str] = ()) -> PromoterConfig:
    """The configured promoter settings: :data:`PROMOTER_ENV` (read now; unset = the
    defaults), then ``NAME=VALUE`` ``overrides`` (``cohortlab promotions ... --set``), each
    value typed after the field's default.

    Raises:
        PromoterError: the variable is not a JSON object of known, allowed settings; an
            override is not ``NAME=VALUE``, names no setting or has a value of the wrong type.
    """
    text = (os.environ.get(PROMOTER_ENV) or "").strip()
    base: dict[str, Any] = {}
    if text:
        try:
            base = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromoterError(f"{PROMOTER_ENV} is not JSON ({exc.msg}); give an object such as "
                                '{"min_trades": 2}') from None
        if not isinstance(base, dict):
            raise PromoterError(f"{PROMOTER_ENV} must be a JSON object of promoter settings")
    defaults = {f.name: f.default for f in dataclasses.fields(PromoterConfig)}
    for item in overrides:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise PromoterError(f"--set {item!r} is not NAME=VALUE")
        if name not in defaults:
            raise PromoterError(f"unknown promoter setting {name!r}; allowed: {', '.join(sorted(defaults))}")
        default = defaults[name]
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                base[name] = value.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                base[name] = int(value)
            else:
                base[name] = float(value)
        except ValueError:
            raise PromoterError(f"--set {name}={value!r}: not a {type(default).__name__}") from None
    return PromoterConfig.from_dict(base)


# -- promotions as CSV -------------------------------------------------------------------------------

def _signature(s: dict | None) -> str | None:
    return f"{s.get('user')} ({s.get('role')}) at {s.get('at')}" if s else None


def promotion_row(doc: dict) -> dict:
    """One request as a flat CSV row (:data:`PROMOTION_CSV_FIELDS`)."""
    steps = doc.get("steps") or []
    signed = {s.get("role"): s for s in steps if s.get("kind") == "approve"}
    rejected = next((s for s in steps if s.get("kind") == "reject"), None)
    alloc = doc.get("allocation") or {}
    by = doc.get("proposed_by") or {}
    return {"promotion_id": doc.get("promotion_id"), "campaign_id": doc.get("campaign_id"), "day": doc.get("day"),
            "date": doc.get("date"), "run_id": doc.get("run_id"), "agent_id": doc.get("agent_id"),
            "status": doc.get("status"), "created_at": doc.get("created_at"), "expires_at": doc.get("expires_at"),
            "proposed_by": by.get("user"), "proposed_at": by.get("at"), "ops_signed_by": _signature(signed.get("ops")),
            "risk_signed_by": _signature(signed.get("risk")), "rejected_by": _signature(rejected),
            "allocation": alloc.get("amount"), "bankroll": alloc.get("bankroll"),
            "gross_exposure": alloc.get("gross_exposure"), "checklist_hash": doc.get("checklist_hash")}


def promotion_rows(store: Store, *, status: str | None = None, campaign_id: str | None = None,
                   batch: int = 200) -> Iterator[dict]:
    """Every request matching the filters as CSV rows, newest first, read a page at a time."""
    offset = 0
    while True:
        page = promotions.list_promotions(store, status=status, campaign_id=campaign_id, limit=batch,
                                          offset=offset)["items"]
        for doc in page:
            yield promotion_row(doc)
        if len(page) < batch:
            return
        offset += len(page)


# -- campaign pages --------------------------------------------------------------------------------

def campaign_list(store: Store, *, limit: int = 50, offset: int = 0) -> list[dict]:
    """Stored campaigns, newest first: ``campaign_id, market, created_at, days, first/last date,
    bankroll, quote, candidates, confirmed``."""
    rows = []
    for camp in store.list_campaigns(limit=limit, offset=offset):
        report = camp.get("report") or {}
        days = report.get("days") or []
        rows.append({"campaign_id": camp["campaign_id"], "market": camp.get("market"),
                     "created_at": camp.get("created_at"), "days": len(days),
                     "first_date": days[0].get("date") if days else None,
                     "last_date": days[-1].get("date") if days else None,
                     "bankroll": camp.get("bankroll"), "quote": report.get("quote"),
                     "candidates": len(report.get("candidates") or []),
                     "confirmed": (report.get("holdout") or {}).get("confirmed")})
    return public_view(rows)


def _best(agents: list[dict]) -> dict | None:
    ranked = [a for a in agents if not a.get("failed")]
    return min(ranked, key=lambda a: a.get("rank") or 10**9) if ranked else None


def campaign_view(store: Store, campaign_id: str) -> dict:
    """The campaign page: ``{"campaign_id", "market", "bankroll", "quote", "created_at", "days": [...],
    "candidates", "holdout", "rule"}``. Each day: ``day, date, run_id, parent (roi, max_drawdown, ...),
    percentile`` (vs random cohorts, None without baselines), ``best`` (agent_id, roi, sharpe),
    ``baselines``, ``policy`` (``parent_tier``, ``parent_next_tier``, ``kill_switch``, ``decisions``),
    ``pbo`` and ``reviewable`` (day >= 3).

    Raises:
        NotFound: no such campaign.
    """
    camp = store.get_campaign(campaign_id)
    report = camp.get("report") or {}
    days = []
    for i, d in enumerate(report.get("days") or [], start=1):
        base = d.get("baselines") or None
        best = _best(list(d.get("agents") or []))
        pol = d.get("policy") or {}
        days.append({
            "day": i, "date": d.get("date"), "run_id": d.get("run_id"), "parent": d.get("parent") or {},
            "percentile": ((base or {}).get("random") or {}).get("percentile"),
            "best": {k: best.get(k) for k in ("agent_id", "roi", "sharpe", "trades", "max_drawdown")} if best else None,
            "baselines": base, "pbo": d.get("pbo"), "agents": len(d.get("agents") or []),
            "policy": {"on": pol.get("on"), "parent_subject": pol.get("parent_subject"),
                       "parent_tier": pol.get("parent_tier") or {}, "parent_next_tier": pol.get("parent_next_tier"),
                       "kill_switch": pol.get("kill_switch") or {},
                       "decisions": sorted(pol.get("decisions") or [], key=lambda x: str(x.get("subject")))},
            "reviewable": i >= FIRST_DAY})
    return public_view({"campaign_id": camp["campaign_id"], "market": camp.get("market"),
                        "bankroll": camp.get("bankroll"), "quote": report.get("quote"),
                        "created_at": camp.get("created_at"), "days": days,
                        "candidates": report.get("candidates") or [], "holdout": report.get("holdout") or {},
                        "rule": report.get("rule") or {}})


def campaign_of_run(store: Store, run_id: str) -> dict | None:
    """``{"campaign_id", "day", "reviewable"}`` when the run is a campaign day, else None."""
    try:
        cfg = store.get_run(run_id).get("config") or {}
    except (NotFound, ValueError):
        return None
    cid, day = cfg.get("campaign_id"), cfg.get("campaign_day")
    if not cid or not isinstance(day, int):
        return None
    return {"campaign_id": cid, "day": day, "reviewable": day >= FIRST_DAY}


# -- the review modal ------------------------------------------------------------------------------

def _day_closes(camp: dict, date: str, symbols: list[str]) -> dict[str, list[float]]:
    """Closes of ``symbols`` over the campaign day ``date`` (its traded bars, no warm-up), from the
    campaign's source; ``{}`` when the bars cannot be loaded any more."""
    import pandas as pd

    from manager.learning_jobs import Source

    try:
        start = pd.Timestamp(date, tz="UTC")
        market = Source(**(camp.get("source") or {})).load(start, start + pd.Timedelta(days=1), 0)
        market = market.between(start, start + pd.Timedelta(days=1), 0)
        w = market.warmup
        return {s: market.close[w:, market.symbols.index(s)].tolist() for s in symbols if s in market.symbols}
    except Exception:  # noqa: BLE001 - moved data: the chart goes without buy-and-hold
        return {}


def allocation_risk(store: Store, run_id: str, agent_id: str, allocation: dict,
                    closes: dict[str, list[float]] | None = None) -> dict:
    """The candidate's bankroll-aware risk: one-bar VaR/CVaR of its proposed allocation, from its
    per-bar returns on the ranking day (:func:`risk.var.value_at_risk` with the allocation as the
    bankroll), as traded and scaled to the proposed leverage (returns scale with exposure:
    ``proposed leverage / gene leverage``); and its equity curve rescaled to the allocation
    with the baselines cash and equal-weight buy-and-hold of its symbols (``closes``: their
    closes over the same bars; default: the prices the read model reloads for the run).

    Returns:
        ``{"var": value_at_risk(...), "scale", "at_proposed": [{"method", "level", "var_quote",
        "cvar_quote"}], "curves": {"timestamps", "agent", "cash", "buy_and_hold"}, "error"}``.
    """
    amount = float(allocation.get("amount") or 0.0)
    caps = allocation.get("leverage_caps") or {}
    gene = float(caps.get("gene") or 0.0)
    scale = float(allocation.get("leverage") or 0.0) / gene if gene > 0 else 0.0
    out: dict[str, Any] = {"var": None, "scale": scale, "at_proposed": [], "curves": None, "error": None}
    try:
        detail = read_model.agent_detail(store, run_id, agent_id)
    except (NotFound, ValueError) as exc:
        out["error"] = str(exc)
        return public_view(out)
    allocated = float(detail["agent"].get("allocated") or 0.0)
    values = np.asarray([np.nan if v is None else v for v in detail["equity"]["values"]], dtype=float)
    if allocated > 0 and values.size and np.isfinite(values).all() and amount > 0:
        var = value_at_risk(bar_returns(values, allocated), amount)
        out["var"] = var
        out["at_proposed"] = [{"method": e["method"], "level": e["level"],
                               "var_quote": None if e["var_quote"] is None else e["var_quote"] * scale,
                               "cvar_quote": None if e["cvar_quote"] is None else e["cvar_quote"] * scale}
                              for e in var["estimates"]]
        factor = amount / allocated
        ts = detail["equity"]["timestamps"]
        bh = None
        series = closes if closes is not None else {k: p["close"] for k, p in detail["prices"].items()
                                                    if p.get("close")}
        arrays = [np.asarray(c, dtype=float) for c in series.values()]
        arrays = [c for c in arrays if c.size == len(ts) and c[0] > 0]
        if arrays:
            bh = (amount * np.mean([c / c[0] for c in arrays], axis=0)).tolist()
        out["curves"] = {"timestamps": ts, "agent": (values * factor).tolist(), "cash": [amount] * len(ts),
                         "buy_and_hold": bh}
    else:
        out["error"] = "no equity curve to measure (the agent had no allocation or the run has no curves)"
    return public_view(out)


def _who(principal: Any) -> tuple[str | None, str | None]:
    return (getattr(principal, "name", None), getattr(principal, "role", None)) if principal else (None, None)


def _roles(roles: Any) -> str:
    return " or ".join(roles) if isinstance(roles, (list, tuple)) else str(roles)


def _actions(review: dict, doc: dict | None, principal: Any, checks_pass: bool, stale: bool) -> dict:
    """Which of propose / approve / reject the principal may press now, each ``{"shown", "enabled",
    "reason"}`` (the reason says why not)."""
    name, role = _who(principal)
    chain = promotions.ApprovalChain.from_dict(doc["chain"]) if doc else promotions.ApprovalChain()
    off = {"shown": False, "enabled": False, "reason": None}
    acts = {"propose": dict(off), "approve": dict(off), "reject": dict(off)}
    open_doc = doc is not None and doc["status"] in chain.open_statuses()
    if not open_doc:
        a = acts["propose"]
        a["shown"] = True
        if doc is not None and doc["status"] == chain.final:
            a["reason"] = f"{doc['promotion_id']} is {doc['status']}: queued for deployment"
        elif not checks_pass:
            a["reason"] = "blocked: guard rail(s) fail: " + ", ".join(c["name"] for c in review["blocking"])
        elif role is None:
            a["reason"] = "sign in to propose"
        elif role not in chain.propose_roles:
            a["reason"] = f"{role}: needs role {_roles(chain.propose_roles)} to propose"
        else:
            a["enabled"] = True
        return acts
    signed = [s for s in doc.get("steps", []) if s.get("kind") == "approve"]
    step = chain.steps[len(signed)]
    a = acts["approve"]
    a.update(shown=True, step=step.status, role=step.role)
    mine = [s for s in signed if s.get("user") == name]
    if stale:
        a["reason"] = "the figures changed since the proposal: re-approval needed (reject and propose again)"
    elif not checks_pass:
        a["reason"] = "blocked: guard rail(s) fail now: " + ", ".join(c["name"] for c in review["blocking"])
    elif role is None:
        a["reason"] = f"sign in: {step.role} must sign next"
    elif mine:
        a["reason"] = f"you signed the {mine[0].get('role')} step; another user must sign"
    elif role != step.role:
        a["reason"] = (f"{role}: needs role {step.role} to sign {step.status}" if role not in
                       {s.role for s in chain.steps} else f"{step.role} must sign next")
    elif name == doc["proposed_by"]["user"] and (signed or not chain.proposer_may_sign_first):
        a["reason"] = f"you proposed this request; another {step.role} user must sign"
    else:
        a["enabled"] = True
    r = acts["reject"]
    r["shown"] = True
    if role is None:
        r["reason"] = "sign in to reject"
    elif role not in chain.reject_roles:
        r["reason"] = f"{role}: needs role {_roles(chain.reject_roles)} to reject"
    else:
        r["enabled"] = True
    return acts


def promotion_review(store: Store, run_id: str, principal: Any = None, *,
                     config: PromoterConfig | None = None) -> dict:
    """The Day-3 review of a campaign run for ``principal`` (None = signed out).

    Returns:
        ``{"readiness", "candidate" (agent id), "checks", "checks_pass", "allocation", "tier",
        "kelly_cap", "risk" (:func:`allocation_risk`), "baselines" (the day's report baselines),
        "promotion" (the latest request of this campaign day with its log, or None), "open",
        "signatures" ([{user, role, at, notes, checklist_hash, kind}]), "checklist_hash" (what an
        approver signs), "stale", "actions" (:func:`_actions`), "quote", "who"}``.

    Raises:
        PromotionError: as :func:`manager.promotions.readiness` (404 no run/campaign, 422 not a
            campaign day >= 3).
    """
    cfg = config or promoter_config()
    review = promotions.readiness(store, run_id, config=cfg)
    docs = [d for d in store.list_promotions(campaign_id=review["campaign_id"], limit=100)
            if d["day"] == review["day"]]
    doc = None
    if review["open_promotion"]:
        doc = promotions.get_promotion(store, review["open_promotion"])
    elif docs:
        doc = promotions.get_promotion(store, docs[0]["promotion_id"])
    agent = doc["agent_id"] if doc else (review["candidate"] or review["best_agent"])
    cand = next((c for c in review["candidates"] if c["agent_id"] == agent), None) or review["candidates"][0]
    checks = cand["checks"]
    checks_pass = all(c["passed"] for c in checks)
    current_hash = review["checklist_hash"] if agent == review["best_agent"] else None
    if doc is not None:
        current_hash = current_hash or doc["checklist_hash"]
    stale = bool(doc and doc["status"] in promotions.ApprovalChain.from_dict(doc["chain"]).open_statuses()
                 and agent == review["best_agent"] and review["checklist_hash"] != doc["checklist_hash"])
    signatures = []
    if doc is not None:
        p = doc["proposed_by"]
        signatures.append({**p, "kind": "propose", "step": "proposed"})
        signatures += [{"user": s.get("user"), "role": s.get("role"), "at": s.get("at"), "notes": s.get("notes"),
                        "checklist_hash": s.get("checklist_hash"), "kind": s.get("kind"),
                        "step": s.get("step") or s.get("kind")} for s in doc.get("steps", [])]
    camp = store.get_campaign(review["campaign_id"])
    day = (camp.get("report") or {}).get("days", [])[review["day"] - 1]
    name, role = _who(principal)
    return public_view({
        "readiness": {k: v for k, v in review.items() if k != "candidates"},
        "run_id": run_id, "campaign_id": review["campaign_id"], "day": review["day"], "date": review["date"],
        "candidate": agent, "checks": checks, "checks_pass": checks_pass, "allocation": cand["allocation"],
        "tier": cand.get("tier"), "kelly_cap": cand.get("kelly_cap"), "lineage": cand.get("lineage"),
        "roi": cand.get("roi"), "sharpe": cand.get("sharpe"),
        "risk": allocation_risk(store, run_id, agent, cand["allocation"],
                                _day_closes(camp, review["date"], list((cand.get("genome") or {}).get("symbols") or []))),
        "baselines": day.get("baselines"), "quote": (camp.get("report") or {}).get("quote"),
        "promotion": doc, "open": bool(review["open_promotion"]), "signatures": signatures,
        "checklist_hash": current_hash, "stale": stale,
        "actions": _actions(review, doc, principal, checks_pass, stale),
        "who": {"name": name, "role": role} if name else None, "config": cfg.to_dict()})
