"""The built-in strategy families.

Six families, each a :class:`~simulator.strategies.base.Strategy` with a typed
parameter space:

==========================  ====================================================
``sma_cross``               long while SMA(fast) > SMA(slow), short while below
``ema_macd``                long while MACD line > signal line, short while below
``rsi_reversion``           buy oversold / sell overbought RSI, exit at a level
``bollinger_reversion``     buy below the lower band / sell above the upper band,
                            exit at the middle band
``donchian_breakout``       follow a close beyond the previous-N-bar channel,
                            exit beyond the opposite side of the exit channel
``vwap_deviation``          buy / sell a close stretched away from rolling VWAP,
                            exit back at VWAP
==========================  ====================================================

Conventions shared by every family:

* ``targets`` returns ``(P, T, S) float64`` in {-1, 0, +1}: the position wanted
  after the close of bar t. Families always emit the short side as -1; the
  engine clips to [0, 1] when shorts are not allowed.
* Causal: row t uses bars 0..t only (indicators are causal and the state
  machines run forward in time).
* Where an indicator a parameter set needs is undefined (NaN: warm-up, or a
  VWAP window without volume), the target is 0 and any open state is reset to
  flat.
* Stateful rules evaluate the exit of an open position first and then, if flat,
  the entries, both on the same bar: a bar can close a long and open a short.
* Price comparisons use a tie tolerance of :data:`TIE_RTOL` x |close|:
  "a > b" means ``a - b > tol``, "a >= b" means ``a - b >= -tol``. Averages
  carry last-bit rounding noise (the SMA of a frozen price can differ from
  that price by one ulp), and without the tolerance that noise would open or
  flip positions on flat stretches. Cross families *hold* the previous target
  on a tie. RSI and Donchian comparisons are exact (RSI is in points, Donchian
  levels are actual prices).
* Cross families (``sma_cross``, ``ema_macd``) fire on the cross, not on
  warm-up: when their indicators become defined (at the end of warm-up, or
  after a NaN) the target stays 0 until the first actual cross -- the side of
  fast vs slow (MACD line vs signal line) changing from one strict side to the
  other, a tie in between holding the old side -- and then follows the side
  as before. Being above on the first defined bar is no cross, as in
  vectorbt's ``ma_crossed_above``, freqtrade's ``qtpylib.crossed_above`` and
  backtesting.py's ``crossover``. The other four families are *level* rules
  ("RSI below 30", "close below the lower band", "close beyond the channel",
  "close stretched from VWAP"): the level is an observed fact on the first
  defined bar, so they may enter there. Their exits are levels too and only
  apply to an open position.
* Each distinct indicator configuration in the batch is computed once per
  call (``np.unique`` over the batch) into a reusable per-thread scratch
  array; Donchian channels of every window are read from one sparse table per
  price series. Then one numba loop over (parameter set, bar, symbol) runs all
  state machines, written branch-free (the fill kernels in
  :mod:`simulator.strategies.kernels`).
* Indicator arrays go through the current feature cache
  (:mod:`simulator.features`; the default :class:`~simulator.features.NullCache`
  computes them directly). Cache keys: ``sma@close {window}``,
  ``macd_hist@close {fast, slow, signal}``, ``rsi@close {period}``,
  ``rolling_std@close {window}``, ``vwap@high+low+close+volume {window}`` and,
  for Donchian, the sparse-table levels ``range_max_table@high`` /
  ``range_max_table@low {level, sign}`` (level j = max of ``sign * price``
  over the ``2**j`` bars ending at t, fewer at the start). ``sma`` is shared by
  ``sma_cross`` and ``bollinger_reversion``.
"""
from __future__ import annotations

import threading
from abc import abstractmethod
from math import prod
from typing import Any, Mapping, Sequence

import numpy as np

from simulator.features import cached_indicator_many
from simulator.indicators import (  # the private helpers are the sparse table shared with donchian_many
    _fill_sparse_table,
    _table_levels,
    macd_hist_many,
    rolling_std_many,
    rsi_many,
    sma_many,
    vwap_many,
)
from simulator.market import MarketData
from simulator.strategies.base import Param, Strategy, StrategyError
from simulator.strategies.kernels import band_fill, breakout_fill, cross_fill, rsi_fill, sign_fill, vwap_fill

#: Relative tie tolerance for price comparisons (fraction of |close|).
TIE_RTOL = 1e-12

__all__ = [
    "TIE_RTOL",
    "SmaCross",
    "EmaMacd",
    "RsiReversion",
    "BollingerReversion",
    "DonchianBreakout",
    "VwapDeviation",
]


# ----------------------------------------------------------------------------
# shared machinery
# ----------------------------------------------------------------------------


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (sorted) and, per input, the index of its distinct value."""
    uniq, inv = np.unique(values, return_inverse=True)
    return uniq, inv.reshape(-1).astype(np.int64)


def _prices(market: MarketData, name: str) -> np.ndarray:
    return np.ascontiguousarray(getattr(market, name), dtype=np.float64)


#: Intermediate (K, T, S) indicator arrays up to this many bytes are kept per
#: thread and reused by the next call: fresh multi-megabyte arrays cost more in
#: first-touch page faults than the indicators cost to compute.
SCRATCH_MAX_BYTES = 64 * 2**20

_scratch = threading.local()


def _scratch_array(slot: int, shape: tuple[int, ...]) -> np.ndarray:
    """A reusable uninitialised float64 array of ``shape`` (per thread and slot);
    a fresh one when it would exceed :data:`SCRATCH_MAX_BYTES`. Valid until the
    next call with the same slot on the same thread."""
    size = prod(shape)
    if size * 8 > SCRATCH_MAX_BYTES:
        return np.empty(shape)
    pool = getattr(_scratch, "pool", None)
    if pool is None:
        pool = _scratch.pool = {}
    buf = pool.get(slot)
    if buf is None or buf.size < size:
        buf = pool[slot] = np.empty(size)
    return buf[:size].reshape(shape)


def _indicator(market: MarketData, slot: int, name: str, field, params: dict[str, np.ndarray],
               kernel) -> np.ndarray:
    """``(K, T, S)`` arrays of K configurations (``params`` column-wise) in the
    scratch array ``slot``, through the current feature cache:
    ``kernel(idx, dst)`` computes configurations ``idx`` into ``dst``."""
    n_k = len(next(iter(params.values())))
    out = _scratch_array(slot, (n_k, market.n_bars, len(market.symbols)))
    return cached_indicator_many(market, name, params, field, kernel, out)


def _range_tables(market: MarketData, slot: int, field: str, sign: float, levels: int):
    """Sparse table ``(levels, T, S)`` of ``sign * market.<field>`` (see
    :func:`simulator.indicators._sparse_table`), its ``(T+1, S)`` NaN prefix
    count and whether the prices hold a NaN."""
    x = _prices(market, field)
    nans = np.zeros((x.shape[0] + 1, x.shape[1]), dtype=np.int64)
    any_nan: list[bool] = []

    def kernel(idx, dst):
        top = int(idx[-1]) + 1  # levels build on each other: fill 0..top-1, keep idx
        if len(idx) == top:
            any_nan.append(_fill_sparse_table(x, sign, dst, nans))
        else:
            full = np.empty((top,) + x.shape)
            any_nan.append(_fill_sparse_table(x, sign, full, nans))
            dst[:] = full[idx]

    table = _indicator(market, slot, "range_max_table", field,
                       {"level": np.arange(levels), "sign": np.full(levels, sign)}, kernel)
    if not any_nan:  # every level came from the cache
        np.cumsum(np.isnan(x), axis=0, out=nans[1:])
        any_nan.append(bool(nans[-1].any()))
    return table, nans, any_nan[0]


class _Family(Strategy):
    """Base of the built-in families: validation, the output array, repair.

    Subclasses set ``name``/``description``/``params`` and implement
    :meth:`_fill`. Not a family itself (abstract, so the registry skips it).
    """

    def targets(self, market: MarketData, param_sets: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Target exposures ``(P, T, S) float64`` in {-1, 0, 1} for P parameter
        sets; see :meth:`Strategy.targets` and the module docstring.

        Raises:
            StrategyError: a parameter set is invalid (unknown parameter, value
                out of bounds, or a broken cross-parameter rule).
        """
        sets = [self.validate(p) for p in param_sets]
        # every element is written by the fill kernels
        out = np.empty((len(sets), market.n_bars, len(market.symbols)), dtype=np.float64)
        if sets and market.n_bars and market.symbols:
            self._fill(market, sets, out)
        return out

    @abstractmethod
    def _fill(self, market: MarketData, sets: list[dict[str, Any]], out: np.ndarray) -> None:
        """Write the targets of the validated ``sets`` into ``out`` (P, T, S)."""

    def _column(self, sets: list[dict[str, Any]], key: str) -> np.ndarray:
        kind = self.param(key).kind
        dtype = np.int64 if kind == "int" else np.float64
        return np.array([p[key] for p in sets], dtype=dtype)

    def repair(self, values: dict[str, Any]) -> dict[str, Any]:
        """A parameter set that passes :meth:`validate`, changing as little as
        possible: missing parameters get defaults, unknown ones are dropped,
        numbers are rounded (ints) and clipped into their bounds, bad categorical
        values become the default, then the family's cross-parameter rules are
        fixed by :meth:`_repair_rules` (e.g. swapping ``fast``/``slow``)."""
        out = self.defaults()
        for p in self.params:
            if p.name not in values:
                continue
            v = values[p.name]
            if p.kind == "categorical":
                try:
                    out[p.name] = p.coerce(v)
                except StrategyError:
                    pass
                continue
            try:
                num = float(v)
            except (TypeError, ValueError):
                continue
            if not np.isfinite(num):
                continue
            num = min(max(num, p.low), p.high)
            out[p.name] = int(round(num)) if p.kind == "int" else num
        out = self._repair_rules(out)
        try:
            self.check(out)
        except StrategyError:  # pragma: no cover - rules are repaired above
            out = self.defaults()
        return out

    def _repair_rules(self, values: dict[str, Any]) -> dict[str, Any]:
        return values

    def _ordered(self, values: dict[str, Any], lo: str, hi: str) -> dict[str, Any]:
        """Make ``values[lo] < values[hi]``: swap when reversed, nudge apart
        (by 1 for ints, by 1 unit for floats) when equal, within the bounds."""
        a, b = values[lo], values[hi]
        if a > b:
            a, b = b, a
        if a == b:
            plo, phi = self.param(lo), self.param(hi)
            if b + 1 <= phi.high:
                b = b + 1
            elif a - 1 >= plo.low:
                a = a - 1
        pa, pb = self.param(lo), self.param(hi)
        values[lo] = min(max(a, pa.low), pa.high)
        values[hi] = min(max(b, pb.low), pb.high)
        if pa.kind == "int":
            values[lo] = int(values[lo])
        if pb.kind == "int":
            values[hi] = int(values[hi])
        return values


def _need_less(family: str, lo: str, a: Any, hi: str, b: Any) -> None:
    if not a < b:
        raise StrategyError(f"{family} needs {lo} < {hi}, got {lo}={a} and {hi}={b}")


# ----------------------------------------------------------------------------
# the families
# ----------------------------------------------------------------------------


class SmaCross(_Family):
    """Moving-average cross: +1 while SMA(fast) > SMA(slow), -1 while below,
    from the first cross on.

    Fires on the cross, never on warm-up: from the first bar where both SMAs
    are defined the target is 0 until SMA(fast) actually crosses SMA(slow)
    (same entries as vectorbt's ``ma_crossed_above`` / ``ma_crossed_below``);
    being above (below) there is not a cross. A tie (``|fast - slow| <=``
    :data:`TIE_RTOL` x |close|) keeps the previous side, so the position
    changes only at a cross and last-bit rounding noise of the averages never
    counts as one. Rule: ``fast < slow``.
    """

    name = "sma_cross"
    description = "long while the fast SMA is above the slow SMA, short while below"
    params = (
        Param("fast", "int", 10, 2, 100, help="fast simple-moving-average window (bars)"),
        Param("slow", "int", 30, 3, 400, help="slow simple-moving-average window (bars), > fast"),
    )

    def check(self, values: dict[str, Any]) -> None:
        """Raises :class:`StrategyError` unless ``fast < slow`` (naming both)."""
        _need_less(self.name, "fast", values["fast"], "slow", values["slow"])

    def _repair_rules(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._ordered(values, "fast", "slow")

    def _fill(self, market, sets, out):
        n_p = len(sets)
        windows, inv = _unique(np.concatenate([self._column(sets, "fast"), self._column(sets, "slow")]))
        close = _prices(market, "close")
        ma = _indicator(market, 0, "sma", "close", {"window": windows},
                        lambda i, dst: sma_many(close, windows[i], out=dst))
        cross_fill(ma, inv[:n_p], ma, inv[n_p:], close, TIE_RTOL, out)


class EmaMacd(_Family):
    """MACD momentum: +1 while the MACD line is above its signal line, -1 while
    below, from the first cross on: where the histogram becomes defined the
    target is 0 until the line actually crosses the signal line (as
    ``qtpylib.crossed_above(macd, macdsignal)``). A tie (``|line - signal| <=``
    :data:`TIE_RTOL` x |close|) keeps the previous side. TA-Lib's MACD seeding
    (see :func:`simulator.indicators.macd_many`). Rule: ``fast < slow``."""

    name = "ema_macd"
    description = "long while the MACD line is above its signal line, short while below"
    params = (
        Param("fast", "int", 12, 2, 100, help="fast EMA period (bars)"),
        Param("slow", "int", 26, 3, 300, help="slow EMA period (bars), > fast"),
        Param("signal", "int", 9, 2, 100, help="signal-line EMA period (bars)"),
    )

    def check(self, values: dict[str, Any]) -> None:
        """Raises :class:`StrategyError` unless ``fast < slow`` (naming both)."""
        _need_less(self.name, "fast", values["fast"], "slow", values["slow"])

    def _repair_rules(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._ordered(values, "fast", "slow")

    def _fill(self, market, sets, out):
        triples = np.stack(
            [self._column(sets, "fast"), self._column(sets, "slow"), self._column(sets, "signal")], axis=1
        )
        uniq, inv = np.unique(triples, axis=0, return_inverse=True)
        inv = inv.reshape(-1).astype(np.int64)
        close = _prices(market, "close")
        hist = _indicator(  # line - signal
            market, 0, "macd_hist", "close", {"fast": uniq[:, 0], "slow": uniq[:, 1], "signal": uniq[:, 2]},
            lambda i, dst: macd_hist_many(close, uniq[i, 0], uniq[i, 1], uniq[i, 2], out=dst),
        )
        sign_fill(hist, inv, close, TIE_RTOL, out)


class RsiReversion(_Family):
    """RSI mean reversion: enter +1 when RSI < ``oversold`` and hold until
    RSI >= ``exit_level``; enter -1 when RSI > ``overbought`` and hold until
    RSI <= ``exit_level``. Wilder RSI (TA-Lib seeding).

    A level rule, not a cross: an RSI already below ``oversold`` on its first
    defined bar enters there (the reading is real, not a warm-up artefact);
    the exit is a level reached from the position's side.

    Rules: ``oversold < overbought`` and ``oversold <= exit_level <= overbought``.
    """

    name = "rsi_reversion"
    description = "buy oversold / sell overbought RSI, exit when RSI crosses back to a level"
    params = (
        Param("period", "int", 14, 2, 100, help="RSI period (bars)"),
        Param("oversold", "float", 30.0, 1.0, 60.0, help="enter long below this RSI (RSI points)"),
        Param("overbought", "float", 70.0, 40.0, 99.0, help="enter short above this RSI (RSI points)"),
        Param("exit_level", "float", 50.0, 1.0, 99.0, help="exit when RSI crosses back to this level (RSI points)"),
    )

    def check(self, values: dict[str, Any]) -> None:
        """Raises :class:`StrategyError` unless ``oversold < overbought`` and
        ``oversold <= exit_level <= overbought``, naming the values."""
        lo, hi, ex = values["oversold"], values["overbought"], values["exit_level"]
        _need_less(self.name, "oversold", lo, "overbought", hi)
        if not lo <= ex <= hi:
            raise StrategyError(
                f"{self.name} needs oversold <= exit_level <= overbought, got "
                f"oversold={lo}, exit_level={ex}, overbought={hi}"
            )

    def _repair_rules(self, values: dict[str, Any]) -> dict[str, Any]:
        values = self._ordered(values, "oversold", "overbought")
        values["exit_level"] = float(min(max(values["exit_level"], values["oversold"]), values["overbought"]))
        return values

    def _fill(self, market, sets, out):
        periods, inv = _unique(self._column(sets, "period"))
        close = _prices(market, "close")
        r = _indicator(market, 0, "rsi", "close", {"period": periods},
                       lambda i, dst: rsi_many(close, periods[i], out=dst))
        rsi_fill(
            r,
            inv,
            self._column(sets, "oversold"),
            self._column(sets, "overbought"),
            self._column(sets, "exit_level"),
            out,
        )


class BollingerReversion(_Family):
    """Bollinger-band mean reversion: +1 when the close is below the lower band
    (SMA - k * population std) and hold until close >= middle band; -1 when above
    the upper band and hold until close <= middle band."""

    name = "bollinger_reversion"
    description = "buy below the lower Bollinger band / sell above the upper, exit at the middle"
    params = (
        Param("window", "int", 20, 5, 400, help="band window for SMA and standard deviation (bars)"),
        Param("k", "float", 2.0, 0.5, 4.0, help="band half-width (standard deviations)"),
    )

    def _fill(self, market, sets, out):
        windows, inv = _unique(self._column(sets, "window"))
        close = _prices(market, "close")
        mid = _indicator(market, 0, "sma", "close", {"window": windows},
                         lambda i, dst: sma_many(close, windows[i], out=dst))
        sd = _indicator(market, 1, "rolling_std", "close", {"window": windows},
                        lambda i, dst: rolling_std_many(close, windows[i], out=dst))
        band_fill(close, mid, sd, inv, self._column(sets, "k"), TIE_RTOL, out)


class DonchianBreakout(_Family):
    """Donchian channel breakout: +1 when the close is above the highest high of
    the previous ``entry`` bars, held until the close is below the lowest low of
    the previous ``exit`` bars; -1 symmetric (below the entry-low, held until
    above the exit-high). Channels exclude the current bar."""

    name = "donchian_breakout"
    description = "follow a close beyond the previous-N-bar high/low, exit on the exit channel"
    params = (
        Param("entry", "int", 20, 2, 400, help="entry channel: previous bars whose high/low must be broken (bars)"),
        Param(
            "exit", "int", 10, 2, 400, help="exit channel: previous bars whose opposite low/high ends the trade (bars)"
        ),
    )

    def _fill(self, market, sets, out):
        entry = self._column(sets, "entry")
        exit_ = self._column(sets, "exit")
        # one sparse table per price series serves every distinct window
        levels = _table_levels(max(entry.max(), exit_.max()))
        th, nh, any_h = _range_tables(market, 0, "high", 1.0, levels)
        tl, nl, any_l = _range_tables(market, 1, "low", -1.0, levels)
        breakout_fill(_prices(market, "close"), th, tl, nh, nl, any_h or any_l, entry, exit_, out)


class VwapDeviation(_Family):
    """VWAP deviation reversion: +1 when the close is more than
    ``threshold_bps`` below the rolling VWAP, held until close >= VWAP; -1 when
    more than the threshold above, held until close <= VWAP. Flat where the
    window has no volume (VWAP undefined)."""

    name = "vwap_deviation"
    description = "buy / sell a close stretched away from the rolling VWAP, exit back at VWAP"
    params = (
        Param("window", "int", 48, 5, 1000, help="rolling VWAP window (bars)"),
        Param("threshold_bps", "float", 50.0, 1.0, 2000.0, help="entry distance from VWAP (bps of VWAP)"),
    )

    def _fill(self, market, sets, out):
        windows, inv = _unique(self._column(sets, "window"))
        close = _prices(market, "close")
        high, low, volume = _prices(market, "high"), _prices(market, "low"), _prices(market, "volume")
        vw = _indicator(market, 0, "vwap", ("high", "low", "close", "volume"), {"window": windows},
                        lambda i, dst: vwap_many(high, low, close, volume, windows[i], out=dst))
        vwap_fill(close, vw, inv, self._column(sets, "threshold_bps"), TIE_RTOL, out)
