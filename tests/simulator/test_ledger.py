"""The double-entry ledger: a hand-worked journal, reconciliation, tampering,
and property tests (hypothesis) for ledger balance and the parent gate."""
from __future__ import annotations

import copy
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.engine import EngineConfig, run_engine
from simulator.kernel import UNITS
from simulator.ledger import (LedgerError, Posting, Transaction, balances, build_journal, final_state,
                              verify_journal)
from tests.helpers import agents, market_from_prices


def _journal(r, m, ids):
    return build_journal(r, m.timestamps, m.symbols, ids), final_state(r, m.symbols, ids, m.close[-1])


def test_hand_worked_journal():
    # Bankroll 1000 USD; agent a00 gets 600, 400 stays with the parent.
    # Buy at 100.1 (100 + 10 bps): qty = 600 / (100.1 x 1.001); notional 599.40059940, fee 0.59940060.
    # Sell at 119.88 (120 - 10 bps): notional 717.84359497, fee 0.71784359.
    m = market_from_prices([100, 100, 110, 120, 125], close=[100, 110, 120, 125, 126])
    a = agents(1, 1, alloc=[600 * UNITS])
    r = run_engine(m, np.array([1, 1, 0, 0, 0], float)[None, :, None], a, bankroll_units=1000 * UNITS,
                   config=EngineConfig(fee_bps=10, slippage_bps=10))
    journal, state = _journal(r, m, ["a00"])
    as_tuples = [(t.kind, [(p.account, str(p.amount)) for p in t.postings]) for t in journal]
    assert as_tuples == [
        ("deposit", [("capital", "-1000.00000000"), ("parent:cash", "1000.00000000")]),
        ("allocation", [("parent:cash", "-600.00000000"), ("agent:a00:cash", "600.00000000")]),
        ("fill", [("agent:a00:position:S0_USD", "599.40059940"), ("agent:a00:cash", "-600.00000000"),
                  ("fees", "0.59940060")]),
        ("fill", [("agent:a00:position:S0_USD", "-599.40059940"), ("agent:a00:cash", "717.12575138"),
                  ("fees", "0.71784359"), ("agent:a00:realized_pnl", "-118.44299557")]),
    ]
    bal, _ = balances(journal)
    assert bal["parent:cash"] == Decimal("400")
    assert bal["agent:a00:cash"] == Decimal("717.12575138")
    assert bal["fees"] == Decimal("1.31724419")
    assert bal["agent:a00:position:S0_USD"] == 0
    rep = verify_journal(journal, state)
    assert rep.ok, rep.checks
    assert r.parent_equity[-1] == pytest.approx(400 + 717.12575138, abs=1e-8)


def test_unbalanced_transaction_is_refused():
    with pytest.raises(LedgerError, match="does not balance"):
        Transaction("x", 0, 0, "", "fill", "", (Posting("a", Decimal("1")), Posting("b", Decimal("-0.99999999"))))


def test_verify_detects_tampering():
    m = market_from_prices([100, 101, 102, 103, 104])
    r = run_engine(m, np.array([1, 1, 0, 1, 1], float)[None, :, None], agents(1, 1),
                   bankroll_units=1000 * UNITS, config=EngineConfig())
    journal, state = _journal(r, m, ["a00"])
    dicts = [t.to_dict() for t in journal]
    assert verify_journal(dicts, state).ok
    # an unbalanced posting
    bad = copy.deepcopy(dicts)
    bad[2]["postings"][0]["amount"] = str(Decimal(bad[2]["postings"][0]["amount"]) + Decimal("0.00000001"))
    rep = verify_journal(bad, state)
    assert not rep.ok and not rep.checks[0][1]
    # a missing transaction: still balanced, but no longer matches the engine
    rep = verify_journal(dicts[:-1], state)
    assert rep.checks[0][1] and not rep.ok
    # a final state that disagrees with the journal
    wrong = copy.deepcopy(state)
    wrong["agents"]["a00"]["cash"] = "1.00000000"
    assert not verify_journal(dicts, wrong).ok


prices = st.lists(st.floats(min_value=50, max_value=150, allow_nan=False), min_size=4, max_size=40)


@st.composite
def scenarios(draw):
    T = draw(st.integers(4, 40))
    S = draw(st.integers(1, 3))
    N = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (T, S)), axis=0))
    o = np.vstack([c[:1], c[:-1]]) * np.exp(rng.normal(0, 0.01, (T, S)))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.02, (T, S)))
    l = np.minimum(o, c) * (1 - rng.uniform(0, 0.02, (T, S)))
    tradable = rng.random((T, S)) > 0.1
    sig = rng.choice([-1.0, 0.0, 0.5, 1.0], size=(N, T, S))
    lev = rng.uniform(1, 4, N)
    weight = rng.uniform(0, 1, (N, S)) * lev[:, None]
    alloc = (rng.uniform(10, 1000, N) * UNITS).astype(np.int64)
    bankroll = int(alloc.sum() + rng.uniform(0, 500) * UNITS)
    cfg = EngineConfig(
        fee_bps=draw(st.sampled_from([0.0, 5.0, 25.0])),
        slippage_bps=draw(st.sampled_from([0.0, 3.0, 50.0])),
        max_gross_leverage=draw(st.sampled_from([0.5, 1.0, 3.0])),
        max_symbol_exposure=draw(st.sampled_from([0.2, 1.0])),
        maintenance_margin=draw(st.sampled_from([0.0, 0.05, 0.5])),
        allow_short=draw(st.booleans()),
        settle=draw(st.booleans()),
    )
    m = market_from_prices(o, high=h, low=l, close=c, tradable=tradable)
    a = agents(N, S, weight=weight, alloc=alloc)
    a = type(a)(weight, lev, rng.choice([0.0, 0.02], N), rng.choice([0.0, 0.05], N),
                rng.choice([0, 5], N).astype(np.int64), alloc)
    return m, sig, a, bankroll, cfg


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_property_every_journal_balances_and_reconciles(sc):
    m, sig, a, bankroll, cfg = sc
    r = run_engine(m, sig, a, bankroll_units=bankroll, config=cfg)
    ids = [f"a{i:02d}" for i in range(len(a.leverage))]
    journal, state = _journal(r, m, ids)
    rep = verify_journal(journal, state)
    assert rep.ok, rep.checks
    assert r.equity.min() >= 0.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_property_parent_gate_never_lets_an_order_raise_exposure_past_a_limit(sc):
    """Rebuild positions and cash from the fills; at each bar's open, after the
    order fills, gross exposure may exceed a ceiling only if it already did
    before those fills (the gate scales increases, never reductions)."""
    m, sig, a, bankroll, cfg = sc
    cfg = EngineConfig(fee_bps=cfg.fee_bps, slippage_bps=cfg.slippage_bps,
                       max_gross_leverage=cfg.max_gross_leverage,
                       max_symbol_exposure=cfg.max_symbol_exposure, maintenance_margin=0.0,
                       allow_short=cfg.allow_short)
    a = type(a)(a.weight, a.leverage, np.zeros_like(a.stop_loss), np.zeros_like(a.take_profit),
                np.zeros_like(a.max_hold_bars), a.allocation)  # only signal fills, all at the open
    r = run_engine(m, sig, a, bankroll_units=bankroll, config=cfg)
    N, S = a.weight.shape
    q = np.zeros((N, S))
    cash = a.allocation.astype(np.float64) / UNITS
    unalloc = (bankroll - a.allocation.sum()) / UNITS
    f = r.fills
    tol = 1e-9
    for t in np.unique(f["bar"]):
        o = m.open[t]
        eq_before = cash + (q * o).sum(axis=1)
        parent = unalloc + eq_before.sum()
        gross_before = np.abs(q) * o
        for j in np.flatnonzero(f["bar"] == t):
            q[f["agent"][j], f["symbol"][j]] = f["position"][j]
            cash[f["agent"][j]] += f["cash_units"][j] / UNITS
        gross_after = np.abs(q) * o
        # parent ceiling
        lim = cfg.max_gross_leverage * parent
        assert gross_after.sum() <= max(lim, gross_before.sum()) * (1 + tol) + tol
        # per-symbol cap
        lim_s = cfg.max_symbol_exposure * parent
        assert np.all(gross_after.sum(axis=0) <= np.maximum(lim_s, gross_before.sum(axis=0)) * (1 + tol) + tol)
        # each agent's leverage ceiling
        lim_a = a.leverage * np.maximum(eq_before, 0)
        assert np.all(gross_after.sum(axis=1) <= np.maximum(lim_a, gross_before.sum(axis=1)) * (1 + tol) + tol)
