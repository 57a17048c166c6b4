"""The parent-bankroll ledger: an append-only double-entry journal.

Every transaction is a list of postings ``(account, amount)`` whose amounts sum
to exactly zero. Amounts are :class:`decimal.Decimal` quantised to 1e-8 of the
quote currency; positive = debit (an asset grows), negative = credit.

Accounts:

==============================  ===============================================
``capital``                     the owner's bankroll (credit when funded)
``parent:cash``                 parent cash not allocated to agents
``agent:<id>:cash``             an agent's cash (negative while borrowing)
``agent:<id>:position:<sym>``   signed cost basis of an open position
``agent:<id>:realized_pnl``     realised PnL (credit = profit)
``fees``                        fees paid (debit)
==============================  ===============================================

Transactions (``kind``): ``deposit``, ``allocation``, ``fill`` (with the fill
reason in ``memo``), ``shortfall_cover`` and ``return_of_capital``.

:func:`verify_journal` is the reconciliation: it proves every transaction
balances, that balances derived from the journal equal the engine's final state
to 1e-8, and that parent equity = unallocated cash + the sum of agent equities.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Sequence

import numpy as np

from simulator.kernel import K_RETURN, K_SHORTFALL, KIND_NAMES, UNITS

QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)


class LedgerError(ValueError):
    """An unbalanced or malformed transaction."""


def units_to_decimal(units: int) -> Decimal:
    """int units of 1e-8 -> exact Decimal (``150000000`` -> ``Decimal('1.50000000')``)."""
    return Decimal(int(units)).scaleb(-8).quantize(QUANTUM)


def decimal_to_units(amount: Decimal | str) -> int:
    """Exact Decimal (or its string) -> int units of 1e-8.

    Raises:
        LedgerError: the amount has more than 8 decimals.
    """
    d = Decimal(amount)
    u = d.scaleb(8)
    if u != u.to_integral_value():
        raise LedgerError(f"amount {amount} has more than 8 decimals")
    return int(u)


@dataclass(frozen=True)
class Posting:
    """One leg of a transaction: ``amount`` (Decimal, 1e-8) on ``account``;
    ``qty``/``symbol`` are set on position legs (quantity in base units)."""

    account: str
    amount: Decimal
    qty: float | None = None
    symbol: str | None = None

    def to_dict(self) -> dict:
        """JSON-able form with the amount as an exact string."""
        return {
            "account": self.account,
            "amount": str(self.amount),
            "qty": None if self.qty is None else repr(float(self.qty)),
            "symbol": self.symbol,
        }


@dataclass(frozen=True)
class Transaction:
    """A balanced journal entry.

    Attributes:
        txn_id: unique, deterministic id within the run (``00000042-fill``).
        seq: position in the journal (0-based).
        bar: market bar index it belongs to (-1 before trading).
        time: ISO-8601 UTC time of that bar.
        kind: ``deposit`` | ``allocation`` | ``fill`` | ``shortfall_cover`` |
            ``return_of_capital``.
        memo: free text (fill reason, symbol, side).
        postings: the legs; their amounts sum to exactly zero.

    Raises:
        LedgerError: on construction, when the postings do not sum to zero.
    """

    txn_id: str
    seq: int
    bar: int
    time: str
    kind: str
    memo: str
    postings: tuple[Posting, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        total = sum((p.amount for p in self.postings), ZERO)
        if total != 0:
            raise LedgerError(f"transaction {self.txn_id} does not balance: sum = {total}")

    def to_dict(self) -> dict:
        """JSON-able form (the shape the store keeps)."""
        return {
            "txn_id": self.txn_id, "seq": self.seq, "bar": self.bar, "time": self.time,
            "kind": self.kind, "memo": self.memo,
            "postings": [p.to_dict() for p in self.postings],
        }


def agent_account(agent_id: str, leaf: str) -> str:
    """``agent:<id>:<leaf>``."""
    return f"agent:{agent_id}:{leaf}"


def _iso(ts: np.datetime64) -> str:
    return str(np.datetime64(ts, "s")) + "Z"


def build_journal(result, timestamps: np.ndarray, symbols: Sequence[str],
                  agent_ids: Sequence[str]) -> list[Transaction]:
    """Journal of one engine run: deposit, allocations, then every fill and
    capital movement in execution order.

    Args:
        result: a :class:`simulator.engine.EngineResult`.
        timestamps: ``(T,)`` the market's bar times (fills index into it).
        symbols: the market's S symbols.
        agent_ids: N agent ids used in account names.

    Returns:
        Transactions with seq 0..; each balances (checked on construction).
    """
    txns: list[Transaction] = []
    start = _iso(result.timestamps[0]) if len(result.timestamps) else ""

    def add(bar: int, time: str, kind: str, memo: str, postings: Iterable[Posting]) -> None:
        seq = len(txns)
        txns.append(Transaction(f"{seq:08d}-{kind}", seq, bar, time, kind, memo, tuple(postings)))

    bankroll = units_to_decimal(result.bankroll_units)
    add(-1, start, "deposit", "parent bankroll",
        [Posting("capital", -bankroll), Posting("parent:cash", bankroll)])
    for i, aid in enumerate(agent_ids):
        amount = units_to_decimal(result.allocation_units[i])
        add(-1, start, "allocation", f"allocate to {aid}",
            [Posting("parent:cash", -amount), Posting(agent_account(aid, "cash"), amount)])

    f = result.fills
    bars, agents, syms, kinds = f["bar"], f["agent"], f["symbol"], f["kind"]
    fee_u, real_u, basis_u, cash_u = f["fee_units"], f["realized_units"], f["basis_units"], f["cash_units"]
    qty = f["qty"]
    for j in range(len(bars)):
        bar, a, s, k = int(bars[j]), int(agents[j]), int(syms[j]), int(kinds[j])
        aid = agent_ids[a]
        time = _iso(timestamps[bar])
        cash = units_to_decimal(cash_u[j])
        if k in (K_RETURN, K_SHORTFALL):
            # cash_units is the agent's cash change; the parent takes the opposite side
            add(bar, time, KIND_NAMES[k], aid,
                [Posting(agent_account(aid, "cash"), cash), Posting("parent:cash", -cash)])
            continue
        sym = symbols[s]
        legs = [
            Posting(agent_account(aid, f"position:{sym}"), units_to_decimal(basis_u[j]),
                    qty=float(qty[j]), symbol=sym),
            Posting(agent_account(aid, "cash"), cash),
        ]
        if fee_u[j]:
            legs.append(Posting("fees", units_to_decimal(fee_u[j])))
        if real_u[j]:
            legs.append(Posting(agent_account(aid, "realized_pnl"), -units_to_decimal(real_u[j])))
        side = "buy" if qty[j] > 0 else "sell"
        add(bar, time, "fill", f"{KIND_NAMES[k]} {side} {sym}", legs)
    return txns


def balances(txns: Iterable[dict | Transaction]) -> tuple[dict[str, Decimal], dict[str, float]]:
    """Account balances and position quantities derived from a journal.

    Args:
        txns: transactions, as :class:`Transaction` or their dict form.

    Returns:
        ``(balance by account, quantity by position account)``.
    """
    bal: dict[str, Decimal] = {}
    qty: dict[str, float] = {}
    for t in txns:
        d = t.to_dict() if isinstance(t, Transaction) else t
        for p in d["postings"]:
            acc = p["account"]
            bal[acc] = bal.get(acc, ZERO) + Decimal(p["amount"])
            if p.get("qty") is not None:
                qty[acc] = qty.get(acc, 0.0) + float(p["qty"])
    return bal, qty


def final_state(result, symbols: Sequence[str], agent_ids: Sequence[str],
                last_close: np.ndarray) -> dict:
    """The engine's final state in the JSON form :func:`verify_journal` checks.

    Args:
        result: :class:`simulator.engine.EngineResult`.
        symbols, agent_ids: names of the S symbols and N agents.
        last_close: ``(S,)`` close of the last traded bar (marks open positions).
    """
    agents = {}
    for i, aid in enumerate(agent_ids):
        positions = {}
        for s, sym in enumerate(symbols):
            if result.qty[i, s] != 0.0 or result.basis_units[i, s] != 0:
                positions[sym] = {"qty": repr(float(result.qty[i, s])),
                                  "basis": str(units_to_decimal(result.basis_units[i, s]))}
        agents[aid] = {
            "cash": str(units_to_decimal(result.cash_units[i])),
            "realized_pnl": str(units_to_decimal(result.realized_units[i])),
            "fees": str(units_to_decimal(result.fee_units[i])),
            "positions": positions,
            "equity": repr(float(result.equity[i, -1] - result.returned_units[i] / UNITS)),
        }
    return {
        "bankroll": str(units_to_decimal(result.bankroll_units)),
        "unallocated_cash": str(units_to_decimal(result.unallocated_units)),
        "parent_equity": repr(float(result.parent_equity[-1])),
        "last_close": {sym: repr(float(last_close[s])) for s, sym in enumerate(symbols)},
        "agents": agents,
    }


@dataclass
class VerifyReport:
    """Outcome of :func:`verify_journal`: ``ok`` and one line per check."""

    ok: bool
    transactions: int
    checks: list[tuple[str, bool, str]]


def verify_journal(txns: Sequence[dict | Transaction], state: dict, tol: float = 1e-8) -> VerifyReport:
    """Reconcile a journal against the engine's final state.

    Checks: (1) every transaction's postings sum to exactly zero; (2) derived
    cash, cost basis, realised PnL and fee balances equal the engine's to within
    ``tol`` (quote currency; they are exact in practice) and position quantities
    agree to ``tol`` relative; (3) parent equity = unallocated cash + sum of agent
    equities, where each agent equity = cash + sum(qty x last close), all from the
    journal, within ``tol`` x (1 + bankroll) of the engine's parent equity;
    (4) the accounting identity bankroll + realised PnL - fees + unrealised PnL =
    parent equity.

    Args:
        txns: the journal (dicts as stored, or :class:`Transaction`).
        state: :func:`final_state` output.
        tol: absolute tolerance in quote currency.
    """
    checks: list[tuple[str, bool, str]] = []
    dicts = [t.to_dict() if isinstance(t, Transaction) else t for t in txns]
    unbalanced = [d["txn_id"] for d in dicts
                  if sum((Decimal(p["amount"]) for p in d["postings"]), ZERO) != 0]
    checks.append(("every transaction sums to zero", not unbalanced,
                   f"{len(dicts)} transactions" if not unbalanced else f"unbalanced: {unbalanced[:5]}"))
    bal, qty = balances(dicts)
    tol_d = Decimal(repr(tol))
    mismatches = []

    def cmp(account: str, expected: str) -> None:
        got = bal.get(account, ZERO)
        if abs(got - Decimal(expected)) > tol_d:
            mismatches.append(f"{account}: journal {got} vs engine {expected}")

    cmp("parent:cash", state["unallocated_cash"])
    closes = {k: float(v) for k, v in state["last_close"].items()}
    agent_equity_sum = 0.0
    unrealized = 0.0
    fees_total = ZERO
    realized_total = ZERO
    for aid, a in state["agents"].items():
        cmp(agent_account(aid, "cash"), a["cash"])
        cmp(agent_account(aid, "realized_pnl"), str(-Decimal(a["realized_pnl"])))
        fees_total += Decimal(a["fees"])
        realized_total += Decimal(a["realized_pnl"])
        eq = float(bal.get(agent_account(aid, "cash"), ZERO))
        prefix = agent_account(aid, "position:")
        for acc, b in bal.items():
            if acc.startswith(prefix):
                sym = acc[len(prefix):]
                q = qty.get(acc, 0.0)
                eq += q * closes[sym]
                unrealized += q * closes[sym] - float(b)
        for sym, pos in a["positions"].items():
            acc = prefix + sym
            cmp(acc, pos["basis"])
            q_eng = float(pos["qty"])
            if abs(qty.get(acc, 0.0) - q_eng) > tol * max(1.0, abs(q_eng)):
                mismatches.append(f"{acc} qty: journal {qty.get(acc, 0.0)!r} vs engine {q_eng!r}")
        agent_equity_sum += eq
    cmp("fees", str(fees_total))
    checks.append(("journal balances match the engine's final state", not mismatches,
                   "cash, positions, realised PnL, fees" if not mismatches else "; ".join(mismatches[:5])))
    parent_cash = float(bal.get("parent:cash", ZERO))
    parent_eq = float(state["parent_equity"])
    bankroll = float(state["bankroll"])
    scale = tol * (1.0 + abs(bankroll))
    derived = parent_cash + agent_equity_sum
    checks.append(("parent equity = unallocated cash + sum of agent equities",
                   abs(derived - parent_eq) <= scale,
                   f"{parent_cash:.8f} + {agent_equity_sum:.8f} = {derived:.8f} vs engine {parent_eq:.8f}"))
    identity = bankroll + float(realized_total) - float(fees_total) + unrealized
    checks.append(("bankroll + realised PnL - fees + unrealised PnL = parent equity",
                   abs(identity - parent_eq) <= scale,
                   f"{identity:.8f} vs {parent_eq:.8f}"))
    return VerifyReport(all(ok for _, ok, _ in checks), len(dicts), checks)
