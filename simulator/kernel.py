"""The lockstep kernel: all agents advance bar by bar on plain arrays (numba).

This module holds only the compiled inner loop; :mod:`simulator.engine` builds
its inputs and wraps its outputs. Money (cash, cost basis, fees, realised PnL)
is kept in int64 *units* of 1e-8 of the quote currency so that the ledger
(Decimal, quantised to 1e-8) reproduces it exactly; quantities and marks are
float64.

Per bar t (trading bars ``warmup .. T-1``):

1. **Open of t** — pending orders (decided at the close of t-1) on tradable
   bars are sized at the open, passed through the parent gate (both in
   :func:`_open_orders`, which :class:`simulator.broker.PaperBroker` runs too)
   and filled at ``open * (1 +/- slippage)``; fee = fee rate x notional.
2. **Intrabar** — stop-loss / take-profit on high/low (stop first when both are
   touched; a gap through the level fills at the open).
3. **Close of t** — mark to market; liquidate agents whose equity is at or
   below the maintenance margin of their gross position value; max holding
   period exits; new signals become pending orders for the open of t+1.
4. **Daily hard stop** (``hard_stop`` > 0) — once parent equity at the close is
   at or below ``(1 - hard_stop)`` x the reference equity (the parent equity at
   the last close of the previous UTC day, or the bankroll on the first traded
   day), every pending order is cancelled and every open position gets a
   ``hard_stop`` flatten order for the next tradable open (an exit: never scaled
   by the parent gate). Until the UTC day changes, signals and max-holding exits
   are ignored (stop-loss, take-profit and liquidation still act); the bar is
   recorded (at most one per day). On the first bar of a new UTC day the halt
   ends, the reference resets, and standing signals enter again.
"""
from __future__ import annotations

import numpy as np
from numba import njit

UNITS = 100_000_000  # units of the quote currency per 1.0 (1e-8 resolution)

# fill kinds (also used by the ledger and trade builder)
(K_SIGNAL, K_STOP, K_TAKE_PROFIT, K_MAX_HOLD, K_LIQUIDATION, K_SETTLE, K_SHORTFALL, K_RETURN,
 K_HARD_STOP) = range(9)
KIND_NAMES = (
    "signal", "stop_loss", "take_profit", "max_hold", "liquidation", "settle",
    "shortfall_cover", "return_of_capital", "hard_stop",
)

_EPS = 1e-12


@njit(cache=True, inline="always")
def _to_units(x):
    """Round a non-negative money amount (quote currency) to int units, half up."""
    return np.int64(np.floor(x * UNITS + 0.5))


@njit(cache=True)
def signals_in_range(sig):
    """True when every value of ``sig`` is finite and within [-1, 1] (one pass)."""
    flat = sig.reshape(-1)
    for i in range(flat.size):
        x = flat[i]
        if not (-1.0 <= x <= 1.0):  # also False for NaN
            return False
    return True


@njit(cache=True, inline="always")
def _mark(a, t, cash, qty, px):
    """Agent a's equity and gross position value at prices ``px[t]`` (quote currency)."""
    e = cash[a] / UNITS
    pv = 0.0
    for s in range(qty.shape[1]):
        q = qty[a, s]
        if q != 0.0:
            e += q * px[t, s]
            pv += abs(q) * px[t, s]
    return e, pv


@njit(cache=True, inline="always")
def _exit_price(q, px, slip):
    """Fill price of closing a position of signed quantity q at ``px`` with adverse
    slippage (a long sells lower, a short buys back higher)."""
    if q > 0:
        return px * (1.0 - slip)
    return px * (1.0 + slip)


@njit(cache=True)
def _grow(fills_i, fills_f):
    """Double the capacity of the fill buffers (amortised O(1) per fill)."""
    cap = fills_i.shape[0]
    gi = np.zeros((2 * cap, fills_i.shape[1]), dtype=np.int64)
    gf = np.zeros((2 * cap, fills_f.shape[1]))
    gi[:cap] = fills_i
    gf[:cap] = fills_f
    return gi, gf


@njit(cache=True)
def _record(fills_i, fills_f, n, cap, t, a, s, kind, qty, price, notional, fee, realized, basis_delta,
            cash_delta, pos_after):
    if n < fills_i.shape[0]:
        fills_i[n, 0] = t
        fills_i[n, 1] = a
        fills_i[n, 2] = s
        fills_i[n, 3] = kind
        fills_i[n, 4] = notional
        fills_i[n, 5] = fee
        fills_i[n, 6] = realized
        fills_i[n, 7] = basis_delta
        fills_i[n, 8] = cash_delta
        fills_f[n, 0] = qty
        fills_f[n, 1] = price
        fills_f[n, 2] = pos_after
    return n + 1


@njit(cache=True)
def _trade(a, s, dq, price, t, kind, fee_rate, qty, basis, cash, realized_acc, fees_acc, entry_bar,
           fills_i, fills_f, n, cap):
    """Fill ``dq`` (signed quantity) of symbol s for agent a at ``price``.

    A flip (long -> short or back) is booked as two fills: close, then open.
    Returns the new fill count.
    """
    q = qty[a, s]
    if q != 0.0 and np.sign(q + dq) != np.sign(q) and q + dq != 0.0:
        n = _fill(a, s, -q, price, t, kind, fee_rate, qty, basis, cash, realized_acc, fees_acc,
                  entry_bar, fills_i, fills_f, n, cap)
        dq = dq + q
    return _fill(a, s, dq, price, t, kind, fee_rate, qty, basis, cash, realized_acc, fees_acc,
                 entry_bar, fills_i, fills_f, n, cap)


@njit(cache=True)
def _fill(a, s, dq, price, t, kind, fee_rate, qty, basis, cash, realized_acc, fees_acc, entry_bar,
          fills_i, fills_f, n, cap):
    """Fill ``dq`` that does not cross zero; book cash, cost basis, fee, realised PnL."""
    q = qty[a, s]
    notional = _to_units(abs(dq) * price)
    fee = np.int64(np.floor(notional * fee_rate + 0.5))
    if dq > 0:
        cash_delta = -notional - fee
    else:
        cash_delta = notional - fee
    new_q = q + dq
    if q != 0.0 and abs(new_q) < abs(q):
        # reduction of an existing position: realise PnL against average cost
        if new_q == 0.0 or abs(new_q) <= abs(q) * 1e-12:
            removed = basis[a, s]
            new_q = 0.0
        else:
            removed = np.int64(np.floor(basis[a, s] * (abs(dq) / abs(q)) + 0.5))
        if q > 0:
            realized = notional - removed
        else:
            realized = -removed - notional
        basis_delta = -removed
    else:
        realized = np.int64(0)
        if dq > 0:
            basis_delta = notional
        else:
            basis_delta = -notional
        if q == 0.0:
            entry_bar[a, s] = t
    qty[a, s] = new_q
    basis[a, s] += basis_delta
    cash[a] += cash_delta
    realized_acc[a] += realized
    fees_acc[a] += fee
    return _record(fills_i, fills_f, n, cap, t, a, s, kind, dq, price, notional, fee, realized,
                   basis_delta, cash_delta, new_q)


@njit(cache=True)
def _return_capital(a, t, cash, returned, fills_i, fills_f, n, cap):
    """Move agent a's remaining cash back to the parent (the caller adds it to the
    parent's cash). Negative cash — a gap loss beyond the agent's equity — is
    covered by the parent instead, so no agent ends below zero."""
    r = cash[a]
    cash[a] = 0
    returned[a] += r
    if r < 0:
        return _record(fills_i, fills_f, n, cap, t, a, -1, K_SHORTFALL, 0.0, 0.0, -r, 0, 0, 0, -r, 0.0)
    return _record(fills_i, fills_f, n, cap, t, a, -1, K_RETURN, 0.0, 0.0, r, 0, 0, 0, -r, 0.0)


@njit(cache=True, inline="always")
def _open_orders(t, o, tradable, slip, fee_rate, lev_cap, max_sym, max_gross, unalloc, cash, qty,
                 pending, pend_kind, agent_pend, breaches, ws_agent, ws_sym, ord_a, ord_s, ord_f):
    """Size the pending orders that fill at the open of bar t and pass them through
    the parent gate (step 1 of the module docstring, without the fills).

    Shared by :func:`run_kernel` (all N agents) and
    :class:`simulator.broker.PaperBroker` (N = 1, ``unalloc`` = 0: the account is
    its own parent), so both size and gate with the same compiled code.

    Sizing: a target ``pending[a, s]`` (signed position value as a fraction of
    agent equity at the open) becomes the quantity
    ``pending * max(equity_open, 0) / (open * (1 + slip) * (1 + fee_rate))``;
    liquidation / hard-stop orders (and a zero target) go flat. Only the exposure
    *increase* of an order (the part beyond the current position; all of a flip's
    new side) is gated, reductions always pass: (a) each agent's gross after the
    fills <= ``lev_cap[a]`` x its equity at the open, (b) each symbol's gross over
    all agents <= ``max_sym`` x parent equity, (c) total gross <= ``max_gross`` x
    parent equity; each step scales the increases it binds pro rata. An order whose
    increase was cut (by more than 1e-9 relative) adds 1 to ``breaches[a]``.

    Args:
        t: bar index (row of ``o`` and ``tradable``).
        o: ``(T, S) float64`` open prices (quote currency).
        tradable: ``(T, S) bool``; orders of a symbol only fill where True.
        slip, fee_rate: adverse slippage and fee as fractions (bps / 1e4).
        lev_cap: ``(N,) float64`` agent gross-exposure ceiling, multiple of agent equity.
        max_sym: per-symbol gross-exposure cap, fraction of parent equity.
        max_gross: parent gross-exposure ceiling, multiple of parent equity.
        unalloc: parent cash not held by agents (int64, 1e-8 units).
        cash: ``(N,) int64`` agent cash (1e-8 units).
        qty: ``(N, S) float64`` signed positions (base quantity).
        pending: ``(N, S) float64`` order targets, fraction of agent equity.
        pend_kind: ``(N, S) int64`` order kind (``K_*``), -1 = no order.
        agent_pend: ``(N,) int64`` number of pending orders per agent (0 = skip).
        breaches: ``(N,) int64`` gate-breach counters, incremented in place.
        ws_agent: ``(5, N) float64`` scratch; ws_sym: ``(4, S) float64`` scratch.
        ord_a, ord_s: ``(N * S,) int64`` output: agent and symbol of each order
            that fills now, in agent/symbol order.
        ord_f: ``(5, N * S) float64`` output row 0: the signed quantity to hold
            after each order fills (base units); rows 1-4 are scratch.

    Returns:
        The number of orders that fill now (the first entries of ``ord_a``,
        ``ord_s`` and ``ord_f[0]``). ``pend_kind`` is not changed.
    """
    N, S = qty.shape
    eq_open = ws_agent[0]
    gross_agent = ws_agent[1]
    inc_agent = ws_agent[2]
    d_agent = ws_agent[3]
    agent_f = ws_agent[4]
    gross_sym = ws_sym[0]
    inc_symbol = ws_sym[1]
    d_symbol = ws_sym[2]
    sym_f = ws_sym[3]
    ord_tq = ord_f[0]  # target quantity in full, then the quantity kept after the gate
    ord_keep = ord_f[1]
    ord_inc0 = ord_f[2]
    ord_inc = ord_f[3]
    ord_d = ord_f[4]
    # one pass over the book: equity and gross exposure at the open
    parent_eq = unalloc / UNITS
    gross_tot = 0.0
    for s in range(S):
        gross_sym[s] = 0.0
    for a in range(N):
        e = cash[a] / UNITS
        g = 0.0
        for s in range(S):
            q = qty[a, s]
            if q != 0.0:
                v = q * o[t, s]
                e += v
                g += abs(v)
                gross_sym[s] += abs(v)
        eq_open[a] = e
        gross_agent[a] = g
        gross_tot += g
        parent_eq += e
    # the orders that can fill now: target quantity, kept part, exposure increase
    n_ord = 0
    for a in range(N):
        if agent_pend[a] == 0:
            continue
        for s in range(S):
            if pend_kind[a, s] < 0 or not tradable[t, s]:
                continue
            q = qty[a, s]
            pk = pend_kind[a, s]
            if pk == K_LIQUIDATION or pk == K_HARD_STOP or pending[a, s] == 0.0:
                tq = 0.0
            else:
                tq = pending[a, s] * max(eq_open[a], 0.0) / (o[t, s] * (1.0 + slip) * (1.0 + fee_rate))
            kq = q
            inc = 0.0
            if q == 0.0 or tq == 0.0 or (q > 0.0) == (tq > 0.0):
                if abs(tq) > abs(q):
                    inc = (abs(tq) - abs(q)) * o[t, s]
            else:  # flip: the old side closes, the new side is all increase
                kq = 0.0
                inc = abs(tq) * o[t, s]
            ord_a[n_ord] = a
            ord_s[n_ord] = s
            ord_tq[n_ord] = tq
            ord_keep[n_ord] = kq
            ord_inc0[n_ord] = inc
            ord_inc[n_ord] = inc
            # exposure change if filled in full, kept per agent / symbol / total
            if inc > 0.0:
                d = abs(kq) * o[t, s] + inc - abs(q) * o[t, s]
            else:
                d = abs(tq) * o[t, s] - abs(q) * o[t, s]
            ord_d[n_ord] = d
            n_ord += 1
    if n_ord == 0:
        return 0
    # ---- parent gate: scale exposure increases pro rata ----
    # after-fill gross = current gross + sum of changes; increases are scaled by f
    for a in range(N):
        inc_agent[a] = 0.0
        d_agent[a] = 0.0
    for s in range(S):
        inc_symbol[s] = 0.0
        d_symbol[s] = 0.0
    inc_sum = 0.0
    for k in range(n_ord):
        inc_agent[ord_a[k]] += ord_inc[k]
        d_agent[ord_a[k]] += ord_d[k]
        inc_sum += ord_inc[k]
    if inc_sum > 0.0:
        # (a) each agent's leverage ceiling
        for a in range(N):
            agent_f[a] = 1.0
            if inc_agent[a] > 0.0:
                cap_a = lev_cap[a] * max(eq_open[a], 0.0)
                after = gross_agent[a] + d_agent[a]
                if after > cap_a * (1.0 + _EPS):
                    agent_f[a] = min(max((cap_a - (after - inc_agent[a])) / inc_agent[a], 0.0), 1.0)
        for k in range(n_ord):
            if ord_inc[k] > 0.0:
                f = agent_f[ord_a[k]]
                ord_d[k] -= ord_inc[k] * (1.0 - f)
                ord_inc[k] *= f
        # (b) per-symbol cap on parent equity
        for k in range(n_ord):
            inc_symbol[ord_s[k]] += ord_inc[k]
            d_symbol[ord_s[k]] += ord_d[k]
        limit = max_sym * max(parent_eq, 0.0)
        for s in range(S):
            sym_f[s] = 1.0
            after = gross_sym[s] + d_symbol[s]
            if inc_symbol[s] > 0.0 and after > limit * (1.0 + _EPS):
                sym_f[s] = min(max((limit - (after - inc_symbol[s])) / inc_symbol[s], 0.0), 1.0)
        inc_sum = 0.0
        d_sum = 0.0
        for k in range(n_ord):
            if ord_inc[k] > 0.0:
                f = sym_f[ord_s[k]]
                ord_d[k] -= ord_inc[k] * (1.0 - f)
                ord_inc[k] *= f
            inc_sum += ord_inc[k]
            d_sum += ord_d[k]
        # (c) parent gross-exposure ceiling
        limit = max_gross * max(parent_eq, 0.0)
        after = gross_tot + d_sum
        if inc_sum > 0.0 and after > limit * (1.0 + _EPS):
            f = min(max((limit - (after - inc_sum)) / inc_sum, 0.0), 1.0)
            for k in range(n_ord):
                ord_inc[k] *= f
    # ---- the quantity each order leaves: kept part + the (scaled) increase ----
    for k in range(n_ord):
        if ord_inc0[k] > 0.0:
            if ord_inc[k] < ord_inc0[k] * (1.0 - 1e-9):
                breaches[ord_a[k]] += 1
            ord_tq[k] = ord_keep[k] + np.sign(ord_tq[k]) * ord_inc[k] / o[t, ord_s[k]]
    return n_ord


@njit(cache=True)
def run_kernel(o, h, l, c, tradable, sig, weight, lev_cap, stop, take, max_hold, alloc_units,
               unalloc_units, warmup, slip, fee_rate, max_gross, max_sym, maint, settle, allow_short,
               day, hard_stop, fills_i, fills_f):
    """Run all agents over bars ``warmup .. T-1``; see the module docstring.

    Args:
        o, h, l, c: ``(T, S) float64`` prices (quote currency).
        tradable: ``(T, S) bool``; orders and stops only fill where True.
        sig: ``(N, T, S) float64`` target signal in [-1, 1] (0 outside each
            agent's symbols); negative values count as 0 unless ``allow_short``.
        weight: ``(N, S) float64`` target value at signal 1, as a fraction of agent
            equity (size x leverage / number of the agent's symbols).
        lev_cap: ``(N,)`` agent gross-exposure ceiling, multiple of agent equity.
        stop, take: ``(N,)`` stop-loss / take-profit distance, fraction of entry
            price (0 = off).
        max_hold: ``(N,) int64`` maximum holding period in bars (0 = off).
        alloc_units: ``(N,) int64`` initial agent cash (1e-8 units).
        unalloc_units: parent cash not allocated to agents (1e-8 units).
        warmup: first traded bar.
        slip, fee_rate: adverse slippage and fee as fractions (bps / 1e4).
        max_gross: parent gross-exposure ceiling, multiple of parent equity.
        max_sym: per-symbol gross-exposure cap, fraction of parent equity.
        maint: maintenance margin, fraction of the agent's gross position value.
        settle: close every position at the last close and return all cash.
        allow_short: negative signals open short positions.
        day: ``(T,) int64`` UTC day number of each bar (days since 1970-01-01).
        hard_stop: daily hard stop, fraction of the parent equity at the start
            of the UTC day (0 = off); see step 4 of the module docstring.
        fills_i: ``(F, 9) int64`` initial fill buffer (grown as needed and
            returned): t, agent, symbol, kind, notional,
            fee, realised PnL, cost-basis change, cash change (money in units).
        fills_f: ``(F, 3) float64`` output: signed quantity, fill price, position
            after the fill.

    Returns:
        Tuple of final state and curves; see :func:`simulator.engine.run_engine`.
        The returned fill buffers hold the first ``n_fills`` rows; the last
        element is the ``(H,) int64`` bars whose close triggered the hard stop.
    """
    T, S = c.shape
    N = sig.shape[0]
    TT = T - warmup
    cap = fills_i.shape[0]

    cash = alloc_units.copy()
    qty = np.zeros((N, S))
    basis = np.zeros((N, S), dtype=np.int64)
    entry_bar = np.zeros((N, S), dtype=np.int64)
    prev_sig = np.zeros((N, S))
    pending = np.zeros((N, S))
    pend_kind = np.full((N, S), -1, dtype=np.int64)  # -1 = no order
    alive = np.ones(N, dtype=np.bool_)
    breaches = np.zeros(N, dtype=np.int64)
    realized_acc = np.zeros(N, dtype=np.int64)
    fees_acc = np.zeros(N, dtype=np.int64)
    returned = np.zeros(N, dtype=np.int64)  # net cash returned to the parent (units)
    unalloc = np.int64(unalloc_units)

    equity_curve = np.zeros((N, TT))
    posval_curve = np.zeros((N, TT))
    parent_curve = np.zeros(TT)

    agent_pend = np.zeros(N, dtype=np.int64)  # pending orders per agent
    # scratch of the open's sizing and parent gate (see _open_orders)
    ws_agent = np.zeros((5, N))
    ws_sym = np.zeros((4, S))
    ord_a = np.zeros(N * S, dtype=np.int64)
    ord_s = np.zeros(N * S, dtype=np.int64)
    ord_f = np.zeros((5, N * S))
    n = 0
    n_pending = 0
    # daily hard stop: reference equity of the current UTC day, halted until the day changes
    hs_bars = np.zeros(max(TT, 1), dtype=np.int64)
    n_hs = 0
    halted = False
    ref_eq = (unalloc + alloc_units.sum()) / UNITS
    cur_day = day[warmup] if TT > 0 else np.int64(0)

    room = 4 * N * S + 2 * N  # most fills one bar can produce (flips, stops, liquidations)
    for t in range(warmup, T):
        tt = t - warmup
        while n + room > cap:
            fills_i, fills_f = _grow(fills_i, fills_f)
            cap = fills_i.shape[0]
        if day[t] != cur_day:  # a new UTC day: the halt ends, the reference is yesterday's last close
            cur_day = day[t]
            halted = False
            ref_eq = parent_curve[tt - 1]
        # ---------------- 1. open of bar t: pending orders ----------------
        if n_pending > 0:
            n_ord = _open_orders(t, o, tradable, slip, fee_rate, lev_cap, max_sym, max_gross, unalloc, cash,
                                 qty, pending, pend_kind, agent_pend, breaches, ws_agent, ws_sym, ord_a,
                                 ord_s, ord_f)
            ord_q = ord_f[0]
            # ---- fills, in agent/symbol order ----
            for k in range(n_ord):
                a = ord_a[k]
                s = ord_s[k]
                kind = pend_kind[a, s]
                pend_kind[a, s] = -1
                n_pending -= 1
                agent_pend[a] -= 1
                dq = ord_q[k] - qty[a, s]
                if dq == 0.0:
                    continue
                px = _exit_price(-dq, o[t, s], slip)  # buying pays up, selling receives less
                n = _trade(a, s, dq, px, t, kind, fee_rate, qty, basis, cash, realized_acc,
                           fees_acc, entry_bar, fills_i, fills_f, n, cap)
        # ---------------- 2. intrabar stop-loss / take-profit ----------------
        for a in range(N):
            if stop[a] <= 0.0 and take[a] <= 0.0:
                continue
            for s in range(S):
                q = qty[a, s]
                if q == 0.0 or not tradable[t, s]:
                    continue
                entry = abs(basis[a, s]) / UNITS / abs(q)
                px = 0.0
                kind = -1
                if q > 0:
                    if stop[a] > 0.0 and l[t, s] <= entry * (1.0 - stop[a]):
                        px = min(o[t, s], entry * (1.0 - stop[a]))
                        kind = K_STOP
                    elif take[a] > 0.0 and h[t, s] >= entry * (1.0 + take[a]):
                        px = max(o[t, s], entry * (1.0 + take[a]))
                        kind = K_TAKE_PROFIT
                else:
                    if stop[a] > 0.0 and h[t, s] >= entry * (1.0 + stop[a]):
                        px = max(o[t, s], entry * (1.0 + stop[a]))
                        kind = K_STOP
                    elif take[a] > 0.0 and l[t, s] <= entry * (1.0 - take[a]):
                        px = min(o[t, s], entry * (1.0 - take[a]))
                        kind = K_TAKE_PROFIT
                if kind >= 0:
                    px = _exit_price(q, px, slip)
                    if pend_kind[a, s] >= 0:
                        pend_kind[a, s] = -1
                        n_pending -= 1
                        agent_pend[a] -= 1
                    n = _trade(a, s, -q, px, t, kind, fee_rate, qty, basis, cash, realized_acc,
                               fees_acc, entry_bar, fills_i, fills_f, n, cap)

        # ---------------- 3. close of bar t ----------------
        parent_eq = 0.0  # agent equities; unallocated cash (which liquidations may change) added after
        for a in range(N):
            e, pv = _mark(a, t, cash, qty, c)
            if alive[a] and pv > 0.0 and e <= maint * pv:
                # liquidation at the close (tradable symbols now, the rest at their next open)
                alive[a] = False
                for s in range(S):
                    q = qty[a, s]
                    if pend_kind[a, s] >= 0:
                        pend_kind[a, s] = -1
                        n_pending -= 1
                        agent_pend[a] -= 1
                    if q == 0.0:
                        continue
                    if tradable[t, s]:
                        px = _exit_price(q, c[t, s], slip)
                        n = _trade(a, s, -q, px, t, K_LIQUIDATION, fee_rate, qty, basis, cash,
                                   realized_acc, fees_acc, entry_bar, fills_i, fills_f, n, cap)
                    else:
                        pend_kind[a, s] = K_LIQUIDATION
                        pending[a, s] = 0.0
                        n_pending += 1
                        agent_pend[a] += 1
            if not alive[a]:
                flat = True
                for s in range(S):
                    if qty[a, s] != 0.0:
                        flat = False
                if flat and cash[a] != 0:
                    unalloc += cash[a]
                    n = _return_capital(a, t, cash, returned, fills_i, fills_f, n, cap)
                e, pv = _mark(a, t, cash, qty, c)
                equity_curve[a, tt] = max(e + returned[a] / UNITS, 0.0)
                posval_curve[a, tt] = pv
                parent_eq += e
                continue
            equity_curve[a, tt] = e + returned[a] / UNITS
            posval_curve[a, tt] = pv
            parent_eq += e
            if halted:  # no new exposure (nor max-hold exits) until the UTC day changes
                continue
            # max holding period, then new signals (decided on the close of t)
            for s in range(S):
                w = weight[a, s]
                if w == 0.0:
                    continue
                if max_hold[a] > 0 and qty[a, s] != 0.0 and t - entry_bar[a, s] >= max_hold[a]:
                    if pend_kind[a, s] < 0:
                        n_pending += 1
                        agent_pend[a] += 1
                    pend_kind[a, s] = K_MAX_HOLD
                    pending[a, s] = 0.0
                x = sig[a, t, s]
                if x < 0.0 and not allow_short:
                    x = 0.0
                if x != prev_sig[a, s]:
                    prev_sig[a, s] = x
                    if pend_kind[a, s] < 0:
                        n_pending += 1
                        agent_pend[a] += 1
                    pend_kind[a, s] = K_SIGNAL
                    pending[a, s] = x * w
        parent_curve[tt] = parent_eq + unalloc / UNITS
        # ---------------- 4. daily hard stop ----------------
        if hard_stop > 0.0 and not halted and ref_eq > 0.0 and parent_curve[tt] <= (1.0 - hard_stop) * ref_eq:
            halted = True
            hs_bars[n_hs] = t
            n_hs += 1
            for a in range(N):
                if not alive[a]:  # a liquidated agent's pending exits stay as they are
                    continue
                for s in range(S):
                    prev_sig[a, s] = 0.0  # a standing signal enters again on the next day
                    if pend_kind[a, s] >= 0:
                        pend_kind[a, s] = -1
                        n_pending -= 1
                        agent_pend[a] -= 1
                    if qty[a, s] != 0.0:
                        pend_kind[a, s] = K_HARD_STOP
                        pending[a, s] = 0.0
                        n_pending += 1
                        agent_pend[a] += 1

    # ---------------- settlement at the last close ----------------
    if settle and TT > 0:
        t = T - 1
        while n + room > cap:
            fills_i, fills_f = _grow(fills_i, fills_f)
            cap = fills_i.shape[0]
        for a in range(N):
            for s in range(S):
                q = qty[a, s]
                if q == 0.0:
                    continue
                px = _exit_price(q, c[t, s], slip)
                n = _trade(a, s, -q, px, t, K_SETTLE, fee_rate, qty, basis, cash, realized_acc,
                           fees_acc, entry_bar, fills_i, fills_f, n, cap)
            if cash[a] != 0:
                unalloc += cash[a]
                n = _return_capital(a, t, cash, returned, fills_i, fills_f, n, cap)
            equity_curve[a, TT - 1] = max(returned[a] / UNITS, 0.0)
            posval_curve[a, TT - 1] = 0.0
        parent_curve[TT - 1] = unalloc / UNITS

    return (n, cash, qty, basis, unalloc, breaches, alive, realized_acc, fees_acc, returned,
            equity_curve, posval_curve, parent_curve, fills_i, fills_f, hs_bars[:n_hs])
