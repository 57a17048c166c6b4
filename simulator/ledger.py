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

**Hash chain** (tamper evidence): every transaction carries ``prev_hash`` (the
``hash`` of the transaction before it; :data:`GENESIS` for seq 0) and ``hash`` =
SHA-256 (hex) of its canonical form (:func:`canonical_txn`), which covers seq,
txn_id, bar, time, kind, memo, every posting (account, amount in integer units
of 1e-8, qty, symbol) and ``prev_hash``. The last ``hash`` is the journal's
**head**; :func:`simulator.ledger_chain.verify_chain` re-derives the chain and names the first broken
link, and checks the head against one kept elsewhere.

:func:`build_journal` builds the journal column-wise from the engine's integer
units (a :class:`Journal`); Decimals are made only at the edges (materialising
a :class:`Transaction`, or the exact amount strings of :meth:`Journal.to_dicts`).

:func:`verify_journal` is the reconciliation: it proves every transaction
balances, that balances derived from the journal equal the engine's final state
to 1e-8, and that parent equity = unallocated cash + the sum of agent equities.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from simulator.kernel import K_RETURN, K_SHORTFALL, KIND_NAMES, UNITS
from simulator.ledger_text import _PREFIX_ALLOCATION, _PREFIX_DEPOSIT, CHAIN_SCHEME, GENESIS, chain_hashes

QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)
#: ``prev_hash`` of the first transaction (seq 0) of every journal
#: the chain's canonical form and hash, as recorded with the head
_SHA = hashlib.sha256


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


def units_to_str(units: int) -> str:
    """int units -> the exact string of :func:`units_to_decimal` (``str(Decimal)``),
    without making a Decimal for amounts of at least 1e-6 (plain notation)."""
    u = int(units)
    a = -u if u < 0 else u
    if a < 100:  # str(Decimal) switches to exponent notation below 1e-6
        return str(units_to_decimal(u))
    return f"{'-' if u < 0 else ''}{a // 100_000_000}.{a % 100_000_000:08d}"


def canonical_txn(txn: dict, prev_hash: str) -> str:
    """The canonical form a transaction's ``hash`` is computed over: compact JSON
    (``json.dumps(..., separators=(",", ":"))``, ASCII) of
    ``[seq, txn_id, bar, time, kind, memo, [[account, amount_units, qty, symbol], ...], prev_hash]``
    with each amount as an integer number of 1e-8 units and qty as its stored
    string (or null).

    Raises:
        LedgerError: a missing field or an amount that is not a decimal with at
            most 8 decimals.
    """
    try:
        legs = [[p["account"], decimal_to_units(p["amount"]), p.get("qty"), p.get("symbol")]
                for p in txn["postings"]]
        body = [txn["seq"], txn["txn_id"], txn["bar"], txn["time"], txn["kind"], txn.get("memo", ""),
                legs, prev_hash]
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise LedgerError(f"malformed transaction: {type(exc).__name__}: {exc}") from None
    return json.dumps(body, separators=(",", ":"))


def txn_hash(txn: dict, prev_hash: str) -> str:
    """SHA-256 (hex) of :func:`canonical_txn`."""
    return _SHA(canonical_txn(txn, prev_hash).encode("ascii")).hexdigest()


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
    prev_hash: str = ""
    hash: str = ""

    def __post_init__(self) -> None:
        total = sum((p.amount for p in self.postings), ZERO)
        if total != 0:
            raise LedgerError(f"transaction {self.txn_id} does not balance: sum = {total}")

    def to_dict(self) -> dict:
        """JSON-able form (the shape the store keeps); ``prev_hash`` and ``hash``
        when the transaction is chained."""
        d = {
            "txn_id": self.txn_id, "seq": self.seq, "bar": self.bar, "time": self.time,
            "kind": self.kind, "memo": self.memo,
            "postings": [p.to_dict() for p in self.postings],
        }
        if self.hash:
            d["prev_hash"] = self.prev_hash
            d["hash"] = self.hash
        return d


def agent_account(agent_id: str, leaf: str) -> str:
    """``agent:<id>:<leaf>``."""
    return f"agent:{agent_id}:{leaf}"


def _iso(ts: np.datetime64) -> str:
    return str(np.datetime64(ts, "s")) + "Z"




class Journal(Sequence[Transaction]):
    """A chained journal held column-wise in the engine's integer units.

    It behaves as a read-only sequence of :class:`Transaction` (made on access,
    with Decimal amounts); :meth:`to_dicts` gives the stored form (exact amount
    strings) and :attr:`head` the chain's head hash. Built by
    :func:`build_journal`; :func:`verify_journal` checks it in integer units.
    """

    def __init__(self, *, accounts: list[str], symbols: Sequence[str], agent_ids: Sequence[str],
                 times: list[str], start: str, tbar: np.ndarray, tfk: np.ndarray, tagent: np.ndarray,
                 tsym: np.ndarray, tbuy: np.ndarray, off: np.ndarray, acc: np.ndarray,
                 units: np.ndarray, qty: np.ndarray, psym: np.ndarray, hashes: list[str]):
        self.accounts, self.symbols, self.agent_ids = accounts, list(symbols), list(agent_ids)
        self._times, self._start = times, start
        self.tbar, self.tfk, self.tagent, self.tsym, self.tbuy = tbar, tfk, tagent, tsym, tbuy
        self.off, self.acc, self.units, self.qty, self.psym = off, acc, units, qty, psym
        self.hashes = hashes

    # -- the chain ------------------------------------------------------------------

    @property
    def head(self) -> str:
        """The last transaction's hash (:data:`GENESIS` for an empty journal)."""
        return self.hashes[-1] if self.hashes else GENESIS

    def prev_hash(self, i: int) -> str:
        return self.hashes[i - 1] if i > 0 else GENESIS

    # -- sequence -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.tbar)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._txn(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._txn(i)

    def __iter__(self) -> Iterator[Transaction]:
        return (self._txn(i) for i in range(len(self)))

    def _meta(self, i: int) -> tuple[str, int, str, str, str]:
        """``(kind, bar, time, memo, symbol or None)`` of transaction ``i``."""
        fk, a, bar = int(self.tfk[i]), int(self.tagent[i]), int(self.tbar[i])
        if fk == _PREFIX_DEPOSIT:
            return "deposit", -1, self._start, "parent bankroll", None
        if fk == _PREFIX_ALLOCATION:
            return "allocation", -1, self._start, f"allocate to {self.agent_ids[a]}", None
        time = self._times[bar]
        if fk in (K_RETURN, K_SHORTFALL):
            return KIND_NAMES[fk], bar, time, self.agent_ids[a], None
        sym = self.symbols[int(self.tsym[i])]
        return "fill", bar, time, f"{KIND_NAMES[fk]} {'buy' if self.tbuy[i] else 'sell'} {sym}", sym

    def _legs(self, i: int) -> range:
        return range(int(self.off[i]), int(self.off[i + 1]))

    def _txn(self, i: int) -> Transaction:
        kind, bar, time, memo, _ = self._meta(i)
        postings = []
        for k in self._legs(i):
            q = float(self.qty[k])
            s = int(self.psym[k])
            postings.append(Posting(self.accounts[int(self.acc[k])], units_to_decimal(int(self.units[k])),
                                    qty=None if q != q else q, symbol=None if s < 0 else self.symbols[s]))
        return Transaction(f"{i:08d}-{kind}", i, bar, time, kind, memo, tuple(postings),
                           prev_hash=self.prev_hash(i), hash=self.hashes[i])

    def to_dicts(self) -> list[dict]:
        """The stored form of every transaction (as :meth:`Transaction.to_dict`),
        amounts as exact strings made from the integer units."""
        units = self.units.tolist()
        accs = [self.accounts[a] for a in self.acc.tolist()]
        qtys = [None if q != q else repr(q) for q in self.qty.tolist()]
        syms = [None if s < 0 else self.symbols[s] for s in self.psym.tolist()]
        amounts = [units_to_str(u) for u in units]
        off = self.off.tolist()
        ids, times, start, hashes = self.agent_ids, self._times, self._start, self.hashes
        out = []
        prev = GENESIS
        for i, (fk, a, bar, s, buy) in enumerate(zip(self.tfk.tolist(), self.tagent.tolist(), self.tbar.tolist(),
                                                     self.tsym.tolist(), self.tbuy.tolist())):
            if fk == _PREFIX_DEPOSIT:
                kind, time, memo = "deposit", start, "parent bankroll"
            elif fk == _PREFIX_ALLOCATION:
                kind, time, memo = "allocation", start, f"allocate to {ids[a]}"
            elif fk == K_RETURN or fk == K_SHORTFALL:
                kind, time, memo = KIND_NAMES[fk], times[bar], ids[a]
            else:
                kind, time = "fill", times[bar]
                memo = f"{KIND_NAMES[fk]} {'buy' if buy else 'sell'} {self.symbols[s]}"
            out.append({
                "txn_id": f"{i:08d}-{kind}", "seq": i, "bar": bar, "time": time, "kind": kind, "memo": memo,
                "postings": [{"account": accs[k], "amount": amounts[k], "qty": qtys[k], "symbol": syms[k]}
                             for k in range(off[i], off[i + 1])],
                "prev_hash": prev, "hash": hashes[i],
            })
            prev = hashes[i]
        return out


def journal_dicts(txns: Iterable[dict | Transaction] | Journal) -> list[dict]:
    """The stored (dict) form of a journal, whatever its type."""
    if isinstance(txns, Journal):
        return txns.to_dicts()
    return [t.to_dict() if isinstance(t, Transaction) else t for t in txns]


def ledger_chain(txns: Journal | Sequence[dict | Transaction]) -> dict:
    """What a run keeps of its journal's chain: ``{"scheme", "genesis", "head",
    "transactions"}`` (the head hash is the last transaction's ``hash``)."""
    if isinstance(txns, Journal):
        head = txns.head
    else:
        last = txns[-1] if len(txns) else None
        d = last.to_dict() if isinstance(last, Transaction) else (last or {})
        head = d.get("hash", GENESIS)
    return {"scheme": CHAIN_SCHEME, "genesis": GENESIS, "head": head, "transactions": len(txns)}


def build_journal(result, timestamps: np.ndarray, symbols: Sequence[str],
                  agent_ids: Sequence[str]) -> Journal:
    """Chained journal of one engine run: deposit, allocations, then every fill
    and capital movement in execution order.

    Postings are laid out in bulk from the engine's integer units (numpy); each
    transaction's hash is then chained over its canonical form, written here
    straight from those integers (identical to :func:`canonical_txn` of its
    dict form).

    Args:
        result: a :class:`simulator.engine.EngineResult`.
        timestamps: ``(T,)`` the market's bar times (fills index into it).
        symbols: the market's S symbols.
        agent_ids: N agent ids used in account names.

    Returns:
        A :class:`Journal`, seq 0..; every transaction balances by construction.
    """
    symbols, agent_ids = list(symbols), list(agent_ids)
    N, S = len(agent_ids), len(symbols)
    start = _iso(result.timestamps[0]) if len(result.timestamps) else ""
    ts = np.asarray(timestamps).astype("datetime64[s]")
    times = [t + "Z" for t in np.datetime_as_string(ts, unit="s").tolist()]
    accounts = (["capital", "parent:cash", "fees"] + [agent_account(a, "cash") for a in agent_ids]
                + [agent_account(a, "realized_pnl") for a in agent_ids]
                + [agent_account(a, f"position:{s}") for a in agent_ids for s in symbols])
    CASH, REAL, POS = 3, 3 + N, 3 + 2 * N

    f = result.fills
    fbar = np.asarray(f["bar"], dtype=np.int64)
    fag = np.asarray(f["agent"], dtype=np.int64)
    fsym = np.asarray(f["symbol"], dtype=np.int64)
    fk = np.asarray(f["kind"], dtype=np.int64)
    fee = np.asarray(f["fee_units"], dtype=np.int64)
    real = np.asarray(f["realized_units"], dtype=np.int64)
    basis = np.asarray(f["basis_units"], dtype=np.int64)
    cash = np.asarray(f["cash_units"], dtype=np.int64)
    fq = np.asarray(f["qty"], dtype=np.float64)
    F = len(fbar)
    cap = (fk == K_RETURN) | (fk == K_SHORTFALL)
    trade = ~cap
    has_fee = trade & (fee != 0)
    has_real = trade & (real != 0)
    nlegs = np.concatenate(([2], np.full(N, 2, np.int64), 2 + has_fee + has_real)).astype(np.int64)
    off = np.zeros(len(nlegs) + 1, np.int64)
    np.cumsum(nlegs, out=off[1:])
    L = int(off[-1])
    acc = np.empty(L, np.int64)
    units = np.empty(L, np.int64)
    qty = np.full(L, np.nan)
    psym = np.full(L, -1, np.int64)
    bank = int(result.bankroll_units)
    alloc = np.asarray(result.allocation_units, dtype=np.int64)
    acc[0:2], units[0:2] = (0, 1), (-bank, bank)
    b0 = off[1:1 + N]
    acc[b0], units[b0] = 1, -alloc
    acc[b0 + 1], units[b0 + 1] = CASH + np.arange(N), alloc
    base = off[1 + N:1 + N + F]
    bc, bt = base[cap], base[trade]
    acc[bc], units[bc] = CASH + fag[cap], cash[cap]
    acc[bc + 1], units[bc + 1] = 1, -cash[cap]
    acc[bt], units[bt] = POS + fag[trade] * S + fsym[trade], basis[trade]
    qty[bt], psym[bt] = fq[trade], fsym[trade]
    acc[bt + 1], units[bt + 1] = CASH + fag[trade], cash[trade]
    bf = base[has_fee] + 2
    acc[bf], units[bf] = 2, fee[has_fee]
    br = base[has_real] + 2 + has_fee[has_real]
    acc[br], units[br] = REAL + fag[has_real], -real[has_real]

    tbar = np.concatenate((np.full(1 + N, -1, np.int64), fbar))
    tfk = np.concatenate(([_PREFIX_DEPOSIT], np.full(N, _PREFIX_ALLOCATION, np.int64), fk))
    tagent = np.concatenate(([0], np.arange(N, dtype=np.int64), fag))
    tsym = np.concatenate((np.full(1 + N, -1, np.int64), fsym))
    tbuy = np.concatenate((np.zeros(1 + N, bool), fq > 0))

    # -- the chain: canonical JSON written from the integers (see canonical_txn) ----------
    hashes = chain_hashes(accounts, symbols, agent_ids, times, start, tbar, tfk, tagent, tsym, tbuy,
                           off, acc, units, qty, psym)
    return Journal(accounts=accounts, symbols=symbols, agent_ids=agent_ids, times=times, start=start,
                   tbar=tbar, tfk=tfk, tagent=tagent, tsym=tsym, tbuy=tbuy, off=off, acc=acc,
                   units=units, qty=qty, psym=psym, hashes=hashes)


def _journal_balances(j: Journal) -> tuple[dict[str, Decimal], dict[str, float]]:
    """:func:`balances` of a :class:`Journal`, summed in integer units (numpy)."""
    n_acc = len(j.accounts)
    tot = np.zeros(n_acc, np.int64)
    np.add.at(tot, j.acc, j.units)
    used = np.zeros(n_acc, np.int64)
    np.add.at(used, j.acc, 1)
    pos = ~np.isnan(j.qty)
    qsum = np.zeros(n_acc)
    np.add.at(qsum, j.acc[pos], j.qty[pos])  # in journal order, as balances() adds them
    qused = np.zeros(n_acc, np.int64)
    np.add.at(qused, j.acc[pos], 1)
    bal = {j.accounts[a]: Decimal(int(tot[a])).scaleb(-8) for a in np.flatnonzero(used).tolist()}
    qty = {j.accounts[a]: float(qsum[a]) for a in np.flatnonzero(qused).tolist()}
    return bal, qty


def balances(txns: Iterable[dict | Transaction]) -> tuple[dict[str, Decimal], dict[str, float]]:
    """Account balances and position quantities derived from a journal.

    Args:
        txns: transactions, as :class:`Transaction` or their dict form.

    Returns:
        ``(balance by account, quantity by position account)``.
    """
    if isinstance(txns, Journal):
        return _journal_balances(txns)
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


def verify_journal(txns: Sequence[dict | Transaction] | Journal, state: dict, tol: float = 1e-8) -> VerifyReport:
    """Reconcile a journal against the engine's final state.

    Checks: (1) every transaction's postings sum to exactly zero; (2) derived
    cash, cost basis, realised PnL and fee balances equal the engine's to within
    ``tol`` (quote currency; they are exact in practice) and position quantities
    agree to ``tol`` relative; (3) parent equity = unallocated cash + sum of agent
    equities, where each agent equity = cash + sum(qty x last close), all from the
    journal, within ``tol`` x (1 + bankroll) of the engine's parent equity;
    (4) the accounting identity bankroll + realised PnL - fees + unrealised PnL =
    parent equity.

    A :class:`Journal` is checked in integer units (numpy); the hash chain of a
    stored journal is checked by :func:`simulator.ledger_chain.verify_chain`.

    Args:
        txns: the journal (a :class:`Journal`, dicts as stored, or :class:`Transaction`).
        state: :func:`final_state` output.
        tol: absolute tolerance in quote currency.
    """
    checks: list[tuple[str, bool, str]] = []
    if isinstance(txns, Journal):  # integer units, in bulk
        n = len(txns)
        sums = np.add.reduceat(txns.units, txns.off[:-1]) if n else np.zeros(0, np.int64)
        unbalanced = [f"{int(i):08d}" for i in np.flatnonzero(sums)[:5]]
        bal, qty = _journal_balances(txns)
    else:
        dicts = [t.to_dict() if isinstance(t, Transaction) else t for t in txns]
        n = len(dicts)
        unbalanced = [d["txn_id"] for d in dicts
                      if sum((Decimal(p["amount"]) for p in d["postings"]), ZERO) != 0]
        bal, qty = balances(dicts)
    checks.append(("every transaction sums to zero", not unbalanced,
                   f"{n} transactions" if not unbalanced else f"unbalanced: {unbalanced[:5]}"))
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
    return VerifyReport(all(ok for _, ok, _ in checks), n, checks)
