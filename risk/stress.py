"""Stress scenarios on the cohort's current positions.

A scenario moves every symbol's price by a return at the next open (a gap: no
chance to trade in between) and marks each agent's book to it:

    ``equity = cash + sum_s qty[s] * price[s]``  (quote currency)

An agent counts as **liquidated** when, after the move, its equity is at or below
``maintenance_margin`` times its gross position value ``sum_s |qty[s]| * price[s]``,
or at or below zero -- the engine's liquidation rule (``simulator.kernel``, close of
bar t), with the equity-below-zero case added because a gap can jump past it. The
equity after is reported as marked, so a negative value is the part of the loss
the parent has to absorb (``shortfall``). Fees and slippage of the liquidation
itself are not included.

Scenarios: a uniform shock (e.g. -10 %, -30 % on every symbol), a per-symbol shock
vector, and a replay of the worst clock hour of recent history
(:func:`worst_hour`, :func:`replay_worst_hour`, :func:`standard_scenarios`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from risk.var import RiskInputError

__all__ = [
    "StressResult",
    "WorstHour",
    "replay_worst_hour",
    "shock_scenario",
    "standard_scenarios",
    "worst_hour",
]

_HOUR_NS = np.timedelta64(3_600_000_000_000, "ns")


@dataclass(frozen=True)
class StressResult:
    """Per-agent and parent outcome of one stress scenario (money in quote currency).

    Attributes:
        name: short label, e.g. ``"all symbols -10 %"``.
        shock: ``(S,) float64`` return applied to each symbol's price (fraction).
        prices_before / prices_after: ``(S,) float64`` prices before and after the shock.
        equity_before / equity_after: ``(N,) float64`` agent equity (cash + positions).
        gross_after: ``(N,) float64`` gross position value after the shock.
        loss: ``(N,) float64`` ``equity_before - equity_after`` (positive = loss).
        loss_fraction: ``(N,) float64`` ``loss / equity_before``; NaN where
            ``equity_before <= 0``.
        liquidated: ``(N,) bool`` equity after at/below the maintenance margin of
            gross position value, or at/below zero.
        maintenance_margin: fraction of gross position value used.
        parent_equity_before / parent_equity_after: sum over agents plus ``unallocated``.
        parent_loss: sum of agent losses.
        parent_loss_fraction: ``parent_loss / parent_equity_before`` (NaN if that is <= 0).
        n_liquidated: agents liquidated.
        shortfall: ``sum(max(0, -equity_after))``: loss beyond the agents' own equity.
        details: extra scenario facts (e.g. the worst hour's window), JSON-ready.
    """

    name: str
    shock: np.ndarray
    prices_before: np.ndarray
    prices_after: np.ndarray
    equity_before: np.ndarray
    equity_after: np.ndarray
    gross_after: np.ndarray
    loss: np.ndarray
    loss_fraction: np.ndarray
    liquidated: np.ndarray
    maintenance_margin: float
    parent_equity_before: float
    parent_equity_after: float
    parent_loss: float
    parent_loss_fraction: float
    n_liquidated: int
    shortfall: float
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict: arrays as lists, NaN as None."""
        def num(x):
            x = float(x)
            return x if math.isfinite(x) else None

        def arr(a):
            return [bool(x) for x in a] if a.dtype == bool else [num(x) for x in a]

        return {
            "name": self.name,
            "units": "money in quote currency; shock, loss_fraction as fractions",
            "shock": arr(self.shock),
            "prices_before": arr(self.prices_before),
            "prices_after": arr(self.prices_after),
            "maintenance_margin": self.maintenance_margin,
            "agents": {
                "equity_before": arr(self.equity_before),
                "equity_after": arr(self.equity_after),
                "gross_after": arr(self.gross_after),
                "loss": arr(self.loss),
                "loss_fraction": arr(self.loss_fraction),
                "liquidated": arr(self.liquidated),
            },
            "parent": {
                "equity_before": num(self.parent_equity_before),
                "equity_after": num(self.parent_equity_after),
                "loss": num(self.parent_loss),
                "loss_fraction": num(self.parent_loss_fraction),
                "n_liquidated": int(self.n_liquidated),
                "shortfall": num(self.shortfall),
            },
            "details": dict(self.details),
        }


# --------------------------------------------------------------------------- validation


def _finite_array(x, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        want = "(N, S)" if ndim == 2 else "(S,) / (N,)"
        raise RiskInputError(f"{name}: expected a {want} array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise RiskInputError(f"{name}: contains NaN or inf; all values must be finite")
    return a


def _check_book(qty, prices, cash) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = _finite_array(qty, "qty", 2)
    p = _finite_array(prices, "prices", 1)
    c = _finite_array(cash, "cash", 1)
    n, s = q.shape
    if p.shape != (s,):
        raise RiskInputError(f"prices: expected shape ({s},) to match qty {q.shape}, got {p.shape}")
    if c.shape != (n,):
        raise RiskInputError(f"cash: expected shape ({n},) to match qty {q.shape}, got {c.shape}")
    if (p <= 0).any():
        raise RiskInputError(f"prices must be > 0, got {p.tolist()}")
    return q, p, c


def _check_margin(mm) -> float:
    try:
        v = float(mm)
    except (TypeError, ValueError):
        raise RiskInputError(f"maintenance_margin must be a fraction in [0, 1), got {mm!r}") from None
    if not (0.0 <= v < 1.0):
        raise RiskInputError(f"maintenance_margin must be a fraction in [0, 1), got {mm!r}")
    return v


# --------------------------------------------------------------------------- scenarios


def shock_scenario(qty, prices, cash, shock, maintenance_margin: float = 0.05, *,
                   unallocated: float = 0.0, name: str | None = None,
                   details: dict | None = None) -> StressResult:
    """Mark every agent's book to prices moved by ``shock`` at the next open.

    Args:
        qty: ``(N, S) float64`` signed quantity held by each agent in each symbol
            (base units; negative = short).
        prices: ``(S,) float64`` last prices, quote currency per unit, > 0.
        cash: ``(N,) float64`` agent cash, quote currency (negative = borrowed).
        shock: a fraction applied to every symbol (``-0.10`` = -10 %), or an
            ``(S,) float64`` array of per-symbol returns; each ``> -1``.
        maintenance_margin: fraction of gross position value in ``[0, 1)``; default
            0.05 (the engine's default).
        unallocated: parent cash not given to any agent, quote currency (added to the
            parent's equity before and after; it does not move).
        name: scenario label; default ``"shock <returns>"``.
        details: extra JSON-ready facts stored on the result.

    Returns:
        :class:`StressResult`.

    Raises:
        RiskInputError: shapes that do not match, NaN/inf, prices <= 0, a shock
            ``<= -1`` (price at or below zero), ``maintenance_margin`` outside
            ``[0, 1)`` or ``unallocated`` not finite.
    """
    q, p, c = _check_book(qty, prices, cash)
    mm = _check_margin(maintenance_margin)
    s = q.shape[1]
    sh = np.asarray(shock, dtype=np.float64)
    if sh.ndim == 0:
        sh = np.full(s, float(sh))
    if sh.shape != (s,):
        raise RiskInputError(f"shock: expected a scalar or shape ({s},), got {sh.shape}")
    if not np.isfinite(sh).all() or (sh <= -1.0).any():
        raise RiskInputError(f"shock returns must be finite and > -1 (a price stays > 0), got {sh.tolist()}")
    try:
        un = float(unallocated)
    except (TypeError, ValueError):
        un = math.nan
    if not math.isfinite(un):
        raise RiskInputError(f"unallocated must be a finite amount of quote currency, got {unallocated!r}")

    p_after = p * (1.0 + sh)
    eq_before = c + q @ p
    eq_after = c + q @ p_after
    gross_after = np.abs(q) @ p_after
    loss = eq_before - eq_after
    with np.errstate(divide="ignore", invalid="ignore"):
        loss_frac = np.where(eq_before > 0, loss / np.where(eq_before > 0, eq_before, 1.0), np.nan)
    liquidated = (eq_after <= mm * gross_after) | (eq_after <= 0.0)
    parent_before = float(eq_before.sum() + un)
    parent_after = float(eq_after.sum() + un)
    parent_loss = float(loss.sum())
    if name is None:
        name = "shock " + ", ".join(f"{x:+.2%}" for x in sh)
    return StressResult(
        name=name, shock=sh, prices_before=p, prices_after=p_after,
        equity_before=eq_before, equity_after=eq_after, gross_after=gross_after,
        loss=loss, loss_fraction=loss_frac, liquidated=liquidated, maintenance_margin=mm,
        parent_equity_before=parent_before, parent_equity_after=parent_after,
        parent_loss=parent_loss,
        parent_loss_fraction=parent_loss / parent_before if parent_before > 0 else math.nan,
        n_liquidated=int(liquidated.sum()),
        shortfall=float(np.maximum(0.0, -eq_after).sum()),
        details=dict(details or {}),
    )


@dataclass(frozen=True)
class WorstHour:
    """The clock hour with the worst equal-weighted return.

    Attributes:
        start / end: ``numpy.datetime64[ns]``, the hour ``[start, end)`` in UTC
            (bar-open times).
        returns: ``(S,) float64`` per-symbol simple return over the hour (fraction);
            0 for a symbol without a bar in it.
        mean_return: equal-weighted mean of ``returns`` over all S symbols.
    """

    start: np.datetime64
    end: np.datetime64
    returns: np.ndarray
    mean_return: float


def worst_hour(timestamps, close) -> WorstHour:
    """Find the UTC clock hour with the worst equal-weighted mean return across symbols.

    Windows are **clock hours** ``[HH:00, HH+1:00)`` of the bar timestamps (bar-open
    times, as in :class:`simulator.market.MarketData`), not rolling 60-minute windows,
    so results are reproducible and name a plain hour. A symbol's return over an
    hour runs from its last close *before* the hour (the price held coming into it;
    its first close in the hour if it has none earlier) to its last close *in* the
    hour. Symbols with no finite close in the hour get 0; the hour's score is the
    mean over all S symbols. Ties go to the earliest hour.

    Args:
        timestamps: ``(T,) datetime64[ns]`` UTC bar-open times, strictly increasing.
        close: ``(T, S) float64`` close prices, quote currency; NaN = no bar.

    Returns:
        :class:`WorstHour`.

    Raises:
        RiskInputError: empty input, shapes that do not match, timestamps not
            strictly increasing, prices <= 0 or inf, or no finite close at all.
    """
    ts = np.asarray(timestamps)
    if ts.ndim != 1 or ts.size == 0:
        raise RiskInputError(f"timestamps: expected a non-empty (T,) datetime64 array, got shape {ts.shape}")
    if not np.issubdtype(ts.dtype, np.datetime64):
        raise RiskInputError(f"timestamps must be datetime64, got dtype {ts.dtype}")
    ts = ts.astype("datetime64[ns]")
    if np.isnat(ts).any() or (np.diff(ts) <= np.timedelta64(0, "ns")).any():
        raise RiskInputError("timestamps must be strictly increasing, without NaT")
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != ts.size:
        raise RiskInputError(f"close: expected shape ({ts.size}, S), got {c.shape}")
    if np.isinf(c).any() or (c <= 0).any():
        raise RiskInputError("close prices must be > 0 and finite (NaN marks a missing bar)")
    if not np.isfinite(c).any():
        raise RiskInputError("close holds no finite price")

    t, s = c.shape
    have = np.isfinite(c)
    # forward-filled close: last finite close at or before each row (NaN before the first)
    idx = np.where(have, np.arange(t)[:, None], -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    ffill = np.where(idx >= 0, c[np.maximum(idx, 0), np.arange(s)], np.nan)

    hours = ts.astype("datetime64[h]")
    starts = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]])
    ends = np.r_[starts[1:], t]  # exclusive
    best = None
    for a, b in zip(starts, ends):
        in_hour = have[a:b].any(axis=0)
        last = ffill[b - 1]
        ref = ffill[a - 1] if a > 0 else np.full(s, np.nan)
        first_in = np.where(in_hour, c[a:b][np.argmax(have[a:b], axis=0), np.arange(s)], np.nan)
        ref = np.where(np.isfinite(ref), ref, first_in)
        r = np.where(in_hour, last / np.where(in_hour, ref, 1.0) - 1.0, 0.0)
        score = float(r.mean())
        if best is None or score < best[0]:
            best = (score, a, r)
    score, a, r = best
    start = hours[a].astype("datetime64[ns]")
    return WorstHour(start=start, end=start + _HOUR_NS, returns=r, mean_return=score)


def replay_worst_hour(qty, prices, cash, timestamps, close, maintenance_margin: float = 0.05, *,
                      unallocated: float = 0.0) -> StressResult:
    """:func:`shock_scenario` with the per-symbol returns of :func:`worst_hour`.

    Args:
        qty, prices, cash, maintenance_margin, unallocated: as :func:`shock_scenario`.
        timestamps: ``(T,) datetime64[ns]`` UTC bar-open times of the history to search.
        close: ``(T, S) float64`` closes of the same S symbols as ``qty``/``prices``.

    Returns:
        :class:`StressResult` named ``"worst hour <start ISO, UTC>"``; ``details``
        holds the window start/end (ISO strings) and its equal-weighted mean return.

    Raises:
        RiskInputError: as :func:`worst_hour` and :func:`shock_scenario`, or ``close``
            with a different number of symbols than ``prices``.
    """
    p = np.asarray(prices)
    c = np.asarray(close)
    if c.ndim == 2 and p.ndim == 1 and c.shape[1] != p.shape[0]:
        raise RiskInputError(f"close has {c.shape[1]} symbols but prices has {p.shape[0]}")
    wh = worst_hour(timestamps, close)
    start = np.datetime_as_string(wh.start, unit="m")
    details = {"window": "clock hour, UTC", "start": str(start),
               "end": str(np.datetime_as_string(wh.end, unit="m")), "mean_return": wh.mean_return}
    return shock_scenario(qty, prices, cash, wh.returns, maintenance_margin, unallocated=unallocated,
                          name=f"worst hour {start}", details=details)


def standard_scenarios(qty, prices, cash, maintenance_margin: float = 0.05, timestamps=None, close=None, *,
                       unallocated: float = 0.0, shocks=(-0.10, -0.30)) -> list[StressResult]:
    """The scenarios the application shows: uniform shocks and the worst-hour replay.

    Args:
        qty, prices, cash, maintenance_margin, unallocated: as :func:`shock_scenario`.
        timestamps, close: history for :func:`replay_worst_hour`; both None = skip it.
        shocks: uniform shocks (fractions) applied to every symbol; default -10 % and -30 %.

    Returns:
        ``[StressResult, ...]`` named ``"all symbols -10 %"``, ``"all symbols -30 %"``
        (one per shock, in order) and, with history, ``"worst hour <start>"``.

    Raises:
        RiskInputError: as :func:`shock_scenario` / :func:`replay_worst_hour`, or only
            one of ``timestamps`` and ``close`` given.
    """
    if (timestamps is None) != (close is None):
        raise RiskInputError("give both timestamps and close for the worst-hour replay, or neither")
    out = []
    for sh in shocks:
        label = f"all symbols {float(sh) * 100:+g} %"
        out.append(shock_scenario(qty, prices, cash, sh, maintenance_margin, unallocated=unallocated,
                                  name=label))
    if timestamps is not None:
        out.append(replay_worst_hour(qty, prices, cash, timestamps, close, maintenance_margin,
                                     unallocated=unallocated))
    return out
