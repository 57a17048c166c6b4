"""Checking a stored journal's hash chain (the tamper evidence of :mod:`simulator.ledger`).

Each transaction carries ``prev_hash`` (the ``hash`` of the transaction before it,
:data:`~simulator.ledger.GENESIS` for seq 0) and ``hash`` = SHA-256 of its canonical
content (:func:`~simulator.ledger.canonical_txn`); the run keeps the head (the last
``hash``). :func:`verify_chain` re-derives the chain and names the first broken link.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from simulator.ledger import GENESIS, LedgerError, txn_hash

__all__ = ["ChainReport", "verify_chain"]


@dataclass
class ChainReport:
    """Outcome of :func:`verify_chain`.

    Attributes:
        ok: the chain is intact (and ends at ``expected_head`` when one was given).
        head: the head re-derived from the journal.
        broken: the first broken link (``seq``, ``txn_id``, ``what``), or None.
        chained: the journal carries hashes at all (runs stored before the
            chain do not).
    """

    ok: bool
    head: str
    broken: dict | None
    chained: bool

    def describe(self) -> str:
        if self.broken is not None:
            b = self.broken
            return f"first broken link: seq {b['seq']} (txn_id {b['txn_id']!r}): {b['what']}"
        if not self.chained:
            return "journal not chained (stored before the hash chain)"
        return f"head {self.head}"


def verify_chain(txns: Sequence[dict], *, stored_head: str | None = None,
                 expected_head: str | None = None) -> ChainReport:
    """Re-derive the hash chain of a stored journal (dicts in ``seq`` order) and
    name the first broken link.

    A link breaks when a transaction's ``seq`` is not its position (a reordered,
    renumbered or deleted transaction), its ``prev_hash`` is not the hash of the
    transaction before it, or its stored ``hash`` is not the hash of its
    canonical content (an edited memo, amount, account, seq, ...). After the
    last transaction the re-derived head must equal ``stored_head`` (kept with
    the run) and ``expected_head`` (kept outside the database, e.g. from
    ``ledger export``), when given.
    """
    chained = any(isinstance(t, dict) and "hash" in t for t in txns)
    prev = GENESIS

    def broken(i: int, t: Any, what: str) -> ChainReport:
        seq = t.get("seq") if isinstance(t, dict) else None
        tid = t.get("txn_id") if isinstance(t, dict) else None
        return ChainReport(False, prev, {"seq": seq, "txn_id": tid, "position": i, "what": what}, chained)

    if not chained:
        if expected_head is not None or stored_head is not None:
            head = expected_head if expected_head is not None else stored_head
            return ChainReport(False, GENESIS, {"seq": None, "txn_id": None, "position": None,
                                                "what": f"the journal has no hash chain but a head {head} is expected"},
                               False)
        return ChainReport(True, GENESIS, None, False)
    for i, t in enumerate(txns):
        if not isinstance(t, dict):
            return broken(i, t, f"position {i} is not a transaction")
        if t.get("seq") != i:
            return broken(i, t, f"seq is {t.get('seq')!r} at position {i} (expected {i}): "
                                "a transaction was reordered, renumbered, inserted or deleted")
        if t.get("prev_hash") != prev:
            return broken(i, t, f"prev_hash {t.get('prev_hash')!r} is not the hash of the transaction "
                                f"before it ({prev}): a transaction before it was deleted, inserted or reordered")
        try:
            h = txn_hash(t, prev)
        except LedgerError as exc:
            return broken(i, t, str(exc))
        if t.get("hash") != h:
            return broken(i, t, f"content does not match its hash (stored {t.get('hash')!r}, content hashes "
                                f"to {h}): seq, txn_id, bar, time, kind, memo or a posting was edited")
        prev = h
    last = txns[-1] if txns else {}
    for label, want in (("the run's stored head", stored_head), ("the expected head", expected_head)):
        if want is not None and want != prev:
            return ChainReport(False, prev, {"seq": last.get("seq"), "txn_id": last.get("txn_id"),
                                             "position": len(txns) - 1 if txns else None,
                                             "what": f"the journal's head {prev} is not {label} {want}"},
                               True)
    return ChainReport(True, prev, None, True)
