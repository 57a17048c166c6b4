"""The lockstep engine: N agents on one parent bankroll, advancing bar by bar.

:func:`run_engine` validates inputs, runs the compiled kernel
(:mod:`simulator.kernel`) and returns an :class:`EngineResult` with equity
curves, fills and the final state the ledger reconciles against.

Timing convention (no lookahead): the signal of bar t is read at its close and
the order fills at the open of bar t+1 with adverse slippage; fees are a
fraction of notional. See :mod:`simulator.kernel` for the per-bar steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulator import kernel
from simulator.kernel import KIND_NAMES, UNITS
from simulator.market import MarketData


class EngineError(ValueError):
    """Engine inputs out of range; the message names the value and what is allowed."""


@dataclass(frozen=True)
class EngineConfig:
    """Costs and parent risk limits of one run.

    Attributes:
        fee_bps: fee per fill, basis points of notional (10 = 0.1 %).
        slippage_bps: adverse slippage on every fill, basis points of price.
        max_gross_leverage: parent gross-exposure ceiling, multiple of parent
            equity (sum over agents and symbols of |position value|).
        max_symbol_exposure: per-symbol cap, fraction of parent equity
            (sum over agents of |position value| in that symbol).
        maintenance_margin: an agent whose equity falls to this fraction of its
            gross position value is liquidated at the close.
        allow_short: allow negative targets (short positions); long-only otherwise.
        settle: close every position at the last close and return all agent cash
            to the parent at the end of the run.
        daily_hard_stop: daily hard stop, fraction of the parent equity at the
            start of the UTC day (its last close of the previous day in the
            traded window; the bankroll on the first day), in [0, 1); 0 = off.
            When parent equity at a close is at or below ``(1 - daily_hard_stop)``
            x that reference, every agent is flattened at the next open (fill
            kind ``hard_stop``) and takes no new exposure until the UTC day
            changes (0.05 = a 5 % intraday loss).
    """

    fee_bps: float = 10.0
    slippage_bps: float = 5.0
    max_gross_leverage: float = 1.0
    max_symbol_exposure: float = 1.0
    maintenance_margin: float = 0.05
    allow_short: bool = False
    settle: bool = False
    daily_hard_stop: float = 0.0

    def __post_init__(self) -> None:
        checks = (
            ("fee_bps", self.fee_bps, 0.0, 1000.0),
            ("slippage_bps", self.slippage_bps, 0.0, 1000.0),
            ("max_gross_leverage", self.max_gross_leverage, 0.0, 100.0),
            ("max_symbol_exposure", self.max_symbol_exposure, 0.0, 100.0),
            ("maintenance_margin", self.maintenance_margin, 0.0, 1.0),
        )
        for name, value, lo, hi in checks:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
                raise EngineError(f"{name}={value!r} is outside [{lo}, {hi}]")
        hs = self.daily_hard_stop
        if not (isinstance(hs, (int, float)) and math.isfinite(hs) and 0.0 <= hs < 1.0):
            raise EngineError(f"daily_hard_stop={hs!r} is outside [0, 1) (fraction of the parent equity "
                              "at the start of the UTC day; 0 = off)")


@dataclass(frozen=True)
class AgentArrays:
    """Per-agent risk settings, one row per agent (N agents, S symbols).

    Attributes:
        weight: ``(N, S) float64`` target position value at signal +/-1 as a
            fraction of agent equity; 0 for symbols the agent does not trade.
        leverage: ``(N,)`` agent gross-exposure ceiling, multiple of agent equity.
        stop_loss: ``(N,)`` fraction of entry price (0 = off).
        take_profit: ``(N,)`` fraction of entry price (0 = off).
        max_hold_bars: ``(N,) int64`` bars (0 = off).
        allocation: ``(N,) int64`` initial agent cash in units of 1e-8 quote currency.
    """

    weight: np.ndarray
    leverage: np.ndarray
    stop_loss: np.ndarray
    take_profit: np.ndarray
    max_hold_bars: np.ndarray
    allocation: np.ndarray


@dataclass
class EngineResult:
    """Everything one engine run produced.

    Curves cover the traded bars only (``market.warmup .. T-1``, TT of them).
    Money in ``*_units`` arrays is int64 units of 1e-8 quote currency.

    Attributes:
        timestamps: ``(TT,) datetime64[ns]`` traded bar times.
        equity: ``(N, TT)`` agent value at each close (equity plus capital already
            returned to the parent), quote currency.
        position_value: ``(N, TT)`` gross |qty x close| of open positions.
        parent_equity: ``(TT,)`` unallocated cash + sum of agent equities.
        fills: dict of ``(F,)`` arrays — ``bar`` (index into the market),
            ``agent``, ``symbol`` (-1 for capital movements), ``kind`` (index
            into :data:`simulator.kernel.KIND_NAMES`), ``qty`` (signed),
            ``price``, ``notional_units``, ``fee_units``, ``realized_units``,
            ``basis_units`` (cost-basis change), ``cash_units`` (cash change),
            ``position`` (quantity held after the fill).
        cash_units, qty, basis_units: final agent cash ``(N,)``, quantities and
            signed cost basis ``(N, S)``.
        unallocated_units: final parent cash outside the agents.
        allocation_units, bankroll_units: initial agent cash ``(N,)``, bankroll.
        breaches: ``(N,)`` orders clipped or rejected by the parent gate.
        liquidated: ``(N,) bool``.
        realized_units, fee_units, returned_units: ``(N,)`` totals.
        hard_stop_bars: ``(H,) int64`` market bar indices whose close triggered
            the daily hard stop (at most one per UTC day; empty when it never
            fired or is off); the flatten fills follow at the next open.
    """

    timestamps: np.ndarray
    equity: np.ndarray
    position_value: np.ndarray
    parent_equity: np.ndarray
    fills: dict
    cash_units: np.ndarray
    qty: np.ndarray
    basis_units: np.ndarray
    unallocated_units: int
    allocation_units: np.ndarray
    bankroll_units: int
    breaches: np.ndarray
    liquidated: np.ndarray
    realized_units: np.ndarray
    fee_units: np.ndarray
    returned_units: np.ndarray
    hard_stop_bars: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_agents(self) -> int:
        """N."""
        return int(self.equity.shape[0])

    def kind_names(self) -> list[str]:
        """Fill kinds as names, ``(F,)``."""
        return [KIND_NAMES[k] for k in self.fills["kind"]]


def to_units(amount: float) -> int:
    """Quote-currency amount -> int units of 1e-8 (half up)."""
    return int(math.floor(amount * UNITS + 0.5))


def run_engine(
    market: MarketData,
    signals: np.ndarray,
    agents: AgentArrays,
    *,
    bankroll_units: int,
    config: EngineConfig,
) -> EngineResult:
    """Run N agents in lockstep over the traded bars of ``market``.

    Args:
        market: bars; trading starts at ``market.warmup``.
        signals: ``(N, T, S) float64`` targets in [-1, 1] per agent (see
            :meth:`simulator.strategies.base.Strategy.targets`); negative values are
            clipped to 0 unless ``config.allow_short``.
        agents: per-agent risk settings and allocations.
        bankroll_units: parent bankroll in 1e-8 units; what is not allocated stays
            as unallocated parent cash (the reserve).
        config: costs and parent limits.

    Returns:
        :class:`EngineResult`.

    Raises:
        EngineError: shapes disagree, allocations exceed the bankroll, a risk
            setting is out of range, or there are no bars to trade.
    """
    T, S = market.close.shape
    sig = np.asarray(signals, dtype=np.float64)
    if sig.ndim != 3 or sig.shape[1:] != (T, S):
        raise EngineError(f"signals have shape {sig.shape}, expected (N, {T}, {S})")
    N = sig.shape[0]
    if N == 0:
        raise EngineError("no agents to run")
    if market.n_trading_bars < 1:
        raise EngineError("no bars to trade after the warm-up")
    sig = np.ascontiguousarray(sig)
    if not kernel.signals_in_range(sig):
        raise EngineError("signals must be finite and within [-1, 1]")
    weight = np.ascontiguousarray(agents.weight, dtype=np.float64)
    if weight.shape != (N, S) or np.any(weight < 0):
        raise EngineError(f"weight must be non-negative with shape ({N}, {S})")
    vecs = {}
    for name in ("leverage", "stop_loss", "take_profit"):
        v = np.ascontiguousarray(getattr(agents, name), dtype=np.float64)
        if v.shape != (N,) or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise EngineError(f"{name} must be {N} finite non-negative values")
        vecs[name] = v
    max_hold = np.ascontiguousarray(agents.max_hold_bars, dtype=np.int64)
    alloc = np.ascontiguousarray(agents.allocation, dtype=np.int64)
    if max_hold.shape != (N,) or np.any(max_hold < 0):
        raise EngineError("max_hold_bars must be N non-negative integers")
    if alloc.shape != (N,) or np.any(alloc < 0):
        raise EngineError("allocation must be N non-negative amounts")
    if int(alloc.sum()) > int(bankroll_units):
        raise EngineError(
            f"allocations {alloc.sum() / UNITS} exceed the bankroll {bankroll_units / UNITS}"
        )
    unalloc = int(bankroll_units) - int(alloc.sum())

    cap = max(4096, N * S * 64)
    day = np.ascontiguousarray(
        np.asarray(market.timestamps).astype("datetime64[ns]").astype(np.int64) // 86_400_000_000_000,
        dtype=np.int64)
    out = kernel.run_kernel(
        market.open, market.high, market.low, market.close, market.tradable, sig, weight,
        vecs["leverage"], vecs["stop_loss"], vecs["take_profit"], max_hold, alloc,
        np.int64(unalloc), market.warmup, config.slippage_bps / 1e4, config.fee_bps / 1e4,
        config.max_gross_leverage, config.max_symbol_exposure, config.maintenance_margin,
        config.settle, config.allow_short, day, float(config.daily_hard_stop),
        np.zeros((cap, 9), dtype=np.int64), np.zeros((cap, 3), dtype=np.float64),
    )
    (n_fills, cash, qty, basis, unalloc_end, breaches, alive, realized, fees, returned,
     equity, posval, parent, fills_i, fills_f, hs_bars) = out
    n_fills = int(n_fills)
    fi = fills_i[:n_fills]
    fills = {
        "bar": fi[:, 0].copy(), "agent": fi[:, 1].copy(), "symbol": fi[:, 2].copy(),
        "kind": fi[:, 3].copy(), "notional_units": fi[:, 4].copy(), "fee_units": fi[:, 5].copy(),
        "realized_units": fi[:, 6].copy(), "basis_units": fi[:, 7].copy(),
        "cash_units": fi[:, 8].copy(), "qty": fills_f[:n_fills, 0].copy(),
        "price": fills_f[:n_fills, 1].copy(), "position": fills_f[:n_fills, 2].copy(),
    }
    return EngineResult(
        timestamps=market.timestamps[market.warmup:],
        equity=equity, position_value=posval, parent_equity=parent, fills=fills,
        cash_units=cash, qty=qty, basis_units=basis, unallocated_units=int(unalloc_end),
        allocation_units=alloc, bankroll_units=int(bankroll_units), breaches=breaches,
        liquidated=~alive, realized_units=realized, fee_units=fees, returned_units=returned,
        hard_stop_bars=np.asarray(hs_bars, dtype=np.int64).copy(),
    )
