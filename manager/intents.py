"""The assistant's intents (issue 15): "grow $X over N days" and "what should I fund tomorrow?".

**Grow** (:func:`draft_grow` -> :func:`confirm_grow` -> :func:`run_intent_day` per day):

1. *Draft*: the inputs are checked (bankroll 50-100,000 in the quote currency, days 1-90, a
   target amount above the bankroll or a target return > 0; none = "end with at least the
   bankroll"), the **prerequisites** are checked one by one (the data covers the plan's days --
   no live feed is configured, so a plan is a replay of historical bars --, the store answers,
   the broker is reachable -- the :class:`simulator.broker.PaperBroker` runs in-process --, the
   kill switch is off), and the **feasibility** is computed from the stored evidence
   (:mod:`manager.feasibility`: bootstrap of past cohort daily returns on the same market, point
   in time: only days that ended by the plan's first day). The intent is stored ``draft`` with
   a daily plan (per day: expected return and equity with its 5-95 % band, the tier, the
   bankroll at risk) and a ``confirm`` step, or ``refused`` (implausible target, no evidence) or
   ``blocked`` (a failed prerequisite), which never run. Nothing trades yet.
2. *Confirm* (role of ``PERMISSIONS["launch"]``): with the draft's ``confirm_token`` -- the
   SHA-256 of the canonical JSON of what was shown (inputs, market, days, probability, plan) --
   the intent becomes ``running`` (a compare-and-set on ``draft``: of two confirmations one
   wins) and its days start as a **Celery chain**, one ``cohortlab.intent_day`` task per day
   (without a broker: the same function in the process's executor).
3. *Each day*: one campaign day (:func:`manager.campaigns.execute_campaign_day`: a learning
   cycle on the lookback, then the cohort under the leverage policy) with the bankroll the
   previous day ended with; then an **actual-against-plan report** with a templated narrative
   citing its figures and the day's baselines (random cohorts' percentile, buy-and-hold,
   cash), appended once per day, and a knowledge entry.

**Fund tomorrow** (:func:`fund_tomorrow`): the agents of the stored campaigns ranked on
point-in-time evidence, bankroll adjustments within the policy, pending approvals, blockers
and a narrative, logged to the knowledge base.

Every answer is a JSON-able dict the API, CLI and dashboard show as they are.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from evolution.evolve import GAConfig
from evolution.promoter import PromoterConfig
from manager import knowledge
from manager.baselines import DEFAULT_BASELINES
from manager.feasibility import (APPETITES, DEFAULT_PATHS, Evidence, assess, cohort_daily_returns, pct)
from manager.learning_jobs import DAY, Source
from manager.runner import CohortRequest, RunAlreadyFinished
from manager.seeding import market_identity
from manager.store import NotFound, RunLeased, Store, StoreError, StoreUnavailable, new_run_id
from manager.times import RunError, duration
from simulator.data import data_dir_default, load_market
from simulator.market import MarketData, MarketDataError

__all__ = ["BANKROLL_MAX", "BANKROLL_MIN", "DAYS_MAX", "DAYS_MIN", "GrowInput", "IntentConflict", "IntentError",
           "IntentInvalid", "IntentNotFound", "confirm_grow", "confirm_token", "draft_grow", "fund_tomorrow",
           "get_intent", "intent_view", "run_intent_day", "run_plan", "start_plan"]

log = logging.getLogger("cohortlab.intents")

BANKROLL_MIN, BANKROLL_MAX = 50.0, 100_000.0
DAYS_MIN, DAYS_MAX = 1, 90
MAX_TARGET_RETURN = 10.0


class IntentError(Exception):
    """A refused intent action; ``status`` is the HTTP status the API answers, ``field`` the input."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IntentInvalid(IntentError):
    """Bad input (422), naming the value and what is allowed."""

    status = 422


class IntentNotFound(IntentError):
    """No such intent (404)."""

    status = 404


class IntentConflict(IntentError):
    """The intent is not in a state that allows it, or the confirm token is stale (409)."""

    status = 409


@dataclass
class GrowInput:
    """A "grow $X over N days" request.

    Attributes:
        bankroll: starting parent bankroll, quote currency, 50 to 100,000.
        days: plan length, days, 1 to 90.
        target_amount: the equity to reach, quote currency, above ``bankroll``; or
        target_return: the return to reach, a fraction in (0, 10] (0.05 = +5 %). Neither =
            "end with at least the bankroll" (target return 0). Not both.
        risk_appetite: ``"low"`` | ``"medium"`` (default) | ``"high"`` (:mod:`manager.feasibility`).
        data: the bar folder (a resolved path; None = ``COHORTLAB_DATA_DIR`` / ``./data`` /
            SYNTHETIC). symbols: symbols to trade (None = all). quote: quote of ticker-only files.
        start: the first UTC day traded (``YYYY-MM-DD``); None = the day after the latest
            evidence day on the market (else the first day the data covers with its lookback).
        agents, generations, lookback, baselines, seed: the campaign each day runs (cohort size,
            GA generations, learning lookback, random baseline cohorts, seed).
        n_paths: bootstrap paths.
    """

    bankroll: float
    days: int
    target_amount: float | None = None
    target_return: float | None = None
    risk_appetite: str = "medium"
    data: str | None = None
    symbols: list[str] | None = None
    quote: str | None = None
    start: str | None = None
    agents: int = 30
    generations: int = 5
    lookback: str = "1d"
    baselines: int = DEFAULT_BASELINES
    seed: int = 7
    n_paths: int = DEFAULT_PATHS
    warmup_bars: int = 200

    def validate(self) -> None:
        """Check the bounds.

        Raises:
            IntentInvalid: naming the value and what is allowed.
        """
        def bad(name: str, message: str) -> IntentInvalid:
            return IntentInvalid(f"{name}: {message}", name)

        if not isinstance(self.bankroll, (int, float)) or not BANKROLL_MIN <= float(self.bankroll) <= BANKROLL_MAX:
            raise bad("bankroll", f"{self.bankroll!r} is out of range; allowed: {BANKROLL_MIN:,.0f} to "
                      f"{BANKROLL_MAX:,.0f} (quote currency)")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or not DAYS_MIN <= self.days <= DAYS_MAX:
            raise bad("days", f"{self.days!r} is out of range; allowed: whole days {DAYS_MIN} to {DAYS_MAX}")
        if self.target_amount is not None and self.target_return is not None:
            raise bad("target", "give target_amount or target_return, not both")
        if self.target_amount is not None and not float(self.bankroll) < float(self.target_amount) <= \
                float(self.bankroll) * (1 + MAX_TARGET_RETURN):
            raise bad("target_amount", f"{self.target_amount!r} is not allowed; allowed: above the bankroll "
                      f"{float(self.bankroll):,.2f} and at most {1 + MAX_TARGET_RETURN:g}x it")
        if self.target_return is not None and not 0 < float(self.target_return) <= MAX_TARGET_RETURN:
            raise bad("target_return", f"{self.target_return!r} is out of range; allowed: a fraction above 0 and "
                      f"at most {MAX_TARGET_RETURN:g} (0.05 = +5 %)")
        if self.risk_appetite not in APPETITES:
            raise bad("risk_appetite", f"{self.risk_appetite!r} is not allowed; allowed: {', '.join(APPETITES)}")
        if not 2 <= int(self.agents) <= 200:
            raise bad("agents", f"{self.agents!r} is out of range; allowed: 2 to 200")
        if self.start is not None:
            try:
                pd.Timestamp(self.start)
            except (ValueError, TypeError):
                raise bad("start", f"{self.start!r} is not a date; allowed: YYYY-MM-DD") from None

    def target_fraction(self) -> float:
        """The target as a return fraction (0 without a target)."""
        if self.target_return is not None:
            return float(self.target_return)
        if self.target_amount is not None:
            return float(self.target_amount) / float(self.bankroll) - 1.0
        return 0.0

    def source(self) -> Source:
        """Where the plan's bars come from."""
        return Source(data=self.data, symbols=self.symbols, quote=self.quote, seed=self.seed)


def _now(now: Any = None) -> str:
    if now is None:
        return datetime.now(timezone.utc).isoformat()
    return now.isoformat() if isinstance(now, datetime) else str(now)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def confirm_token(doc: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of what a confirmation agrees to: the inputs, the
    market, the days, the probability and the daily plan."""
    shown = {k: doc.get(k) for k in ("intent_id", "inputs", "market", "start", "dates")}
    shown["probability"] = (doc.get("feasibility") or {}).get("probability")
    shown["plan"] = doc.get("plan")
    return hashlib.sha256(_canonical(shown).encode()).hexdigest()


# ----------------------------------------------------------------- prerequisites


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "status": "pass" if ok else "fail", "detail": detail}


def _full_market(inp: GrowInput) -> MarketData:
    """All the bars of the plan's folder (its span and market key)."""
    folder = Path(inp.data) if inp.data else data_dir_default()
    if folder is None:  # the built-in SYNTHETIC market: its fixed last 30 days
        src = inp.source()
        end = src.last_bar_end()
        return src.load(end - 30 * DAY, end, 0)
    return load_market(folder, inp.symbols, quote=inp.quote)


def _span(market: MarketData) -> tuple[pd.Timestamp, pd.Timestamp]:
    first = pd.Timestamp(market.timestamps[0], tz="UTC")
    end = pd.Timestamp(market.timestamps[-1], tz="UTC") + pd.Timedelta(seconds=market.timeframe_s)
    return first, end


def _default_start(evidence: Evidence, first: pd.Timestamp, lookback: pd.Timedelta) -> pd.Timestamp:
    if evidence.days:
        return pd.Timestamp(evidence.days[-1]["day"], tz="UTC") + DAY
    return (first + lookback).ceil("D")


def prerequisites(store: Store, inp: GrowInput, market: MarketData | None, load_error: str | None,
                  start: pd.Timestamp | None) -> list[dict[str, Any]]:
    """Each prerequisite of a grow plan with pass/fail and its detail: ``data`` (the bars cover
    ``[start - lookback, start + days)``; no live feed is configured, so only a replay can run),
    ``store``, ``broker`` (the in-process PaperBroker), ``kill_switch`` (off)."""
    out = []
    lookback = duration(inp.lookback, "lookback")
    if market is None or start is None:
        out.append(_check("data", False, f"no bars: {load_error}; no live feed is configured"))
    else:
        first, end = _span(market)
        need_from, need_to = start - lookback, start + inp.days * DAY
        ok = first <= need_from and need_to <= end
        detail = (f"{market.label() if market.label() == 'SYNTHETIC' else Path(market.label()).name} has bars "
                  f"{first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC; the plan needs {need_from:%Y-%m-%d} "
                  f"(lookback {inp.lookback}) to {need_to:%Y-%m-%d} (replay of historical bars; no live feed "
                  f"is configured)")
        out.append(_check("data", ok, detail if ok else detail + ": not covered; pick another start or fewer days"))
    try:
        store.list_intents(limit=1)
        out.append(_check("store", True, "the store answers"))
    except StoreError as exc:
        out.append(_check("store", False, f"the store does not answer: {type(exc).__name__}"))
    out.append(_check("broker", True, "PaperBroker (in-process, fills like the engine): reachable"))
    try:
        ks = store.kill_switch()
        on = bool(ks.get("on"))
        out.append(_check("kill_switch", not on, f"kill switch on since {ks.get('at')} by {ks.get('actor')}: "
                          f"{ks.get('reason')}" if on else "kill switch off"))
    except StoreError as exc:
        out.append(_check("kill_switch", False, f"kill switch state unknown: {type(exc).__name__}"))
    return out


# ----------------------------------------------------------------- grow: draft, confirm, days


def _plan(feas: dict[str, Any], dates: list[str]) -> list[dict[str, Any]]:
    tier = (feas.get("leverage") or {}).get("tier")
    rows = []
    for i, date in enumerate(dates):
        p = feas["path"][i] if i < len(feas.get("path") or []) else None
        rows.append({"day": i + 1, "date": date, "tier": tier,
                     "expected_return": None if p is None else p["expected_return"],
                     "expected_equity": None if p is None else p["expected"],
                     "p05": None if p is None else p["p05"], "p95": None if p is None else p["p95"],
                     "bankroll_at_risk": None if p is None else {"level": 0.95, "horizon": "one day",
                                                                "var_fraction": p["var95_fraction"],
                                                                "var_quote": p["var95_quote"]},
                     "run_id": None})
    return rows


def draft_grow(store: Store, inp: GrowInput, *, actor: str | None = None, now: Any = None) -> dict[str, Any]:
    """Check a grow request and store it as a ``draft`` (with its ``confirm`` step), ``refused``
    or ``blocked`` intent; nothing runs (module docstring, step 1).

    Returns:
        :func:`intent_view` of the stored intent.

    Raises:
        IntentInvalid: an input out of bounds (named, with what is allowed).
    """
    inp.validate()
    market, load_error = None, None
    try:
        market = _full_market(inp)
    except (MarketDataError, RunError, OSError, ValueError) as exc:
        load_error = str(exc)
    key = market_identity(market).key if market is not None else None
    lookback = duration(inp.lookback, "lookback")
    start = None
    if market is not None:
        first, _ = _span(market)
        start = (pd.Timestamp(inp.start, tz="UTC") if inp.start and pd.Timestamp(inp.start).tzinfo is None
                 else pd.Timestamp(inp.start) if inp.start
                 else _default_start(cohort_daily_returns(store, key), first, lookback)).normalize()
    evidence = (cohort_daily_returns(store, key, before=start.isoformat()) if key and start is not None
                else Evidence(key or "unknown", np.zeros(0), []))
    checks = prerequisites(store, inp, market, load_error, start)
    feas = assess(evidence, bankroll=float(inp.bankroll), target_return=inp.target_fraction(), days=inp.days,
                  risk_appetite=inp.risk_appetite, n_paths=inp.n_paths, seed=inp.seed,
                  quote=market.quote if market is not None else "")
    dates = [str((start + d * DAY).date()) for d in range(inp.days)] if start is not None else []
    failed = [c for c in checks if not c["ok"]]
    status = "blocked" if failed else ("refused" if feas["verdict"] == "refused" else "draft")
    intent_id = f"int-{uuid.uuid4().hex[:12]}"
    inputs = {k: v for k, v in asdict(inp).items() if k != "data"}
    inputs["data"] = Path(inp.data).name if inp.data else None
    doc: dict[str, Any] = {
        "intent_id": intent_id, "kind": "grow", "status": status, "actor": actor, "created_at": _now(now),
        "inputs": inputs, "data_path": inp.data, "market": key, "quote": market.quote if market else None,
        "start": str(start.date()) if start is not None else None, "dates": dates,
        "prerequisites": checks, "feasibility": feas, "plan": _plan(feas, dates),
        "campaign_id": f"intent-{intent_id}",
    }
    why = ("; ".join(f"{c['name']}: {c['detail']}" for c in failed) if failed else feas["narrative"])
    doc["narrative"] = (f"Blocked: {why}" if failed else why)
    if status == "draft":
        token = confirm_token(doc)
        doc["confirm_token"] = token
        doc["confirm"] = {"method": "POST", "path": f"/api/assistant/intents/{intent_id}/confirm",
                          "body": {"confirm_token": token}, "permission": "launch",
                          "what": f"runs {inp.days} campaign day(s) on {key} from {doc['start']} as a Celery chain, "
                                  f"one day per task, starting from {float(inp.bankroll):,.2f} {doc['quote']}"}
    store.create_intent(doc)
    knowledge.log_entry(store, "assistant.grow",
                        f"grow {float(inp.bankroll):,.2f} over {inp.days} day(s): {status}", doc["narrative"],
                        market=key, links=[knowledge.link("intent", intent_id)], actor=actor,
                        figures={"bankroll": float(inp.bankroll), "days": inp.days,
                                 "target_return": inp.target_fraction(), "probability": feas.get("probability"),
                                 "required_daily_return": feas["required_daily_return"]})
    return intent_view(store.get_intent(intent_id))


def get_intent(store: Store, intent_id: str) -> dict[str, Any]:
    """:func:`intent_view` of a stored intent.

    Raises:
        IntentNotFound: no such intent (or a malformed id).
    """
    try:
        return intent_view(store.get_intent(intent_id))
    except NotFound:
        raise IntentNotFound(f"no intent with id {intent_id!r}") from None
    except StoreError as exc:
        if type(exc).__name__ == "InvalidDocument":
            raise IntentNotFound(f"no intent with id {intent_id!r}") from None
        raise


def intent_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The intent as the API and dashboard show it: the stored document (without the server's
    data path) plus ``progress``: ``days``, ``days_done``, ``planned_equity`` and
    ``actual_equity`` after the last reported day, ``on_track`` (actual within the plan's
    5-95 % band of that day), and ``rows`` (plan and report side by side per day)."""
    out = {k: v for k, v in doc.items() if k != "data_path"}
    plan = doc.get("plan") or []
    reports = {r["day"]: r for r in doc.get("reports") or []}
    rows = [{"day": p["day"], "date": p["date"], "plan": p, "actual": reports.get(p["day"])} for p in plan]
    last = max(reports) if reports else None
    progress = {"days": len(plan), "days_done": len(reports), "planned_equity": None, "actual_equity": None,
                "on_track": None, "rows": rows}
    if last is not None and last <= len(plan):
        p, r = plan[last - 1], reports[last]
        progress.update(planned_equity=p.get("expected_equity"), actual_equity=r.get("actual", {}).get("end_equity"),
                        on_track=r.get("within_band"))
    out["progress"] = progress
    return out


def confirm_grow(store: Store, intent_id: str, token: str, *, actor: str | None = None, now: Any = None,
                 dispatch: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Confirm a draft grow intent and start its days (module docstring, step 2).

    Args:
        token: the draft's ``confirm_token`` (what the user saw).
        actor: who confirms (``"user:otto"``); the caller checks the role (``launch``).
        dispatch: starts the days given the running intent (default :func:`start_plan`).

    Returns:
        :func:`intent_view` of the running intent plus ``dispatch`` (how its days run).

    Raises:
        IntentNotFound: no such intent. IntentConflict: not a draft (refused, blocked, already
            running...), a stale or wrong token, or the kill switch went on since the draft.
    """
    doc = get_intent(store, intent_id)
    if doc["status"] != "draft":
        raise IntentConflict(f"intent {intent_id} is {doc['status']}; only a draft can be confirmed"
                             + (f" ({doc.get('narrative')})" if doc["status"] in ("refused", "blocked") else ""))
    stored = store.get_intent(intent_id)
    if not isinstance(token, str) or token != stored.get("confirm_token"):
        raise IntentConflict("the confirm token does not match the draft (stale or wrong): draft again and "
                             "confirm what is shown", "confirm_token")
    if store.kill_switch().get("on"):
        raise IntentConflict("the kill switch is on: nothing starts until it is off", "kill_switch")
    plan = [{**p, "run_id": new_run_id()} for p in stored["plan"]]
    at = _now(now)
    running = store.update_intent(intent_id, {"status": "running", "plan": plan, "confirmed_by": actor,
                                              "confirmed_at": at}, expected_status="draft")
    if running is None:
        raise IntentConflict(f"intent {intent_id} was confirmed by someone else meanwhile")
    knowledge.log_entry(store, "assistant.grow_confirmed", f"grow plan {intent_id} confirmed",
                        f"{actor or 'someone'} confirmed: {stored.get('narrative', '')}", market=stored.get("market"),
                        links=[knowledge.link("intent", intent_id)] + [knowledge.link("run", p["run_id"]) for p in plan],
                        actor=actor)
    how = (dispatch or start_plan)(running)
    return {**intent_view(store.get_intent(intent_id)), "dispatch": how}


def start_plan(doc: dict[str, Any], store_url: str | None = None) -> dict[str, Any]:
    """Start a running intent's days: a Celery chain of ``cohortlab.intent_day`` tasks (one per
    day, each starting when the previous one succeeded) when a broker is configured, else
    :func:`run_plan` in the process's executor (:mod:`manager.jobs`).

    Returns:
        ``{"mode": "celery", "task_id"}`` or ``{"mode": "in-process"}``.
    """
    from manager import jobs

    intent_id, days = doc["intent_id"], len(doc["plan"])
    if jobs.celery_enabled():
        from celery import chain

        from manager.tasks import intent_day

        result = chain(*[intent_day.si(intent_id, d) for d in range(1, days + 1)]).apply_async()
        return {"mode": "celery", "task_id": result.id, "tasks": days}
    if store_url is None:
        from manager.services import current_settings

        store_url = current_settings().store

    def work() -> None:
        from manager.store import open_store

        try:
            with open_store(store_url) as store:
                run_plan(store, intent_id)
        except Exception:  # noqa: BLE001 - logged; the intent is marked failed by run_intent_day
            log.exception("intent %s failed", intent_id)

    jobs._pool().submit(work)
    return {"mode": "in-process", "tasks": days}


def run_plan(store: Store, intent_id: str) -> dict[str, Any]:
    """Run every day of a running intent not reported yet, in order (in-process and the CLI).

    Returns:
        :func:`intent_view` of the intent afterwards.
    """
    doc = store.get_intent(intent_id)
    done = {r["day"] for r in doc.get("reports") or []}
    for p in doc["plan"]:
        if p["day"] not in done:
            run_intent_day(store, intent_id, p["day"])
    return intent_view(store.get_intent(intent_id))


def _start_equity(doc: dict[str, Any], day: int) -> float:
    if day == 1:
        return float(doc["inputs"]["bankroll"])
    prev = next((r for r in doc.get("reports") or [] if r["day"] == day - 1), None)
    if prev is None:
        raise IntentConflict(f"day {day} of intent {doc['intent_id']} cannot start before day {day - 1} is reported")
    return float(prev["actual"]["end_equity"])


def _campaign_request(doc: dict[str, Any], day: int, bankroll: float) -> Any:
    from manager.campaigns import CampaignRequest

    inp = doc["inputs"]
    cohort = CohortRequest(bankroll=bankroll, agents=int(inp["agents"]), seed=int(inp["seed"]),
                           baselines=int(inp["baselines"]), seed_from="latest")
    return CampaignRequest(source=Source(data=doc.get("data_path"), symbols=inp.get("symbols"),
                                         quote=inp.get("quote"), seed=int(inp["seed"])),
                           start=doc["plan"][day - 1]["date"], days=1, lookback=inp["lookback"], cohort=cohort,
                           ga=GAConfig(generations=int(inp["generations"])), warmup_bars=int(inp["warmup_bars"]),
                           campaign_id=doc["campaign_id"])


def _day_narrative(day: int, days: int, plan: dict, actual: dict, base: dict, quote: str) -> str:
    unit = f" {quote}" if quote else ""
    band = "inside" if actual["within_band"] else "outside"
    text = (f"Day {day}/{days} ({plan['date']}): the cohort returned {pct(actual['roi'])} "
            f"({actual['start_equity']:,.2f} -> {actual['end_equity']:,.2f}{unit}) against a planned "
            f"{pct(plan['expected_return'])}; equity {actual['end_equity']:,.2f}{unit} is {band} the plan's 5-95 % band "
            f"{plan['p05']:,.2f}-{plan['p95']:,.2f}{unit} (expected {plan['expected_equity']:,.2f}{unit}). "
            f"Max drawdown {pct(actual['max_drawdown'])}, parent tier {actual['tier'] if actual['tier'] is not None else 'n/a'}.")
    pctl, bh = base.get("random_percentile"), base.get("buy_and_hold_roi")
    if pctl is None:
        text += " No random-cohort baseline was run this day, so no edge can be claimed."
    else:
        text += (f" Against chance: percentile {pctl:.0f} among random-genome cohorts on the same bars and costs; "
                 f"buy-and-hold {pct(bh)}, cash 0.00 %.")
        text += (" That is above the 60th percentile the promoter asks for, one day of evidence only."
                 if pctl >= 60 else " That is no evidence of an edge over random genomes.")
    return text


def run_intent_day(store: Store, intent_id: str, day: int) -> dict[str, Any]:
    """Run day ``day`` of a running grow intent and append its actual-against-plan report
    (module docstring, step 3). Idempotent: a day already reported returns its report; the
    day's cohort run id is fixed at confirmation, so a redelivered task never runs it twice.

    Returns:
        The day's report: ``day``, ``date``, ``run_id``, ``plan`` (that day's plan row),
        ``actual`` (``roi``, ``start_equity``, ``end_equity``, ``max_drawdown``, ``tier``,
        ``within_band``), ``baselines`` (``random_percentile``, ``buy_and_hold_roi``, ``cash_roi``),
        ``cumulative`` (``planned_equity``, ``actual_equity``, ``target_amount``), ``narrative``.

    Raises:
        IntentNotFound, IntentConflict (not running, or the previous day not reported);
        whatever the campaign day raises (the intent is then stored ``failed`` with the reason).
    """
    from manager.campaigns import execute_campaign_day

    doc = get_intent(store, intent_id)
    done = next((r for r in doc.get("reports") or [] if r["day"] == day), None)
    if done is not None:
        return done
    if doc["status"] != "running":
        raise IntentConflict(f"intent {intent_id} is {doc['status']}; only a running intent runs its days")
    stored = store.get_intent(intent_id)
    if not 1 <= day <= len(stored["plan"]):
        raise IntentInvalid(f"day {day} is not a day of the plan (1 to {len(stored['plan'])})", "day")
    plan = stored["plan"][day - 1]
    start_equity = _start_equity(stored, day)
    try:
        req = _campaign_request(stored, day, start_equity)
        try:
            report = execute_campaign_day(req, store, run_id=plan["run_id"], day_number=day)
            parent, baselines, cycle = report["parent"], report.get("baselines") or {}, report.get("cycle_id")
            tier = ((report.get("policy") or {}).get("parent_tier") or {}).get("tier")  # {"tier", "trigger", ...}
        except RunAlreadyFinished as fin:
            summary = store.get_run(plan["run_id"]).get("summary") or {}
            if fin.run.get("status") == "failed" or not summary:
                raise RunError(f"day {day}'s cohort run {plan['run_id']} failed: {fin.run.get('reason')}") from None
            parent, baselines, cycle = summary.get("parent") or {}, summary.get("baselines") or {}, None
            tier = None
    except (RunLeased, StoreUnavailable, ConnectionError, TimeoutError):
        raise  # transient: the task retries the same day
    except Exception as exc:
        store.update_intent(intent_id, {"status": "failed", "reason": f"day {day}: {type(exc).__name__}: {exc}"})
        raise
    roi = float(parent.get("roi") or 0.0)
    end_equity = start_equity * (1.0 + roi)
    actual = {"roi": roi, "start_equity": start_equity, "end_equity": end_equity,
              "max_drawdown": parent.get("max_drawdown"), "tier": tier,
              "within_band": (plan["p05"] is not None and plan["p05"] <= end_equity <= plan["p95"])}
    base = {"random_percentile": (baselines.get("random") or {}).get("percentile"),
            "buy_and_hold_roi": (baselines.get("buy_and_hold") or {}).get("roi"), "cash_roi": 0.0}
    feas = stored.get("feasibility") or {}
    out = {"day": day, "date": plan["date"], "run_id": plan["run_id"], "cycle_id": cycle, "plan": plan,
           "actual": actual, "baselines": base,
           "cumulative": {"planned_equity": plan["expected_equity"], "actual_equity": end_equity,
                          "target_amount": feas.get("target_amount"),
                          "actual_return": end_equity / float(stored["inputs"]["bankroll"]) - 1.0},
           "narrative": _day_narrative(day, len(stored["plan"]), plan, actual, base, stored.get("quote") or "")}
    after, added = store.add_intent_report(intent_id, out)
    if added:
        knowledge.log_entry(store, "assistant.grow_day", f"grow plan {intent_id}: day {day} actual against plan",
                            out["narrative"], market=stored.get("market"),
                            links=[knowledge.link("intent", intent_id), knowledge.link("run", plan["run_id"])],
                            figures={"roi": roi, "end_equity": end_equity, "planned": plan["expected_return"],
                                     "date": plan["date"]})
    if len(after.get("reports") or []) == len(after["plan"]) and after["status"] == "running":
        final = after["reports"][-1]["cumulative"]
        reached = final["target_amount"] is not None and final["actual_equity"] >= final["target_amount"]
        store.update_intent(intent_id, {"status": "completed", "outcome": {
            "end_equity": final["actual_equity"], "return": final["actual_return"], "target_reached": reached}},
            expected_status="running")
    return next(r for r in after["reports"] if r["day"] == day)


# ----------------------------------------------------------------- fund tomorrow


def _campaigns(store: Store, limit: int) -> list[dict]:
    return store.list_campaigns(limit=limit)


def _ranked_day(report: dict) -> dict | None:
    ranked_on = (report.get("rule") or {}).get("ranked_on")
    days = report.get("days") or []
    return next((d for d in days if d.get("date") == ranked_on), days[-1] if days else None)


def fund_tomorrow(store: Store, *, now: Any = None, actor: str | None = None, market: str | None = None,
                  config: PromoterConfig = PromoterConfig(), limit: int = 20) -> dict[str, Any]:
    """Answer "what should I fund tomorrow?" from the stored evidence and log it.

    Ranking (point in time: campaigns whose ranking day ended by ``now``): every promotion
    candidate of the stored campaigns with its holdout confirmation, Deflated Sharpe, the
    ranking day's cycle PBO, the cohort's percentile among random-genome cohorts that day, and
    the parent's policy tier in force; ranked confirmed first, then by DSR, then holdout ROI.
    An agent is *fundable* when it passes the promoter's thresholds on these figures
    (``PromoterConfig``: holdout confirmed, DSR >= 0.5, PBO <= 0.5, percentile >= 60) --
    a fundable agent still goes through the Day-3 promotion and its two signatures; the
    suggested allocation is the promoter's (max(5 % of the bankroll, 50), quote currency) and
    the suggested tier is the policy's (never above it).

    Returns:
        ``{"as_of", "ranked": [...], "recommendations": [...], "pending_approvals": [...],
        "blockers": [...], "narrative", "knowledge_entry_id"}``.
    """
    from manager.policy import current_tiers

    as_of = _now(now)
    cutoff = pd.Timestamp(as_of)
    ks = store.kill_switch()
    ranked, links, closed = [], [], 0
    for camp in _campaigns(store, limit):
        if market and camp.get("market") != market:
            continue
        report = camp.get("report") or {}
        day = _ranked_day(report)
        if day is None or pd.Timestamp(day["date"], tz="UTC") + DAY > cutoff:
            continue  # not closed by now: not evidence yet
        tiers = {r["subject"]: r for r in current_tiers(store, camp.get("market"), as_of=as_of)} \
            if camp.get("market") else {}
        parent_tier = tiers.get(f"parent:{camp['campaign_id']}", {}).get("tier")
        percentile = ((day.get("baselines") or {}).get("random") or {}).get("percentile")
        links.append(knowledge.link("campaign", camp["campaign_id"]))
        closed += 1
        for c in report.get("candidates") or []:
            hold = c.get("holdout") or {}
            fails = []
            if config.require_holdout and not c.get("confirmed"):
                fails.append("holdout not confirmed" if c.get("confirmed") is False else "no holdout")
            if (c.get("deflated_sharpe") or 0.0) < config.dsr_min:
                fails.append(f"DSR {c.get('deflated_sharpe', 0):.2f} < {config.dsr_min:g}")
            if day.get("pbo") is not None and day["pbo"] > config.pbo_max:
                fails.append(f"PBO {day['pbo']:.2f} > {config.pbo_max:g}")
            if percentile is None or percentile < config.percentile_min:
                fails.append("no random baseline" if percentile is None
                             else f"cohort percentile {percentile:.0f} < {config.percentile_min:g}")
            ranked.append({"campaign_id": camp["campaign_id"], "market": camp.get("market"),
                           "agent_id": c["agent_id"], "ranked_on": day["date"], "run_id": day.get("run_id"),
                           "roi_24h": c.get("roi_24h"), "sharpe_24h": c.get("sharpe_24h"), "trades": c.get("trades"),
                           "deflated_sharpe": c.get("deflated_sharpe"), "holdout_roi": hold.get("roi"),
                           "confirmed": c.get("confirmed"), "pbo": day.get("pbo"),
                           "baseline_percentile": percentile, "parent_tier": parent_tier,
                           "bankroll": camp.get("bankroll"), "fundable": not fails, "blocking": fails})
    ranked.sort(key=lambda r: (not r["fundable"], r["confirmed"] is not True, -(r["deflated_sharpe"] or 0.0),
                               -(r["holdout_roi"] or 0.0), r["campaign_id"], r["agent_id"]))
    recs = []
    for r in ranked[:10]:
        if ks.get("on"):
            recs.append({**_rec_key(r), "action": "none", "why": "the kill switch is on"})
        elif r["fundable"]:
            bankroll = float(r["bankroll"] or 0.0)
            alloc = min(max(config.allocation_share * bankroll, config.min_allocation), bankroll)
            recs.append({**_rec_key(r), "action": "propose", "allocation": alloc, "tier": r["parent_tier"],
                         "why": "passes the holdout, DSR, PBO and percentile thresholds; propose it for the "
                                "Day-3 promotion (two signatures)"})
        else:
            recs.append({**_rec_key(r), "action": "hold", "allocation": 0.0, "tier": r["parent_tier"],
                         "why": "; ".join(r["blocking"])})
    pending = [{"promotion_id": p["promotion_id"], "status": p["status"], "campaign_id": p.get("campaign_id"),
                "agent_id": (p.get("candidate") or {}).get("agent_id") or p.get("agent_id")}
               for status in ("proposed", "ops_approved") for p in store.list_promotions(status=status, limit=50)]
    links += [knowledge.link("promotion", p["promotion_id"]) for p in pending]
    blockers = []
    if ks.get("on"):
        blockers.append({"name": "kill_switch", "detail": f"on since {ks.get('at')} by {ks.get('actor')}: "
                                                          f"{ks.get('reason')}"})
    for row in current_tiers(store, market, as_of=as_of):
        if row.get("trigger") in ("hard_stop", "hard_stop_active") or (row.get("tier") == 0 and not ks.get("on")):
            blockers.append({"name": "hard_stop" if "hard_stop" in str(row.get("trigger")) else "halt",
                             "detail": f"{row['subject']} on {row['market']}: {row.get('rule')}"})
    fundable = [r for r in ranked if r["fundable"]]
    if not ranked:
        text = ("No stored campaign has a closed ranking day yet: nothing to rank, so nothing to fund." if not closed
                else f"{closed} campaign(s) with a closed ranking day, but none has a promotion candidate (enough "
                     f"trades and Deflated Sharpe): nothing to fund.")
    else:
        best = ranked[0]
        text = (f"{len(ranked)} candidate(s) from {len({r['campaign_id'] for r in ranked})} campaign(s) ranked. "
                f"Top: {best['agent_id']} of {best['campaign_id']} (ranked on {best['ranked_on']}: ROI "
                f"{pct(best['roi_24h'])}, holdout ROI {pct(best['holdout_roi'])}, DSR "
                f"{(best['deflated_sharpe'] or 0):.2f}, PBO {pct(best['pbo'], 0) if best['pbo'] is not None else 'n/a'}, "
                f"cohort percentile vs random {best['baseline_percentile'] if best['baseline_percentile'] is not None else 'n/a'}"
                f", parent tier {best['parent_tier'] if best['parent_tier'] is not None else 'n/a'}). ")
        text += (f"{len(fundable)} pass(es) the promoter's thresholds: propose before funding."
                 if fundable else "None passes the promoter's thresholds: the baselines do not support an edge; "
                                  "keep allocations as the policy sets them and fund nothing new.")
    text += f" {len(pending)} approval(s) pending." + (
        " Blockers: " + "; ".join(f"{b['name']} ({b['detail']})" for b in blockers) + "." if blockers
        else " No blockers.")
    out = {"as_of": as_of, "ranked": ranked, "recommendations": recs, "pending_approvals": pending,
           "blockers": blockers, "narrative": text,
           "thresholds": {"dsr_min": config.dsr_min, "pbo_max": config.pbo_max,
                          "percentile_min": config.percentile_min, "require_holdout": config.require_holdout}}
    entry = knowledge.log_entry(store, "assistant.fund_tomorrow", "what should I fund tomorrow?", text, market=market,
                                links=links[:50], actor=actor,
                                figures={"ranked": len(ranked), "fundable": len(fundable), "pending": len(pending),
                                         "blockers": len(blockers)})
    out["knowledge_entry_id"] = entry["entry_id"]
    return out


def _rec_key(r: dict) -> dict:
    return {"campaign_id": r["campaign_id"], "agent_id": r["agent_id"]}
