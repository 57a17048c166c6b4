"""The policy port: risk-policy decisions (leverage tiers per subject and period)
and the persisted kill switch.

Policy decision (made by ``risk.policy.decide``; what
:meth:`PolicyStore.record_policy_decision` takes and every read returns; see
:func:`~manager.store.documents.policy.prepare_policy_decision`)::

    {
        "decision_id": str,        # caller-given (a hash of market, subject, period)
        "market": str,             # market key, e.g. "binance-5m|5m|BTC"
        "subject": str,            # "lineage:<id>" or "parent:<scope>"
        "subject_kind": str,       # "lineage" | "parent" (the subject's prefix)
        "period": str,             # "YYYY-MM-DD": the evaluation period decided on
        "period_end": str,         # ISO 8601 UTC (canonical): end of that period;
                                   #   the decision is known from then on
        "previous_tier": float,    # finite, >= 0
        "tier": float,             # finite, >= 0
        "next_tier": float,        # finite, >= 0
        "trigger": str,            # what caused this tier
        "next_trigger": str,       # what would move it next (may be "")
        "rule": str,               # the policy rule applied
        "rationale": dict,         # JSON-able
        "config": dict,            # JSON-able: the policy settings used
        "source": str | None,      # e.g. the run id / campaign id it came from
        "decided_at": str,         # ISO 8601 UTC (canonical)
        "recorded_at": str,        # set by the store: when it was first stored
        ...                        # any further JSON-able caller keys, as given
    }

Decisions are **append-only**: one per ``(market, subject, period)``, never
updated nor deleted (a second record of the same key returns the first).

**Point in time.** :meth:`PolicyStore.policy_tiers` answers "which tier did each
subject have at moment t": per subject the latest decision on that market whose
``period_end <= t``; a decision whose period ends after t never shows.

Kill switch (:meth:`PolicyStore.kill_switch`)::

    {"on": bool, "actor": str | None, "reason": str | None, "at": str | None}

Off (and every other field None) until first set. Every change is also an audit
event (:class:`~manager.store.ports.audit.AuditStore`) of kind
``"kill_switch.on"`` / ``"kill_switch.off"`` with ``details {"reason"}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

__all__ = ["PolicyStore"]


class PolicyStore(ABC):
    """Persistence port of the policy aggregate (policy decisions, kill switch).

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    # -- policy decisions ----------------------------------------------------------

    @abstractmethod
    def record_policy_decision(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a policy decision unless one exists for its ``(market, subject, period)``.

        Idempotent and append-only: a decision already stored under that key is
        returned unchanged, whatever ``doc`` says (it is never overwritten).

        Args:
            doc: the decision (shape in the module docstring).

        Returns:
            ``(decision, True)`` when stored now (the document as stored, with
            ``recorded_at``), ``(the stored decision, False)`` when one existed.

        Raises:
            InvalidDocument: a missing or wrong-typed field (the message names
                it), a negative or non-finite tier, a value that is not JSON-able.
            StoreError: ``decision_id`` is already the id of a decision with
                another ``(market, subject, period)``.
        """

    @abstractmethod
    def list_policy_decisions(
        self,
        *,
        market: str | None = None,
        subject: str | None = None,
        subject_kind: str | None = None,
        trigger: str | None = None,
        source: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return stored decisions, newest ``period_end`` first (ties: by
        ``subject``, then ``market``, ascending).

        Args:
            market, subject, subject_kind, trigger, source: exact matches; None = any.
            since: only ``period_end >= since`` (inclusive); ISO 8601 with a UTC
                offset or an aware datetime; None = no lower bound.
            until: only ``period_end < until`` (exclusive); None = no upper bound.
            limit: page size, 1 to :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
            offset: decisions to skip (>= 0).

        Raises:
            InvalidDocument: a filter that is not None and not a non-empty str,
                a ``subject_kind`` other than ``"lineage"`` / ``"parent"``, a bad
                ``since`` / ``until``, ``limit`` or ``offset``.
        """

    @abstractmethod
    def count_policy_decisions(
        self,
        *,
        market: str | None = None,
        subject: str | None = None,
        subject_kind: str | None = None,
        trigger: str | None = None,
        source: str | None = None,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
    ) -> int:
        """How many decisions :meth:`list_policy_decisions` with these filters
        would page through.

        Raises:
            InvalidDocument: as :meth:`list_policy_decisions`.
        """

    @abstractmethod
    def policy_tiers(self, market: str, as_of: str | datetime) -> dict[str, dict[str, Any]]:
        """The decisions in force at ``as_of`` on ``market``, point in time.

        Args:
            market: the market key (exact).
            as_of: the moment (ISO 8601 with a UTC offset, or an aware datetime).

        Returns:
            ``{subject: decision}``: per subject, its decision on that market with
            the latest ``period_end <= as_of`` (ties: the latest ``period``).
            Subjects without such a decision are absent; nothing whose period
            ends after ``as_of`` is ever returned.

        Raises:
            InvalidDocument: an empty market, a bad or naive ``as_of``.
        """

    # -- kill switch ------------------------------------------------------------------

    @abstractmethod
    def kill_switch(self) -> dict[str, Any]:
        """The kill switch's state ``{"on", "actor", "reason", "at"}``; off with
        None fields when it was never set."""

    @abstractmethod
    def set_kill_switch(
        self, on: bool, *, actor: str, reason: str, at: str | datetime | None = None,
    ) -> dict[str, Any]:
        """Turn the kill switch on or off, and record the change as an audit event
        (kind ``"kill_switch.on"`` / ``"kill_switch.off"``, ``actor``, ``at``,
        ``details {"reason"}``).

        SQLite writes the state and the event in one transaction. MongoDB does
        too on a replica set; on a standalone server the state is written first
        with the event pending on it, then the event (under an id fixed by the
        state write), then the pending mark is cleared; a pending event left by a
        failure is written by the next read or change of the switch, so no change
        goes unaudited, none is audited twice, and a retry is safe.

        Args:
            on: the new state (setting the current state again is recorded too).
            actor: who (non-empty str).
            reason: why (non-empty str).
            at: when (ISO 8601 with a UTC offset or aware datetime); None = now.

        Returns:
            The new state, as :meth:`kill_switch` will return it.

        Raises:
            InvalidDocument: ``on`` not a bool, an empty ``actor`` or ``reason``, a bad ``at``.
        """

    @abstractmethod
    def kill_switch_history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The kill switch's audit events (kinds ``kill_switch.on`` / ``.off``),
        newest ``at`` first, as :meth:`~manager.store.ports.audit.AuditStore.list_audit`
        returns them.

        Raises:
            InvalidDocument: ``limit`` not an int from 1 to
                :data:`~manager.store.documents.values.MAX_LIST_LIMIT`.
        """
