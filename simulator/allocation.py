"""Allocation policies: how the parent bankroll is split across agents.

``equal``: every agent gets the same share of the allocatable capital.
``risk_weighted``: shares proportional to 1 / volatility (inverse-volatility
weighting, the "naive risk parity" of e.g. Maillard, Roncalli & Teiletche 2010),
where an agent's volatility is the standard deviation of the equal-weight
log returns of its symbols over the warm-up bars *before* the traded window —
no lookahead.

The allocatable capital is ``bankroll x (1 - reserve)``; the rest stays as
unallocated parent cash.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from simulator.kernel import UNITS

POLICIES = ("equal", "risk_weighted")


class AllocationError(ValueError):
    """Unknown policy, bad reserve, or no history to weight by risk."""


def symbol_mask(agent_symbols: Sequence[Sequence[str]], symbols: Sequence[str]) -> np.ndarray:
    """``(N, S) bool``: which of the market's symbols each agent trades.

    Raises:
        AllocationError: an agent names a symbol that is not in the market.
    """
    index = {s: i for i, s in enumerate(symbols)}
    mask = np.zeros((len(agent_symbols), len(symbols)), dtype=bool)
    for a, syms in enumerate(agent_symbols):
        for sym in syms:
            if sym not in index:
                raise AllocationError(
                    f"agent {a} trades {sym!r}, which is not in the market ({', '.join(symbols)})"
                )
            mask[a, index[sym]] = True
    return mask


def agent_volatility(close: np.ndarray, mask: np.ndarray, warmup: int) -> np.ndarray:
    """Per-agent volatility from the warm-up bars.

    Args:
        close: ``(T, S)`` closes.
        mask: ``(N, S) bool`` symbols each agent trades.
        warmup: number of history bars before the traded window.

    Returns:
        ``(N,)`` standard deviation of per-bar log returns of the agent's
        equal-weight basket over bars ``0 .. warmup-1``.

    Raises:
        AllocationError: fewer than 3 warm-up bars.
    """
    if warmup < 3:
        raise AllocationError(
            f"risk_weighted allocation needs history before the window; got {warmup} warm-up bars "
            "(use --warmup-bars, or an earlier --start, or --allocation equal)"
        )
    lr = np.diff(np.log(close[:warmup]), axis=0)  # (W-1, S)
    counts = mask.sum(axis=1).clip(min=1)
    basket = lr @ mask.T.astype(np.float64) / counts  # (W-1, N)
    return basket.std(axis=0, ddof=1)


def check_allocation(policy: str, *, reserve: float, bankroll: float) -> None:
    """Validate allocation settings before a run starts.

    Raises:
        AllocationError: unknown policy, reserve outside [0, 1), or a bankroll
            that is not a positive finite amount (the message names the value).
    """
    if policy not in POLICIES:
        raise AllocationError(f"allocation policy {policy!r} unknown; allowed: {', '.join(POLICIES)}")
    if not (0.0 <= reserve < 1.0):
        raise AllocationError(f"reserve={reserve} must be a fraction in [0, 1)")
    if not (math.isfinite(bankroll) and bankroll > 0):
        raise AllocationError(f"bankroll={bankroll} must be a positive amount")


def allocate(bankroll: float, policy: str, *, n_agents: int, reserve: float = 0.0,
             volatility: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Split the bankroll across agents.

    Args:
        bankroll: parent bankroll in quote currency (USD, BTC, ...).
        policy: ``equal`` or ``risk_weighted``.
        n_agents: N.
        reserve: fraction of the bankroll kept unallocated, in [0, 1).
        volatility: ``(N,)`` required for ``risk_weighted``.

    Returns:
        ``(allocation (N,) int64 units of 1e-8, bankroll in units)``; the sum of
        allocations never exceeds ``bankroll x (1 - reserve)`` (rounded down).

    Raises:
        AllocationError: unknown policy, reserve outside [0, 1), bankroll not
            positive, or missing/invalid volatility.
    """
    check_allocation(policy, reserve=reserve, bankroll=bankroll)
    if n_agents < 1:
        raise AllocationError("need at least one agent")
    bank_units = int(math.floor(bankroll * UNITS + 0.5))
    allocatable = int(math.floor(bank_units * (1.0 - reserve)))
    if policy == "equal":
        weights = np.full(n_agents, 1.0 / n_agents)
    else:
        if volatility is None or len(volatility) != n_agents:
            raise AllocationError("risk_weighted allocation needs one volatility per agent")
        vol = np.asarray(volatility, dtype=np.float64)
        floor = np.nanmedian(vol[vol > 0]) if np.any(vol > 0) else 1.0
        vol = np.where(np.isfinite(vol) & (vol > 0), vol, floor)
        inv = 1.0 / vol
        weights = inv / inv.sum()
    alloc = np.floor(weights * allocatable).astype(np.int64)
    return alloc, bank_units
