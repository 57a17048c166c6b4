"""The broker port and its paper adapter, in the engine's vocabulary.

Vocabulary (as :mod:`simulator.engine`): money in the market's quote currency,
kept as int *units* of 1e-8 (:data:`simulator.kernel.UNITS`); fees in basis
points of notional; every fill at the open of the next tradable bar of its
symbol with adverse slippage (buys pay ``open x (1 + slip)``, sells receive
``open x (1 - slip)``).

An :class:`Order` is a *target*, as the engine's pending orders are: the signed
position value the account should hold in a symbol, as a fraction of its equity
at the fill open (``signal x weight``, see :func:`simulator.cohort.build_signals`).
The venue turns it into a quantity when it fills, exactly as the kernel does::

    tq = target * max(equity_at_open, 0) / (open * (1 + slip) * (1 + fee))

so a full entry spends that much including costs. An exchange adapter without
the next open would size on its last price instead (the only place it may differ).

:class:`PaperBroker` is one engine agent trading alone: the kernel's own compiled
sizing and parent risk gate (:func:`simulator.kernel._open_orders` with N = 1:
the account's leverage ceiling, then the per-symbol cap and the gross ceiling on
the account's own equity — a deployment's sub-account is its own parent), and
the kernel's own fill booking (:func:`simulator.kernel._trade`:
flips split in two, fee rounding, cost basis, realised PnL in 1e-8 units). Over
the same bars and targets it reproduces :func:`simulator.engine.run_engine` of
that agent with its allocation = the whole bankroll (``tests/simulator/test_broker.py``).

Not modelled by the paper broker (the engine does them; a deployment's rollback
triggers stand in): intrabar stop-loss / take-profit, max-holding exits,
maintenance-margin liquidation, the daily hard stop and end-of-run settlement.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from simulator import kernel
from simulator.engine import EngineConfig, to_units
from simulator.feed import Bar
from simulator.kernel import KIND_NAMES, UNITS

__all__ = ["Broker", "BrokerError", "Fill", "Order", "PaperBroker"]

_KIND_CODE = {name: i for i, name in enumerate(KIND_NAMES)}

#: order statuses
PENDING, FILLED, DONE, CANCELLED, REPLACED = "pending", "filled", "done", "cancelled", "replaced"


class BrokerError(ValueError):
    """Bad order or broker settings (unknown symbol, target out of range, a client
    order id reused for a different order, unknown order id)."""


@dataclass(frozen=True)
class Order:
    """A target-exposure order for one symbol.

    Attributes:
        client_order_id: the caller's idempotency key, unique per intended order,
            e.g. ``f"{deployment_id}:{bar_index}:{symbol}"``; resubmitting it
            returns the first order and never fills twice.
        symbol: file-form symbol of the broker's list (``ETH_BTC``).
        target: signed target position value as a fraction of account equity at
            the fill open (``signal x weight``); 0 = flat. Finite.
        kind: fill kind recorded on its fills, one of
            :data:`simulator.kernel.KIND_NAMES` (``signal`` for strategy orders,
            ``hard_stop`` / ``liquidation`` for flattening exits that the gate
            never scales).
        bar: bar index at whose close the order was decided (informational).
        order_id, status: set by the broker (``pending`` until the next tradable
            open of the symbol, then ``filled``, or ``done`` when the account
            already held the target; ``cancelled``; ``replaced`` by a newer order
            for the same symbol, as the engine's pending order is overwritten by
            a newer signal).
    """

    client_order_id: str
    symbol: str
    target: float
    kind: str = "signal"
    bar: int = -1
    order_id: str = ""
    status: str = ""


@dataclass(frozen=True)
class Fill:
    """One execution, with the kernel's booking (money in int 1e-8 units).

    Attributes:
        seq: 0-based fill sequence number of the broker.
        order_id, client_order_id: the order it executes.
        bar: bar index (the feed's :attr:`~simulator.feed.Bar.index`) of the open.
        timestamp: that bar's open time (datetime64[ns] UTC).
        symbol, kind: file-form symbol, fill kind name.
        qty: signed base quantity (+ bought, - sold).
        price: fill price after slippage, quote currency.
        notional_units, fee_units, realized_units, cash_units: |qty| x price,
            the fee, realised PnL and the cash change, int 1e-8 units.
        position: base quantity held after the fill.
    """

    seq: int
    order_id: str
    client_order_id: str
    bar: int
    timestamp: np.datetime64
    symbol: str
    kind: str
    qty: float
    price: float
    notional_units: int
    fee_units: int
    realized_units: int
    cash_units: int
    position: float

    @property
    def fee(self) -> float:
        """Fee in the quote currency."""
        return self.fee_units / UNITS


class Broker(ABC):
    """Port: an account at a venue, in the engine's vocabulary (see the module docstring).

    Adapters: :class:`PaperBroker` (simulated, fills on :meth:`on_bar`); an
    exchange adapter (sandbox first) implements the same methods and makes
    :meth:`on_bar` a poll of its fills.
    """

    @abstractmethod
    def submit(self, order: Order) -> str:
        """Place ``order``; returns its order id. Idempotent per
        ``client_order_id``: a resubmission returns the same id and changes nothing.

        Raises:
            BrokerError: unknown symbol, bad target or kind, or the client id was
                used for a different order.
        """

    @abstractmethod
    def cancel(self, order_id: str) -> bool:
        """Cancel a pending order; True if it was pending, False if it had already
        filled, been replaced or cancelled. Raises BrokerError for an unknown id."""

    @abstractmethod
    def order(self, order_id: str) -> Order:
        """The order with its current status. Raises BrokerError for an unknown id."""

    @abstractmethod
    def positions(self) -> dict[str, float]:
        """``{symbol: signed base quantity}`` of the non-zero positions."""

    @abstractmethod
    def balances(self) -> dict[str, float]:
        """``{"cash": ..., "equity": ...}`` in the quote currency; equity is cash plus
        positions marked at the last close seen."""

    @abstractmethod
    def fills(self, since: int | None = None) -> list[Fill]:
        """Fills in execution order; ``since`` = first fill ``seq`` wanted (None = all)."""

    def on_bar(self, bar: Bar) -> list[Fill]:
        """Advance the venue to ``bar``: fill what is due at its open, mark at its
        close; returns the new fills. Exchange adapters poll here instead."""
        return []


class PaperBroker(Broker):
    """A simulated account filling against the bar feed with the engine's cost model.

    Args:
        cash: starting cash in the quote currency (> 0), kept as int 1e-8 units
            (``to_units``, half up, as the engine's bankroll).
        fee_bps: fee per fill, basis points of notional.
        slippage_bps: adverse slippage, basis points of price.
        symbols: the feed's symbols, in its column order (bars must match).
        leverage_cap: the account's gross-exposure ceiling, multiple of its equity
            (the engine's per-agent leverage ceiling: the genome's ``leverage``,
            or ``min(gene, policy cap)``); inf = none.
        max_gross_leverage, max_symbol_exposure: the parent limits of
            :class:`~simulator.engine.EngineConfig`, applied to the account's own
            equity.
        allow_short: accept negative targets (otherwise they raise BrokerError).

    Pending orders fill at the open of the next bar whose ``tradable`` is True for
    their symbol, all due orders together through the kernel's gate (exposure
    increases scaled pro rata; reductions always pass; a scaled order counts in
    :attr:`breaches`), then in symbol order. Marking happens at the bar's close.
    """

    def __init__(self, cash: float, fee_bps: float, slippage_bps: float, symbols: Sequence[str], *,
                 leverage_cap: float = math.inf, max_gross_leverage: float = 1.0,
                 max_symbol_exposure: float = 1.0, allow_short: bool = False) -> None:
        cfg = EngineConfig(fee_bps=fee_bps, slippage_bps=slippage_bps, max_gross_leverage=max_gross_leverage,
                           max_symbol_exposure=max_symbol_exposure, allow_short=allow_short)  # validates
        if not (isinstance(cash, (int, float)) and math.isfinite(cash) and cash > 0):
            raise BrokerError(f"cash={cash!r}; allowed: a positive amount of the quote currency")
        if not (isinstance(leverage_cap, (int, float)) and leverage_cap >= 0 and not math.isnan(leverage_cap)):
            raise BrokerError(f"leverage_cap={leverage_cap!r}; allowed: >= 0 (multiple of equity)")
        syms = tuple(symbols)
        if not syms or len(set(syms)) != len(syms):
            raise BrokerError(f"symbols={list(syms)!r}; allowed: a non-empty list without repeats")
        self.symbols = syms
        self.config = cfg
        self.slip = cfg.slippage_bps / 1e4
        self.fee_rate = cfg.fee_bps / 1e4
        self.leverage_cap = float(leverage_cap)
        S = len(syms)
        self._col = {s: i for i, s in enumerate(syms)}
        # the kernel's state arrays for one agent (a = 0)
        self._cash = np.array([to_units(float(cash))], dtype=np.int64)
        self._qty = np.zeros((1, S))
        self._basis = np.zeros((1, S), dtype=np.int64)
        self._realized = np.zeros(1, dtype=np.int64)
        self._fees = np.zeros(1, dtype=np.int64)
        self._entry = np.zeros((1, S), dtype=np.int64)
        self._fi = np.zeros((4, 9), dtype=np.int64)  # scratch: at most 2 fills per trade
        self._ff = np.zeros((4, 3))
        # the kernel's order arrays and gate scratch for one agent (see kernel._open_orders)
        self._lev_cap = np.array([self.leverage_cap])
        self._pend_target = np.zeros((1, S))
        self._pend_kind = np.full((1, S), -1, dtype=np.int64)
        self._agent_pend = np.zeros(1, dtype=np.int64)
        self._ws_agent = np.zeros((5, 1))
        self._ws_sym = np.zeros((4, S))
        self._ord_a = np.zeros(S, dtype=np.int64)
        self._ord_s = np.zeros(S, dtype=np.int64)
        self._ord_f = np.zeros((5, S))
        self.initial_cash_units = int(self._cash[0])
        self.breaches = 0
        self._orders: dict[str, Order] = {}
        self._by_client: dict[str, str] = {}
        self._pending: dict[int, str] = {}  # symbol column -> order id
        self._fills: list[Fill] = []
        self._mark_px: np.ndarray | None = None

    @classmethod
    def from_config(cls, cash: float, symbols: Sequence[str], config: EngineConfig, *,
                    leverage_cap: float = math.inf) -> "PaperBroker":
        """A paper account with the costs and limits of an engine ``config``."""
        return cls(cash, config.fee_bps, config.slippage_bps, symbols, leverage_cap=leverage_cap,
                   max_gross_leverage=config.max_gross_leverage,
                   max_symbol_exposure=config.max_symbol_exposure, allow_short=config.allow_short)

    # ------------------------------------------------------------------ orders
    def submit(self, order: Order) -> str:
        known = self._by_client.get(order.client_order_id)
        if known is not None:
            first = self._orders[known]
            if (first.symbol, first.target, first.kind) != (order.symbol, float(order.target), order.kind):
                raise BrokerError(
                    f"client order id {order.client_order_id!r} was already used for {first.symbol} "
                    f"target={first.target} kind={first.kind}; refusing a different order under it")
            return known
        if not order.client_order_id:
            raise BrokerError("client_order_id is empty; give every order an idempotency key")
        if order.symbol not in self._col:
            raise BrokerError(f"unknown symbol {order.symbol!r}; this broker trades {', '.join(self.symbols)}")
        tgt = float(order.target)
        if not math.isfinite(tgt):
            raise BrokerError(f"target={order.target!r}; allowed: a finite fraction of equity")
        if tgt < 0 and not self.config.allow_short:
            raise BrokerError(f"target={tgt} is short but this account is long-only (allow_short=False)")
        if order.kind not in KIND_NAMES:
            raise BrokerError(f"kind={order.kind!r}; allowed: {', '.join(KIND_NAMES)}")
        oid = f"paper-{len(self._orders) + 1}"
        s = self._col[order.symbol]
        old = self._pending.get(s)
        if old is not None:  # a newer target for the symbol overwrites the pending one (as the kernel)
            self._orders[old] = replace(self._orders[old], status=REPLACED)
        self._orders[oid] = replace(order, target=tgt, order_id=oid, status=PENDING)
        self._by_client[order.client_order_id] = oid
        self._pending[s] = oid
        return oid

    def cancel(self, order_id: str) -> bool:
        o = self.order(order_id)
        if o.status != PENDING:
            return False
        self._orders[order_id] = replace(o, status=CANCELLED)
        del self._pending[self._col[o.symbol]]
        return True

    def order(self, order_id: str) -> Order:
        try:
            return self._orders[order_id]
        except KeyError:
            raise BrokerError(f"unknown order id {order_id!r}") from None

    def open_orders(self) -> list[Order]:
        """Pending orders in symbol order."""
        return [self._orders[self._pending[s]] for s in sorted(self._pending)]

    # ------------------------------------------------------------------ account
    def positions(self) -> dict[str, float]:
        return {sym: float(self._qty[0, s]) for s, sym in enumerate(self.symbols) if self._qty[0, s] != 0.0}

    @property
    def cash_units(self) -> int:
        """Cash in int 1e-8 units."""
        return int(self._cash[0])

    @property
    def fee_units(self) -> int:
        """Fees paid so far, int 1e-8 units."""
        return int(self._fees[0])

    @property
    def realized_units(self) -> int:
        """Realised PnL so far (before fees), int 1e-8 units."""
        return int(self._realized[0])

    def equity(self, prices: np.ndarray | None = None) -> float:
        """Cash + sum of qty x price (``(S,)`` prices; default the last close seen,
        or cash alone before any bar), summed in the kernel's order."""
        px = self._mark_px if prices is None else np.asarray(prices, dtype=np.float64)
        e = self._cash[0] / UNITS
        if px is None:
            return float(e)
        for s in range(len(self.symbols)):
            q = self._qty[0, s]
            if q != 0.0:
                e += q * px[s]
        return float(e)

    def balances(self) -> dict[str, float]:
        return {"cash": self._cash[0] / UNITS, "equity": self.equity()}

    def fills(self, since: int | None = None) -> list[Fill]:
        return list(self._fills if since is None else self._fills[max(int(since), 0):])

    # ------------------------------------------------------------------ the venue
    def on_bar(self, bar: Bar) -> list[Fill]:
        """Fill the pending orders due at ``bar``'s open (the kernel's step 1 for
        one agent), then mark at its close.

        Raises:
            BrokerError: the bar's symbols differ from the broker's.
        """
        if tuple(bar.symbols) != self.symbols:
            raise BrokerError(f"bar symbols {list(bar.symbols)} differ from the broker's {list(self.symbols)}")
        n0 = len(self._fills)
        if self._pending:
            self._fill_open(bar)
        self._mark_px = np.array(bar.close, dtype=np.float64)
        return self._fills[n0:]

    def _fill_open(self, bar: Bar) -> None:
        """The kernel's step 1 for this one account: the pending orders become the
        kernel's ``(1, S)`` order arrays, :func:`simulator.kernel._open_orders` sizes
        and gates them (the same compiled code as :func:`~simulator.kernel.run_kernel`,
        N = 1, no unallocated cash), then each is filled with
        :func:`simulator.kernel._trade` in symbol order."""
        o = np.asarray(bar.open, dtype=np.float64).reshape(1, -1)
        tradable = np.asarray(bar.tradable, dtype=np.bool_).reshape(1, -1)
        pending = self._pend_target
        pend_kind = self._pend_kind
        pend_kind.fill(-1)
        for s, oid in self._pending.items():
            od = self._orders[oid]
            pending[0, s] = od.target
            pend_kind[0, s] = _KIND_CODE[od.kind]
        self._agent_pend[0] = len(self._pending)
        breaches = np.zeros(1, dtype=np.int64)
        n_ord = kernel._open_orders(0, o, tradable, self.slip, self.fee_rate, self._lev_cap,
                                    float(self.config.max_symbol_exposure), float(self.config.max_gross_leverage),
                                    np.int64(0), self._cash, self._qty, pending, pend_kind, self._agent_pend,
                                    breaches, self._ws_agent, self._ws_sym, self._ord_a, self._ord_s, self._ord_f)
        self.breaches += int(breaches[0])
        qty = self._qty
        for k in range(int(n_ord)):
            s = int(self._ord_s[k])
            oid = self._pending.pop(s)
            od = self._orders[oid]
            dq = self._ord_f[0, k] - qty[0, s]
            if dq == 0.0:
                self._orders[oid] = replace(od, status=DONE)
                continue
            px = kernel._exit_price(-dq, o[0, s], self.slip)
            n = kernel._trade(0, s, dq, px, int(bar.index), int(pend_kind[0, s]), self.fee_rate, qty, self._basis,
                              self._cash, self._realized, self._fees, self._entry, self._fi, self._ff, 0, 4)
            for j in range(int(n)):
                fi, ff = self._fi[j], self._ff[j]
                self._fills.append(Fill(
                    seq=len(self._fills), order_id=oid, client_order_id=od.client_order_id, bar=int(fi[0]),
                    timestamp=bar.timestamp, symbol=self.symbols[s], kind=KIND_NAMES[int(fi[3])],
                    qty=float(ff[0]), price=float(ff[1]), notional_units=int(fi[4]), fee_units=int(fi[5]),
                    realized_units=int(fi[6]), cash_units=int(fi[8]), position=float(ff[2])))
            self._orders[oid] = replace(od, status=FILLED)
