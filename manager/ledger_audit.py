"""Ledger audit use cases: verify a run's journal (balance, reconciliation, hash
chain against the stored head and an externally kept one) and export it with
its head (``cohortlab ledger verify`` / ``ledger export``)."""
from __future__ import annotations

from typing import Any

from manager.store import Store, StoreError
from simulator.ledger import CHAIN_SCHEME, GENESIS, VerifyReport, verify_journal
from simulator.ledger_chain import verify_chain

__all__ = ["export_run_ledger", "verify_run_ledger"]


def verify_run_ledger(store: Store, run_id: str, head: str | None = None) -> VerifyReport:
    """Check a completed run's ledger: the journal balances and reconciles with
    the engine's final state (:func:`simulator.ledger.verify_journal`), and its
    hash chain is intact and ends at the run's stored head and at ``head`` (one
    kept outside the database, e.g. from ``ledger export``) when given
    (:func:`simulator.ledger_chain.verify_chain`; the check names the first broken link).

    Args:
        store: open store.
        run_id: a completed run.

    Returns:
        The :class:`~simulator.ledger.VerifyReport` (``ok`` and the checks).

    Raises:
        RunNotFound: no such run.
        StoreError: the run is not completed (it has no ledger to verify), or
            its stored ledger or summary is corrupt (not valid JSON, or not the
            shape a journal has); the message names the run and the error.
    """
    try:
        run = store.get_run(run_id)
        if run.get("status") != "completed":
            raise StoreError(f"run {run_id} is {run.get('status')}: it has no ledger to verify")
        journal = store.get_ledger(run_id)
        rep = verify_journal(journal, run["summary"]["final_state"])
        chain = verify_chain(journal, stored_head=(run["summary"].get("ledger_chain") or {}).get("head"),
                             expected_head=head)
        rep.checks.append(("hash chain: every link and the head", chain.ok, chain.describe()))
        rep.ok = rep.ok and chain.ok
        return rep
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
        # json.JSONDecodeError is a ValueError; a Decimal of garbage an ArithmeticError
        raise StoreError(f"run {run_id}: the stored ledger or summary is corrupt and cannot be verified "
                         f"({type(exc).__name__}: {exc})") from exc


def export_run_ledger(store: Store, run_id: str) -> tuple[dict[str, Any], Any]:
    """A completed run's journal with its hash chain, to keep the head outside
    the database (``cohortlab ledger export``).

    Returns:
        ``(document, chain report)``: the document is ``{"run_id", "chain":
        {"scheme", "genesis", "head", "stored_head", "transactions"},
        "transactions": [...]}`` with ``head`` re-derived from the journal; the
        :class:`~simulator.ledger_chain.ChainReport` says whether the chain is intact
        and ends at the run's stored head.

    Raises:
        RunNotFound: no such run.
        StoreError: the run is not completed.
    """
    run = store.get_run(run_id)
    if run.get("status") != "completed":
        raise StoreError(f"run {run_id} is {run.get('status')}: it has no ledger to export")
    journal = store.get_ledger(run_id)
    stored = ((run.get("summary") or {}).get("ledger_chain") or {})
    chain = verify_chain(journal, stored_head=stored.get("head"))
    doc = {"run_id": run_id,
           "chain": {"scheme": stored.get("scheme", CHAIN_SCHEME), "genesis": GENESIS, "head": chain.head,
                     "stored_head": stored.get("head"), "transactions": len(journal)},
           "transactions": journal}
    return doc, chain
