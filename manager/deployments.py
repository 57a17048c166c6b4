"""Use cases of micro-live deployment: start a ``risk_approved`` promotion on a
paper broker, advance it bar by bar, roll it back automatically (or by hand),
extend its rollback timer, pause it.

**States.** A deployment is ``running`` from :func:`start_deployment`,
``paused`` by :func:`pause` (:func:`resume` sets it running again) and
``rolled_back`` by :func:`rollback` (automatic or manual; final). The promotion
moves ``risk_approved -> deployed`` at the start and ``deployed -> rolled_back``
at the rollback (store transitions, logged and audited as ``promotion.<status>``).

**Start** (:func:`start_deployment`). The allocation is the promotion's
(``promotion["allocation"]``: ``amount`` in the quote currency, ``leverage`` =
min(gene, tier, Kelly cap), ``gross_exposure``); a zero gross exposure (or
amount) is refused with :class:`DeploymentError`. The deployment document holds
the agent's genome, the allocation, the market window (``start_bar``: the first
row of the market traded), ``started_at`` and ``expires_at`` =
:func:`risk.rollback.timer_expiry` (the rollback timer, 3 days by default),
``status`` ``running``, ``last_bar`` -1, the broker state, and its **ledger**: a
hash-chained journal (the shape of :mod:`simulator.ledger`) kept *with the
deployment*, whose first transaction (``allocation``) moves the allocation from
``parent:cash`` to ``deployment:<id>:cash``; each fill is then one balanced
transaction (``deployment:<id>:position:<symbol>`` the cost basis with the quantity,
``deployment:<id>:cash`` the cash change, ``fees``, ``deployment:<id>:realized_pnl``).
Creation is idempotent per promotion
(the store keeps one deployment per promotion), so a retried start never
reserves twice.

**Step** (:func:`step`). ``step(store, id, bar, market=...)`` advances the
deployment to the market row ``bar`` (catching up every bar after ``last_bar``)
with :class:`~simulator.live_agent.LiveAgent` (the engine's signal code) and
:class:`~simulator.broker.PaperBroker` (the engine's cost model), persists
``last_bar``, the equity curve, the fills and the broker state with the store's
**conditional update on the last processed bar** (two workers on one bar: one
wins, the loser discards its work and reports ``conflict``), then evaluates
:func:`risk.rollback.evaluate` (kill switch from ``store.kill_switch()``, daily
hard stop as passed in, the lineage's policy tier when the campaign's market is
known, drawdown, variance, timer) and rolls back on a verdict.

*Rebuilding the agent and the broker.* The persisted state is the truth; the
in-memory agent and broker are rebuilt from it by **replaying the bars from the
start** through the same LiveAgent + PaperBroker (deterministic, so a restarted
worker reaches the same positions and fills: no double fill). A process-local
cache keeps the live objects between steps when their ``last_bar`` equals the
stored one (an acceleration only: any mismatch replays); it survives a reload of
the market (each beat tick reloads the data folder), since bars already closed
never change -- new bars are only appended. Replay costs O(bars²)
signal computations over a long deployment; persisting the broker's arrays
would remove it (not done yet). A ``step`` for a bar at or before ``last_bar`` is
a no-op (idempotent): orders are keyed ``<deployment>:<bar>:<symbol>``.

**Rollback** (:func:`rollback`). Flattens **immediately at the last processed
bar's close** (the PaperBroker fills ``settle`` orders on a bar whose open is
that close, with the engine's slippage and fee), not at the next bar's open: the
deployment stops within the bar that breached, at a price a venue would give
now. The flattening fills are journalled like any fill; then the capital returns
to the parent (a balanced ``return_of_capital`` transaction: the final equity from
``deployment:<id>:cash``, back to 0, to ``parent:cash``), sets the deployment ``rolled_back``, the promotion
``rolled_back``, records each incident (its figures from
:func:`risk.rollback.evaluate`, or a ``manual`` incident with who and why) and an
audit event ``deployment.rolled_back``.

**Manual control.** :func:`rollback` (``actor`` and ``notes``), :func:`extend`
(moves ``expires_at`` by ``days``: the re-approval of the timer) and
:func:`pause` / :func:`resume`, each audited (``deployment.<action>``, actor,
role, notes) and appended to the deployment's ``controls``. Roles come from
:data:`manager.users.PERMISSIONS` (the one permission matrix): ``rollback`` and
``pause`` (also resume; :data:`CONTROL_ROLES`), ``extend`` (:data:`EXTEND_ROLES`).

**Errors** carry an HTTP-like ``status``: :class:`DeploymentNotFound` (404),
:class:`DeploymentForbidden` (403, a role that may not act),
:class:`DeploymentInvalid` (422: notes missing, bad days), :class:`DeploymentConflict`
(409), else :class:`DeploymentError` (400).

Not done yet: the live path has no stop-loss / take-profit / max-hold exits
(:class:`~simulator.live_agent.LiveAgent` ``ignore_exits=True``; the genome's
exits are listed in ``exits_not_modelled``); a paused deployment that
is resumed replays the paused bars as if it had traded them.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from evolution.genome import Genome
from manager.alerts import notify_rollback
from manager.store import NotFound, Store, offset_pages
from manager.users import PERMISSIONS
from risk.rollback import DeploymentState, RollbackConfig, evaluate, timer_expiry
from simulator.broker import Order, PaperBroker
from simulator.engine import EngineConfig, to_units
from simulator.feed import Bar, ReplayFeed
from simulator.kernel import UNITS
from simulator.ledger import GENESIS, txn_hash, units_to_str
from simulator.live_agent import LiveAgent
from simulator.market import MarketData

__all__ = ["DeploymentError", "DeploymentConflict", "DeploymentNotFound", "DeploymentForbidden",
           "DeploymentInvalid", "CONTROL_ROLES", "EXTEND_ROLES", "RUNNING", "PAUSED",
           "ROLLED_BACK", "DEPLOYED", "start_deployment", "step", "rollback", "extend", "pause", "resume",
           "get_deployment", "list_deployments", "deployment_brief", "HEAVY_FIELDS", "forget", "start_approved", "advance_all", "deployment_market",
           "MAX_BARS_PER_TICK"]

RUNNING, PAUSED, ROLLED_BACK = "running", "paused", "rolled_back"
DEPLOYED, RISK_APPROVED = "deployed", "risk_approved"
SYSTEM = "system"
#: roles that may pause, resume and roll back a deployment by hand (``PERMISSIONS["rollback"]``)
CONTROL_ROLES = tuple(sorted(PERMISSIONS["rollback"]))
#: roles that may extend the rollback timer, a re-approval (``PERMISSIONS["extend"]``)
EXTEND_ROLES = tuple(sorted(PERMISSIONS["extend"]))
_ENGINE_KEYS = ("fee_bps", "slippage_bps", "max_gross_leverage", "max_symbol_exposure", "allow_short")


class DeploymentError(ValueError):
    """A deployment use case refused; the message says what to fix."""

    status = 400


class DeploymentConflict(DeploymentError):
    """The deployment or its promotion is not in a state that allows this."""

    status = 409


class DeploymentNotFound(DeploymentError):
    """No deployment with that id."""

    status = 404


class DeploymentForbidden(DeploymentError):
    """The actor's role may not do this (see :data:`manager.users.PERMISSIONS`)."""

    status = 403


class DeploymentInvalid(DeploymentError):
    """An invalid input of a manual control (notes missing, days out of range)."""

    status = 422


# -- helpers ----------------------------------------------------------------------------------------


def _ts(value: Any) -> datetime:
    """An aware UTC datetime from a numpy datetime64, an ISO string or a datetime (naive = UTC)."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _iso(value: Any) -> str:
    """:func:`_ts` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return _ts(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _who(actor: Any) -> tuple[str, str]:
    if isinstance(actor, str):
        return actor, SYSTEM if actor == SYSTEM else ""
    name, role = getattr(actor, "name", None), getattr(actor, "role", None)
    if not name or not role:
        raise DeploymentError("actor needs a name and a role")
    return str(name), str(role)


def _need(actor: Any, roles: tuple[str, ...], action: str, notes: str) -> tuple[str, str]:
    name, role = _who(actor)
    if role not in roles:
        raise DeploymentForbidden(f"{name} ({role or 'no role'}) may not {action} a deployment; "
                              f"allowed roles: {', '.join(roles)}")
    if not isinstance(notes, str) or not notes.strip():
        raise DeploymentInvalid(f"notes are required to {action} a deployment (who and why are logged)")
    return name, role


def _get(store: Store, deployment_id: str) -> dict:
    try:
        return store.get_deployment(deployment_id)
    except NotFound:
        raise DeploymentNotFound(f"no deployment {deployment_id!r}") from None


def _chain(ledger: list[dict], txn: dict) -> list[dict]:
    prev = ledger[-1]["hash"] if ledger else GENESIS
    txn = {**txn, "seq": len(ledger)}
    txn["prev_hash"] = prev
    txn["hash"] = txn_hash(txn, prev)
    return [*ledger, txn]


def _posting(account: str, units: int) -> dict:
    return {"account": account, "amount": units_to_str(int(units)), "qty": None, "symbol": None}


def _journal_fills(ledger: list[dict], deployment_id: str, fills: list[dict]) -> list[dict]:
    """Append one balanced transaction per fill (the cohort journal's shape,
    :func:`simulator.ledger.build_journal`): the position account takes the cost basis
    (``realized - cash - fee``) with the signed quantity, the deployment's cash the cash
    change, ``fees`` the fee and the realised PnL its account."""
    for f in fills:
        basis = int(f["realized_units"]) - int(f["cash_units"]) - int(f["fee_units"])
        postings = [{"account": f"deployment:{deployment_id}:position:{f['symbol']}", "amount": units_to_str(basis),
                     "qty": float(f["qty"]), "symbol": f["symbol"]},
                    _posting(f"deployment:{deployment_id}:cash", f["cash_units"])]
        if f["fee_units"]:
            postings.append(_posting("fees", f["fee_units"]))
        if f["realized_units"]:
            postings.append(_posting(f"deployment:{deployment_id}:realized_pnl", -int(f["realized_units"])))
        side = "buy" if f["qty"] > 0 else "sell"
        ledger = _chain(ledger, {"txn_id": f"{len(ledger):08d}-{f['kind']}", "bar": f["bar"], "time": f["time"],
                                 "kind": f["kind"], "memo": f"{f['kind']} {side} {f['symbol']} ({f['client_order_id']})",
                                 "postings": postings})
    return ledger


def _engine_config(doc: dict) -> EngineConfig:
    return EngineConfig(**doc["engine"])


def _genome(doc: dict) -> Genome:
    return Genome.from_dict(doc["genome"])


# -- the live objects: replay from the start, cached in-process ----------------------------------------

_LIVE: dict[str, tuple[int, LiveAgent, PaperBroker]] = {}


def forget(deployment_id: str | None = None) -> None:
    """Drop the in-process live objects of one deployment (None = all): the next
    step replays from the start, as a restarted worker does."""
    if deployment_id is None:
        _LIVE.clear()
    else:
        _LIVE.pop(deployment_id, None)


def _bars(market: MarketData, first: int, last: int):
    if first > last:
        return
    feed = ReplayFeed(market, start=first)
    for bar in feed:
        if bar.index > last:
            return
        yield bar


def _advance(agent: LiveAgent, broker: PaperBroker, bar: Bar) -> None:
    broker.on_bar(bar)
    for order in agent.on_bar(bar):
        broker.submit(order)


def _live(doc: dict, market: MarketData) -> tuple[LiveAgent, PaperBroker]:
    """The agent and broker after ``doc["last_bar"]`` (cached, else replayed from the start)."""
    dep_id, last = doc["deployment_id"], int(doc["last_bar"])
    _check_market(doc, market)
    cached = _LIVE.get(dep_id)
    if cached is not None and cached[0] == last:  # the bars up to ``last`` never change: reloads may reuse it
        return cached[1], cached[2]
    start = int(doc["start_bar"])
    cfg = _engine_config(doc)
    agent = LiveAgent(_genome(doc), market.head(start), deployment_id=dep_id, allow_short=cfg.allow_short,
                      leverage_cap=float(doc["allocation"]["leverage"]), ignore_exits=True)
    broker = PaperBroker.from_config(float(doc["allocation"]["amount"]), market.symbols, cfg,
                                     leverage_cap=agent.leverage_ceiling)
    for bar in _bars(market, start, last):
        _advance(agent, broker, bar)
    return agent, broker


def _check_market(doc: dict, market: MarketData) -> None:
    if list(market.symbols) != doc["market"]["symbols"]:
        raise DeploymentError(f"market symbols {list(market.symbols)} differ from the deployment's "
                              f"{doc['market']['symbols']}")
    start = int(doc["start_bar"])
    if start >= market.n_bars or _iso(market.timestamps[start]) != doc["market"]["start_time"]:
        raise DeploymentError(f"market row {start} is not the deployment's first bar "
                              f"({doc['market']['start_time']}): pass the market it was started on")


def _fill_dict(f) -> dict:
    return {"seq": f.seq, "client_order_id": f.client_order_id, "bar": f.bar, "time": _iso(f.timestamp),
            "symbol": f.symbol, "kind": f.kind, "qty": f.qty, "price": f.price,
            "notional_units": f.notional_units, "fee_units": f.fee_units, "realized_units": f.realized_units,
            "cash_units": f.cash_units, "position": f.position}


def _broker_state(broker: PaperBroker) -> dict:
    return {"cash_units": broker.cash_units, "fee_units": broker.fee_units,
            "realized_units": broker.realized_units, "positions": broker.positions(),
            "equity": broker.equity(), "breaches": broker.breaches,
            "open_orders": [{"client_order_id": o.client_order_id, "symbol": o.symbol, "target": o.target,
                             "kind": o.kind, "bar": o.bar} for o in broker.open_orders()]}


# -- start ------------------------------------------------------------------------------------------


def start_deployment(store: Store, promotion_id: str, *, market: MarketData, now: Any,
                     start_bar: int | None = None, backtest_bar_variance: float | None = None,
                     rollback_config: RollbackConfig | None = None,
                     engine_config: EngineConfig | None = None) -> dict:
    """Start the deployment of a ``risk_approved`` promotion (idempotent per promotion).

    Args:
        store: the store (promotion, deployment, audit).
        promotion_id: a ``risk_approved`` promotion (or ``deployed`` by an earlier
            call: its deployment is returned).
        market: the bars the deployment trades (history before ``start_bar``).
        now: the start instant (``started_at``; the timer runs from it).
        start_bar: first market row traded (default ``market.warmup``).
        backtest_bar_variance: the per-bar variance of the agent's returns in the
            approving backtest (the variance trigger's reference); default: the
            agent's backtest alone on ``market``'s rows before ``start_bar``.
        rollback_config: rollback settings stored with the deployment.
        engine_config: costs and limits of the paper broker (default the engine's).

    Raises:
        DeploymentError: no such promotion, a zero allocation or gross exposure,
            no backtest variance.
        DeploymentConflict: the promotion is not ``risk_approved``.
    """
    try:
        promo = store.get_promotion(promotion_id)
    except NotFound:
        raise DeploymentError(f"no promotion {promotion_id!r}") from None
    existing = [d for d in store.list_deployments(limit=200) if d["promotion_id"] == promotion_id]
    if promo["status"] == DEPLOYED and existing:
        return existing[0]
    if promo["status"] != RISK_APPROVED:
        raise DeploymentConflict(f"promotion {promotion_id} is {promo['status']}; only a risk_approved "
                                 f"promotion can be deployed")
    alloc = dict(promo.get("allocation") or {})
    amount = float(alloc.get("amount") or 0.0)
    lev = float(alloc.get("leverage") or 0.0)
    gross = float(alloc.get("gross_exposure", amount * lev) or 0.0)
    if not (amount > 0 and gross > 0 and lev > 0):
        raise DeploymentError(
            f"promotion {promotion_id} has a zero gross exposure (allocation {amount:g} x leverage {lev:g}, "
            f"bound by {alloc.get('bound_by', '?')}): nothing to deploy; re-propose when the tier allows exposure")
    cfg = engine_config or EngineConfig()
    rcfg = rollback_config or RollbackConfig()
    start = market.warmup if start_bar is None else int(start_bar)
    if not 0 < start < market.n_bars:
        raise DeploymentError(f"start_bar={start}; allowed: 1..{market.n_bars - 1}")
    genome = Genome.from_dict(promo["genome"])
    if backtest_bar_variance is None:
        backtest_bar_variance = _backtest_variance(market.head(start), genome, cfg, amount)
    if not (backtest_bar_variance and math.isfinite(backtest_bar_variance) and backtest_bar_variance > 0):
        raise DeploymentError(f"backtest_bar_variance={backtest_bar_variance!r}: pass the approving "
                              f"backtest's per-bar variance (> 0)")
    market_key = None
    try:
        market_key = store.get_campaign(promo["campaign_id"]).get("market")
    except Exception:  # noqa: BLE001 - no stored campaign: no policy tier check
        market_key = None
    started = _iso(now)
    dep_id = f"dep-{uuid.uuid4().hex[:12]}"
    units = to_units(amount)
    ledger = _chain([], {"txn_id": "00000000-allocation", "bar": -1, "time": started, "kind": "allocation",
                         "memo": f"reserve the allocation of promotion {promotion_id}",
                         "postings": [_posting("parent:cash", -units),
                                      _posting(f"deployment:{dep_id}:cash", units)]})
    exits = {k: getattr(genome, k) for k in ("stop_loss", "take_profit", "max_hold_bars") if getattr(genome, k)}
    doc = {
        "deployment_id": dep_id, "promotion_id": promotion_id, "status": RUNNING, "last_bar": -1,
        "campaign_id": promo["campaign_id"], "agent_id": promo["agent_id"], "genome": genome.to_dict(),
        "allocation": {**alloc, "amount": amount, "leverage": lev, "gross_exposure": gross,
                       "units": units},
        "engine": {k: getattr(cfg, k) for k in _ENGINE_KEYS},
        "rollback_config": rcfg.to_dict(), "backtest_bar_variance": float(backtest_bar_variance),
        "market": {"symbols": list(market.symbols), "timeframe_s": int(market.timeframe_s),
                   "quote": market.quote, "source": str(market.source), "key": market_key,
                   "start_time": _iso(market.timestamps[start])},
        "start_bar": start, "started_at": started, "expires_at": timer_expiry(started, rcfg),
        "created_at": started, "equity": [], "timestamps": [], "fills": [],
        "broker": {"cash_units": units, "fee_units": 0, "realized_units": 0, "positions": {},
                   "equity": amount, "breaches": 0, "open_orders": []},
        "exits_not_modelled": exits, "ledger": ledger, "ledger_head": ledger[-1]["hash"], "controls": [],
    }
    stored = store.create_deployment(doc)
    if promo["status"] == RISK_APPROVED:
        moved = store.transition_promotion(promotion_id, RISK_APPROVED, DEPLOYED, {
            "user": SYSTEM, "role": SYSTEM, "at": started, "kind": "deploy",
            "deployment_id": stored["deployment_id"],
            "reason": f"deployed as {stored['deployment_id']} with {amount:g} {market.quote}"})
        if not moved and store.get_promotion(promotion_id)["status"] != DEPLOYED:
            raise DeploymentConflict(f"promotion {promotion_id} moved on while deploying")
    if stored["deployment_id"] == dep_id:
        store.record_audit({"kind": "deployment.started", "actor": SYSTEM, "at": started, "details": {
            "deployment_id": dep_id, "promotion_id": promotion_id, "agent_id": promo["agent_id"],
            "allocation": amount, "gross_exposure": gross, "expires_at": stored["expires_at"]}})
    return stored


def _backtest_variance(history: MarketData, genome: Genome, cfg: EngineConfig, amount: float) -> float | None:
    """Per-bar return variance of the agent alone on the traded rows of ``history``."""
    from simulator.cohort import simulate_cohort
    from simulator.metrics.performance import bar_returns

    if history.n_trading_bars < 30:
        return None
    eq = simulate_cohort(history, [genome], bankroll=amount, config=cfg, with_ledger=False).engine.equity[0]
    r = bar_returns(np.asarray(eq, dtype=np.float64), amount)
    return float(np.var(r, ddof=1)) if r.size >= 2 else None


# -- step -------------------------------------------------------------------------------------------


def _policy_tier(store: Store, doc: dict, now: str) -> float | None:
    key = doc["market"].get("key")
    if not key:
        return None
    try:
        from manager.policy import policy_ceilings

        ceil = policy_ceilings(store, key, doc["campaign_id"], [_genome(doc)], now)
        return float(ceil.tiers[ceil.subjects[0]]["tier"])
    except Exception:  # noqa: BLE001 - no lineage decision readable: the trigger is not evaluated
        return None


def _state(doc: dict, store: Store, now: str, hard_stop_active: bool) -> DeploymentState:
    return DeploymentState(
        allocation=float(doc["allocation"]["amount"]), equity=doc["equity"], timestamps=doc["timestamps"],
        started_at=doc["started_at"], backtest_bar_variance=float(doc["backtest_bar_variance"]),
        expires_at=doc.get("expires_at"), policy_tier=_policy_tier(store, doc, now),
        kill_switch=bool(store.kill_switch().get("on")), hard_stop_active=bool(hard_stop_active))


def step(store: Store, deployment_id: str, bar: int, *, market: MarketData, now: Any = None,
         hard_stop_active: bool = False) -> dict:
    """Advance a running deployment to market row ``bar`` and check its rollback triggers.

    Args:
        bar: the market row just closed (>= the deployment's ``start_bar``); the
            bars after ``last_bar`` up to it are processed in order.
        market: the deployment's market (the one it was started on, possibly
            grown by newer bars).
        now: the evaluation instant (default: the close of ``bar``, i.e. its
            open time + the timeframe: deterministic for replays).
        hard_stop_active: a daily hard stop is active now (the manager's).

    Returns:
        ``{"deployment": doc, "processed": [bar indices], "fills": [new fills],
        "verdict": verdict dict | None, "conflict": bool, "rolled_back": bool}``.
        A bar at or before ``last_bar`` (a repeated call) processes nothing.

    Raises:
        DeploymentError: unknown deployment, a market that is not the deployment's,
            a bar outside it.
    """
    doc = _get(store, deployment_id)
    out = {"deployment": doc, "processed": [], "fills": [], "verdict": None, "conflict": False,
           "rolled_back": False}
    if doc["status"] != RUNNING:
        return out
    bar = int(bar)
    last = int(doc["last_bar"])
    start = int(doc["start_bar"])
    if bar <= last:
        return out  # already processed: idempotent
    if not start <= bar < market.n_bars:
        raise DeploymentError(f"bar {bar} outside the deployment's market rows {start}..{market.n_bars - 1}")
    pending = doc.get("pending_rollback")
    if pending:  # a worker died between saving a breaching bar and rolling back: finish its rollback
        out["deployment"] = rollback(store, deployment_id, pending["trigger"], market=market, now=pending["at"],
                                     incidents=pending["incidents"])
        out.update(verdict=pending["verdict"], rolled_back=out["deployment"]["status"] == ROLLED_BACK)
        return out
    agent, broker = _live(doc, market)
    n_fills = len(broker.fills())
    equity, stamps = list(doc["equity"]), list(doc["timestamps"])
    first = max(last + 1, start)
    processed = []
    for b in _bars(market, first, bar):
        _advance(agent, broker, b)
        equity.append(broker.equity())
        stamps.append(_iso(b.timestamp))
        processed.append(int(b.index))
    new_fills = [_fill_dict(f) for f in broker.fills(since=n_fills)]
    ledger = _journal_fills(doc["ledger"], deployment_id, new_fills)
    changes = {"last_bar": bar, "equity": equity, "timestamps": stamps, "ledger": ledger,
               "ledger_head": ledger[-1]["hash"], "fills": [*doc["fills"], *new_fills],
               "broker": _broker_state(broker)}
    at = _iso(now) if now is not None else _iso(market.timestamps[bar] + np.timedelta64(market.timeframe_s, "s"))
    verdict = evaluate(_state({**doc, **changes}, store, at, hard_stop_active),
                       RollbackConfig.from_dict(doc["rollback_config"]), at)
    if verdict.rollback:  # saved with the bars: a restarted worker rolls back before trading on
        changes["pending_rollback"] = {"trigger": verdict.trigger, "at": at, "verdict": verdict.to_dict(),
                                       "incidents": [i.to_dict() for i in verdict.incidents]}
    if not store.update_deployment(deployment_id, last, changes, expected_status=RUNNING):
        forget(deployment_id)  # another worker advanced it: drop what this one computed
        out.update(deployment=_get(store, deployment_id), conflict=True)
        return out
    _LIVE[deployment_id] = (bar, agent, broker)
    doc = {**doc, **changes}
    out.update(deployment=doc, processed=processed, fills=new_fills, verdict=verdict.to_dict())
    if verdict.rollback:
        out["deployment"] = rollback(store, deployment_id, verdict.trigger, market=market, now=at,
                                     incidents=changes["pending_rollback"]["incidents"])
        out["rolled_back"] = out["deployment"]["status"] == ROLLED_BACK
    return out


# -- rollback and manual control --------------------------------------------------------------------


def rollback(store: Store, deployment_id: str, reason: str, *, market: MarketData, actor: Any = SYSTEM,
             notes: str = "", now: Any = None, incidents: list[dict] | None = None) -> dict:
    """Flatten at the last processed close, return the capital to the parent,
    set the deployment and its promotion ``rolled_back``, record the incidents
    and audit it. Idempotent: a rolled-back deployment is returned as it is.

    Args:
        reason: the trigger (``drawdown``, ``kill_switch``, ...) or ``manual``.
        actor: ``"system"`` for an automatic rollback, else a principal
            (``name``, ``role`` in :data:`CONTROL_ROLES`) with ``notes``.
        incidents: the verdict's incidents (their figures); a manual rollback
            records one ``manual`` incident with who and why.

    Returns:
        The deployment as stored afterwards.
    """
    if actor == SYSTEM:
        name, role = SYSTEM, SYSTEM
    else:
        name, role = _need(actor, CONTROL_ROLES, "roll back", notes)
    at = _iso(now or datetime.now(timezone.utc))
    for _ in range(5):
        doc = _get(store, deployment_id)
        if doc["status"] == ROLLED_BACK:
            return _finish_rollback(store, doc) if doc.get("rollback") else doc
        _agent, broker = _live(doc, market)
        last = int(doc["last_bar"])
        n_fills = len(broker.fills())
        if last >= 0 and broker.positions():
            for sym in broker.positions():
                broker.submit(Order(f"{deployment_id}:rollback:{sym}", sym, 0.0, kind="settle", bar=last))
            close = np.asarray(market.close[last], dtype=np.float64)
            broker.on_bar(Bar(index=last, timestamp=market.timestamps[last], symbols=tuple(market.symbols),
                              open=close, high=close, low=close, close=close,
                              volume=np.asarray(market.volume[last]), tradable=np.ones(len(close), dtype=bool)))
        final_units = broker.cash_units
        alloc_units = int(doc["allocation"]["units"])
        fees = broker.fee_units
        new_fills = [_fill_dict(f) for f in broker.fills(since=n_fills)]
        ledger = _journal_fills(doc["ledger"], deployment_id, new_fills)  # the flattening fills
        ledger = _chain(ledger, {
            "txn_id": f"{len(ledger):08d}-return_of_capital", "bar": last, "time": at,
            "kind": "return_of_capital", "memo": f"rollback ({reason}): flattened at the close of bar {last}",
            "postings": [_posting(f"deployment:{deployment_id}:cash", -final_units),
                         _posting("parent:cash", final_units)]})
        summary = {"reason": reason, "at": at, "by": name, "role": role, "notes": notes, "bar": last,
                   "final_equity": final_units / UNITS, "allocation": alloc_units / UNITS,
                   "pnl": (final_units - alloc_units) / UNITS, "fees": fees / UNITS,
                   "flatten": "at the last processed close", "flatten_fills": new_fills,
                   "incidents": incidents or [{"trigger": "manual", "figure": None, "threshold": None, "unit": "",
                                               "sample": "", "at": at,
                                               "detail": {"user": name, "role": role, "notes": notes}}]}
        changes = {"status": ROLLED_BACK, "rollback": summary, "ledger": ledger, "ledger_head": ledger[-1]["hash"],
                   "fills": [*doc["fills"], *new_fills], "broker": _broker_state(broker),
                   "controls": [*doc.get("controls", []), {"action": "rollback", "user": name, "role": role,
                                                             "at": at, "notes": notes, "reason": reason}]}
        forget(deployment_id)  # the broker was flattened in memory
        if store.update_deployment(deployment_id, last, changes, expected_status=doc["status"]):
            break
    else:
        raise DeploymentConflict(f"deployment {deployment_id} kept moving while rolling back")
    return _finish_rollback(store, {**doc, **changes})


def _finish_rollback(store: Store, doc: dict) -> dict:
    """What follows the stored rollback of ``doc``: the promotion moves
    ``deployed -> rolled_back``, the incidents, the audit event, the metric and the
    alert. Idempotent, so a worker killed between the deployment's update and these
    writes is completed by the next call (the promotion's move is conditional; the
    incidents are written when none are stored)."""
    summary = doc["rollback"]
    did, reason, name, role, at = (doc["deployment_id"], summary["reason"], summary["by"], summary["role"],
                                   summary["at"])
    moved = store.transition_promotion(doc["promotion_id"], DEPLOYED, ROLLED_BACK, {
        "user": name, "role": role, "at": at, "kind": "rollback", "reason": reason, "notes": summary["notes"],
        "deployment_id": did})
    if not moved and store.list_incidents(did):
        return _get(store, did)  # finished before
    for inc in summary.get("incidents") or []:
        store.record_incident(did, {**inc, "reason": reason, "final_equity": summary["final_equity"],
                                    "allocation": summary["allocation"], "bar": summary["bar"]})
    _count_rollback(reason)
    store.record_audit({"kind": "deployment.rolled_back", "actor": name, "at": at, "details": {
        "deployment_id": did, "promotion_id": doc["promotion_id"], "reason": reason, "role": role,
        "notes": summary["notes"], "final_equity": summary["final_equity"], "pnl": summary["pnl"],
        "bar": summary["bar"]}})
    notify_rollback(store, doc, summary)  # an alert on the channels; never raises
    return _get(store, did)


def _control(store: Store, deployment_id: str, action: str, name: str, role: str, notes: str, at: str,
             from_status: tuple[str, ...], changes_of) -> dict:
    for _ in range(5):
        doc = _get(store, deployment_id)
        if doc["status"] not in from_status:
            raise DeploymentConflict(f"deployment {deployment_id} is {doc['status']}; {action} needs "
                                     f"{' or '.join(from_status)}")
        changes, details = changes_of(doc)
        changes["controls"] = [*doc.get("controls", []), {"action": action, "user": name, "role": role,
                                                          "at": at, "notes": notes, **details}]
        if store.update_deployment(deployment_id, int(doc["last_bar"]), changes, expected_status=doc["status"]):
            store.record_audit({"kind": f"deployment.{action}", "actor": name, "at": at, "details": {
                "deployment_id": deployment_id, "promotion_id": doc["promotion_id"], "role": role,
                "notes": notes, **details}})
            return _get(store, deployment_id)
    raise DeploymentConflict(f"deployment {deployment_id} kept moving; retry")


def extend(store: Store, deployment_id: str, *, actor: Any, notes: str, days: float, now: Any = None) -> dict:
    """Move the rollback timer ``days`` later (a re-approval; roles :data:`EXTEND_ROLES`)."""
    name, role = _need(actor, EXTEND_ROLES, "extend", notes)
    if not (isinstance(days, (int, float)) and not isinstance(days, bool) and math.isfinite(days) and 0 < days <= 30):
        raise DeploymentInvalid(f"days={days!r}; allowed: a number of days in (0, 30]")
    at = _iso(now or datetime.now(timezone.utc))

    def changes(doc: dict) -> tuple[dict, dict]:
        old = datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00"))
        new = _iso(old + timedelta(days=float(days)))
        return {"expires_at": new}, {"from": doc["expires_at"], "to": new, "days": float(days)}

    return _control(store, deployment_id, "extended", name, role, notes, at, (RUNNING, PAUSED), changes)


def pause(store: Store, deployment_id: str, *, actor: Any, notes: str, now: Any = None) -> dict:
    """Stop stepping a running deployment (positions are kept; :func:`step` skips it)."""
    name, role = _need(actor, tuple(sorted(PERMISSIONS["pause"])), "pause", notes)
    at = _iso(now or datetime.now(timezone.utc))
    return _control(store, deployment_id, "paused", name, role, notes, at, (RUNNING,),
                    lambda doc: ({"status": PAUSED}, {}))


def resume(store: Store, deployment_id: str, *, actor: Any, notes: str, now: Any = None) -> dict:
    """Let a paused deployment step again."""
    name, role = _need(actor, tuple(sorted(PERMISSIONS["pause"])), "resume", notes)
    at = _iso(now or datetime.now(timezone.utc))
    return _control(store, deployment_id, "resumed", name, role, notes, at, (PAUSED,),
                    lambda doc: ({"status": RUNNING}, {}))


def get_deployment(store: Store, deployment_id: str) -> dict:
    """The deployment with its incidents (``incidents``)."""
    doc = _get(store, deployment_id)
    return {**doc, "incidents": store.list_incidents(deployment_id)}


def list_deployments(store: Store, *, status: str | None = None, limit: int = 50, offset: int = 0) -> list[dict]:
    """Deployments, newest first (whole documents)."""
    return store.list_deployments(status=status, limit=limit, offset=offset)


#: what a listing leaves out of a deployment (they grow with every bar): read them with the deployment
HEAVY_FIELDS = ("ledger", "equity", "timestamps", "fills", "pending_rollback")


def deployment_brief(doc: dict) -> dict:
    """A deployment without :data:`HEAVY_FIELDS`, with ``fills_count`` and
    ``ledger_transactions`` instead (what a listing shows)."""
    out = {k: v for k, v in doc.items() if k not in HEAVY_FIELDS}
    out["fills_count"] = len(doc.get("fills") or [])
    out["ledger_transactions"] = len(doc.get("ledger") or [])
    return out


# -- the beat tick: start the approved promotions, advance the running deployments ---------------------

#: default cap on the bars one tick processes per deployment (a day of 5-minute bars): a
#: deployment far behind its data catches up over several ticks, never in one unbounded step
MAX_BARS_PER_TICK = 288


def _count_rollback(trigger: str) -> None:
    """One rollback (``cohortlab_rollbacks_total{trigger}``); no-op without prometheus-client."""
    try:
        from manager import metrics
    except ImportError:  # the base install has no prometheus-client
        return
    metrics.record_rollback(trigger)


def deployment_market(doc: dict, *, end: Any = None) -> MarketData:
    """Reload the bars a deployment trades from its recorded source folder
    (``doc["market"]["source"]``), rows aligned as when it started: row
    ``start_bar`` is the first traded bar. ``end`` (exclusive bar-open time)
    bounds the load; None = through the data's last bar.

    Raises:
        DeploymentError: the source is not a data folder (a synthetic market),
            or the data no longer holds the deployment's first bar at its row.
    """
    from simulator.data import MarketDataError, load_market

    m = doc["market"]
    src = m.get("source")
    if not src or src == "SYNTHETIC":
        raise DeploymentError(f"deployment {doc['deployment_id']} traded a market without a data folder "
                              f"({src!r}): the tick cannot reload its bars")
    try:
        market = load_market(src, symbols=m["symbols"], start=m["start_time"], end=end,
                             warmup_bars=int(doc["start_bar"]), quote=m.get("quote"))
    except MarketDataError as exc:
        raise DeploymentError(f"deployment {doc['deployment_id']}: its bars cannot be loaded: {exc}") from None
    _check_market(doc, market)
    return market


def _evidence_end(campaign: dict) -> datetime | None:
    """Midnight after the last day the campaign's evidence used (its holdout day, else its last day)."""
    report = campaign.get("report") or {}
    dates = [d.get("date") for d in report.get("days") or []] + [(report.get("holdout") or {}).get("date")]
    dates = [d for d in dates if d]
    if not dates:
        return None
    return _ts(max(dates)) + timedelta(days=1)


def _approval_market(store: Store, promo: dict, now: datetime, data_dir: str | None) -> tuple[MarketData, int]:
    """The market a newly approved promotion deploys on and its first traded row.

    The bars come from the campaign's data folder (``source.data``, else
    ``data_dir``) and symbols. The first traded bar is the bar open at ``now`` when
    the data reaches it (a live feed), else -- historical data, replayed -- the
    first bar after the campaign's evidence (the day after its holdout day). The
    history before it holds the campaign's warm-up plus one day (the approving
    backtest's variance is the agent's on that day)."""
    from simulator.data import MarketDataError, load_market

    try:
        campaign = store.get_campaign(promo["campaign_id"])
    except NotFound:
        raise DeploymentError(f"promotion {promo['promotion_id']}: no stored campaign "
                              f"{promo['campaign_id']!r}, so no market to deploy on") from None
    source = campaign.get("source") or {}
    data = source.get("data") or data_dir
    if not data:
        raise DeploymentError(f"promotion {promo['promotion_id']}: the campaign names no data folder and "
                              f"COHORTLAB_DATA_DIR is not set")
    after = _evidence_end(campaign)
    if after is None:
        raise DeploymentError(f"promotion {promo['promotion_id']}: campaign {promo['campaign_id']} lists no days")
    symbols, quote = source.get("symbols"), source.get("quote")
    warmup = int(campaign.get("warmup_bars") or 200)
    try:
        ahead = load_market(data, symbols=symbols, start=after, quote=quote)
        if ahead.n_bars == 0:
            raise DeploymentError(f"promotion {promo['promotion_id']}: no bars after {_iso(after)} in {data}")
        tf = timedelta(seconds=int(ahead.timeframe_s))
        live = [i for i, t in enumerate(ahead.timestamps) if _ts(t) + tf > now]
        first = _ts(ahead.timestamps[live[0] if live else 0])
        market = load_market(data, symbols=symbols, start=first - timedelta(days=1), end=first + timedelta(days=1),
                             warmup_bars=warmup, quote=quote)
    except MarketDataError as exc:
        raise DeploymentError(f"promotion {promo['promotion_id']}: {exc}") from None
    rows = [i for i, t in enumerate(market.timestamps) if _ts(t) == first]
    return market, rows[0]


def start_approved(store: Store, now: Any, *, data_dir: str | None = None,
                   rollback_config: RollbackConfig | None = None) -> dict:
    """Start a deployment for every ``risk_approved`` promotion (the Day-3 pipeline's
    "on risk_approved, the deployment starts without further action").

    Idempotent: the store keeps one deployment per promotion and
    :func:`start_deployment` returns the existing one, so a retried or
    concurrent tick never reserves twice. A promotion that cannot start (no
    campaign, no data, a zero exposure) is reported in ``errors`` and the others
    still start.

    Returns:
        ``{"started": [deployment ids], "errors": {promotion id: message}}``.
    """
    at = _ts(now)
    started, errors = [], {}
    for promo in list(offset_pages(store.list_promotions, status=RISK_APPROVED)):
        pid = promo["promotion_id"]
        try:
            market, first = _approval_market(store, promo, at, data_dir)
            # the deployment's clock is its bars': it starts at its first bar's open (on a live
            # feed the bar open at ``now``; on a replay the bar after the evidence), so the
            # rollback timer and the triggers run in bar time, as step evaluates them
            doc = start_deployment(store, pid, market=market, now=_iso(market.timestamps[first]),
                                   start_bar=first, rollback_config=rollback_config)
            started.append(doc["deployment_id"])
        except DeploymentError as exc:
            errors[pid] = str(exc)
    return {"started": started, "errors": errors}


def advance_all(store: Store, now: Any, *, max_bars: int = MAX_BARS_PER_TICK,
                hard_stop_active: bool = False) -> dict:
    """Step every ``running`` deployment to the last bar closed by ``now`` in its
    data (:func:`deployment_market`: a replay of its data folder), at most
    ``max_bars`` bars per deployment per call; :func:`step` rolls back on a
    trigger. The triggers are evaluated at each bar's close (a replay of old bars
    is judged on its own clock, so the rollback timer runs in bar time).

    Idempotent and restart-safe: a deployment already at its last available bar
    is not stepped; two ticks racing on one deployment are resolved by the
    store's conditional update (one wins, the other reports a conflict).

    Returns:
        ``{"advanced": {id: {"from", "to", "bars", "fills", "data_end"}},
        "rolled_back": {id: trigger}, "conflicts": [ids], "errors": {id: message}}``;
        ``data_end`` is True when the data holds no bar after ``to`` yet (a
        replay that reached the end of its folder, or a live feed not yet
        past ``now``).
    """
    if not (isinstance(max_bars, int) and max_bars > 0):
        raise DeploymentError(f"max_bars={max_bars!r}; allowed: an integer > 0")
    at = _ts(now)
    out: dict = {"advanced": {}, "rolled_back": {}, "conflicts": [], "errors": {}}
    for doc in list(offset_pages(store.list_deployments, status=RUNNING)):  # rollbacks move them
        did = doc["deployment_id"]
        try:
            start, last = int(doc["start_bar"]), int(doc["last_bar"])
            tf = timedelta(seconds=int(doc["market"]["timeframe_s"]))
            first_time = _ts(doc["market"]["start_time"])
            if first_time + tf > at:
                continue  # its first bar has not closed yet
            cap = max(last, start - 1) + max_bars  # the last row this call may reach
            market = deployment_market(doc, end=min(first_time + (cap - start + 2) * tf, at))
            closed = [i for i in range(start, market.n_bars) if _ts(market.timestamps[i]) + tf <= at]
            if not closed:
                continue
            target = min(closed[-1], cap)
            if target <= last:
                continue
            res = step(store, did, target, market=market, hard_stop_active=hard_stop_active)
            if res["conflict"]:
                out["conflicts"].append(did)
                continue
            out["advanced"][did] = {"from": last, "to": target, "bars": len(res["processed"]),
                                    "fills": len(res["fills"]), "data_end": target == market.n_bars - 1}
            if res["rolled_back"]:
                out["rolled_back"][did] = (res["verdict"] or {}).get("trigger")
        except DeploymentError as exc:
            out["errors"][did] = str(exc)
    return out
