"""Read-side views of micro-live deployments for the dashboard (issue 14). Nothing here
changes the store: the state changes are :mod:`manager.deployments`' use cases.

* :func:`deployment_row` / :func:`deployment_list` -- one line per deployment for
  ``/trading/deployments``: allocation, equity, PnL, max drawdown against the rollback
  threshold, time left on the rollback timer, last bar.
* :func:`deployment_view` -- one deployment for its page: the equity curve with the
  allocation and the drawdown rollback level, the timer, open positions, recent fills,
  rollback incidents with their figures, the controls log and which control the signed-in
  user may use (or why not).
* :func:`deployment_actions` -- the controls a principal may use on a deployment; the roles
  come from :data:`manager.deployments.CONTROL_ROLES` / :data:`~manager.deployments.EXTEND_ROLES`
  (themselves :data:`manager.users.PERMISSIONS`), never from a copy here.

**Clock.** A deployment's triggers are judged in *bar time* (:func:`manager.deployments.step`
evaluates at the close of the bar it processed, so a replayed deployment has its own clock).
The time left on the rollback timer is therefore measured at the **deployment clock**: the
close of its last processed bar (its ``started_at`` before the first bar), unless a ``now`` is
passed. The wall-clock time is not used: for a replay of old bars it would say "expired"
for a timer the deployment has not reached.

**Drawdown rollback level.** :func:`risk.rollback.evaluate` rolls back when the maximum
drawdown -- the fall of equity from its running peak, the peak including the allocation --
is over ``max_drawdown`` (a fraction of that peak). The equity level at which it fires at a
bar is thus ``running peak x (1 - max_drawdown)``: it equals ``allocation x (1 - max_drawdown)``
until equity makes a new high above the allocation, then rises with the peak. The views give
that level per bar (``floor``) and now (``thresholds.drawdown_level``).

Money is in the bars' quote currency; fractions are fractions (0.05 = 5 %); durations in
seconds. Every document leaves through :func:`manager.data_roots.public_view` (no server path).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from manager import deployments as D
from manager.data_roots import public_view
from manager.store import Store
from risk.rollback import TRIGGERS, RollbackConfig
from simulator.metrics.performance import drawdown_curve

__all__ = ["RECENT_FILLS", "deployment_actions", "deployment_list", "deployment_row", "deployment_view",
           "deployment_clock", "STATUSES"]

#: fills shown on a deployment's page (the newest)
RECENT_FILLS = 20
#: the deployment states, in the order the list's filter offers them
STATUSES = (D.RUNNING, D.PAUSED, D.ROLLED_BACK)
_UNITS = 1e8  # simulator.kernel.UNITS: int units per quote-currency unit


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment_clock(doc: dict) -> datetime | None:
    """The deployment's own clock: the close of its last processed bar (its last bar time +
    the timeframe), ``started_at`` before the first bar; None when neither is readable."""
    stamps = doc.get("timestamps") or []
    if stamps:
        last = _ts(stamps[-1])
        if last is not None:
            return last + timedelta(seconds=int((doc.get("market") or {}).get("timeframe_s") or 0))
    return _ts(doc.get("started_at"))


def _duration(seconds: float | None) -> str:
    """``2d 03h 05m`` (or ``expired``); "—" for None."""
    if seconds is None:
        return "—"
    if seconds <= 0:
        return "expired"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours:02d}h {mins:02d}m" if days else f"{hours}h {mins:02d}m"


def _config(doc: dict) -> RollbackConfig:
    try:
        return RollbackConfig.from_dict(doc.get("rollback_config"))
    except ValueError:
        return RollbackConfig()


def deployment_row(doc: dict, *, now: Any = None) -> dict:
    """One deployment's summary figures.

    Args:
        doc: a stored deployment (:func:`manager.deployments.get_deployment` or a list item).
        now: the instant the timer is measured at (datetime or ISO 8601); None = the
            deployment clock (:func:`deployment_clock`).

    Returns:
        ``{"deployment_id", "promotion_id", "agent_id", "campaign_id", "status", "quote",
        "symbols", "allocation" (quote), "leverage", "equity" (last close, quote; the
        allocation before the first bar), "pnl" (quote), "pnl_pct" (equity / allocation - 1, a
        fraction), "max_drawdown", "current_drawdown" (fractions of the running peak),
        "max_drawdown_limit" (the rollback threshold, fraction), "drawdown_headroom"
        (limit - max drawdown), "peak", "drawdown_level" (running peak x (1 - limit), quote),
        "bars" (processed), "last_bar_time", "started_at", "expires_at", "clock" (the instant
        the timer is measured at), "seconds_left" (None once rolled back), "time_left" (text),
        "rolled_back" (bool), "reason" (rollback trigger or None)}``.
    """
    alloc = float((doc.get("allocation") or {}).get("amount") or 0.0)
    eq = np.asarray(doc.get("equity") or [], dtype=np.float64)
    cfg = _config(doc)
    equity = float(eq[-1]) if eq.size else alloc
    if eq.size and alloc > 0:
        dd = drawdown_curve(eq, alloc)
        max_dd, cur_dd = float(dd.max()), float(dd[-1])
    else:
        max_dd = cur_dd = 0.0
    peak = max(alloc, float(eq.max()) if eq.size else alloc)
    rolled = doc.get("status") == D.ROLLED_BACK
    if rolled and (doc.get("rollback") or {}).get("final_equity") is not None:
        equity = float(doc["rollback"]["final_equity"])  # after the flattening fills
    clock = _ts(now) if isinstance(now, str) else (now if isinstance(now, datetime) else deployment_clock(doc))
    if isinstance(clock, datetime) and clock.tzinfo is None:
        clock = clock.replace(tzinfo=timezone.utc)
    expires = _ts(doc.get("expires_at"))
    left = None if (rolled or expires is None or clock is None) else (expires - clock).total_seconds()
    stamps = doc.get("timestamps") or []
    market = doc.get("market") or {}
    return {
        "deployment_id": doc.get("deployment_id"), "promotion_id": doc.get("promotion_id"),
        "agent_id": doc.get("agent_id"), "campaign_id": doc.get("campaign_id"), "status": doc.get("status"),
        "quote": market.get("quote") or "", "symbols": list(market.get("symbols") or []),
        "allocation": alloc, "leverage": (doc.get("allocation") or {}).get("leverage"),
        "equity": equity, "pnl": equity - alloc, "pnl_pct": (equity / alloc - 1.0) if alloc > 0 else None,
        "max_drawdown": max_dd, "current_drawdown": cur_dd, "max_drawdown_limit": cfg.max_drawdown,
        "drawdown_headroom": cfg.max_drawdown - max_dd, "peak": peak,
        "drawdown_level": peak * (1.0 - cfg.max_drawdown),
        "bars": int(eq.size), "last_bar_time": stamps[-1] if stamps else None,
        "started_at": doc.get("started_at"), "expires_at": doc.get("expires_at"), "clock": _iso(clock),
        "seconds_left": left, "time_left": "rolled back" if rolled else _duration(left),
        "rolled_back": rolled, "reason": (doc.get("rollback") or {}).get("reason"),
    }


def deployment_list(store: Store, *, status: str | None = None, limit: int = 100, now: Any = None) -> list[dict]:
    """:func:`deployment_row` of each deployment, newest first.

    Args:
        status: only deployments in this state (one of :data:`STATUSES`); None = all.
        limit: at most this many rows.
        now: see :func:`deployment_row`.

    Raises:
        DeploymentInvalid: ``status`` is not a deployment state.
        StoreError: the store cannot be read.
    """
    if status is not None and status not in STATUSES:
        raise D.DeploymentInvalid(f"status={status!r}; allowed: {', '.join(STATUSES)}")
    docs = D.list_deployments(store, status=status, limit=limit)
    return public_view([deployment_row(d, now=now) for d in docs])


def _who(principal: Any) -> dict | None:
    name, role = getattr(principal, "name", None), getattr(principal, "role", None)
    return {"name": str(name), "role": str(role)} if name and role else None


def deployment_actions(doc: dict, principal: Any) -> dict[str, dict]:
    """Which manual control ``principal`` may use on the deployment ``doc`` now.

    Args:
        doc: the stored deployment (its ``status``).
        principal: the signed-in user (``name``, ``role``), or None when signed out.

    Returns:
        ``{action: {"enabled": bool, "reason": str | None, "roles": [roles allowed]}}`` for
        ``rollback``, ``extend``, ``pause`` and ``resume``; ``reason`` says why a disabled
        control is disabled (signed out, the role, or the deployment's state). The roles are
        :data:`manager.deployments.CONTROL_ROLES` (rollback, pause, resume) and
        :data:`manager.deployments.EXTEND_ROLES` (extend).
    """
    status = doc.get("status")
    who = _who(principal)
    needs = {"rollback": (D.CONTROL_ROLES, (D.RUNNING, D.PAUSED)),
             "extend": (D.EXTEND_ROLES, (D.RUNNING, D.PAUSED)),
             "pause": (D.CONTROL_ROLES, (D.RUNNING,)),
             "resume": (D.CONTROL_ROLES, (D.PAUSED,))}
    out: dict[str, dict] = {}
    for action, (roles, states) in needs.items():
        reason = None
        if status not in states:
            reason = f"the deployment is {status}; {action} needs {' or '.join(states)}"
        elif who is None:
            reason = f"sign in as {' or '.join(roles)} to {action}"
        elif who["role"] not in roles:
            reason = f"{who['role']}: needs role {' or '.join(roles)} to {action}"
        out[action] = {"enabled": reason is None, "reason": reason, "roles": list(roles)}
    return out


def _incident(inc: dict) -> dict:
    detail = inc.get("detail") or {}
    return {"trigger": inc.get("trigger"), "meaning": TRIGGERS.get(inc.get("trigger") or "", "a manual rollback"
                                                                      if inc.get("trigger") == "manual" else ""),
            "figure": inc.get("figure"), "threshold": inc.get("threshold"), "unit": inc.get("unit") or "",
            "sample": inc.get("sample") or "", "at": inc.get("at"), "bar": inc.get("bar"),
            "reason": inc.get("reason"), "final_equity": inc.get("final_equity"),
            "allocation": inc.get("allocation"), "user": detail.get("user"), "role": detail.get("role"),
            "notes": detail.get("notes"), "detail": detail}


def deployment_view(store: Store, deployment_id: str, principal: Any = None, *, now: Any = None) -> dict:
    """One deployment for its page.

    Args:
        store: the store.
        deployment_id: the deployment's id.
        principal: the signed-in user (``name``, ``role``) or None (signed out).
        now: see :func:`deployment_row`.

    Returns:
        :func:`deployment_row`'s keys plus ``"series"`` (``{"timestamps", "equity",
        "floor"}``: equity at each bar close and the drawdown rollback level
        ``running peak x (1 - max_drawdown)`` at it, quote), ``"thresholds"`` (the
        :class:`~risk.rollback.RollbackConfig` fields, ``allocation`` and
        ``drawdown_level`` and the definition in words), ``"cash"`` (quote),
        ``"positions"`` (``[{"symbol", "qty", "side", "last_fill_price"}]``),
        ``"position_value"`` (equity - cash, quote: the positions marked at the last close),
        ``"fills"`` (the :data:`RECENT_FILLS` newest, newest first, amounts in quote),
        ``"fills_total"``, ``"incidents"``, ``"controls"`` (newest first), ``"rollback"``
        (the summary once rolled back), ``"actions"`` (:func:`deployment_actions`), ``"who"``
        and ``"polling"`` (False once rolled back: the live part stops refreshing).

    Raises:
        DeploymentNotFound: no such deployment (404).
        StoreError: the store cannot be read.
    """
    doc = D.get_deployment(store, deployment_id)
    row = deployment_row(doc, now=now)
    cfg = _config(doc)
    alloc = row["allocation"]
    eq = [float(v) for v in doc.get("equity") or []]
    floor = (np.maximum.accumulate(np.maximum(np.asarray(eq, dtype=np.float64), alloc)) * (1.0 - cfg.max_drawdown)
             ).tolist() if eq else []
    broker = doc.get("broker") or {}
    cash = float(broker.get("cash_units") or 0) / _UNITS
    fills = list(doc.get("fills") or [])
    last_price: dict[str, float] = {}
    for f in fills:
        last_price[f.get("symbol")] = f.get("price")
    positions = [{"symbol": sym, "qty": float(qty), "side": "long" if qty > 0 else "short",
                  "last_fill_price": last_price.get(sym)}
                 for sym, qty in sorted((broker.get("positions") or {}).items())]
    recent = [{**f, "notional": (f.get("notional_units") or 0) / _UNITS, "fee": (f.get("fee_units") or 0) / _UNITS,
               "realized": (f.get("realized_units") or 0) / _UNITS}
              for f in reversed(fills[-RECENT_FILLS:])]
    thresholds = {**cfg.to_dict(), "allocation": alloc, "drawdown_level": row["drawdown_level"],
                  "allocation_level": alloc * (1.0 - cfg.max_drawdown), "peak": row["peak"],
                  "backtest_bar_variance": doc.get("backtest_bar_variance"),
                  "drawdown_rule": (f"rolls back when equity falls more than {cfg.max_drawdown:.2%} below its running "
                                    f"peak (the peak includes the allocation): the level is running peak × "
                                    f"(1 − {cfg.max_drawdown:g})"),
                  "variance_rule": (f"rolls back when the per-bar return variance of the last "
                                    f"{cfg.variance_window} bars is over {cfg.variance_ratio:g}× the backtest's "
                                    f"(not before {cfg.min_bars_for_variance} bars)"),
                  "timer_rule": (f"rolls back at expires_at ({cfg.timer_days:g} days after the start unless "
                                 f"extended)")}
    view = {
        **row, "series": {"timestamps": list(doc.get("timestamps") or []), "equity": eq, "floor": floor},
        "thresholds": thresholds, "cash": cash, "positions": positions,
        "position_value": (row["equity"] - cash) if not row["rolled_back"] else 0.0,
        "fills": recent, "fills_total": len(fills),
        "incidents": [_incident(i) for i in doc.get("incidents") or []],
        "controls": list(reversed(doc.get("controls") or [])), "rollback": doc.get("rollback"),
        "actions": deployment_actions(doc, principal), "who": _who(principal),
        "polling": doc.get("status") != D.ROLLED_BACK, "timeframe_s": (doc.get("market") or {}).get("timeframe_s"),
        "exits_not_modelled": doc.get("exits_not_modelled") or {},
    }
    return public_view(view)
