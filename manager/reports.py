"""Use cases: the cohort report and the daily report (CSV or PDF), and their scheduled delivery.

Two reports, one view model (:func:`cohort_report_view`, :func:`daily_report_view`),
two renderings:

- **CSV** (:func:`report_csv_chunks`): ONE CSV per report, every row tagged with its
  ``section`` (:data:`CSV_FIELDS`, :data:`SECTIONS`), written by
  :func:`manager.report.csv_chunks`. Rows of one section use the columns that apply
  to it and leave the others empty; filter on ``section`` to get a table back
  (``pandas.read_csv(...).query("section == 'hourly'")``).
- **PDF** (:func:`render_pdf`): the Jinja template ``manager/report_templates/report.html``
  rendered to HTML and printed by WeasyPrint (the optional extra ``cohortlab[reports]``;
  the base install runs without it and the PDF path says what to install). Charts are
  static PNG images from Plotly's own export (kaleido 1.x, driving the Debian Chromium at
  ``/usr/bin/chromium`` through ``BROWSER_PATH``); when kaleido or a browser is missing
  the PDF says "chart unavailable" in the chart's place and keeps every table.

Content (the issue's "Reports" section), for one cohort run or every cohort that traded
one UTC day:

``hourly``
    Parent equity by UTC clock hour, from the stored equity curve: ``start_equity``
    (equity before the hour's first bar; the bankroll for the first hour), ``end_equity``
    (at the close of its last bar), ``pnl = end - start`` (quote currency), ``return =
    pnl / start`` (fraction), ``trades`` (trades entered in the hour), ``utilisation``
    (mean gross position value / capital allocated to agents, fraction). The hours of a
    run sum exactly to its parent PnL ``final_equity - bankroll``.
``leverage``
    The policy decisions recorded for the traded day (:mod:`manager.policy`): subject,
    previous tier -> tier (multiples of equity), trigger, rule (the rationale in words)
    and what would move it next.
``bankroll``
    The bankroll trend: per cohort, bankroll, final equity, PnL, ROI, peak utilisation
    and mean gross exposure (fractions).
``baselines``
    The cohort against chance (:mod:`manager.baselines`): cash, equal-weight
    buy-and-hold, random-genome cohorts (median, 5-95 %, the cohort's percentile);
    absent when the run had none.
``promotion`` / ``signature``
    Promotion requests of the run (or the day's runs / created that day): status, the
    checklist (each guard rail's figure, threshold, pass) and every signed step.
``incident``
    Rollback incidents of micro-live deployments recorded that day (or of the run's
    promotions): trigger, figure against threshold, reason.
``commentary``
    The assistant's narrative, templated from the figures above (:func:`commentary`):
    it cites them and never claims an edge the baselines do not support. Knowledge-base
    entries of the day come in through :func:`knowledge_entries` (a hook:
    ``manager.knowledge`` when that module exists).
``compliance``
    Kill switch state and its changes that day, daily hard stops, and the ledger
    verification of each run (:func:`manager.ledger_audit.verify_run_ledger`).

Delivery (:func:`deliver_daily_report`, run by the beat task ``cohortlab.daily_report``
at 01:00 UTC for yesterday): the PDF is written to ``COHORTLAB_REPORT_DIR`` (default
``./reports``) and, when alert channels are configured (``COHORTLAB_ALERT_URLS``), sent
through apprise to every channel as an attachment (email: a MIME attachment).

Nothing here names a server path: data folders appear as :func:`manager.data_roots.public_view`
shows them.
"""
from __future__ import annotations

import base64
import logging
import math
import os
import re
from datetime import date as Date
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from manager.data_roots import public_view
from manager.policy import all_decisions
from manager.report import csv_chunks
from manager.store import RunNotFound, Store, StoreError

__all__ = ["CSV_FIELDS", "FORMATS", "ReportError", "ReportsUnavailable", "SECTIONS", "cohort_report_view",
           "commentary", "daily_report_view", "deliver_daily_report", "hourly_breakdown", "knowledge_entries",
           "parse_day", "render_html", "render_pdf", "report_csv_chunks", "report_bytes"]

log = logging.getLogger("cohortlab.reports")

FORMATS = ("csv", "pdf")
"""The report formats."""

SECTIONS = ("meta", "hourly", "leverage", "bankroll", "baselines", "promotion", "signature", "incident",
            "commentary", "knowledge", "compliance")
"""The values of the CSV's ``section`` column, in the order rows are written."""

CSV_FIELDS = ("section", "run_id", "time", "item", "start_equity", "end_equity", "pnl", "return", "trades",
              "utilisation", "value", "detail")
"""The CSV's columns. ``time`` ISO 8601 UTC; money in the report's quote currency;
``return`` and ``utilisation`` fractions; ``value`` the section's figure (a tier, an ROI,
a percentile 0..100, a state); ``detail`` words."""

MAX_DAY_RUNS = 200
"""Most cohorts one daily report covers (the newest first)."""


class ReportError(ValueError):
    """A bad report argument (unknown format, a date that is not ``YYYY-MM-DD``)."""


class ReportsUnavailable(RuntimeError):
    """The PDF renderer is not installed (``pip install cohortlab[reports]``)."""


# ----------------------------------------------------------------- helpers


def parse_day(value: str | Date) -> Date:
    """A UTC day from ``YYYY-MM-DD`` (or a :class:`datetime.date`).

    Raises:
        ReportError: not a valid ``YYYY-MM-DD`` date.
    """
    if isinstance(value, Date) and not isinstance(value, datetime):
        return value
    try:
        return Date.fromisoformat(str(value)) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)) else _bad_day(value)
    except ValueError:
        return _bad_day(value)


def _bad_day(value: Any) -> Date:
    raise ReportError(f"date={value!r} is not a valid YYYY-MM-DD day")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ReportError(f"format={fmt!r} must be one of {', '.join(FORMATS)}")
    return fmt


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _iso_hour(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------- hourly breakdown


def hourly_breakdown(store: Store, run: dict) -> list[dict[str, Any]]:
    """The parent's equity by UTC clock hour of a completed cohort run, from its stored curves.

    Args:
        store: open store.
        run: the run document (:meth:`Store.get_run`).

    Returns:
        ``[{"run_id", "hour" (ISO UTC start of the hour), "start_equity", "end_equity",
        "pnl", "return", "trades", "utilisation"}]`` in time order (money in the run's
        quote currency; ``return`` = pnl / start_equity; ``utilisation`` the hour's mean
        gross position value / capital allocated, fractions). ``[]`` for a run that is
        not completed or has no curves.
    """
    if run.get("status") != "completed":
        return []
    curves = store.get_curves(run["run_id"])
    ts = np.asarray(curves.get("timestamps", []), dtype=np.int64)
    pe = np.asarray(curves.get("parent_equity", []), dtype=np.float64)
    if not len(ts) or pe.shape != ts.shape:
        return []
    summary = run.get("summary") or {}
    bankroll = float(summary.get("bankroll") or (run.get("header") or {}).get("bankroll") or pe[0])
    prev = np.concatenate(([bankroll], pe[:-1]))
    pv = curves.get("position_value")
    gross = np.abs(np.asarray(pv, dtype=np.float64)).sum(axis=0) if pv is not None and np.ndim(pv) == 2 \
        and np.shape(pv)[1] == len(ts) else np.zeros_like(pe)
    allocated = sum(float(a.get("allocated") or 0.0) for a in summary.get("agents", []))
    hour_ns = 3600 * 10**9
    hours = ts // hour_ns
    entries: dict[int, int] = {}
    for t in store.get_trades(run["run_id"]):
        try:
            ns = int(np.datetime64(str(t.get("entry_time", "")).rstrip("Z"), "ns").astype(np.int64))
        except ValueError:
            continue
        entries[ns // hour_ns] = entries.get(ns // hour_ns, 0) + 1
    rows = []
    starts = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    for a, b in zip(starts, ends):
        start, end = float(prev[a]), float(pe[b - 1])
        rows.append({"run_id": run["run_id"], "hour": _iso_hour(int(hours[a]) * hour_ns),
                     "start_equity": start, "end_equity": end, "pnl": end - start,
                     "return": (end - start) / start if start > 0 else None,
                     "trades": entries.get(int(hours[a]), 0),
                     "utilisation": float(gross[a:b].mean()) / allocated if allocated > 0 else None})
    return rows


# ----------------------------------------------------------------- sections


def _run_block(store: Store, run: dict) -> dict[str, Any]:
    """One cohort's figures for the report (bankroll trend, baselines, compliance)."""
    s = run.get("summary") or {}
    p = s.get("parent") or {}
    h = run.get("header") or {}
    bankroll = _f(h.get("bankroll") if h.get("bankroll") is not None else s.get("bankroll"))
    final = _f(p.get("final_equity"))
    ledger: dict[str, Any] = {"ok": None, "checks": []}
    if run.get("status") == "completed":
        try:
            from manager.ledger_audit import verify_run_ledger

            rep = verify_run_ledger(store, run["run_id"])
            ledger = {"ok": bool(rep.ok), "checks": [{"check": c, "ok": bool(ok), "detail": d}
                                                      for c, ok, d in rep.checks]}
        except StoreError as exc:
            ledger = {"ok": False, "checks": [{"check": "ledger", "ok": False, "detail": str(exc)}]}
    b = s.get("baselines") or None
    baselines = None
    if b:
        rnd = b.get("random") or {}
        baselines = {"cohort_roi": _f((b.get("cohort") or {}).get("roi")),
                     "gross_roi": _f((b.get("cohort") or {}).get("gross_roi")),
                     "cash_roi": _f((b.get("cash") or {}).get("roi")),
                     "buy_and_hold_roi": _f((b.get("buy_and_hold") or {}).get("roi")),
                     "random_median_roi": _f(rnd.get("median")), "random_p5_roi": _f(rnd.get("p5")),
                     "random_p95_roi": _f(rnd.get("p95")), "random_cohorts": rnd.get("cohorts"),
                     "percentile": _f(rnd.get("percentile"))}
    return {"run_id": run["run_id"], "status": run.get("status"), "day": h.get("day"),
            "window_start": h.get("window_start"), "window_end": h.get("window_end"),
            "bankroll": bankroll, "quote": h.get("quote") or s.get("quote"), "agents": h.get("agents"),
            "data_label": run.get("data_label"), "market": h.get("market"),
            "campaign_id": (run.get("config") or {}).get("campaign_id"),
            "final_equity": final, "pnl": (final - bankroll) if final is not None and bankroll is not None else None,
            "roi": _f(p.get("roi")), "max_drawdown": _f(p.get("max_drawdown")),
            "peak_utilisation": _f(p.get("peak_utilisation")), "mean_gross_exposure": _f(p.get("mean_gross_exposure")),
            "breaches": p.get("breaches"), "fees": _f(p.get("fees")),
            "hard_stops": list(s.get("events") or []), "baselines": baselines, "ledger": ledger}


def _decision_row(d: dict) -> dict[str, Any]:
    return {"subject": d.get("subject"), "period": d.get("period"), "period_end": d.get("period_end"),
            "market": d.get("market"), "source": d.get("source"), "previous_tier": _f(d.get("previous_tier")),
            "tier": _f(d.get("tier")), "next_tier": _f(d.get("next_tier")), "trigger": d.get("trigger"),
            "rule": d.get("rule"), "next_trigger": d.get("next_trigger")}


def _decisions(store: Store, day: str, sources: set[str] | None) -> list[dict[str, Any]]:
    """Decisions on the traded ``day`` (its period), from ``sources`` (None: any), parents first."""
    d0 = datetime.fromisoformat(day).replace(tzinfo=timezone.utc)
    rows = [d for d in all_decisions(store, since=d0.isoformat(), until=(d0 + timedelta(days=2)).isoformat())
            if d.get("period") == day and (sources is None or d.get("source") in sources)]
    rows.sort(key=lambda d: (d.get("subject_kind") != "parent", d.get("subject") or ""))
    return [_decision_row(d) for d in rows]


def _promotion_row(doc: dict) -> dict[str, Any]:
    checks = ((doc.get("checklist") or {}).get("checks")) or []
    steps = [{"kind": "propose", **{k: (doc.get("proposed_by") or {}).get(k) for k in ("user", "role", "at", "notes")}}]
    steps += [{"kind": s.get("kind") or "approve", "user": s.get("user"), "role": s.get("role"), "at": s.get("at"),
               "notes": s.get("notes")} for s in doc.get("steps") or []]
    return {"promotion_id": doc.get("promotion_id"), "campaign_id": doc.get("campaign_id"), "day": doc.get("day"),
            "run_id": doc.get("run_id"), "agent_id": doc.get("agent_id"), "status": doc.get("status"),
            "created_at": doc.get("created_at"), "checklist_hash": doc.get("checklist_hash"),
            "checks": [{"name": c.get("name"), "figure": c.get("figure"), "threshold": c.get("threshold"),
                        "passed": c.get("passed")} for c in checks],
            "signatures": steps}


def _promotions(store: Store, run_ids: set[str], day: str | None) -> list[dict[str, Any]]:
    """Promotion requests ranked on one of ``run_ids`` or created on ``day``."""
    out, offset = [], 0
    while True:
        page = store.list_promotions(limit=100, offset=offset)
        out += [_promotion_row(d) for d in page
                if d.get("run_id") in run_ids or (day and str(d.get("created_at", ""))[:10] == day)]
        if len(page) < 100 or offset >= 1000:
            return out
        offset += 100


def _incidents(store: Store, promotion_ids: set[str], day: str | None) -> list[dict[str, Any]]:
    """Rollback incidents of deployments of ``promotion_ids`` or recorded on ``day``."""
    out = []
    for dep in store.list_deployments(limit=200):
        mine = dep.get("promotion_id") in promotion_ids
        for inc in store.list_incidents(dep["deployment_id"]):
            at = inc.get("at") or inc.get("recorded_at") or ""
            if mine or (day and str(at)[:10] == day):
                out.append({"deployment_id": dep["deployment_id"], "promotion_id": dep.get("promotion_id"),
                            "at": at, "trigger": inc.get("trigger"), "figure": inc.get("figure"),
                            "threshold": inc.get("threshold"), "unit": inc.get("unit") or "",
                            "reason": inc.get("reason"), "final_equity": _f(inc.get("final_equity"))})
    return out


def _kill_switch(store: Store, day: str | None) -> dict[str, Any]:
    state = store.kill_switch()
    history = [{"at": e.get("at"), "kind": e.get("kind"), "actor": e.get("actor"),
                "reason": (e.get("details") or {}).get("reason")}
               for e in store.kill_switch_history(limit=200) if day is None or str(e.get("at", ""))[:10] == day]
    return {"on": bool(state.get("on")), "actor": state.get("actor"), "reason": state.get("reason"),
            "at": state.get("at"), "history": history}


def knowledge_entries(store: Store, day: str) -> list[dict[str, Any]] | None:
    """HOOK: the knowledge base's entries of ``day`` for the report's commentary.

    Uses ``manager.knowledge.entries_for_day(store, day)`` (list of dicts with at least
    ``title`` / ``text``) when that module and function exist; None (section left out)
    otherwise. The knowledge module is being built separately (issue 15, ``/knowledge``).
    """
    try:
        from manager import knowledge  # type: ignore[attr-defined]
    except ImportError:
        return None
    fn = getattr(knowledge, "entries_for_day", None)
    if fn is None:
        return None
    try:
        return list(fn(store, day))
    except Exception as exc:  # a hook must not break the report
        log.warning("knowledge entries of %s unavailable: %s", day, exc)
        return None


def _pct(x: float | None, digits: int = 2, signed: bool = True) -> str:
    return "n/a" if x is None else f"{x * 100:{'+' if signed else ''}.{digits}f} %"


def _money(x: float | None, quote: str) -> str:
    return "n/a" if x is None else f"{x:,.6g} {quote}".strip()


def commentary(view: dict[str, Any]) -> list[str]:
    """The assistant's narrative of a report view: short sentences built from its figures.

    Every sentence cites the figures it rests on; an edge is claimed only when the
    cohort's ROI is at or above the 95th percentile of its random-genome cohorts, else
    the text says the result is not distinguishable from chance (or that no baselines ran).
    """
    lines: list[str] = []
    runs = view["runs"]
    if not runs:
        return [f"No cohort traded on {view.get('date')}: nothing to report beyond the compliance notes."]
    for r in runs:
        q = r.get("quote") or ""
        lines.append(f"Cohort {r['run_id']} ({r.get('agents')} agents, bankroll {_money(r.get('bankroll'), q)}) "
                     f"ended at {_money(r.get('final_equity'), q)}: PnL {_money(r.get('pnl'), q)}, ROI "
                     f"{_pct(r.get('roi'))}, max drawdown {_pct(r.get('max_drawdown'), signed=False)}, peak utilisation "
                     f"{_pct(r.get('peak_utilisation'), 1, signed=False)}.")
        hours = [h for h in view["hourly"] if h["run_id"] == r["run_id"]]
        if hours:
            best = max(hours, key=lambda h: h["pnl"])
            worst = min(hours, key=lambda h: h["pnl"])
            lines.append(f"Best hour {best['hour'][11:16]} UTC ({_money(best['pnl'], q)}), worst hour "
                         f"{worst['hour'][11:16]} UTC ({_money(worst['pnl'], q)}) over {len(hours)} hours.")
        b = r.get("baselines")
        if not b:
            lines.append("No baselines were run for this cohort, so no edge over chance is claimed.")
        else:
            pc = b.get("percentile")
            verdict = ("at or above the 95th percentile of random-genome cohorts: evidence of an edge on this "
                       "window only" if pc is not None and pc >= 95 else
                       "not distinguishable from random-genome cohorts: no edge is claimed")
            lines.append(f"Against chance: percentile {pc if pc is None else round(pc, 1)} among "
                         f"{b.get('random_cohorts')} random cohorts (median ROI {_pct(b.get('random_median_roi'))}); "
                         f"buy-and-hold {_pct(b.get('buy_and_hold_roi'))}, cash {_pct(b.get('cash_roi'))}; {verdict}.")
    dec = view["decisions"]
    if dec:
        down = sum(1 for d in dec if (d["tier"] or 0) < (d["previous_tier"] or 0))
        up = sum(1 for d in dec if (d["tier"] or 0) > (d["previous_tier"] or 0))
        lines.append(f"Leverage policy: {len(dec)} decisions, {up} step(s) up, {down} step(s) down, "
                     f"{len(dec) - up - down} unchanged.")
    else:
        lines.append("No leverage-policy decisions were recorded for this day.")
    c = view["compliance"]
    bad = [r["run_id"] for r in runs if r["ledger"]["ok"] is False]
    lines.append(f"Compliance: kill switch {'ON' if c['kill_switch']['on'] else 'off'}; "
                 f"{sum(len(r['hard_stops']) for r in runs)} daily hard stop(s); ledger "
                 + (f"verification FAILED for {', '.join(bad)}." if bad else "verified for every completed run."))
    if view["incidents"]:
        lines.append(f"{len(view['incidents'])} rollback incident(s) recorded.")
    if view["promotions"]:
        lines.append("Promotions: " + ", ".join(f"{p['promotion_id']} ({p['agent_id']}, {p['status']})"
                                                 for p in view["promotions"]) + ".")
    return lines


def _assemble(kind: str, title: str, day: str | None, runs: list[dict], store: Store,
              decisions: list[dict], promotions: list[dict], incidents: list[dict]) -> dict[str, Any]:
    blocks = [_run_block(store, r) for r in runs]
    hourly = [h for r in runs for h in hourly_breakdown(store, r)]
    quotes = sorted({b["quote"] for b in blocks if b.get("quote")})
    view = {"kind": kind, "title": title, "date": day, "generated_at": _now(), "quote": ", ".join(quotes),
            "runs": blocks, "hourly": hourly, "decisions": decisions, "promotions": promotions,
            "incidents": incidents,
            "compliance": {"kill_switch": _kill_switch(store, day),
                           "hard_stops": [{"run_id": b["run_id"], **e} for b in blocks for e in b["hard_stops"]],
                           "ledger": [{"run_id": b["run_id"], **b["ledger"]} for b in blocks]},
            "knowledge": knowledge_entries(store, day) if day else None}
    view["commentary"] = commentary(view)
    return public_view(view)


def cohort_report_view(store: Store, run_id: str) -> dict[str, Any]:
    """The view model of one cohort run's report.

    Args:
        store: open store.
        run_id: a cohort run.

    Returns:
        ``{"kind": "cohort", "title", "date" (the traded UTC day), "generated_at", "quote",
        "runs": [run block], "hourly": [hour], "decisions": [decision], "promotions":
        [promotion], "incidents": [incident], "compliance": {"kill_switch", "hard_stops",
        "ledger"}, "knowledge": [entry] | None, "commentary": [sentence]}``; shapes in the
        module docstring. Decisions are those recorded by this run (or its campaign) for
        its traded day; promotions those ranked on this run, incidents of their deployments.

    Raises:
        RunNotFound: no such run, or not a cohort run.
    """
    run = store.get_run(run_id)
    if run.get("kind") != "cohort":
        raise RunNotFound(f"run {run_id!r} is a {run.get('kind')} run, not a cohort")
    day = (run.get("header") or {}).get("day")
    sources = {run_id} | ({run["config"]["campaign_id"]} if (run.get("config") or {}).get("campaign_id") else set())
    decisions = _decisions(store, day, sources) if day else []
    promotions = _promotions(store, {run_id}, None)
    incidents = _incidents(store, {p["promotion_id"] for p in promotions}, None)
    return _assemble("cohort", f"Cohort report {run_id}", day, [run], store, decisions, promotions, incidents)


def daily_report_view(store: Store, day: str | Date) -> dict[str, Any]:
    """The view model of the daily report: every completed cohort that traded the UTC ``day``.

    Args:
        store: open store.
        day: ``YYYY-MM-DD`` (UTC).

    Returns:
        As :func:`cohort_report_view` with ``kind`` ``"daily"``: runs oldest first (at most
        :data:`MAX_DAY_RUNS`), every policy decision for the day, promotions ranked on the
        day's runs or created that day, rollback incidents and kill-switch changes recorded
        that day.

    Raises:
        ReportError: ``day`` is not a ``YYYY-MM-DD`` date.
    """
    d = parse_day(day).isoformat()
    res = store.list_cohort_summaries(date=d, limit=MAX_DAY_RUNS)
    runs = [store.get_run(row["run_id"]) for row in reversed(res["items"]) if row.get("status") == "completed"]
    decisions = _decisions(store, d, None)
    promotions = _promotions(store, {r["run_id"] for r in runs}, d)
    incidents = _incidents(store, {p["promotion_id"] for p in promotions}, d)
    return _assemble("daily", f"Daily report {d}", d, runs, store, decisions, promotions, incidents)


# ----------------------------------------------------------------- CSV


def _csv_rows(view: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for k in ("title", "date", "generated_at", "quote"):
        yield {"section": "meta", "item": k, "value": view.get(k)}
    for h in view["hourly"]:
        yield {"section": "hourly", "run_id": h["run_id"], "time": h["hour"], "start_equity": h["start_equity"],
               "end_equity": h["end_equity"], "pnl": h["pnl"], "return": h["return"], "trades": h["trades"],
               "utilisation": h["utilisation"]}
    for d in view["decisions"]:
        yield {"section": "leverage", "run_id": d["source"], "time": d["period_end"], "item": d["subject"],
               "value": d["tier"], "detail": f"{d['previous_tier']}x -> {d['tier']}x ({d['trigger']}): {d['rule']}; "
                                              f"next: {d['next_trigger']}"}
    for r in view["runs"]:
        yield {"section": "bankroll", "run_id": r["run_id"], "time": r["window_end"], "item": r["day"],
               "start_equity": r["bankroll"], "end_equity": r["final_equity"], "pnl": r["pnl"], "return": r["roi"],
               "utilisation": r["peak_utilisation"], "value": r["mean_gross_exposure"],
               "detail": "value = mean gross exposure; utilisation = peak"}
    for r in view["runs"]:
        for k, v in (r["baselines"] or {}).items():
            yield {"section": "baselines", "run_id": r["run_id"], "item": k, "value": v}
    for p in view["promotions"]:
        yield {"section": "promotion", "run_id": p["run_id"], "time": p["created_at"], "item": p["promotion_id"],
               "value": p["status"], "detail": f"agent {p['agent_id']}; " + "; ".join(
                   f"{c['name']} {c['figure']} vs {c['threshold']} {'pass' if c['passed'] else 'FAIL'}"
                   for c in p["checks"])}
        for s in p["signatures"]:
            yield {"section": "signature", "run_id": p["run_id"], "time": s["at"], "item": p["promotion_id"],
                   "value": s["kind"], "detail": f"{s['user']} ({s['role']}): {s['notes'] or ''}"}
    for i in view["incidents"]:
        yield {"section": "incident", "time": i["at"], "item": i["deployment_id"], "value": i["trigger"],
               "end_equity": i["final_equity"],
               "detail": f"{i['figure']} vs {i['threshold']} {i['unit']}: {i['reason'] or ''}".strip()}
    for n, text in enumerate(view["commentary"], 1):
        yield {"section": "commentary", "item": n, "detail": text}
    for e in view.get("knowledge") or []:
        yield {"section": "knowledge", "time": e.get("at") or e.get("created_at"), "item": e.get("title"),
               "detail": e.get("text") or e.get("narrative")}
    c = view["compliance"]
    ks = c["kill_switch"]
    yield {"section": "compliance", "item": "kill_switch", "value": "on" if ks["on"] else "off", "time": ks["at"],
           "detail": ks["reason"]}
    for e in ks["history"]:
        yield {"section": "compliance", "item": "kill_switch_change", "time": e["at"], "value": e["kind"],
               "detail": f"{e['actor']}: {e['reason']}"}
    for e in c["hard_stops"]:
        yield {"section": "compliance", "run_id": e["run_id"], "item": "hard_stop", "time": e.get("time"),
               "value": e.get("kind"), "detail": e.get("detail") or e.get("reason")}
    for lg in c["ledger"]:
        yield {"section": "compliance", "run_id": lg["run_id"], "item": "ledger",
               "value": {True: "verified", False: "FAILED", None: "n/a"}[lg["ok"]],
               "detail": "; ".join(f"{x['check']}: {'ok' if x['ok'] else 'FAIL'}" for x in lg["checks"])}


def report_csv_chunks(view: dict[str, Any]) -> Iterator[str]:
    """A report view as ONE CSV (:data:`CSV_FIELDS`, a ``section`` column per row, sections
    in :data:`SECTIONS` order) in text chunks, via :func:`manager.report.csv_chunks`."""
    return csv_chunks(_csv_rows(view), CSV_FIELDS)


# ----------------------------------------------------------------- PDF


def _chart_png(view: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(data URI, None)`` of the report's chart (parent equity by hour per run, and
    utilisation), or ``(None, why)`` when it cannot be drawn."""
    if not view["hourly"]:
        return None, "no hourly figures"
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        if "BROWSER_PATH" not in os.environ and Path("/usr/bin/chromium").exists():
            os.environ["BROWSER_PATH"] = "/usr/bin/chromium"  # kaleido 1.x (choreographer): the Debian Chromium
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08,
                            subplot_titles=("Parent equity at each hour's close", "Utilisation (hour mean)"))
        for r in view["runs"]:
            hs = [h for h in view["hourly"] if h["run_id"] == r["run_id"]]
            x = [r["window_start"]] + [h["hour"] for h in hs[1:]] + [r["window_end"]] if hs else []
            y = [hs[0]["start_equity"]] + [h["end_equity"] for h in hs] if hs else []
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=r["run_id"], line={"width": 2},
                                     marker={"size": 4}), row=1, col=1)
            fig.add_trace(go.Bar(x=[h["hour"] for h in hs], y=[(h["utilisation"] or 0) * 100 for h in hs],
                                 name=f"{r['run_id']} util %", showlegend=False), row=2, col=1)
        fig.update_layout(template="plotly_white", width=900, height=420, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                          legend={"orientation": "h", "y": -0.15}, font={"size": 11})
        fig.update_yaxes(title_text=view.get("quote") or "", row=1, col=1)
        fig.update_yaxes(title_text="%", row=2, col=1)
        png = fig.to_image(format="png", width=900, height=420, scale=2)
    except Exception as exc:  # no kaleido, no browser, a browser crash: the tables still print
        log.warning("report chart unavailable: %s", exc)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii"), None


def render_html(view: dict[str, Any], *, charts: bool = True) -> str:
    """The report's HTML from ``manager/report_templates/report.html`` (Jinja2).

    Args:
        view: a report view (:func:`cohort_report_view` / :func:`daily_report_view`).
        charts: draw the chart (kaleido); False leaves it out (a note says so).
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("manager", "report_templates"), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda x, d=2: _pct(_f(x), d)
    env.filters["frac"] = lambda x, d=1: _pct(_f(x), d, signed=False)
    env.filters["num"] = lambda x, d=6: "n/a" if _f(x) is None else f"{_f(x):,.{d}f}"
    env.filters["tier"] = lambda x: "n/a" if _f(x) is None else f"{_f(x):g}x"
    chart, why = _chart_png(view) if charts else (None, "charts off")
    return env.get_template("report.html").render(v=view, chart=chart, chart_note=why)


def render_pdf(view: dict[str, Any], *, charts: bool = True) -> bytes:
    """The report as PDF bytes (A4), printed by WeasyPrint from :func:`render_html`.

    Raises:
        ReportsUnavailable: WeasyPrint is not installed (``pip install cohortlab[reports]``).
    """
    try:
        from weasyprint import HTML
    except ImportError as exc:  # OSError too when pango is missing
        raise ReportsUnavailable("PDF reports need WeasyPrint: pip install cohortlab[reports] "
                                 f"({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise ReportsUnavailable(f"WeasyPrint cannot load its system libraries (pango): {exc}") from None
    return HTML(string=render_html(view, charts=charts)).write_pdf()


def report_bytes(view: dict[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` (``csv`` UTF-8 text or ``pdf``) as bytes.

    Raises:
        ReportError: unknown format. ReportsUnavailable: PDF without WeasyPrint.
    """
    if _check_format(fmt) == "csv":
        return "".join(report_csv_chunks(view)).encode("utf-8")
    return render_pdf(view)


# ----------------------------------------------------------------- delivery


def report_dir() -> Path:
    """Where delivered reports are written: ``COHORTLAB_REPORT_DIR`` (default ``./reports``)."""
    return Path(os.environ.get("COHORTLAB_REPORT_DIR") or "reports")


def _send_attachment(urls: dict[str, str], title: str, body: str, path: Path) -> tuple[bool, str | None]:
    """Send ``body`` with ``path`` attached through apprise to every channel."""
    import apprise

    failed = []
    for name, url in urls.items():
        ap = apprise.Apprise()
        if not ap.add(url):
            failed.append(f"{name}: not a valid apprise URL")
            continue
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = ap.notify(title=title, body=body, attach=str(path))
        if not ok:
            failed.append(f"{name}: " + (" ".join(captured.getvalue().split()) or "not delivered"))
    return (not failed), ("; ".join(failed)[:2000] or None)


def deliver_daily_report(store: Store, day: str | Date, *, fmt: str = "pdf", out_dir: str | Path | None = None,
                         channels: Iterable[str] | None = None) -> dict[str, Any]:
    """Produce the daily report of ``day`` and deliver it.

    The file is written to ``out_dir`` (default :func:`report_dir`) as
    ``cohortlab-daily-<day>.<fmt>``; then, when alert channels are configured
    (``COHORTLAB_ALERT_URLS``, or only ``channels``), it is sent through apprise to each as
    an attachment with the commentary as the message body.

    Returns:
        ``{"date", "format", "file" (the file's name), "bytes", "runs", "delivered"
        (True / False / None when no channel is configured), "error"}``.

    Raises:
        ReportError: bad ``day`` or ``fmt``. ReportsUnavailable: PDF without WeasyPrint.
    """
    d = parse_day(day).isoformat()
    view = daily_report_view(store, d)
    data = report_bytes(view, fmt)
    folder = Path(out_dir) if out_dir is not None else report_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cohortlab-daily-{d}.{fmt}"
    path.write_bytes(data)
    delivered, error = None, None
    try:
        from manager.alerts import alert_urls

        urls = alert_urls(channels=channels)
    except Exception as exc:  # alert module missing or a channel not configured
        urls, error = {}, str(exc)
    if urls:
        delivered, error = _send_attachment(urls, f"[cohortlab] daily report {d}", "\n".join(view["commentary"]), path)
    return {"date": d, "format": fmt, "file": path.name, "bytes": len(data), "runs": len(view["runs"]),
            "delivered": delivered, "error": error}
