"""View models of the assistant's dashboard pages (issue 15): the "Grow $X over N days" form and
its feasibility, the plan page, and the alert / approval toasts.

``web.pages.assistant`` renders these dicts; nothing here renders HTML or builds figures.

- :func:`grow_form` -- the form's defaults, bounds, risk appetites and data folders.
- :func:`parse_grow_form` -- the submitted form as a :class:`manager.intents.GrowInput`, or the
  errors per field (the same bounds as the API: bankroll 50-100,000, days 1-90, ...).
- :func:`grow_result` -- a drafted intent as the form shows it: prerequisites pass/fail, the
  probability of reaching the target, the expected path with its 5-95 % band, the bankroll at risk
  (VaR/CVaR with level, horizon and sample), the refusal or block, and the confirm token.
- :func:`plan_view` -- the plan page: status, daily plan and actual against plan per day,
  narratives, whether the page keeps polling.
- :func:`toasts` -- recent alerts of the toast rules and the approvals waiting for a role.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from manager import data_roots as _dr
from manager import intents
from manager.feasibility import APPETITES, REFUSE_BELOW, pct
from manager.store import Store

__all__ = ["DEFAULTS", "TOAST_RULES", "grow_form", "grow_result", "parse_grow_form", "pending_approvals",
           "plan_view", "toasts"]

DEFAULTS: dict[str, Any] = {"bankroll": "1000", "target_kind": "return", "target": "2", "days": "5",
                            "risk_appetite": "medium", "data": "", "symbols": "", "start": "", "agents": "30",
                            "generations": "5"}
"""The form's defaults (strings, as the form holds them): grow 1,000 by 2 % over 5 days at the
medium appetite, the server's data folder, all symbols, the day after the latest evidence."""

TOAST_RULES: dict[str, str] = {
    "kill_switch": "Kill switch", "rollback": "Rollback", "promotion_pending": "Promotion pending",
    "promotion_approved": "Promotion approved", "promotion_rejected": "Promotion rejected",
    "task_failed": "Task failed", "task_missed": "Task missed", "hard_stop": "Hard stop",
}
"""The alert rules shown as toasts (:data:`manager.alerts.RULES`), with their labels."""

TOAST_WINDOW = timedelta(hours=24)
"""Alerts older than this are not toasted."""


def grow_form(settings: Any = None) -> dict[str, Any]:
    """The form: ``defaults``, ``bounds``, ``appetites`` (with their refusal thresholds),
    ``folders`` (data folders by name, :func:`manager.data_roots.list_data_folders`) and
    ``default_data`` (the server's data folder by name, or None)."""
    folders, default = [], None
    try:
        roots = _dr.data_roots(settings)
        folders = _dr.list_data_folders(roots)
        if settings is not None and getattr(settings, "data_dir", None):
            default = _dr.public_label(str(Path(settings.data_dir).resolve()), roots)
    except Exception:  # noqa: BLE001 - an unreadable root must not hide the form
        folders = []
    return {"defaults": dict(DEFAULTS), "folders": folders, "default_data": default,
            "bounds": {"bankroll": (intents.BANKROLL_MIN, intents.BANKROLL_MAX),
                       "days": (intents.DAYS_MIN, intents.DAYS_MAX), "max_target_return": intents.MAX_TARGET_RETURN},
            "appetites": [{"name": a, "refuse_below": REFUSE_BELOW[a]} for a in APPETITES]}


def _number(form: Mapping[str, str], name: str, errors: dict[str, str], *, integer: bool = False,
            required: bool = True) -> float | int | None:
    raw = (form.get(name) or "").strip().replace(",", "")
    if not raw:
        if required:
            errors[name] = "required"
        return None
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        errors[name] = f"{form.get(name)!r} is not {'a whole number' if integer else 'a number'}"
        return None
    if not integer and value != value:  # NaN
        errors[name] = "not a number"
        return None
    return value


def parse_grow_form(form: Mapping[str, str], data_dir: str | None = None) -> tuple[intents.GrowInput | None,
                                                                                 dict[str, str]]:
    """The submitted form as a :class:`~manager.intents.GrowInput` (validated), or the errors.

    Fields: ``bankroll`` (quote currency), ``target_kind`` (``return``: ``target`` in percent,
    ``amount``: ``target`` the equity to reach, ``none``: end with at least the bankroll),
    ``days``, ``risk_appetite``, ``data`` (a data folder's name; empty = ``data_dir``, the server's
    folder), ``symbols`` (comma or space separated; empty = all), ``start`` (``YYYY-MM-DD``; empty =
    the day after the latest evidence), ``agents`` and ``generations`` (each day's campaign).

    Returns:
        ``(GrowInput, {})`` or ``(None, {field: message})``.
    """
    errors: dict[str, str] = {}
    bankroll = _number(form, "bankroll", errors)
    days = _number(form, "days", errors, integer=True)
    kind = (form.get("target_kind") or "return").strip()
    target_amount = target_return = None
    if kind not in ("return", "amount", "none"):
        errors["target_kind"] = f"{kind!r}; allowed: return, amount, none"
    elif kind != "none":
        target = _number(form, "target", errors)
        if target is not None:
            if kind == "return":
                target_return = target / 100.0
            else:
                target_amount = target
    agents = _number(form, "agents", errors, integer=True, required=False)
    generations = _number(form, "generations", errors, integer=True, required=False)
    if generations is not None and not 1 <= generations <= 50:
        errors["generations"] = f"{generations} is out of range; allowed: 1 to 50"
    data = (form.get("data") or "").strip()
    path = data_dir
    if data:
        try:
            path = str(_dr.resolve_data_folder(data))
        except _dr.DataFolderError as exc:
            errors["data"] = str(exc)
    symbols = [s for s in (form.get("symbols") or "").replace(",", " ").split() if s] or None
    start = (form.get("start") or "").strip() or None
    if errors:
        return None, errors
    inp = intents.GrowInput(bankroll=float(bankroll), days=int(days), target_amount=target_amount,
                            target_return=target_return, risk_appetite=(form.get("risk_appetite") or "medium").strip(),
                            data=path, symbols=symbols, start=start,
                            agents=int(agents) if agents is not None else 30,
                            generations=int(generations) if generations is not None else 5)
    try:
        inp.validate()
    except intents.IntentInvalid as exc:
        field = exc.field or "form"
        field = {"target_return": "target", "target_amount": "target"}.get(field, field)
        return None, {field: str(exc)}
    return inp, {}


def _risk_rows(feas: Mapping[str, Any], quote: str) -> list[dict[str, Any]]:
    rows = []
    bar = feas.get("bankroll_at_risk") or {}
    n = (feas.get("evidence") or {}).get("n_days")
    paths = (feas.get("bootstrap") or {}).get("n_paths")
    for key, sample in (("one_day", f"{paths} bootstrap draws of one day from {n} cohort day(s)"),
                        ("plan", f"{paths} bootstrap paths of the whole plan")):
        block = bar.get(key) or {}
        for e in block.get("estimates") or []:
            rows.append({"horizon": block.get("horizon"), "level": e["level"], "method": e["method"],
                         "var_fraction": e["var_fraction"], "cvar_fraction": e["cvar_fraction"],
                         "var_quote": e["var_quote"], "cvar_quote": e["cvar_quote"], "quote": quote,
                         "sample": sample, "key": f"{key}-{int(round(e['level'] * 100))}"})
    return rows


def grow_result(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A drafted intent (:func:`manager.intents.draft_grow`) as the form shows it.

    Returns:
        ``intent_id``, ``status`` (draft / refused / blocked), ``narrative``, ``prerequisites``,
        ``probability`` (fraction or None) and ``probability_text``, ``threshold``,
        ``required_daily_return``, ``target_amount``, ``bankroll``, ``days``, ``quote``,
        ``market``, ``start``, ``dates``, ``evidence`` (summary), ``leverage``, ``bootstrap``,
        ``path`` (per day expected / p05 / p95), ``risk`` (VaR/CVaR rows: horizon, level,
        fractions and amounts, the sample), ``final``, ``confirm_token`` (drafts only),
        ``can_confirm``, ``refusal`` (the narrative when refused or blocked).
    """
    feas = doc.get("feasibility") or {}
    prob = feas.get("probability")
    quote = doc.get("quote") or ""
    status = doc.get("status")
    return {
        "intent_id": doc.get("intent_id"), "status": status, "narrative": doc.get("narrative") or "",
        "prerequisites": list(doc.get("prerequisites") or []), "probability": prob,
        "probability_text": "n/a (no evidence)" if prob is None else ("< 0.01 %" if prob < 1e-4 else pct(prob)),
        "threshold": feas.get("threshold"), "required_daily_return": feas.get("required_daily_return"),
        "target_return": feas.get("target_return"), "target_amount": feas.get("target_amount"),
        "bankroll": feas.get("bankroll") or float((doc.get("inputs") or {}).get("bankroll") or 0),
        "days": feas.get("days") or (doc.get("inputs") or {}).get("days"), "quote": quote,
        "market": doc.get("market"), "start": doc.get("start"), "dates": list(doc.get("dates") or []),
        "evidence": feas.get("evidence") or {}, "leverage": feas.get("leverage") or {},
        "bootstrap": feas.get("bootstrap") or {}, "path": list(feas.get("path") or []),
        "risk": _risk_rows(feas, quote), "final": feas.get("final"), "inputs": dict(doc.get("inputs") or {}),
        "confirm_token": doc.get("confirm_token") if status == "draft" else None,
        "can_confirm": status == "draft" and bool(doc.get("confirm_token")),
        "refusal": doc.get("narrative") if status in ("refused", "blocked") else None,
        "confirm_what": (doc.get("confirm") or {}).get("what"),
    }


def plan_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The plan page of an intent (:func:`manager.intents.intent_view`).

    Returns:
        :func:`grow_result` plus ``rows`` (per day: ``day``, ``date``, ``tier``, planned
        ``expected_return`` / ``expected_equity`` / ``p05`` / ``p95`` / ``var_quote``, the cohort
        ``run_id``, and when reported ``roi``, ``end_equity``, ``within_band``, ``diff`` -- actual
        minus planned equity --, ``percentile``, ``narrative``), ``progress``, ``outcome``,
        ``reason`` (a failed plan), ``polling`` (running: the page polls), ``confirmed_by`` / ``_at``.
    """
    out = grow_result(doc)
    progress = doc.get("progress") or intents.intent_view(dict(doc))["progress"]
    rows = []
    for r in progress["rows"]:
        p, rep = r["plan"], r.get("actual")
        act = (rep or {}).get("actual") or {}
        row = {"day": r["day"], "date": r["date"], "tier": p.get("tier"), "expected_return": p.get("expected_return"),
               "expected_equity": p.get("expected_equity"), "p05": p.get("p05"), "p95": p.get("p95"),
               "var_quote": (p.get("bankroll_at_risk") or {}).get("var_quote"),
               "var_fraction": (p.get("bankroll_at_risk") or {}).get("var_fraction"),
               "run_id": p.get("run_id"), "reported": rep is not None}
        if rep is not None:
            row.update(roi=act.get("roi"), start_equity=act.get("start_equity"), end_equity=act.get("end_equity"),
                       within_band=act.get("within_band"), actual_tier=act.get("tier"),
                       diff=(act["end_equity"] - p["expected_equity"]) if act.get("end_equity") is not None
                       and p.get("expected_equity") is not None else None,
                       percentile=((rep.get("baselines") or {}).get("random_percentile")),
                       narrative=rep.get("narrative"))
        rows.append(row)
    out.update(rows=rows, progress={k: v for k, v in progress.items() if k != "rows"},
               plan_rows=progress["rows"], outcome=doc.get("outcome"), reason=doc.get("reason"),
               polling=doc.get("status") == "running", confirmed_by=doc.get("confirmed_by"),
               confirmed_at=doc.get("confirmed_at"), created_at=doc.get("created_at"), actor=doc.get("actor"),
               campaign_id=doc.get("campaign_id"))
    return out


def _next_role(doc: Mapping[str, Any]) -> str | None:
    """The role whose signature an open promotion request waits for (None: not waiting)."""
    if doc.get("status") in ("rejected", "expired"):
        return None
    steps = (doc.get("chain") or {}).get("steps") or []
    signed = sum(1 for s in doc.get("steps") or [] if s.get("kind") == "approve")
    if not steps or signed >= len(steps) or doc.get("status") == steps[-1].get("status"):
        return None
    return steps[signed].get("role")


def pending_approvals(store: Store, role: str | None, *, scan: int = 200) -> list[dict[str, Any]]:
    """Open promotion requests waiting for ``role``'s signature (an admin sees every open one):
    ``[{"promotion_id", "campaign_id", "agent_id", "status", "role", "expires_at"}]``."""
    if not role:
        return []
    out = []
    for p in store.list_promotions(limit=scan):
        nxt = _next_role(p)
        if nxt is None or (role != "admin" and nxt != role):
            continue
        out.append({"promotion_id": p["promotion_id"], "campaign_id": p.get("campaign_id"),
                    "agent_id": p.get("agent_id"), "status": p.get("status"), "role": nxt,
                    "expires_at": p.get("expires_at")})
    return out


def _moment(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def toasts(store: Store, role: str | None, dismissed: set[str] | frozenset[str] = frozenset(), *,
           now: datetime | None = None, limit: int = 5) -> dict[str, Any]:
    """What the toasts show a signed-in user: the newest alerts of :data:`TOAST_RULES` raised in
    the last :data:`TOAST_WINDOW` and not dismissed in this session (at most ``limit``), and the
    approvals waiting for the user's role.

    Returns:
        ``{"alerts": [{"alert_id", "rule", "label", "severity", "title", "body", "at", "status"}],
        "pending": [...] (:func:`pending_approvals`), "pending_count": int}``.
    """
    at = now or datetime.now(timezone.utc)
    since = at - TOAST_WINDOW
    alerts = []
    for a in store.list_alerts(limit=50):
        t = _moment(a.get("created_at"))
        if t is None or t < since:
            break  # newest first: the rest are older
        if a.get("rule") not in TOAST_RULES or a["alert_id"] in dismissed:
            continue
        alerts.append({"alert_id": a["alert_id"], "rule": a["rule"], "label": TOAST_RULES[a["rule"]],
                       "severity": a.get("severity") or "info", "title": a.get("title") or "",
                       "body": a.get("body") or "", "at": a.get("created_at"), "status": a.get("status")})
        if len(alerts) >= limit:
            break
    pending = pending_approvals(store, role)
    return {"alerts": alerts, "pending": pending, "pending_count": len(pending)}
