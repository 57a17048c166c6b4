"""The runs port: runs, their results, the ledger journal, and the cohort listing.

Run document (what :meth:`RunStore.get_run` returns)::

    {
        "run_id": str,            # e.g. "20250101T093000-1a2b3c4d" (new_run_id())
        "kind": "cohort" | "backtest",
        "status": "running" | "completed" | "failed",
        "created_at": str,        # ISO 8601 UTC, "YYYY-mm-ddTHH:MM:SS.ffffff+00:00"
        "finished_at": str | None,
        "data_label": str,        # which market data the run used
        "header": {               # the typed header, written at creation; every
                                  # field None where unknown (a run created
                                  # without one; old runs backfilled by
                                  # migration 0005 from what they recorded)
            "day": str,           # "YYYY-MM-DD": UTC day of window_start
            "window_start": str,  # traded window [start, end), ISO 8601, e.g.
            "window_end": str,    #   "2025-03-01T00:00:00Z" (kept as given)
            "bankroll": float,    # quote currency
            "quote": str,         # quote currency, e.g. "BTC"
            "agents": int,        # cohort size
            "data_label": str,    # = the run's data_label
            "market": str,        # seeding market key, e.g. "binance-5m|5m|BTC"
            "seeded_from": str,   # where the genomes came from, e.g. "random"
        },
        "config": dict,
        "genomes": list[dict],
        ...                       # any further caller keys, stored as given
        "reason": str | None,     # why it failed (status "failed")
        "timings": dict | None,   # as given to complete_run / fail_run
        "summary": dict | None,   # as given to complete_run (status "completed")
    }

Ledger transaction (one journal entry; the ledger is the record of account)::

    {
        "txn_id": str,            # unique within the run; the idempotency key
        "seq": int,               # journal order; unique within the run
        "bar": int,               # bar index the transaction belongs to
        "time": str,              # ISO 8601 timestamp, kept as given
        "kind": str,              # e.g. "deposit", "fill", "fee", "liquidation"
        "memo": str,              # free text; "" when absent
        "postings": [             # at least one; amounts sum to exactly zero
            {
                "account": str,   # e.g. "parent:cash", "agent:a07:position:BTC/USDT"
                "amount": str,    # Decimal as a string ("-12.5", "1E-8"); never a float
                "qty": str | None,    # Decimal string (units of symbol) or None
                "symbol": str | None,
            },
        ],
        ...                       # further top-level keys are kept as given
    }

Amounts and quantities are stored and returned as the exact strings given.

Cohort summary row (one item of :meth:`RunStore.list_cohort_summaries`; every
``kind == "cohort"`` run, whatever its status; ``None`` where not known)::

    {
        "run_id": str,
        "created_at": str,        # ISO 8601 UTC (canonical)
        "finished_at": str | None,
        "status": "running" | "completed" | "failed",
        "reason": str | None,     # why it failed
        "date": str | None,       # header["day"]: UTC day the traded window starts
        "bankroll": float | None, # header["bankroll"] (quote currency)
        "quote": str | None,      # header["quote"]
        "agents": int | None,     # header["agents"]
        "data_label": str,
        "roi": float | None,      # summary["parent"][...] of a completed run:
        "final_equity": float | None,
        "max_drawdown": float | None,
        "peak_utilisation": float | None,
        "breaches": int | None,
        "failed_agents": int | None,
        "baseline_percentile": float | None,  # summary["baselines"]["random"]["percentile"] (0007)
    }
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["RunStore"]


class RunStore(ABC):
    """Persistence port of the runs aggregate: runs, their results (summary,
    agent results, trades, curves), the ledger journal, and the listings.

    Run life cycle: ``create_run`` -> ``"running"`` -> either ``complete_run``
    (``"completed"``) or ``fail_run`` (``"failed"``). ``append_ledger`` may add
    journal entries while the run is running.

    Documents go in and come out as plain dicts of JSON-able values (shapes in
    the module docstring); the store copies its input. Every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    # -- runs --------------------------------------------------------------

    @abstractmethod
    def create_run(self, run: dict[str, Any]) -> str:
        """Store a new run with status ``"running"``.

        Args:
            run: run document; see :func:`~manager.store.documents.runs.prepare_run` for required keys and
                defaults (``run_id`` is generated when absent) and
                :func:`~manager.store.documents.runs.prepare_header` for the
                optional typed ``header``.

        Returns:
            The run's ``run_id``.

        Raises:
            InvalidDocument: bad document; a bad header names the field
                (``run header.bankroll``).
            StoreError: a run with this ``run_id`` already exists.
        """

    @abstractmethod
    def complete_run(
        self,
        run_id: str,
        *,
        summary: dict[str, Any],
        agents: list[dict[str, Any]],
        trades: list[dict[str, Any]],
        ledger: list[dict[str, Any]],
        curves: dict[str, np.ndarray],
        timings: dict[str, Any],
    ) -> None:
        """Store a run's results and mark it ``"completed"``, atomically.

        Either everything is stored, ``status`` becomes ``"completed"`` and
        ``finished_at`` is set, or (on any error) nothing is and the run stays
        exactly as it was.

        Args:
            run_id: a ``"running"`` run.
            summary: cohort summary (metrics), JSON-able dict.
            agents: per-agent results in rank order (best first); each has a
                unique ``agent_id`` (str).
            trades: trades in the order to return them; each has ``agent_id``.
            ledger: journal transactions (shape in the module docstring); each
                ``txn_id`` at most once in the list. Transactions already stored
                by :meth:`append_ledger` with identical content are skipped.
            curves: name -> array (e.g. ``"parent"``, ``"agent:a07"``), stored
                exactly.
            timings: phase -> seconds (or any JSON-able dict).

        Raises:
            RunNotFound: no such run.
            RunStateError: the run is not ``"running"``.
            InvalidDocument: any bad item (its position is named); nothing stored.
            StoreError: a ``txn_id`` already stored with different content, or a
                ``seq`` used twice; nothing stored.
        """

    @abstractmethod
    def claim_run(self, run_id: str, owner: str, lease_s: float) -> bool:
        """Take the run's lease for ``owner`` for ``lease_s`` seconds, atomically.

        A run's lease is its ``owner`` (an opaque token of the process executing
        it) and ``lease_until`` (ISO 8601 UTC, the canonical form; both given to
        ``create_run`` or set here; ``get_run`` returns them when set). The claim
        succeeds only when the run is ``"running"`` and its lease has expired,
        it has none (a run created without one), or ``owner`` already holds it;
        then ``owner``/``lease_until`` are set to ``owner`` and now + ``lease_s``.

        Returns:
            True when ``owner`` now holds the lease; False when the run is
            finished or another owner's lease is live (nothing is changed).

        Raises:
            RunNotFound: no such run.
            InvalidDocument: ``owner`` not a non-empty str, ``lease_s`` not > 0.
        """

    @abstractmethod
    def refresh_run(self, run_id: str, run: dict[str, Any]) -> None:
        """Replace what ``create_run`` stored of a ``"running"`` run -- ``data_label``,
        ``header``, ``config``, ``genomes`` and the further caller keys -- with
        ``run`` (validated as by ``create_run``; its ``run_id``, ``created_at``,
        ``owner`` and ``lease_until`` are ignored: the run keeps its own). Used
        when a job recorded at submission (before its bars were loaded) starts.

        Raises:
            RunNotFound: no such run.
            RunStateError: the run is not ``"running"``.
            InvalidDocument: bad document.
        """

    @abstractmethod
    def renew_lease(self, run_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease on a ``"running"`` run to now + ``lease_s`` (a heartbeat).

        Returns:
            True when renewed; False when the run is finished or ``owner`` does
            not hold its lease any more (another owner took it over).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        """Mark a run ``"failed"`` and delete any results stored for it.

        Afterwards the run has no summary, agents, trades, ledger transactions or
        curves. Failing an already failed run replaces the reason and timings.

        Args:
            run_id: a ``"running"`` or ``"failed"`` run.
            reason: non-empty description of what went wrong.
            timings: optional JSON-able dict (e.g. seconds spent before failing).

        Raises:
            RunNotFound: no such run.
            RunStateError: the run completed (its results are kept).
            InvalidDocument: empty ``reason`` or non-JSON-able ``timings``.
        """

    @abstractmethod
    def get_run(self, run_id: str) -> dict[str, Any]:
        """Return the run document (shape in the module docstring): ``header``
        always (None fields where unknown), ``summary`` once completed.

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """List run documents newest first (``created_at``, then ``run_id``, descending).

        Keyset pagination: pass the ``run_id`` of the last run of a page as
        ``before`` to get the next page. Pages neither skip nor repeat runs even
        when new runs are created between calls.

        Args:
            limit: page size, 1 to :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
            before: cursor run id; only runs strictly after it in the listing
                order are returned. ``None`` = from the newest.
            status: only runs with this status (one of :data:`~manager.store.documents.runs.RUN_STATUSES`).
            kind: only runs of this kind (one of :data:`~manager.store.documents.runs.RUN_KINDS`).

        Raises:
            InvalidDocument: bad ``limit``, ``status`` or ``kind``.
            RunNotFound: ``before`` names no run.
        """

    @abstractmethod
    def list_cohort_summaries(
        self,
        *,
        date: str | None = None,
        bankroll: float | None = None,
        created_after: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of cohort runs as flat summary rows, with the total count.

        For dashboards and the API: every ``kind == "cohort"`` run (running,
        completed and failed), newest first (``created_at``, then ``run_id``,
        descending), read from fields denormalised onto the run record
        (:data:`~manager.store.documents.runs.COHORT_LISTING_FIELDS`, kept by ``create_run``/``complete_run``/
        ``fail_run``) under indexes that serve each filter in listing order, so
        a page costs about the same at any store size.

        Offset pagination: page ``k`` (from 0) of size ``n`` is
        ``limit=n, offset=k*n``. Unlike the keyset :meth:`list_runs`, pages may
        shift when runs are created between calls (a run can then appear on two
        pages or on none), and a deep offset walks the index up to it; use
        :meth:`list_runs` to visit every run exactly once.

        Args:
            date: ``"YYYY-MM-DD"``: only runs whose header ``day`` (the UTC
                day the traded window starts) is this day; a run without a
                header day never matches.
            bankroll: only runs with exactly this bankroll (quote currency).
            created_after: ISO 8601 timestamp with offset: only runs created
                strictly after it.
            limit: page size, 1 to :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
            offset: rows to skip, >= 0.

        Returns:
            ``{"items": [row, ...], "total": int}``: ``total`` counts every run
            matching the filters, whatever ``limit``/``offset``; each row has the
            keys :data:`~manager.store.documents.runs.COHORT_SUMMARY_KEYS` (shape in the module docstring),
            ``None`` where not known (metrics before completion; ``date``,
            ``bankroll``, ``quote``, ``agents`` of a run created without a header).

        Raises:
            InvalidDocument: a bad argument; the message names the value
                (see :func:`~manager.store.documents.runs.check_cohort_listing`).
        """

    @abstractmethod
    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's agent results in rank order as given ([] until completed).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Return the run's trades in the order given, optionally of one agent.

        Raises:
            RunNotFound: no such run.
            InvalidDocument: ``agent_id`` is not a str.
        """

    @abstractmethod
    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's ledger transactions ordered by ``seq``.

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        """Return the run's curves (name -> array, exact dtype and shape).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        """Append journal transactions idempotently (all or none per call).

        A transaction whose ``txn_id`` is already stored for the run with the same
        content is skipped, so a retried task can re-send its batch safely.

        Args:
            run_id: a ``"running"`` run (for a ``"completed"`` run only batches
                that are already fully stored are accepted; they return 0).
            txns: transactions (shape in the module docstring); each ``txn_id``
                at most once in the list.

        Returns:
            How many transactions were new.

        Raises:
            RunNotFound: no such run.
            RunStateError: the run failed, or completed and the batch has new
                transactions.
            InvalidDocument: a bad transaction; nothing stored.
            StoreError: a ``txn_id`` stored with different content, or a ``seq``
                already used by another transaction; nothing stored.
        """

