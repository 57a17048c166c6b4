"""Numba state machines of the built-in strategy families (the fill kernels).

One kernel per family turns indicator arrays into target exposures: a loop
over (parameter set, bar, symbol) that writes ``out[p, t, s]`` in {-1, 0, +1},
vectorised over symbols and written branch-free. The kernels take plain
arrays only (no :class:`~simulator.market.MarketData`, no parameter dicts):
the family classes in :mod:`simulator.strategies.families` compute each
distinct indicator configuration once, map every parameter set to its row
(``idx``) and call the kernel. The trading rules, the tie tolerance and the
"fire on the cross" convention are documented there.

Shapes: indicator inputs are ``(K, T, S)`` (K distinct configurations), prices
``(T, S)``, per-parameter-set arrays ``(P,)``, ``out`` ``(P, T, S)`` float64
(every element is written). A NaN indicator makes the target 0 and resets the
state to flat.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from simulator.indicators import _rmq_level  # numba helper shared with the Donchian channels

__all__ = [
    "cross_fill",
    "sign_fill",
    "rsi_fill",
    "band_fill",
    "breakout_fill",
    "vwap_fill",
]



# The loops are written with selects instead of if/else so LLVM can turn them
# into branch-free code; NaN comparisons are False, and a final select resets
# the state to flat where an indicator is undefined.


@njit(cache=True)
def cross_fill(a, ia, b, ib, close, rtol, out):
    """out[p] = +1 while a[ia[p]] > b[ib[p]], -1 while below, previous on a tie
    (|a - b| <= rtol*|close|), 0 (and reset) where either is NaN -- but only
    from the first cross on: after warm-up (or a NaN) the target stays 0 until
    the side of a vs b changes (see :func:`sign_fill`)."""
    n_p, n_t, n_s = out.shape
    state = np.zeros(n_s)  # see sign_fill
    for p in range(n_p):
        ap = a[ia[p]]
        bp = b[ib[p]]
        op = out[p]
        state[:] = 0.0
        for t in range(n_t):
            for s in range(n_s):
                d = ap[t, s] - bp[t, s]
                tol = rtol * abs(close[t, s])
                q = state[s]
                n = 1.0 if d > tol else 0.0
                n = -1.0 if d < -tol else n
                m = 2.0 if n * q < 0.0 or q * q > 1.0 else 1.0
                q = n * m if n != 0.0 else q
                q = q if d == d else 0.0
                state[s] = q
                op[t, s] = 0.5 * q if q * q > 1.0 else 0.0


@njit(cache=True)
def sign_fill(h, idx, close, rtol, out):
    """out[p] = +1 while h[idx[p]] > 0, -1 while < 0, previous on a tie
    (|h| <= rtol*|close|), 0 (and reset) where h is NaN -- from the first
    zero cross on.

    Fires on the cross, not on warm-up: the side of h is tracked (a tie holds
    it; none since warm-up or the last NaN) and the target stays 0 until that
    side changes, however far from 0 the first defined value is. A cross
    through a tie (+, tie, -) counts; touching a tie and returning (+, tie, +)
    does not.

    One state per symbol, so the loop stays branch-free: 0 = no side yet,
    +-1 = side seen but no cross yet (target 0), +-2 = side after a cross
    (target +-1). A clear side n moves the state to 2n on a cross (opposite
    sign) or once crossed, else to n; a tie keeps it; NaN resets it to 0."""
    n_p, n_t, n_s = out.shape
    state = np.zeros(n_s)
    for p in range(n_p):
        hp = h[idx[p]]
        op = out[p]
        state[:] = 0.0
        for t in range(n_t):
            for s in range(n_s):
                d = hp[t, s]
                tol = rtol * abs(close[t, s])
                q = state[s]
                n = 1.0 if d > tol else 0.0
                n = -1.0 if d < -tol else n
                m = 2.0 if n * q < 0.0 or q * q > 1.0 else 1.0
                q = n * m if n != 0.0 else q
                q = q if d == d else 0.0
                state[s] = q
                op[t, s] = 0.5 * q if q * q > 1.0 else 0.0


@njit(cache=True)
def rsi_fill(r, idx, oversold, overbought, exit_level, out):
    """RSI reversion: +1 below oversold until RSI >= exit, -1 above overbought
    until RSI <= exit; exit first, then entries on the same bar."""
    n_p, n_t, n_s = out.shape
    pos = np.zeros(n_s)
    for p in range(n_p):
        rp = r[idx[p]]
        op = out[p]
        lo = oversold[p]
        hi = overbought[p]
        ex = exit_level[p]
        pos[:] = 0.0
        for t in range(n_t):
            for s in range(n_s):
                v = rp[t, s]
                q = pos[s]
                q = 0.0 if (q > 0.0 and v >= ex) or (q < 0.0 and v <= ex) else q
                q = 1.0 if q == 0.0 and v < lo else q
                q = -1.0 if q == 0.0 and v > hi else q
                q = q if v == v else 0.0
                pos[s] = q
                op[t, s] = q


@njit(cache=True)
def band_fill(close, mid, sd, idx, kk, rtol, out):
    """Bollinger reversion: +1 when close < mid - k*sd until close >= mid,
    -1 when close > mid + k*sd until close <= mid."""
    n_p, n_t, n_s = out.shape
    pos = np.zeros(n_s)
    for p in range(n_p):
        mp = mid[idx[p]]
        sp = sd[idx[p]]
        op = out[p]
        k = kk[p]
        pos[:] = 0.0
        for t in range(n_t):
            for s in range(n_s):
                c = close[t, s]
                m = mp[t, s]
                width = k * sp[t, s]
                tol = rtol * abs(c)
                dm = c - m
                q = pos[s]
                q = 0.0 if (q > 0.0 and dm >= -tol) or (q < 0.0 and dm <= tol) else q
                q = 1.0 if q == 0.0 and c - (m - width) < -tol else q
                q = -1.0 if q == 0.0 and c - (m + width) > tol else q
                q = q if dm == dm and width == width else 0.0
                pos[s] = q
                op[t, s] = q


@njit(cache=True)
def breakout_fill(close, th, tl, nans_h, nans_l, any_nan, entry, exit_, out):
    """Donchian breakout: +1 when close > entry-upper until close < exit-lower,
    -1 when close < entry-lower until close > exit-upper.

    The channels are read straight from the shared sparse tables of ``high``
    (``th``) and ``-low`` (``tl``) built once per call -- the same numbers
    :func:`simulator.indicators.donchian_many` returns -- so no (K, T, S)
    intermediate is materialised. Channel at bar t covers bars t-n .. t-1.
    """
    n_p, n_t, n_s = out.shape
    pos = np.zeros(n_s)
    for p in range(n_p):
        ne = entry[p]
        nx = exit_[p]
        je, se = _rmq_level(ne)
        jx, sx = _rmq_level(nx)
        he = th[je]
        le = tl[je]
        hx = th[jx]
        lx = tl[jx]
        op = out[p]
        start = min(max(ne, nx), n_t)
        for t in range(start):
            for s in range(n_s):
                op[t, s] = 0.0
        pos[:] = 0.0
        for t in range(start, n_t):
            u = t - 1  # channels end at the previous bar
            # row views: one shared, provably non-negative index below
            c_ = close[t]
            eu1 = he[u]
            eu0 = he[u - se]
            el1 = le[u]
            el0 = le[u - se]
            xu1 = hx[u]
            xu0 = hx[u - sx]
            xl1 = lx[u]
            xl0 = lx[u - sx]
            o_ = op[t]
            for s in range(n_s):
                c = c_[s]
                a = eu1[s]
                b = eu0[s]
                eu = a if a >= b else b
                a = el1[s]
                b = el0[s]
                el = -(a if a >= b else b)
                a = xu1[s]
                b = xu0[s]
                xu = a if a >= b else b
                a = xl1[s]
                b = xl0[s]
                xl = -(a if a >= b else b)
                q = pos[s]
                q = 0.0 if (q > 0.0 and c < xl) or (q < 0.0 and c > xu) else q
                q = 1.0 if q == 0.0 and c > eu else q
                q = -1.0 if q == 0.0 and c < el else q
                q = q if c == c else 0.0
                pos[s] = q
                o_[s] = q
            if any_nan:
                for s in range(n_s):
                    bad = (
                        nans_h[t, s] != nans_h[t - ne, s]
                        or nans_l[t, s] != nans_l[t - ne, s]
                        or nans_h[t, s] != nans_h[t - nx, s]
                        or nans_l[t, s] != nans_l[t - nx, s]
                    )
                    if bad:
                        pos[s] = 0.0
                        op[t, s] = 0.0


@njit(cache=True)
def vwap_fill(close, vw, idx, thr_bps, rtol, out):
    """VWAP deviation: +1 when close < vwap*(1 - thr/1e4) until close >= vwap,
    -1 when close > vwap*(1 + thr/1e4) until close <= vwap."""
    n_p, n_t, n_s = out.shape
    pos = np.zeros(n_s)
    for p in range(n_p):
        vp = vw[idx[p]]
        op = out[p]
        f = thr_bps[p] * 1e-4
        pos[:] = 0.0
        for t in range(n_t):
            for s in range(n_s):
                c = close[t, s]
                v = vp[t, s]
                tol = rtol * abs(c)
                dv = c - v
                q = pos[s]
                q = 0.0 if (q > 0.0 and dv >= -tol) or (q < 0.0 and dv <= tol) else q
                q = 1.0 if q == 0.0 and c - v * (1.0 - f) < -tol else q
                q = -1.0 if q == 0.0 and c - v * (1.0 + f) > tol else q
                q = q if dv == dv else 0.0
                pos[s] = q
                op[t, s] = q
